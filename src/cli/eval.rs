//! `regularface eval`: 10-fold verification, ROC and Sep statistics of a checkpoint.

use super::args::DataArgs;
use super::{load_data, print_report};
use anyhow::Result;
use clap::Args;
use regularface::checkpoint;
use regularface::eval_bin::evaluate_bin;
use regularface::metrics::METRICS_FILE;
use regularface::report::{evaluate, REPORT_FILE};
use std::path::PathBuf;

/// Flags of `eval`.
#[derive(Args)]
pub struct EvalCmd {
    /// The checkpoint.
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// insightface verification sets (lfw.bin, cfp_fp.bin, agedb_30.bin, ...) to verify on as
    /// well, with insightface's protocol; repeat for several.
    #[arg(long)]
    eval_bin: Vec<PathBuf>,
    /// Output folder for report.json and plots.
    #[arg(long, default_value = "runs/eval")]
    out: PathBuf,
}

/// Run `eval`.
pub fn run(cmd: EvalCmd) -> Result<()> {
    let loaded = checkpoint::load(&cmd.checkpoint)?;
    let spec = cmd.data.spec();
    if let Some(trained) = &loaded.record.data {
        spec.check_held_out(trained)?;
    }
    let data = load_data(&spec, loaded.model.cfg.input)?;
    let metrics = cmd.checkpoint.parent().map(|p| p.join(METRICS_FILE));
    let bins = cmd
        .eval_bin
        .iter()
        .map(|b| evaluate_bin(&loaded.model, b))
        .collect::<Result<_>>()?;
    let report = evaluate(
        &loaded.model,
        &data,
        &cmd.checkpoint,
        &cmd.out,
        metrics.as_deref(),
        bins,
    )?;
    print_report(&report);
    println!("report: {}", cmd.out.join(REPORT_FILE).display());
    Ok(())
}
