//! Aggregating ablation parts: pairing, the statistics they feed, and refusing
//! parts that do not belong together.

use regularface::ablation::{summarize, AblationReport, AblationRun};
use regularface::config::{LossKind, TrainConfig};

fn run(fold: usize, lambda_r: f64, accuracy: f64, decisions: &str) -> AblationRun {
    AblationRun {
        fold,
        loss: LossKind::Asoftmax,
        lambda_r,
        seed: 1,
        accuracy,
        accuracy_std: 0.01,
        auc: 0.9,
        sep_mean: 0.5 - lambda_r / 10.0,
        sep_std: 0.1,
        decisions: decisions.into(),
        seconds: 1.0,
    }
}

fn part(fold: usize, base_acc: f64, reg_acc: f64) -> AblationReport {
    AblationReport {
        test_fold: fold,
        base: TrainConfig {
            steps: 2000,
            ..TrainConfig::DEFAULT
        },
        grid_steps: 0,
        lambda_choice: vec![],
        runs: vec![
            run(fold, 0.0, base_acc, "1100"),
            AblationRun {
                // the AUC moves by a tenth of the accuracy's difference
                auc: 0.9 + (reg_acc - base_acc) / 10.0,
                ..run(fold, 2.0, reg_acc, "1011")
            },
        ],
    }
}

#[test]
fn parts_pair_by_fold_and_give_the_paired_statistics() {
    // differences 0.01 .. 0.05: as the hand-computed t example, scaled by 1/100
    let parts: Vec<AblationReport> = (0..5)
        .map(|k| part(k, 0.8, 0.8 + 0.01 * (k + 1) as f64))
        .collect();
    let r = summarize(&parts).unwrap();
    let p = &r["paired"]["asoftmax"];
    assert_eq!(p["n"], 5);
    assert!((p["mean_diff"].as_f64().unwrap() - 0.03).abs() < 1e-12);
    assert!(
        (p["p_value"].as_f64().unwrap() - 0.013_24).abs() < 1e-5,
        "{p}"
    );
    let ci = p["ci95"].as_array().unwrap();
    assert!((ci[0].as_f64().unwrap() - 0.010_367_57).abs() < 1e-8);
    // the AUCs' differences are the accuracies' over 10: the same t, the same p
    let a = &r["paired_auc"]["asoftmax"];
    assert_eq!(a["n"], 5);
    assert!(
        (a["mean_diff"].as_f64().unwrap() - 0.003).abs() < 1e-12,
        "{a}"
    );
    assert!(
        (a["p_value"].as_f64().unwrap() - 0.013_24).abs() < 1e-5,
        "{a}"
    );
    // per fold, pair 2 is lost and pairs 3 and 4 are won: 5 against 10 over 20 pairs
    let m = &r["mcnemar"]["asoftmax"];
    assert_eq!(m["n"], 20);
    assert!((m["mean_diff"].as_f64().unwrap() - 0.25).abs() < 1e-12);
    assert_eq!(r["runs"].as_array().unwrap().len(), 10);
    assert!(r["runs"][0].get("decisions").is_none());
    assert_eq!(r["protocol"]["lambda_r"]["asoftmax"], 2.0);
    assert_eq!(r["protocol"]["folds"].as_array().unwrap().len(), 5);
}

#[test]
fn parts_of_different_recipes_or_overlapping_are_refused() {
    let mut other_steps = part(1, 0.8, 0.81);
    other_steps.base.steps = 1000;
    let err = summarize(&[part(0, 0.8, 0.8), other_steps]).unwrap_err();
    assert!(format!("{err:#}").contains("another recipe"), "{err:#}");

    let mut other_model = part(1, 0.8, 0.81);
    other_model.base.model = regularface::config::ModelKind::Sphereface20;
    assert!(summarize(&[part(0, 0.8, 0.8), other_model]).is_err());

    let mut other_lambda = part(1, 0.8, 0.81);
    other_lambda.runs[1].lambda_r = 1.0;
    let err = summarize(&[part(0, 0.8, 0.8), other_lambda]).unwrap_err();
    assert!(format!("{err:#}").contains("λ_r 2 and 1"), "{err:#}");

    let err = summarize(&[part(0, 0.8, 0.8), part(0, 0.8, 0.8)]).unwrap_err();
    assert!(format!("{err:#}").contains("parts overlap"), "{err:#}");

    let mut short = part(1, 0.8, 0.81);
    short.runs[1].decisions = "101".into();
    assert!(summarize(&[short]).is_err());
    assert!(summarize(&[]).is_err());
}
