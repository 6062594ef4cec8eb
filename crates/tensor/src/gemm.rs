//! Matrix multiplication with strided operands, so a transposed matrix is a
//! view, never a copy. The single-threaded kernel underneath is
//! [`Element::gemm_kernel`]: our AVX-512 sgemm for `f32` where the CPU has it
//! (`crate::sgemm`), `matrixmultiply` otherwise.
//!
//! Parallelism: one level only. By default we split a large GEMM into row (or
//! column) panels that `rayon` runs on its pool, each panel a single-threaded
//! kernel call; the convolution kernels instead run single-threaded
//! GEMMs inside their own rayon loop over images. The alternative, the
//! `matrixmultiply-threading` feature, lets matrixmultiply thread each call on
//! its own pool; mixing it with our rayon loops would oversubscribe the cores.
//! Measured on this project's 2-core machine (`cargo run --release -p tensor
//! --example bench`, and again with `--features matrixmultiply-threading`),
//! rayon splitting matched matrixmultiply's threading on square sgemm and won
//! clearly on the convolution passes, where per-image GEMMs are small (see the
//! README's table), so the rayon split is the default.

use crate::error::{or_panic, TensorError, TensorResult};
use crate::{Element, Tensor};
use ndarray::{ArrayD, IxDyn};

/// Below this many multiply-adds a GEMM is not split across threads.
const PARALLEL_MIN_MACS: usize = 1 << 21;

/// A raw pointer that may cross to a rayon worker.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: used only to hand disjoint panels of one output matrix to workers
// inside a `rayon::scope` that outlives none of the borrows it came from.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above; the pointer itself is only copied, never dereferenced concurrently on the same elements.
unsafe impl<T> Sync for SendPtr<T> {}

/// Strided GEMM `C = alpha·A·B + beta·C`, split across rayon when `parallel`.
///
/// # Safety
/// `a`, `b`, `c` must address `m x k`, `k x n`, `m x n` matrices under their
/// strides; `c` must not alias `a` or `b`, and distinct (i, j) of `c` must be
/// distinct elements.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_strided<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: *const T,
    (rsa, csa): (isize, isize),
    b: *const T,
    (rsb, csb): (isize, isize),
    beta: T,
    c: *mut T,
    (rsc, csc): (isize, isize),
    parallel: bool,
) {
    if m <= DOT_MAX_ROWS && csa == 1 && rsb == 1 {
        // SAFETY: the caller's contract, with A's rows and B's columns contiguous.
        unsafe {
            gemm_dots(
                m,
                k,
                n,
                alpha,
                a,
                rsa,
                b,
                csb,
                beta,
                c,
                (rsc, csc),
                parallel,
            )
        };
        return;
    }
    let threads = rayon::current_num_threads();
    let split = parallel
        && !cfg!(feature = "matrixmultiply-threading")
        && threads > 1
        && m * n * k >= PARALLEL_MIN_MACS;
    if !split {
        // SAFETY: the caller's contract.
        unsafe { T::gemm_kernel(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) };
        return;
    }
    // Split the longer output side into one panel per thread, rounded to the
    // micro-kernel's multiple of 8 so no panel gets a ragged edge it need not.
    let along_rows = m >= n;
    let len = if along_rows { m } else { n };
    let panel = len.div_ceil(threads).div_ceil(8) * 8;
    let (a, b, c) = (SendPtr(a as *mut T), SendPtr(b as *mut T), SendPtr(c));
    rayon::scope(|s| {
        for start in (0..len).step_by(panel) {
            let size = panel.min(len - start);
            s.spawn(move |_| {
                let (a, b, c) = (a, b, c);
                // SAFETY: each panel covers rows (or columns) start..start+size of
                // C and the matching rows of A (or columns of B): in bounds by the
                // caller's contract, disjoint in C across panels.
                unsafe {
                    if along_rows {
                        let ap = a.0.offset(start as isize * rsa);
                        let cp = c.0.offset(start as isize * rsc);
                        T::gemm_kernel(
                            size, k, n, alpha, ap, rsa, csa, b.0, rsb, csb, beta, cp, rsc, csc,
                        );
                    } else {
                        let bp = b.0.offset(start as isize * csb);
                        let cp = c.0.offset(start as isize * csc);
                        T::gemm_kernel(
                            m, k, size, alpha, a.0, rsa, csa, bp, rsb, csb, beta, cp, rsc, csc,
                        );
                    }
                }
            });
        }
    });
}

/// Rows of A up to which a product whose operands both run contiguously
/// along k (A's rows, B's columns: `x·Wᵀ` in a Linear layer) is taken as one
/// dot product per output instead of by the packed kernel.
///
/// The packed kernel copies B into panels before using them. For a
/// batch-1 forward through SphereFace-20's fc5 (x: 1 x 21504, W: 512 x 21504)
/// that is a copy of all 44 MB of weights on every call, read again once by a
/// kernel whose 8-row tiles are 7/8 padding: 16% of a batch-1 forward went to
/// packing (`perf`, `bench --only sphere20_embed_b1`). Dot products read each
/// weight once, straight from where it lies. Past a few rows the packed kernel
/// reuses each packed panel across the rows and wins again.
const DOT_MAX_ROWS: usize = 4;

/// `C = alpha·A·B + beta·C` for `m ≤ DOT_MAX_ROWS` as `m·n` dot products of
/// A's contiguous rows with B's contiguous columns, split over columns across
/// rayon when `parallel` and the product is large. Each output is one dot
/// product in a fixed order, so the result does not depend on the threads.
/// `beta = 0` overwrites C without reading it, as the GEMM kernels do.
///
/// # Safety
/// As [`gemm_strided`], with row `i` of A at `a + i·rsa` contiguous over `k`
/// and column `j` of B at `b + j·csb` contiguous over `k`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_dots<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: *const T,
    rsa: isize,
    b: *const T,
    csb: isize,
    beta: T,
    c: *mut T,
    (rsc, csc): (isize, isize),
    parallel: bool,
) {
    let (a, b, c) = (SendPtr(a as *mut T), SendPtr(b as *mut T), SendPtr(c));
    let column = move |j: usize| {
        let (a, b, c) = (a, b, c);
        // SAFETY: row i < m of A and column j < n of B are k contiguous
        // elements by the caller's contract; element (i, j) of C is written by
        // this call only (each j is handed to one call).
        unsafe {
            let bj = std::slice::from_raw_parts(b.0.offset(j as isize * csb), k);
            for i in 0..m {
                let ai = std::slice::from_raw_parts(a.0.offset(i as isize * rsa), k);
                let cij = c.0.offset(i as isize * rsc + j as isize * csc);
                let product = alpha * crate::simd::dot(ai, bj);
                *cij = if beta == T::zero() {
                    product
                } else {
                    product + beta * *cij
                };
            }
        }
    };
    if parallel && rayon::current_num_threads() > 1 && m * n * k >= PARALLEL_MIN_MACS {
        use rayon::prelude::*;
        (0..n).into_par_iter().with_min_len(8).for_each(column);
    } else {
        (0..n).for_each(column);
    }
}

/// A row-major matrix in a slice, used as stored or transposed.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    /// The elements, row-major.
    pub data: &'a [T],
    /// Stored rows.
    pub rows: usize,
    /// Stored columns.
    pub cols: usize,
    /// Use the transpose of the stored matrix.
    pub transposed: bool,
}

impl<'a, T> MatRef<'a, T> {
    /// The stored matrix as it is.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            transposed: false,
        }
    }
    /// The transpose of the stored matrix (no copy).
    pub fn t(self) -> Self {
        MatRef {
            transposed: !self.transposed,
            ..self
        }
    }
    fn logical(&self) -> (usize, usize, isize, isize) {
        let (r, c) = (self.rows, self.cols);
        if self.transposed {
            (c, r, 1, c as isize)
        } else {
            (r, c, c as isize, 1)
        }
    }
}

/// Safe slice GEMM: `c (m x n, row-major) = alpha·op(a)·op(b) + beta·c`.
/// Panics when the sizes do not fit (a programming error inside the crate's kernels).
pub fn gemm<T: Element>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    parallel: bool,
) {
    let (m, k, rsa, csa) = a.logical();
    let (k2, n, rsb, csb) = b.logical();
    assert!(
        k == k2
            && a.data.len() >= a.rows * a.cols
            && b.data.len() >= b.rows * b.cols
            && c.len() >= m * n,
        "gemm: operands {m}x{k} · {k2}x{n} do not fit their slices or the output of {}",
        c.len()
    );
    // SAFETY: sizes checked above; `c` is a distinct &mut borrow.
    unsafe {
        gemm_strided(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            (rsa, csa),
            b.data.as_ptr(),
            (rsb, csb),
            beta,
            c.as_mut_ptr(),
            (n as isize, 1),
            parallel,
        )
    }
}

/// Where element (r, c) of matrix ξ of a stack of equal-sized matrices lies
/// in its slice: `ξ·step + r·rs + c·cs`. The Winograd convolutions keep their
/// 16 or 36 per-position matrices either as planes one after another or
/// interleaved tile by tile; both are stacks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stack {
    /// Distance between matrices.
    pub step: usize,
    /// Distance between rows.
    pub rs: usize,
    /// Distance between columns.
    pub cs: usize,
}

impl Stack {
    /// Row-major `rows x cols` matrices one after another.
    pub(crate) fn planes(rows: usize, cols: usize) -> Self {
        Stack {
            step: rows * cols,
            rs: cols,
            cs: 1,
        }
    }
    /// The same elements read as the transposed matrices.
    pub(crate) fn t(self) -> Self {
        Stack {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
    /// One past the largest index `count` matrices of `rows x cols` touch (0
    /// when empty), and whether no two of their elements share an index
    /// (checked as: sorted by stride, each stride clears what the smaller ones
    /// span).
    fn extent(&self, count: usize, rows: usize, cols: usize) -> (usize, bool) {
        if count == 0 || rows == 0 || cols == 0 {
            return (0, true);
        }
        let mut dims = [(self.step, count), (self.rs, rows), (self.cs, cols)];
        dims.sort_unstable();
        let mut span = 0;
        let mut distinct = true;
        for (stride, len) in dims.into_iter().filter(|&(_, len)| len > 1) {
            distinct &= stride > span;
            span += (len - 1) * stride;
        }
        (span + 1, distinct)
    }
}

/// For ξ in 0..count: `C[ξ] = A[ξ]·B[ξ]` (`m x k · k x n`), or `C[ξ] +=` when
/// `accumulate`; the matrices run in parallel over ξ when `parallel`, else in
/// order on this thread. Panics when an operand does not fit its slice or C's
/// elements are not all distinct (a programming error inside the crate).
pub(crate) fn gemm_stack<T: Element>(
    count: usize,
    (m, k, n): (usize, usize, usize),
    (a, la): (&[T], Stack),
    (b, lb): (&[T], Stack),
    (c, lc): (&mut [T], Stack),
    accumulate: bool,
    parallel: bool,
) {
    let (ea, eb, (ec, distinct)) = (
        la.extent(count, m, k).0,
        lb.extent(count, k, n).0,
        lc.extent(count, m, n),
    );
    assert!(
        ea <= a.len() && eb <= b.len() && ec <= c.len() && distinct,
        "gemm_stack: {count} x ({m}x{k} · {k}x{n}) do not fit slices of {}, {}, {} \
         (or C's elements overlap)",
        a.len(),
        b.len(),
        c.len()
    );
    let beta = if accumulate { T::one() } else { T::zero() };
    let c_ptr = SendPtr(c.as_mut_ptr());
    let one = |xi: usize| {
        // the whole SendPtr, not its raw field, is what the closure captures
        let cp = c_ptr;
        let i = |l: Stack| (l.rs as isize, l.cs as isize);
        // SAFETY: every index of matrix ξ of each operand is below its extent,
        // checked against the slice lengths above; the elements of C are
        // distinct across all ξ (checked), so concurrent calls for different ξ
        // write disjoint elements, and `c` is borrowed mutably for the call.
        unsafe {
            T::gemm_kernel(
                m,
                k,
                n,
                T::one(),
                a.as_ptr().add(xi * la.step),
                i(la).0,
                i(la).1,
                b.as_ptr().add(xi * lb.step),
                i(lb).0,
                i(lb).1,
                beta,
                cp.0.add(xi * lc.step),
                i(lc).0,
                i(lc).1,
            )
        }
    };
    if parallel {
        use rayon::prelude::*;
        (0..count).into_par_iter().for_each(one);
    } else {
        (0..count).for_each(one);
    }
}

impl<T: Element> Tensor<T> {
    /// Strides usable by matrixmultiply (non-negative), copying if needed.
    fn gemm_operand(&self) -> Self {
        if self.strides().iter().any(|&s| s < 0) {
            self.to_contiguous()
        } else {
            self.clone()
        }
    }

    /// Matrix product: `[m, k] · [k, n]`, or batched `[b, m, k] · [b, n... ]`
    /// (`[b, m, k] · [b, k, n]`, a batch of 1 on either side broadcasts). Either
    /// operand may be a transposed view (`x.t()`), which costs no copy.
    pub fn try_matmul(&self, other: &Self) -> TensorResult<Self> {
        let _t = crate::profile::scope(crate::profile::Section::Matmul);
        let (a, b) = (self.gemm_operand(), other.gemm_operand());
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        let bad = |axis, why: &str| Err(TensorError::mismatch("matmul", &sa, &sb, axis, why));
        match (sa.len(), sb.len()) {
            (2, 2) => {
                if sa[1] != sb[0] {
                    return bad(
                        Some(1),
                        &format!(
                            "inner sizes differ: {} (axis 1 of lhs) vs {} (axis 0 of rhs)",
                            sa[1], sb[0]
                        ),
                    );
                }
                let (m, k, n) = (sa[0], sa[1], sb[1]);
                let mut out = crate::memory::zeroed(m * n);
                let (ps, qs) = (a.strides(), b.strides());
                // SAFETY: shapes and strides come from live ndarray views of these sizes.
                unsafe {
                    gemm_strided(
                        m,
                        k,
                        n,
                        T::one(),
                        a.data.as_ptr(),
                        (ps[0], ps[1]),
                        b.data.as_ptr(),
                        (qs[0], qs[1]),
                        T::zero(),
                        out.as_mut_ptr(),
                        (n as isize, 1),
                        true,
                    );
                }
                Tensor::from_vec(&[m, n], out)
            }
            (3, 3) => {
                if sa[2] != sb[1] {
                    return bad(
                        Some(2),
                        &format!(
                            "inner sizes differ: {} (axis 2 of lhs) vs {} (axis 1 of rhs)",
                            sa[2], sb[1]
                        ),
                    );
                }
                if sa[0] != sb[0] && sa[0] != 1 && sb[0] != 1 {
                    return bad(Some(0), "batch sizes differ and neither is 1");
                }
                // A batch of 1 broadcasts to the other's, including to an empty batch of 0
                // (then nothing is read at all).
                let bs = if sa[0] == 1 { sb[0] } else { sa[0] };
                let (m, k, n) = (sa[1], sa[2], sb[2]);
                let mut out = ArrayD::<T>::zeros(IxDyn(&[bs, m, n]));
                let (ps, qs) = (a.strides().to_vec(), b.strides().to_vec());
                let (pa, pb) = (
                    SendPtr(a.data.as_ptr() as *mut T),
                    SendPtr(b.data.as_ptr() as *mut T),
                );
                let inner_parallel = bs < rayon::current_num_threads();
                use rayon::prelude::*;
                out.as_slice_mut()
                    .expect("fresh array")
                    .par_chunks_mut((m * n).max(1))
                    .enumerate()
                    .for_each(|(i, c)| {
                        let (pa, pb) = (pa, pb);
                        let ia = if sa[0] == 1 { 0 } else { i } as isize;
                        let ib = if sb[0] == 1 { 0 } else { i } as isize;
                        // SAFETY: i < bs, and bs is each operand's batch size unless that is 1
                        // (then index 0, which exists since bs > 0 here); `c` is this batch's
                        // own output chunk.
                        unsafe {
                            gemm_strided(
                                m,
                                k,
                                n,
                                T::one(),
                                pa.0.offset(ia * ps[0]),
                                (ps[1], ps[2]),
                                pb.0.offset(ib * qs[0]),
                                (qs[1], qs[2]),
                                T::zero(),
                                c.as_mut_ptr(),
                                (n as isize, 1),
                                inner_parallel,
                            );
                        }
                    });
                Ok(Tensor::from_array(out))
            }
            _ => bad(None, "expects two 2-D or two 3-D tensors"),
        }
    }

    /// See [`Tensor::try_matmul`].
    #[track_caller]
    pub fn matmul(&self, other: &Self) -> Self {
        or_panic(self.try_matmul(other))
    }
}
