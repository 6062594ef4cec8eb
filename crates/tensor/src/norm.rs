//! The kernels of training-mode batch normalisation over an `[N, C, S]`
//! contiguous buffer (S = H·W, or 1 for BatchNorm1d). The maths, and the op
//! that uses them, are autograd's `batch_norm_train`.
//!
//! Every per-channel sum runs over the channel's N planes of S contiguous
//! values with 16 independent partial sums, which the compiler keeps in vector
//! registers: a single running sum is a chain of dependent additions, one per
//! element at the adder's latency (4 cycles), and made these sums the largest
//! cost of a MobileFaceNet step (1.4 s of 4.4 s at batch 64, measured with
//! `regularface bench --profile`). Sums are taken in a fixed order, so results
//! do not depend on the thread count. Channels run in parallel.

use crate::simd::{avx2_dispatch, lane_sum, LANES};
use crate::Element;
use rayon::prelude::*;

#[inline(always)]
fn plane_sum_body<T: Element>(x: &[T]) -> T {
    lane_sum(x, x, |a, _| a)
}

/// `(Σ (x − k), Σ (x − k)²)` in one pass: 16 partial sums of each.
#[inline(always)]
fn plane_shifted_moments_body<T: Element>(x: &[T], k: T) -> (T, T) {
    let (mut s1, mut s2) = ([T::zero(); LANES], [T::zero(); LANES]);
    let body = x.len() / LANES * LANES;
    for xc in x[..body].chunks_exact(LANES) {
        for l in 0..LANES {
            let d = xc[l] - k;
            s1[l] += d;
            s2[l] += d * d;
        }
    }
    let (mut t1, mut t2) = (T::zero(), T::zero());
    for &v in &x[body..] {
        t1 += v - k;
        t2 += (v - k) * (v - k);
    }
    let total = |a: [T; LANES], t: T| a.iter().fold(T::zero(), |u, &v| u + v) + t;
    (total(s1, t1), total(s2, t2))
}

#[inline(always)]
fn plane_grad_sums_body<T: Element>(g: &[T], x: &[T], mean: T) -> (T, T) {
    (
        lane_sum(g, g, |a, _| a),
        lane_sum(g, x, |gv, xv| gv * (xv - mean)),
    )
}

#[inline(always)]
fn plane_affine_body<T: Element>(x: &[T], y: &mut [T], scale: T, shift: T) {
    y.iter_mut()
        .zip(x)
        .for_each(|(yv, &xv)| *yv = xv * scale + shift);
}

#[inline(always)]
fn plane_input_grad_body<T: Element>(g: &[T], x: &[T], dx: &mut [T], k: [T; 4]) {
    // dx = k0 · g − k1 − k2 · (x − μ), k3 = μ
    let [a, b, c, mean] = k;
    dx.iter_mut()
        .zip(g.iter().zip(x))
        .for_each(|(d, (&gv, &xv))| *d = a * gv - b - c * (xv - mean));
}

avx2_dispatch! {
    /// `Σ x`.
    fn plane_sum<T: Element>(x: &[T]) -> T = plane_sum_body
}
avx2_dispatch! {
    /// `(Σ (x − k), Σ (x − k)²)`.
    fn plane_shifted_moments<T: Element>(x: &[T], k: T) -> (T, T) = plane_shifted_moments_body
}
avx2_dispatch! {
    /// `(Σ g, Σ g (x − mean))`.
    fn plane_grad_sums<T: Element>(g: &[T], x: &[T], mean: T) -> (T, T) = plane_grad_sums_body
}
avx2_dispatch! {
    /// `y = x · scale + shift`.
    fn plane_affine<T: Element>(x: &[T], y: &mut [T], scale: T, shift: T) = plane_affine_body
}
avx2_dispatch! {
    /// `dx = k0 g − k1 − k2 (x − k3)`.
    fn plane_input_grad<T: Element>(g: &[T], x: &[T], dx: &mut [T], k: [T; 4]) = plane_input_grad_body
}

/// The planes of channel `ch` in an `[n, c, s]` buffer.
fn planes<T>(xs: &[T], n: usize, c: usize, s: usize, ch: usize) -> impl Iterator<Item = &[T]> {
    (0..n).map(move |i| &xs[(i * c + ch) * s..][..s])
}

/// Per channel of `xs` `[n, c, s]`: the mean and the biased variance.
///
/// One pass over the data instead of two (the stats are memory-bound): the
/// moments of `x − k` with `k` the mean of the channel's first plane, then
/// `μ = k + E[x − k]`, `σ² = E[(x − k)²] − E[x − k]²`. Shifting by a value near
/// the mean is what keeps the subtraction from cancelling (the textbook
/// `E[x²] − E[x]²` loses every digit when |μ| ≫ σ); plane moments are summed
/// across planes in f64.
pub fn batch_norm_stats<T: Element>(xs: &[T], n: usize, c: usize, s: usize) -> Vec<(T, T)> {
    assert_eq!(
        xs.len(),
        n * c * s,
        "batch_norm_stats: buffer is not [{n}, {c}, {s}]"
    );
    let m = (n * s) as f64;
    let f = |v: T| v.to_f64().unwrap_or(f64::NAN);
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let Some(first) = planes(xs, n, c, s, ch).next().filter(|p| !p.is_empty()) else {
                return (T::zero(), T::zero());
            };
            let k = plane_sum(first) / T::from_usize(first.len()).expect("fits");
            let (d1, d2) = planes(xs, n, c, s, ch).fold((0.0, 0.0), |(a, b), p| {
                let (p1, p2) = plane_shifted_moments(p, k);
                (a + f(p1), b + f(p2))
            });
            let shift = d1 / m;
            let var = (d2 / m - shift * shift).max(0.0);
            (T::from_f64_lossy(f(k) + shift), T::from_f64_lossy(var))
        })
        .collect()
}

/// `out[i, ch, :] = xs[i, ch, :] · scale[ch] + shift[ch]`, planes in parallel.
pub fn channel_affine<T: Element>(
    xs: &[T],
    out: &mut [T],
    c: usize,
    s: usize,
    scale: &[T],
    shift: &[T],
) {
    assert!(
        xs.len() == out.len()
            && scale.len() == c
            && shift.len() == c
            && xs.len().is_multiple_of((c * s).max(1)),
        "channel_affine: buffers of {} and {} values for {c} channels of {s}",
        xs.len(),
        out.len()
    );
    out.par_chunks_mut(s.max(1))
        .zip(xs.par_chunks(s.max(1)))
        .enumerate()
        .for_each(|(plane, (y, x))| plane_affine(x, y, scale[plane % c], shift[plane % c]));
}

/// Per channel: `(Σ g, Σ g (x − mean))` over the channel's values.
pub fn batch_norm_grad_sums<T: Element>(
    gs: &[T],
    xs: &[T],
    n: usize,
    c: usize,
    s: usize,
    mean: &[T],
) -> Vec<(T, T)> {
    assert!(
        gs.len() == n * c * s && xs.len() == gs.len() && mean.len() == c,
        "batch_norm_grad_sums: buffers are not [{n}, {c}, {s}]"
    );
    (0..c)
        .into_par_iter()
        .map(|ch| {
            planes(gs, n, c, s, ch).zip(planes(xs, n, c, s, ch)).fold(
                (T::zero(), T::zero()),
                |(a, b), (g, x)| {
                    let (sg, sgx) = plane_grad_sums(g, x, mean[ch]);
                    (a + sg, b + sgx)
                },
            )
        })
        .collect()
}

/// `dx[i, ch, :] = k[ch][0] g − k[ch][1] − k[ch][2] (x − k[ch][3])`, planes in parallel.
pub fn batch_norm_input_grad<T: Element>(
    gs: &[T],
    xs: &[T],
    dx: &mut [T],
    c: usize,
    s: usize,
    k: &[[T; 4]],
) {
    assert!(
        gs.len() == dx.len() && xs.len() == dx.len() && k.len() == c,
        "batch_norm_input_grad: buffers of {}, {} and {} values for {c} channels",
        gs.len(),
        xs.len(),
        dx.len()
    );
    dx.par_chunks_mut(s.max(1))
        .enumerate()
        .for_each(|(plane, d)| {
            let at = plane * s;
            plane_input_grad(
                &gs[at..at + d.len()],
                &xs[at..at + d.len()],
                d,
                k[plane % c],
            );
        });
}
