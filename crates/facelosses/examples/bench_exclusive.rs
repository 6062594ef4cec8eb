//! Exclusive regularizer forward + backward: time and peak extra memory.
//!
//! `cargo run --release -p facelosses --example bench_exclusive` (`-- --quick`
//! for a smoke run). Extra memory is measured exactly, by a counting global
//! allocator: the peak of live heap bytes during forward + backward, minus the
//! live bytes before (the weights themselves are not counted).

use autograd::Var;
use facelosses::exclusive::TILE;
use facelosses::exclusive_regularizer;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tensor::{Rng, Tensor};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's layout contract holds for System too.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    println!("# exclusive regularizer, forward + backward (f32)");
    println!("{}, tile {TILE}", tensor::backend::describe());
    println!(
        "{:<18} {:>10} {:>10} {:>16} {:>14}",
        "C x K", "median s", "min s", "peak extra MiB", "gradient MiB"
    );
    let sizes: &[usize] = if quick { &[1000] } else { &[1000, 10_572] };
    for &c in sizes {
        let k = 512;
        let w = Tensor::<f32>::rand_normal(&[c, k], 0.0, 1.0, &mut Rng::new(1));
        let mut times = vec![];
        let mut peak_extra = 0;
        for _ in 0..if quick { 1 } else { 5 } {
            let leaf = Var::leaf(w.clone());
            let base = LIVE.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let t = Instant::now();
            let (loss, _) = exclusive_regularizer(&leaf);
            let grads = loss.backward().expect("scalar loss");
            times.push(t.elapsed().as_secs_f64());
            std::hint::black_box(grads.get(&leaf));
            peak_extra = peak_extra.max(PEAK.load(Ordering::Relaxed) - base);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        println!(
            "{:<18} {:>10.3} {:>10.3} {:>16.1} {:>14.1}",
            format!("{c} x {k}"),
            times[times.len() / 2],
            times[0],
            mib(peak_extra),
            mib(c * k * 4)
        );
    }
    println!("(peak extra includes the gradient itself, which the caller keeps)");
}
