//! Where the data of a run comes from ([`DataSpec`], recorded in every
//! checkpoint) and that data loaded: training images, verification images and
//! their pairs ([`PreparedData`]).

use super::images::{load_folder, Skipped};
use super::lfw::Lfw;
use super::stream::{PackImages, TrainImages};
use super::synthetic::{self, SyntheticConfig};
use super::{mnist, FaceSet, Pair};
use crate::eval_bin::{kfold_of, load_bin_images};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// A source of training data and verification pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
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
    Folder {
        /// The folder, one sub-folder per identity.
        root: PathBuf,
    },
    /// LFW, unrestricted with no outside data: train on nine folds of `people.txt`, verify on `fold`.
    Lfw {
        /// The LFW folder (with `pairs.txt` and `people.txt`).
        root: PathBuf,
        /// The held-out fold, 0..10.
        fold: usize,
    },
    /// MNIST (train split for training; test-split digits form the pairs).
    Mnist {
        /// The folder of IDX files.
        root: PathBuf,
    },
    /// An insightface RecordIO pack, streamed; verified on a `.bin` set's pairs.
    Rec {
        /// The folder with `train.rec` and `train.idx`.
        root: PathBuf,
        /// The `.bin` verification set whose pairs are the data's pairs.
        verify: PathBuf,
    },
}

impl DataSpec {
    /// The held-out LFW fold, for LFW.
    pub fn lfw_fold(&self) -> Option<usize> {
        match self {
            DataSpec::Lfw { fold, .. } => Some(*fold),
            _ => None,
        }
    }

    /// Refuse to evaluate a model trained on `trained` with this data when that
    /// would score its own training identities: LFW with another held-out fold
    /// (the identities of this fold's pairs were in the model's training folds).
    pub fn check_held_out(&self, trained: &DataSpec) -> Result<()> {
        if let (Some(now), Some(then)) = (self.lfw_fold(), trained.lfw_fold()) {
            if now != then {
                bail!(
                    "the model was trained on LFW with fold {then} held out, so the people of fold {now}'s pairs were among its training identities; evaluate it with --fold {then}"
                );
            }
        }
        Ok(())
    }
}

/// Training images, verification images with their pairs, and skipped files.
pub struct PreparedData {
    /// Where it came from (recorded in checkpoints).
    pub spec: DataSpec,
    /// Training images (shared with the loader thread).
    pub train: TrainImages,
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
    let (train, eval, pairs, skipped) = match spec {
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
            (train, eval, pairs, vec![])
        }
        DataSpec::Folder { root: dir } => {
            let (set, skipped) = load_folder(dir, c, h, w)?;
            if set.classes() < 10 {
                bail!("{}: {} identities; at least 10 are needed (one in ten is held out for verification)", dir.display(), set.classes());
            }
            let (train, eval, pairs) = held_out_split(set, 1);
            (train, eval, pairs, skipped)
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
            (train, eval, pairs, skipped)
        }
        DataSpec::Mnist { root: dir } => {
            let train = mnist::load(dir, "train")?;
            let test = mnist::load(dir, "t10k")?;
            if (h, w, c) != (28, 28, 1) {
                bail!("MNIST images are 1x28x28; use --channels 1 --height 28 --width 28");
            }
            let pairs = synthetic::make_pairs(&test, 30, 1);
            (train, test, pairs, vec![])
        }
        DataSpec::Rec { root, verify } => {
            let train = TrainImages::Pack(Arc::new(PackImages::open(root, (c, h, w))?));
            let (eval, same) = load_bin_images(verify, (c, h, w))?;
            let pairs = same
                .iter()
                .enumerate()
                .map(|(i, &same)| Pair {
                    a: 2 * i,
                    b: 2 * i + 1,
                    same,
                    fold: kfold_of(i, same_len(&eval)),
                })
                .collect();
            return Ok(PreparedData {
                spec: spec.clone(),
                train,
                eval,
                pairs,
                skipped: vec![],
            });
        }
    };
    Ok(PreparedData {
        spec: spec.clone(),
        train: TrainImages::Memory(Arc::new(train)),
        eval,
        pairs,
        skipped,
    })
}

/// Pairs in a `.bin` set's images (two images per pair).
fn same_len(eval: &FaceSet) -> usize {
    eval.len() / 2
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
