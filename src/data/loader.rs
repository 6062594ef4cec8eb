//! Batches: normalisation, random flips, a deterministic order, and a
//! prefetching thread.
//!
//! The batch of global step `s` depends only on (seed, s): the epoch's
//! permutation comes from `Rng(seed, epoch)` and the flips from `Rng(seed, s)`.
//! So a run resumed at step `s` sees exactly the batches the uninterrupted run
//! would have seen.

use super::stream::TrainImages;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;
use tensor::{Rng, Tensor};

/// One training batch.
pub struct Batch {
    /// `[B, C, H, W]`, normalised `(x - 127.5) / 128`.
    pub images: Tensor<f32>,
    /// Identity of each image.
    pub labels: Vec<usize>,
}

/// The deterministic batch order of a training run.
#[derive(Debug, Clone, Copy)]
pub struct Sampler {
    /// Images in the set.
    pub len: usize,
    /// Images per batch.
    pub batch: usize,
    /// Seed of the order and the flips.
    pub seed: u64,
    /// Mirror images at random.
    pub flip: bool,
}

impl Sampler {
    /// Full batches per epoch (the tail of each permutation is dropped).
    pub fn steps_per_epoch(&self) -> usize {
        (self.len / self.batch).max(1)
    }

    /// The image order of epoch `epoch` (a seeded permutation).
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut perm: Vec<usize> = (0..self.len).collect();
        Rng::new(self.seed ^ 0xE90C_0000 ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .shuffle(&mut perm);
        perm
    }

    /// Image indices and flips of global step `step`, given its epoch's order.
    pub fn batch_in(&self, order: &[usize], step: u64) -> (Vec<usize>, Vec<bool>) {
        let j = (step % self.steps_per_epoch() as u64) as usize;
        let take = self.batch.min(self.len);
        let idx = order[j * take..(j + 1) * take].to_vec();
        let mut rng = Rng::new(self.seed ^ 0xF11F_0000 ^ step.wrapping_mul(0xBF58_476D_1CE4_E5B9));
        let flips = idx
            .iter()
            .map(|_| self.flip && rng.uniform() < 0.5)
            .collect();
        (idx, flips)
    }

    /// Image indices and flips of global step `step`.
    pub fn batch_at(&self, step: u64) -> (Vec<usize>, Vec<bool>) {
        self.batch_in(
            &self.epoch_order(step / self.steps_per_epoch() as u64),
            step,
        )
    }
}

/// Batches of steps `start..end`, assembled on a background thread `depth` ahead.
pub struct Prefetcher {
    rx: Receiver<Batch>,
    handle: Option<JoinHandle<()>>,
}

impl Prefetcher {
    /// Start assembling batches.
    pub fn start(set: TrainImages, sampler: Sampler, start: u64, end: u64, depth: usize) -> Self {
        let (tx, rx) = sync_channel(depth.max(1));
        let handle = std::thread::spawn(move || {
            // The epoch's permutation is made once per epoch, not once per step.
            let mut order: Option<(u64, Vec<usize>)> = None;
            for step in start..end {
                let epoch = step / sampler.steps_per_epoch() as u64;
                if !matches!(&order, Some((e, _)) if *e == epoch) {
                    order = Some((epoch, sampler.epoch_order(epoch)));
                }
                let (idx, flips) = sampler.batch_in(&order.as_ref().expect("set above").1, step);
                let (images, labels) = set.batch(&idx, &flips);
                let batch = Batch { images, labels };
                if tx.send(batch).is_err() {
                    return; // the consumer stopped early
                }
            }
        });
        Prefetcher {
            rx,
            handle: Some(handle),
        }
    }

    /// The next batch, or `None` after the last step.
    pub fn next_batch(&mut self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Unblock the producer, then wait for it, so no thread outlives the loader.
        let (_tx, rx) = sync_channel(1);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
