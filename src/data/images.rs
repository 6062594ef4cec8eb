//! Image decoding (JPEG, PNG, PGM/PPM, BMP, in pure Rust through `image`) and
//! preprocessing to the network's input; image-folder data sets.

use super::FaceSet;
use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
use image::DynamicImage;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// File endings read as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "pgm", "ppm", "pnm", "bmp"];

/// An image that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// The decoder's or the reader's reason.
    pub reason: String,
}

/// Largest centred crop of `src` with the aspect of `w x h`, resized to `w x h`,
/// as CHW bytes with 1 (luma) or 3 (RGB) channels. Grey input becomes three equal channels.
pub fn preprocess(img: &DynamicImage, channels: usize, h: usize, w: usize) -> Vec<u8> {
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let (cw, ch) = if sw * h > sh * w {
        (sh * w / h, sh)
    } else {
        (sw, sw * h / w)
    };
    let (cw, ch) = (cw.max(1), ch.max(1));
    let cropped = img.crop_imm(
        ((sw - cw) / 2) as u32,
        ((sh - ch) / 2) as u32,
        cw as u32,
        ch as u32,
    );
    let resized = if (cw, ch) == (w, h) {
        cropped
    } else {
        cropped.resize_exact(w as u32, h as u32, FilterType::Triangle)
    };
    let mut out = vec![0u8; channels * h * w];
    if channels == 1 {
        out.copy_from_slice(resized.to_luma8().as_raw());
    } else {
        let rgb = resized.to_rgb8();
        for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * h * w + i] = px[c];
            }
        }
    }
    out
}

/// Decode one file and preprocess it.
pub fn load_image(path: &Path, channels: usize, h: usize, w: usize) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let img = decode_image(&bytes).with_context(|| format!("cannot decode {}", path.display()))?;
    Ok(preprocess(&img, channels, h, w))
}

/// Largest width or height accepted from an image header: a 16-megapixel
/// photo fits; face data sets are crops far smaller.
pub const MAX_SIDE: u32 = 4096;

/// Most bytes a decoder may allocate (a 4096 x 4096 RGB image is 48 MiB).
pub const MAX_DECODED: u64 = 64 << 20;

/// Decode JPEG / PNG / PNM / BMP bytes (format from the content), refusing
/// headers that declare more than [`MAX_SIDE`] pixels a side or
/// [`MAX_DECODED`] bytes of decoded data before anything that large is
/// allocated. (At 8192 a side, `cargo fuzz` found a 163-byte RLE BMP whose
/// decoding and preprocessing took over a second.)
pub fn decode_image(bytes: &[u8]) -> Result<DynamicImage> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED);
    reader.limits(limits);
    let img = reader.decode()?;
    if img.width() == 0 || img.height() == 0 {
        bail!("image has no pixels");
    }
    Ok(img)
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

/// Load files given as (identity index, path), decoding in parallel. Unusable
/// images are skipped and returned with their reason.
pub fn load_files(
    files: &[(usize, PathBuf)],
    class_names: Vec<String>,
    channels: usize,
    h: usize,
    w: usize,
) -> (FaceSet, Vec<Skipped>) {
    let decoded: Vec<Result<Vec<u8>>> = files
        .par_iter()
        .map(|(_, p)| load_image(p, channels, h, w))
        .collect();
    let mut set = FaceSet::empty(channels, h, w);
    set.class_names = class_names;
    let mut skipped = vec![];
    for ((label, path), r) in files.iter().zip(decoded) {
        match r {
            Ok(px) => set.push(&px, *label, path.display().to_string()),
            Err(e) => skipped.push(Skipped {
                path: path.clone(),
                reason: format!("{e:#}"),
            }),
        }
    }
    (set, skipped)
}

/// Image files as (identity index, path), and the identities' names.
pub type FolderListing = (Vec<(usize, PathBuf)>, Vec<String>);

/// The image files of a folder with one sub-folder per identity (sorted by
/// name), as (identity index, path), and the identities' names. Fails when the
/// folder is missing or holds no image at all.
pub fn list_folder(dir: &Path) -> Result<FolderListing> {
    if !dir.is_dir() {
        bail!(
            "data folder {} does not exist (expected one sub-folder of images per identity)",
            dir.display()
        );
    }
    let mut files = vec![];
    let mut names = vec![];
    for sub in sorted_entries(dir)?.into_iter().filter(|p| p.is_dir()) {
        let imgs: Vec<PathBuf> = sorted_entries(&sub)?
            .into_iter()
            .filter(|p| p.is_file() && is_image(p))
            .collect();
        if imgs.is_empty() {
            continue;
        }
        let label = names.len();
        names.push(
            sub.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        files.extend(imgs.into_iter().map(|p| (label, p)));
    }
    if files.is_empty() {
        bail!(
            "data folder {} holds no images ({}) in per-identity sub-folders",
            dir.display(),
            IMAGE_EXTENSIONS.join(", ")
        );
    }
    Ok((files, names))
}

/// An image folder: one sub-folder per identity (sorted by name), images inside.
/// Fails when the folder is missing or holds no image at all.
pub fn load_folder(
    dir: &Path,
    channels: usize,
    h: usize,
    w: usize,
) -> Result<(FaceSet, Vec<Skipped>)> {
    let (files, names) = list_folder(dir)?;
    let (set, skipped) = load_files(&files, names, channels, h, w);
    if set.is_empty() {
        bail!(
            "data folder {}: none of its {} images could be decoded",
            dir.display(),
            files.len()
        );
    }
    Ok((set, skipped))
}
