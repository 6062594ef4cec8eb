//! `regularface embed`: the features of images (image and mirror concatenated).

use super::image_set;
use anyhow::Result;
use clap::{Args, ValueEnum};
use regularface::checkpoint;
use regularface::eval::embed;
use std::path::PathBuf;

/// Output format of `embed`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// A JSON array of `{"image", "feature"}` objects.
    Json,
    /// One line per image: path, then the feature's values.
    Csv,
}

/// Flags of `embed`.
#[derive(Args)]
pub struct EmbedCmd {
    /// The checkpoint.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Images to embed.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

/// Run `embed`.
pub fn run(cmd: EmbedCmd) -> Result<()> {
    let model = checkpoint::load(&cmd.checkpoint)?.model;
    let set = image_set(&cmd.images, model.cfg.input)?;
    let feats = embed(model.backbone.as_ref(), &set, 32);
    match cmd.format {
        Format::Json => {
            let rows: Vec<serde_json::Value> = cmd
                .images
                .iter()
                .zip(&feats)
                .map(|(p, f)| serde_json::json!({"image": p.display().to_string(), "feature": f}))
                .collect();
            println!("{}", serde_json::to_string(&rows)?);
        }
        Format::Csv => {
            for (p, f) in cmd.images.iter().zip(&feats) {
                let vals: Vec<String> = f.iter().map(|v| v.to_string()).collect();
                println!("{},{}", p.display(), vals.join(","));
            }
        }
    }
    Ok(())
}
