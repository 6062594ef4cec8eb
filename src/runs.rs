//! Where the data of a run comes from, and the evaluation report of a trained model.

use crate::data::images::{load_folder, Skipped};
use crate::data::lfw::Lfw;
use crate::data::synthetic::{self, SyntheticConfig};
use crate::data::{mnist, FaceSet, Pair};
use crate::eval::{embed, rank1_identification, verify_folds, Verification};
use crate::model::FaceModel;
use crate::plot;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A source of training data and verification pairs.
#[derive(Debug, Clone)]
pub enum DataSpec {
    /// The synthetic generator: `identities` for training, a disjoint `test_identities` for pairs.
    Synthetic {
        /// Training identities.
        identities: usize,
        /// Images per training identity.
        images_per_identity: usize,
        /// Identities held out for verification pairs.
        test_identities: usize,
        /// Generator seed.
        seed: u64,
    },
    /// An image folder; every tenth identity is held out for verification pairs.
    Folder(PathBuf),
    /// LFW, unrestricted with no outside data: train on nine folds of `people.txt`, verify on `fold`.
    Lfw {
        /// The LFW folder (with `pairs.txt` and `people.txt`).
        root: PathBuf,
        /// The held-out fold, 0..10.
        fold: usize,
    },
    /// MNIST (train split for training; test-split digits form the pairs).
    Mnist(PathBuf),
}

/// Training images, verification images with their pairs, and skipped files.
pub struct PreparedData {
    /// Training set.
    pub train: FaceSet,
    /// Images the pairs index.
    pub eval: FaceSet,
    /// Verification pairs, 10 folds.
    pub pairs: Vec<Pair>,
    /// Unreadable images that were skipped.
    pub skipped: Vec<Skipped>,
}

fn held_out_split(set: FaceSet, seed: u64) -> (FaceSet, FaceSet, Vec<Pair>) {
    let test: Vec<usize> = (0..set.classes()).filter(|c| c % 10 == 9).collect();
    let train: Vec<usize> = (0..set.classes()).filter(|c| c % 10 != 9).collect();
    let eval = set.select_identities(&test);
    let pairs = synthetic::make_pairs(&eval, 30, seed);
    (set.select_identities(&train), eval, pairs)
}

/// Load or generate the data of a run at input size `(channels, h, w)`.
pub fn prepare(spec: &DataSpec, (c, h, w): (usize, usize, usize)) -> Result<PreparedData> {
    Ok(match spec {
        DataSpec::Synthetic {
            identities,
            images_per_identity,
            test_identities,
            seed,
        } => {
            if *identities < 2 || *images_per_identity < 1 {
                bail!("--identities must be at least 2 and --images-per-identity at least 1");
            }
            let gen = |ids, per, seed| {
                synthetic::generate(&SyntheticConfig {
                    identities: ids,
                    images_per_identity: per,
                    height: h,
                    width: w,
                    seed,
                    difficulty: 1.0,
                })
            };
            let mut train = gen(*identities, *images_per_identity, *seed);
            if c == 1 {
                train = to_grey(&train);
            }
            let mut eval = gen((*test_identities).max(20), 8, seed.wrapping_add(0x7E57));
            if c == 1 {
                eval = to_grey(&eval);
            }
            let pairs = synthetic::make_pairs(&eval, 30, *seed);
            PreparedData {
                train,
                eval,
                pairs,
                skipped: vec![],
            }
        }
        DataSpec::Folder(dir) => {
            let (set, skipped) = load_folder(dir, c, h, w)?;
            if set.classes() < 10 {
                bail!("{}: {} identities; at least 10 are needed (one in ten is held out for verification)", dir.display(), set.classes());
            }
            let (train, eval, pairs) = held_out_split(set, 1);
            PreparedData {
                train,
                eval,
                pairs,
                skipped,
            }
        }
        DataSpec::Lfw { root, fold } => {
            if *fold >= 10 {
                bail!("--fold {fold} must be between 0 and 9");
            }
            let lfw = Lfw::open(root)?;
            let (train, skipped) = lfw.training_set(*fold, c, h, w);
            let (eval, pairs, _) = lfw.pair_set(&[*fold], c, h, w)?;
            // One held-out fold: give its 600 pairs ten sub-folds so the threshold is still chosen on other pairs.
            let pairs = pairs
                .into_iter()
                .enumerate()
                .map(|(i, p)| Pair { fold: i % 10, ..p })
                .collect();
            PreparedData {
                train,
                eval,
                pairs,
                skipped,
            }
        }
        DataSpec::Mnist(dir) => {
            let train = mnist::load(dir, "train")?;
            let test = mnist::load(dir, "t10k")?;
            if (h, w, c) != (28, 28, 1) {
                bail!("MNIST images are 1x28x28; use --channels 1 --height 28 --width 28");
            }
            let pairs = synthetic::make_pairs(&test, 30, 1);
            PreparedData {
                train,
                eval: test,
                pairs,
                skipped: vec![],
            }
        }
    })
}

fn to_grey(set: &FaceSet) -> FaceSet {
    let mut out = FaceSet::empty(1, set.height, set.width);
    out.class_names = set.class_names.clone();
    let plane = set.height * set.width;
    for i in 0..set.len() {
        let img = set.image(i);
        let grey: Vec<u8> = (0..plane)
            .map(|p| {
                ((img[p] as u32 * 299
                    + img[plane + p] as u32 * 587
                    + img[2 * plane + p] as u32 * 114)
                    / 1000) as u8
            })
            .collect();
        out.push(&grey, set.labels[i], set.sources[i].clone());
    }
    out
}

/// Separability statistics, serialisable.
#[derive(Debug, Clone, Serialize)]
pub struct SepReport {
    /// Mean of Sep_i.
    pub mean: f64,
    /// Population std.
    pub std: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// 20 bins over [-1, 1].
    pub histogram: Vec<usize>,
}

/// Sep statistics of a model's classifier.
pub fn separability(model: &FaceModel) -> SepReport {
    let s = model.separability();
    SepReport {
        mean: s.mean,
        std: s.std,
        min: s.min,
        max: s.max,
        histogram: s.histogram,
    }
}

/// The JSON report of `eval`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Checkpoint evaluated.
    pub checkpoint: String,
    /// Pairs verified.
    pub pairs: usize,
    /// 10-fold verification.
    pub verification: Verification,
    /// Closed-set rank-1 identification over the evaluation identities (first image of each
    /// identity as gallery, the rest as probes); null when no identity has two images.
    pub rank1_identification: Option<f64>,
    /// Inter-class separability of the classifier.
    pub sep: SepReport,
}

/// Evaluate `model` on `data`'s pairs; write `report.json`, `roc.svg`,
/// `sep_hist.svg` (and `loss.svg` when `metrics` exists) into `out_dir`.
pub fn evaluate(
    model: &FaceModel,
    data: &PreparedData,
    checkpoint: &Path,
    out_dir: &Path,
    metrics: Option<&Path>,
) -> Result<EvalReport> {
    if data.pairs.is_empty() {
        bail!("no verification pairs: the evaluation data has too few identities");
    }
    let features = embed(model.backbone.as_ref(), &data.eval, 32);
    let verification = verify_folds(&features, &data.pairs);
    let report = EvalReport {
        checkpoint: checkpoint.display().to_string(),
        pairs: data.pairs.len(),
        verification,
        rank1_identification: rank1_identification(&features, &data.eval.labels),
        sep: separability(model),
    };
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    nn::checkpoint::write_atomic(
        &out_dir.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    plot::line_chart(
        &out_dir.join("roc.svg"),
        "ROC",
        "false accept rate",
        "true accept rate",
        &[("ROC", report.verification.roc.clone())],
    )?;
    plot::histogram(
        &out_dir.join("sep_hist.svg"),
        "Sep_i = max cos to nearest class",
        "Sep",
        &report.sep.histogram,
        -1.0,
        1.0,
    )?;
    if let Some(m) = metrics.filter(|m| m.exists()) {
        let text = std::fs::read_to_string(m)?;
        let pts: Vec<(f64, f64)> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| Some((v["step"].as_f64()?, v["loss"]["total"].as_f64()?)))
            .collect();
        plot::line_chart(
            &out_dir.join("loss.svg"),
            "training loss",
            "step",
            "loss",
            &[("loss", pts)],
        )?;
    }
    Ok(report)
}
