//! Face verification as SphereFace evaluates LFW: features of each image and
//! its mirror image concatenated; for each of 10 folds, subtract the mean
//! feature of the other nine folds, score pairs by cosine, choose the
//! threshold with the best accuracy on those nine folds, and measure accuracy
//! on the held-out fold. Also ROC, AUC and TAR at fixed FAR over all pairs.

use crate::data::to_tensor;
use crate::data::{FaceSet, Pair};
use autograd::{no_grad, Var};
use nn::Module;
use serde::Serialize;
use tensor::Tensor;

/// Features `[len, d]` of every image of `set`, mirrored where `flip` says,
/// in batches of `batch`, with the backbone in inference mode (BatchNorm
/// folded into the layers before it).
pub fn features(
    backbone: &dyn Module<f32>,
    set: &FaceSet,
    batch: usize,
    flip: bool,
) -> Tensor<f32> {
    backbone.set_training(false);
    backbone.fold_batchnorm();
    let rows: Vec<Tensor<f32>> = (0..set.len())
        .step_by(batch.max(1))
        .map(|start| {
            let idx: Vec<usize> = (start..(start + batch).min(set.len())).collect();
            let x = Var::constant(to_tensor(set, &idx, &vec![flip; idx.len()]));
            no_grad(|| backbone.forward(&x)).value().clone()
        })
        .collect();
    backbone.set_training(true);
    Tensor::concat(&rows.iter().collect::<Vec<_>>(), 0)
}

/// Verification features of every image of `set`: `[f(x), f(mirror(x))]`, one row per image.
pub fn embed(backbone: &dyn Module<f32>, set: &FaceSet, batch: usize) -> Vec<Vec<f32>> {
    if set.is_empty() {
        return vec![];
    }
    let (plain, flipped) = (
        features(backbone, set, batch, false),
        features(backbone, set, batch, true),
    );
    let d = plain.shape()[1];
    let (p, f) = (plain.to_vec(), flipped.to_vec());
    (0..set.len())
        .map(|k| [&p[k * d..(k + 1) * d], &f[k * d..(k + 1) * d]].concat())
        .collect()
}

/// The plain-cosine threshold (no mean subtraction) with the best accuracy on
/// `pairs` of `set`: what `verify` compares with. Only the images the pairs
/// name are embedded.
pub fn fit_plain_threshold(backbone: &dyn Module<f32>, set: &FaceSet, pairs: &[Pair]) -> f64 {
    let mut used: Vec<usize> = pairs.iter().flat_map(|p| [p.a, p.b]).collect();
    used.sort_unstable();
    used.dedup();
    let mut subset = FaceSet::empty(set.channels, set.height, set.width);
    subset.class_names = set.class_names.clone();
    for &i in &used {
        subset.push(set.image(i), set.labels[i], set.sources[i].clone());
    }
    let features = embed(backbone, &subset, 32);
    let row = |i: usize| &features[used.binary_search(&i).expect("embedded")];
    let zero = vec![0.0; features.first().map_or(0, |f| f.len())];
    let scored: Vec<(f64, bool)> = pairs
        .iter()
        .map(|p| (cosine(row(p.a), row(p.b), &zero), p.same))
        .collect();
    best_threshold(&scored).0
}

/// Cosine of two vectors after subtracting `mean` from both.
pub fn cosine(a: &[f32], b: &[f32], mean: &[f64]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for ((&x, &y), &m) in a.iter().zip(b).zip(mean) {
        let (x, y) = (x as f64 - m, y as f64 - m);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(1e-12)
}

/// The threshold with the best accuracy on `(score, same)` (predict same when
/// `score > threshold`); ties go to the lowest threshold. Candidates are the
/// midpoints between consecutive distinct scores and the two ends.
pub fn best_threshold(scored: &[(f64, bool)]) -> (f64, f64) {
    let mut s: Vec<(f64, bool)> = scored.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = s.len().max(1) as f64;
    // Threshold below everything: all predicted same.
    let mut correct = s.iter().filter(|p| p.1).count();
    let mut best = (correct, s.first().map_or(0.0, |p| p.0 - 1e-6));
    let mut i = 0;
    while i < s.len() {
        let v = s[i].0;
        while i < s.len() && s[i].0 == v {
            // s[i] moves to "different": right if it is a mismatched pair.
            if s[i].1 {
                correct -= 1;
            } else {
                correct += 1;
            }
            i += 1;
        }
        let thr = if i < s.len() {
            (v + s[i].0) / 2.0
        } else {
            v + 1e-6
        };
        if correct > best.0 {
            best = (correct, thr);
        }
    }
    (best.1, best.0 as f64 / n)
}

/// Results of 10-fold verification.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Accuracy on each held-out fold.
    pub fold_accuracy: Vec<f64>,
    /// Threshold chosen for each fold (on the other nine).
    pub fold_threshold: Vec<f64>,
    /// Mean accuracy over folds.
    pub mean_accuracy: f64,
    /// Population std of the fold accuracies.
    pub std_accuracy: f64,
    /// Area under the ROC curve of all pairs' test-time scores.
    pub auc: f64,
    /// TAR at FAR = 1e-2.
    pub tar_at_far_1e2: f64,
    /// TAR at FAR = 1e-3.
    pub tar_at_far_1e3: f64,
    /// ROC points (FAR, TAR), from the strictest threshold to the loosest.
    pub roc: Vec<(f64, f64)>,
    /// Best threshold on plain cosine (no mean subtraction) over all pairs.
    pub plain_threshold: f64,
    /// Whether each pair (in the order given) was decided correctly by its
    /// fold's threshold: the per-pair outcomes a paired (McNemar) test compares.
    #[serde(skip)]
    pub pair_correct: Vec<bool>,
}

fn mean_of(features: &[Vec<f32>], pairs: &[&Pair]) -> Vec<f64> {
    let d = features.first().map_or(0, |f| f.len());
    let mut m = vec![0.0; d];
    let mut n = 0.0f64;
    for p in pairs {
        for i in [p.a, p.b] {
            features[i]
                .iter()
                .zip(m.iter_mut())
                .for_each(|(&v, acc)| *acc += v as f64);
            n += 1.0;
        }
    }
    m.iter_mut().for_each(|v| *v /= n.max(1.0));
    m
}

/// 10-fold verification of `pairs` over `features` (one row per image).
pub fn verify_folds(features: &[Vec<f32>], pairs: &[Pair]) -> Verification {
    let folds: Vec<usize> = {
        let mut f: Vec<usize> = pairs.iter().map(|p| p.fold).collect();
        f.sort();
        f.dedup();
        f
    };
    let mut test_scores: Vec<(f64, bool)> = vec![];
    let mut pair_correct = vec![false; pairs.len()];
    let (mut accs, mut thrs) = (vec![], vec![]);
    for &k in &folds {
        let train: Vec<&Pair> = pairs.iter().filter(|p| p.fold != k).collect();
        let test: Vec<&Pair> = pairs.iter().filter(|p| p.fold == k).collect();
        let mean = mean_of(features, if train.is_empty() { &test } else { &train });
        let score = |p: &&Pair| (cosine(&features[p.a], &features[p.b], &mean), p.same);
        let (thr, _) = best_threshold(&train.iter().map(score).collect::<Vec<_>>());
        let test_scored: Vec<(f64, bool)> = test.iter().map(score).collect();
        let in_fold = (0..pairs.len()).filter(|&i| pairs[i].fold == k);
        for (i, (s, same)) in in_fold.zip(&test_scored) {
            pair_correct[i] = (*s > thr) == *same;
        }
        let acc = test_scored
            .iter()
            .filter(|(s, same)| (*s > thr) == *same)
            .count() as f64
            / test_scored.len().max(1) as f64;
        accs.push(acc);
        thrs.push(thr);
        test_scores.extend(test_scored);
    }
    let mean_accuracy = accs.iter().sum::<f64>() / accs.len().max(1) as f64;
    let std_accuracy = (accs
        .iter()
        .map(|a| (a - mean_accuracy).powi(2))
        .sum::<f64>()
        / accs.len().max(1) as f64)
        .sqrt();
    let roc = roc_curve(&test_scores);
    let zero = vec![0.0; features.first().map_or(0, |f| f.len())];
    let plain: Vec<(f64, bool)> = pairs
        .iter()
        .map(|p| (cosine(&features[p.a], &features[p.b], &zero), p.same))
        .collect();
    Verification {
        fold_accuracy: accs,
        fold_threshold: thrs,
        mean_accuracy,
        std_accuracy,
        auc: auc(&roc),
        tar_at_far_1e2: tar_at_far(&roc, 1e-2),
        tar_at_far_1e3: tar_at_far(&roc, 1e-3),
        roc,
        plain_threshold: best_threshold(&plain).0,
        pair_correct,
    }
}

/// ROC points (FAR, TAR) as the threshold sweeps from above every score down.
pub fn roc_curve(scored: &[(f64, bool)]) -> Vec<(f64, f64)> {
    let mut s = scored.to_vec();
    s.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = s.iter().filter(|p| p.1).count().max(1) as f64;
    let neg = s.iter().filter(|p| !p.1).count().max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut roc = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < s.len() {
        let v = s[i].0;
        while i < s.len() && s[i].0 == v {
            if s[i].1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        roc.push((fp / neg, tp / pos));
    }
    roc
}

/// Trapezoidal area under a ROC curve.
pub fn auc(roc: &[(f64, f64)]) -> f64 {
    roc.windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum()
}

/// The highest TAR among ROC points with FAR ≤ `far`.
pub fn tar_at_far(roc: &[(f64, f64)], far: f64) -> f64 {
    roc.iter()
        .filter(|(f, _)| *f <= far + 1e-12)
        .map(|(_, t)| *t)
        .fold(0.0, f64::max)
}

/// Closed-set identification: the first image of each identity is its gallery
/// entry, every other image a probe; rank-1 accuracy is the share of probes
/// whose most similar gallery entry (by cosine) is their own identity.
/// `None` when no identity has a second image.
pub fn rank1_identification(features: &[Vec<f32>], labels: &[usize]) -> Option<f64> {
    let mut gallery: Vec<(usize, usize)> = vec![];
    for (i, &l) in labels.iter().enumerate() {
        if !gallery.iter().any(|&(gl, _)| gl == l) {
            gallery.push((l, i));
        }
    }
    let zero = vec![0.0; features.first().map_or(0, |f| f.len())];
    let probes: Vec<usize> = (0..labels.len())
        .filter(|i| !gallery.iter().any(|&(_, g)| g == *i))
        .collect();
    if probes.is_empty() || gallery.len() < 2 {
        return None;
    }
    let hits = probes
        .iter()
        .filter(|&&p| {
            let best = gallery.iter().max_by(|a, b| {
                cosine(&features[p], &features[a.1], &zero).total_cmp(&cosine(
                    &features[p],
                    &features[b.1],
                    &zero,
                ))
            });
            best.is_some_and(|&(l, _)| l == labels[p])
        })
        .count();
    Some(hits as f64 / probes.len() as f64)
}
