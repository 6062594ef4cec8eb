//! 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3)
//! (Lavin & Gray 2016): 2.25x fewer multiply-adds than im2col + GEMM, for the
//! forward pass, the input gradient and the weight gradient.
//!
//! In one dimension, two outputs of a 3-tap correlation from four inputs d:
//!
//! ```text
//! y = Aᵀ [(G g) ⊙ (Bᵀ d)]        Bᵀ = | 1  0 -1  0 |   G = | 1    0    0  |   Aᵀ = | 1 1  1  0 |
//!                                     | 0  1  1  0 |       | 1/2  1/2 1/2 |        | 0 1 -1 -1 |
//!                                     | 0 -1  1  0 |       | 1/2 -1/2 1/2 |
//!                                     | 0  1  0 -1 |       | 0    0    1  |
//! ```
//!
//! and in two, a 2x2 output tile from a 4x4 input tile D (rows and columns
//! `2i - pad .. 2i - pad + 4`, zeros outside the image):
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ D B)] A`. Over channels the elementwise product
//! becomes 16 independent GEMMs, one per position ξ of the 4x4 transformed tile:
//! `M[ξ] (O x T) = U[ξ] (O x C) · V[ξ] (C x T)` with `U = G g Gᵀ` per (o, c)
//! and `V = Bᵀ D B` per (c, tile). Each GEMM does O·C·T multiply-adds for 4·T
//! outputs, against 9·O·C per output for the direct sum.
//!
//! * Input gradient: for stride 1 it is the forward convolution of `dy` with
//!   the weights flipped and transposed (`W'[c][o] = rot180(W[o][c])`) and
//!   padding `2 - pad`, so it runs the same code.
//! * Weight gradient: the same identity read the other way,
//!   `dW = Gᵀ [Σ_tiles (A dY Aᵀ) ⊙ (Bᵀ D B)] G`, with dY the tile's 2x2 output
//!   gradient (zeros past the edge): 16 GEMMs `Mw[ξ] += Ydy[ξ] (O x T) · V[ξ]ᵀ`.
//!
//! The transforms are additions only and run as flat loops over all tiles of
//! an image (even and odd columns split first; `transforms.rs`), so they
//! vectorise. Exact in exact
//! arithmetic; in floating point it differs from the direct sum by rounding
//! (the f64 tests agree with im2col to 1e-12).

use super::{ordered_sum, Geometry};
use crate::gemm::{gemm_stack, Stack};
use crate::scratch::Scratch;
use crate::Element;
use rayon::prelude::*;
use transforms::{inverse_output, transform_grad, transform_input};

mod transforms;

/// Number of positions of a transformed tile.
const XI: usize = 16;

/// Tile rows and columns of an output `ho x wo` (2x2 output tiles, both paths).
pub(super) fn tiles(ho: usize, wo: usize) -> (usize, usize) {
    (ho.div_ceil(2), wo.div_ceil(2))
}

/// `U[ξ][o][c] = (G w[o][c] Gᵀ)[ξ]` for weights `[O, C, 3, 3]`.
fn transform_weights<T: Element>(w: &[T], o: usize, c: usize) -> Vec<T> {
    let half = T::from_f64(0.5).expect("0.5");
    let mut u = vec![T::zero(); XI * o * c];
    for (oc, g) in w.chunks_exact(9).enumerate() {
        // t = G g (4x3), then u = t Gᵀ (4x4)
        let mut t = [[T::zero(); 3]; 4];
        for k in 0..3 {
            let (g0, g1, g2) = (g[k], g[3 + k], g[6 + k]);
            t[0][k] = g0;
            t[1][k] = (g0 + g1 + g2) * half;
            t[2][k] = (g0 - g1 + g2) * half;
            t[3][k] = g2;
        }
        for (a, row) in t.iter().enumerate() {
            let [g0, g1, g2] = *row;
            let vals = [g0, (g0 + g1 + g2) * half, (g0 - g1 + g2) * half, g2];
            for (b, &v) in vals.iter().enumerate() {
                u[(a * 4 + b) * o * c + oc] = v;
            }
        }
    }
    u
}

/// Weights `[O, C, k, k]` (`area` = k·k values per kernel) rotated by 180°
/// and transposed to `[C, O, k, k]`: the kernel whose forward convolution of
/// `dy` is the input gradient.
pub(super) fn flip_transpose<T: Element>(w: &[T], o: usize, c: usize, area: usize) -> Vec<T> {
    let mut out = vec![T::zero(); w.len()];
    for oi in 0..o {
        for ci in 0..c {
            let src = &w[(oi * c + ci) * area..][..area];
            let dst = &mut out[(ci * o + oi) * area..][..area];
            dst.iter_mut()
                .zip(src.iter().rev())
                .for_each(|(d, &s)| *d = s);
        }
    }
    out
}

/// `dW[o][c] = Gᵀ Mw[·][o][c] G` (4x4 → 3x3) for the summed products `Mw[ξ][o][c]`.
fn inverse_weights<T: Element>(mw: &[T], o: usize, c: usize) -> Vec<T> {
    let half = T::from_f64(0.5).expect("0.5");
    // Gᵀ·(m0, m1, m2, m3) = (m0 + (m1 + m2)/2, (m1 - m2)/2, (m1 + m2)/2 + m3)
    let gt = |m: [T; 4]| {
        [
            m[0] + (m[1] + m[2]) * half,
            (m[1] - m[2]) * half,
            (m[1] + m[2]) * half + m[3],
        ]
    };
    let mut dw = vec![T::zero(); o * c * 9];
    for (oc, k) in dw.chunks_exact_mut(9).enumerate() {
        let m = |xi: usize| mw[xi * o * c + oc];
        // rows: t[r][b] = (Gᵀ m[·][b])[r]; then each row r: k[r][·] = Gᵀ t[r][·]
        let cols: [[T; 3]; 4] = std::array::from_fn(|b| gt([m(b), m(4 + b), m(8 + b), m(12 + b)]));
        for r in 0..3 {
            let row = gt([cols[0][r], cols[1][r], cols[2][r], cols[3][r]]);
            k[r * 3..r * 3 + 3].copy_from_slice(&row);
        }
    }
    dw
}

/// `Σ_groups` of what `accumulate(group, acc, parallel)` adds into `len`-long
/// buffers (a weight gradient in the transformed domain), deterministic for a
/// given thread count. With no more groups than threads (the deepest layers,
/// where the buffer is largest) there is one accumulator and each group's
/// GEMMs run in parallel (`parallel` = true) instead of an accumulator per
/// worker (16·O·C floats each: 16 MiB at 512x512); otherwise [`ordered_sum`].
pub(super) fn sum_over_groups<I: Copy + Sync, T: Element>(
    groups: &[I],
    len: usize,
    accumulate: impl Fn(I, &mut [T], bool) + Sync,
) -> Vec<T> {
    let threads = rayon::current_num_threads();
    if groups.len() <= threads {
        let mut acc = vec![T::zero(); len];
        for &group in groups {
            accumulate(group, &mut acc, threads > 1);
        }
        acc
    } else {
        ordered_sum(groups, len, |range, acc| {
            range
                .iter()
                .for_each(|&group| accumulate(group, acc, false))
        })
    }
}

/// Forward convolution `y = x ⊛ w` (no bias) of geometry `g` into `out`.
pub(super) fn forward<T: Element>(g: &Geometry, xs: &[T], ws: &[T], out: &mut [T]) {
    let u = transform_weights(ws, g.o, g.c);
    convolve(g, xs, &u, out);
}

/// Input gradient of the convolution `g` from the output gradient `gys`.
pub(super) fn input_grad<T: Element>(g: &Geometry, gys: &[T], ws: &[T], gx: &mut [T]) {
    let u = transform_weights(&flip_transpose(ws, g.o, g.c, 9), g.c, g.o);
    convolve(&g.input_grad_as_forward(), gys, &u, gx);
}

/// `out = x ⊛ (weights transformed to u)` for geometry `g`.
fn convolve<T: Element>(g: &Geometry, xs: &[T], u: &[T], out: &mut [T]) {
    let (th, tw) = tiles(g.ho, g.wo);
    let t = th * tw;
    let group = g.group_size_for(t);
    let inner = g.inner_parallel(group);
    let out_len = g.o * g.ho * g.wo;
    out.par_chunks_mut((group * out_len).max(1))
        .zip(xs.par_chunks((group * g.image_len()).max(1)))
        .for_each(|(yg, xg)| {
            let images = xg.len() / g.image_len().max(1);
            let tg = images * t;
            let (mut vbuf, mut mbuf) = (Scratch::take(), Scratch::take());
            let v = vbuf.fit(XI * g.c * tg);
            for (j, x_n) in xg.chunks_exact(g.image_len()).enumerate() {
                let dims = (g.c, g.h, g.w);
                transform_input(x_n, dims, g.p.padding, (th, tw), v, j * t, tg, g.c * tg);
            }
            let m = mbuf.fit(XI * g.o * tg);
            let (ul, vl, ml) = (
                Stack::planes(g.o, g.c),
                Stack::planes(g.c, tg),
                Stack::planes(g.o, tg),
            );
            let dims = (g.o, g.c, tg);
            gemm_stack(XI, dims, (u, ul), (v, vl), (m, ml), false, inner);
            for (j, y_n) in yg.chunks_exact_mut(out_len).enumerate() {
                inverse_output(m, (g.o, g.ho, g.wo), (th, tw), j * t, tg, g.o * tg, y_n);
            }
        });
}

/// Weight gradient `[O, C, 3, 3]` of the convolution `g`; deterministic for a
/// given thread count (see [`ordered_sum`]).
pub(super) fn weight_grad<T: Element>(g: &Geometry, xs: &[T], gys: &[T]) -> Vec<T> {
    let (th, tw) = tiles(g.ho, g.wo);
    let t = th * tw;
    let group = g.group_size_for(t);
    let out_len = g.o * g.ho * g.wo;
    let groups = g.image_groups(xs, gys, group);
    // Mw[ξ] (O x C) += Ydy[ξ] (O x Tg) · V[ξ]ᵀ (Tg x C) for one group
    let accumulate = |(xg, gyg): (&[T], &[T]), acc: &mut [T], parallel: bool| {
        let (mut vbuf, mut ybuf) = (Scratch::take(), Scratch::take());
        let tg = xg.len() / g.image_len().max(1) * t;
        let v = vbuf.fit(XI * g.c * tg);
        let ydy = ybuf.fit(XI * g.o * tg);
        let pairs = xg
            .chunks_exact(g.image_len())
            .zip(gyg.chunks_exact(out_len));
        for (j, (x_n, dy_n)) in pairs.enumerate() {
            let dims = (g.c, g.h, g.w);
            transform_input(x_n, dims, g.p.padding, (th, tw), v, j * t, tg, g.c * tg);
            let gdims = (g.o, g.ho, g.wo);
            transform_grad(dy_n, gdims, (th, tw), ydy, j * t, tg, g.o * tg);
        }
        let (yl, vl, wl) = (
            Stack::planes(g.o, tg),
            Stack::planes(g.c, tg).t(),
            Stack::planes(g.o, g.c),
        );
        let dims = (g.o, tg, g.c);
        gemm_stack(XI, dims, (ydy, yl), (v, vl), (acc, wl), true, parallel);
    };
    let mw = sum_over_groups(&groups, XI * g.o * g.c, accumulate);
    inverse_weights(&mw, g.o, g.c)
}
