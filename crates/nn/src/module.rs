//! The `Module` trait and the `Sequential` container.

use crate::batchnorm::{BatchNorm, Foldable};
use crate::onnx::{ExportResult, OnnxGraph};
use autograd::{Param, Var};
use tensor::Element;

/// Whether a named tensor is trained or only tracked (BatchNorm's running statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorKind {
    /// Trained by the optimiser.
    Parameter,
    /// Saved and loaded, never trained.
    Buffer,
    /// An integer count saved as an int64 scalar (BatchNorm's `num_batches_tracked`),
    /// held here as a scalar `T`: exact up to 2^24 in f32.
    Counter,
}

/// A layer or network.
pub trait Module<T: Element> {
    /// The forward pass.
    fn forward(&self, x: &Var<T>) -> Var<T>;

    /// Call `f` on every named tensor, names prefixed with `prefix` (dotted).
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind));

    /// Switch between training and evaluation behaviour (dropout, batch norm).
    fn set_training(&self, _training: bool) {}

    /// For inference, after `set_training(false)`: fold every BatchNorm that
    /// directly follows a convolution or linear layer into it (see
    /// `batchnorm`); the outputs stay the same up to rounding.
    fn fold_batchnorm(&self) {}

    /// Append this layer's inference graph to `g`, reading the value `x`;
    /// returns the name of its output (see `onnx`). Call it in evaluation
    /// mode, after [`Module::fold_batchnorm`].
    fn export_onnx(&self, prefix: &str, _g: &mut OnnxGraph, _x: &str) -> ExportResult {
        Err(format!("`{prefix}`: this layer has no ONNX form"))
    }

    /// This layer as a layer a following BatchNorm can fold into, if it is one.
    fn as_foldable(&self) -> Option<&dyn Foldable<T>> {
        None
    }

    /// This layer as a BatchNorm, if it is one.
    fn as_batchnorm(&self) -> Option<&BatchNorm<T>> {
        None
    }

    /// Trainable parameters with their dotted names, in a fixed order.
    fn parameters(&self) -> Vec<(String, Param<T>)> {
        let mut out = vec![];
        self.visit("", &mut |name, p, kind| {
            if kind == TensorKind::Parameter {
                out.push((name, p.clone()));
            }
        });
        out
    }

    /// Every named tensor, parameters, buffers and counters (what a checkpoint holds).
    fn state(&self) -> Vec<(String, Param<T>)> {
        self.state_with_kinds()
            .into_iter()
            .map(|(name, p, _)| (name, p))
            .collect()
    }

    /// [`Module::state`] with each tensor's kind.
    fn state_with_kinds(&self) -> Vec<(String, Param<T>, TensorKind)> {
        let mut out = vec![];
        self.visit("", &mut |name, p, kind| out.push((name, p.clone(), kind)));
        out
    }

    /// Number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|(_, p)| p.len()).sum()
    }

    /// Zero every parameter's gradient.
    fn zero_grad(&self) {
        self.parameters().iter().for_each(|(_, p)| p.zero_grad());
    }
}

/// Join a prefix and a name with a dot (no dot after an empty prefix).
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Modules applied in order; children are named by their index (`0`, `1`, ...)
/// unless given a name.
#[derive(Default)]
pub struct Sequential<T: Element> {
    layers: Vec<(String, Box<dyn Module<T>>)>,
}

impl<T: Element> Sequential<T> {
    /// An empty sequence.
    pub fn new() -> Self {
        Sequential { layers: vec![] }
    }

    /// Append a layer named by its position.
    pub fn push(mut self, layer: impl Module<T> + 'static) -> Self {
        let name = self.layers.len().to_string();
        self.layers.push((name, Box::new(layer)));
        self
    }

    /// Append a layer under a given name.
    pub fn push_named(mut self, name: &str, layer: impl Module<T> + 'static) -> Self {
        self.layers.push((name.to_string(), Box::new(layer)));
        self
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl<T: Element> Module<T> for Sequential<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        self.layers
            .iter()
            .fold(x.clone(), |h, (_, l)| l.forward(&h))
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        for (name, l) in &self.layers {
            l.visit(&join(prefix, name), f);
        }
    }
    fn set_training(&self, training: bool) {
        self.layers
            .iter()
            .for_each(|(_, l)| l.set_training(training));
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        self.layers.iter().try_fold(x.to_string(), |h, (name, l)| {
            l.export_onnx(&join(prefix, name), g, &h)
        })
    }
    fn fold_batchnorm(&self) {
        for pair in self.layers.windows(2) {
            if let (Some(layer), Some(bn)) = (pair[0].1.as_foldable(), pair[1].1.as_batchnorm()) {
                bn.fold_into(layer);
            }
        }
        self.layers.iter().for_each(|(_, l)| l.fold_batchnorm());
    }
}
