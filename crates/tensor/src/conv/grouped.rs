//! Grouped and depthwise convolution, direct: `x` `[N, C, H, W]`, weight
//! `[O, C/g, kh, kw]` for `g` groups (g divides C and O; depthwise is g = C).
//! Output channel `o` sees the input channels of its group,
//! `(o / (O/g)) · (C/g) ..` of them:
//!
//! `y[n, o, i, j] = Σ_{c < C/g} Σ_{a, b} w[o, c, a, b] · x[n, g(o)·C/g + c, i·s − p + a, j·s − p + b]`
//!
//! with zeros outside the image. im2col would build a `C/g·kh·kw x Ho·Wo`
//! column matrix per group for GEMMs of a few rows (one, for depthwise); the
//! direct sum does the same multiply-adds with no copy. Each kernel tap is one
//! pass over an output row against an input row, `y_row[j] += w · x_row[j·s + off]`,
//! contiguous at stride 1 (where LLVM vectorises it) and strided at stride 2.
//!
//! * Forward: one output plane `(n, o)` per task.
//! * Input gradient, `dx[n, c, i·s − p + a, j·s − p + b] += w[o, c', a, b] · dy[n, o, i, j]`
//!   over the group's `o`: one input plane `(n, c)` per task, so no two tasks
//!   write the same element.
//! * Weight gradient, `dw[o, c', a, b] = Σ_{n, i, j} dy[n, o, i, j] · x[n, c, i·s − p + a, j·s − p + b]`:
//!   one output channel per task, summing images in order (bit-reproducible).
//! * Bias gradient: `db[o] = Σ_{n, i, j} dy[n, o, i, j]`.

use super::{Conv2dGrads, Conv2dParams};
use crate::error::{TensorError, TensorResult};
use crate::simd::avx2_dispatch;
use crate::{Element, Tensor};
use rayon::prelude::*;

/// Sizes of one grouped convolution.
#[derive(Debug, Clone, Copy)]
struct Shape {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    groups: usize,
    p: Conv2dParams,
}

impl Shape {
    fn check(
        op: &'static str,
        x: &[usize],
        w: &[usize],
        p: Conv2dParams,
        groups: usize,
    ) -> TensorResult<Self> {
        let bad = |why: String| Err(TensorError::mismatch(op, x, w, None, &why));
        if x.len() != 4 || w.len() != 4 {
            return bad("expects input [N, C, H, W] and weight [O, C/groups, kh, kw]".into());
        }
        let (c, o) = (x[1], w[0]);
        if groups == 0 || c % groups != 0 || o % groups != 0 {
            return bad(format!(
                "{groups} groups must divide both C = {c} and O = {o}"
            ));
        }
        if w[1] * groups != c {
            return bad(format!(
                "weight has {} input channels per group, C / groups = {}",
                w[1],
                c / groups
            ));
        }
        let (sh, sw) = p.stride;
        let (ph, pw) = p.padding;
        if sh == 0 || sw == 0 || x[2] + 2 * ph < w[2] || x[3] + 2 * pw < w[3] {
            return bad(format!(
                "kernel {}x{} does not fit the padded input at stride {sh}x{sw}",
                w[2], w[3]
            ));
        }
        Ok(Shape {
            n: x[0],
            c,
            h: x[2],
            w: x[3],
            o,
            kh: w[2],
            kw: w[3],
            ho: (x[2] + 2 * ph - w[2]) / sh + 1,
            wo: (x[3] + 2 * pw - w[3]) / sw + 1,
            groups,
            p,
        })
    }

    fn cg(&self) -> usize {
        self.c / self.groups
    }
    fn og(&self) -> usize {
        self.o / self.groups
    }
    /// Input row of output row `i` and tap `a`, if inside the image.
    fn in_row(&self, i: usize, a: usize) -> Option<usize> {
        (i * self.p.stride.0 + a)
            .checked_sub(self.p.padding.0)
            .filter(|&r| r < self.h)
    }
    /// Output columns `j` whose input column `j·s − p + b` is inside the image, and that column's offset `−p + b`.
    fn cols(&self, b: usize) -> (std::ops::Range<usize>, isize) {
        let (s, pad) = (self.p.stride.1, self.p.padding.1);
        let lo = pad.saturating_sub(b).div_ceil(s);
        let hi = if self.w + pad > b {
            ((self.w + pad - b - 1) / s + 1).min(self.wo)
        } else {
            0
        };
        (lo..hi.max(lo), b as isize - pad as isize)
    }
}

/// Input column of output column `j` for offset `off` (in range by construction).
#[inline]
fn col(j: usize, s: usize, off: isize) -> usize {
    ((j * s) as isize + off) as usize
}

#[inline(always)]
fn forward_plane_body<T: Element>(g: Shape, y: &mut [T], xs: &[T], ws: &[T], n: usize, o: usize) {
    let (plane_in, taps) = (g.h * g.w, g.kh * g.kw);
    let first = (o / g.og()) * g.cg();
    for cl in 0..g.cg() {
        let xp = &xs[(n * g.c + first + cl) * plane_in..][..plane_in];
        let wk = &ws[(o * g.cg() + cl) * taps..][..taps];
        for i in 0..g.ho {
            let y_row = &mut y[i * g.wo..(i + 1) * g.wo];
            for a in 0..g.kh {
                let Some(r) = g.in_row(i, a) else { continue };
                let x_row = &xp[r * g.w..(r + 1) * g.w];
                for b in 0..g.kw {
                    let wv = wk[a * g.kw + b];
                    let (js, off) = g.cols(b);
                    if g.p.stride.1 == 1 {
                        let src = &x_row[col(js.start, 1, off)..col(js.end, 1, off)];
                        y_row[js]
                            .iter_mut()
                            .zip(src)
                            .for_each(|(yv, &xv)| *yv += wv * xv);
                    } else {
                        for j in js {
                            y_row[j] += wv * x_row[col(j, g.p.stride.1, off)];
                        }
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn input_grad_plane_body<T: Element>(
    g: Shape,
    dx: &mut [T],
    gys: &[T],
    ws: &[T],
    n: usize,
    c: usize,
) {
    let (plane_out, taps, s) = (g.ho * g.wo, g.kh * g.kw, g.p.stride.1);
    let (group, cl) = (c / g.cg(), c % g.cg());
    for o in group * g.og()..(group + 1) * g.og() {
        let dy = &gys[(n * g.o + o) * plane_out..][..plane_out];
        let wk = &ws[(o * g.cg() + cl) * taps..][..taps];
        for i in 0..g.ho {
            let dy_row = &dy[i * g.wo..(i + 1) * g.wo];
            for a in 0..g.kh {
                let Some(r) = g.in_row(i, a) else { continue };
                let dx_row = &mut dx[r * g.w..(r + 1) * g.w];
                for b in 0..g.kw {
                    let wv = wk[a * g.kw + b];
                    let (js, off) = g.cols(b);
                    if s == 1 {
                        let dst = &mut dx_row[col(js.start, 1, off)..col(js.end, 1, off)];
                        dst.iter_mut()
                            .zip(&dy_row[js])
                            .for_each(|(d, &v)| *d += wv * v);
                    } else {
                        for j in js {
                            dx_row[col(j, s, off)] += wv * dy_row[j];
                        }
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn weight_grad_channel_body<T: Element>(g: Shape, dw: &mut [T], xs: &[T], gys: &[T], o: usize) {
    let (plane_in, plane_out, taps, s) = (g.h * g.w, g.ho * g.wo, g.kh * g.kw, g.p.stride.1);
    let first = (o / g.og()) * g.cg();
    for n in 0..g.n {
        let dy = &gys[(n * g.o + o) * plane_out..][..plane_out];
        for cl in 0..g.cg() {
            let xp = &xs[(n * g.c + first + cl) * plane_in..][..plane_in];
            for a in 0..g.kh {
                for b in 0..g.kw {
                    let (js, off) = g.cols(b);
                    let mut acc = T::zero();
                    for i in 0..g.ho {
                        let Some(r) = g.in_row(i, a) else { continue };
                        let (x_row, dy_row) =
                            (&xp[r * g.w..(r + 1) * g.w], &dy[i * g.wo..(i + 1) * g.wo]);
                        acc += if s == 1 {
                            let src = &x_row[col(js.start, 1, off)..col(js.end, 1, off)];
                            crate::simd::lane_dot(&dy_row[js.clone()], src)
                        } else {
                            js.clone()
                                .fold(T::zero(), |t, j| t + dy_row[j] * x_row[col(j, s, off)])
                        };
                    }
                    dw[cl * taps + a * g.kw + b] += acc;
                }
            }
        }
    }
}

avx2_dispatch! {
    /// Add output plane `(n, o)`'s convolution sums to `y` (which holds its bias).
    fn forward_plane<T: Element>(g: Shape, y: &mut [T], xs: &[T], ws: &[T], n: usize, o: usize) = forward_plane_body
}
avx2_dispatch! {
    /// Input plane `(n, c)`'s gradient into `dx` (zeroed).
    fn input_grad_plane<T: Element>(g: Shape, dx: &mut [T], gys: &[T], ws: &[T], n: usize, c: usize) = input_grad_plane_body
}
avx2_dispatch! {
    /// Output channel `o`'s kernel gradient into `dw` (zeroed), images in order.
    fn weight_grad_channel<T: Element>(g: Shape, dw: &mut [T], xs: &[T], gys: &[T], o: usize) = weight_grad_channel_body
}

/// Grouped convolution forward (see the module text); `bias` `[O]`.
pub fn try_grouped_conv2d<T: Element>(
    x: &Tensor<T>,
    weight: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    p: Conv2dParams,
    groups: usize,
) -> TensorResult<Tensor<T>> {
    let _t = crate::profile::scope(crate::profile::Section::GroupedConv);
    let g = Shape::check("grouped_conv2d", x.shape(), weight.shape(), p, groups)?;
    super::check_bias("grouped_conv2d", weight.shape(), bias, g.o)?;
    let (x, w) = (x.to_contiguous(), weight.to_contiguous());
    let (xs, ws) = (
        x.as_slice().expect("contiguous"),
        w.as_slice().expect("contiguous"),
    );
    let bias = bias.map(|b| b.to_vec());
    let plane_out = g.ho * g.wo;
    let mut out = crate::memory::zeroed(g.n * g.o * plane_out);
    out.par_chunks_mut(plane_out.max(1))
        .enumerate()
        .for_each(|(t, y)| {
            let (n, o) = (t / g.o, t % g.o);
            if let Some(b) = &bias {
                y.iter_mut().for_each(|v| *v = b[o]);
            }
            forward_plane(g, y, xs, ws, n, o);
        });
    Tensor::from_vec(&[g.n, g.o, g.ho, g.wo], out)
}

/// Grouped convolution backward: the requested gradients from `grad_out` `[N, O, Ho, Wo]`.
pub fn try_grouped_conv2d_backward<T: Element>(
    grad_out: &Tensor<T>,
    x: &Tensor<T>,
    weight: &Tensor<T>,
    p: Conv2dParams,
    groups: usize,
    (want_input, want_weight, want_bias): (bool, bool, bool),
) -> TensorResult<Conv2dGrads<T>> {
    let _t = crate::profile::scope(crate::profile::Section::GroupedConv);
    let g = Shape::check(
        "grouped_conv2d_backward",
        x.shape(),
        weight.shape(),
        p,
        groups,
    )?;
    super::check_grad_out(
        "grouped_conv2d_backward",
        [g.n, g.o, g.ho, g.wo],
        grad_out.shape(),
    )?;
    let (x, w, gy) = (
        x.to_contiguous(),
        weight.to_contiguous(),
        grad_out.to_contiguous(),
    );
    let (xs, ws, gys) = (
        x.as_slice().expect("contiguous"),
        w.as_slice().expect("contiguous"),
        gy.as_slice().expect("contiguous"),
    );
    let (plane_in, plane_out, taps) = (g.h * g.w, g.ho * g.wo, g.kh * g.kw);
    let input = want_input.then(|| {
        let mut gx = crate::memory::zeroed(g.n * g.c * plane_in);
        gx.par_chunks_mut(plane_in.max(1))
            .enumerate()
            .for_each(|(t, dx)| input_grad_plane(g, dx, gys, ws, t / g.c, t % g.c));
        Tensor::from_vec(&[g.n, g.c, g.h, g.w], gx)
    });
    let weight_grad = want_weight.then(|| {
        let mut gw = vec![T::zero(); g.o * g.cg() * taps];
        gw.par_chunks_mut((g.cg() * taps).max(1))
            .enumerate()
            .for_each(|(o, dw)| weight_grad_channel(g, dw, xs, gys, o));
        Tensor::from_vec(&[g.o, g.cg(), g.kh, g.kw], gw)
    });
    let bias = want_bias.then(|| {
        let db: Vec<T> = (0..g.o)
            .into_par_iter()
            .map(|o| {
                (0..g.n).fold(T::zero(), |t, n| {
                    t + gys[(n * g.o + o) * plane_out..][..plane_out]
                        .iter()
                        .fold(T::zero(), |u, &v| u + v)
                })
            })
            .collect();
        Tensor::from_vec(&[g.o], db)
    });
    Ok(Conv2dGrads {
        input: input.transpose()?,
        weight: weight_grad.transpose()?,
        bias: bias.transpose()?,
    })
}
