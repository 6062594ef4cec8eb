//! Matrix products.

use super::needs;
use crate::Var;
use tensor::Element;

impl<T: Element> Var<T> {
    /// `A · B` for 2-D or batched 3-D operands; transposed views (`x.t()`) cost no copy.
    ///
    /// dA = g · Bᵀ, dB = Aᵀ · g (batched per matrix; a broadcast batch of 1 sums
    /// its gradient over the batch).
    pub fn matmul(&self, b: &Var<T>) -> Var<T> {
        let need = needs(&[self, b]);
        let (sa, sb) = (self.shape().to_vec(), b.shape().to_vec());
        let keep_b = need[0].then(|| b.value().clone());
        let keep_a = need[1].then(|| self.value().clone());
        // A gradient is computed in the layout of its operand: for an operand
        // that is a transposed view (W in Linear's x·Wᵀ), the transpose of the
        // product, (gᵀ·A)ᵀ instead of Aᵀ·g (the same numbers), so that the
        // transpose op's backward hands W a contiguous gradient. (A strided one
        // made the gradient accumulation a strided pass: 56 ms per
        // SphereFace-20 step on fc5's 11M weights.)
        let transposed = |v: &Var<T>| v.shape().len() == 2 && v.value().t().is_contiguous();
        let (a_t, b_t) = (transposed(self), transposed(b));
        Var::from_op(
            "matmul",
            self.value().matmul(b.value()),
            &[self, b],
            move |g| {
                vec![
                    keep_b.map(|b| match a_t {
                        true => b.matmul(&g.t()).t(),
                        false => g.matmul(&b.t()).sum_to_shape(&sa),
                    }),
                    keep_a.map(|a| match b_t {
                        true => g.t().matmul(&a).t(),
                        false => a.t().matmul(g).sum_to_shape(&sb),
                    }),
                ]
            },
        )
    }
}
