//! `regularface ablation`: the paper's LFW ablation on one held-out fold.

use super::args::TrainArgs;
use super::load_data;
use anyhow::Result;
use clap::Args;
use regularface::ablation::{self, AblationPlan, LambdaPolicy, ABLATION_FILE};
use regularface::config::LossKind;
use regularface::data::source::DataSpec;
use std::path::PathBuf;

/// Flags of `ablation`.
#[derive(Args)]
pub struct AblationCmd {
    /// LFW folder with pairs.txt and people.txt.
    #[arg(long)]
    lfw: PathBuf,
    /// Held-out fold (0-9).
    #[arg(long, default_value_t = 0)]
    fold: usize,
    #[command(flatten)]
    train: TrainArgs,
    /// λ_r of every regularised run, fixed in advance (no validation grid).
    #[arg(long = "lambda-r", conflicts_with = "grid")]
    fixed_lambda_r: Option<f64>,
    /// λ_r candidates for the validation grid.
    #[arg(long, value_delimiter = ',', default_values_t = vec![0.5, 1.0, 2.0])]
    grid: Vec<f64>,
    /// Steps of each validation-grid run.
    #[arg(long, default_value_t = 300)]
    grid_steps: u64,
    /// Seeds of the A-Softmax pair (the other losses use the first).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 2, 3])]
    seeds: Vec<u64>,
    /// Main losses to run (a subset splits the ablation over several invocations).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = vec![LossKind::Softmax, LossKind::Center, LossKind::Asoftmax])]
    losses: Vec<LossKind>,
    /// Output folder: a folder per run and ablation.json.
    #[arg(long, default_value = "runs/ablation")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Run `ablation`.
pub fn run(cmd: AblationCmd) -> Result<()> {
    let base = cmd.train.config()?;
    let spec = DataSpec::Lfw {
        root: cmd.lfw,
        fold: cmd.fold,
    };
    let data = load_data(&spec, base.input)?;
    let lambda_r = match cmd.fixed_lambda_r {
        Some(l) => LambdaPolicy::Fixed(l),
        None => LambdaPolicy::Grid {
            candidates: cmd.grid,
            steps: cmd.grid_steps,
        },
    };
    let plan = AblationPlan {
        test_fold: cmd.fold,
        base,
        lambda_r,
        seeds: cmd.seeds,
        losses: cmd.losses,
    };
    let report = ablation::run(&data, &plan, &cmd.out, !cmd.quiet)?;
    println!(
        "{:<10} {:>6} {:>6} {:>16} {:>8} {:>10} {:>10}",
        "loss", "λ_r", "seed", "accuracy %", "AUC", "Sep mean", "Sep std"
    );
    for r in &report.runs {
        println!(
            "{:<10} {:>6} {:>6} {:>9.2} ± {:<4.2} {:>8.4} {:>10.4} {:>10.4}",
            r.loss.name(),
            r.lambda_r,
            r.seed,
            100.0 * r.accuracy,
            100.0 * r.accuracy_std,
            r.auc,
            r.sep_mean,
            r.sep_std
        );
    }
    println!("report: {}", cmd.out.join(ABLATION_FILE).display());
    Ok(())
}
