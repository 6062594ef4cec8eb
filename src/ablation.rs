//! The LFW ablation of the paper at laptop scale: for softmax, center loss and
//! A-Softmax, train without and with the exclusive regularizer on the people
//! of nine `people.txt` folds and verify on the tenth fold's pairs. λ_r is
//! either fixed in advance or chosen on a validation split of the *training*
//! people (never on the test fold); the A-Softmax pair can be repeated over
//! several seeds.
//!
//! Every run is resumable (`train_and_report_resumable`), so a killed
//! invocation repeated with the same flags redoes nothing that was finished.

use crate::config::{LossKind, TrainConfig};
use crate::data::source::PreparedData;
use crate::data::stream::TrainImages;
use crate::data::synthetic::make_pairs;
use crate::data::FaceSet;
use crate::experiment::{train_and_report, train_and_report_resumable, RunResult};
use crate::summary::{compare_by_loss, comparison_json, Observation};
use crate::train::TrainOptions;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// File name of the ablation's report.
pub const ABLATION_FILE: &str = "ablation.json";

/// One trained and evaluated run on the test fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AblationRun {
    /// Held-out LFW fold.
    pub fold: usize,
    /// Main loss.
    pub loss: LossKind,
    /// λ_r (0 = without the regularizer).
    pub lambda_r: f64,
    /// Seed.
    pub seed: u64,
    /// Mean verification accuracy over the 10 sub-folds of the test fold's pairs.
    pub accuracy: f64,
    /// Its std over sub-folds.
    pub accuracy_std: f64,
    /// Area under the ROC curve.
    pub auc: f64,
    /// Sep mean of the classifier.
    pub sep_mean: f64,
    /// Sep std.
    pub sep_std: f64,
    /// Each test pair decided correctly (`1`) or not (`0`), in `pairs.txt` order.
    pub decisions: String,
    /// Training seconds of this invocation (0 when the run was already complete).
    pub seconds: f64,
}

/// The λ_r chosen for one loss, with the validation accuracy of every candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LambdaChoice {
    /// Main loss.
    pub loss: LossKind,
    /// The chosen λ_r.
    pub chosen: f64,
    /// (λ_r, validation accuracy) for each candidate; empty when λ_r was fixed in advance.
    pub grid: Vec<(f64, f64)>,
}

/// How λ_r of the regularised runs is set.
#[derive(Debug, Clone, PartialEq)]
pub enum LambdaPolicy {
    /// Fixed in advance for every loss and fold.
    Fixed(f64),
    /// Chosen per loss by a validation grid of runs of `steps` steps.
    Grid {
        /// The candidates.
        candidates: Vec<f64>,
        /// Steps of each grid run.
        steps: u64,
    },
}

/// What to run: the model and schedule, the λ_r policy and the seeds.
#[derive(Debug, Clone)]
pub struct AblationPlan {
    /// Held-out LFW fold.
    pub test_fold: usize,
    /// Model, input and schedule of every run (its loss and λ_r are set per run).
    pub base: TrainConfig,
    /// How λ_r is set.
    pub lambda_r: LambdaPolicy,
    /// Seeds of the A-Softmax pair (the other losses use the first).
    pub seeds: Vec<u64>,
    /// Main losses to run, in this order; a subset splits the ablation over invocations.
    pub losses: Vec<LossKind>,
}

/// The report of one ablation invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AblationReport {
    /// Held-out fold.
    pub test_fold: usize,
    /// The configuration every test-fold run shares but for loss, margin, λ_r and seed.
    pub base: TrainConfig,
    /// Training steps of every validation-grid run (0 when λ_r was fixed).
    pub grid_steps: u64,
    /// λ_r per loss.
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

/// The validation split as prepared data: the fitting people to train on, the
/// validation people's pairs to verify on.
fn validation_data(data: &PreparedData) -> Result<PreparedData> {
    let TrainImages::Memory(train) = &data.train else {
        bail!("the validation grid needs its training images in memory (LFW); give --lambda-r");
    };
    let (fit, val) = validation_split(train);
    let pairs = make_pairs(&val, 30, 7);
    Ok(PreparedData {
        spec: data.spec.clone(),
        train: TrainImages::Memory(Arc::new(fit)),
        eval: val,
        pairs,
        skipped: vec![],
    })
}

fn ablation_run(fold: usize, r: &RunResult) -> AblationRun {
    let v = &r.report.verification;
    AblationRun {
        fold,
        loss: r.config.loss,
        lambda_r: r.config.lambda_r,
        seed: r.config.seed,
        accuracy: v.mean_accuracy,
        accuracy_std: v.std_accuracy,
        auc: v.auc,
        sep_mean: r.report.sep.mean,
        sep_std: r.report.sep.std,
        decisions: v
            .pair_correct
            .iter()
            .map(|&c| if c { '1' } else { '0' })
            .collect(),
        seconds: r.seconds,
    }
}

/// Choose λ_r for `cfg`'s loss on the validation split (`fit` trains, `val` verifies).
fn choose_lambda(
    cfg: &TrainConfig,
    candidates: &[f64],
    steps: u64,
    validation: &PreparedData,
    out: &Path,
    progress: bool,
) -> Result<LambdaChoice> {
    let mut scores = vec![];
    for &l in candidates {
        let c = TrainConfig {
            lambda_r: l,
            steps,
            ..cfg.clone()
        };
        let dir = out.join(format!("grid_{:?}_{l}", cfg.loss));
        let opts = TrainOptions {
            progress,
            ..TrainOptions::new(&dir)
        };
        let run = train_and_report(&dir.display().to_string(), &c, validation, &opts)?;
        let acc = run.report.verification.mean_accuracy;
        eprintln!("validation {:?} λ_r {l}: {:.2}%", cfg.loss, 100.0 * acc);
        scores.push((l, acc));
    }
    let chosen = scores
        .iter()
        .copied()
        .fold(
            (candidates[0], f64::MIN),
            |b, s| if s.1 > b.1 { s } else { b },
        )
        .0;
    Ok(LambdaChoice {
        loss: cfg.loss,
        chosen,
        grid: scores,
    })
}

/// Run the ablation on `data`, the LFW protocol's data for `plan.test_fold`,
/// writing each run's folder and `ablation.json` (after every run) under `out`.
pub fn run(
    data: &PreparedData,
    plan: &AblationPlan,
    out: &Path,
    progress: bool,
) -> Result<AblationReport> {
    if plan.losses.is_empty() {
        bail!("--losses needs at least one loss");
    }
    if plan.seeds.is_empty() {
        bail!("--seeds needs at least one seed");
    }
    let grid_steps = match &plan.lambda_r {
        LambdaPolicy::Fixed(l) if !(*l > 0.0 && l.is_finite()) => {
            bail!("--lambda-r {l} must be a positive number")
        }
        LambdaPolicy::Grid { candidates, .. }
            if candidates.is_empty() || candidates.iter().any(|&l| l <= 0.0) =>
        {
            bail!("--grid needs one or more positive λ_r values")
        }
        LambdaPolicy::Fixed(_) => 0,
        LambdaPolicy::Grid { steps, .. } => *steps,
    };
    let mut validation = None;
    let mut report = AblationReport {
        test_fold: plan.test_fold,
        base: plan.base.clone(),
        grid_steps,
        lambda_choice: vec![],
        runs: vec![],
    };
    for &loss in &plan.losses {
        let cfg = plan.base.with_loss(loss);
        let choice = match &plan.lambda_r {
            LambdaPolicy::Fixed(l) => LambdaChoice {
                loss,
                chosen: *l,
                grid: vec![],
            },
            LambdaPolicy::Grid { candidates, steps } => {
                if validation.is_none() {
                    validation = Some(validation_data(data)?);
                }
                let split = validation.as_ref().expect("set above");
                choose_lambda(&cfg, candidates, *steps, split, out, progress)?
            }
        };
        let best = choice.chosen;
        report.lambda_choice.push(choice);
        let seeds = if loss == LossKind::Asoftmax {
            &plan.seeds[..]
        } else {
            &plan.seeds[..1]
        };
        for &seed in seeds {
            for l in [0.0, best] {
                let c = TrainConfig {
                    lambda_r: l,
                    seed,
                    ..cfg.clone()
                };
                let dir = out.join(format!("{loss:?}_lr{l}_seed{seed}"));
                let r = ablation_run(
                    plan.test_fold,
                    &train_and_report_resumable(&c, data, &dir, progress)?,
                );
                eprintln!(
                    "test fold {}: {loss:?} λ_r {l} seed {seed}: {:.2}% Sep {:.3}",
                    plan.test_fold,
                    100.0 * r.accuracy,
                    r.sep_mean
                );
                report.runs.push(r);
                nn::checkpoint::write_atomic(
                    &out.join(ABLATION_FILE),
                    serde_json::to_string_pretty(&report)?.as_bytes(),
                )?;
            }
        }
    }
    Ok(report)
}

/// What one part (an `ablation.json`) contributes to the paired analysis.
fn observations(part: &AblationReport) -> Vec<Observation> {
    part.runs
        .iter()
        .map(|r| Observation {
            unit: r.fold as u64,
            seed: r.seed,
            loss: r.loss,
            lambda_r: r.lambda_r,
            accuracy: r.accuracy,
            auc: r.auc,
            decisions: r.decisions.clone(),
        })
        .collect()
}

/// Aggregate ablation parts (one per fold or per loss) into one report:
/// `protocol`, `runs` (without per-pair decisions), `paired` (per loss, the
/// paired t-test of accuracy over folds) and `mcnemar` (per loss, over the
/// pooled test pairs). Parts of different recipes are refused, not mixed.
pub fn summarize(parts: &[AblationReport]) -> Result<serde_json::Value> {
    let Some(first) = parts.first() else {
        bail!("no ablation parts to summarize");
    };
    for p in parts {
        if p.base != first.base || p.grid_steps != first.grid_steps {
            bail!(
                "part for fold {} has another recipe than fold {}'s: {} vs {}",
                p.test_fold,
                first.test_fold,
                serde_json::to_string(&(&p.base, p.grid_steps))?,
                serde_json::to_string(&(&first.base, first.grid_steps))?
            );
        }
    }
    let obs: Vec<Observation> = parts.iter().flat_map(observations).collect();
    let cmp = compare_by_loss(&obs)?;
    let comparison = comparison_json(&cmp);
    let mut folds: Vec<usize> = parts.iter().map(|p| p.test_fold).collect();
    folds.sort_unstable();
    folds.dedup();
    let runs: Vec<serde_json::Value> = parts
        .iter()
        .flat_map(|p| &p.runs)
        .map(|r| {
            serde_json::json!({
                "fold": r.fold, "loss": r.loss, "seed": r.seed, "lambda_r": r.lambda_r,
                "accuracy": r.accuracy, "accuracy_std": r.accuracy_std, "auc": r.auc,
                "sep_mean": r.sep_mean, "sep_std": r.sep_std,
            })
        })
        .collect();
    Ok(serde_json::json!({
        "protocol": {
            "data": "LFW, unrestricted with no outside data: train on the people of the nine \
                     other people.txt folds, verify the held-out fold's 600 pairs of pairs.txt \
                     (threshold chosen on 9 of 10 sub-folds of those pairs, in turn)",
            "config": first.base,
            "grid_steps": first.grid_steps,
            "folds": folds,
            "lambda_r": cmp.iter().map(|(k, c)| (k.clone(), c.lambda_r)).collect::<BTreeMap<_, _>>(),
            "paired_over": "folds (the same fold and seed with λ_r = 0 and λ_r > 0)",
        },
        "runs": runs,
        "paired": comparison["paired"],
        "paired_auc": comparison["paired_auc"],
        "mcnemar": comparison["mcnemar"],
    }))
}
