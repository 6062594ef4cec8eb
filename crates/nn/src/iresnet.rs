//! iResNet-18/34/50/100 as insightface's `arcface_torch` defines them
//! (`backbones/iresnet.py`: ArcFace's "improved" ResNet), with its
//! `state_dict` names, so a checkpoint's `backbone.*` tensors load with
//! `strict=True` into `iresnet18()` ... `iresnet100()` (dropout 0, 512-d
//! features, fp16 off).
//!
//! * Stem: `conv1` (3x3, stride 1, no bias) → `bn1` → `prelu`.
//! * `layer1`..`layer4` (64, 128, 256, 512 channels), each a sequence of
//!   `IBasicBlock`s whose first block has stride 2 and a `downsample`
//!   (`0`: 1x1 stride-2 conv, `1`: BatchNorm2d):
//!   `bn1 → conv1 (3x3) → bn2 → prelu → conv2 (3x3, stride) → bn3`, plus the
//!   (downsampled) input. The block's `bn1` is a pre-activation: it follows
//!   the previous block's sum, not a convolution, so it cannot be folded.
//! * Head: `bn2` (BatchNorm2d over the 512 x 7 x 7 map) → flatten → `fc`
//!   (25,088 → 512, with bias) → `features` (BatchNorm1d whose γ insightface
//!   freezes at 1: saved, never trained). Dropout 0 is the identity and is left out.
//!
//! Initialisation as there: convolutions N(0, 0.1²); BatchNorm γ = 1, β = 0;
//! `fc` PyTorch's default Linear init (weight and bias U(−1/√fan_in, 1/√fan_in));
//! PReLU slopes 0.25. All BatchNorms: eps 1e-5, momentum 0.1.

use crate::batchnorm::BatchNorm;
use crate::init;
use crate::layers::{Conv2d, Linear, PRelu};
use crate::module::{join, Module, Sequential, TensorKind};
use crate::onnx::{ExportResult, OnnxGraph};
use autograd::{Param, Var};
use tensor::{Conv2dParams, Element, Rng, Tensor};

/// Blocks per stage of each depth insightface defines.
pub fn iresnet_layers(depth: usize) -> Result<[usize; 4], String> {
    Ok(match depth {
        18 => [2, 2, 2, 2],
        34 => [3, 4, 6, 3],
        50 => [3, 4, 14, 3],
        100 => [3, 13, 30, 3],
        d => {
            return Err(format!(
                "iResNet-{d} does not exist: depth must be 18, 34, 50 or 100"
            ))
        }
    })
}

/// A bias-free convolution with insightface's N(0, 0.1²) init.
fn conv<T: Element>(i: usize, o: usize, k: usize, stride: usize, rng: &mut Rng) -> Conv2d<T> {
    Conv2d::from_tensors(
        init::gaussian(&[o, i, k, k], 0.1, rng),
        None,
        Conv2dParams::new(stride, k / 2),
    )
}

/// insightface's `IBasicBlock`.
struct BasicBlock<T: Element> {
    bn1: BatchNorm<T>,
    conv1: Conv2d<T>,
    bn2: BatchNorm<T>,
    prelu: PRelu<T>,
    conv2: Conv2d<T>,
    bn3: BatchNorm<T>,
    downsample: Option<Sequential<T>>,
}

impl<T: Element> BasicBlock<T> {
    fn new(inplanes: usize, planes: usize, stride: usize, rng: &mut Rng) -> Self {
        let bn1 = BatchNorm::new(inplanes);
        let conv1 = conv(inplanes, planes, 3, 1, rng);
        let bn2 = BatchNorm::new(planes);
        let prelu = PRelu::new(planes);
        let conv2 = conv(planes, planes, 3, stride, rng);
        let bn3 = BatchNorm::new(planes);
        let downsample = (stride != 1 || inplanes != planes).then(|| {
            Sequential::new()
                .push(conv(inplanes, planes, 1, stride, rng))
                .push(BatchNorm::new(planes))
        });
        BasicBlock {
            bn1,
            conv1,
            bn2,
            prelu,
            conv2,
            bn3,
            downsample,
        }
    }
}

impl<T: Element> Module<T> for BasicBlock<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        let h = self.conv1.forward(&self.bn1.forward(x));
        let h = self.prelu.forward(&self.bn2.forward(&h));
        let h = self.bn3.forward(&self.conv2.forward(&h));
        let identity = match &self.downsample {
            Some(d) => d.forward(x),
            None => x.clone(),
        };
        h.add(&identity)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        self.bn1.visit(&join(prefix, "bn1"), f);
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.bn2.visit(&join(prefix, "bn2"), f);
        self.prelu.visit(&join(prefix, "prelu"), f);
        self.conv2.visit(&join(prefix, "conv2"), f);
        self.bn3.visit(&join(prefix, "bn3"), f);
        if let Some(d) = &self.downsample {
            d.visit(&join(prefix, "downsample"), f);
        }
    }
    fn set_training(&self, training: bool) {
        self.bn1.set_training(training);
        self.conv1.set_training(training);
        self.bn2.set_training(training);
        self.conv2.set_training(training);
        self.bn3.set_training(training);
        if let Some(d) = &self.downsample {
            d.set_training(training);
        }
    }
    fn fold_batchnorm(&self) {
        self.bn2.fold_into(&self.conv1);
        self.bn3.fold_into(&self.conv2);
        if let Some(d) = &self.downsample {
            d.fold_batchnorm();
        }
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        let h = self.bn1.export_onnx(&join(prefix, "bn1"), g, x)?;
        let h = self.conv1.export_onnx(&join(prefix, "conv1"), g, &h)?;
        let h = self.bn2.export_onnx(&join(prefix, "bn2"), g, &h)?;
        let h = self.prelu.export_onnx(&join(prefix, "prelu"), g, &h)?;
        let h = self.conv2.export_onnx(&join(prefix, "conv2"), g, &h)?;
        let h = self.bn3.export_onnx(&join(prefix, "bn3"), g, &h)?;
        let identity = match &self.downsample {
            Some(d) => d.export_onnx(&join(prefix, "downsample"), g, x)?,
            None => x.to_string(),
        };
        Ok(g.node("Add", &[&h, &identity], &[], &join(prefix, "add"), 4))
    }
}

/// iResNet-18/34/50/100 (insightface's `iresnet*`), 3 x 112 x 112 input.
pub struct IResNet<T: Element> {
    conv1: Conv2d<T>,
    bn1: BatchNorm<T>,
    prelu: PRelu<T>,
    stages: Vec<Sequential<T>>,
    bn2: BatchNorm<T>,
    fc: Linear<T>,
    features: BatchNorm<T>,
}

impl<T: Element> IResNet<T> {
    /// iResNet-`depth` (18, 34, 50 or 100) with a `num_features`-d output.
    pub fn new(depth: usize, num_features: usize, rng: &mut Rng) -> Result<Self, String> {
        let layers = iresnet_layers(depth)?;
        let conv1 = conv(3, 64, 3, 1, rng);
        let mut inplanes = 64;
        let stages = [64, 128, 256, 512]
            .iter()
            .zip(layers)
            .map(|(&planes, blocks)| {
                let mut stage = Sequential::new();
                for b in 0..blocks {
                    let stride = if b == 0 { 2 } else { 1 };
                    stage = stage.push(BasicBlock::new(inplanes, planes, stride, rng));
                    inplanes = planes;
                }
                stage
            })
            .collect();
        let fan_in = 512 * 7 * 7;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let fc = Linear::from_tensors(
            Tensor::rand_uniform(&[num_features, fan_in], -bound, bound, rng),
            Some(Tensor::rand_uniform(&[num_features], -bound, bound, rng)),
        );
        let mut features = BatchNorm::new(num_features);
        features.weight_trainable = false;
        Ok(IResNet {
            conv1,
            bn1: BatchNorm::new(64),
            prelu: PRelu::new(64),
            stages,
            bn2: BatchNorm::new(512),
            fc,
            features,
        })
    }
}

impl<T: Element> Module<T> for IResNet<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        let s = x.shape();
        assert!(
            s.len() == 4 && s[1] == 3 && s[2] == 112 && s[3] == 112,
            "iResNet: input {s:?} must be [N, 3, 112, 112] (its fc layer takes a 512 x 7 x 7 map)"
        );
        let h = self
            .prelu
            .forward(&self.bn1.forward(&self.conv1.forward(x)));
        let h = self.stages.iter().fold(h, |h, stage| stage.forward(&h));
        let h = self.bn2.forward(&h);
        let n = h.shape()[0];
        let flat = h.reshape(&[n, 512 * 7 * 7]);
        self.features.forward(&self.fc.forward(&flat))
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.bn1.visit(&join(prefix, "bn1"), f);
        self.prelu.visit(&join(prefix, "prelu"), f);
        for (i, stage) in self.stages.iter().enumerate() {
            stage.visit(&join(prefix, &format!("layer{}", i + 1)), f);
        }
        self.bn2.visit(&join(prefix, "bn2"), f);
        self.fc.visit(&join(prefix, "fc"), f);
        self.features.visit(&join(prefix, "features"), f);
    }
    fn set_training(&self, training: bool) {
        self.conv1.set_training(training);
        self.bn1.set_training(training);
        self.stages.iter().for_each(|s| s.set_training(training));
        self.bn2.set_training(training);
        self.fc.set_training(training);
        self.features.set_training(training);
    }
    fn fold_batchnorm(&self) {
        self.bn1.fold_into(&self.conv1);
        self.stages.iter().for_each(|s| s.fold_batchnorm());
        self.features.fold_into(&self.fc);
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        let h = self.conv1.export_onnx(&join(prefix, "conv1"), g, x)?;
        let h = self.bn1.export_onnx(&join(prefix, "bn1"), g, &h)?;
        let mut h = self.prelu.export_onnx(&join(prefix, "prelu"), g, &h)?;
        for (i, stage) in self.stages.iter().enumerate() {
            h = stage.export_onnx(&join(prefix, &format!("layer{}", i + 1)), g, &h)?;
        }
        let h = self.bn2.export_onnx(&join(prefix, "bn2"), g, &h)?;
        let h = g.flatten(&h, &join(prefix, "flatten"));
        let h = self.fc.export_onnx(&join(prefix, "fc"), g, &h)?;
        self.features.export_onnx(&join(prefix, "features"), g, &h)
    }
}
