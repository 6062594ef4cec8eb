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
