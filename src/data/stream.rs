//! Training images as a run sees them: a [`FaceSet`] in memory, or a RecordIO
//! pack streamed from disk ([`PackImages`]), whose records are read and
//! decoded only when a batch needs them, so memory does not grow with the
//! pack. Decoding runs on its own small thread pool, ahead of the training
//! step (see `loader::Prefetcher`), so it neither waits for nor slows the
//! step's own parallel kernels beyond the cores it shares.

use super::images::{decode_image, preprocess};
use super::recordio::{ImageHeader, Layout, RecordPack};
use super::{to_tensor, FaceSet};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tensor::{Rng, Tensor};

/// A pack's images with their identities, decoded on demand at one input size.
pub struct PackImages {
    pack: RecordPack,
    labels: Vec<usize>,
    classes: usize,
    input: (usize, usize, usize),
    pool: rayon::ThreadPool,
    skipped: AtomicUsize,
}

/// Decode-pool threads: one per core, since decoding overlaps the step.
fn decode_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8)
}

impl PackImages {
    /// Open the pack in `dir` for training at input `(c, h, w)`. Identities come
    /// from the legacy layout's identity records or, for plain packs, from each
    /// record's header; they are numbered densely in order of their labels and
    /// checked against `property` when it is there.
    pub fn open(dir: &std::path::Path, input: (usize, usize, usize)) -> Result<Self> {
        let pack = RecordPack::open(dir)?;
        let raw: Vec<f32> = match pack.layout {
            Layout::Legacy { images_end } => {
                let mut raw = vec![f32::NAN; pack.image_keys.len()];
                let mut key = images_end;
                while let Ok(payload) = pack.read(key) {
                    let (h, _) = ImageHeader::unpack(&payload)?;
                    let [start, end] = h.labels[..] else {
                        bail!(
                            "{}: identity record {key} has {} labels, expected [start, end)",
                            dir.display(),
                            h.labels.len()
                        );
                    };
                    let (start, end) = (start as u64, end as u64);
                    if start < 1 || end > images_end || start > end {
                        bail!("{}: identity record {key} names images {start}..{end}, outside 1..{images_end}", dir.display());
                    }
                    let class = (key - images_end) as f32;
                    (start..end).for_each(|k| raw[(k - 1) as usize] = class);
                    key += 1;
                }
                if let Some(i) = raw.iter().position(|v| v.is_nan()) {
                    bail!(
                        "{}: image record {} belongs to no identity record",
                        dir.display(),
                        i + 1
                    );
                }
                raw
            }
            Layout::Plain => pack
                .image_keys
                .par_iter()
                .map(|&k| pack.image(k).map(|(h, _)| h.identity()))
                .collect::<Result<_>>()?,
        };
        let mut distinct: Vec<f32> = raw.clone();
        distinct.sort_by(f32::total_cmp);
        distinct.dedup();
        let labels = raw
            .iter()
            .map(|v| {
                distinct
                    .binary_search_by(|d| d.total_cmp(v))
                    .expect("present")
            })
            .collect();
        if let Some((classes, _, _)) = pack.property {
            if classes != distinct.len() {
                bail!(
                    "{}: property says {classes} identities, the pack's records hold {}",
                    dir.display(),
                    distinct.len()
                );
            }
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(decode_threads())
            .build()
            .context("starting the decoding threads")?;
        Ok(PackImages {
            pack,
            labels,
            classes: distinct.len(),
            input,
            pool,
            skipped: AtomicUsize::new(0),
        })
    }

    /// Read, decode and preprocess image `i` (its centre crop at the input's aspect).
    pub fn decode(&self, i: usize) -> Result<Vec<u8>> {
        let key = self.pack.image_keys[i];
        let (_, bytes) = self.pack.image(key)?;
        let img = decode_image(&bytes).with_context(|| format!("record {key}"))?;
        let (c, h, w) = self.input;
        Ok(preprocess(&img, c, h, w))
    }

    /// Records found undecodable so far (each reported when met).
    pub fn skipped(&self) -> usize {
        self.skipped.load(Ordering::Relaxed)
    }

    /// A set of up to `max` decoded images, at most `per_identity` of each
    /// identity, drawn by `seed`: what a run fits its verification threshold on.
    pub fn sample(&self, max: usize, per_identity: usize, seed: u64) -> FaceSet {
        let mut order: Vec<usize> = (0..self.labels.len()).collect();
        Rng::new(seed).shuffle(&mut order);
        let mut taken = vec![0usize; self.classes];
        let chosen: Vec<usize> = order
            .into_iter()
            .filter(|&i| {
                let t = &mut taken[self.labels[i]];
                *t += 1;
                *t <= per_identity
            })
            .take(max)
            .collect();
        let decoded: Vec<Option<Vec<u8>>> = self
            .pool
            .install(|| chosen.par_iter().map(|&i| self.decode(i).ok()).collect());
        let (c, h, w) = self.input;
        let mut set = FaceSet::empty(c, h, w);
        set.class_names = (0..self.classes).map(|k| k.to_string()).collect();
        for (&i, px) in chosen.iter().zip(decoded) {
            if let Some(px) = px {
                set.push(&px, self.labels[i], String::new());
            }
        }
        set
    }
}

/// The training images of a run.
#[derive(Clone)]
pub enum TrainImages {
    /// Decoded into memory.
    Memory(Arc<FaceSet>),
    /// Streamed from a RecordIO pack.
    Pack(Arc<PackImages>),
}

impl TrainImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        match self {
            TrainImages::Memory(s) => s.len(),
            TrainImages::Pack(p) => p.labels.len(),
        }
    }

    /// True when there is no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of identities.
    pub fn classes(&self) -> usize {
        match self {
            TrainImages::Memory(s) => s.classes(),
            TrainImages::Pack(p) => p.classes,
        }
    }

    /// (channels, height, width) of the images a batch holds.
    pub fn input(&self) -> (usize, usize, usize) {
        match self {
            TrainImages::Memory(s) => (s.channels, s.height, s.width),
            TrainImages::Pack(p) => p.input,
        }
    }

    /// The normalised batch of images `idx`, mirrored where `flips` says, and
    /// their labels. From a pack, records that do not decode are reported
    /// (record key and reason), counted and left out of the batch.
    pub fn batch(&self, idx: &[usize], flips: &[bool]) -> (Tensor<f32>, Vec<usize>) {
        match self {
            TrainImages::Memory(s) => (
                to_tensor(s, idx, flips),
                idx.iter().map(|&i| s.labels[i]).collect(),
            ),
            TrainImages::Pack(p) => {
                let decoded: Vec<Result<Vec<u8>>> = p
                    .pool
                    .install(|| idx.par_iter().map(|&i| p.decode(i)).collect());
                let (c, h, w) = p.input;
                let mut set = FaceSet::empty(c, h, w);
                set.class_names = vec![String::new(); p.classes];
                let mut kept_flips = vec![];
                for ((&i, r), &f) in idx.iter().zip(decoded).zip(flips) {
                    match r {
                        Ok(px) => {
                            set.push(&px, p.labels[i], String::new());
                            kept_flips.push(f);
                        }
                        Err(e) => {
                            p.skipped.fetch_add(1, Ordering::Relaxed);
                            eprintln!("skipped an undecodable training image: {e:#}");
                        }
                    }
                }
                let all: Vec<usize> = (0..set.len()).collect();
                (to_tensor(&set, &all, &kept_flips), set.labels.clone())
            }
        }
    }
}
