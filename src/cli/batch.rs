//! `regularface batch`: write the batch a checkpoint's run trains on next.

use super::load_data;
use anyhow::{Context, Result};
use clap::Args;
use regularface::checkpoint;
use std::path::PathBuf;

/// Flags of `batch`.
#[derive(Args)]
pub struct BatchCmd {
    /// The run's checkpoint; its recorded data source is read again.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The safetensors file to write (`images`, `labels`, the step in its metadata).
    #[arg(long)]
    out: PathBuf,
}

/// Run `batch`.
pub fn run(cmd: BatchCmd) -> Result<()> {
    let loaded = checkpoint::load(&cmd.checkpoint)?;
    let spec = loaded.record.data.clone().with_context(|| {
        format!(
            "{}: records no data source (written by an older version)",
            cmd.checkpoint.display()
        )
    })?;
    let data = load_data(&spec, loaded.model.cfg.input)?;
    let (step, n) = regularface::interop::write_batch(&cmd.checkpoint, &loaded, &data, &cmd.out)?;
    println!(
        "wrote {}: the {n} images of step {step} (0-based)",
        cmd.out.display()
    );
    Ok(())
}
