//! MobileFaceNet as insightface's `arcface_torch` defines it (`get_mbf`:
//! blocks (1, 4, 6, 2), scale 2, a GDC head), with its state-dict names, so
//! that a checkpoint's `backbone.*` tensors are that module's `state_dict`.
//!
//! Blocks (insightface's names in brackets): `ConvBlock` = conv (no bias) +
//! BatchNorm2d + PReLU; `LinearBlock` = conv + BatchNorm2d; `DepthWise` = a
//! 1x1 ConvBlock to `groups` channels, a depthwise ConvBlock (stride 1 or 2),
//! a 1x1 LinearBlock to the output, plus the input when residual; `Residual`
//! = DepthWise blocks with shortcuts; `GDC` = a 7x7 depthwise LinearBlock over
//! the final 7x7 map, flatten, a linear layer without bias and BatchNorm1d.
//! Each block keeps its modules under `layers`, as there. The network needs a
//! 3 x 112 x 112 input (the GDC kernel covers the final 7x7 map exactly).
//! Initialisation as insightface's: convolutions and the linear layer
//! Kaiming-normal with fan-out (σ = √(2 / fan_out)), BatchNorm γ = 1, β = 0,
//! PReLU slopes 0.25.

use crate::batchnorm::BatchNorm;
use crate::init::kaiming_normal_fan_out;
use crate::layers::{Conv2d, Flatten, Linear, PRelu};
use crate::module::{join, Module, Sequential, TensorKind};
use crate::onnx::{ExportResult, OnnxGraph};
use autograd::{Param, Var};
use tensor::{Conv2dParams, Element, Rng};

/// A block whose modules are named `layers.<i>`, optionally with a shortcut.
struct Block<T: Element> {
    layers: Sequential<T>,
    residual: bool,
}

impl<T: Element> Block<T> {
    /// A block without a shortcut.
    fn plain(layers: Sequential<T>) -> Self {
        Block {
            layers,
            residual: false,
        }
    }
}

impl<T: Element> Module<T> for Block<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        let y = self.layers.forward(x);
        if self.residual {
            x.add(&y)
        } else {
            y
        }
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        self.layers.visit(&join(prefix, "layers"), f);
    }
    fn set_training(&self, training: bool) {
        self.layers.set_training(training);
    }
    fn fold_batchnorm(&self) {
        self.layers.fold_batchnorm();
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        let y = self.layers.export_onnx(&join(prefix, "layers"), g, x)?;
        if self.residual {
            Ok(g.node("Add", &[x, &y], &[], &join(prefix, "add"), 4))
        } else {
            Ok(y)
        }
    }
}

/// A convolution (no bias, `groups` groups, Kaiming fan-out init) and its BatchNorm2d.
fn conv_bn<T: Element>(
    i: usize,
    o: usize,
    k: usize,
    s: usize,
    p: usize,
    groups: usize,
    rng: &mut Rng,
) -> Sequential<T> {
    let mut conv = Conv2d::from_tensors(
        kaiming_normal_fan_out(&[o, i / groups, k, k], rng),
        None,
        Conv2dParams::new(s, p),
    );
    conv.groups = groups;
    Sequential::new().push(conv).push(BatchNorm::new(o))
}

/// insightface's `ConvBlock`: conv + BatchNorm2d + PReLU.
fn conv_block<T: Element>(
    i: usize,
    o: usize,
    k: usize,
    s: usize,
    p: usize,
    groups: usize,
    rng: &mut Rng,
) -> Block<T> {
    Block::plain(conv_bn(i, o, k, s, p, groups, rng).push(PRelu::new(o)))
}

/// insightface's `LinearBlock`: conv + BatchNorm2d (stride 1, no padding, as used here).
fn linear_block<T: Element>(
    i: usize,
    o: usize,
    k: usize,
    groups: usize,
    rng: &mut Rng,
) -> Block<T> {
    Block::plain(conv_bn(i, o, k, 1, 0, groups, rng))
}

/// insightface's `DepthWise(in_c, out_c, residual, 3x3, stride, padding 1, groups)`.
fn depth_wise<T: Element>(
    i: usize,
    o: usize,
    residual: bool,
    stride: usize,
    groups: usize,
    rng: &mut Rng,
) -> Block<T> {
    let layers = Sequential::new()
        .push(conv_block(i, groups, 1, 1, 0, 1, rng))
        .push(conv_block(groups, groups, 3, stride, 1, groups, rng))
        .push(linear_block(groups, o, 1, 1, rng));
    Block { layers, residual }
}

/// insightface's `Residual(c, num_block, groups)`: stride-1 DepthWise blocks with shortcuts.
fn residual<T: Element>(c: usize, blocks: usize, groups: usize, rng: &mut Rng) -> Block<T> {
    let layers = (0..blocks).fold(Sequential::new(), |s, _| {
        s.push(depth_wise(c, c, true, 1, groups, rng))
    });
    Block::plain(layers)
}

/// MobileFaceNet (insightface's `get_mbf(fp16=False, num_features)`).
pub struct MobileFaceNet<T: Element> {
    layers: Sequential<T>,
    conv_sep: Block<T>,
    features: Block<T>,
}

impl<T: Element> MobileFaceNet<T> {
    /// The network for 3 x 112 x 112 input and `num_features`-d output.
    pub fn new(num_features: usize, rng: &mut Rng) -> Self {
        let s = 2; // insightface's scale
        let layers = Sequential::new()
            .push(conv_block(3, 64 * s, 3, 2, 1, 1, rng))
            .push(conv_block(64 * s, 64 * s, 3, 1, 1, 64, rng))
            .push(depth_wise(64 * s, 64 * s, false, 2, 128, rng))
            .push(residual(64 * s, 4, 128, rng))
            .push(depth_wise(64 * s, 128 * s, false, 2, 256, rng))
            .push(residual(128 * s, 6, 256, rng))
            .push(depth_wise(128 * s, 128 * s, false, 2, 512, rng))
            .push(residual(128 * s, 2, 256, rng));
        let conv_sep = conv_block(128 * s, 512, 1, 1, 0, 1, rng);
        let gdc = Sequential::new()
            .push(linear_block(512, 512, 7, 512, rng))
            .push(Flatten)
            .push(Linear::from_tensors(
                kaiming_normal_fan_out(&[num_features, 512], rng),
                None,
            ))
            .push(BatchNorm::new(num_features));
        MobileFaceNet {
            layers,
            conv_sep,
            features: Block::plain(gdc),
        }
    }
}

impl<T: Element> Module<T> for MobileFaceNet<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        let s = x.shape();
        assert!(
            s.len() == 4 && s[1] == 3 && s[2] == 112 && s[3] == 112,
            "MobileFaceNet: input {s:?} must be [N, 3, 112, 112] (its GDC head covers a 7x7 map)"
        );
        self.features
            .forward(&self.conv_sep.forward(&self.layers.forward(x)))
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        self.layers.visit(&join(prefix, "layers"), f);
        self.conv_sep.visit(&join(prefix, "conv_sep"), f);
        self.features.visit(&join(prefix, "features"), f);
    }
    fn set_training(&self, training: bool) {
        self.layers.set_training(training);
        self.conv_sep.set_training(training);
        self.features.set_training(training);
    }
    fn fold_batchnorm(&self) {
        self.layers.fold_batchnorm();
        self.conv_sep.fold_batchnorm();
        self.features.fold_batchnorm();
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        let h = self.layers.export_onnx(&join(prefix, "layers"), g, x)?;
        let h = self
            .conv_sep
            .export_onnx(&join(prefix, "conv_sep"), g, &h)?;
        self.features.export_onnx(&join(prefix, "features"), g, &h)
    }
}
