//! `regularface pack`: an image folder into a RecordIO pack (legacy layout,
//! which insightface's tools read), and LFW's pairs into a `.bin`
//! verification set. Images are stored as their files' bytes, not re-encoded;
//! each is decoded once to check it (an undecodable file is reported and left
//! out). Everything is written under temporary names and renamed when complete.

use super::images::{decode_image, list_folder, Skipped};
use super::lfw::{image_path, Lfw};
use super::recordio::PackWriter;
use super::verification_bin::{self, BinSet};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::path::Path;

/// A file's bytes and its decoded (height, width).
type CheckedImage = (Vec<u8>, (usize, usize));

/// What a folder pack holds.
#[derive(Debug, Clone, PartialEq)]
pub struct PackSummary {
    /// Images written.
    pub images: usize,
    /// Identities with at least one image written.
    pub identities: usize,
    /// Image size recorded in `property` (of the first image).
    pub size: (usize, usize),
    /// Files left out, with the decoder's reason.
    pub skipped: Vec<Skipped>,
}

/// Pack the identity folders under `src` into `out/train.rec`, `train.idx`, `property`.
pub fn pack_folder(src: &Path, out: &Path) -> Result<PackSummary> {
    let (files, _names) = list_folder(src)?;
    let mut skipped = vec![];
    let mut writer: Option<PackWriter> = None;
    let (mut images, mut size, mut label_map) = (0, (0, 0), std::collections::BTreeMap::new());
    // Decode in parallel chunks to check the files, write in order.
    for chunk in files.chunks(256) {
        let checked: Vec<Result<CheckedImage>> = chunk
            .par_iter()
            .map(|(_, p)| {
                let bytes =
                    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
                let img = decode_image(&bytes)?;
                Ok((bytes, (img.height() as usize, img.width() as usize)))
            })
            .collect();
        for ((label, path), r) in chunk.iter().zip(checked) {
            match r {
                Ok((bytes, hw)) => {
                    if writer.is_none() {
                        size = hw;
                        writer = Some(PackWriter::create(out, hw.0, hw.1)?);
                    }
                    // Identities that lost every image are not numbered.
                    let n = label_map.len();
                    let dense = *label_map.entry(*label).or_insert(n);
                    writer.as_mut().expect("created").add(dense, &bytes)?;
                    images += 1;
                }
                Err(e) => skipped.push(Skipped {
                    path: path.clone(),
                    reason: format!("{e:#}"),
                }),
            }
        }
    }
    let Some(writer) = writer else {
        bail!(
            "{}: none of its {} images could be decoded",
            src.display(),
            files.len()
        );
    };
    writer.finish()?;
    Ok(PackSummary {
        images,
        identities: label_map.len(),
        size,
        skipped,
    })
}

/// Write the pairs of `folds` of LFW's `pairs.txt` (all ten when empty), in
/// file order, as a `.bin` verification set; returns the number of pairs.
pub fn lfw_pairs_to_bin(root: &Path, folds: &[usize], out: &Path) -> Result<usize> {
    let lfw = Lfw::open(root)?;
    if let Some(f) = folds.iter().find(|&&f| f >= 10) {
        bail!("--folds {f} must be between 0 and 9");
    }
    let chosen: Vec<_> = lfw
        .pairs
        .iter()
        .filter(|p| folds.is_empty() || folds.contains(&p.fold))
        .collect();
    let paths: Vec<_> = chosen
        .iter()
        .flat_map(|p| {
            [
                image_path(root, &p.name_a, p.num_a),
                image_path(root, &p.name_b, p.num_b),
            ]
        })
        .collect();
    let images = paths
        .par_iter()
        .map(|p| {
            let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            decode_image(&bytes).with_context(|| format!("{}", p.display()))?;
            Ok(bytes)
        })
        .collect::<Result<Vec<_>>>()?;
    let set = BinSet {
        images,
        issame: chosen.iter().map(|p| p.same()).collect(),
    };
    verification_bin::write(out, &set)?;
    Ok(set.issame.len())
}
