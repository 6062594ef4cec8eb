//! The per-tile transforms of F(2x2, 5x5) on blocks of [`L`] channels (see the
//! parent module for the matrices), each compiled twice and picked at run time
//! by [`crate::simd::avx2_dispatch`]. A value here is a `[T; L]` of one tile
//! position over L consecutive channels, so every operation is a whole-vector
//! operation and no loop depends on the image size.

use super::{AT, G, L, XI};
use crate::simd::avx2_dispatch;
use crate::Element;
use std::ops::Range;

/// One tile position over [`L`] channels.
type Lanes<T> = [T; L];

/// Tile side α = m + r - 1.
const A: usize = 6;

/// `Bᵀ x` for six positions `x` (along a row or a column of the tile):
/// `Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
/// 0 2 -1 -2 1 0; 0 4 0 -5 0 1]`, written with its shared sums (13 operations
/// for 6 outputs instead of 22 multiply-adds).
#[inline(always)]
fn bt<T: Element>(x: &[Lanes<T>; A]) -> [Lanes<T>; A] {
    let c = |v: f64| T::from_f64(v).expect("a small constant");
    let (two, four, five) = (c(2.0), c(4.0), c(5.0));
    let mut y = [[T::zero(); L]; A];
    for l in 0..L {
        // direct indexing (not `x.map(..)`) keeps this loop vectorised over l
        let (d0, d1, d2, d3, d4, d5) = (x[0][l], x[1][l], x[2][l], x[3][l], x[4][l], x[5][l]);
        let (p, q) = (d4 - d2, d3 - d1);
        y[0][l] = four * d0 - five * d2 + d4;
        y[1][l] = (d3 + d4) - four * (d1 + d2);
        y[2][l] = (d4 - d3) + four * (d1 - d2);
        y[3][l] = p + two * q;
        y[4][l] = p - two * q;
        y[5][l] = four * d1 - five * d3 + d5;
    }
    y
}

/// `M x` for a small constant matrix `m` (`R x C`) on lanes; the loops unroll
/// and the constant coefficients fold, so zeros and ±1 cost nothing.
#[inline(always)]
fn apply<T: Element, const R: usize, const C: usize>(
    m: &[[f64; C]; R],
    x: &[Lanes<T>; C],
) -> [Lanes<T>; R] {
    let mut y = [[T::zero(); L]; R];
    for (yr, row) in y.iter_mut().zip(m) {
        for (xc, &coef) in x.iter().zip(row) {
            if coef != 0.0 {
                let coef = T::from_f64(coef).expect("a small constant");
                for l in 0..L {
                    yr[l] += coef * xc[l];
                }
            }
        }
    }
    y
}

/// `M X Mᵀ` on lanes: the constant `m` (`R x C`) applied along both axes of
/// the tile `x` (`C x C`), `y[a][b] = Σ_i Σ_j m[a][i]·m[b][j]·x[i][j]`: rows
/// first, then columns. For the weight transforms, once per call; the
/// per-block transforms (input, output, output gradient) write the same two
/// passes by hand: through this helper the output-gradient one took 3.5% of a
/// LeNet++ step's CPU time instead of 1.9% (measured with `perf`).
#[inline(always)]
fn both_sides<T: Element, const R: usize, const C: usize>(
    m: &[[f64; C]; R],
    x: &[[Lanes<T>; C]; C],
) -> [[Lanes<T>; R]; R] {
    let rows: [[Lanes<T>; R]; C] = std::array::from_fn(|i| apply(m, &x[i]));
    let by_column: [[Lanes<T>; R]; R] =
        std::array::from_fn(|b| apply(m, &std::array::from_fn(|i| rows[i][b])));
    std::array::from_fn(|a| std::array::from_fn(|b| by_column[b][a]))
}

/// The transpose of a constant `R x C` matrix.
const fn transpose<const R: usize, const C: usize>(m: &[[f64; C]; R]) -> [[f64; R]; C] {
    let mut t = [[0.0; R]; C];
    let mut i = 0;
    while i < R {
        let mut j = 0;
        while j < C {
            t[j][i] = m[i][j];
            j += 1;
        }
        i += 1;
    }
    t
}

/// A = (Aᵀ)ᵀ, 6 x 2: the output-gradient tile transform.
const A_MAT: [[f64; 2]; A] = transpose(&AT);
/// Gᵀ, 5 x 6: the weight-gradient inverse.
const GT: [[f64; A]; 5] = transpose(&G);

/// `V[tile][ξ][cb..cb+L] = (Bᵀ D B)[ξ]` for the tiles in tile rows `rows` of
/// one image and every channel block, from the image `xp` laid out
/// channels-last and padded to the tile grid (`wp` positions per row, `cp`
/// channels per position); tile (i, j) is tile `col + (i - rows.start)·tw + j`
/// of V (tile-major, 36·cp values per tile, so the stores are sequential).
#[inline(always)]
fn input_tiles_body<T: Element>(
    xp: &[T],
    (wp, cp): (usize, usize),
    (rows, tw): (Range<usize>, usize),
    v: &mut [T],
    col: usize,
) {
    let _t = crate::profile::scope(crate::profile::Section::WinogradTransform);
    let tiles = (rows.len() * tw, rows.start * tw);
    let out = &mut v[col * XI * cp..(col + tiles.0) * XI * cp];
    // every element is written before it is read; declared once, because a
    // zeroed 1 KiB array inside the loop costs a memset call per block
    let mut cols = [[[T::zero(); L]; A]; A];
    for (k, vt) in out.chunks_exact_mut(XI * cp).enumerate() {
        let (i, j) = ((tiles.1 + k) / tw, (tiles.1 + k) % tw);
        let d = &xp[(2 * i * wp + 2 * j) * cp..];
        for cb in (0..cp).step_by(L) {
            // rows first, stored transposed so each column is one array
            for a in 0..A {
                let row = &d[a * wp * cp + cb..][..(A - 1) * cp + L];
                let x: [Lanes<T>; A] = std::array::from_fn(|b| lanes(&row[b * cp..]));
                for (b, y) in bt(&x).into_iter().enumerate() {
                    cols[b][a] = y;
                }
            }
            for (b, column) in cols.iter().enumerate() {
                for (a, y) in bt(column).iter().enumerate() {
                    vt[(a * A + b) * cp + cb..][..L].copy_from_slice(y);
                }
            }
        }
    }
}

/// The first [`L`] values of `s` as lanes.
#[inline(always)]
fn lanes<T: Element>(s: &[T]) -> Lanes<T> {
    s[..L].try_into().expect("L values")
}

/// `yp[2i + r][2j + s][o] = (Aᵀ M A)[r][s]` for the tiles in tile rows `rows`
/// of one image, from `M[tile][ξ][o]` (tile-major, `op` channels per ξ; tile
/// (i, j) at `col + (i - rows.start)·tw + j`), into the channels-last output
/// `yp` over the whole tile grid (`2·tw` positions per row, `op` channels):
/// whole-vector stores, no edge tests; [`transpose_from`] then moves the
/// valid part to the NCHW output.
#[inline(always)]
fn output_tiles_body<T: Element>(
    m: &[T],
    (rows, tw, op): (Range<usize>, usize, usize),
    col: usize,
    yp: &mut [T],
) {
    let _t = crate::profile::scope(crate::profile::Section::WinogradTransform);
    let tiles = (rows.len() * tw, rows.start * tw);
    let src = &m[col * XI * op..(col + tiles.0) * XI * op];
    let mut cols = [[[T::zero(); L]; A]; 2];
    for (k, mt) in src.chunks_exact(XI * op).enumerate() {
        let (i, j) = ((tiles.1 + k) / tw, (tiles.1 + k) % tw);
        for ob in (0..op).step_by(L) {
            for a in 0..A {
                let x: [Lanes<T>; A] = std::array::from_fn(|b| lanes(&mt[(a * A + b) * op + ob..]));
                for (s, y) in apply(&AT, &x).into_iter().enumerate() {
                    cols[s][a] = y;
                }
            }
            for (s, column) in cols.iter().enumerate() {
                for (r, yr) in apply(&AT, column).iter().enumerate() {
                    let at = ((2 * i + r) * 2 * tw + 2 * j + s) * op + ob;
                    yp[at..][..L].copy_from_slice(yr);
                }
            }
        }
    }
}

/// Body of [`transpose_from`]: `y[c][row][x] = yp[(row·wq + x)·cp + c]` for
/// the output rows `rows` (those below `h`), `c < ch`, `x < w`: the inverse
/// of [`transpose_into_body`], in 8 x 8 blocks the same way.
#[inline(always)]
fn transpose_from_body<T: Element>(
    yp: &[T],
    (wq, cp): (usize, usize),
    (ch, h, w): (usize, usize, usize),
    rows: Range<usize>,
    y: &mut [T],
) {
    let _t = crate::profile::scope(crate::profile::Section::WinogradTransform);
    let (c_full, w_full) = (ch / L * L, w / L * L);
    for row in rows.start..rows.end.min(h) {
        let src = &yp[row * wq * cp..];
        for c0 in (0..c_full).step_by(L) {
            for x0 in (0..w_full).step_by(L) {
                let out = &mut y[(c0 * h + row) * w + x0..];
                crate::simd::transpose_8x8(&src[x0 * cp + c0..], cp, out, h * w);
            }
            for x in w_full..w {
                for l in 0..L {
                    y[((c0 + l) * h + row) * w + x] = src[x * cp + c0 + l];
                }
            }
        }
        for c in c_full..ch {
            for x in 0..w {
                y[(c * h + row) * w + x] = src[x * cp + c];
            }
        }
    }
}

/// `Ydy[tile][ξ][ob..ob+L] = (A dY Aᵀ)[ξ]` for the 2x2 output-gradient tiles
/// in tile rows `rows` of one image, from its output gradient `dyp` laid out
/// channels-last over the whole tile grid (`2·tw` positions per row, `op`
/// channels, zeros past the edge); tile-major like [`input_tiles_body`].
#[inline(always)]
fn grad_tiles_body<T: Element>(
    dyp: &[T],
    (rows, tw, op): (Range<usize>, usize, usize),
    out: &mut [T],
    col: usize,
) {
    let _t = crate::profile::scope(crate::profile::Section::WinogradTransform);
    let tiles = (rows.len() * tw, rows.start * tw);
    let dst = &mut out[col * XI * op..(col + tiles.0) * XI * op];
    for (k, yt) in dst.chunks_exact_mut(XI * op).enumerate() {
        let (i, j) = ((tiles.1 + k) / tw, (tiles.1 + k) % tw);
        for ob in (0..op).step_by(L) {
            let rows: [[Lanes<T>; A]; 2] = std::array::from_fn(|r| {
                let at = ((2 * i + r) * 2 * tw + 2 * j) * op + ob;
                apply(&A_MAT, &[lanes(&dyp[at..]), lanes(&dyp[at + op..])])
            });
            let cols: [[Lanes<T>; 2]; A] = std::array::from_fn(|b| [rows[0][b], rows[1][b]]);
            for (b, column) in cols.iter().enumerate() {
                for (a, y) in apply(&A_MAT, column).iter().enumerate() {
                    yt[(a * A + b) * op + ob..][..L].copy_from_slice(y);
                }
            }
        }
    }
}

/// `U[ξ][c][ob..ob+L] = (G w[o][c] Gᵀ)[ξ]` for weights `[O, C, 5, 5]`, `U`
/// laid out `ξ x cp x op` (zeros in the padding channels, which the caller
/// zeroed).
#[inline(always)]
fn weight_tiles_body<T: Element>(
    w: &[T],
    (o, c): (usize, usize),
    (cp, op): (usize, usize),
    u: &mut [T],
) {
    for ci in 0..c {
        for ob in (0..o).step_by(L) {
            let mut k = [[[T::zero(); L]; 5]; 5];
            for (l, oi) in (ob..o.min(ob + L)).enumerate() {
                let g = &w[(oi * c + ci) * 25..][..25];
                for (a, ka) in k.iter_mut().enumerate() {
                    for (b, kab) in ka.iter_mut().enumerate() {
                        kab[l] = g[a * 5 + b];
                    }
                }
            }
            for (a, ua) in both_sides(&G, &k).iter().enumerate() {
                for (b, uab) in ua.iter().enumerate() {
                    u[((a * A + b) * cp + ci) * op + ob..][..L].copy_from_slice(uab);
                }
            }
        }
    }
}

/// `dW[o][c] = Gᵀ Mw[·][o][c] G` (6x6 → 5x5) for the summed products
/// `Mw[ξ][o][c]` laid out `ξ x op x cp`.
#[inline(always)]
fn weight_grad_tiles_body<T: Element>(
    mw: &[T],
    (o, c): (usize, usize),
    (op, cp): (usize, usize),
    dw: &mut [T],
) {
    for oi in 0..o {
        for cb in (0..c).step_by(L) {
            let mut x = [[[T::zero(); L]; A]; A];
            for (a, xa) in x.iter_mut().enumerate() {
                for (b, xab) in xa.iter_mut().enumerate() {
                    xab.copy_from_slice(&mw[((a * A + b) * op + oi) * cp + cb..][..L]);
                }
            }
            for (a, ka) in both_sides(&GT, &x).iter().enumerate() {
                for (b, kab) in ka.iter().enumerate() {
                    for (l, &val) in kab.iter().enumerate().take(c - cb) {
                        dw[(oi * c + cb + l) * 25 + a * 5 + b] = val;
                    }
                }
            }
        }
    }
}

/// Body of [`transpose_into`]: image `img` (`c` planes of `h x w`) copied
/// channels-last, `xp[((y + pad.0)·wp + pad.1 + x)·cp + c] = img[c][y][x]`,
/// in 8 x 8 blocks (channels x columns) by [`crate::simd::transpose_8x8`]; the
/// columns past the last whole block of 8 one at a time (8 channels each), the
/// channels past the last whole block of 8 element by element. Nothing else
/// is written: the caller zeroes `xp` once, and every image copied into it
/// afterwards has the same geometry, so the borders and the padding channels
/// stay zero.
#[inline(always)]
fn transpose_into_body<T: Element>(
    img: &[T],
    (c, h, w): (usize, usize, usize),
    pad: (usize, usize),
    (wp, cp): (usize, usize),
    xp: &mut [T],
) {
    let _t = crate::profile::scope(crate::profile::Section::WinogradTransform);
    let c_full = c / L * L;
    for y in 0..h {
        let dst = ((y + pad.0) * wp + pad.1) * cp;
        for c0 in (0..c_full).step_by(L) {
            let src = &img[(c0 * h + y) * w..];
            let w_full = w / L * L;
            for x0 in (0..w_full).step_by(L) {
                let out = &mut xp[dst + x0 * cp + c0..];
                crate::simd::transpose_8x8(&src[x0..], h * w, out, cp);
            }
            for xx in w_full..w {
                let column: Lanes<T> = std::array::from_fn(|ci| src[ci * h * w + xx]);
                xp[dst + xx * cp + c0..][..L].copy_from_slice(&column);
            }
        }
        for ci in c_full..c {
            let src = &img[(ci * h + y) * w..][..w];
            for (xx, &v) in src.iter().enumerate() {
                xp[dst + xx * cp + ci] = v;
            }
        }
    }
}

avx2_dispatch! {
    /// See [`transpose_into_body`].
    pub(super) fn transpose_into<T: Element>(
        img: &[T],
        dims: (usize, usize, usize),
        pad: (usize, usize),
        layout: (usize, usize),
        xp: &mut [T],
    ) = transpose_into_body
}

avx2_dispatch! {
    /// See [`input_tiles_body`].
    pub(super) fn input_tiles<T: Element>(
        xp: &[T],
        layout: (usize, usize),
        tiles: (Range<usize>, usize),
        v: &mut [T],
        col: usize,
    ) = input_tiles_body
}

avx2_dispatch! {
    /// See [`output_tiles_body`].
    pub(super) fn output_tiles<T: Element>(
        m: &[T],
        tiles: (Range<usize>, usize, usize),
        col: usize,
        yp: &mut [T],
    ) = output_tiles_body
}

avx2_dispatch! {
    /// See [`transpose_from_body`].
    pub(super) fn transpose_from<T: Element>(
        yp: &[T],
        layout: (usize, usize),
        dims: (usize, usize, usize),
        rows: Range<usize>,
        y: &mut [T],
    ) = transpose_from_body
}

avx2_dispatch! {
    /// See [`grad_tiles_body`].
    pub(super) fn grad_tiles<T: Element>(
        dyp: &[T],
        tiles: (Range<usize>, usize, usize),
        out: &mut [T],
        col: usize,
    ) = grad_tiles_body
}

avx2_dispatch! {
    /// See [`weight_tiles_body`].
    pub(super) fn weight_tiles<T: Element>(
        w: &[T],
        dims: (usize, usize),
        padded: (usize, usize),
        u: &mut [T],
    ) = weight_tiles_body
}

avx2_dispatch! {
    /// See [`weight_grad_tiles_body`].
    pub(super) fn weight_grad_tiles<T: Element>(
        mw: &[T],
        dims: (usize, usize),
        padded: (usize, usize),
        dw: &mut [T],
    ) = weight_grad_tiles_body
}

/// [`bt`] on one f64 lane, for the identity test of the parent module.
#[cfg(test)]
pub(super) fn bt_f64(d: &[f64; A]) -> [f64; A] {
    bt(&d.map(|v| [v; L])).map(|lanes| lanes[0])
}
