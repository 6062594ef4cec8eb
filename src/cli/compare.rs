//! `regularface compare`: the same model and seed trained without and with the regularizer.

use super::args::{DataArgs, TrainArgs};
use super::load_data;
use anyhow::Result;
use clap::Args;
use regularface::compare::{self, COMPARE_FILE};
use regularface::config::TrainConfig;
use std::path::PathBuf;

/// Flags of `compare`.
#[derive(Args)]
pub struct CompareCmd {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    train: TrainArgs,
    /// λ_r of the regularised run.
    #[arg(long = "with-exclusive", id = "with_exclusive", default_value_t = 1.0)]
    lambda_r: f64,
    /// Output folder (one sub-folder per run, plus compare.json).
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Run `compare`.
pub fn run(cmd: CompareCmd) -> Result<()> {
    let base = TrainConfig {
        lambda_r: 0.0,
        ..cmd.train.config()?
    };
    let data = load_data(&cmd.data.spec(), base.input)?;
    let runs = compare::run(&base, cmd.lambda_r, &data, &cmd.out, !cmd.quiet)?;
    println!(
        "{:<10} {:>6} {:>10} {:>10} {:>16} {:>8}",
        "run", "λ_r", "Sep mean", "Sep std", "verification %", "AUC"
    );
    for r in &runs {
        let v = &r.report.verification;
        println!(
            "{:<10} {:>6} {:>10.4} {:>10.4} {:>9.2} ± {:<4.2} {:>8.4}",
            r.name,
            r.config.lambda_r,
            r.report.sep.mean,
            r.report.sep.std,
            100.0 * v.mean_accuracy,
            100.0 * v.std_accuracy,
            v.auc
        );
    }
    println!("report: {}", cmd.out.join(COMPARE_FILE).display());
    Ok(())
}
