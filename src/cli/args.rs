//! Flag groups several commands share: where the data comes from, and what
//! to train. Every default is read from [`TrainConfig::DEFAULT`].

use clap::Args;
use regularface::config::{LossKind, ModelKind, TrainConfig};
use regularface::data::source::DataSpec;
use std::path::PathBuf;

const D: TrainConfig = TrainConfig::DEFAULT;

/// Where training images and verification pairs come from.
#[derive(Args, Clone)]
pub struct DataArgs {
    /// Image folder with one sub-folder per identity (default: the synthetic generator).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// LFW folder with pairs.txt and people.txt (unrestricted, no outside data).
    #[arg(long, conflicts_with = "data")]
    pub lfw: Option<PathBuf>,
    /// Held-out LFW fold (0-9).
    #[arg(long, default_value_t = 0)]
    pub fold: usize,
    /// MNIST folder (IDX files, raw or gzip).
    #[arg(long, conflicts_with_all = ["data", "lfw"])]
    pub mnist: Option<PathBuf>,
    /// insightface RecordIO pack folder (train.rec, train.idx, property), streamed from disk.
    #[arg(long, conflicts_with_all = ["data", "lfw", "mnist"], requires = "rec_pairs")]
    pub rec: Option<PathBuf>,
    /// With --rec: the .bin verification set (e.g. lfw.bin) whose pairs the run is verified on.
    #[arg(long, requires = "rec")]
    pub rec_pairs: Option<PathBuf>,
    /// Synthetic: training identities.
    #[arg(long, default_value_t = 100)]
    pub identities: usize,
    /// Synthetic: images per identity.
    #[arg(long, default_value_t = 16)]
    pub images_per_identity: usize,
    /// Synthetic: identities held out for verification pairs.
    #[arg(long, default_value_t = 60)]
    pub test_identities: usize,
    /// Synthetic: generator seed.
    #[arg(long, default_value_t = 1)]
    pub data_seed: u64,
}

impl DataArgs {
    /// The data source these flags name.
    pub fn spec(&self) -> DataSpec {
        if let Some(root) = &self.lfw {
            DataSpec::Lfw {
                root: root.clone(),
                fold: self.fold,
            }
        } else if let Some(root) = &self.data {
            DataSpec::Folder { root: root.clone() }
        } else if let Some(root) = &self.mnist {
            DataSpec::Mnist { root: root.clone() }
        } else if let (Some(root), Some(verify)) = (&self.rec, &self.rec_pairs) {
            DataSpec::Rec {
                root: root.clone(),
                verify: verify.clone(),
            }
        } else {
            DataSpec::Synthetic {
                identities: self.identities,
                images_per_identity: self.images_per_identity,
                test_identities: self.test_identities,
                seed: self.data_seed,
            }
        }
    }
}

/// What to train: backbone, loss, regularizer, schedule and input.
#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Backbone.
    #[arg(long, value_enum, default_value_t = D.model)]
    pub model: ModelKind,
    /// Main loss.
    #[arg(long, value_enum, default_value_t = D.loss)]
    pub loss: LossKind,
    /// λ_r of the exclusive regularizer (0 = off).
    #[arg(long = "exclusive", default_value_t = D.lambda_r)]
    pub lambda_r: f64,
    /// Search the regularizer's nearest neighbours every k steps (1 = exact; k > 1 is an
    /// approximation that holds the neighbours fixed in between).
    #[arg(long, default_value_t = D.exclusive_refresh)]
    pub exclusive_refresh: u64,
    /// Margin (A-Softmax m in 1..4; CosFace / ArcFace m). Default: the loss's own (4, 0.35, 0.5).
    #[arg(long)]
    pub margin: Option<f64>,
    /// Scale s of CosFace / ArcFace.
    #[arg(long, default_value_t = D.scale)]
    pub scale: f64,
    /// Weight of the center-loss term.
    #[arg(long, default_value_t = D.center_weight)]
    pub center_weight: f64,
    /// Training steps.
    #[arg(long, default_value_t = D.steps)]
    pub steps: u64,
    /// Images per batch.
    #[arg(long, default_value_t = D.batch)]
    pub batch: usize,
    /// Base learning rate (SGD; drops 10x at 16/28 and 24/28 of the run). SphereFace's 0.1 is
    /// for batches of 256; at batch 32 it diverges within a few hundred steps, 0.05 does not.
    #[arg(long, default_value_t = D.lr)]
    pub lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = D.momentum)]
    pub momentum: f64,
    /// Weight decay (not on biases and PReLU slopes).
    #[arg(long, default_value_t = D.weight_decay)]
    pub weight_decay: f64,
    /// Seed of initialisation and batch order.
    #[arg(long, default_value_t = D.seed)]
    pub seed: u64,
    /// Input channels (3: RGB, 1: grey). Default: the model's (3).
    #[arg(long)]
    pub channels: Option<usize>,
    /// Input height. Default: the model's (56; 112 for mobilefacenet and iresnet*).
    #[arg(long)]
    pub height: Option<usize>,
    /// Input width. Default: the model's (48; 112 for mobilefacenet and iresnet*).
    #[arg(long)]
    pub width: Option<usize>,
    /// Feature size.
    #[arg(long, default_value_t = D.feature_dim)]
    pub feature_dim: usize,
    /// A-Softmax λ schedule: base.
    #[arg(long, default_value_t = D.lambda_schedule.base)]
    pub lambda_base: f64,
    /// A-Softmax λ schedule: γ.
    #[arg(long, default_value_t = D.lambda_schedule.gamma)]
    pub lambda_gamma: f64,
    /// A-Softmax λ schedule: power.
    #[arg(long, default_value_t = D.lambda_schedule.power)]
    pub lambda_power: f64,
    /// A-Softmax λ schedule: λ_min.
    #[arg(long, default_value_t = D.lambda_schedule.lambda_min)]
    pub lambda_min: f64,
    /// Do not mirror training images at random.
    #[arg(long)]
    pub no_flip: bool,
}

impl TrainArgs {
    /// The configuration these flags describe, validated.
    pub fn config(&self) -> anyhow::Result<TrainConfig> {
        let cfg = TrainConfig {
            model: self.model,
            loss: self.loss,
            lambda_r: self.lambda_r,
            exclusive_refresh: self.exclusive_refresh,
            margin: self.margin.unwrap_or(self.loss.default_margin()),
            scale: self.scale,
            center_weight: self.center_weight,
            center_alpha: D.center_alpha,
            lambda_schedule: facelosses::LambdaSchedule {
                base: self.lambda_base,
                gamma: self.lambda_gamma,
                power: self.lambda_power,
                lambda_min: self.lambda_min,
            },
            input: {
                let (c, h, w) = self.model.default_input();
                (
                    self.channels.unwrap_or(c),
                    self.height.unwrap_or(h),
                    self.width.unwrap_or(w),
                )
            },
            feature_dim: self.feature_dim,
            steps: self.steps,
            batch: self.batch,
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            seed: self.seed,
            flip: !self.no_flip,
        };
        cfg.validate().map_err(anyhow::Error::msg)?;
        Ok(cfg)
    }
}

/// The seeds of `--seeds`.
#[derive(Clone)]
pub struct SeedList(pub Vec<u64>);

/// `A..B` (inclusive) or a comma-separated list of seeds.
pub fn parse_seeds(text: &str) -> Result<SeedList, String> {
    let bad = |e: std::num::ParseIntError| format!("`{text}`: {e}; write 1..10 or 1,2,5");
    let seeds: Vec<u64> = match text.split_once("..") {
        Some((a, b)) => (a.trim().parse().map_err(bad)?..=b.trim().parse().map_err(bad)?).collect(),
        None => text
            .split(',')
            .map(|s| s.trim().parse().map_err(bad))
            .collect::<Result<_, _>>()?,
    };
    if seeds.is_empty() || seeds.len() > 1000 {
        return Err(format!(
            "`{text}` names {} seeds; give 1 to 1000",
            seeds.len()
        ));
    }
    Ok(SeedList(seeds))
}
