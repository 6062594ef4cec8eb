//! The LFW ablation of the paper at laptop scale (issue 8): for softmax, center
//! loss and A-Softmax, train without and with the exclusive regularizer on the
//! people of nine `people.txt` folds and verify on the tenth fold's pairs;
//! λ_r is chosen on a validation split of the *training* people (never on the
//! test fold), and the A-Softmax pair is repeated over several seeds.

use crate::config::{LossKind, TrainConfig};
use crate::data::synthetic::make_pairs;
use crate::data::FaceSet;
use crate::runs::{evaluate, PreparedData};
use crate::train::{train, TrainOptions, METRICS_FILE};
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// One trained and evaluated run.
#[derive(Debug, Clone, Serialize)]
pub struct AblationRun {
    /// Main loss.
    pub loss: LossKind,
    /// λ_r (0 = without the regularizer).
    pub exclusive: f64,
    /// Seed.
    pub seed: u64,
    /// Mean verification accuracy over the 10 sub-folds of the test fold's pairs.
    pub accuracy: f64,
    /// Its std over sub-folds.
    pub accuracy_std: f64,
    /// Sep mean of the classifier.
    pub sep_mean: f64,
    /// Sep std.
    pub sep_std: f64,
    /// Training seconds.
    pub seconds: f64,
}

/// The λ_r chosen for one loss, with the validation accuracy of every candidate.
#[derive(Debug, Clone, Serialize)]
pub struct LambdaChoice {
    /// Main loss.
    pub loss: LossKind,
    /// The chosen λ_r.
    pub chosen: f64,
    /// (λ_r, validation accuracy) for each candidate.
    pub grid: Vec<(f64, f64)>,
}

/// What to run: the model and schedule, the λ_r grid and the seeds.
#[derive(Debug, Clone)]
pub struct AblationPlan {
    /// Held-out LFW fold.
    pub test_fold: usize,
    /// Model, input and schedule of every run.
    pub base: TrainConfig,
    /// λ_r candidates.
    pub grid: Vec<f64>,
    /// Steps of each validation-grid run.
    pub grid_steps: u64,
    /// Seeds of the A-Softmax pair (the other losses use the first).
    pub seeds: Vec<u64>,
    /// Main losses to run, in this order (softmax, center, A-Softmax by default); a subset lets
    /// the ablation be split over several invocations, each with its own report.
    pub losses: Vec<LossKind>,
}

/// The whole ablation's report.
#[derive(Debug, Clone, Serialize)]
pub struct AblationReport {
    /// Held-out fold.
    pub test_fold: usize,
    /// Training steps of every test-fold run.
    pub steps: u64,
    /// Training steps of every validation-grid run.
    pub grid_steps: u64,
    /// λ_r chosen per loss on the validation split.
    pub lambda_choice: Vec<LambdaChoice>,
    /// Every run on the test fold.
    pub runs: Vec<AblationRun>,
}

/// Split training people: every tenth identity with at least two images becomes validation.
fn validation_split(train: &FaceSet) -> (FaceSet, FaceSet) {
    let mut counts = vec![0usize; train.classes()];
    train.labels.iter().for_each(|&l| counts[l] += 1);
    let multi: Vec<usize> = (0..train.classes()).filter(|&c| counts[c] >= 2).collect();
    let val: Vec<usize> = multi.iter().copied().skip(9).step_by(10).collect();
    let keep: Vec<usize> = (0..train.classes()).filter(|c| !val.contains(c)).collect();
    (
        train.select_identities(&keep),
        train.select_identities(&val),
    )
}

fn run_one(
    cfg: &TrainConfig,
    train_set: &Arc<FaceSet>,
    eval: &PreparedData,
    dir: &Path,
    progress: bool,
) -> Result<AblationRun> {
    let _ = std::fs::remove_file(dir.join(METRICS_FILE));
    let t = std::time::Instant::now();
    let out = train(
        cfg,
        train_set.clone(),
        &TrainOptions {
            progress,
            ..TrainOptions::new(dir)
        },
    )?;
    let seconds = t.elapsed().as_secs_f64();
    let report = evaluate(
        &out.model,
        eval,
        &out.checkpoint,
        dir,
        Some(&dir.join(METRICS_FILE)),
    )?;
    Ok(AblationRun {
        loss: cfg.loss,
        exclusive: cfg.exclusive,
        seed: cfg.seed,
        accuracy: report.verification.mean_accuracy,
        accuracy_std: report.verification.std_accuracy,
        sep_mean: report.sep.mean,
        sep_std: report.sep.std,
        seconds,
    })
}

/// Run the ablation on `data`, the LFW protocol's data for `plan.test_fold`.
pub fn run(
    data: &PreparedData,
    plan: &AblationPlan,
    out: &Path,
    progress: bool,
) -> Result<AblationReport> {
    let AblationPlan {
        test_fold,
        base,
        grid,
        grid_steps,
        seeds,
        losses,
    } = plan;
    let (test_fold, grid_steps) = (*test_fold, *grid_steps);
    if losses.is_empty() {
        bail!("--losses needs at least one loss");
    }
    if seeds.is_empty() {
        bail!("--seeds needs at least one seed");
    }
    if grid.is_empty() || grid.iter().any(|&l| l <= 0.0) {
        bail!("--grid needs one or more positive λ_r values");
    }
    let (fit, val) = validation_split(&data.train);
    let val_pairs = make_pairs(&val, 30, 7);
    let val_data = PreparedData {
        train: FaceSet::default(),
        eval: val,
        pairs: val_pairs,
        skipped: vec![],
    };
    let fit = Arc::new(fit);
    let full = Arc::new(data.train.clone());
    let mut report = AblationReport {
        test_fold,
        steps: base.steps,
        grid_steps,
        lambda_choice: vec![],
        runs: vec![],
    };
    for &loss in losses {
        let margin = if loss == LossKind::Asoftmax {
            4.0
        } else {
            base.margin
        };
        let cfg = TrainConfig {
            loss,
            margin,
            ..base.clone()
        };
        let mut scores = vec![];
        for &l in grid.iter() {
            let c = TrainConfig {
                exclusive: l,
                steps: grid_steps,
                ..cfg.clone()
            };
            let r = run_one(
                &c,
                &fit,
                &val_data,
                &out.join(format!("grid_{loss:?}_{l}")),
                progress,
            )?;
            eprintln!("validation {loss:?} λ_r {l}: {:.2}%", 100.0 * r.accuracy);
            scores.push((l, r.accuracy));
        }
        let best = scores
            .iter()
            .copied()
            .fold((grid[0], f64::MIN), |b, s| if s.1 > b.1 { s } else { b })
            .0;
        report.lambda_choice.push(LambdaChoice {
            loss,
            chosen: best,
            grid: scores,
        });
        let loss_seeds: &[u64] = if loss == LossKind::Asoftmax {
            seeds
        } else {
            &seeds[..1]
        };
        for &seed in loss_seeds {
            for l in [0.0, best] {
                let c = TrainConfig {
                    exclusive: l,
                    seed,
                    ..cfg.clone()
                };
                let r = run_one(
                    &c,
                    &full,
                    data,
                    &out.join(format!("{loss:?}_lr{l}_seed{seed}")),
                    progress,
                )?;
                eprintln!(
                    "test fold {test_fold}: {loss:?} λ_r {l} seed {seed}: {:.2}% Sep {:.3}",
                    100.0 * r.accuracy,
                    r.sep_mean
                );
                report.runs.push(r);
                nn::checkpoint::write_atomic(
                    &out.join("ablation.json"),
                    serde_json::to_string_pretty(&report)?.as_bytes(),
                )?;
            }
        }
    }
    Ok(report)
}
