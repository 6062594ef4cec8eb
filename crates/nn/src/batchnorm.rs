//! Batch normalisation (PyTorch's BatchNorm1d/2d, with `num_batches_tracked`)
//! and its folding into the preceding convolution or linear layer for inference.
//!
//! # Folding
//!
//! In evaluation mode a BatchNorm after a layer `y = W x + b` computes
//! `γ (y − μ) / √(σ² + ε) + β` with fixed running statistics μ, σ². With
//! `s = γ / √(σ² + ε)` per output channel that is one affine layer:
//!
//! ```text
//!     W'[o, ...] = s[o] · W[o, ...]        b'[o] = s[o] · (b[o] − μ[o]) + β[o]
//! ```
//!
//! so the BatchNorm costs nothing at inference. [`Module::fold_batchnorm`]
//! computes `W'`, `b'` (in f64) into the layer's inference slot and marks the
//! BatchNorm as folded; evaluation then runs the folded layer and skips the
//! BatchNorm. The trained tensors are untouched (a checkpoint saved afterwards
//! is the unfolded network), and `set_training(true)` drops the folded copy.
//! Only BatchNorms in evaluation mode fold: training needs the batch statistics.

use crate::module::{join, Module, TensorKind};
use crate::onnx::{Attr, ExportResult, OnnxGraph};
use autograd::{Param, Var};
use std::cell::{Cell, RefCell};
use tensor::{Element, Tensor};

/// Batch normalisation over axis 1 of `[N, C]` (BatchNorm1d) or `[N, C, H, W]` (BatchNorm2d).
///
/// Training: normalise with the batch's mean and biased variance, move the
/// running statistics by `momentum` (running variance unbiased, as PyTorch),
/// and count the batch in `num_batches_tracked`. Evaluation: normalise with
/// the running statistics (or nothing at all once folded).
pub struct BatchNorm<T: Element> {
    /// Scale γ, `[C]`.
    pub weight: Param<T>,
    /// Shift β, `[C]`.
    pub bias: Param<T>,
    /// Running mean (buffer).
    pub running_mean: Param<T>,
    /// Running variance (buffer).
    pub running_var: Param<T>,
    /// Training batches seen (a counter, saved as int64 like PyTorch's).
    pub num_batches_tracked: Param<T>,
    /// Running statistics' update rate.
    pub momentum: f64,
    /// Added to the variance.
    pub eps: f64,
    /// Whether γ is trained (insightface freezes its iResNets' final `features.weight` at 1).
    pub weight_trainable: bool,
    training: Cell<bool>,
    folded: Cell<bool>,
}

impl<T: Element> BatchNorm<T> {
    /// γ = 1, β = 0, running mean 0, running variance 1; momentum 0.1, eps 1e-5.
    pub fn new(channels: usize) -> Self {
        BatchNorm {
            weight: Param::new(Tensor::ones(&[channels])),
            bias: Param::new(Tensor::zeros(&[channels])),
            running_mean: Param::new(Tensor::zeros(&[channels])),
            running_var: Param::new(Tensor::ones(&[channels])),
            num_batches_tracked: Param::new(Tensor::scalar(T::zero())),
            momentum: 0.1,
            eps: 1e-5,
            weight_trainable: true,
            training: Cell::new(true),
            folded: Cell::new(false),
        }
    }

    /// Per channel, the evaluation-mode map `y = s x + t` as f64 `(s, t)`:
    /// `s = γ / √(σ² + ε)`, `t = β − s μ`.
    fn eval_affine(&self) -> (Vec<f64>, Vec<f64>) {
        let f = |p: &Param<T>| -> Vec<f64> {
            p.value()
                .to_vec()
                .iter()
                .map(|v| v.to_f64().unwrap_or(f64::NAN))
                .collect()
        };
        let (g, b, m, v) = (
            f(&self.weight),
            f(&self.bias),
            f(&self.running_mean),
            f(&self.running_var),
        );
        let s: Vec<f64> = g
            .iter()
            .zip(&v)
            .map(|(g, v)| g / (v + self.eps).sqrt())
            .collect();
        let t = b
            .iter()
            .zip(&s)
            .zip(&m)
            .map(|((b, s), m)| b - s * m)
            .collect();
        (s, t)
    }

    /// Fold this BatchNorm (in evaluation mode) into `layer`, the layer whose
    /// output it normalises; does nothing in training mode.
    pub fn fold_into(&self, layer: &dyn Foldable<T>) {
        if self.training.get() {
            return;
        }
        let (s, t) = self.eval_affine();
        let (weight, bias) = layer.affine();
        let out = weight.shape()[0];
        assert_eq!(
            out,
            s.len(),
            "BatchNorm fold: layer weight {:?} has {out} outputs, the BatchNorm {} channels",
            weight.shape(),
            s.len()
        );
        let per_row = weight.len() / out.max(1);
        let w: Vec<f64> = weight
            .to_vec()
            .iter()
            .map(|v| v.to_f64().unwrap_or(f64::NAN))
            .collect();
        let b: Vec<f64> = match bias {
            Some(b) => b
                .to_vec()
                .iter()
                .map(|v| v.to_f64().unwrap_or(f64::NAN))
                .collect(),
            None => vec![0.0; out],
        };
        let folded_w: Vec<T> = w
            .chunks(per_row.max(1))
            .zip(&s)
            .flat_map(|(row, s)| row.iter().map(move |v| T::from_f64_lossy(v * s)))
            .collect();
        // s (b − μ) + β = s b + t.
        let folded_b: Vec<T> = (0..out)
            .map(|o| T::from_f64_lossy(s[o] * b[o] + t[o]))
            .collect();
        layer.set_folded(Some((
            Tensor::from_vec(weight.shape(), folded_w).expect("same shape"),
            Tensor::from_vec(&[out], folded_b).expect("[out]"),
        )));
        self.folded.set(true);
    }
}

/// Give every BatchNorm of `net` values like a trained network's: running
/// variances in [0.5, 2), running means and every bias from N(0, 0.2²), and
/// every 1-D weight except PReLU slopes (the γ's) in [0.5, 1.5).
///
/// A fresh BatchNorm (μ 0, σ² 1, γ 1, β 0) is nearly the identity in
/// evaluation, so an export, a fold or a layout check run on one would pass
/// with the statistics ignored or swapped. Tests of those use this instead.
pub fn randomise_like_trained<T: Element>(net: &dyn Module<T>, rng: &mut tensor::Rng) {
    for (name, p) in net.state() {
        let n = p.len();
        let v = if name.ends_with("running_var") {
            Tensor::rand_uniform(&[n], 0.5, 2.0, rng)
        } else if name.ends_with("running_mean") || name.ends_with(".bias") {
            Tensor::rand_normal(&[n], 0.0, 0.2, rng)
        } else if name.ends_with(".weight") && p.shape().len() == 1 && !name.contains("prelu") {
            Tensor::rand_uniform(&[n], 0.5, 1.5, rng)
        } else {
            continue;
        };
        p.set_value(v.reshape(&p.shape()));
    }
}

impl<T: Element> Module<T> for BatchNorm<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        let shape = x.shape().to_vec();
        assert!(
            (shape.len() == 2 || shape.len() == 4) && shape[1] == self.weight.len(),
            "BatchNorm: input {shape:?} needs [N, {c}] or [N, {c}, H, W]",
            c = self.weight.len()
        );
        let c = shape[1];
        let t = T::from_f64_lossy;
        if self.training.get() {
            // One fused op (autograd's batch_norm_train): no centred or normalised
            // copies are kept for the backward.
            let (y, mean, var) = x.batch_norm_train(&self.weight.var(), &self.bias.var(), self.eps);
            let count = shape.iter().product::<usize>() / c;
            let unbias = count as f64 / (count.max(2) - 1) as f64;
            let m = t(self.momentum);
            let (mean, var) = (
                Tensor::from_vec(&[c], mean).expect("[C]"),
                Tensor::from_vec(&[c], var).expect("[C]"),
            );
            self.running_mean
                .value_mut()
                .scale_add_assign(T::one() - m, &mean, m);
            self.running_var.value_mut().scale_add_assign(
                T::one() - m,
                &var.mul_scalar(t(unbias)),
                m,
            );
            let seen = self.num_batches_tracked.value().item().unwrap_or(T::zero());
            self.num_batches_tracked
                .set_value(Tensor::scalar(seen + T::one()));
            return y;
        }
        if self.folded.get() {
            return x.clone();
        }
        // Evaluation: y = s x + t per channel, s = γ / √(σ² + ε), t = β − s μ,
        // formed on the [C] vectors so the full-size work is one multiply and
        // one add (γ and β stay in the graph).
        let mut bshape = vec![1; shape.len()];
        bshape[1] = c;
        let inv_std = Var::constant(
            self.running_var
                .value()
                .add_scalar(t(self.eps))
                .powf(t(-0.5)),
        );
        let scale = self.weight.var().mul(&inv_std);
        let shift = self
            .bias
            .var()
            .sub(&scale.mul(&Var::constant(self.running_mean.value().clone())));
        x.mul(&scale.reshape(&bshape)).add(&shift.reshape(&bshape))
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        let weight_kind = if self.weight_trainable {
            TensorKind::Parameter
        } else {
            TensorKind::Buffer
        };
        f(join(prefix, "weight"), &self.weight, weight_kind);
        f(join(prefix, "bias"), &self.bias, TensorKind::Parameter);
        f(
            join(prefix, "running_mean"),
            &self.running_mean,
            TensorKind::Buffer,
        );
        f(
            join(prefix, "running_var"),
            &self.running_var,
            TensorKind::Buffer,
        );
        f(
            join(prefix, "num_batches_tracked"),
            &self.num_batches_tracked,
            TensorKind::Counter,
        );
    }
    fn set_training(&self, training: bool) {
        self.training.set(training);
        if training {
            self.folded.set(false);
        }
    }
    fn as_batchnorm(&self) -> Option<&BatchNorm<T>> {
        Some(self)
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        if self.folded.get() {
            return Ok(x.to_string()); // inside the layer before it
        }
        let c = self.weight.len();
        let mut inputs = vec![x.to_string()];
        for (name, p) in [
            ("weight", &self.weight),
            ("bias", &self.bias),
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ] {
            inputs.push(g.constant(&join(prefix, name), &p.value(), &[c]));
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let rank = g.rank(x);
        Ok(g.node(
            "BatchNormalization",
            &inputs,
            &[Attr::Float("epsilon", self.eps as f32)],
            prefix,
            rank,
        ))
    }
}

/// A layer `y = W x + b` whose weight's first axis is the output channel
/// (convolution, linear), into which a following BatchNorm can fold.
pub trait Foldable<T: Element> {
    /// The trained weight and bias.
    fn affine(&self) -> (Tensor<T>, Option<Tensor<T>>);
    /// Set (or clear) the folded weight and bias evaluation runs with.
    fn set_folded(&self, folded: Option<(Tensor<T>, Tensor<T>)>);
}

/// The folded weight and bias a layer runs with in evaluation, once folded.
pub(crate) type FoldedSlot<T> = RefCell<Option<(Tensor<T>, Tensor<T>)>>;

/// The weight and bias a layer evaluates with: the folded ones if folded, else its own.
pub(crate) fn inference_affine<T: Element>(
    slot: &FoldedSlot<T>,
    layer: &dyn Foldable<T>,
) -> (Tensor<T>, Option<Tensor<T>>) {
    match &*slot.borrow() {
        Some((w, b)) => (w.clone(), Some(b.clone())),
        None => layer.affine(),
    }
}
