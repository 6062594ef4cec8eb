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
        Var::from_op(
            "matmul",
            self.value().matmul(b.value()),
            &[self, b],
            move |g| {
                vec![
                    keep_b.map(|b| g.matmul(&b.t()).sum_to_shape(&sa)),
                    keep_a.map(|a| a.t().matmul(g).sum_to_shape(&sb)),
                ]
            },
        )
    }
}
