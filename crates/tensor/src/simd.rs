//! Contiguous elementwise kernels, vectorised by run-time CPU-feature dispatch.
//!
//! Each kernel body is written once as a plain loop over slices and compiled
//! twice: a portable copy (SSE2 on x86-64, whatever the target has elsewhere)
//! and a copy under `#[target_feature(enable = "avx2,fma")]`, in which LLVM
//! auto-vectorises the same loop to 8-lane AVX2 with fused multiply-adds. The
//! copy is chosen once per process by `is_x86_feature_detected!`, so a binary
//! built without `-C target-cpu=native` still runs the wide kernels on a CPU that
//! has them, and the portable copy elsewhere. This keeps one source of truth per
//! op (no hand-written intrinsics to drift from the scalar maths) at the cost of
//! relying on the auto-vectoriser, which handles these simple zips reliably.
//!
//! Above [`PARALLEL_THRESHOLD`] elements the slices are cut into chunks that
//! `rayon` runs in parallel; below it the thread hand-off costs more than it saves.

use rayon::prelude::*;

/// Elements below which a kernel runs on the calling thread only.
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

/// Chunk length when a kernel is split across threads.
const CHUNK: usize = 1 << 14;

pub use crate::backend::SimdLevel;

/// The level the kernels run at (see [`crate::backend`]).
pub fn simd_level() -> SimdLevel {
    crate::backend::get().simd
}

/// Generates a kernel's portable body, its AVX2+FMA copy and the dispatcher.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident<$t:ident, $f:ident>($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$doc])*
        #[inline]
        fn $name<$t: Copy, $f: Fn($t, $t) -> $t>($($arg: $ty),*) {
            #[inline(always)]
            fn body<$t: Copy, $f: Fn($t, $t) -> $t>($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn wide<$t: Copy, $f: Fn($t, $t) -> $t>($($arg: $ty),*) { body($($arg),*) }

            #[cfg(target_arch = "x86_64")]
            if simd_level() == SimdLevel::Avx2Fma {
                // SAFETY: `simd_level` returned Avx2Fma only after run-time
                // detection of both features on this CPU.
                return unsafe { wide($($arg),*) };
            }
            body($($arg),*)
        }
    };
}

multiversion! {
    /// `out[i] = f(a[i], b[i])`.
    fn zip_chunk<T, F>(a: &[T], b: &[T], out: &mut [T], f: &F) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = f(x, y);
        }
    }
}

multiversion! {
    /// `out[i] = f(a[i], s)`; the unary ops pass their closure with a dummy `s`.
    fn map_chunk<T, F>(a: &[T], s: T, out: &mut [T], f: &F) {
        for (o, &x) in out.iter_mut().zip(a) {
            *o = f(x, s);
        }
    }
}

multiversion! {
    /// `acc[i] = f(acc[i], b[i])` in place (gradient accumulation, optimisers).
    fn update_chunk<T, F>(acc: &mut [T], b: &[T], f: &F) {
        for (o, &y) in acc.iter_mut().zip(b) {
            *o = f(*o, y);
        }
    }
}

/// Generates `$name`, which runs `$body` from a copy compiled under
/// `#[target_feature(enable = "avx2,fma")]` when the CPU has both (chosen at
/// run time, like the kernels above) and from the portable copy otherwise.
/// For kernels with their own signature (not a `Fn(T, T) -> T` closure):
/// `$body` is an `#[inline(always)]` function taking the same arguments.
macro_rules! avx2_dispatch {
    ($(#[$doc:meta])* $vis:vis fn $name:ident<T: $bound:path>($($arg:ident: $ty:ty),* $(,)?)
        $(-> $ret:ty)? = $body:ident) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<T: $bound>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn wide<T: $bound>($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::simd::simd_level() == $crate::simd::SimdLevel::Avx2Fma {
                // SAFETY: `simd_level` returned Avx2Fma only after run-time
                // detection of both features on this CPU.
                return unsafe { wide($($arg),*) };
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use avx2_dispatch;

/// Partial sums kept apart in [`lane_dot`] and the reductions built like it.
pub(crate) const LANES: usize = 16;

/// `Σ f(x_i, y_i)` over two equal-length slices in [`LANES`] partial sums, so
/// the additions are independent and vectorise (one running sum is a chain of
/// dependent additions at the adder's latency). Inline it into a kernel
/// compiled under [`avx2_dispatch`] to get 8-lane FMAs.
#[inline(always)]
pub(crate) fn lane_sum<T: crate::Element>(x: &[T], y: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::zero(); LANES];
    let body = x.len().min(y.len()) / LANES * LANES;
    for (xc, yc) in x[..body]
        .chunks_exact(LANES)
        .zip(y[..body].chunks_exact(LANES))
    {
        for l in 0..LANES {
            acc[l] += f(xc[l], yc[l]);
        }
    }
    let tail = x[body..]
        .iter()
        .zip(&y[body..])
        .fold(T::zero(), |t, (&a, &b)| t + f(a, b));
    acc.iter().fold(T::zero(), |t, &v| t + v) + tail
}

/// `Σ x_i y_i` (see [`lane_sum`]).
#[inline(always)]
pub(crate) fn lane_dot<T: crate::Element>(x: &[T], y: &[T]) -> T {
    lane_sum(x, y, |a, b| a * b)
}

avx2_dispatch! {
    /// `Σ x_i y_i` as a kernel of its own (see [`lane_dot`]), for callers that
    /// are not themselves compiled under [`avx2_dispatch`].
    pub(crate) fn dot<T: crate::Element>(x: &[T], y: &[T]) -> T = lane_dot
}

/// Body of [`prelu_backward_plane`].
#[inline(always)]
fn prelu_backward_plane_body<T: num_traits::Float>(x: &[T], g: &[T], out: &mut [T], a: T) -> T {
    assert!(
        x.len() == out.len() && g.len() == out.len(),
        "simd::prelu_backward_plane: slice lengths differ"
    );
    let zero = T::zero();
    let mut lanes = [zero; 8];
    let body = out.len() / 8 * 8;
    let chunks = out[..body]
        .chunks_exact_mut(8)
        .zip(x.chunks_exact(8))
        .zip(g.chunks_exact(8));
    for ((o, x), g) in chunks {
        for l in 0..8 {
            let pos = x[l] > zero;
            o[l] = if pos { g[l] } else { a * g[l] };
            lanes[l] = lanes[l] + if pos { zero } else { x[l] * g[l] };
        }
    }
    let mut acc = lanes.iter().fold(zero, |s, &v| s + v);
    for ((o, &xv), &gv) in out[body..].iter_mut().zip(&x[body..]).zip(&g[body..]) {
        let pos = xv > zero;
        *o = if pos { gv } else { a * gv };
        acc = acc + if pos { zero } else { xv * gv };
    }
    acc
}

avx2_dispatch! {
    /// PReLU's backward over one plane with slope `a`: `out[i] = g[i]` where
    /// `x[i] > 0`, else `a·g[i]`; returns `Σ_{x[i] ≤ 0} x[i]·g[i]` (the slope's
    /// gradient from this plane).
    ///
    /// Written with branch-free selects and eight running sums so that it
    /// vectorises: the signs of activations are close to random, so a branch per
    /// element mispredicts half the time, and a single accumulator would chain
    /// every add on the previous one (the branchy scalar loop ran at 4 GB/s, a
    /// tenth of the forward's speed). NaN inputs take the slope side, as in the
    /// forward.
    pub fn prelu_backward_plane<T: num_traits::Float>(x: &[T], g: &[T], out: &mut [T], a: T) -> T
        = prelu_backward_plane_body
}

/// `out[i] = f(a[i], b[i])` over equal-length slices, SIMD and parallel.
pub fn zip<T, F>(a: &[T], b: &[T], out: &mut [T], f: F)
where
    T: Copy + Send + Sync,
    F: Fn(T, T) -> T + Sync,
{
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "simd::zip: slice lengths differ"
    );
    if out.len() < PARALLEL_THRESHOLD {
        zip_chunk(a, b, out, &f);
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(o, (x, y))| zip_chunk(x, y, o, &f));
    }
}

/// `out[i] = f(a[i])`, SIMD and parallel.
pub fn map<T, F>(a: &[T], out: &mut [T], f: F)
where
    T: Copy + Send + Sync,
    F: Fn(T) -> T + Sync,
{
    assert_eq!(a.len(), out.len(), "simd::map: slice lengths differ");
    let g = |x: T, _s: T| f(x);
    let dummy = match a.first() {
        Some(&v) => v,
        None => return,
    };
    if out.len() < PARALLEL_THRESHOLD {
        map_chunk(a, dummy, out, &g);
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK))
            .for_each(|(o, x)| map_chunk(x, dummy, o, &g));
    }
}

/// `out[i] = f(a[i])`, SIMD, on the calling thread (for callers that split
/// the work themselves).
pub fn map_serial<T: Copy, F: Fn(T) -> T>(a: &[T], out: &mut [T], f: F) {
    assert_eq!(a.len(), out.len(), "simd::map_serial: slice lengths differ");
    if let Some(&dummy) = a.first() {
        map_chunk(a, dummy, out, &|x: T, _s: T| f(x));
    }
}

/// `acc[i] = f(acc[i], b[i])` in place, SIMD and parallel.
pub fn update<T, F>(acc: &mut [T], b: &[T], f: F)
where
    T: Copy + Send + Sync,
    F: Fn(T, T) -> T + Sync,
{
    assert_eq!(acc.len(), b.len(), "simd::update: slice lengths differ");
    if acc.len() < PARALLEL_THRESHOLD {
        update_chunk(acc, b, &f);
    } else {
        acc.par_chunks_mut(CHUNK)
            .zip(b.par_chunks(CHUNK))
            .for_each(|(o, y)| update_chunk(o, y, &f));
    }
}

/// Copy the 8 x 8 block whose row `i` is `src[i·src_stride..][..8]` to `dst`
/// transposed: row `p` of the result (the 8 values of column `p`) at
/// `dst[p·dst_stride..][..8]`. For f32 on a CPU with AVX, eight loads, 24
/// shuffles and eight stores (no round trip through memory, which a plain
/// loop makes: a store per element, then loads that the stores must forward).
pub fn transpose_8x8<T: crate::Element>(
    src: &[T],
    src_stride: usize,
    dst: &mut [T],
    dst_stride: usize,
) {
    assert!(
        src.len() >= 7 * src_stride + 8 && dst.len() >= 7 * dst_stride + 8,
        "simd::transpose_8x8: slices of {} and {} are too short for strides {src_stride} and {dst_stride}",
        src.len(),
        dst.len()
    );
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && simd_level() == SimdLevel::Avx2Fma
    {
        // SAFETY: T is f32 (same type, so same layout); the lengths were
        // checked above; AVX was detected (it comes with AVX2).
        unsafe {
            transpose_8x8_f32(
                src.as_ptr().cast::<f32>(),
                src_stride as isize,
                dst.as_mut_ptr().cast::<f32>(),
                dst_stride as isize,
            )
        };
        return;
    }
    for p in 0..8 {
        for i in 0..8 {
            dst[p * dst_stride + i] = src[i * src_stride + p];
        }
    }
}

/// [`transpose_8x8`] for f32 in AVX registers, on raw pointers (also the
/// sgemm's packing of row-major left operands).
///
/// # Safety
/// The CPU has AVX; `src` has 8 readable rows of 8 at `src_stride`, `dst` 8
/// writable rows of 8 at `dst_stride`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
pub(crate) unsafe fn transpose_8x8_f32(
    src: *const f32,
    src_stride: isize,
    dst: *mut f32,
    dst_stride: isize,
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's contract bounds every load and store.
    unsafe {
        let r: [__m256; 8] =
            std::array::from_fn(|i| _mm256_loadu_ps(src.offset(i as isize * src_stride)));
        // pairs of rows interleaved, then pairs of pairs, then 128-bit halves
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        let u = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        for j in 0..4 {
            let lo = _mm256_permute2f128_ps::<0x20>(u[j], u[j + 4]);
            let hi = _mm256_permute2f128_ps::<0x31>(u[j], u[j + 4]);
            _mm256_storeu_ps(dst.offset(j as isize * dst_stride), lo);
            _mm256_storeu_ps(dst.offset((j as isize + 4) * dst_stride), hi);
        }
    }
}
