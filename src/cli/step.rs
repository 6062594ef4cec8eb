//! `regularface step`: one training step from a checkpoint on a batch file.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Flags of `step`.
#[derive(Args)]
pub struct StepCmd {
    /// The run's checkpoint.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The batch of the checkpoint's next step (written by `regularface batch`).
    #[arg(long)]
    batch: PathBuf,
    /// The checkpoint to write after the step.
    #[arg(long)]
    out: PathBuf,
}

/// Run `step`.
pub fn run(cmd: StepCmd) -> Result<()> {
    let loss = regularface::interop::one_step(&cmd.checkpoint, &cmd.batch, &cmd.out)?;
    println!("one step, loss {loss:.6}; wrote {}", cmd.out.display());
    Ok(())
}
