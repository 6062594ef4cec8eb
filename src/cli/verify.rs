//! `regularface verify`: the cosine of two face images and the same/different decision.

use super::image_set;
use anyhow::{Context, Result};
use clap::Args;
use regularface::checkpoint;
use regularface::eval::{cosine, embed};
use std::path::PathBuf;

/// Flags of `verify`.
#[derive(Args)]
pub struct VerifyCmd {
    /// The checkpoint.
    #[arg(long)]
    checkpoint: PathBuf,
    /// First image.
    a: PathBuf,
    /// Second image.
    b: PathBuf,
}

/// Run `verify`.
pub fn run(cmd: VerifyCmd) -> Result<()> {
    let loaded = checkpoint::load(&cmd.checkpoint)?;
    let threshold = loaded.record.threshold.with_context(|| {
        format!(
            "{}: no verification threshold stored (only a finished run's final checkpoint has one)",
            cmd.checkpoint.display()
        )
    })?;
    let model = loaded.model;
    let set = image_set(&[cmd.a, cmd.b], model.cfg.input)?;
    let f = embed(model.backbone.as_ref(), &set, 2);
    let c = cosine(&f[0], &f[1], &vec![0.0; f[0].len()]);
    println!(
        "cosine {c:.4} (threshold {:.4}, fitted on {}): {}",
        threshold.value,
        threshold.fitted_on,
        if c > threshold.value {
            "same person"
        } else {
            "different people"
        }
    );
    Ok(())
}
