//! `regularface export`: a checkpoint's backbone as an ONNX model.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Flags of `export`.
#[derive(Args)]
pub struct ExportCmd {
    /// The checkpoint to export.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    onnx: PathBuf,
}

/// Run `export`.
pub fn run(cmd: ExportCmd) -> Result<()> {
    regularface::export::export(&cmd.checkpoint, &cmd.onnx)?;
    println!(
        "wrote {} (input `input` (batch, C, H, W) normalised as in training; output `features`)",
        cmd.onnx.display()
    );
    Ok(())
}
