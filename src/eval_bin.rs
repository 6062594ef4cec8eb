//! Verification on insightface's `.bin` sets with insightface's own protocol,
//! so the numbers compare with published ones: the embedding of an image is
//! `f(x) + f(mirror(x))`, L2-normalised; a pair's distance is the squared
//! Euclidean distance; thresholds run from 0 to 3.99 in steps of 0.01; the
//! pairs are cut into 10 contiguous folds (scikit-learn's `KFold` without
//! shuffling: the first `N mod 10` folds one pair longer), and each fold is
//! decided at the threshold (first of the best) that maximises accuracy on the
//! other nine. Beside it, the SphereFace protocol (`eval::verify_folds`: image
//! and mirror features concatenated, mean subtraction, cosine) on the same folds.

use crate::data::images::{decode_image, preprocess};
use crate::data::verification_bin;
use crate::data::{FaceSet, Pair};
use crate::eval::{features, verify_folds};
use crate::model::FaceModel;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// One `.bin` set's result.
#[derive(Debug, Clone, Serialize)]
pub struct BinResult {
    /// The file's stem (`lfw`, `cfp_fp`, `agedb_30`, ...).
    pub name: String,
    /// Pairs verified.
    pub pairs: usize,
    /// insightface protocol: mean accuracy over the 10 folds (fraction).
    pub accuracy: f64,
    /// Its standard deviation over folds (population, as numpy's `std`).
    pub std: f64,
    /// Mean of the folds' chosen squared-distance thresholds.
    pub threshold: f64,
    /// SphereFace protocol on the same folds: mean accuracy.
    pub sphereface_accuracy: f64,
    /// SphereFace protocol: std over folds.
    pub sphereface_std: f64,
}

/// Fold of pair `i` of `n` under scikit-learn's `KFold(10)` without shuffling.
pub fn kfold_of(i: usize, n: usize) -> usize {
    let (base, extra) = (n / 10, n % 10);
    let long = extra * (base + 1);
    if i < long {
        i / (base + 1)
    } else {
        extra + (i - long) / base.max(1)
    }
}

/// insightface's accuracy over 10 folds for squared distances `dist` and
/// labels `same`: (mean, std, mean threshold).
pub fn insightface_accuracy(dist: &[f64], same: &[bool]) -> (f64, f64, f64) {
    let n = dist.len();
    let thresholds: Vec<f64> = (0..400).map(|t| t as f64 * 0.01).collect();
    let acc = |idx: &[usize], t: f64| {
        idx.iter().filter(|&&i| (dist[i] < t) == same[i]).count() as f64 / idx.len().max(1) as f64
    };
    let (mut accs, mut thrs) = (vec![], vec![]);
    for fold in 0..10.min(n) {
        let (test, train): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| kfold_of(i, n) == fold);
        let best = thresholds
            .iter()
            .copied()
            .fold((f64::MIN, 0.0), |b, t| {
                let a = acc(&train, t);
                if a > b.0 {
                    (a, t)
                } else {
                    b
                }
            })
            .1;
        accs.push(acc(&test, best));
        thrs.push(best);
    }
    let k = accs.len().max(1) as f64;
    let mean = accs.iter().sum::<f64>() / k;
    let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / k).sqrt();
    (mean, std, thrs.iter().sum::<f64>() / k)
}

/// Decode and preprocess a `.bin` set's images for `model`; the error names the image.
pub fn load_bin_images(
    path: &Path,
    (c, h, w): (usize, usize, usize),
) -> Result<(FaceSet, Vec<bool>)> {
    let bin = verification_bin::read(path)?;
    let pixels = bin
        .images
        .par_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let img =
                decode_image(bytes).with_context(|| format!("{} image {i}", path.display()))?;
            Ok(preprocess(&img, c, h, w))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut set = FaceSet::empty(c, h, w);
    set.class_names = vec!["bin".into()];
    for (i, px) in pixels.iter().enumerate() {
        set.push(px, 0, format!("{}#{i}", path.display()));
    }
    Ok((set, bin.issame))
}

/// A `.bin` set decoded for a model's input, kept for repeated evaluation.
pub struct BinData {
    /// The file's stem.
    pub name: String,
    /// The `2N` images, preprocessed.
    pub set: FaceSet,
    /// The `N` same-person flags.
    pub same: Vec<bool>,
}

impl BinData {
    /// Read and decode the set at `path` for input `(c, h, w)`.
    pub fn load(path: &Path, input: (usize, usize, usize)) -> Result<Self> {
        let (set, same) = load_bin_images(path, input)?;
        let name = path
            .file_stem()
            .map_or("bin".into(), |s| s.to_string_lossy().into_owned());
        Ok(BinData { name, set, same })
    }
}

/// Evaluate `model` on the `.bin` set at `path` with both protocols.
pub fn evaluate_bin(model: &FaceModel, path: &Path) -> Result<BinResult> {
    Ok(evaluate_bin_data(
        model,
        &BinData::load(path, model.cfg.input)?,
    ))
}

/// Evaluate `model` on a decoded `.bin` set with both protocols.
pub fn evaluate_bin_data(model: &FaceModel, bin: &BinData) -> BinResult {
    let (set, same) = (&bin.set, &bin.same);
    let backbone = model.backbone.as_ref();
    let (plain, flipped) = (
        features(backbone, set, 32, false),
        features(backbone, set, 32, true),
    );
    let d = plain.shape()[1];
    let (p, f) = (plain.to_vec(), flipped.to_vec());
    let embedding = |k: usize| {
        let v: Vec<f64> = (0..d)
            .map(|j| (p[k * d + j] + f[k * d + j]) as f64)
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.into_iter().map(|x| x / norm).collect::<Vec<f64>>()
    };
    let dist: Vec<f64> = (0..same.len())
        .map(|i| {
            let (a, b) = (embedding(2 * i), embedding(2 * i + 1));
            a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum()
        })
        .collect();
    let (accuracy, std, threshold) = insightface_accuracy(&dist, same);
    let concat: Vec<Vec<f32>> = (0..set.len())
        .map(|k| [&p[k * d..(k + 1) * d], &f[k * d..(k + 1) * d]].concat())
        .collect();
    let pairs: Vec<Pair> = same
        .iter()
        .enumerate()
        .map(|(i, &s)| Pair {
            a: 2 * i,
            b: 2 * i + 1,
            same: s,
            fold: kfold_of(i, same.len()),
        })
        .collect();
    let sphere = verify_folds(&concat, &pairs);
    BinResult {
        name: bin.name.clone(),
        pairs: same.len(),
        accuracy,
        std,
        threshold,
        sphereface_accuracy: sphere.mean_accuracy,
        sphereface_std: sphere.std_accuracy,
    }
}
