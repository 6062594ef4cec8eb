//! `compare`: the same model, data and seed trained without and with the
//! exclusive regularizer, side by side.

use crate::config::TrainConfig;
use crate::data::source::PreparedData;
use crate::experiment::{train_and_report, RunResult};
use crate::train::TrainOptions;
use anyhow::{bail, Result};
use serde_json::json;
use std::path::Path;

/// File name of the side-by-side report.
pub const COMPARE_FILE: &str = "compare.json";

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
        let opts = TrainOptions {
            progress,
            ..TrainOptions::new(&out.join(name))
        };
        runs.push(train_and_report(name, &cfg, data, &opts)?);
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
