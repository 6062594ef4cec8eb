//! LeNet++, the toy network of the center-loss paper (Wen et al. 2016), used for
//! the 2-d / 3-d feature pictures on MNIST.

use crate::layers::MaxPool2d;
use crate::layers::{Conv2d, Linear, PRelu};
use crate::module::{join, Module, TensorKind};
use crate::onnx::{ExportResult, OnnxGraph};
use autograd::{Param, Var};
use tensor::{Element, Pool2dParams, Rng};

/// Three pairs of 5x5 convolutions (32, 32 / 64, 64 / 128, 128 channels, padding
/// 2) with PReLU, a 2x2 stride-2 max-pool after each pair (floor mode: 28 → 14 →
/// 7 → 3), then a linear layer to a 2-d or 3-d feature followed by PReLU.
pub struct LeNetPlusPlus<T: Element> {
    convs: Vec<(Conv2d<T>, PRelu<T>)>,
    fc: Linear<T>,
    prelu_fc: PRelu<T>,
    in_channels: usize,
    input_hw: (usize, usize),
}

impl<T: Element> LeNetPlusPlus<T> {
    /// LeNet++ for `in_channels x h x w` input and a `feature_dim`-d feature, Xavier-initialised.
    pub fn new(
        in_channels: usize,
        input_hw: (usize, usize),
        feature_dim: usize,
        rng: &mut Rng,
    ) -> Self {
        let chans = [32, 32, 64, 64, 128, 128];
        let mut prev = in_channels;
        let convs = chans
            .iter()
            .map(|&c| {
                let layer = (Conv2d::xavier(prev, c, 5, 1, 2, true, rng), PRelu::new(c));
                prev = c;
                layer
            })
            .collect();
        let (h, w) = (0..3).fold(input_hw, |(h, w), _| (h / 2, w / 2));
        LeNetPlusPlus {
            convs,
            fc: Linear::xavier(128 * h * w, feature_dim, true, rng),
            prelu_fc: PRelu::new(feature_dim),
            in_channels,
            input_hw,
        }
    }
}

impl<T: Element> Module<T> for LeNetPlusPlus<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        let want = [self.in_channels, self.input_hw.0, self.input_hw.1];
        assert!(
            x.shape().len() == 4 && x.shape()[1..] == want,
            "LeNet++: input {:?} must be [N, {}, {}, {}]",
            x.shape(),
            want[0],
            want[1],
            want[2]
        );
        let mut h = x.clone();
        for (i, (conv, prelu)) in self.convs.iter().enumerate() {
            h = prelu.forward(&conv.forward(&h));
            if i % 2 == 1 {
                h = h.max_pool2d(Pool2dParams::new(2, 2, 0));
            }
        }
        let n = h.shape()[0];
        let flat = h.shape()[1..].iter().product();
        self.prelu_fc
            .forward(&self.fc.forward(&h.reshape(&[n, flat])))
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        for (i, (conv, prelu)) in self.convs.iter().enumerate() {
            let (stage, k) = (i / 2 + 1, i % 2 + 1);
            conv.visit(&join(prefix, &format!("conv{stage}_{k}")), f);
            prelu.visit(&join(prefix, &format!("prelu{stage}_{k}")), f);
        }
        self.fc.visit(&join(prefix, "fc"), f);
        self.prelu_fc.visit(&join(prefix, "prelu_fc"), f);
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        let mut h = x.to_string();
        for (i, (conv, prelu)) in self.convs.iter().enumerate() {
            let (stage, k) = (i / 2 + 1, i % 2 + 1);
            h = conv.export_onnx(&join(prefix, &format!("conv{stage}_{k}")), g, &h)?;
            h = prelu.export_onnx(&join(prefix, &format!("prelu{stage}_{k}")), g, &h)?;
            if i % 2 == 1 {
                let pool = MaxPool2d(Pool2dParams::new(2, 2, 0));
                h = Module::<T>::export_onnx(&pool, &join(prefix, &format!("pool{stage}")), g, &h)?;
            }
        }
        let h = g.flatten(&h, &join(prefix, "flatten"));
        let h = self.fc.export_onnx(&join(prefix, "fc"), g, &h)?;
        self.prelu_fc.export_onnx(&join(prefix, "prelu_fc"), g, &h)
    }
}
