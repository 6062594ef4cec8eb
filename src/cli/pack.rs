//! `regularface pack`: an image folder into a RecordIO pack, or LFW's pairs into a `.bin` set.

use anyhow::Result;
use clap::Args;
use regularface::data::pack::{lfw_pairs_to_bin, pack_folder};
use std::path::PathBuf;

/// Flags of `pack`.
#[derive(Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["images", "lfw"]))]
pub struct PackCmd {
    /// Image folder (one sub-folder per identity) to pack into OUT/train.rec, train.idx, property.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Output folder of the pack.
    #[arg(long, requires = "images")]
    out: Option<PathBuf>,
    /// LFW folder whose pairs.txt pairs go into a .bin verification set (--bin).
    #[arg(long)]
    lfw: Option<PathBuf>,
    /// The .bin file to write.
    #[arg(long, requires = "lfw")]
    bin: Option<PathBuf>,
    /// Folds of pairs.txt to include (default: all ten, 6,000 pairs).
    #[arg(long, value_delimiter = ',', requires = "lfw")]
    folds: Vec<usize>,
}

/// Run `pack`.
pub fn run(cmd: PackCmd) -> Result<()> {
    if let (Some(src), Some(out)) = (&cmd.images, &cmd.out) {
        let s = pack_folder(src, out)?;
        for k in s.skipped.iter().take(20) {
            eprintln!("skipped {}: {}", k.path.display(), k.reason);
        }
        println!(
            "packed {} images of {} identities ({}x{}; {} skipped) into {}",
            s.images,
            s.identities,
            s.size.0,
            s.size.1,
            s.skipped.len(),
            out.join("train.rec").display()
        );
    } else if let (Some(lfw), Some(bin)) = (&cmd.lfw, &cmd.bin) {
        let n = lfw_pairs_to_bin(lfw, &cmd.folds, bin)?;
        println!("wrote {n} pairs to {}", bin.display());
    } else {
        anyhow::bail!("give --images DIR with --out DIR, or --lfw DIR with --bin FILE");
    }
    Ok(())
}
