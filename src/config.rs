//! A training run's configuration: everything needed to rebuild its model,
//! stored as JSON in every checkpoint's metadata.

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
            ModelKind::Lenetpp => None,
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
    /// λ_r of the exclusive regularizer (0 = off).
    pub exclusive: f64,
    /// Recompute the regularizer's nearest neighbours every this many steps (1 = exact).
    pub exclusive_refresh: u64,
    /// Margin: m of A-Softmax (1..4), CosFace or ArcFace.
    pub margin: f64,
    /// Scale s of CosFace / ArcFace.
    pub scale: f64,
    /// Weight of the center-loss term.
    pub center_weight: f64,
    /// Center update rate α.
    pub center_alpha: f64,
    /// A-Softmax λ schedule: base, γ, power, λ_min.
    pub lambda_base: f64,
    /// γ of the λ schedule.
    pub lambda_gamma: f64,
    /// Power of the λ schedule.
    pub lambda_power: f64,
    /// λ_min of the λ schedule.
    pub lambda_min: f64,
    /// Input (channels, height, width).
    pub input: (usize, usize, usize),
    /// Feature size.
    pub feature_dim: usize,
    /// Training steps.
    pub steps: u64,
    /// Images per batch.
    pub batch: usize,
    /// Base learning rate (SGD).
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Seed of initialisation and batch order.
    pub seed: u64,
    /// Mirror training images at random.
    pub flip: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: ModelKind::Sphereface4,
            loss: LossKind::Asoftmax,
            exclusive: 0.0,
            exclusive_refresh: 1,
            margin: 4.0,
            scale: 30.0,
            center_weight: 0.01,
            center_alpha: 0.5,
            lambda_base: 1000.0,
            lambda_gamma: 0.12,
            lambda_power: 1.0,
            lambda_min: 5.0,
            input: (3, 112, 96),
            feature_dim: 512,
            steps: 1000,
            batch: 32,
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 5e-4,
            seed: 1,
            flip: true,
        }
    }
}

impl TrainConfig {
    /// The A-Softmax λ schedule of this run (counter at 0).
    pub fn lambda_schedule(&self) -> LambdaSchedule {
        LambdaSchedule {
            base: self.lambda_base,
            gamma: self.lambda_gamma,
            power: self.lambda_power,
            lambda_min: self.lambda_min,
            iteration: 0,
        }
    }

    /// Check the values that a flag can get wrong; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.exclusive < 0.0 || !self.exclusive.is_finite() {
            return Err(format!(
                "--exclusive {} must be a non-negative number (0 turns the regularizer off)",
                self.exclusive
            ));
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
                "--margin {} is out of range for {:?} (0 to 1.5)",
                self.margin, self.loss
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
        Ok(())
    }
}
