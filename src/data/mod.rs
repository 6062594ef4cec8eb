//! Data sets: image folders (JPEG, PNG, PGM, BMP), LFW's `pairs.txt` /
//! `people.txt`, MNIST IDX files, and the synthetic face-identity generator
//! that is the embedded default.
//!
//! Every source ends up as a [`FaceSet`]: preprocessed 8-bit images at the
//! network's input size (decoded once, in parallel, kept compactly as bytes),
//! with an identity label per image. Batches are made from it by the
//! [`loader`], which normalises `(x - 127.5) / 128`, flips at random for
//! training, and runs ahead of the training loop on its own thread.

use tensor::Tensor;

pub mod images;
pub mod lfw;
pub mod loader;
pub mod mnist;
pub mod pack;
pub mod pickle;
pub mod recordio;
pub mod source;
pub mod stream;
pub mod synthetic;
pub mod verification_bin;

/// Preprocessed images and their identity labels.
#[derive(Debug, Clone, Default)]
pub struct FaceSet {
    /// `len · channels · height · width` bytes, each image CHW.
    pub pixels: Vec<u8>,
    /// Identity of each image, `0..classes`.
    pub labels: Vec<usize>,
    /// Name of each identity.
    pub class_names: Vec<String>,
    /// Where each image came from (a path, or a synthetic tag), for reports.
    pub sources: Vec<String>,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
}

impl FaceSet {
    /// An empty set of images of the given geometry.
    pub fn empty(channels: usize, height: usize, width: usize) -> Self {
        FaceSet {
            channels,
            height,
            width,
            ..Default::default()
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of identities.
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.image_len()..(i + 1) * self.image_len()]
    }

    /// Append one image.
    pub fn push(&mut self, pixels: &[u8], label: usize, source: String) {
        assert_eq!(pixels.len(), self.image_len(), "FaceSet::push: image size");
        self.pixels.extend_from_slice(pixels);
        self.labels.push(label);
        self.sources.push(source);
    }

    /// The images whose identity is in `keep` (by index), relabelled `0..keep.len()` in that order.
    pub fn select_identities(&self, keep: &[usize]) -> FaceSet {
        let mut map = vec![usize::MAX; self.classes()];
        keep.iter()
            .enumerate()
            .for_each(|(new, &old)| map[old] = new);
        let mut out = FaceSet::empty(self.channels, self.height, self.width);
        out.class_names = keep.iter().map(|&k| self.class_names[k].clone()).collect();
        for i in 0..self.len() {
            let l = map[self.labels[i]];
            if l != usize::MAX {
                out.push(self.image(i), l, self.sources[i].clone());
            }
        }
        out
    }
}

/// One verification pair: two images of a [`FaceSet`], same identity or not, and its fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// First image.
    pub a: usize,
    /// Second image.
    pub b: usize,
    /// True when both show the same person.
    pub same: bool,
    /// Cross-validation fold, `0..10`.
    pub fold: usize,
}

/// Images `indices` of `set` as a normalised tensor, each mirrored where `flip` says so.
pub fn to_tensor(set: &FaceSet, indices: &[usize], flip: &[bool]) -> Tensor<f32> {
    let (c, h, w) = (set.channels, set.height, set.width);
    let mut out = vec![0f32; indices.len() * set.image_len()];
    for (k, (&i, &f)) in indices.iter().zip(flip).enumerate() {
        let src = set.image(i);
        let dst = &mut out[k * set.image_len()..(k + 1) * set.image_len()];
        for row in 0..c * h {
            for col in 0..w {
                let sc = if f { w - 1 - col } else { col };
                dst[row * w + col] = (src[row * w + sc] as f32 - 127.5) / 128.0;
            }
        }
    }
    Tensor::from_vec(&[indices.len(), c, h, w], out).expect("sizes agree")
}
