//! `compare`: the same model, data and seed trained without and with the
//! exclusive regularizer, side by side; and the same over several seeds, with
//! paired statistics.

use crate::config::TrainConfig;
use crate::data::source::{prepare, DataSpec, PreparedData};
use crate::experiment::{train_and_report_resumable, RunResult};
use crate::summary::{compare_by_loss, comparison_json, Observation};
use anyhow::{bail, Result};
use serde_json::json;
use std::path::Path;

/// File name of the side-by-side report.
pub const COMPARE_FILE: &str = "compare.json";
/// File name of the multi-seed report.
pub const COMPARE_SEEDS_FILE: &str = "compare_seeds.json";

/// Train `base` with λ_r = 0 (`baseline/`) and with `lambda_r` (`exclusive/`)
/// under `out`, and write `compare.json` there.
pub fn run(
    base: &TrainConfig,
    lambda_r: f64,
    data: &PreparedData,
    out: &Path,
    progress: bool,
) -> Result<Vec<RunResult>> {
    if !(lambda_r > 0.0 && lambda_r.is_finite()) {
        bail!(
            "--with-exclusive {lambda_r} must be positive (it is the λ_r of the regularised run)"
        );
    }
    let mut runs = vec![];
    for (name, l) in [("baseline", 0.0), ("exclusive", lambda_r)] {
        eprintln!("== {name} (λ_r = {l})");
        let cfg = TrainConfig {
            lambda_r: l,
            ..base.clone()
        };
        runs.push(train_and_report_resumable(
            &cfg,
            data,
            &out.join(name),
            progress,
        )?);
    }
    let report = json!({
        "config": TrainConfig { lambda_r: 0.0, ..base.clone() },
        "lambda_r": lambda_r,
        "runs": runs.iter().map(|r| json!({
            "run": r.name,
            "lambda_r": r.config.lambda_r,
            "report": r.report,
        })).collect::<Vec<_>>(),
    });
    nn::checkpoint::write_atomic(
        &out.join(COMPARE_FILE),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    Ok(runs)
}

/// The compare run once per seed: seed `s` draws the synthetic data with data
/// seed `s` (other sources stay as they are) and initialises with seed `s`.
/// Each seed's pair goes into `out/seed<s>/`; `compare_seeds.json` holds every
/// run and, per loss, the paired t-test over seeds and McNemar's test over the
/// pooled pairs. Resumable like every run here.
pub fn run_seeds(
    base: &TrainConfig,
    lambda_r: f64,
    spec: &DataSpec,
    seeds: &[u64],
    out: &Path,
    progress: bool,
) -> Result<serde_json::Value> {
    if seeds.is_empty() {
        bail!("--seeds needs at least one seed");
    }
    let (mut obs, mut rows) = (vec![], vec![]);
    for &seed in seeds {
        let spec = match spec {
            DataSpec::Synthetic {
                identities,
                images_per_identity,
                test_identities,
                ..
            } => DataSpec::Synthetic {
                identities: *identities,
                images_per_identity: *images_per_identity,
                test_identities: *test_identities,
                seed,
            },
            other => other.clone(),
        };
        eprintln!("== seed {seed}");
        let data = prepare(&spec, base.input)?;
        let cfg = TrainConfig {
            seed,
            ..base.clone()
        };
        for r in run(
            &cfg,
            lambda_r,
            &data,
            &out.join(format!("seed{seed}")),
            progress,
        )? {
            let v = &r.report.verification;
            rows.push(json!({
                "seed": seed, "loss": r.config.loss, "lambda_r": r.config.lambda_r,
                "accuracy": v.mean_accuracy, "accuracy_std": v.std_accuracy, "auc": v.auc,
                "sep_mean": r.report.sep.mean, "sep_std": r.report.sep.std,
            }));
            obs.push(Observation {
                unit: seed,
                seed,
                loss: r.config.loss,
                lambda_r: r.config.lambda_r,
                accuracy: v.mean_accuracy,
                auc: v.auc,
                decisions: v
                    .pair_correct
                    .iter()
                    .map(|&c| if c { '1' } else { '0' })
                    .collect(),
            });
        }
    }
    let comparison = comparison_json(&compare_by_loss(&obs)?);
    let report = json!({
        "protocol": {
            "data": spec,
            "config": TrainConfig { lambda_r: 0.0, seed: 0, ..base.clone() },
            "lambda_r": lambda_r,
            "seeds": seeds,
            "seed_varies": "the initialisation and batch-order seed and, for the synthetic \
                            generator, the data seed (training identities, verification \
                            identities and pairs)",
            "paired_over": "seeds (the same seed with λ_r = 0 and λ_r > 0)",
        },
        "runs": rows,
        "paired": comparison["paired"],
        "paired_auc": comparison["paired_auc"],
        "mcnemar": comparison["mcnemar"],
    });
    nn::checkpoint::write_atomic(
        &out.join(COMPARE_SEEDS_FILE),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    Ok(report)
}
