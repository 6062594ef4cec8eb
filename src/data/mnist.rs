//! MNIST IDX files, raw or gzip-compressed.
//!
//! IDX: a magic `0 0 type ndim`, `ndim` big-endian u32 sizes, then the data.
//! The declared size is checked against the bytes actually present before
//! anything is allocated, so a corrupt header cannot ask for gigabytes.

use super::FaceSet;
use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// Largest decompressed IDX file accepted (MNIST's largest is 47 MB).
const MAX_BYTES: u64 = 512 << 20;

/// Read a file, gunzipping when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = vec![];
        GzDecoder::new(&raw[..])
            .take(MAX_BYTES + 1)
            .read_to_end(&mut out)
            .with_context(|| format!("{}: corrupt gzip data", path.display()))?;
        if out.len() as u64 > MAX_BYTES {
            bail!(
                "{}: decompresses to more than {MAX_BYTES} bytes",
                path.display()
            );
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parse IDX bytes of unsigned bytes (type 0x08): the sizes and the data.
pub fn parse_idx<'a>(bytes: &'a [u8], name: &str) -> Result<(Vec<usize>, &'a [u8])> {
    if bytes.len() < 4 {
        bail!(
            "{name}: {} bytes is too short for an IDX header",
            bytes.len()
        );
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        bail!(
            "{name}: byte 0-1: bad IDX magic {:02x} {:02x} (expected 00 00)",
            bytes[0],
            bytes[1]
        );
    }
    if bytes[2] != 0x08 {
        bail!(
            "{name}: byte 2: element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        );
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        bail!(
            "{name}: header declares {ndim} dimensions but the file has {} bytes",
            bytes.len()
        );
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let total = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match total {
        Some(t) if t == bytes.len() - header => Ok((dims, &bytes[header..])),
        Some(t) => bail!(
            "{name}: header declares {dims:?} = {t} bytes of data, the file holds {}",
            bytes.len() - header
        ),
        None => bail!("{name}: header sizes {dims:?} overflow"),
    }
}

/// Load an MNIST split (`train` or `t10k`) from `dir` as 1 x 28 x 28 images with labels 0..9.
pub fn load(dir: &Path, split: &str) -> Result<FaceSet> {
    let find = |stem: &str| {
        [
            format!(
                "{split}-{stem}-idx{}-ubyte.gz",
                if stem == "images" { 3 } else { 1 }
            ),
            format!(
                "{split}-{stem}-idx{}-ubyte",
                if stem == "images" { 3 } else { 1 }
            ),
        ]
        .into_iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .with_context(|| format!("no MNIST {split} {stem} file in {}", dir.display()))
    };
    let (ip, lp) = (find("images")?, find("labels")?);
    let (ib, lb) = (read_maybe_gz(&ip)?, read_maybe_gz(&lp)?);
    let (idims, pixels) = parse_idx(&ib, &ip.display().to_string())?;
    let (ldims, labels) = parse_idx(&lb, &lp.display().to_string())?;
    if idims.len() != 3 || ldims.len() != 1 || idims[0] != ldims[0] {
        bail!(
            "{} {idims:?} and {} {ldims:?} do not describe the same images",
            ip.display(),
            lp.display()
        );
    }
    if let Some(bad) = labels.iter().find(|&&l| l > 9) {
        bail!("{}: label {bad} is not a digit", lp.display());
    }
    Ok(FaceSet {
        pixels: pixels.to_vec(),
        labels: labels.iter().map(|&l| l as usize).collect(),
        class_names: (0..10).map(|d| d.to_string()).collect(),
        sources: (0..idims[0])
            .map(|i| format!("{}#{i}", ip.display()))
            .collect(),
        channels: 1,
        height: idims[1],
        width: idims[2],
    })
}
