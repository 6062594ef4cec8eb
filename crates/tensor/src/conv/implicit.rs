//! Implicit-GEMM convolution for `f32` on CPUs with AVX-512: the same three
//! products as the im2col path of the parent module, but the column matrix is
//! never built. Our packed GEMM ([`crate::sgemm`]) asks its operands for one
//! packed sliver at a time, so the image is unfolded straight into the packing
//! buffer (forward, weight gradient), the per-image blocks of the output
//! gradient are read where they lie (no interleaving copy), and the input
//! gradient's tiles are added into the image as they leave the micro-kernel
//! (col2im in the epilogue). What goes away: the K x (G·P) column buffer (6 MB
//! per worker at SphereFace's first stage) with its write, its re-read by the
//! packing, its zeroing, and the interleave copies; per-kernel timing said those
//! were about a quarter of the convolution time.
//!
//! Used when the batch gives every worker a group (the GEMMs run single-threaded
//! inside a rayon loop over groups); the im2col path remains for `f64` (the
//! gradient checks), CPUs without AVX-512 and a batch too small to split.

use super::Geometry;
use crate::sgemm::{gemm_packed, PackA, PackB, StoreC, Strided, StridedOut, Tile, KC, MR, NR};
use rayon::prelude::*;

/// Columns `[j0, j0 + len)` of a matrix whose columns are `block`-long runs,
/// cut where a run ends: yields (run index, offset in run, length, position in the range).
fn runs(j0: usize, len: usize, block: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut t = 0;
    std::iter::from_fn(move || {
        (t < len).then(|| {
            let q = j0 + t;
            let (r, off) = (q / block, q % block);
            let n = (block - off).min(len - t);
            let item = (r, off, n, t);
            t += n;
            item
        })
    })
}

/// The column matrix of a group of images, K x (G·P): row kk = (channel, kernel
/// row, kernel column), column q = (image, output row, output column), so
/// `col[kk][q] = x[img][ch][oh·s + ki - pad][ow·s + kj - pad]`, or 0 in the padding.
struct Columns<'a> {
    g: &'a Geometry,
    x: *const f32,
}

/// Where the columns `q0 .. q0 + len` (at most [`KC`]) start reading: for each,
/// the offset of its window's top-left corner in the group and that corner's
/// input row and column (negative inside the padding). Built once per packed
/// sliver or tile, so the inner loops need no division.
struct Windows {
    len: usize,
    offset: [isize; KC],
    row: [isize; KC],
    col: [isize; KC],
    /// The columns cut into runs `[start, start + len)` that share an output row
    /// (with stride 1 their windows slide along one input row: a copy).
    runs: [(usize, usize); KC],
    run_count: usize,
}

impl Windows {
    fn new(g: &Geometry, q0: usize, len: usize) -> Self {
        let mut w = Windows {
            len,
            offset: [0; KC],
            row: [0; KC],
            col: [0; KC],
            runs: [(0, 0); KC],
            run_count: 0,
        };
        let (s, pd) = (g.p.stride, g.p.padding);
        for (r, ow0, n, t) in runs(q0, len, g.wo) {
            let (img, oh) = (r / g.ho, r % g.ho);
            let ih = (oh * s.0) as isize - pd.0 as isize;
            w.runs[w.run_count] = (t, n);
            w.run_count += 1;
            for u in 0..n {
                let iw = ((ow0 + u) * s.1) as isize - pd.1 as isize;
                w.row[t + u] = ih;
                w.col[t + u] = iw;
                w.offset[t + u] = (img * g.image_len()) as isize + ih * g.w as isize + iw;
            }
        }
        w
    }
}

impl Columns<'_> {
    /// Write `col[kk][q]` for the windows' columns to `dst[t·stride]`.
    ///
    /// # Safety
    /// `x` holds the group's images, the windows are columns of this group and
    /// `dst` has room for `windows.len` elements `stride` apart.
    #[inline]
    unsafe fn row(&self, kk: usize, win: &Windows, dst: *mut f32, stride: usize) {
        let g = self.g;
        let area = g.kh * g.kw;
        let (ch, ki, kj) = (kk / area, (kk % area / g.kw) as isize, (kk % g.kw) as isize);
        let shift = (ch * g.h * g.w) as isize + ki * g.w as isize + kj;
        for t in 0..win.len {
            let (ih, iw) = (win.row[t] + ki, win.col[t] + kj);
            let inside = (ih as usize) < g.h && (iw as usize) < g.w;
            // SAFETY: read only when (ih, iw) is inside the image; t < len slots in dst.
            unsafe {
                *dst.add(t * stride) = if inside {
                    *self.x.offset(win.offset[t] + shift)
                } else {
                    0.0
                };
            }
        }
    }
}

/// `col` as the right operand (forward: K x (G·P)).
impl PackB for Columns<'_> {
    unsafe fn pack(&self, p0: usize, kc: usize, j0: usize, cols: usize, dst: *mut f32) {
        let g = self.g;
        let win = Windows::new(g, j0, cols);
        if g.p.stride.1 != 1 {
            for p in 0..kc {
                // SAFETY: row p of the sliver has NR >= cols slots.
                unsafe { self.row(p0 + p, &win, dst.add(p * NR), 1) };
            }
            return;
        }
        // Stride 1: each run reads consecutive pixels of one input row, so it
        // is a copy between zeros for the padding.
        let area = g.kh * g.kw;
        let (mut ch, mut ki, mut kj) = (p0 / area, p0 % area / g.kw, p0 % g.kw);
        for p in 0..kc {
            let shift = (ch * g.h * g.w + ki * g.w + kj) as isize;
            for &(t, n) in &win.runs[..win.run_count] {
                // SAFETY: slots t..t+n of row p of the sliver; the copied pixels
                // are inside input row ih of the run's image.
                unsafe {
                    let d = dst.add(p * NR + t);
                    let ih = win.row[t] + ki as isize;
                    if (ih as usize) >= g.h {
                        std::ptr::write_bytes(d, 0, n);
                        continue;
                    }
                    let iw = win.col[t] + kj as isize;
                    let a = (-iw).clamp(0, n as isize) as usize;
                    let b = (g.w as isize - iw).clamp(a as isize, n as isize) as usize;
                    std::ptr::write_bytes(d, 0, a);
                    let src = self.x.offset(win.offset[t] + shift + a as isize);
                    std::ptr::copy_nonoverlapping(src, d.add(a), b - a);
                    std::ptr::write_bytes(d.add(b), 0, n - b);
                }
            }
            kj += 1;
            if kj == g.kw {
                (kj, ki) = (0, ki + 1);
                if ki == g.kh {
                    (ki, ch) = (0, ch + 1);
                }
            }
        }
    }
}

/// `colᵀ` as the right operand (weight gradient: (G·P) x K).
struct ColumnsT<'a>(Columns<'a>);

impl PackB for ColumnsT<'_> {
    unsafe fn pack(&self, p0: usize, kc: usize, j0: usize, cols: usize, dst: *mut f32) {
        let win = Windows::new(self.0.g, p0, kc);
        for j in 0..cols {
            // SAFETY: column j of the sliver has kc slots NR apart.
            unsafe { self.0.row(j0 + j, &win, dst.add(j), NR) };
        }
    }
}

/// An O x (G·P) matrix stored as G consecutive O x P blocks (one image's
/// output or output gradient): element (o, q) at `(q / P)·O·P + o·P + q % P`.
struct Blocks {
    ptr: *mut f32,
    o: usize,
    p: usize,
}

impl Blocks {
    /// Element (o, q's run start) of run `img`.
    fn at(&self, img: usize, o: usize, off: usize) -> *mut f32 {
        self.ptr
            .wrapping_add(img * self.o * self.p + o * self.p + off)
    }
}

/// The output gradient as the left operand (weight gradient: O x (G·P)).
impl PackA for Blocks {
    unsafe fn pack(&self, i0: usize, rows: usize, p0: usize, kc: usize, dst: *mut f32) {
        for (img, off, n, t) in runs(p0, kc, self.p) {
            for i in 0..rows {
                let src = self.at(img, i0 + i, off);
                // SAFETY: the run lies in one image's row; slots (t+u)·MR + i < kc·MR.
                unsafe { (0..n).for_each(|u| *dst.add((t + u) * MR + i) = *src.add(u)) };
            }
        }
    }
}

/// The output gradient as the right operand (input gradient: O x (G·P)).
impl PackB for Blocks {
    unsafe fn pack(&self, p0: usize, kc: usize, j0: usize, cols: usize, dst: *mut f32) {
        for (img, off, n, t) in runs(j0, cols, self.p) {
            for p in 0..kc {
                // SAFETY: the run lies in one image's row; the slots are in row p of the sliver.
                unsafe {
                    std::ptr::copy_nonoverlapping(self.at(img, p0 + p, off), dst.add(p * NR + t), n)
                };
            }
        }
    }
}

/// The forward's output: tiles written into the per-image blocks, plus the bias.
struct OutputBlocks<'a> {
    out: Blocks,
    bias: Option<&'a [f32]>,
}

impl StoreC for OutputBlocks<'_> {
    unsafe fn store(
        &self,
        i0: usize,
        j0: usize,
        rows: usize,
        cols: usize,
        tile: &Tile,
        first: bool,
    ) {
        for (img, off, n, t) in runs(j0, cols, self.out.p) {
            for i in 0..rows {
                let b = self.bias.map_or(0.0, |b| b[i0 + i]);
                let dst = self.out.at(img, i0 + i, off);
                for u in 0..n {
                    let v = tile[2 * i + (t + u) / 16].0[(t + u) % 16];
                    // SAFETY: the run lies in one image's output row, ours alone.
                    unsafe { *dst.add(u) = if first { v + b } else { *dst.add(u) + v } };
                }
            }
        }
    }
}

/// The input gradient: each tile of `Wᵀ·dy` (rows kk, columns q) is added into
/// the image pixels it came from (col2im on the fly). The image starts zeroed.
struct Col2im<'a> {
    g: &'a Geometry,
    gx: *mut f32,
}

impl StoreC for Col2im<'_> {
    unsafe fn store(&self, i0: usize, j0: usize, rows: usize, cols: usize, tile: &Tile, _: bool) {
        let g = self.g;
        let area = g.kh * g.kw;
        let win = Windows::new(g, j0, cols);
        for i in 0..rows {
            let kk = i0 + i;
            let (ch, ki, kj) = (kk / area, (kk % area / g.kw) as isize, (kk % g.kw) as isize);
            let shift = (ch * g.h * g.w) as isize + ki * g.w as isize + kj;
            for t in 0..cols {
                let (ih, iw) = (win.row[t] + ki, win.col[t] + kj);
                if (ih as usize) < g.h && (iw as usize) < g.w {
                    // SAFETY: (ih, iw) is inside image `img` of this group, ours alone.
                    unsafe {
                        *self.gx.offset(win.offset[t] + shift) += tile[2 * i + t / 16].0[t % 16]
                    };
                }
            }
        }
    }
}

/// Forward: `out` [N, O, Ho, Wo] = conv(x, w) + bias, groups of `group` images.
pub(super) fn forward(
    g: &Geometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    group: usize,
) {
    let (k, p) = (g.k(), g.pixels());
    out.par_chunks_mut(group * g.o * p)
        .zip(x.par_chunks(group * g.image_len()))
        .for_each(|(yg, xg)| {
            let cols = yg.len() / g.o;
            let a = Strided {
                ptr: w.as_ptr(),
                rs: k as isize,
                cs: 1,
            };
            let b = Columns { g, x: xg.as_ptr() };
            let c = OutputBlocks {
                out: Blocks {
                    ptr: yg.as_mut_ptr(),
                    o: g.o,
                    p,
                },
                bias,
            };
            // SAFETY: the AVX-512 check was made by the caller; the operands describe
            // W (O x K), this group's columns (K x G·P) and its output blocks.
            unsafe { gemm_packed(g.o, k, cols, 1.0, &a, &b, &c) };
        });
}

/// Input gradient: `gx` [N, C, H, W] (zeroed by the caller) += col2im(Wᵀ · dy).
pub(super) fn input_grad(g: &Geometry, gy: &[f32], w: &[f32], gx: &mut [f32], group: usize) {
    let (k, p) = (g.k(), g.pixels());
    gx.par_chunks_mut(group * g.image_len())
        .zip(gy.par_chunks(group * g.o * p))
        .for_each(|(gxg, gyg)| {
            let cols = gyg.len() / g.o;
            let a = Strided {
                ptr: w.as_ptr(),
                rs: 1,
                cs: k as isize,
            };
            let b = Blocks {
                ptr: gyg.as_ptr() as *mut f32,
                o: g.o,
                p,
            };
            let c = Col2im {
                g,
                gx: gxg.as_mut_ptr(),
            };
            // SAFETY: as in `forward`; `b` is only read.
            unsafe { gemm_packed(k, g.o, cols, 1.0, &a, &b, &c) };
        });
}

/// Weight gradient of one contiguous range of groups, summed in order into `acc` (O x K).
pub(super) fn weight_grad(g: &Geometry, groups: &[(&[f32], &[f32])], acc: &mut [f32]) {
    let k = g.k();
    let c = StridedOut {
        ptr: acc.as_mut_ptr(),
        rs: k as isize,
        cs: 1,
        beta: 1.0,
    };
    for &(xg, gyg) in groups {
        let cols = gyg.len() / g.o;
        let a = Blocks {
            ptr: gyg.as_ptr() as *mut f32,
            o: g.o,
            p: g.pixels(),
        };
        let b = ColumnsT(Columns { g, x: xg.as_ptr() });
        // SAFETY: as in `forward`; `acc` is O x K and ours alone.
        unsafe { gemm_packed(g.o, cols, k, 1.0, &a, &b, &c) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::{conv2d, conv2d_backward, Conv2dParams};
    use crate::{Rng, Tensor};

    fn close(got: &[f32], want: &Tensor<f64>, what: &str) {
        let want = want.to_vec();
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{what}: element {i} is {g}, the im2col path in f64 gives {w}"
            );
        }
    }

    /// Every pass, for groups of 1, 2 and 3 images (a last group shorter than the
    /// others included), against the f64 im2col path: odd sizes, strides,
    /// padding wider than the kernel reach, 1x1 and non-square kernels, and
    /// more than one GEMM block along every dimension.
    #[test]
    fn matches_the_im2col_path() {
        if !crate::sgemm::avx512_enabled() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        let mut rng = Rng::new(21);
        let cases: [([usize; 4], [usize; 4], (usize, usize), (usize, usize)); 8] = [
            ([5, 3, 7, 6], [4, 3, 3, 3], (1, 1), (1, 1)),
            ([3, 2, 8, 9], [3, 2, 3, 3], (2, 2), (1, 1)),
            ([4, 1, 5, 5], [2, 1, 5, 5], (1, 1), (0, 0)),
            ([3, 4, 6, 7], [5, 4, 1, 1], (1, 1), (0, 0)),
            ([3, 3, 9, 7], [2, 3, 3, 2], (2, 1), (0, 1)),
            ([4, 2, 4, 4], [9, 2, 3, 3], (1, 2), (2, 2)),
            ([2, 1, 3, 1], [2, 1, 3, 3], (1, 1), (2, 2)),
            ([3, 48, 12, 11], [140, 48, 3, 3], (1, 1), (1, 1)),
        ];
        for (xs, ws, s, pd) in cases {
            let p = Conv2dParams {
                stride: s,
                padding: pd,
            };
            let x = Tensor::<f64>::rand_normal(&xs, 0.0, 1.0, &mut rng);
            let w = Tensor::<f64>::rand_normal(&ws, 0.0, 1.0, &mut rng);
            let b = Tensor::<f64>::rand_normal(&[ws[0]], 0.0, 1.0, &mut rng);
            let y = conv2d(&x, &w, Some(&b), p);
            let gy = Tensor::<f64>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
            let want = conv2d_backward(&gy, &x, &w, p, (true, true, false));
            let g = Geometry::check("test", &xs, &ws, p).unwrap();
            let f = |t: &Tensor<f64>| t.cast::<f32>().to_vec();
            let (x32, w32, b32, gy32) = (f(&x), f(&w), f(&b), f(&gy));
            for group in 1..=3 {
                let what = format!("x {xs:?} w {ws:?} stride {s:?} pad {pd:?} group {group}");
                let mut out = vec![f32::NAN; y.len()];
                forward(&g, &x32, &w32, Some(&b32), &mut out, group);
                close(&out, &y, &format!("forward, {what}"));
                let mut gx = vec![0.0; x32.len()];
                input_grad(&g, &gy32, &w32, &mut gx, group);
                close(
                    &gx,
                    want.input.as_ref().unwrap(),
                    &format!("input grad, {what}"),
                );
                let groups: Vec<(&[f32], &[f32])> = x32
                    .chunks(group * g.image_len())
                    .zip(gy32.chunks(group * g.o * g.pixels()))
                    .collect();
                let mut gw = vec![0.0; w32.len()];
                weight_grad(&g, &groups, &mut gw);
                close(
                    &gw,
                    want.weight.as_ref().unwrap(),
                    &format!("weight grad, {what}"),
                );
            }
        }
    }
}
