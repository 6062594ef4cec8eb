//! 2-D convolution (NCHW, cross-correlation like every framework) by
//! im2col + GEMM, with the gradients for input, weight and bias. 3x3 stride-1
//! convolutions with enough channels and tiles take Winograd's F(2x2, 3x3)
//! instead (the `winograd` submodule: 2.25x fewer multiply-adds, same results
//! up to rounding), and 5x5 ones F(2x2, 5x5) (`winograd5`: 2.78x fewer, in a
//! channels-last layout); everything below describes the im2col path.
//!
//! For one image `x_n` (C x H x W) the im2col matrix `col_n` has a row per
//! (channel, kernel row, kernel column) and a column per output pixel, so
//!
//! * forward:      `y_n = W · col_n (+ b)`          (O x K)·(K x P), K = C·kh·kw, P = Ho·Wo
//! * weight grad:  `dW += dy_n · col_nᵀ`            (O x P)·(P x K)
//! * input grad:   `dx_n = col2im(Wᵀ · dy_n)`       (K x O)·(O x P), then scatter-add
//! * bias grad:    `db = Σ_n Σ_p dy_n[:, p]`
//!
//! Images are independent, so the batch is cut into groups that rayon workers
//! take, each running single-threaded GEMMs with its own column buffer (a
//! per-thread scratch buffer kept across calls). A group is one image when an image has many
//! output pixels (P = 2688 at SphereFace's first stage), and several images side
//! by side when it has few (P = 42 at the last stage), so that the GEMM's shared
//! dimension stays wide enough for the micro-kernel: `col_g` is K x (G·P), and
//! the weight gradient is one GEMM per group instead of G skinny ones. Memory
//! stays at K·G·P per worker, never per batch. With fewer groups than threads
//! the GEMMs themselves go parallel. A 1x1, stride-1, unpadded kernel on a
//! one-image group needs no im2col: `col_n` is `x_n` itself.

use crate::error::{or_panic, TensorError, TensorResult};
use crate::gemm::{gemm, MatRef};
use crate::profile::{self, Section};
use crate::scratch::Scratch;
use crate::{Element, Tensor};
use rayon::prelude::*;

mod dispatch;
pub mod grouped;
mod winograd;
mod winograd5;

/// Stride and zero padding of a 2-D convolution, as (rows, columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between output pixels, (vertical, horizontal).
    pub stride: (usize, usize),
    /// Zero rows / columns added on each side, (vertical, horizontal).
    pub padding: (usize, usize),
}

impl Conv2dParams {
    /// The same stride and padding in both directions.
    pub fn new(stride: usize, padding: usize) -> Self {
        Conv2dParams {
            stride: (stride, stride),
            padding: (padding, padding),
        }
    }
}

/// Everything a kernel needs to know about one convolution's sizes.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    p: Conv2dParams,
}

impl Geometry {
    fn check(op: &'static str, x: &[usize], w: &[usize], p: Conv2dParams) -> TensorResult<Self> {
        if x.len() != 4 || w.len() != 4 {
            return Err(TensorError::mismatch(
                op,
                x,
                w,
                None,
                "expects input [N, C, H, W] and weight [O, C, kh, kw]",
            ));
        }
        if x[1] != w[1] {
            return Err(TensorError::mismatch(
                op,
                x,
                w,
                Some(1),
                format!("input has {} channels, weight expects {}", x[1], w[1]),
            ));
        }
        if p.stride.0 == 0 || p.stride.1 == 0 {
            return Err(TensorError::invalid(op, x, "stride must be at least 1"));
        }
        let (hp, wp) = (x[2] + 2 * p.padding.0, x[3] + 2 * p.padding.1);
        if hp < w[2] || wp < w[3] {
            return Err(TensorError::mismatch(
                op,
                x,
                w,
                Some(2),
                format!(
                    "kernel {}x{} larger than padded input {hp}x{wp}",
                    w[2], w[3]
                ),
            ));
        }
        Ok(Geometry {
            n: x[0],
            c: x[1],
            h: x[2],
            w: x[3],
            o: w[0],
            kh: w[2],
            kw: w[3],
            ho: (hp - w[2]) / p.stride.0 + 1,
            wo: (wp - w[3]) / p.stride.1 + 1,
            p,
        })
    }
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    fn pixels(&self) -> usize {
        self.ho * self.wo
    }
    fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.p.stride == (1, 1) && self.p.padding == (0, 0)
    }
    /// The batch's inputs and output gradients cut into groups of `group`
    /// images (the last may be shorter), paired.
    fn image_groups<'a, T>(
        &self,
        xs: &'a [T],
        gys: &'a [T],
        group: usize,
    ) -> Vec<(&'a [T], &'a [T])> {
        let out_len = self.o * self.pixels();
        xs.chunks((group * self.image_len()).max(1))
            .zip(gys.chunks((group * out_len).max(1)))
            .collect()
    }
    /// For a stride-1 convolution: the forward convolution whose output is
    /// this one's input gradient. It convolves `dy` (O channels, `ho x wo`)
    /// with the weights rotated by 180° and transposed, padding `k - 1 - p`.
    fn input_grad_as_forward(&self) -> Geometry {
        Geometry {
            c: self.o,
            h: self.ho,
            w: self.wo,
            o: self.c,
            ho: self.h,
            wo: self.w,
            p: Conv2dParams {
                stride: (1, 1),
                padding: (
                    self.kh - 1 - self.p.padding.0,
                    self.kw - 1 - self.p.padding.1,
                ),
            },
            ..*self
        }
    }
    /// Input row/column of output index `o` at kernel offset `k`, if inside the image.
    #[inline]
    fn source(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
        (o * stride + k).checked_sub(pad).filter(|&i| i < size)
    }
    /// The output columns `lo..hi` whose input column `ow·stride + kj - pad`
    /// lies inside the image (the rest read padding zeros).
    fn valid_columns(&self, kj: usize) -> (usize, usize) {
        let (s, pd) = (self.p.stride.1, self.p.padding.1);
        let lo = pd.saturating_sub(kj).div_ceil(s).min(self.wo);
        // largest ow with ow·s + kj - pd <= w - 1, plus one
        let hi = if self.w + pd < kj + 1 {
            0
        } else {
            ((self.w + pd - kj - 1) / s + 1).min(self.wo)
        };
        (lo, hi.max(lo))
    }
    /// Unfold one image into the K x P block of `col` whose rows are `ld` apart.
    fn im2col<T: Element>(&self, x: &[T], col: &mut [T], ld: usize) {
        let _t = profile::scope(Section::Im2col);
        let (s, pd) = (self.p.stride, self.p.padding);
        let mut rows = col.chunks_mut(ld).map(|r| &mut r[..self.pixels()]);
        for ch in 0..self.c {
            let plane = &x[ch * self.h * self.w..(ch + 1) * self.h * self.w];
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = rows.next().expect("K rows");
                    let (lo, hi) = self.valid_columns(kj);
                    for (oh, out) in row.chunks_exact_mut(self.wo).enumerate() {
                        match Self::source(oh, ki, s.0, pd.0, self.h) {
                            None => out.fill(T::zero()),
                            Some(ih) => {
                                let src = &plane[ih * self.w..(ih + 1) * self.w];
                                out[..lo].fill(T::zero());
                                out[hi..].fill(T::zero());
                                if hi == lo {
                                    continue;
                                }
                                let first = lo * s.1 + kj - pd.1;
                                if s.1 == 1 {
                                    out[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
                                } else {
                                    for (v, &x) in
                                        out[lo..hi].iter_mut().zip(src[first..].iter().step_by(s.1))
                                    {
                                        *v = x;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    /// Fold the K x P block of `col` (rows `ld` apart) onto one image, adding overlaps.
    fn col2im<T: Element>(&self, col: &[T], x: &mut [T], ld: usize) {
        let _t = profile::scope(Section::Im2col);
        let (s, pd) = (self.p.stride, self.p.padding);
        let mut rows = col.chunks(ld).map(|r| &r[..self.pixels()]);
        for ch in 0..self.c {
            let plane = &mut x[ch * self.h * self.w..(ch + 1) * self.h * self.w];
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = rows.next().expect("K rows");
                    let (lo, hi) = self.valid_columns(kj);
                    for (oh, src) in row.chunks_exact(self.wo).enumerate() {
                        if let (Some(ih), true) = (Self::source(oh, ki, s.0, pd.0, self.h), hi > lo)
                        {
                            let dst = &mut plane[ih * self.w..(ih + 1) * self.w];
                            let first = lo * s.1 + kj - pd.1;
                            if s.1 == 1 {
                                // a plain zip, which LLVM vectorises (step_by does not)
                                let dst = &mut dst[first..first + hi - lo];
                                dst.iter_mut().zip(&src[lo..hi]).for_each(|(d, &v)| *d += v);
                            } else {
                                let dst = dst[first..].iter_mut().step_by(s.1);
                                dst.zip(&src[lo..hi]).for_each(|(d, &v)| *d += v);
                            }
                        }
                    }
                }
            }
        }
    }
    /// Images per group: enough for ~`GROUP_COLUMNS` GEMM columns, but never so
    /// many that some worker is left without a group.
    fn group_size(&self) -> usize {
        self.group_size_for(self.pixels())
    }
    /// [`Self::group_size`] for `columns` GEMM columns per image.
    fn group_size_for(&self, columns: usize) -> usize {
        let threads = rayon::current_num_threads();
        let want = GROUP_COLUMNS.div_ceil(columns.max(1)).max(1);
        let mut groups = self.n.div_ceil(want);
        if self.n >= threads {
            groups = groups.div_ceil(threads) * threads;
        }
        self.n.div_ceil(groups.max(1)).max(1)
    }
    /// The column matrix K x (G·P) of a group of images `xg`: borrowed when a
    /// single image needs no unfolding, else built in `buf`.
    fn columns<'a, T: Element>(&self, xg: &'a [T], buf: &'a mut Scratch<T>) -> &'a [T] {
        let g = xg.len() / self.image_len().max(1);
        if self.pointwise() && g == 1 {
            return xg;
        }
        let ld = g * self.pixels();
        let col = buf.fit(self.k() * ld);
        for (j, x_n) in xg.chunks_exact(self.image_len()).enumerate() {
            self.im2col(x_n, &mut col[j * self.pixels()..], ld);
        }
        col
    }
    /// The output gradient of a group as one O x (G·P) matrix: `gyg` itself for
    /// a one-image group, else a copy in `wide`.
    fn wide_grad<'a, T: Element>(&self, gyg: &'a [T], wide: &'a mut Scratch<T>) -> &'a [T] {
        if gyg.len() == self.o * self.pixels() {
            return gyg;
        }
        let out = wide.fit(gyg.len());
        to_wide(gyg, out, self.o, self.pixels());
        out
    }
    fn inner_parallel(&self, group: usize) -> bool {
        self.n.div_ceil(group) < rayon::current_num_threads()
    }
}

/// Which convolution algorithm this process runs (for benchmark headers):
/// Winograd for qualifying 3x3 layers by default, or what `REGULARFACE_CONV`
/// (`im2col` / `winograd`) forces.
pub fn algorithm() -> &'static str {
    crate::backend::conv_description()
}

/// Target width (G·P) of a group's column matrix.
const GROUP_COLUMNS: usize = 384;

/// `y[.., o, p] += b[o]` over whole images laid out `[.., O, P]` (`b` is O long).
fn add_bias<T: Element>(y: &mut [T], b: &[T], pixels: usize) {
    for (i, row) in y.chunks_exact_mut(pixels.max(1)).enumerate() {
        let bo = b[i % b.len()];
        row.iter_mut().for_each(|v| *v += bo);
    }
}

/// `Σ_items` of what `add(range, acc)` accumulates into `len`-long buffers
/// (a weight gradient over image groups), deterministic for a given thread
/// count: the items are cut into one contiguous range per worker, each range
/// sums into its own buffer in order, and the buffers are added in order. (A
/// rayon fold would split by work stealing and change the float summation
/// order run to run.)
fn ordered_sum<I: Sync, T: Element>(
    items: &[I],
    len: usize,
    add: impl Fn(&[I], &mut [T]) + Sync,
) -> Vec<T> {
    let parts = rayon::current_num_threads().min(items.len()).max(1);
    let per = items.len().div_ceil(parts).max(1);
    let partials: Vec<Vec<T>> = items
        .par_chunks(per)
        .map(|range| {
            let mut acc = vec![T::zero(); len];
            add(range, &mut acc);
            acc
        })
        .collect();
    let mut sum = vec![T::zero(); len];
    for p in &partials {
        sum.iter_mut().zip(p).for_each(|(x, &y)| *x += y);
    }
    sum
}

/// Copy the O x (G·P) matrix `wide` into per-image blocks (each O x P).
fn to_blocks<T: Copy>(wide: &[T], blocks: &mut [T], o: usize, p: usize) {
    let g = blocks.len() / (o * p).max(1);
    for (j, block) in blocks.chunks_exact_mut(o * p).enumerate() {
        for (r, row) in block.chunks_exact_mut(p).enumerate() {
            row.copy_from_slice(&wide[r * g * p + j * p..r * g * p + (j + 1) * p]);
        }
    }
}

/// Copy per-image blocks (each O x P) into the O x (G·P) matrix `wide`.
fn to_wide<T: Copy>(blocks: &[T], wide: &mut [T], o: usize, p: usize) {
    let g = blocks.len() / (o * p).max(1);
    for (j, block) in blocks.chunks_exact(o * p).enumerate() {
        for (r, row) in block.chunks_exact(p).enumerate() {
            wide[r * g * p + j * p..r * g * p + (j + 1) * p].copy_from_slice(row);
        }
    }
}

/// A convolution's bias must be `[O]`.
fn check_bias<T: Element>(
    op: &'static str,
    weight: &[usize],
    bias: Option<&Tensor<T>>,
    o: usize,
) -> TensorResult<()> {
    match bias {
        Some(b) if b.shape() != [o] => Err(TensorError::mismatch(
            op,
            weight,
            b.shape(),
            Some(0),
            "bias must be [O]",
        )),
        _ => Ok(()),
    }
}

/// A convolution backward's output gradient must have the forward output's shape.
fn check_grad_out(op: &'static str, expect: [usize; 4], got: &[usize]) -> TensorResult<()> {
    if got == expect {
        return Ok(());
    }
    Err(TensorError::mismatch(
        op,
        &expect,
        got,
        None,
        "output gradient must match the forward's output shape",
    ))
}

/// Convolution forward: `x` `[N, C, H, W]`, `weight` `[O, C, kh, kw]`, optional `bias` `[O]`.
pub fn try_conv2d<T: Element>(
    x: &Tensor<T>,
    weight: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    p: Conv2dParams,
) -> TensorResult<Tensor<T>> {
    let _t = profile::scope(Section::ConvForward);
    let g = Geometry::check("conv2d", x.shape(), weight.shape(), p)?;
    check_bias("conv2d", weight.shape(), bias, g.o)?;
    let (x, w) = (x.to_contiguous(), weight.to_contiguous());
    let (xs, ws) = (
        x.as_slice().expect("contiguous"),
        w.as_slice().expect("contiguous"),
    );
    let bias = bias.map(|b| b.to_vec());
    let mut out = crate::memory::zeroed(g.n * g.o * g.pixels());
    if let Some(k) = dispatch::Kernels::<T>::for_geometry(&g) {
        (k.forward)(&g, xs, ws, &mut out);
        if let Some(b) = &bias {
            let images = out.par_chunks_mut((g.o * g.pixels()).max(1));
            images.for_each(|y_n| add_bias(y_n, b, g.pixels()));
        }
        return Tensor::from_vec(&[g.n, g.o, g.ho, g.wo], out);
    }
    let group = g.group_size();
    let inner = g.inner_parallel(group);
    let chunks = out
        .par_chunks_mut((group * g.o * g.pixels()).max(1))
        .zip(xs.par_chunks((group * g.image_len()).max(1)));
    chunks.for_each_init(
        || (Scratch::take(), Scratch::take()),
        |(buf, wide), (yg, xg)| {
            let cols = yg.len() / g.o.max(1);
            let col = g.columns(xg, buf);
            let wm = MatRef::new(ws, g.o, g.k());
            if cols == g.pixels() {
                gemm(
                    T::one(),
                    wm,
                    MatRef::new(col, g.k(), cols),
                    T::zero(),
                    yg,
                    inner,
                );
            } else {
                let wide = wide.fit(yg.len());
                gemm(
                    T::one(),
                    wm,
                    MatRef::new(col, g.k(), cols),
                    T::zero(),
                    wide,
                    inner,
                );
                to_blocks(wide, yg, g.o, g.pixels());
            }
            if let Some(b) = &bias {
                add_bias(yg, b, g.pixels());
            }
        },
    );
    Tensor::from_vec(&[g.n, g.o, g.ho, g.wo], out)
}

/// See [`try_conv2d`].
#[track_caller]
pub fn conv2d<T: Element>(
    x: &Tensor<T>,
    weight: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    p: Conv2dParams,
) -> Tensor<T> {
    or_panic(try_conv2d(x, weight, bias, p))
}

/// The gradients a convolution's backward asked for.
#[derive(Debug, Clone)]
pub struct Conv2dGrads<T: Element> {
    /// dL/dx, when requested.
    pub input: Option<Tensor<T>>,
    /// dL/dW, when requested.
    pub weight: Option<Tensor<T>>,
    /// dL/db, when requested.
    pub bias: Option<Tensor<T>>,
}

/// Convolution backward: from `grad_out` [N, O, Ho, Wo], the forward's input and
/// weight, compute the requested gradients (one pass over the batch; each
/// image's columns are unfolded once and used for the weight gradient).
pub fn try_conv2d_backward<T: Element>(
    grad_out: &Tensor<T>,
    x: &Tensor<T>,
    weight: &Tensor<T>,
    p: Conv2dParams,
    (want_input, want_weight, want_bias): (bool, bool, bool),
) -> TensorResult<Conv2dGrads<T>> {
    let g = Geometry::check("conv2d_backward", x.shape(), weight.shape(), p)?;
    check_grad_out("conv2d_backward", [g.n, g.o, g.ho, g.wo], grad_out.shape())?;
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
    let group = g.group_size();
    let inner = g.inner_parallel(group);
    let ok = g.o * g.k();
    let (xg_len, gyg_len) = (
        (group * g.image_len()).max(1),
        (group * g.o * g.pixels()).max(1),
    );
    let input = want_input.then(|| {
        let _t = profile::scope(Section::ConvInputGrad);
        let mut gx = crate::memory::zeroed(xs.len());
        if let Some(k) = dispatch::Kernels::<T>::for_geometry(&g) {
            (k.input_grad)(&g, gys, ws, &mut gx);
            return Tensor::from_vec(x.shape(), gx).expect("input-sized");
        }
        let chunks = gx.par_chunks_mut(xg_len).zip(gys.par_chunks(gyg_len));
        chunks.for_each_init(
            || (Scratch::take(), Scratch::take()),
            |(buf, wide), (gxg, gyg)| {
                let cols = gyg.len() / g.o.max(1);
                let gm = MatRef::new(g.wide_grad(gyg, wide), g.o, cols);
                let wt = MatRef::new(ws, g.o, g.k()).t();
                if g.pointwise() && cols == g.pixels() {
                    gemm(T::one(), wt, gm, T::zero(), gxg, inner);
                } else {
                    let buf = buf.fit(g.k() * cols);
                    gemm(T::one(), wt, gm, T::zero(), buf, inner);
                    for (j, gx_n) in gxg.chunks_exact_mut(g.image_len()).enumerate() {
                        g.col2im(&buf[j * g.pixels()..], gx_n, cols);
                    }
                }
            },
        );
        Tensor::from_vec(x.shape(), gx).expect("input-sized")
    });

    let weight_grad = want_weight.then(|| {
        let _t = profile::scope(Section::ConvWeightGrad);
        if let Some(k) = dispatch::Kernels::<T>::for_geometry(&g) {
            let gw = (k.weight_grad)(&g, xs, gys);
            return Tensor::from_vec(weight.shape(), gw).expect("weight-sized");
        }
        let groups = g.image_groups(xs, gys, group);
        let gw = ordered_sum(&groups, ok, |range, acc| {
            let (mut buf, mut wide) = (Scratch::take(), Scratch::take());
            for &(xg, gyg) in range {
                let cols = gyg.len() / g.o.max(1);
                let gm = MatRef::new(g.wide_grad(gyg, &mut wide), g.o, cols);
                let col = g.columns(xg, &mut buf);
                let colt = MatRef::new(col, g.k(), cols).t();
                gemm(T::one(), gm, colt, T::one(), acc, inner);
            }
        });
        Tensor::from_vec(weight.shape(), gw).expect("weight-sized")
    });

    let bias = want_bias.then(|| {
        let _t = profile::scope(Section::ConvWeightGrad);
        // per channel in parallel, each summed image by image in 8 lanes (a
        // fixed order: deterministic)
        let mut gb = vec![T::zero(); g.o];
        let plane = g.pixels().max(1);
        gb.par_iter_mut().enumerate().for_each(|(oc, b)| {
            let mut lanes = [T::zero(); 8];
            for gy_n in gys.chunks_exact((g.o * plane).max(1)) {
                let row = &gy_n[oc * plane..(oc + 1) * plane];
                let mut body = row.chunks_exact(8);
                for chunk in &mut body {
                    lanes.iter_mut().zip(chunk).for_each(|(l, &v)| *l += v);
                }
                *b += body.remainder().iter().copied().sum::<T>();
            }
            *b += lanes.iter().copied().sum::<T>();
        });
        Tensor::from_vec(&[g.o], gb).expect("bias-sized")
    });
    Ok(Conv2dGrads {
        input,
        weight: weight_grad,
        bias,
    })
}

/// See [`try_conv2d_backward`].
#[track_caller]
pub fn conv2d_backward<T: Element>(
    grad_out: &Tensor<T>,
    x: &Tensor<T>,
    weight: &Tensor<T>,
    p: Conv2dParams,
    want: (bool, bool, bool),
) -> Conv2dGrads<T> {
    or_panic(try_conv2d_backward(grad_out, x, weight, p, want))
}
