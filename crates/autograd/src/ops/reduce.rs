//! Reductions, softmax-family ops and L2 normalisation.

use crate::Var;
use tensor::ndarray::{ArrayD, Dimension, IxDyn};
use tensor::{Element, Tensor};

/// `g` of a reduced shape, spread back over the input shape.
fn expand<T: Element>(g: &Tensor<T>, shape: &[usize], axis: Option<usize>) -> Tensor<T> {
    let g = match axis {
        Some(a) if g.ndim() < shape.len() => g.unsqueeze(a),
        _ => g.clone(),
    };
    Tensor::zeros(shape).add(&g)
}

impl<T: Element> Var<T> {
    /// Sum of all elements (a 0-d scalar).  dx = g everywhere.
    pub fn sum(&self) -> Var<T> {
        let shape = self.shape().to_vec();
        Var::from_op(
            "sum",
            Tensor::scalar(self.value().sum_all()),
            &[self],
            move |g| vec![Some(expand(g, &shape, None))],
        )
    }

    /// Mean of all elements.  dx = g / n everywhere.
    pub fn mean(&self) -> Var<T> {
        let shape = self.shape().to_vec();
        let n = T::from_usize(self.value().len().max(1)).expect("size fits");
        Var::from_op(
            "mean",
            Tensor::scalar(self.value().mean_all()),
            &[self],
            move |g| vec![Some(expand(&g.mul_scalar(T::one() / n), &shape, None))],
        )
    }

    /// Sum along `axis`.  dx = g broadcast back along `axis`.
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Var<T> {
        let shape = self.shape().to_vec();
        Var::from_op(
            "sum_axis",
            self.value().sum_axis(axis, keepdim),
            &[self],
            move |g| vec![Some(expand(g, &shape, Some(axis)))],
        )
    }

    /// Mean along `axis`.  dx = g / n broadcast back along `axis`.
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Var<T> {
        let shape = self.shape().to_vec();
        let n = T::from_usize(shape[axis]).expect("size fits");
        Var::from_op(
            "mean_axis",
            self.value().mean_axis(axis, keepdim),
            &[self],
            move |g| {
                vec![Some(expand(
                    &g.mul_scalar(T::one() / n),
                    &shape,
                    Some(axis),
                ))]
            },
        )
    }

    /// Maximum along `axis`.  dx = g at the (first) maximum of each lane, 0 elsewhere.
    pub fn max_axis(&self, axis: usize, keepdim: bool) -> Var<T> {
        let x = self.value();
        let shape = x.shape().to_vec();
        let argmax = x.argmax_axis(axis);
        Var::from_op("max_axis", x.max_axis(axis, keepdim), &[self], move |g| {
            let g = if g.ndim() < shape.len() {
                g.unsqueeze(axis)
            } else {
                g.clone()
            };
            let mut out = ndarray_zeros::<T>(&shape);
            for (idx, &a) in argmax.indexed_iter() {
                let mut full = idx.slice().to_vec();
                full.insert(axis, a);
                let mut gi = idx.slice().to_vec();
                gi.insert(axis, 0);
                out[full.as_slice()] = g.get(&gi).expect("reduced index");
            }
            vec![Some(Tensor::from_array(out))]
        })
    }

    /// Log-softmax along `axis`: y = x - logsumexp(x).
    /// dx = g - softmax(x)·Σ_axis g, with softmax = e^y from the saved output.
    pub fn log_softmax(&self, axis: usize) -> Var<T> {
        let y = self.value().log_softmax(axis);
        let keep = y.clone();
        Var::from_op("log_softmax", y, &[self], move |g| {
            vec![Some(g.sub(&keep.exp().mul(&g.sum_axis(axis, true))))]
        })
    }

    /// Fused softmax cross-entropy, mean over rows: logits `[N, C]`, one label per row.
    /// L = (1/N) Σ_i (logsumexp(x_i) - x_i[y_i]);  dx = g·(softmax(x) - onehot(y)) / N.
    pub fn softmax_cross_entropy(&self, labels: &[usize]) -> Var<T> {
        let x = self.value();
        let (n, c) = (x.shape()[0], x.shape()[1]);
        assert!(
            x.ndim() == 2 && labels.len() == n,
            "softmax_cross_entropy: logits {:?} need one label per row, got {}",
            x.shape(),
            labels.len()
        );
        let picked = x
            .try_gather_rows(labels)
            .unwrap_or_else(|e| panic!("softmax_cross_entropy: {e}"));
        let loss = x.logsumexp(1, false).sub(&picked).mean_all();
        let mut probs = x.softmax(1);
        let inv_n = T::one() / T::from_usize(n.max(1)).expect("size fits");
        let labels = labels.to_vec();
        Var::from_op(
            "softmax_cross_entropy",
            Tensor::scalar(loss),
            &[self],
            move |g| {
                let s = g.item().expect("scalar") * inv_n;
                let p = probs.as_mut_slice();
                for (r, &l) in labels.iter().enumerate() {
                    p[r * c + l] -= T::one();
                }
                vec![Some(probs.mul_scalar(s))]
            },
        )
    }

    /// Each lane along `axis` divided by its norm n = max(|x|, eps): y = x / n.
    /// dx = (g - y·Σ_axis(g·y)) / n where |x| > eps, and g / eps where the floor applies.
    pub fn l2_normalize(&self, axis: usize, eps: T) -> Var<T> {
        let x = self.value();
        let norm = x.l2_norm(axis, true);
        let floored = norm.max_scalar(eps);
        let y = x.div(&floored);
        let keep = y.clone();
        let active = norm.gt_scalar(eps);
        Var::from_op("l2_normalize", y, &[self], move |g| {
            let proj = keep.mul(&g.mul(&keep).sum_axis(axis, true)).mul(&active);
            vec![Some(g.sub(&proj).div(&floored))]
        })
    }
}

fn ndarray_zeros<T: Element>(shape: &[usize]) -> ArrayD<T> {
    ArrayD::zeros(IxDyn(shape))
}
