//! Batch normalisation in training mode as one op: one pass for the
//! statistics, one for the output, and nothing saved but the input (shared,
//! not copied) and two numbers per channel. A composition of graph ops would
//! keep the centred input, its square and the normalised input alive for the
//! backward: three extra activations per layer.
//!
//! Per channel c over its M = N·H·W values: μ = mean x, σ² = mean (x − μ)²
//! (biased), r = 1/√(σ² + ε), x̂ = (x − μ) r, y = γ x̂ + β. Backward, with
//! g = dL/dy:
//!
//! dβ = Σ g,  dγ = Σ g x̂,  dx = γ r / M · (M g − Σ g − x̂ Σ g x̂).
//!
//! The passes over the data are `tensor::norm`'s kernels.

use super::needs;
use crate::Var;
use tensor::{Element, Tensor};

impl<T: Element> Var<T> {
    /// Training-mode batch norm of `[N, C]` or `[N, C, H, W]` input with scale
    /// `weight` and shift `bias` (`[C]` each); also returns the batch's mean and
    /// biased variance per channel (for the running statistics).
    pub fn batch_norm_train(
        &self,
        weight: &Var<T>,
        bias: &Var<T>,
        eps: f64,
    ) -> (Var<T>, Vec<T>, Vec<T>) {
        let shape = self.shape().to_vec();
        assert!(
            shape.len() >= 2 && weight.shape() == [shape[1]] && bias.shape() == [shape[1]],
            "batch_norm_train: input {shape:?} needs weight and bias [C], got {:?} and {:?}",
            weight.shape(),
            bias.shape()
        );
        let _t = tensor::profile::scope(tensor::profile::Section::BatchNorm);
        let (n, c) = (shape[0], shape[1]);
        let s: usize = shape[2..].iter().product();
        let m = T::from_usize(n * s).expect("fits");
        let x = self.value().to_contiguous();
        let xs = x.as_slice().expect("contiguous");
        let (mean, var): (Vec<T>, Vec<T>) = tensor::norm::batch_norm_stats(xs, n, c, s)
            .into_iter()
            .unzip();
        let eps = T::from_f64_lossy(eps);
        let inv: Vec<T> = var.iter().map(|&v| T::one() / (v + eps).sqrt()).collect();
        let (gamma, beta) = (weight.value().to_vec(), bias.value().to_vec());
        let scale: Vec<T> = (0..c).map(|ch| gamma[ch] * inv[ch]).collect();
        let shift: Vec<T> = (0..c).map(|ch| beta[ch] - scale[ch] * mean[ch]).collect();
        let mut out = tensor::memory::zeroed(xs.len());
        tensor::norm::channel_affine(xs, &mut out, c, s, &scale, &shift);
        let out = Tensor::from_vec(&shape, out).expect("same size");
        let inputs = [self, weight, bias];
        let need = needs(&inputs);
        let mean_b = mean.clone();
        let y = Var::from_op("batch_norm_train", out, &inputs, move |g| {
            let _t = tensor::profile::scope(tensor::profile::Section::BatchNorm);
            let g = g.to_contiguous();
            let gs = g.as_slice().expect("contiguous");
            let xs = x.as_slice().expect("contiguous");
            // Σ g and Σ g (x − μ) per channel; Σ g x̂ = r Σ g (x − μ).
            let sums = tensor::norm::batch_norm_grad_sums(gs, xs, n, c, s, &mean_b);
            let dx = need[0].then(|| {
                // dx = γ r / M · (M g − Σ g − x̂ Σ g x̂)
                //    = (γ r) g − (γ r Σ g / M) − (γ r³ Σ g (x − μ) / M) (x − μ)
                let k: Vec<[T; 4]> = (0..c)
                    .map(|ch| {
                        let (sg, sgc) = sums[ch];
                        let gr = gamma[ch] * inv[ch];
                        [
                            gr,
                            gr * sg / m,
                            gr * inv[ch] * inv[ch] * sgc / m,
                            mean_b[ch],
                        ]
                    })
                    .collect();
                let mut dx = tensor::memory::zeroed(xs.len());
                tensor::norm::batch_norm_input_grad(gs, xs, &mut dx, c, s, &k);
                Tensor::from_vec(&shape, dx).expect("same size")
            });
            let dgamma = need[1].then(|| {
                let v = (0..c).map(|ch| inv[ch] * sums[ch].1).collect();
                Tensor::from_vec(&[c], v).expect("[C]")
            });
            let dbeta = need[2]
                .then(|| Tensor::from_vec(&[c], sums.iter().map(|p| p.0).collect()).expect("[C]"));
            vec![dx, dgamma, dbeta]
        });
        (y, mean, var)
    }
}
