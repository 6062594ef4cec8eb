//! The evaluation report of a trained model: 10-fold verification on the
//! data's pairs, ROC, rank-1 identification and the classifier's Sep
//! statistics, written as `report.json` with its plots.

use crate::data::source::PreparedData;
use crate::eval::{embed, rank1_identification, verify_folds, Verification};
use crate::eval_bin::BinResult;
use crate::model::FaceModel;
use crate::plot;
use anyhow::{bail, Context, Result};
use facelosses::SeparabilityStats;
use serde::Serialize;
use std::path::Path;

/// File name of the evaluation report in a run's folder.
pub const REPORT_FILE: &str = "report.json";

/// The JSON report of `eval` (and of every trained run).
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
    /// Inter-class separability of the classifier (Sep_i; 20 bins over [-1, 1]).
    pub sep: SeparabilityStats,
    /// insightface `.bin` sets evaluated (`--eval-bin`), with both protocols.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bins: Vec<BinResult>,
}

/// Evaluate `model` on `data`'s pairs, with `bins` its results on `.bin` sets; write
/// `report.json`, `roc.svg`, `sep_hist.svg` (and, when `metrics` exists,
/// `loss.svg` and, when it holds verification lines, `verification.svg`)
/// into `out_dir`.
pub fn evaluate(
    model: &FaceModel,
    data: &PreparedData,
    checkpoint: &Path,
    out_dir: &Path,
    metrics: Option<&Path>,
    bins: Vec<BinResult>,
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
        sep: model.separability(),
        bins,
    };
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    nn::checkpoint::write_atomic(
        &out_dir.join(REPORT_FILE),
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
        let mut series: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
        for v in text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            for b in v["verification"].as_array().into_iter().flatten() {
                if let (Some(step), Some(name), Some(acc)) = (
                    v["step"].as_f64(),
                    b["name"].as_str(),
                    b["accuracy"].as_f64(),
                ) {
                    series.entry(name.into()).or_default().push((step, acc));
                }
            }
        }
        if !series.is_empty() {
            let lines: Vec<(&str, Vec<(f64, f64)>)> = series
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            plot::line_chart(
                &out_dir.join("verification.svg"),
                "verification accuracy (insightface protocol)",
                "step",
                "accuracy",
                &lines,
            )?;
        }
    }
    Ok(report)
}
