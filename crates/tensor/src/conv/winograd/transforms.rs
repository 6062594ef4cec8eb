//! The Winograd transforms of input tiles, output tiles and output-gradient
//! tiles (see the parent module for the maths), as flat loops over all tiles
//! of an image so that they vectorise, each compiled twice and picked at run
//! time by [`crate::simd::avx2_dispatch`] (portable and AVX2).

use crate::simd::avx2_dispatch;
use crate::Element;

/// One row of an image (`pad` zeros before it) read at input columns
/// `2m - pad` (into `even`) and `2m + 1 - pad` (into `odd`), zeros outside.
/// Written over pairs of the row so that it vectorises (no per-element bounds
/// logic): a pair (r[2q], r[2q+1]) lands at m = q + pad/2, in (even, odd)
/// order for an even `pad` and (odd, next even) for an odd one.
#[inline(always)]
fn split_row<T: Element>(row: Option<&[T]>, pad: usize, even: &mut [T], odd: &mut [T]) {
    even.fill(T::zero());
    odd.fill(T::zero());
    let Some(r) = row else { return };
    let (half, len) = (pad / 2, even.len());
    let q_end = (r.len() / 2).min(len.saturating_sub(half + pad % 2));
    let body = &r[..2 * q_end];
    if pad.is_multiple_of(2) {
        let dst = even[half..].iter_mut().zip(odd[half..].iter_mut());
        for ((e, o), p) in dst.zip(body.chunks_exact(2)) {
            *e = p[0];
            *o = p[1];
        }
    } else {
        let dst = odd[half..].iter_mut().zip(even[half + 1..].iter_mut());
        for ((o, e), p) in dst.zip(body.chunks_exact(2)) {
            *o = p[0];
            *e = p[1];
        }
    }
    // what the pair loop left out: pairs past `len`, and an odd row's last value
    for (k, &v) in r.iter().enumerate().skip(2 * q_end) {
        let (m, is_odd) = ((k + pad) / 2, (k + pad) % 2 == 1);
        if m < len {
            if is_odd {
                odd[m] = v;
            } else {
                even[m] = v;
            }
        }
    }
}

/// `out[k] = f(a[k], b[k])` over equal-length runs (a vectorisable flat loop).
#[inline(always)]
fn zip_into<T: Element>(out: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T) -> T) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = f(x, y);
    }
}

/// `V[ξ][c][col0 + i·tw + j] = (Bᵀ D B)[ξ]` for every tile (i, j) of one image
/// `x` (`c` planes of `h x w`), padding `pad`, output tiles `th x tw`; `ld` is
/// the row length of V and `plane` the distance between its ξ planes.
///
/// Tile (i, j) reads padded rows 2i..2i+4 and columns 2j..2j+4. Each padded
/// row R = 2s + q (s = 0..=th, parity q) is split once into its four column
/// phases `C_b[s][j] = xpad[R][2j + b]`; after that both 1-D transforms are
/// flat loops over all tiles of the image: horizontally on each (q, s) row
/// set, vertically by pairing row set s = i with s = i + 1 (offset `tw`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn transform_input_body<T: Element>(
    x: &[T],
    (c, h, w): (usize, usize, usize),
    pad: (usize, usize),
    (th, tw): (usize, usize),
    v: &mut [T],
    col0: usize,
    ld: usize,
    plane: usize,
) {
    let _t = crate::profile::scope(crate::profile::Section::WinogradTransform);
    let (n, t) = ((th + 1) * tw, th * tw);
    // phases[q][b][s·tw + j] = xpad[2s + q][2j + b]; then hs[q][b'] likewise
    let mut phases = vec![T::zero(); 8 * n];
    let mut hs = vec![T::zero(); 8 * n];
    let (mut even, mut odd) = (vec![T::zero(); tw + 1], vec![T::zero(); tw + 1]);
    for ci in 0..c {
        let img = &x[ci * h * w..(ci + 1) * h * w];
        for s in 0..=th {
            for q in 0..2 {
                let r = (2 * s + q).checked_sub(pad.0).filter(|&r| r < h);
                split_row(
                    r.map(|r| &img[r * w..(r + 1) * w]),
                    pad.1,
                    &mut even,
                    &mut odd,
                );
                let at = |b: usize| (q * 4 + b) * n + s * tw;
                phases[at(0)..at(0) + tw].copy_from_slice(&even[..tw]);
                phases[at(1)..at(1) + tw].copy_from_slice(&odd[..tw]);
                phases[at(2)..at(2) + tw].copy_from_slice(&even[1..]);
                phases[at(3)..at(3) + tw].copy_from_slice(&odd[1..]);
            }
        }
        // horizontal Bᵀ: (d0 - d2, d1 + d2, d2 - d1, d1 - d3) per (q, s, j)
        for q in 0..2 {
            let ph = |b: usize| &phases[(q * 4 + b) * n..(q * 4 + b + 1) * n];
            let (d0, d1, d2, d3) = (ph(0), ph(1), ph(2), ph(3));
            let hq = &mut hs[q * 4 * n..(q + 1) * 4 * n];
            let (h0, rest) = hq.split_at_mut(n);
            let (h1, rest) = rest.split_at_mut(n);
            let (h2, h3) = rest.split_at_mut(n);
            zip_into(h0, d0, d2, |a, b| a - b);
            zip_into(h1, d1, d2, |a, b| a + b);
            zip_into(h2, d2, d1, |a, b| a - b);
            zip_into(h3, d1, d3, |a, b| a - b);
        }
        // vertical Bᵀ over tile rows: rows 0..4 of tile row i are
        // (q0, s = i), (q1, i), (q0, i + 1), (q1, i + 1)
        for b in 0..4 {
            let hrow = |q: usize, s0: usize| &hs[(q * 4 + b) * n + s0 * tw..][..t];
            let (d0, d1, d2, d3) = (hrow(0, 0), hrow(1, 0), hrow(0, 1), hrow(1, 1));
            let dst = |a: usize| (a * 4 + b) * plane + ci * ld + col0;
            zip_into(&mut v[dst(0)..dst(0) + t], d0, d2, |a, b| a - b);
            zip_into(&mut v[dst(1)..dst(1) + t], d1, d2, |a, b| a + b);
            zip_into(&mut v[dst(2)..dst(2) + t], d2, d1, |a, b| a - b);
            zip_into(&mut v[dst(3)..dst(3) + t], d1, d3, |a, b| a - b);
        }
    }
}

/// `y[o][2i + r][2j + s] = (Aᵀ M A)[r][s]` for every tile of one image, from
/// `M[ξ][o][col0 + i·tw + j]` (row length `ld`, ξ planes `plane` apart); `y`
/// holds `o` planes of `ho x wo`, every element written once. Both 1-D
/// transforms run flat over the image's tiles; only the final interleaving
/// into output rows goes tile by tile.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn inverse_output_body<T: Element>(
    m: &[T],
    (o, ho, wo): (usize, usize, usize),
    (th, tw): (usize, usize),
    col0: usize,
    ld: usize,
    plane: usize,
    y: &mut [T],
) {
    let _t = crate::profile::scope(crate::profile::Section::WinogradTransform);
    let t = th * tw;
    // s[r][b][k]: the vertical Aᵀ (rows r = 0, 1) of column position b
    let mut s = vec![T::zero(); 8 * t];
    // yr[r][c][k]: output (2i + r, 2j + c) of tile k = i·tw + j
    let mut yr = vec![T::zero(); 4 * t];
    for oi in 0..o {
        let at = oi * ld + col0;
        for b in 0..4 {
            let row = |a: usize| &m[(a * 4 + b) * plane + at..][..t];
            let (m0, m1, m2, m3) = (row(0), row(1), row(2), row(3));
            let (s0, s1) = s.split_at_mut(4 * t);
            let (t0, t1) = (&mut s0[b * t..(b + 1) * t], &mut s1[b * t..(b + 1) * t]);
            for k in 0..t {
                t0[k] = m0[k] + m1[k] + m2[k];
                t1[k] = m1[k] - m2[k] - m3[k];
            }
        }
        for r in 0..2 {
            let sr = &s[r * 4 * t..(r + 1) * 4 * t];
            let (a0, a1, a2, a3) = (&sr[..t], &sr[t..2 * t], &sr[2 * t..3 * t], &sr[3 * t..]);
            let (y0, y1) = yr[r * 2 * t..(r + 1) * 2 * t].split_at_mut(t);
            for k in 0..t {
                y0[k] = a0[k] + a1[k] + a2[k];
                y1[k] = a1[k] - a2[k] - a3[k];
            }
        }
        let yo = &mut y[oi * ho * wo..(oi + 1) * ho * wo];
        for (oh, out) in yo.chunks_exact_mut(wo).enumerate() {
            let (i, r) = (oh / 2, oh % 2);
            let (y0, y1) = (
                &yr[r * 2 * t + i * tw..][..tw],
                &yr[(r * 2 + 1) * t + i * tw..][..tw],
            );
            for (j, pair) in out.chunks_mut(2).enumerate() {
                pair[0] = y0[j];
                if let Some(second) = pair.get_mut(1) {
                    *second = y1[j];
                }
            }
        }
    }
}

/// `Ydy[ξ][o][col0 + i·tw + j] = (A dY Aᵀ)[ξ]` for the 2x2 output-gradient
/// tiles of one image `dy` (`o` planes of `ho x wo`, zeros past the edge),
/// with `A·(y0, y1) = (y0, y0 + y1, y0 - y1, -y1)` on columns, then rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn transform_grad_body<T: Element>(
    dy: &[T],
    (o, ho, wo): (usize, usize, usize),
    (th, tw): (usize, usize),
    out: &mut [T],
    col0: usize,
    ld: usize,
    plane: usize,
) {
    let _t = crate::profile::scope(crate::profile::Section::WinogradTransform);
    let t = th * tw;
    // e[r], d[r]: even and odd columns of output row 2i + r, for every tile
    let mut cols = vec![T::zero(); 4 * t];
    // h[r][b]: the horizontal transform of row r
    let mut h = vec![T::zero(); 8 * t];
    for oi in 0..o {
        let plane_o = &dy[oi * ho * wo..(oi + 1) * ho * wo];
        for i in 0..th {
            for r in 0..2 {
                let oh = 2 * i + r;
                let row = (oh < ho).then(|| &plane_o[oh * wo..(oh + 1) * wo]);
                let (e, d) = cols[r * 2 * t..(r + 1) * 2 * t].split_at_mut(t);
                split_row(
                    row,
                    0,
                    &mut e[i * tw..(i + 1) * tw],
                    &mut d[i * tw..(i + 1) * tw],
                );
            }
        }
        for r in 0..2 {
            let (e, d) = cols[r * 2 * t..(r + 1) * 2 * t].split_at(t);
            let hr = &mut h[r * 4 * t..(r + 1) * 4 * t];
            let (h0, rest) = hr.split_at_mut(t);
            let (h1, rest) = rest.split_at_mut(t);
            let (h2, h3) = rest.split_at_mut(t);
            h0.copy_from_slice(e);
            zip_into(h1, e, d, |a, b| a + b);
            zip_into(h2, e, d, |a, b| a - b);
            zip_into(h3, e, d, |_, b| -b);
        }
        let at = oi * ld + col0;
        for b in 0..4 {
            let (h0, h1) = (&h[b * t..(b + 1) * t], &h[(4 + b) * t..(5 + b) * t]);
            let dst = |a: usize| (a * 4 + b) * plane + at;
            out[dst(0)..dst(0) + t].copy_from_slice(h0);
            zip_into(&mut out[dst(1)..dst(1) + t], h0, h1, |a, b| a + b);
            zip_into(&mut out[dst(2)..dst(2) + t], h0, h1, |a, b| a - b);
            zip_into(&mut out[dst(3)..dst(3) + t], h0, h1, |_, b| -b);
        }
    }
}

avx2_dispatch! {
    /// See [`transform_input_body`].
    pub(super) fn transform_input<T: Element>(
        x: &[T],
        dims: (usize, usize, usize),
        pad: (usize, usize),
        tiles: (usize, usize),
        v: &mut [T],
        col0: usize,
        ld: usize,
        plane: usize,
    ) = transform_input_body
}

avx2_dispatch! {
    /// See [`inverse_output_body`].
    pub(super) fn inverse_output<T: Element>(
        m: &[T],
        dims: (usize, usize, usize),
        tiles: (usize, usize),
        col0: usize,
        ld: usize,
        plane: usize,
        y: &mut [T],
    ) = inverse_output_body
}

avx2_dispatch! {
    /// See [`transform_grad_body`].
    pub(super) fn transform_grad<T: Element>(
        dy: &[T],
        dims: (usize, usize, usize),
        tiles: (usize, usize),
        out: &mut [T],
        col0: usize,
        ld: usize,
        plane: usize,
    ) = transform_grad_body
}
