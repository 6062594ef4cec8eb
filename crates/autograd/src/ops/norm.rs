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

use super::needs;
use crate::Var;
use rayon::prelude::*;
use tensor::{Element, Tensor};

/// Per-channel values of an `[N, C, ...]` contiguous buffer: `(n, s)` ranges.
fn channel<T: Copy>(
    xs: &[T],
    n: usize,
    c: usize,
    s: usize,
    ch: usize,
) -> impl Iterator<Item = T> + '_ {
    (0..n).flat_map(move |i| xs[(i * c + ch) * s..(i * c + ch + 1) * s].iter().copied())
}

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
        let (n, c) = (shape[0], shape[1]);
        let s: usize = shape[2..].iter().product();
        let m = T::from_usize(n * s).expect("fits");
        let x = self.value().to_contiguous();
        let xs = x.as_slice().expect("contiguous");
        let stats: Vec<(T, T)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let mean = channel(xs, n, c, s, ch).fold(T::zero(), |a, v| a + v) / m;
                let var = channel(xs, n, c, s, ch)
                    .fold(T::zero(), |a, v| a + (v - mean) * (v - mean))
                    / m;
                (mean, var)
            })
            .collect();
        let (mean, var): (Vec<T>, Vec<T>) = stats.iter().copied().unzip();
        let eps = T::from_f64_lossy(eps);
        let inv: Vec<T> = var.iter().map(|&v| T::one() / (v + eps).sqrt()).collect();
        let (gamma, beta) = (weight.value().to_vec(), bias.value().to_vec());
        let mut out = vec![T::zero(); xs.len()];
        out.par_chunks_mut(s.max(1))
            .enumerate()
            .for_each(|(plane, y)| {
                let ch = plane % c;
                let (scale, shift) = (
                    gamma[ch] * inv[ch],
                    beta[ch] - gamma[ch] * inv[ch] * mean[ch],
                );
                y.iter_mut()
                    .zip(&xs[plane * s..(plane + 1) * s])
                    .for_each(|(yv, &xv)| *yv = xv * scale + shift);
            });
        let out = Tensor::from_vec(&shape, out).expect("same size");
        let inputs = [self, weight, bias];
        let need = needs(&inputs);
        let (mean_b, inv_b) = (mean.clone(), inv);
        let y = Var::from_op("batch_norm_train", out, &inputs, move |g| {
            let g = g.to_contiguous();
            let gs = g.as_slice().expect("contiguous");
            let xhat = |v: T, ch: usize| (v - mean_b[ch]) * inv_b[ch];
            // Σ g and Σ g x̂ per channel
            let sums: Vec<(T, T)> = (0..c)
                .into_par_iter()
                .map(|ch| {
                    channel(gs, n, c, s, ch)
                        .zip(channel(xs_of(&x), n, c, s, ch))
                        .fold((T::zero(), T::zero()), |(a, b), (gv, xv)| {
                            (a + gv, b + gv * xhat(xv, ch))
                        })
                })
                .collect();
            let dx = need[0].then(|| {
                let xv = xs_of(&x);
                let mut dx = vec![T::zero(); xv.len()];
                dx.par_chunks_mut(s.max(1))
                    .enumerate()
                    .for_each(|(plane, d)| {
                        let ch = plane % c;
                        let (sg, sgx) = sums[ch];
                        let k = gamma[ch] * inv_b[ch] / m;
                        let (gp, xp) = (
                            &gs[plane * s..(plane + 1) * s],
                            &xv[plane * s..(plane + 1) * s],
                        );
                        d.iter_mut()
                            .zip(gp.iter().zip(xp))
                            .for_each(|(dv, (&gv, &xi))| {
                                *dv = k * (m * gv - sg - xhat(xi, ch) * sgx)
                            });
                    });
                Tensor::from_vec(&shape, dx).expect("same size")
            });
            let dgamma = need[1]
                .then(|| Tensor::from_vec(&[c], sums.iter().map(|p| p.1).collect()).expect("[C]"));
            let dbeta = need[2]
                .then(|| Tensor::from_vec(&[c], sums.iter().map(|p| p.0).collect()).expect("[C]"));
            vec![dx, dgamma, dbeta]
        });
        (y, mean, var)
    }
}

fn xs_of<T: Element>(x: &Tensor<T>) -> &[T] {
    x.as_slice().expect("contiguous")
}
