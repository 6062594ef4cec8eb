//! 5x5 stride-1 convolutions by Winograd's F(2x2, 5x5) in a channels-last
//! layout: 2.78x fewer multiply-adds than im2col (LeNet++'s convolutions).
//!
//! In one dimension, two outputs of a 5-tap correlation from six inputs d are
//! `y = Aᵀ [(G g) ⊙ (Bᵀ d)]` (Toom-Cook on the points 0, 1, -1, 2, -2 and ∞,
//! the same points and Bᵀ as the common F(4, 3)):
//!
//! ```text
//! Aᵀ = | 1 1  1 1  1 0 |   G = f_ξ·(1, a, a², a³, a⁴) for the point a of row ξ,
//!      | 0 1 -1 2 -2 1 |       f = (1/4, -1/6, -1/6, 1/24, 1/24), and (0 0 0 0 1) for ∞
//! Bᵀ = diag(1/f)·P⁻¹ with P the 6x6 Vandermonde matrix of the points (∞ last)
//! ```
//!
//! and in two, a 2x2 output tile from a 6x6 input tile D, `Y = Aᵀ[(G g Gᵀ) ⊙
//! (Bᵀ D B)]A`: per position ξ of the 6x6 transformed tile, one GEMM over
//! channels, 36 in all, each with 1 multiply-add per (tile, c, o) for 4
//! outputs, against 25 per output for the direct sum.
//!
//! Why a second Winograd module and not F(2, r) in the first: the 3x3 path
//! (`winograd.rs`) keeps tiles in columns (`V[ξ]` is C x tiles) and vectorises
//! its transforms along the tiles of an image. LeNet++'s images have 16 to 196
//! tiles, so those loops are short, and an F(2x2, 5x5) built that way spent
//! more time in its transforms than im2col spent in all (measured; it is in
//! git history, "winograd: general F(2, r) by Toom-Cook"). Here:
//!
//! * **Channels last.** An image is first copied to `[row][column][channel]`
//!   (padded to the tile grid, 8 x 8 in-register transposes), and the
//!   transforms run on blocks of 8 channels of one tile at a time
//!   (`tiles.rs`): whole-vector operations whatever the image size. Outputs
//!   come back the same way. Channel counts are padded to a multiple of 8
//!   inside the buffers (zeros), never in the tensors.
//! * **Tile-major buffers.** V is `[tile][ξ][channel]`, so a tile's 36
//!   transformed vectors are stored one after another (stored ξ-major, the 36
//!   planes were 36 store streams and the stores dominated); the GEMMs read
//!   `V[ξ]` as a strided tiles x C matrix ([`crate::gemm::gemm_stack`]):
//!   `M[ξ] (T x O) = V[ξ] (T x C) · U[ξ] (C x O)`.
//! * **Blocks that stay in cache.** A group's tiles are cut into blocks (see
//!   [`block_tiles`]); each block is transformed, multiplied and transformed
//!   back before the next, so V and M stay in L2.
//!
//! * Input gradient: the forward convolution of `dy` with the weights rotated
//!   by 180° and transposed, padding `4 - pad`.
//! * Weight gradient: `dW = Gᵀ [Σ_tiles (A dY Aᵀ) ⊙ (Bᵀ D B)] G`, as 36 GEMMs
//!   `Mw[ξ] (O x C) += Ydy[ξ]ᵀ (O x T) · V[ξ] (T x C)`.
//!
//! Exact in exact arithmetic; the f64 tests agree with the direct sum to 1e-10.

use super::winograd::{flip_transpose, sum_over_groups, tiles};
use super::Geometry;
use crate::gemm::{gemm_stack, Stack};
use crate::scratch::Scratch;
use crate::Element;
use rayon::prelude::*;
use std::ops::Range;
use tiles::{
    grad_tiles, input_tiles, output_tiles, transpose_from, transpose_into, weight_grad_tiles,
    weight_tiles,
};

mod tiles;

/// Channels per block in the transforms (one AVX2 register of f32).
const L: usize = 8;

/// Positions of a transformed tile (6 x 6).
const XI: usize = 36;

/// `Aᵀ` (2 x 6), see the module text.
const AT: [[f64; 6]; 2] = [[1., 1., 1., 1., 1., 0.], [0., 1., -1., 2., -2., 1.]];

/// `G` (6 x 5), see the module text.
const G: [[f64; 5]; 6] = [
    [1. / 4., 0., 0., 0., 0.],
    [-1. / 6., -1. / 6., -1. / 6., -1. / 6., -1. / 6.],
    [-1. / 6., 1. / 6., -1. / 6., 1. / 6., -1. / 6.],
    [1. / 24., 1. / 12., 1. / 6., 1. / 3., 2. / 3.],
    [1. / 24., -1. / 12., 1. / 6., -1. / 3., 2. / 3.],
    [0., 0., 0., 0., 1.],
];

/// A channel count rounded up to whole blocks of [`L`].
fn padded(channels: usize) -> usize {
    channels.div_ceil(L) * L
}

/// `U` (36 x cp x op) for weights `[O, C, 5, 5]`.
fn transformed_weights<T: Element>(w: &[T], o: usize, c: usize) -> Vec<T> {
    let (cp, op) = (padded(c), padded(o));
    let mut u = vec![T::zero(); XI * cp * op];
    weight_tiles(w, (o, c), (cp, op), &mut u);
    u
}

/// Forward convolution `y = x ⊛ w` (no bias) of geometry `g` into `out`.
pub(super) fn forward<T: Element>(g: &Geometry, xs: &[T], ws: &[T], out: &mut [T]) {
    convolve(g, xs, &transformed_weights(ws, g.o, g.c), out);
}

/// Input gradient of the convolution `g` from the output gradient `gys`.
pub(super) fn input_grad<T: Element>(g: &Geometry, gys: &[T], ws: &[T], gx: &mut [T]) {
    let u = transformed_weights(&flip_transpose(ws, g.o, g.c, 25), g.c, g.o);
    convolve(&g.input_grad_as_forward(), gys, &u, gx);
}

/// Bytes a block's transformed input and output (V and M, or V and Ydy) may
/// take together, so that they stay in the L2 cache between the transforms
/// and the GEMMs (measured on LeNet++: 256 KiB was slower, 1 MiB about the
/// same; see [`block_tiles`]).
const BLOCK_BYTES: usize = 512 << 10;

/// Tile rows `rows` of image `image` of a group, at column `col` of a block.
struct Segment {
    image: usize,
    rows: Range<usize>,
    col: usize,
}

/// The tiles of `images` images (`th x tw` tiles each) cut into blocks of
/// about `target` tiles: whole images side by side when an image has fewer
/// tiles, else runs of tile rows of one image. Each block: its segments and
/// its tile count.
fn blocks(images: usize, (th, tw): (usize, usize), target: usize) -> Vec<(Vec<Segment>, usize)> {
    let t = th * tw;
    if t >= target {
        let per = (target / tw).max(1);
        let runs = (0..images).flat_map(|image| (0..th).step_by(per).map(move |i| (image, i)));
        runs.map(|(image, i)| {
            let rows = i..(i + per).min(th);
            let tiles = rows.len() * tw;
            (
                vec![Segment {
                    image,
                    rows,
                    col: 0,
                }],
                tiles,
            )
        })
        .collect()
    } else {
        let per = (target / t.max(1)).max(1);
        let firsts = (0..images).step_by(per);
        firsts
            .map(|first| {
                let segments: Vec<Segment> = (first..(first + per).min(images))
                    .enumerate()
                    .map(|(k, image)| Segment {
                        image,
                        rows: 0..th,
                        col: k * t,
                    })
                    .collect();
                let tiles = segments.len() * t;
                (segments, tiles)
            })
            .collect()
    }
}

/// Tiles per block for `cp` input and `op` output channels: as many as fit
/// [`BLOCK_BYTES`], but at least `cp·op / (cp + op)`. Every block streams all
/// of U (36·cp·op values, 2.4 MB at 128 x 128: more than L2) through the
/// GEMMs once, so below that floor U's traffic per tile exceeds the size of
/// the tile's own V and M. Measured on LeNet++ (CPU time of the training
/// benchmark): the floor saves about 7% against the L2 budget alone, which for
/// 128 channels gave blocks of 14 tiles.
fn block_tiles<T>(cp: usize, op: usize) -> usize {
    let fit = BLOCK_BYTES / (XI * (cp + op) * std::mem::size_of::<T>());
    fit.max(cp * op / (cp + op)).clamp(16, 1024)
}

/// Transform the segments of one block of the group `xg` (geometry `g`) into
/// `v` (tile-major: tiles x 36 x cp), copying each image channels-last into `xp` once
/// (`copied` remembers which image is there).
fn transform_block<T: Element>(
    g: &Geometry,
    xg: &[T],
    segments: &[Segment],
    (xp, copied): (&mut [T], &mut Option<usize>),
    v: &mut [T],
) {
    let (th, tw) = tiles_of(g);
    let (wp, cp) = (2 * tw + 4, padded(g.c));
    debug_assert!(xp.len() >= (2 * th + 4) * wp * cp);
    for s in segments {
        if *copied != Some(s.image) {
            let x_n = &xg[s.image * g.image_len()..][..g.image_len()];
            transpose_into(x_n, (g.c, g.h, g.w), g.p.padding, (wp, cp), xp);
            *copied = Some(s.image);
        }
        input_tiles(xp, (wp, cp), (s.rows.clone(), tw), v, s.col);
    }
}

/// The 36 matrices (tiles x `channels`) of a tile-major buffer
/// `[tile][ξ][channel]`.
fn tile_major(channels: usize) -> Stack {
    Stack {
        step: channels,
        rs: XI * channels,
        cs: 1,
    }
}

/// Tile rows and columns of the output of `g`.
fn tiles_of(g: &Geometry) -> (usize, usize) {
    tiles(g.ho, g.wo)
}

/// `out = x ⊛ (weights transformed to u)` for geometry `g`.
fn convolve<T: Element>(g: &Geometry, xs: &[T], u: &[T], out: &mut [T]) {
    let (th, tw) = tiles_of(g);
    let (cp, op) = (padded(g.c), padded(g.o));
    let group = g.group_size_for(th * tw);
    let inner = g.inner_parallel(group);
    let out_len = g.o * g.ho * g.wo;
    let target = block_tiles::<T>(cp, op);
    out.par_chunks_mut((group * out_len).max(1))
        .zip(xs.par_chunks((group * g.image_len()).max(1)))
        .for_each(|(yg, xg)| {
            let (mut vbuf, mut mbuf) = (Scratch::take(), Scratch::take());
            let mut xp = vec![T::zero(); (2 * th + 4) * (2 * tw + 4) * cp];
            let mut yp = vec![T::zero(); 4 * th * tw * op];
            let mut copied = None;
            let images = xg.len() / g.image_len().max(1);
            for (segments, tb) in blocks(images, (th, tw), target) {
                let v = vbuf.fit(XI * tb * cp);
                transform_block(g, xg, &segments, (&mut xp, &mut copied), v);
                let m = mbuf.fit(XI * tb * op);
                let (vl, ml) = (tile_major(cp), tile_major(op));
                let ul = Stack::planes(cp, op);
                gemm_stack(XI, (tb, cp, op), (v, vl), (u, ul), (m, ml), false, inner);
                for s in &segments {
                    let y_n = &mut yg[s.image * out_len..][..out_len];
                    output_tiles(m, (s.rows.clone(), tw, op), s.col, &mut yp);
                    let out_rows = 2 * s.rows.start..2 * s.rows.end;
                    transpose_from(&yp, (2 * tw, op), (g.o, g.ho, g.wo), out_rows, y_n);
                }
            }
        });
}

/// Weight gradient `[O, C, 5, 5]` of the convolution `g`; deterministic for a
/// given thread count.
pub(super) fn weight_grad<T: Element>(g: &Geometry, xs: &[T], gys: &[T]) -> Vec<T> {
    let (th, tw) = tiles_of(g);
    let (cp, op) = (padded(g.c), padded(g.o));
    let group = g.group_size_for(th * tw);
    let out_len = g.o * g.ho * g.wo;
    let target = block_tiles::<T>(cp, op);
    let groups = g.image_groups(xs, gys, group);
    // Mw[ξ] (op x cp) += Ydy[ξ]ᵀ (op x tb) · V[ξ] (tb x cp) for each block of a group
    let accumulate = |(xg, gyg): (&[T], &[T]), acc: &mut [T], parallel: bool| {
        let (mut vbuf, mut ybuf) = (Scratch::take(), Scratch::take());
        let mut xp = vec![T::zero(); (2 * th + 4) * (2 * tw + 4) * cp];
        let mut dyp = vec![T::zero(); 4 * th * tw * op];
        let (mut copied, mut dy_copied) = (None, None);
        let images = xg.len() / g.image_len().max(1);
        for (segments, tb) in blocks(images, (th, tw), target) {
            let v = vbuf.fit(XI * tb * cp);
            transform_block(g, xg, &segments, (&mut xp, &mut copied), v);
            let ydy = ybuf.fit(XI * tb * op);
            for s in &segments {
                if dy_copied != Some(s.image) {
                    let dy_n = &gyg[s.image * out_len..][..out_len];
                    let dims = (g.o, g.ho, g.wo);
                    transpose_into(dy_n, dims, (0, 0), (2 * tw, op), &mut dyp);
                    dy_copied = Some(s.image);
                }
                grad_tiles(&dyp, (s.rows.clone(), tw, op), ydy, s.col);
            }
            let (yl, vl, wl) = (tile_major(op).t(), tile_major(cp), Stack::planes(op, cp));
            gemm_stack(
                XI,
                (op, tb, cp),
                (ydy, yl),
                (v, vl),
                (acc, wl),
                true,
                parallel,
            );
        }
    };
    let mw = sum_over_groups(&groups, XI * op * cp, accumulate);
    let mut dw = vec![T::zero(); g.o * g.c * 25];
    weight_grad_tiles(&mw, (g.o, g.c), (op, cp), &mut dw);
    dw
}

#[cfg(test)]
mod tests {
    use super::{AT, G};

    /// The 1-D identity behind the whole module: `Aᵀ[(G g) ⊙ (Bᵀ d)]` is the
    /// 5-tap correlation of d with g, for Bᵀ as `tiles::bt` computes it.
    #[test]
    fn one_dimensional_f2_5_is_a_correlation() {
        let d = [0.3, -1.2, 2.5, 0.7, -0.4, 1.9];
        let g = [0.5, -0.25, 1.5, 2.0, -1.0];
        let bt_d = super::tiles::bt_f64(&d);
        let gg: Vec<f64> = G
            .iter()
            .map(|row| row.iter().zip(&g).map(|(a, b)| a * b).sum())
            .collect();
        for (i, at) in AT.iter().enumerate() {
            let y: f64 = (0..6).map(|xi| at[xi] * gg[xi] * bt_d[xi]).sum();
            let direct: f64 = (0..5).map(|k| d[i + k] * g[k]).sum();
            assert!((y - direct).abs() < 1e-12, "output {i}: {y} vs {direct}");
        }
    }
}
