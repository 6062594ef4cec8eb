//! The 10-fold evaluation on hand-computed examples.

use approx::assert_abs_diff_eq;
use regularface::data::Pair;
use regularface::eval::{auc, best_threshold, roc_curve, tar_at_far, verify_folds};

/// Unit vectors with a given cosine to (1, 0), and their negatives (so every
/// fold's mean feature is zero and mean subtraction changes nothing).
fn symmetric_fold_features(scores: &[(f64, bool)]) -> (Vec<Vec<f32>>, Vec<Pair>) {
    let (mut feats, mut pairs) = (vec![], vec![]);
    for fold in 0..10 {
        for &(s, same) in scores {
            for sign in [1.0f32, -1.0] {
                let a = vec![sign, 0.0];
                let b = vec![sign * s as f32, sign * (1.0 - s * s).sqrt() as f32];
                feats.push(a);
                feats.push(b);
                pairs.push(Pair {
                    a: feats.len() - 2,
                    b: feats.len() - 1,
                    same,
                    fold,
                });
            }
        }
    }
    (feats, pairs)
}

#[test]
fn ten_folds_on_known_scores() {
    // Scores 0.9 and 0.5 for matched pairs, 0.2 and 0.6 for mismatched ones.
    // Thresholds 0.35 and 0.75 both give 3 of 4 right; the lower one wins.
    let (feats, pairs) =
        symmetric_fold_features(&[(0.9, true), (0.5, true), (0.2, false), (0.6, false)]);
    let v = verify_folds(&feats, &pairs);
    assert_eq!(v.fold_accuracy.len(), 10);
    for (acc, thr) in v.fold_accuracy.iter().zip(&v.fold_threshold) {
        assert_abs_diff_eq!(*acc, 0.75, epsilon = 1e-12);
        assert_abs_diff_eq!(*thr, 0.35, epsilon = 1e-6);
    }
    assert_abs_diff_eq!(v.mean_accuracy, 0.75, epsilon = 1e-12);
    assert_abs_diff_eq!(v.std_accuracy, 0.0, epsilon = 1e-12);
    // ROC over 40 matched / 40 mismatched: AUC = P(matched > mismatched) = (2 + 1 + 0 + ... ) / 4
    // pairs (0.9 vs 0.2, 0.9 vs 0.6, 0.5 vs 0.2) are ordered right, (0.5 vs 0.6) wrong: 3/4.
    assert_abs_diff_eq!(v.auc, 0.75, epsilon = 1e-6);
}

#[test]
fn a_perfect_separation_scores_one() {
    let (feats, pairs) =
        symmetric_fold_features(&[(0.9, true), (0.8, true), (0.1, false), (-0.3, false)]);
    let v = verify_folds(&feats, &pairs);
    assert_abs_diff_eq!(v.mean_accuracy, 1.0);
    assert_abs_diff_eq!(v.auc, 1.0, epsilon = 1e-9);
    assert_abs_diff_eq!(v.tar_at_far_1e3, 1.0);
}

#[test]
fn threshold_roc_and_tar_by_hand() {
    let scored = [(0.1, false), (0.4, true), (0.35, false), (0.8, true)];
    let (thr, acc) = best_threshold(&scored);
    assert_abs_diff_eq!(thr, 0.375, epsilon = 1e-12);
    assert_abs_diff_eq!(acc, 1.0);
    let roc = roc_curve(&scored);
    assert_eq!(
        roc,
        vec![(0.0, 0.0), (0.0, 0.5), (0.0, 1.0), (0.5, 1.0), (1.0, 1.0)]
    );
    assert_abs_diff_eq!(auc(&roc), 1.0);
    let worse = roc_curve(&[(0.9, false), (0.5, true), (0.1, false), (0.7, true)]);
    assert_abs_diff_eq!(auc(&worse), 0.5);
    assert_abs_diff_eq!(tar_at_far(&worse, 0.0), 0.0);
    assert_abs_diff_eq!(tar_at_far(&worse, 0.5), 1.0);
}

#[test]
fn rank1_identification_by_hand() {
    use regularface::eval::rank1_identification;
    // identities 0 and 1; gallery = first image of each ((1,0) and (0,1)).
    let feats = vec![
        vec![1.0, 0.0],
        vec![0.0, 1.0],
        vec![0.9, 0.1],
        vec![0.2, 0.8],
        vec![0.7, 0.3],
    ];
    let labels = [0, 1, 0, 1, 1];
    // probes: (0.9,0.1)→0 right, (0.2,0.8)→1 right, (0.7,0.3)→0 wrong.
    assert_abs_diff_eq!(
        rank1_identification(&feats, &labels).unwrap(),
        2.0 / 3.0,
        epsilon = 1e-12
    );
    assert!(rank1_identification(&feats[..2], &labels[..2]).is_none());
}
