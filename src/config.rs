//! A training run's configuration: everything needed to rebuild its model,
//! stored as JSON in every checkpoint's metadata.
//!
//! [`TrainConfig::DEFAULT`] is the one source of defaults: the command line's
//! flag defaults are read from it, and so is every run the application builds
//! (compare, ablation, bench) before it changes the fields it is about.

use clap::ValueEnum;
use facelosses::LambdaSchedule;
use serde::{Deserialize, Serialize};

/// Backbone network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// SphereFace-4.
    Sphereface4,
    /// SphereFace-10.
    Sphereface10,
    /// SphereFace-20.
    Sphereface20,
    /// SphereFace-36.
    Sphereface36,
    /// SphereFace-64.
    Sphereface64,
    /// LeNet++ (the center-loss paper's toy).
    Lenetpp,
    /// MobileFaceNet, insightface's `get_mbf` (3 x 112 x 112 input).
    Mobilefacenet,
    /// iResNet-18, insightface's `iresnet18` (3 x 112 x 112 input).
    Iresnet18,
    /// iResNet-34, insightface's `iresnet34` (3 x 112 x 112 input).
    Iresnet34,
    /// iResNet-50, insightface's `iresnet50` (3 x 112 x 112 input).
    Iresnet50,
    /// iResNet-100, insightface's `iresnet100` (3 x 112 x 112 input).
    Iresnet100,
}

impl ModelKind {
    /// Depth of a SphereFace kind.
    pub fn sphereface_depth(self) -> Option<usize> {
        match self {
            ModelKind::Sphereface4 => Some(4),
            ModelKind::Sphereface10 => Some(10),
            ModelKind::Sphereface20 => Some(20),
            ModelKind::Sphereface36 => Some(36),
            ModelKind::Sphereface64 => Some(64),
            _ => None,
        }
    }

    /// Depth of an iResNet kind.
    pub fn iresnet_depth(self) -> Option<usize> {
        match self {
            ModelKind::Iresnet18 => Some(18),
            ModelKind::Iresnet34 => Some(34),
            ModelKind::Iresnet50 => Some(50),
            ModelKind::Iresnet100 => Some(100),
            _ => None,
        }
    }

    /// Whether this is one of insightface's backbones (MobileFaceNet, iResNet),
    /// trained with insightface's recipe details (weight decay on every parameter).
    pub fn is_insightface(self) -> bool {
        self == ModelKind::Mobilefacenet || self.iresnet_depth().is_some()
    }

    /// The input a model of this kind takes unless told otherwise: insightface's
    /// 3 x 112 x 112 for its backbones, the run default for the others.
    pub const fn default_input(self) -> (usize, usize, usize) {
        match self.fixed_input() {
            Some(input) => input,
            None => TrainConfig::DEFAULT.input,
        }
    }

    /// The one input size this kind accepts, when it accepts only one.
    pub const fn fixed_input(self) -> Option<(usize, usize, usize)> {
        match self {
            ModelKind::Mobilefacenet
            | ModelKind::Iresnet18
            | ModelKind::Iresnet34
            | ModelKind::Iresnet50
            | ModelKind::Iresnet100 => Some((3, 112, 112)),
            _ => None,
        }
    }
}

/// Main training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Softmax cross-entropy over a linear classifier.
    Softmax,
    /// Softmax plus center loss.
    Center,
    /// SphereFace's A-Softmax.
    Asoftmax,
    /// CosFace.
    Cosface,
    /// ArcFace.
    Arcface,
}

impl LossKind {
    /// The margin a run of this loss uses unless told otherwise: A-Softmax's
    /// m = 4 (SphereFace), CosFace's 0.35 and ArcFace's 0.5 (their papers).
    /// Softmax and center loss have none; 4 is stored and ignored.
    pub const fn default_margin(self) -> f64 {
        match self {
            LossKind::Cosface => 0.35,
            LossKind::Arcface => 0.5,
            LossKind::Softmax | LossKind::Center | LossKind::Asoftmax => 4.0,
        }
    }

    /// Lower-case name, as on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            LossKind::Softmax => "softmax",
            LossKind::Center => "center",
            LossKind::Asoftmax => "asoftmax",
            LossKind::Cosface => "cosface",
            LossKind::Arcface => "arcface",
        }
    }
}

/// Largest feature size accepted (also bounds what a checkpoint's config may ask for).
pub const MAX_FEATURE_DIM: usize = 1 << 16;
/// Largest input side accepted.
pub const MAX_SIDE: usize = 4096;

/// Everything that defines a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Backbone.
    pub model: ModelKind,
    /// Main loss.
    pub loss: LossKind,
    /// λ_r, the weight of the exclusive regularizer (0 = off). Checkpoints written
    /// before this field was renamed call it `exclusive`.
    #[serde(alias = "exclusive")]
    pub lambda_r: f64,
    /// Search the regularizer's nearest neighbours every this many steps (1 = exact).
    pub exclusive_refresh: u64,
    /// Margin: m of A-Softmax (1..4), CosFace or ArcFace.
    pub margin: f64,
    /// Scale s of CosFace / ArcFace.
    pub scale: f64,
    /// Weight of the center-loss term.
    pub center_weight: f64,
    /// Center update rate α.
    pub center_alpha: f64,
    /// A-Softmax's λ annealing.
    pub lambda_schedule: LambdaSchedule,
    /// Input (channels, height, width).
    pub input: (usize, usize, usize),
    /// Feature size.
    pub feature_dim: usize,
    /// Training steps.
    pub steps: u64,
    /// Images per batch.
    pub batch: usize,
    /// Base learning rate (SGD; divided by 10 at 16/28 and 24/28 of the run).
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay (not on biases and PReLU slopes).
    pub weight_decay: f64,
    /// Seed of initialisation and batch order.
    pub seed: u64,
    /// Mirror training images at random.
    pub flip: bool,
}

impl TrainConfig {
    /// SphereFace's recipe scaled to a laptop: SphereFace-4 on 3x56x48, A-Softmax
    /// m = 4 with SphereFace's λ annealing, SGD momentum 0.9, weight decay 5e-4,
    /// 600 steps of 32. The learning rate is 0.05, not SphereFace's 0.1: that
    /// rate is for batches of 256, and at batch 32 it diverged within 250 steps.
    pub const DEFAULT: TrainConfig = TrainConfig {
        model: ModelKind::Sphereface4,
        loss: LossKind::Asoftmax,
        lambda_r: 0.0,
        exclusive_refresh: 1,
        margin: LossKind::Asoftmax.default_margin(),
        scale: 30.0,
        center_weight: 0.01,
        center_alpha: 0.5,
        lambda_schedule: LambdaSchedule::SPHEREFACE,
        input: (3, 56, 48),
        feature_dim: 512,
        steps: 600,
        batch: 32,
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
        seed: 1,
        flip: true,
    };

    /// This configuration with another main loss and that loss's default margin.
    pub fn with_loss(&self, loss: LossKind) -> TrainConfig {
        TrainConfig {
            loss,
            margin: loss.default_margin(),
            ..self.clone()
        }
    }

    /// Parse a configuration from a checkpoint's JSON. Configurations written
    /// before the λ schedule became one field (flat `lambda_base`,
    /// `lambda_gamma`, `lambda_power`, `lambda_min`) are read too.
    pub fn from_json(text: &str) -> Result<TrainConfig, String> {
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if let Some(obj) = value.as_object_mut() {
            if !obj.contains_key("lambda_schedule") && obj.contains_key("lambda_base") {
                let mut schedule = serde_json::Map::new();
                for (old, new) in [
                    ("lambda_base", "base"),
                    ("lambda_gamma", "gamma"),
                    ("lambda_power", "power"),
                    ("lambda_min", "lambda_min"),
                ] {
                    if let Some(v) = obj.remove(old) {
                        schedule.insert(new.into(), v);
                    }
                }
                obj.insert("lambda_schedule".into(), schedule.into());
            }
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// Check the values that a flag can get wrong; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.lambda_r < 0.0 || !self.lambda_r.is_finite() {
            return Err(format!(
                "--exclusive {} must be a non-negative number (0 turns the regularizer off)",
                self.lambda_r
            ));
        }
        if self.exclusive_refresh == 0 {
            return Err("--exclusive-refresh must be at least 1 (1 = exact)".into());
        }
        if self.loss == LossKind::Asoftmax
            && !(self.margin >= 1.0 && self.margin <= 4.0 && self.margin.fract() == 0.0)
        {
            return Err(format!(
                "--margin {} is not valid for A-Softmax: choose 1, 2, 3 or 4",
                self.margin
            ));
        }
        if matches!(self.loss, LossKind::Cosface | LossKind::Arcface)
            && !(0.0..=1.5).contains(&self.margin)
        {
            return Err(format!(
                "--margin {} is out of range for {} (0 to 1.5)",
                self.margin,
                self.loss.name()
            ));
        }
        if self.batch < 2 {
            return Err(format!("--batch {} must be at least 2", self.batch));
        }
        if self.steps == 0 {
            return Err("--steps must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("--lr {} must be a positive number", self.lr));
        }
        if self.feature_dim == 0 || self.feature_dim > MAX_FEATURE_DIM {
            return Err(format!(
                "--feature-dim {} must be between 1 and {MAX_FEATURE_DIM}",
                self.feature_dim
            ));
        }
        let (_, h, w) = self.input;
        if !(8..=MAX_SIDE).contains(&h) || !(8..=MAX_SIDE).contains(&w) {
            return Err(format!(
                "--height {h} and --width {w} must be between 8 and {MAX_SIDE}"
            ));
        }
        if self.input.0 != 1 && self.input.0 != 3 {
            return Err(format!("--channels {} must be 1 or 3", self.input.0));
        }
        if let Some((c, h, w)) = self.model.fixed_input().filter(|&i| i != self.input) {
            return Err(format!(
                "--model {} takes {c}x{h}x{w} input (--channels {c} --height {h} --width {w}), not {}x{}x{}",
                format!("{:?}", self.model).to_lowercase(),
                self.input.0,
                self.input.1,
                self.input.2
            ));
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig::DEFAULT
    }
}
