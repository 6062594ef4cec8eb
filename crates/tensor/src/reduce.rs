//! Reductions along an axis and the lane-wise ops built on them: log-sum-exp,
//! softmax, log-softmax, L2 norm and L2-normalise.
//!
//! Every op works lane by lane (a lane is the 1-D run of elements along the
//! axis); lanes are independent, so they run in parallel through ndarray's
//! rayon support when the tensor is large.

use crate::error::{or_panic, TensorError, TensorResult};
use crate::{Element, Tensor};
use ndarray::{ArrayD, ArrayView1, ArrayViewMut1, Axis, IxDyn, Zip};

/// Lanes below which the lane-wise ops stay on one thread.
const PARALLEL_LANES: usize = 256;

impl<T: Element> Tensor<T> {
    /// Reduce every lane along `axis` to one value.
    fn reduce_lanes<F>(
        &self,
        op: &'static str,
        axis: usize,
        keepdim: bool,
        f: F,
    ) -> TensorResult<Self>
    where
        F: Fn(ArrayView1<'_, T>) -> T + Sync + Send,
    {
        let _t = crate::profile::scope(crate::profile::Section::Reduce);
        self.dim_checked(op, axis)?;
        let mut out = self.data.map_axis(Axis(axis), f);
        if keepdim {
            out = out.insert_axis(Axis(axis));
        }
        Ok(Tensor::from_array(out))
    }

    /// Map every lane along `axis` to a lane of the same length.
    fn transform_lanes<F>(&self, op: &'static str, axis: usize, f: F) -> TensorResult<Self>
    where
        F: Fn(ArrayView1<'_, T>, ArrayViewMut1<'_, T>) + Sync + Send,
    {
        let _t = crate::profile::scope(crate::profile::Section::Reduce);
        self.dim_checked(op, axis)?;
        let mut out = ArrayD::<T>::zeros(IxDyn(self.shape()));
        let zip = Zip::from(out.lanes_mut(Axis(axis))).and(self.data.lanes(Axis(axis)));
        if self.len() / self.shape()[axis].max(1) >= PARALLEL_LANES {
            zip.par_for_each(|o, x| f(x, o));
        } else {
            zip.for_each(|o, x| f(x, o));
        }
        Ok(Tensor::from_array(out))
    }

    /// Sum along `axis`.
    pub fn try_sum_axis(&self, axis: usize, keepdim: bool) -> TensorResult<Self> {
        self.reduce_lanes("sum_axis", axis, keepdim, |l| l.sum())
    }

    /// Mean along `axis`.
    pub fn try_mean_axis(&self, axis: usize, keepdim: bool) -> TensorResult<Self> {
        let n = T::from_usize(self.dim_checked("mean_axis", axis)?).expect("size fits a float");
        self.reduce_lanes("mean_axis", axis, keepdim, move |l| l.sum() / n)
    }

    /// Maximum along `axis` (NaN propagates).
    pub fn try_max_axis(&self, axis: usize, keepdim: bool) -> TensorResult<Self> {
        self.reduce_lanes("max_axis", axis, keepdim, |l| lane_max(l).1)
    }

    /// Index of the maximum along `axis` (the first one on ties), with `axis` removed.
    pub fn try_argmax_axis(&self, axis: usize) -> TensorResult<ndarray::ArrayD<usize>> {
        self.dim_checked("argmax_axis", axis)?;
        Ok(self.data.map_axis(Axis(axis), |l| lane_max(l).0))
    }

    /// `ln Σ exp(x)` along `axis`, shifted by the lane maximum so it never overflows.
    pub fn try_logsumexp(&self, axis: usize, keepdim: bool) -> TensorResult<Self> {
        self.reduce_lanes("logsumexp", axis, keepdim, logsumexp_lane)
    }

    /// Softmax along `axis`: `exp(x - max) / Σ exp(x - max)`.
    pub fn try_softmax(&self, axis: usize) -> TensorResult<Self> {
        self.transform_lanes("softmax", axis, |x, mut o| {
            let m = lane_max(x.view()).1;
            let mut s = T::zero();
            Zip::from(&mut o).and(&x).for_each(|o, &v| {
                *o = (v - m).exp();
                s += *o;
            });
            o.mapv_inplace(|v| v / s);
        })
    }

    /// Log-softmax along `axis`: `x - logsumexp(x)`.
    pub fn try_log_softmax(&self, axis: usize) -> TensorResult<Self> {
        self.transform_lanes("log_softmax", axis, |x, mut o| {
            let lse = logsumexp_lane(x.view());
            Zip::from(&mut o).and(&x).for_each(|o, &v| *o = v - lse);
        })
    }

    /// Euclidean norm along `axis`.
    pub fn try_l2_norm(&self, axis: usize, keepdim: bool) -> TensorResult<Self> {
        self.reduce_lanes("l2_norm", axis, keepdim, |l| {
            l.fold(T::zero(), |s, &v| s + v * v).sqrt()
        })
    }

    /// Divide every lane along `axis` by `max(|lane|, eps)`.
    pub fn try_l2_normalize(&self, axis: usize, eps: T) -> TensorResult<Self> {
        self.transform_lanes("l2_normalize", axis, move |x, mut o| {
            let n = x.fold(T::zero(), |s, &v| s + v * v).sqrt().max(eps);
            Zip::from(&mut o).and(&x).for_each(|o, &v| *o = v / n);
        })
    }

    /// Sum of all elements.
    pub fn sum_all(&self) -> T {
        match self.as_slice() {
            Some(s) => s.iter().copied().sum(),
            None => self.data.sum(),
        }
    }

    /// Mean of all elements.
    pub fn mean_all(&self) -> T {
        self.sum_all() / T::from_usize(self.len().max(1)).expect("size fits a float")
    }

    /// Sum a broadcast result back down to `shape` (the backward of broadcasting):
    /// leading extra axes are summed away, axes where `shape` has 1 are summed with keepdim.
    pub fn try_sum_to_shape(&self, shape: &[usize]) -> TensorResult<Self> {
        let _t = crate::profile::scope(crate::profile::Section::Reduce);
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let lead = self.ndim().checked_sub(shape.len()).ok_or_else(|| {
            TensorError::mismatch(
                "sum_to_shape",
                self.shape(),
                shape,
                None,
                "target has more axes than the source",
            )
        })?;
        let mut acc = self.data.to_owned();
        for _ in 0..lead {
            acc = acc.sum_axis(Axis(0));
        }
        for (i, &d) in shape.iter().enumerate() {
            if d == 1 && acc.shape()[i] != 1 {
                acc = acc.sum_axis(Axis(i)).insert_axis(Axis(i));
            } else if d != acc.shape()[i] {
                return Err(TensorError::mismatch(
                    "sum_to_shape",
                    self.shape(),
                    shape,
                    Some(i),
                    "target axis is neither equal nor 1",
                ));
            }
        }
        Ok(Tensor::from_array(acc))
    }
}

/// (index, value) of a lane's maximum; the first on ties, NaN wins.
fn lane_max<T: Element>(l: ArrayView1<'_, T>) -> (usize, T) {
    let mut best = (0, T::neg_infinity());
    for (i, &v) in l.iter().enumerate() {
        if v > best.1 || (v.is_nan() && !best.1.is_nan()) {
            best = (i, v);
        }
    }
    best
}

fn logsumexp_lane<T: Element>(l: ArrayView1<'_, T>) -> T {
    let m = lane_max(l.view()).1;
    if m.is_infinite() {
        return m;
    }
    m + l.fold(T::zero(), |s, &v| s + (v - m).exp()).ln()
}

macro_rules! panicking_forms {
    ($($name:ident => $try_name:ident($($p:ident: $pt:ty),*) -> $ret:ty;)*) => {
        impl<T: Element> Tensor<T> {
            $(
                #[doc = concat!("See [`Tensor::", stringify!($try_name), "`].")]
                #[track_caller]
                pub fn $name(&self $(, $p: $pt)*) -> $ret {
                    or_panic(self.$try_name($($p),*))
                }
            )*
        }
    };
}

panicking_forms! {
    sum_axis => try_sum_axis(axis: usize, keepdim: bool) -> Self;
    mean_axis => try_mean_axis(axis: usize, keepdim: bool) -> Self;
    max_axis => try_max_axis(axis: usize, keepdim: bool) -> Self;
    argmax_axis => try_argmax_axis(axis: usize) -> ndarray::ArrayD<usize>;
    logsumexp => try_logsumexp(axis: usize, keepdim: bool) -> Self;
    softmax => try_softmax(axis: usize) -> Self;
    log_softmax => try_log_softmax(axis: usize) -> Self;
    l2_norm => try_l2_norm(axis: usize, keepdim: bool) -> Self;
    l2_normalize => try_l2_normalize(axis: usize, eps: T) -> Self;
    sum_to_shape => try_sum_to_shape(shape: &[usize]) -> Self;
}
