//! `regularface train`: train a model, then evaluate it on the data's verification pairs.

use super::args::{DataArgs, TrainArgs};
use super::{load_data, print_report};
use anyhow::Result;
use clap::Args;
use regularface::experiment::train_and_report;
use regularface::report::REPORT_FILE;
use regularface::train::TrainOptions;
use std::path::PathBuf;

/// Flags of `train`.
#[derive(Args)]
pub struct TrainCmd {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    train: TrainArgs,
    /// Output folder: checkpoint, metrics.jsonl, report.json, plots.
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Save a checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 200)]
    checkpoint_every: u64,
    /// Continue the run saved in this checkpoint (same flags as the original run).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Stop after this many steps of the run, saving a checkpoint that `--resume` (or
    /// PyTorch's interop/pytorch/train_ddp.py) continues; the schedule stays that of --steps.
    #[arg(long)]
    stop_after: Option<u64>,
    /// insightface verification sets to verify on during training and at the end (insightface's
    /// protocol); repeat for several.
    #[arg(long)]
    eval_bin: Vec<PathBuf>,
    /// Verify on the --eval-bin sets every N steps (0: only at the end).
    #[arg(long, default_value_t = 0)]
    eval_every: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Run `train`.
pub fn run(cmd: TrainCmd) -> Result<()> {
    let cfg = cmd.train.config()?;
    let data = load_data(&cmd.data.spec(), cfg.input)?;
    let opts = TrainOptions {
        checkpoint_every: cmd.checkpoint_every,
        resume: cmd.resume,
        progress: !cmd.quiet,
        eval_bins: cmd.eval_bin,
        eval_every: cmd.eval_every,
        stop_after: cmd.stop_after,
        ..TrainOptions::new(&cmd.out)
    };
    let run = train_and_report("train", &cfg, &data, &opts)?;
    eprintln!(
        "trained {} steps at {:.1} images/s, peak memory {:.0} MiB; checkpoint {}",
        run.steps,
        run.images_per_s,
        regularface::bench::peak_rss_mib(),
        run.checkpoint.display()
    );
    print_report(&run.report);
    println!("report: {}", cmd.out.join(REPORT_FILE).display());
    Ok(())
}
