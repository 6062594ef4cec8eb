//! SphereFace-4/10/20/36/64 (Liu et al. 2017), the backbone of RegularFace's experiments.

use crate::init;
use crate::layers::{Conv2d, Linear, PRelu, ResidualUnit};
use crate::module::{join, Module, TensorKind};
use crate::onnx::{ExportResult, OnnxGraph};
use autograd::{Param, Var};
use tensor::{Conv2dParams, Element, Rng, Tensor};

/// Channels of the four stages.
pub const STAGE_CHANNELS: [usize; 4] = [64, 128, 256, 512];

/// Architecture choices of a SphereFace network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SphereFaceConfig {
    /// 4, 10, 20, 36 or 64.
    pub depth: usize,
    /// Input channels (3 for RGB, 1 for grey).
    pub in_channels: usize,
    /// Input height and width (112 x 96 in the papers).
    pub input_hw: (usize, usize),
    /// Size of the embedding produced by fc5.
    pub feature_dim: usize,
}

impl SphereFaceConfig {
    /// SphereFace-`depth` on 3 x 112 x 96 input with a 512-d feature.
    pub fn new(depth: usize) -> Self {
        SphereFaceConfig {
            depth,
            in_channels: 3,
            input_hw: (112, 96),
            feature_dim: 512,
        }
    }

    /// Residual units per stage, or an error naming the supported depths.
    pub fn units(&self) -> Result<[usize; 4], String> {
        Ok(match self.depth {
            4 => [0, 0, 0, 0],
            10 => [0, 1, 2, 0],
            20 => [1, 2, 4, 1],
            36 => [2, 4, 8, 2],
            64 => [3, 8, 16, 3],
            d => {
                return Err(format!(
                    "SphereFace-{d} does not exist: depth must be 4, 10, 20, 36 or 64"
                ))
            }
        })
    }

    /// Spatial size after the four stride-2 stages.
    pub fn final_hw(&self) -> (usize, usize) {
        (0..4).fold(self.input_hw, |(h, w), _| {
            ((h - 1) / 2 + 1, (w - 1) / 2 + 1)
        })
    }
}

/// One stage: a 3x3 stride-2 convolution with PReLU, then residual units.
struct Stage<T: Element> {
    conv: Conv2d<T>,
    prelu: PRelu<T>,
    units: Vec<ResidualUnit<T>>,
}

/// A SphereFace network from image to feature (the classifier lives in the loss).
pub struct SphereFace<T: Element> {
    /// Its configuration.
    pub config: SphereFaceConfig,
    stages: Vec<Stage<T>>,
    fc5: Linear<T>,
}

impl<T: Element> SphereFace<T> {
    /// A network with SphereFace's initialisation: Xavier for the stride-2 convs
    /// and fc5 (zero biases), Gaussian σ = 0.01 with zero bias for the residual convs.
    pub fn new(config: SphereFaceConfig, rng: &mut Rng) -> Result<Self, String> {
        let units = config.units()?;
        if config.input_hw.0 < 16 || config.input_hw.1 < 16 || config.in_channels == 0 {
            return Err(format!(
                "SphereFace: input {}x{}x{} too small (at least 1x16x16)",
                config.in_channels, config.input_hw.0, config.input_hw.1
            ));
        }
        let mut in_ch = config.in_channels;
        let mut stages = vec![];
        for (s, &ch) in STAGE_CHANNELS.iter().enumerate() {
            let conv = Conv2d::from_tensors(
                init::xavier_uniform(&[ch, in_ch, 3, 3], rng),
                Some(Tensor::zeros(&[ch])),
                Conv2dParams::new(2, 1),
            );
            let units = (0..units[s]).map(|_| ResidualUnit::new(ch, rng)).collect();
            stages.push(Stage {
                conv,
                prelu: PRelu::new(ch),
                units,
            });
            in_ch = ch;
        }
        let (h, w) = config.final_hw();
        let fc5 = Linear::xavier(512 * h * w, config.feature_dim, true, rng);
        Ok(SphereFace {
            config,
            stages,
            fc5,
        })
    }
}

impl<T: Element> Module<T> for SphereFace<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        let c = &self.config;
        let want = [c.in_channels, c.input_hw.0, c.input_hw.1];
        assert!(
            x.shape().len() == 4 && x.shape()[1..] == want,
            "SphereFace-{}: input {:?} must be [N, {}, {}, {}]",
            c.depth,
            x.shape(),
            want[0],
            want[1],
            want[2]
        );
        let mut h = x.clone();
        for st in &self.stages {
            h = st.prelu.forward(&st.conv.forward(&h));
            for u in &st.units {
                h = u.forward(&h);
            }
        }
        let n = h.shape()[0];
        let flat = h.shape()[1..].iter().product();
        self.fc5.forward(&h.reshape(&[n, flat]))
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        for (s, st) in self.stages.iter().enumerate() {
            let sp = join(prefix, &format!("stage{}", s + 1));
            st.conv.visit(&join(&sp, "conv"), f);
            st.prelu.visit(&join(&sp, "prelu"), f);
            for (u, unit) in st.units.iter().enumerate() {
                unit.visit(&join(&sp, &format!("unit{u}")), f);
            }
        }
        self.fc5.visit(&join(prefix, "fc5"), f);
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        let mut h = x.to_string();
        for (s, st) in self.stages.iter().enumerate() {
            let sp = join(prefix, &format!("stage{}", s + 1));
            h = st.conv.export_onnx(&join(&sp, "conv"), g, &h)?;
            h = st.prelu.export_onnx(&join(&sp, "prelu"), g, &h)?;
            for (u, unit) in st.units.iter().enumerate() {
                h = unit.export_onnx(&join(&sp, &format!("unit{u}")), g, &h)?;
            }
        }
        let h = g.flatten(&h, &join(prefix, "flatten"));
        self.fc5.export_onnx(&join(prefix, "fc5"), g, &h)
    }
}
