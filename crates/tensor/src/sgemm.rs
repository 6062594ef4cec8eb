//! Our own single-precision GEMM for CPUs with AVX-512: packed, cache-blocked,
//! with an 8 x 32 register micro-kernel. Used for `f32` when the CPU has
//! AVX-512F (checked once at run time); elsewhere `matrixmultiply` does the work.
//!
//! Why our own: `matrixmultiply`'s fastest x86 kernel is AVX2 (8 x 8 tile, 8
//! accumulators), and it reached about 77% of this machine's FMA peak on large
//! squares and 35-60% on the convolution shapes. AVX-512 gives 32 vector
//! registers, so the tile can hold 16 accumulators of 16 lanes and each loaded
//! element of B feeds 8 FMAs (on a Zen 4 a 512-bit FMA is two 256-bit halves: the
//! peak is the same, the gain is fewer loads and instructions per FMA).
//!
//! The structure is the classic one (Goto / BLIS):
//!
//! ```text
//! for each NC-wide column block of B and C:
//!   for each KC-deep slice of the shared dimension:
//!     pack B[KC x NC] into NR-column slivers (row p of a sliver = NR contiguous floats)
//!     for each MC-tall row block of A:
//!       pack A[MC x KC] into MR-row slivers (column p of a sliver = MR contiguous floats)
//!       for each sliver pair: C[MR x NR] (+)= A_sliver · B_sliver   (the micro-kernel)
//! ```
//!
//! The block sizes (KC 384, MC 128, NC 1024) were picked by measurement on the
//! project's Zen 4 (single thread, `cargo run --release -p tensor --example
//! bench`): deeper slices won (fewer read-modify-writes of C per tile) even
//! though a B sliver (48 KiB) then overflows L1. Edges are packed with zeros to
//! whole tiles; a full tile of a unit-stride C is stored straight from the
//! registers, any other tile goes through an aligned buffer and is written
//! element by element. `beta` is applied on the first KC
//! slice only (and C is never read when it is 0, so an uninitialised or
//! NaN-filled C is overwritten, as BLAS does).
//!
//! An implicit-GEMM convolution (the image unfolded straight into the packing
//! buffer, the input gradient added into the image as tiles leave the kernel)
//! was built on a trait-based version of this packing (git history:
//! "implicit-GEMM convolution on the packed AVX-512 sgemm") and measured 6%
//! slower on SphereFace-20 and 15% slower on LeNet++ than im2col followed by
//! this GEMM: per-element gathers into the packing buffer cost more than
//! im2col's row copies plus a contiguous pack. With it gone, the operands are
//! plain strided matrices. See `docs/performance.md`.

use std::arch::x86_64::*;
use std::cell::RefCell;

/// Rows of the micro-tile.
const MR: usize = 8;
/// Columns of the micro-tile (two 16-lane vectors).
const NR: usize = 32;
/// Depth of one packed slice.
const KC: usize = 384;
/// Rows of A packed at once (a multiple of MR).
const MC: usize = 128;
/// Columns of B packed at once (a multiple of NR).
const NC: usize = 1024;

/// Whether this process uses the AVX-512 kernel for `f32` (AVX-512F present and
/// `REGULARFACE_GEMM=matrixmultiply` not set; the variable exists for benchmarks).
pub fn avx512_enabled() -> bool {
    crate::backend::get().avx512_gemm
}

/// A 64-byte aligned block of 16 floats: packed panels are built from these so
/// every vector load of the micro-kernel is aligned.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Line([f32; 16]);

thread_local! {
    /// This thread's packing buffers (A block, B block), kept between calls so
    /// the steady state allocates nothing (a thread allocates them, once, on
    /// its first GEMM).
    static PACK: RefCell<(Vec<Line>, Vec<Line>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

fn grow(buf: &mut Vec<Line>, floats: usize) -> *mut f32 {
    let lines = floats.div_ceil(16);
    if buf.len() < lines {
        buf.resize(lines, Line([0.0; 16]));
    }
    buf.as_mut_ptr().cast()
}

/// One finished micro-tile, MR rows of two 16-lane lines.
type Tile = [Line; 2 * MR];

/// A matrix in memory: element (i, j) at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy, Debug)]
struct Strided {
    /// Element (0, 0).
    ptr: *const f32,
    /// Row stride, in elements.
    rs: isize,
    /// Column stride, in elements.
    cs: isize,
}

impl Strided {
    /// As the left operand: write `A[i0 + i][p0 + p]` to `dst[p·MR + i]` for
    /// `i < rows`, `p < kc` (the caller zero-fills rows `rows..MR`).
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `dst` (64-byte aligned) holds `kc·MR`
    /// floats; the block is inside A.
    #[target_feature(enable = "avx512f")]
    unsafe fn pack_a(&self, i0: usize, rows: usize, p0: usize, kc: usize, dst: *mut f32) {
        // SAFETY: the caller's contract: the block is inside A, dst holds kc·MR.
        unsafe {
            let src = self
                .ptr
                .offset(i0 as isize * self.rs + p0 as isize * self.cs);
            if self.rs == 1 {
                // a transposed view: the sliver's column p is `rows` consecutive
                // floats; a full sliver moves as one 256-bit load and store
                // (a `memcpy` call per 32 bytes cost more than the copy)
                if rows == MR {
                    for p in 0..kc {
                        let v = _mm256_loadu_ps(src.offset(p as isize * self.cs));
                        _mm256_store_ps(dst.add(p * MR), v);
                    }
                } else {
                    for p in 0..kc {
                        std::ptr::copy_nonoverlapping(
                            src.offset(p as isize * self.cs),
                            dst.add(p * MR),
                            rows,
                        );
                    }
                }
                return;
            }
            // Row-major A (every forward GEMM): a full sliver goes through
            // 8 x 8 blocks transposed in registers (8 row loads, 8 aligned
            // stores) instead of 8 scalar gathers per column.
            let full_p = if self.cs == 1 && rows == MR {
                kc / 8 * 8
            } else {
                0
            };
            for pb in (0..full_p).step_by(8) {
                crate::simd::transpose_8x8_f32(src.add(pb), self.rs, dst.add(pb * MR), MR as isize);
            }
            for p in full_p..kc {
                let col = src.offset(p as isize * self.cs);
                for i in 0..rows {
                    *dst.add(p * MR + i) = *col.offset(i as isize * self.rs);
                }
            }
        }
    }

    /// As the right operand: write `B[p0 + p][j0 + j]` to `dst[p·NR + j]` for
    /// `j < cols`, `p < kc` (the caller zero-fills columns `cols..NR`).
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `dst` (64-byte aligned) holds `kc·NR`
    /// floats; the block is inside B.
    #[target_feature(enable = "avx512f")]
    unsafe fn pack_b(&self, p0: usize, kc: usize, j0: usize, cols: usize, dst: *mut f32) {
        // SAFETY: the caller's contract: the block is inside B, dst holds kc·NR.
        unsafe {
            let src = self
                .ptr
                .offset(p0 as isize * self.rs + j0 as isize * self.cs);
            if self.cs == 1 && cols == NR {
                // rows of B are contiguous: a full sliver row is two 512-bit
                // loads and aligned stores (not a `memcpy` call per 128 bytes)
                for p in 0..kc {
                    let row = src.offset(p as isize * self.rs);
                    _mm512_store_ps(dst.add(p * NR), _mm512_loadu_ps(row));
                    _mm512_store_ps(dst.add(p * NR + 16), _mm512_loadu_ps(row.add(16)));
                }
            } else if self.cs == 1 {
                // rows of B are contiguous: copy `cols` floats per p
                for p in 0..kc {
                    std::ptr::copy_nonoverlapping(
                        src.offset(p as isize * self.rs),
                        dst.add(p * NR),
                        cols,
                    );
                }
            } else {
                // A transposed view: columns of B are rows in memory. Full
                // 16 x 16 blocks of a unit-stride column go through registers
                // (16 row loads, an in-register transpose, 16 aligned stores);
                // the edges are copied element by element.
                let full_p = if self.rs == 1 { kc / 16 * 16 } else { 0 };
                let full_j = if self.rs == 1 { cols / 16 * 16 } else { 0 };
                for pb in (0..full_p).step_by(16) {
                    for jb in (0..full_j).step_by(16) {
                        transpose_block(
                            src.offset(jb as isize * self.cs + pb as isize),
                            self.cs,
                            dst.add(pb * NR + jb),
                        );
                    }
                }
                let scalar = |p_range: std::ops::Range<usize>, j_range: std::ops::Range<usize>| {
                    for j in j_range {
                        let col = src.offset(j as isize * self.cs);
                        for p in p_range.clone() {
                            *dst.add(p * NR + j) = *col.offset(p as isize * self.rs);
                        }
                    }
                };
                scalar(0..full_p, full_j..cols);
                scalar(full_p..kc, 0..cols);
            }
        }
    }
}

/// Copy the 16 x 16 block whose row `j` is the 16 floats at `src + j·stride`
/// to `dst` transposed: row `p` of the result (16 floats) at `dst + p·NR`.
#[target_feature(enable = "avx512f")]
unsafe fn transpose_block(src: *const f32, stride: isize, dst: *mut f32) {
    let mut r = [_mm512_setzero_ps(); 16];
    for (j, v) in r.iter_mut().enumerate() {
        // SAFETY: the caller's block: 16 rows of 16 readable floats.
        *v = unsafe { _mm512_loadu_ps(src.offset(j as isize * stride)) };
    }
    // Interleave pairs of rows, then pairs of pairs within 128-bit lanes, then
    // exchange 128-bit lanes twice: the classic 4-stage 16 x 16 transpose.
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for b in (0..16).step_by(4) {
        r[b] = _mm512_shuffle_ps::<0x44>(t[b], t[b + 2]);
        r[b + 1] = _mm512_shuffle_ps::<0xEE>(t[b], t[b + 2]);
        r[b + 2] = _mm512_shuffle_ps::<0x44>(t[b + 1], t[b + 3]);
        r[b + 3] = _mm512_shuffle_ps::<0xEE>(t[b + 1], t[b + 3]);
    }
    for i in 0..4 {
        t[i] = _mm512_shuffle_f32x4::<0x88>(r[i], r[i + 4]);
        t[i + 4] = _mm512_shuffle_f32x4::<0xDD>(r[i], r[i + 4]);
        t[i + 8] = _mm512_shuffle_f32x4::<0x88>(r[i + 8], r[i + 12]);
        t[i + 12] = _mm512_shuffle_f32x4::<0xDD>(r[i + 8], r[i + 12]);
    }
    for i in 0..8 {
        r[i] = _mm512_shuffle_f32x4::<0x88>(t[i], t[i + 8]);
        r[i + 8] = _mm512_shuffle_f32x4::<0xDD>(t[i], t[i + 8]);
    }
    for (p, v) in r.iter().enumerate() {
        // SAFETY: row p of the sliver block, 64-byte aligned (NR·4 = 128 bytes per row, column 0 or 16).
        unsafe { _mm512_store_ps(dst.add(p * NR), *v) };
    }
}

/// A strided C updated as `C = tile + beta·C` on the first slice, `C += tile` after.
#[derive(Clone, Copy, Debug)]
struct StridedOut {
    /// Element (0, 0).
    ptr: *mut f32,
    /// Row stride, in elements.
    rs: isize,
    /// Column stride, in elements.
    cs: isize,
    /// Weight of C's old value (never read when 0).
    beta: f32,
}

impl StridedOut {
    /// Take the `rows x cols` tile at (i0, j0) element by element: `tile[i][j]`
    /// is line `2i + j/16`, lane `j % 16`, already scaled by alpha. `first` is
    /// true for the first slice of the shared dimension (C's old value is
    /// replaced or scaled by beta), false for the following ones (which add).
    ///
    /// # Safety
    /// The tile is inside C, and no other thread writes the same elements.
    unsafe fn store(
        &self,
        i0: usize,
        j0: usize,
        rows: usize,
        cols: usize,
        tile: &Tile,
        first: bool,
    ) {
        let beta = if first { self.beta } else { 1.0 };
        // SAFETY: the caller's contract: the tile is inside C and ours alone.
        unsafe {
            let c = self
                .ptr
                .offset(i0 as isize * self.rs + j0 as isize * self.cs);
            for i in 0..rows {
                for j in 0..cols {
                    let v = tile[2 * i + j / 16].0[j % 16];
                    let p = c.offset(i as isize * self.rs + j as isize * self.cs);
                    *p = if beta == 0.0 { v } else { v + beta * *p };
                }
            }
        }
    }

    /// Where a full tile at (i0, j0) may instead be written straight from the
    /// registers (C's columns adjacent): the address of C[i0][j0], C's row
    /// stride and the weight of C's old value.
    fn direct(&self, i0: usize, j0: usize, first: bool) -> Option<(*mut f32, isize, f32)> {
        let beta = if first { self.beta } else { 1.0 };
        let at = self
            .ptr
            .wrapping_offset(i0 as isize * self.rs + j0 as isize);
        (self.cs == 1).then_some((at, self.rs, beta))
    }
}

/// `C = alpha·A·B + beta·C` for strided `m x k` A, `k x n` B and `m x n` C.
///
/// # Safety
/// The CPU must have AVX-512F ([`avx512_enabled`]). `a`, `b`, `c` must address
/// matrices of those sizes under their strides; `c` must not alias `a` or `b`,
/// and distinct (i, j) of `c` must be distinct elements.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    (rsa, csa): (isize, isize),
    b: *const f32,
    (rsb, csb): (isize, isize),
    beta: f32,
    c: *mut f32,
    (rsc, csc): (isize, isize),
) {
    let out = StridedOut {
        ptr: c,
        rs: rsc,
        cs: csc,
        beta,
    };
    if k == 0 || alpha == 0.0 {
        for i in 0..m {
            for j in 0..n {
                // SAFETY: (i, j) is inside C by the caller's contract.
                unsafe {
                    let p = c.offset(i as isize * rsc + j as isize * csc);
                    *p = if beta == 0.0 { 0.0 } else { beta * *p };
                }
            }
        }
        return;
    }
    let a = Strided {
        ptr: a,
        rs: rsa,
        cs: csa,
    };
    let b = Strided {
        ptr: b,
        rs: rsb,
        cs: csb,
    };
    // SAFETY: forwarded from the caller's contract.
    unsafe { gemm_blocked(m, k, n, alpha, &a, &b, &out) };
}

/// The blocked product `C (+)= alpha·A·B` (see the module text).
///
/// # Safety
/// The CPU must have AVX-512F; `a`, `b` and `c` must address `m x k`, `k x n`
/// and `m x n` matrices as in [`sgemm`].
unsafe fn gemm_blocked(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &Strided,
    b: &Strided,
    c: &StridedOut,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    PACK.with(|bufs| {
        let (abuf, bbuf) = &mut *bufs.borrow_mut();
        // Full size on a thread's first GEMM (190 KiB + 1.5 MiB, pages touched
        // only as used): later calls never allocate, whatever their shape.
        let pa = grow(abuf, MC * KC);
        let pb = grow(bbuf, NC * KC);
        let mut tile: Tile = [Line([0.0; 16]); 2 * MR];
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                // SAFETY: the B buffer holds the nc x kc block; the caller's contract bounds B.
                unsafe {
                    pack_slivers(jc, nc, NR, kc, pb, |j0, cols, dst| {
                        b.pack_b(pc, kc, j0, cols, dst)
                    })
                };
                for ic in (0..m).step_by(MC) {
                    let mc = MC.min(m - ic);
                    // SAFETY: the A buffer holds the mc x kc block; the caller's contract bounds A.
                    unsafe {
                        pack_slivers(ic, mc, MR, kc, pa, |i0, rows, dst| {
                            a.pack_a(i0, rows, pc, kc, dst)
                        })
                    };
                    for jr in (0..nc).step_by(NR) {
                        for ir in (0..mc).step_by(MR) {
                            let (rows, cols) = (MR.min(mc - ir), NR.min(nc - jr));
                            let (i0, j0) = (ic + ir, jc + jr);
                            let out = match c.direct(i0, j0, pc == 0) {
                                Some((at, rs, beta)) if rows == MR && cols == NR => {
                                    Out::Direct(at, rs, beta)
                                }
                                _ => Out::Tile(&mut tile),
                            };
                            let through_tile = matches!(out, Out::Tile(_));
                            // SAFETY: the slivers hold kc x MR and kc x NR floats; a
                            // direct tile lies inside C (the caller's contract).
                            unsafe {
                                kernel_8x32(kc, pa.add(ir * kc), pb.add(jr * kc), alpha, out)
                            };
                            if through_tile {
                                // SAFETY: the tile lies inside C (the caller's contract).
                                unsafe { c.store(i0, j0, rows, cols, &tile, pc == 0) };
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Pack the rows (or columns) `start .. start + total` of one block into slivers
/// of `width`, each `kc` deep, one after another in `buf`; `pack(first, size, dst)`
/// writes one sliver and the last one's missing rows are zero-filled.
///
/// # Safety
/// `buf` holds `total.next_multiple_of(width)·kc` floats and `pack` is safe to call
/// for every sliver of the block.
unsafe fn pack_slivers(
    start: usize,
    total: usize,
    width: usize,
    kc: usize,
    buf: *mut f32,
    mut pack: impl FnMut(usize, usize, *mut f32),
) {
    for (s, first) in (start..start + total).step_by(width).enumerate() {
        let size = width.min(start + total - first);
        // SAFETY: sliver s of the buffer holds kc·width floats.
        unsafe {
            let dst = buf.add(s * width * kc);
            pack(first, size, dst);
            if size < width {
                for p in 0..kc {
                    std::ptr::write_bytes(dst.add(p * width + size), 0, width - size);
                }
            }
        }
    }
}

/// The micro-kernel: `tile = alpha·(A_sliver · B_sliver)` for slivers `MR x kc`
/// and `kc x NR` packed as above: per step of the shared dimension, two vector
/// loads of B and MR broadcasts of A feed 16 fused multiply-adds.
#[target_feature(enable = "avx512f")]
unsafe fn kernel_8x32(kc: usize, a: *const f32, b: *const f32, alpha: f32, out: Out<'_>) {
    let mut lo = [_mm512_setzero_ps(); MR];
    let mut hi = [_mm512_setzero_ps(); MR];
    for p in 0..kc {
        // SAFETY: p < kc, and the slivers hold kc rows of MR / NR floats; the B
        // sliver starts on a 64-byte boundary (NR·4 = 128 bytes per row).
        unsafe {
            let b0 = _mm512_load_ps(b.add(p * NR));
            let b1 = _mm512_load_ps(b.add(p * NR + 16));
            let ap = a.add(p * MR);
            for i in 0..MR {
                let ai = _mm512_set1_ps(*ap.add(i));
                lo[i] = _mm512_fmadd_ps(ai, b0, lo[i]);
                hi[i] = _mm512_fmadd_ps(ai, b1, hi[i]);
            }
        }
    }
    let va = _mm512_set1_ps(alpha);
    match out {
        Out::Tile(tile) => {
            for i in 0..MR {
                // SAFETY: the tile's lines are 64-byte aligned.
                unsafe {
                    _mm512_store_ps(tile[2 * i].0.as_mut_ptr(), _mm512_mul_ps(va, lo[i]));
                    _mm512_store_ps(tile[2 * i + 1].0.as_mut_ptr(), _mm512_mul_ps(va, hi[i]));
                }
            }
        }
        Out::Direct(c, rs, beta) => {
            let vb = _mm512_set1_ps(beta);
            for i in 0..MR {
                // SAFETY: a full tile of C: row i holds NR writable floats at c + i·rs.
                unsafe {
                    let row = c.offset(i as isize * rs);
                    let (mut r0, mut r1) = (_mm512_mul_ps(va, lo[i]), _mm512_mul_ps(va, hi[i]));
                    if beta != 0.0 {
                        r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row), r0);
                        r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row.add(16)), r1);
                    }
                    _mm512_storeu_ps(row, r0);
                    _mm512_storeu_ps(row.add(16), r1);
                }
            }
        }
    }
}

/// Where the micro-kernel puts its result.
enum Out<'a> {
    /// The aligned tile buffer, for [`StridedOut::store`].
    Tile(&'a mut Tile),
    /// Straight into C: C[i0][j0], row stride, beta (see [`StridedOut::direct`]).
    Direct(*mut f32, isize, f32),
}
