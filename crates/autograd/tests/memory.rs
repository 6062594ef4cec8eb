//! Memory: after backward only the parameters' gradient buffers stay alive,
//! and a steady-state step leaves nothing behind. Alone in its test binary, so
//! the process-wide allocation counter sees no other test.

use autograd::{Param, Var};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use tensor::{Conv2dParams, Rng, Tensor};

/// Counts live heap blocks of at least `BIG` bytes (tensor buffers in these
/// tests; bookkeeping allocations are smaller).
struct Counting;
const BIG: usize = 2048;
static LIVE_BIG: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.size() >= BIG {
            LIVE_BIG.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if l.size() >= BIG {
            LIVE_BIG.fetch_sub(1, Ordering::SeqCst);
        }
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE_BIG.fetch_add(
            (new >= BIG) as isize - (l.size() >= BIG) as isize,
            Ordering::SeqCst,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE_BIG.load(Ordering::SeqCst)
}

/// One training step of a small conv net; returns the loss value.
fn step(x: &Tensor<f32>, conv: &Param<f32>, slope: &Param<f32>, fc: &Param<f32>) -> f32 {
    let h = Var::constant(x.clone())
        .conv2d(&conv.var(), None, Conv2dParams::new(1, 1))
        .prelu(&slope.var());
    let h = h.add(&h.mul_scalar(0.5)).reshape(&[4, 8 * 16 * 16]);
    let loss = h.matmul(&fc.var()).softmax_cross_entropy(&[0, 1, 2, 1]);
    loss.backward().unwrap();
    loss.value().item().unwrap()
}

#[test]
fn backward_frees_the_graph_and_reuses_gradient_slots() {
    let mut rng = Rng::new(1);
    let x = Tensor::<f32>::rand_normal(&[4, 3, 16, 16], 0.0, 1.0, &mut rng);
    let conv = Param::new(Tensor::rand_normal(&[8, 3, 3, 3], 0.0, 0.1, &mut rng));
    let slope = Param::new(Tensor::full(&[8], 0.25));
    let fc = Param::new(Tensor::rand_normal(&[8 * 16 * 16, 3], 0.0, 0.01, &mut rng));
    // Warm up with throw-away parameters: the rayon pool and its queues
    // allocate on first use, and so does each thread's pair of GEMM packing
    // buffers (on its first GEMM, whichever thread work-stealing hands it to):
    // that is not the graph's memory, so every thread runs a GEMM first.
    // The convolutions' per-thread scratch pools (tensor's `scratch`) fill up
    // as work-stealing happens to spread the work, and a buffer returns to the
    // pool of the thread that drops it: several steps fill every pool, so a
    // measured step finds its scratch already there (one step was flaky on a
    // loaded machine).
    let fresh = |p: &Param<f32>| Param::new(p.value().to_contiguous().add_scalar(0.0));
    for _ in 0..6 {
        step(&x, &fresh(&conv), &fresh(&slope), &fresh(&fc));
    }
    let a = Tensor::<f32>::full(&[4, 4], 1.0);
    rayon::broadcast(|_| a.matmul(&a));
    let before = live();
    step(&x, &conv, &slope, &fc);
    let after_first = live();
    let big_grads = [&conv, &slope, &fc]
        .iter()
        .filter(|p| p.len() * 4 >= BIG)
        .count() as isize;
    assert_eq!(big_grads, 1, "fc's gradient is the one large buffer");
    assert_eq!(
        after_first - before,
        big_grads,
        "after the first backward only the new gradient buffers stay alive"
    );
    for p in [&conv, &slope, &fc] {
        p.zero_grad();
    }
    let g_ptr = conv.grad().as_ref().unwrap().as_slice().unwrap().as_ptr();
    step(&x, &conv, &slope, &fc);
    assert_eq!(
        live(),
        after_first,
        "a steady-state step leaves no buffer behind"
    );
    assert_eq!(
        conv.grad().as_ref().unwrap().as_slice().unwrap().as_ptr(),
        g_ptr,
        "gradient slot reused in place"
    );
    // clear_grad drops the large gradient buffer
    let held = live();
    fc.clear_grad();
    assert_eq!(live(), held - 1, "clear_grad frees the gradient");
    assert!(fc.grad().is_none());

    // A PReLU whose slopes are in (0, 1] keeps its output for the backward,
    // so the convolution's output (its input) is freed after the forward;
    // with a slope outside, the input stays alive beside the output.
    let live_after_forward = |slope: &Param<f32>| {
        let start = live();
        let y = Var::constant(x.clone())
            .conv2d(&conv.var(), None, Conv2dParams::new(1, 1))
            .prelu(&slope.var());
        let held = live() - start;
        drop(y);
        held
    };
    let outside = Param::new(Tensor::full(&[8], -0.25));
    assert_eq!(live_after_forward(&slope), 1, "only the PReLU's output");
    assert_eq!(live_after_forward(&outside), 2, "input and output");
}
