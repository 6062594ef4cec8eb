//! # tensor
//!
//! N-dimensional tensors for `regularface-rs`, the lowest crate of the engine.
//!
//! * [`Tensor<T>`] is a shared, copy-on-write n-d array (`ndarray::ArcArray`) of
//!   an [`Element`]: `f32` for speed, `f64` for gradient checks.
//! * Elementwise ops broadcast like NumPy; their contiguous fast paths run in
//!   kernels compiled twice (portable and AVX2+FMA) and picked at run time
//!   ([`simd`]), split across `rayon` above a size threshold.
//! * [`gemm`] multiplies strided matrices, so a transposed operand is a view,
//!   never a copy: `f32` on our own AVX-512 kernel ([`sgemm`]) when the CPU has
//!   it, otherwise (and for `f64`) on `matrixmultiply`.
//! * [`conv`] and [`pool`] hold NCHW convolution (im2col + GEMM; Winograd
//!   F(2x2, 3x3) for 3x3 and F(2x2, 5x5) for 5x5 stride-1 layers, chosen in
//!   `conv/dispatch.rs`) and pooling kernels with their gradients.
//! * [`backend`] reads the environment switches (`REGULARFACE_NO_SIMD`,
//!   `_GEMM`, `_CONV`) once and describes the back end in one line.
//! * Every shape-checking op has a fallible `try_*` form returning a
//!   [`TensorError`] that names the op, both shapes and the axis at fault; the
//!   plain form panics with the same message.
//!
//! ```
//! use tensor::Tensor;
//! let a = Tensor::<f32>::from_vec(&[2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
//! let b = Tensor::<f32>::from_vec(&[3], vec![10., 20., 30.]).unwrap();
//! let c = a.add(&b); // broadcast over rows
//! assert_eq!(c.to_vec(), vec![11., 22., 33., 14., 25., 36.]);
//! let p = a.matmul(&a.t()); // a · aᵀ, the transpose is a view
//! assert_eq!(p.shape(), &[2, 2]);
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod conv;
mod elementwise;
mod error;
pub mod gemm;
mod index;
pub mod memory;
pub mod norm;
pub mod pool;
pub mod profile;
pub mod random;
mod reduce;
mod scratch;
#[cfg(target_arch = "x86_64")]
pub mod sgemm;
mod shape;
pub mod simd;
mod tensor;

pub use conv::Conv2dParams;
pub use error::{TensorError, TensorResult};
pub use pool::Pool2dParams;
pub use random::Rng;
pub use tensor::Tensor;

use num_traits::{Float, FromPrimitive, NumAssign};
use std::fmt::{Debug, Display};
use std::iter::Sum;

/// The element types a [`Tensor`] can hold: `f32` and `f64`.
///
/// Everything numeric goes through `num-traits`; the only per-type code is the
/// GEMM entry point: `f32` has our own AVX-512 kernel, and `matrixmultiply`
/// has one function per precision.
pub trait Element:
    Float
    + FromPrimitive
    + NumAssign
    + Sum
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + 'static
{
    /// Name of the type as written in checkpoints (`F32`, `F64`).
    const DTYPE: &'static str;

    /// `C = alpha * A * B + beta * C` on strided row/column layouts.
    ///
    /// # Safety
    /// The pointers must address `m x k`, `k x n` and `m x n` matrices under the
    /// given strides, and `c` must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_kernel(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );

    /// Convert from `f64` (constants in kernels and tests).
    fn from_f64_lossy(v: f64) -> Self {
        <Self as FromPrimitive>::from_f64(v).expect("finite f64 converts to a float")
    }
}

impl Element for f32 {
    const DTYPE: &'static str = "F32";
    unsafe fn gemm_kernel(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        #[cfg(target_arch = "x86_64")]
        if crate::sgemm::avx512_enabled() {
            // SAFETY: forwarded from the caller's contract above; AVX-512F was detected.
            unsafe {
                crate::sgemm::sgemm(
                    m,
                    k,
                    n,
                    alpha,
                    a,
                    (rsa, csa),
                    b,
                    (rsb, csb),
                    beta,
                    c,
                    (rsc, csc),
                )
            };
            return;
        }
        // SAFETY: forwarded from the caller's contract above.
        unsafe {
            matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    }
}

impl Element for f64 {
    const DTYPE: &'static str = "F64";
    unsafe fn gemm_kernel(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded from the caller's contract above.
        unsafe {
            matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    }
}
pub use ndarray;
