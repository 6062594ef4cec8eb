//! Center loss (Wen et al. 2016) with its center update rule.

use autograd::Var;
use tensor::{Element, Tensor};

/// Class centers `[C, K]` and the update rate α.
#[derive(Debug, Clone, PartialEq)]
pub struct CenterLoss<T: Element> {
    /// One center per class.
    pub centers: Tensor<T>,
    /// Center learning rate α.
    pub alpha: T,
}

impl<T: Element> CenterLoss<T> {
    /// Centers start at zero (as in the paper's Caffe layer).
    pub fn new(classes: usize, dim: usize, alpha: T) -> Self {
        CenterLoss {
            centers: Tensor::zeros(&[classes, dim]),
            alpha,
        }
    }

    /// `L = 1/(2N) Σ_i |x_i - c_{y_i}|²`; the gradient flows to `x` only.
    pub fn loss(&self, x: &Var<T>, labels: &[usize]) -> Var<T> {
        crate::check_inputs("center_loss", x.shape(), self.centers.shape(), labels);
        let n = T::from_usize(labels.len().max(1)).expect("size fits");
        let targets = Var::constant(self.centers.index_select(0, labels));
        let d = x.sub(&targets);
        d.mul(&d).sum().mul_scalar(T::one() / (n + n))
    }

    /// `Δc_j = Σ_{i: y_i = j} (c_j - x_i) / (1 + n_j)` for every class (zero for absent ones).
    pub fn center_delta(&self, x: &Tensor<T>, labels: &[usize]) -> Tensor<T> {
        crate::check_inputs("center_delta", x.shape(), self.centers.shape(), labels);
        let (c, k) = (self.centers.shape()[0], self.centers.shape()[1]);
        let mut counts = vec![0usize; c];
        labels.iter().for_each(|&l| counts[l] += 1);
        let diff = self.centers.index_select(0, labels).sub(x); // c_{y_i} - x_i
        let summed = diff
            .try_scatter_add_rows(labels, c)
            .expect("labels checked");
        let scale: Vec<T> = counts
            .iter()
            .map(|&n| T::one() / T::from_usize(1 + n).expect("fits"))
            .collect();
        summed
            .mul(&Tensor::from_vec(&[c, 1], scale).expect("C values"))
            .reshape(&[c, k])
    }

    /// `c_j ← c_j - α Δc_j`.
    pub fn update_centers(&mut self, x: &Tensor<T>, labels: &[usize]) {
        let delta = self.center_delta(x, labels);
        self.centers.scale_add_assign(T::one(), &delta, -self.alpha);
    }
}
