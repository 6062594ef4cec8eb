//! An opt-in per-kernel time profile: where a training step spends its time.
//!
//! Off by default (one relaxed atomic load per kernel call). When enabled,
//! each top-level kernel adds its wall time to its section; `Im2col` and
//! `WinogradTransform` are summed over worker threads, so they are CPU time and
//! may exceed wall time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The kernels the profile separates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Convolution forward (im2col + GEMM + bias), wall time.
    ConvForward,
    /// Convolution input gradient (GEMM + col2im), wall time.
    ConvInputGrad,
    /// Convolution weight and bias gradient (im2col + GEMM), wall time.
    ConvWeightGrad,
    /// im2col and col2im inside the convolutions, CPU time over all threads.
    Im2col,
    /// Winograd tile transforms inside the 3x3 and 5x5 convolutions (input,
    /// output, output-gradient), CPU time over all threads.
    WinogradTransform,
    /// `Tensor::matmul` (fc layers, classifier), wall time.
    Matmul,
    /// Elementwise kernels (maps, zips, PReLU, in-place updates), wall time.
    Elementwise,
    /// Pooling forward and backward, wall time.
    Pool,
    /// Reductions and lane-wise ops (sums, softmax, normalisation), wall time.
    Reduce,
    /// Grouped and depthwise convolution, forward and backward, wall time.
    GroupedConv,
    /// Training-mode batch normalisation, forward and backward, wall time.
    BatchNorm,
}

/// Every section, in report order.
pub const SECTIONS: [Section; 11] = [
    Section::ConvForward,
    Section::ConvInputGrad,
    Section::ConvWeightGrad,
    Section::Im2col,
    Section::WinogradTransform,
    Section::Matmul,
    Section::Elementwise,
    Section::Pool,
    Section::Reduce,
    Section::GroupedConv,
    Section::BatchNorm,
];

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; SECTIONS.len()] = [const { AtomicU64::new(0) }; SECTIONS.len()];

/// Switch profiling on or off (and clear the counters).
pub fn enable(on: bool) {
    NANOS.iter().for_each(|n| n.store(0, Ordering::Relaxed));
    ENABLED.store(on, Ordering::Relaxed);
}

/// Seconds per section since [`enable`].
pub fn snapshot() -> Vec<(Section, f64)> {
    SECTIONS
        .iter()
        .map(|&s| (s, NANOS[s as usize].load(Ordering::Relaxed) as f64 * 1e-9))
        .collect()
}

thread_local! {
    /// Sections open on this thread: a kernel called by another kernel of the
    /// same section (a zip falling back to a map) is not counted twice.
    static OPEN: std::cell::Cell<u16> = const { std::cell::Cell::new(0) };
}

/// Adds its lifetime to a section when dropped (if profiling is on).
pub struct Scope(Option<(Section, Instant)>);

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some((s, t)) = self.0 {
            NANOS[s as usize].fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            OPEN.with(|o| o.set(o.get() & !(1 << s as u16)));
        }
    }
}

/// Time the rest of the enclosing block under `section`.
#[inline]
pub fn scope(section: Section) -> Scope {
    if !ENABLED.load(Ordering::Relaxed) {
        return Scope(None);
    }
    let bit = 1u16 << section as u16;
    let fresh = OPEN.with(|o| {
        let was = o.get();
        o.set(was | bit);
        was & bit == 0
    });
    Scope(fresh.then(|| (section, Instant::now())))
}
