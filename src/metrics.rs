//! `metrics.jsonl`: one JSON line per logged training step.

use crate::model::LossTerms;
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the metrics log in a run's folder.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsLine {
    /// Steps completed.
    pub step: u64,
    /// Learning rate used.
    pub lr: f64,
    /// Loss terms.
    pub loss: LossTerms,
    /// Batch accuracy of the cosine classifier.
    pub accuracy: f64,
    /// A-Softmax λ (null for other losses).
    pub lambda: Option<f64>,
    /// Mean of Sep_i over the classifier's classes.
    pub sep_mean: f64,
    /// Population std of Sep_i.
    pub sep_std: f64,
    /// Training throughput since the previous line.
    pub images_per_s: f64,
}

/// The metrics log of a run, open for appending.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Open the log in `dir` for a run that starts at step `first_step`: a fresh
    /// run (step 0) starts an empty log; a resumed run keeps the lines up to its
    /// checkpoint's step and drops any a killed process wrote after it.
    pub fn open(dir: &Path, first_step: u64) -> Result<Self> {
        let path = dir.join(METRICS_FILE);
        let kept = match std::fs::read_to_string(&path) {
            Ok(text) if first_step > 0 => text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v["step"].as_u64())
                        .is_some_and(|s| s <= first_step)
                })
                .map(|l| format!("{l}\n"))
                .collect(),
            _ => String::new(),
        };
        nn::checkpoint::write_atomic(&path, kept.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(MetricsLog { path, file })
    }

    /// Append the verification results on `.bin` sets after step `step`:
    /// `{"step": .., "verification": [{"name", "accuracy", ...}, ...]}`.
    pub fn write_verification<T: Serialize>(&mut self, step: u64, results: &[T]) -> Result<()> {
        let line = serde_json::json!({"step": step, "verification": results});
        writeln!(self.file, "{line}").with_context(|| format!("writing {}", self.path.display()))
    }

    /// Append one line.
    pub fn write(&mut self, line: &MetricsLine) -> Result<()> {
        writeln!(self.file, "{}", serde_json::to_string(line)?)
            .with_context(|| format!("writing {}", self.path.display()))
    }
}
