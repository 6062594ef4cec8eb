//! Per-thread scratch buffers for the convolution kernels (column matrices,
//! staging copies), kept from one call to the next.
//!
//! A convolution needs a column matrix of up to K x 2688 floats (6 MiB at
//! SphereFace-20's first stage) per worker. Allocated per call, every one is a
//! fresh `malloc` whose pages the kernel or `memset` zeroes before im2col
//! overwrites them all: 3.6% of a training step's CPU time went to `memset`.
//! Here each thread keeps its buffers in a small pool; a kernel borrows one as
//! a [`Scratch`] guard, which returns it to the pool of the thread that drops
//! it. Buffers only grow, so the steady state allocates nothing; the memory
//! kept is a few column matrices per thread (tens of MiB at most), which a
//! step would allocate anyway.

use crate::Element;
use std::any::Any;
use std::cell::RefCell;

/// Buffers kept per thread (of any element type); more are dropped. A kernel
/// borrows two at a time, and each kept buffer grows to the largest use, so a
/// larger pool only adds resident memory.
const POOL_SIZE: usize = 2;

thread_local! {
    static POOL: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// A vector borrowed from this thread's pool, given back when dropped.
pub(crate) struct Scratch<T: Element>(Vec<T>);

impl<T: Element> Scratch<T> {
    /// A buffer from the pool (the first one of element type `T`), or a new one.
    pub(crate) fn take() -> Self {
        let found = POOL.with(|p| {
            let mut pool = p.borrow_mut();
            let at = pool.iter().position(|b| b.is::<Vec<T>>())?;
            pool.swap_remove(at).downcast::<Vec<T>>().ok()
        });
        Scratch(found.map(|b| *b).unwrap_or_default())
    }

    /// Its first `n` elements, growing it (zero-filled) only when it is shorter.
    /// The contents are whatever the last user left: callers overwrite them.
    pub(crate) fn fit(&mut self, n: usize) -> &mut [T] {
        if self.0.len() < n {
            self.0.resize(n, T::zero());
        }
        &mut self.0[..n]
    }
}

impl<T: Element> Drop for Scratch<T> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        // try_with: a thread being torn down has no pool left; the buffer is freed.
        let _ = POOL.try_with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOL_SIZE {
                pool.push(Box::new(buf));
            }
        });
    }
}
