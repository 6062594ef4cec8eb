//! The one experiment API: train a named run on prepared data, evaluate it on
//! the data's verification pairs, and leave its folder complete (checkpoint,
//! `metrics.jsonl`, `report.json`, plots). `train`, `compare`, `ablation` and
//! `mnist-toy` are all made of calls to [`train_and_report`].

use crate::checkpoint::{self, CHECKPOINT_FILE};
use crate::config::TrainConfig;
use crate::data::source::PreparedData;
use crate::eval_bin::evaluate_bin;
use crate::metrics::METRICS_FILE;
use crate::model::FaceModel;
use crate::report::{evaluate, EvalReport};
use crate::train::{train, TrainOptions};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A trained and evaluated run.
pub struct RunResult {
    /// The run's name (its folder's name in multi-run commands).
    pub name: String,
    /// Its configuration.
    pub config: TrainConfig,
    /// The trained model.
    pub model: FaceModel,
    /// Its final checkpoint.
    pub checkpoint: PathBuf,
    /// Steps completed in total.
    pub steps: u64,
    /// Training throughput of this invocation.
    pub images_per_s: f64,
    /// Wall seconds of training (evaluation excluded).
    pub seconds: f64,
    /// The evaluation report written as `report.json`.
    pub report: EvalReport,
}

/// Train `config` on `data` (or resume, as `opts` says), then evaluate it on
/// `data`'s pairs into `opts.out_dir`.
pub fn train_and_report(
    name: &str,
    config: &TrainConfig,
    data: &PreparedData,
    opts: &TrainOptions,
) -> Result<RunResult> {
    let started = Instant::now();
    let outcome = train(config, data, opts)?;
    let seconds = started.elapsed().as_secs_f64();
    let dir = &opts.out_dir;
    let bins = match outcome.final_verification {
        Some(results) => results,
        None => opts
            .eval_bins
            .iter()
            .map(|b| evaluate_bin(&outcome.model, b))
            .collect::<Result<_>>()?,
    };
    let report = evaluate(
        &outcome.model,
        data,
        &outcome.checkpoint,
        dir,
        Some(&dir.join(METRICS_FILE)),
        bins,
    )?;
    Ok(RunResult {
        name: name.into(),
        config: config.clone(),
        model: outcome.model,
        checkpoint: outcome.checkpoint,
        steps: outcome.steps,
        images_per_s: outcome.images_per_s,
        seconds,
        report,
    })
}

/// [`train_and_report`] into `dir`, resumable: when `dir` already holds a
/// checkpoint of the same configuration and data, the run continues from it
/// (or, when it is complete, is only evaluated); otherwise it starts afresh.
/// Checkpoints every 200 steps, so a killed run loses little.
pub fn train_and_report_resumable(
    config: &TrainConfig,
    data: &PreparedData,
    dir: &Path,
    progress: bool,
) -> Result<RunResult> {
    let ckpt = dir.join(CHECKPOINT_FILE);
    let resume = match checkpoint::load(&ckpt) {
        Ok(l)
            if l.model.cfg == *config && l.record.data.as_ref().is_none_or(|d| *d == data.spec) =>
        {
            eprintln!("{}: continuing from step {}", dir.display(), l.record.step);
            Some(ckpt)
        }
        _ => None,
    };
    let opts = TrainOptions {
        progress,
        checkpoint_every: 200,
        resume,
        ..TrainOptions::new(dir)
    };
    let name = dir
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    train_and_report(&name, config, data, &opts)
}
