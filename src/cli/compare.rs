//! `regularface compare`: the same model and seed trained without and with the regularizer.

use super::args::{DataArgs, TrainArgs};
use super::load_data;
use anyhow::Result;
use clap::Args;
use regularface::compare::{self, COMPARE_FILE, COMPARE_SEEDS_FILE};
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
    /// Repeat over these seeds (`1..10` or `1,2,5`): each varies the synthetic data seed and
    /// the initialisation seed; paired statistics over the seeds in compare_seeds.json.
    #[arg(long, value_parser = super::args::parse_seeds)]
    seeds: Option<super::args::SeedList>,
    /// Output folder (one sub-folder per run, plus compare.json; with --seeds one per seed).
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn run_seeds(cmd: &CompareCmd, base: &TrainConfig, seeds: &[u64]) -> Result<()> {
    let report = compare::run_seeds(
        base,
        cmd.lambda_r,
        &cmd.data.spec(),
        seeds,
        &cmd.out,
        !cmd.quiet,
    )?;
    println!(
        "{:<6} {:>6} {:>10} {:>10} {:>14} {:>8}",
        "seed", "λ_r", "Sep mean", "Sep std", "verification %", "AUC"
    );
    for r in report["runs"].as_array().into_iter().flatten() {
        println!(
            "{:<6} {:>6} {:>10.4} {:>10.4} {:>14.2} {:>8.4}",
            r["seed"].as_u64().unwrap_or(0),
            r["lambda_r"].as_f64().unwrap_or(f64::NAN),
            r["sep_mean"].as_f64().unwrap_or(f64::NAN),
            r["sep_std"].as_f64().unwrap_or(f64::NAN),
            100.0 * r["accuracy"].as_f64().unwrap_or(f64::NAN),
            r["auc"].as_f64().unwrap_or(f64::NAN)
        );
    }
    for (loss, p) in report["paired"].as_object().into_iter().flatten() {
        println!(
            "{}; McNemar p = {:.4}",
            super::paired_line(&format!("{loss} accuracy (points)"), p, "seeds", 100.0),
            report["mcnemar"][loss]["p_value"]
                .as_f64()
                .unwrap_or(f64::NAN)
        );
    }
    super::print_paired_auc(&report, "seeds");
    println!("report: {}", cmd.out.join(COMPARE_SEEDS_FILE).display());
    Ok(())
}

/// Run `compare`.
pub fn run(cmd: CompareCmd) -> Result<()> {
    let base = TrainConfig {
        lambda_r: 0.0,
        ..cmd.train.config()?
    };
    if let Some(super::args::SeedList(seeds)) = &cmd.seeds {
        return run_seeds(&cmd, &base, seeds);
    }
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
