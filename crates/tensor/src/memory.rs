//! Keeping freed activation memory in the process instead of returning it to
//! the kernel after every step.
//!
//! A training step allocates and frees the same few hundred activation and
//! gradient buffers every time, many of them megabytes large. glibc's `malloc`
//! serves such blocks with `mmap` and gives them back with `munmap` (or trims
//! the heap top) as soon as they are freed, so the next step takes a fresh
//! page fault, and the kernel zeroes a fresh page, for every 4 KiB it touches:
//! 4.5% of a SphereFace-20 step's CPU time in the profile, and more in the
//! memory traffic of the zeroing. Raising the `mmap` threshold to its maximum
//! (32 MiB) and switching trimming off keeps those blocks in the heap, where the
//! next step finds them already mapped. Peak RSS does not change (the same
//! buffers are live at the peak either way); memory freed after the peak stays
//! mapped for reuse instead of being returned.
//!
//! This is a process-wide setting of the C library's allocator, so the engine
//! never makes it on its own: applications call [`retain_freed_memory`] once
//! at start-up (the `regularface` command line does). Measured with
//! `regularface bench` against `MALLOC_*` environment variables of the same
//! effect: SphereFace-20 training 5-8% faster, LeNet++ 4%.

/// Ask the C library's allocator to keep freed large blocks mapped for reuse.
///
/// Returns whether the allocator accepted the settings: `true` on Linux with
/// glibc, `false` (and nothing changed) everywhere else, where the platform
/// allocator's own policy stays in force.
pub fn retain_freed_memory() -> bool {
    platform::retain_freed_memory()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod platform {
    use std::os::raw::c_int;

    // glibc's <malloc.h> parameter numbers.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    /// glibc's largest accepted mmap threshold on 64-bit targets
    /// (`DEFAULT_MMAP_THRESHOLD_MAX`); blocks above it are always mmapped.
    const MAX_MMAP_THRESHOLD: c_int = 32 << 20;

    extern "C" {
        // int mallopt(int param, int value); part of glibc, which std links.
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    pub fn retain_freed_memory() -> bool {
        // SAFETY: mallopt only updates the allocator's tuning parameters under
        // its own lock; it takes plain integers and touches no memory of ours.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, MAX_MMAP_THRESHOLD) == 1
                && mallopt(M_TRIM_THRESHOLD, c_int::MAX) == 1
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod platform {
    pub fn retain_freed_memory() -> bool {
        false
    }
}

/// A global allocator that keeps freed blocks of 64 MiB and more for reuse.
///
/// Blocks above glibc's largest mmap threshold (32 MiB) are always mapped
/// fresh and unmapped on free, whatever [`retain_freed_memory`] sets: at batch
/// 64, MobileFaceNet's first-stage activations and their gradients are 103 MB
/// each, and every step page-faulted them in again (a kernel-zeroed 4 KiB page
/// per fault), which the profile showed as most of BatchNorm's time. This
/// allocator keeps up to [`BlockCache::SLOTS`] freed blocks of at least
/// [`BlockCache::THRESHOLD`] (64 MiB; why not from 32 MiB is written there),
/// [`BlockCache::CAP`] bytes in all, and hands one back to a request of
/// exactly its layout (a training step asks for the same sizes every step). Anything
/// else goes to the system allocator. A block freed when the cache is full is
/// returned to the system, so the cache never holds more than `CAP`.
///
/// Applications opt in with `#[global_allocator] static A: BlockCache = BlockCache::new();`.
pub struct BlockCache {
    slots: std::sync::Mutex<[(usize, usize, usize); BlockCache::SLOTS]>,
}

impl BlockCache {
    /// Smallest block kept: 64 MiB. Blocks between glibc's mmap threshold
    /// (32 MiB) and this are mapped fresh each time: at those sizes they are
    /// rarer, and a kept one can idle through the memory peak. SphereFace-20's
    /// fc5 weight gradient (42 MiB) is freed after the optimiser step and
    /// needed again only in the next backward; kept, it sat through the
    /// forward and raised peak RSS at batch 32 from 659 to 703 MiB. Mapping it
    /// afresh costs about 11k page faults per step. MobileFaceNet's and
    /// iResNet's first-stage activations at batch 64 (103 MB), which the cache
    /// is for, stay above it.
    pub const THRESHOLD: usize = 64 << 20;
    /// Most blocks kept.
    pub const SLOTS: usize = 32;
    /// Most bytes kept.
    pub const CAP: usize = 1 << 30;

    /// An empty cache.
    pub const fn new() -> Self {
        BlockCache {
            slots: std::sync::Mutex::new([(0, 0, 0); BlockCache::SLOTS]),
        }
    }

    /// Take a kept block allocated for exactly this size and alignment.
    fn take(&self, size: usize, align: usize) -> Option<*mut u8> {
        let mut slots = self.slots.lock().ok()?;
        let slot = slots
            .iter_mut()
            .find(|(p, s, a)| *p != 0 && *s == size && *a == align)?;
        let ptr = slot.0 as *mut u8;
        *slot = (0, 0, 0);
        Some(ptr)
    }

    /// Keep a freed block if there is room; false if the caller must free it.
    fn keep(&self, ptr: *mut u8, size: usize, align: usize) -> bool {
        let Ok(mut slots) = self.slots.lock() else {
            return false;
        };
        let held: usize = slots.iter().map(|s| s.1).sum();
        if held + size > Self::CAP {
            return false;
        }
        match slots.iter_mut().find(|s| s.0 == 0) {
            Some(slot) => {
                *slot = (ptr as usize, size, align);
                true
            }
            None => false,
        }
    }
}

impl Default for BlockCache {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block handed out is either fresh from `System` for this
// layout or a block `System` allocated earlier for the very same layout (size
// and alignment), which no one else holds (it was freed to us and removed from
// the cache under the lock before being returned), so it is valid for the
// request. Every block reaches `System::dealloc` with the layout `System`
// allocated it with.
unsafe impl std::alloc::GlobalAlloc for BlockCache {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() >= Self::THRESHOLD {
            if let Some(p) = self.take(layout.size(), layout.align()) {
                return p;
            }
        }
        // SAFETY: forwarded with the caller's (non-zero-size) layout.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() >= Self::THRESHOLD {
            if let Some(p) = self.take(layout.size(), layout.align()) {
                // SAFETY: `p` is valid for `layout.size()` bytes (see the impl's comment).
                unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
                return p;
            }
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if layout.size() >= Self::THRESHOLD && self.keep(ptr, layout.size(), layout.align()) {
            return;
        }
        // SAFETY: `ptr` came from `System` with this layout (a cached block
        // was allocated by `System` for the same layout).
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

/// Elements per parallel task of [`zeroed`].
const ZERO_CHUNK: usize = 1 << 16;

/// `vec![T::zero(); n]`, written by the worker threads in parallel.
///
/// The kernels' output buffers (convolution, BatchNorm, PReLU, elementwise)
/// start as zeros and are then overwritten. `vec![0.0; n]` asks the allocator
/// for zeroed memory: a block that [`BlockCache`] (or malloc's heap) hands
/// back is cleared by one `memset` on the calling thread while the other
/// workers wait, 10.8% of a MobileFaceNet training step's CPU time in `perf`.
/// Here the allocation is plain and the zeros are written in 256 KiB chunks
/// across the pool (a fresh block's page faults are spread the same way).
/// Small buffers take the plain `vec!`.
pub fn zeroed<T: crate::Element>(n: usize) -> Vec<T> {
    use rayon::prelude::*;
    if n < 4 * ZERO_CHUNK {
        return vec![T::zero(); n];
    }
    let mut v: Vec<T> = Vec::with_capacity(n);
    v.spare_capacity_mut()[..n]
        .par_chunks_mut(ZERO_CHUNK)
        .for_each(|c| {
            c.iter_mut().for_each(|x| {
                x.write(T::zero());
            })
        });
    // SAFETY: the capacity is at least n, and the chunks above cover the first
    // n elements, each written once.
    unsafe { v.set_len(n) };
    v
}
