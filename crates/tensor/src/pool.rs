//! 2-D max and average pooling over NCHW tensors, with their backward passes.
//!
//! Max pooling returns, with its output, the flat input index of each window's
//! maximum; the backward scatters the output gradient to those indices (the
//! first maximum wins ties, like PyTorch). Average pooling counts padding
//! zeros in its divisor (PyTorch's `count_include_pad=True`), so its backward
//! spreads `dy / (kh·kw)` over every in-image cell of the window.

use crate::error::{or_panic, TensorError, TensorResult};
use crate::{Element, Tensor};
use rayon::prelude::*;

/// Window size, stride and padding of a 2-D pooling, as (rows, columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dParams {
    /// Window size.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Implicit padding on each side.
    pub padding: (usize, usize),
}

impl Pool2dParams {
    /// Square window `k`, stride `s`, padding `p`.
    pub fn new(k: usize, s: usize, p: usize) -> Self {
        Pool2dParams {
            kernel: (k, k),
            stride: (s, s),
            padding: (p, p),
        }
    }

    fn out_size(&self, op: &'static str, shape: &[usize]) -> TensorResult<(usize, usize)> {
        if shape.len() != 4 {
            return Err(TensorError::invalid(op, shape, "expects [N, C, H, W]"));
        }
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        if k.0 == 0 || k.1 == 0 || s.0 == 0 || s.1 == 0 || p.0 * 2 > k.0 || p.1 * 2 > k.1 {
            return Err(TensorError::invalid(op, shape, format!("bad window {self:?}: sizes and strides must be >= 1, padding at most half the window")));
        }
        let (hp, wp) = (shape[2] + 2 * p.0, shape[3] + 2 * p.1);
        if hp < k.0 || wp < k.1 {
            return Err(TensorError::invalid(
                op,
                shape,
                format!("window {}x{} larger than padded input {hp}x{wp}", k.0, k.1),
            ));
        }
        Ok(((hp - k.0) / s.0 + 1, (wp - k.1) / s.1 + 1))
    }

    /// In-image cells of output (oh, ow)'s window, as flat plane indices.
    fn window(&self, oh: usize, ow: usize, h: usize, w: usize) -> impl Iterator<Item = usize> {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let rows =
            (oh * s.0..oh * s.0 + k.0).filter_map(move |r| r.checked_sub(p.0).filter(|&r| r < h));
        rows.flat_map(move |r| {
            (ow * s.1..ow * s.1 + k.1)
                .filter_map(move |c| c.checked_sub(p.1).filter(|&c| c < w))
                .map(move |c| r * w + c)
        })
    }
}

/// The maximum of two (index, value) cells where `a` comes first in the
/// window: `b` only when strictly larger, or NaN where `a` is not (so a scan
/// in window order keeps the first maximum and the first NaN, which a
/// tournament of such picks reproduces).
#[inline(always)]
fn first_max<T: Element>(a: (usize, T), b: (usize, T)) -> (usize, T) {
    let take = (b.1 > a.1) | (b.1.is_nan() & !a.1.is_nan());
    if take {
        b
    } else {
        a
    }
}

/// Max pooling: the output and, per output element, the flat index into `x` of its maximum.
pub fn try_max_pool2d<T: Element>(
    x: &Tensor<T>,
    p: Pool2dParams,
) -> TensorResult<(Tensor<T>, Vec<usize>)> {
    let _t = crate::profile::scope(crate::profile::Section::Pool);
    let (ho, wo) = p.out_size("max_pool2d", x.shape())?;
    let (n, c, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let x = x.to_contiguous();
    let xs = x.as_slice().expect("contiguous");
    let plane_out = ho * wo;
    let mut out = vec![T::zero(); n * c * plane_out];
    let mut idx = vec![0usize; out.len()];
    out.par_chunks_mut(plane_out.max(1))
        .zip(idx.par_chunks_mut(plane_out.max(1)))
        .enumerate()
        .for_each(|(plane, (o, ix))| {
            let base = plane * h * w;
            let src = &xs[base..base + h * w];
            if p.kernel == (2, 2) && p.stride == (2, 2) && p.padding == (0, 0) {
                // the common 2x2/2 case as a tournament of the four cells, row
                // by row over zipped slices (no bounds checks in the loop)
                for oh in 0..ho {
                    let r0 = 2 * oh * w;
                    let (top, bottom) = (&src[r0..r0 + 2 * wo], &src[r0 + w..r0 + w + 2 * wo]);
                    let outs = o[oh * wo..(oh + 1) * wo].iter_mut();
                    let idxs = ix[oh * wo..(oh + 1) * wo].iter_mut();
                    let cells = top.chunks_exact(2).zip(bottom.chunks_exact(2));
                    for (ow, ((out, id), (t, b))) in outs.zip(idxs).zip(cells).enumerate() {
                        let upper = first_max((0, t[0]), (1, t[1]));
                        let lower = first_max((w, b[0]), (w + 1, b[1]));
                        let (offset, value) = first_max(upper, lower);
                        *out = value;
                        *id = base + r0 + 2 * ow + offset;
                    }
                }
                return;
            }
            for oh in 0..ho {
                for ow in 0..wo {
                    // padding is at most half the window, so no window is empty
                    let mut cells = p.window(oh, ow, h, w).map(|i| (i, src[i]));
                    let first = cells.next().expect("a window holds an image cell");
                    let best = cells.fold(first, first_max);
                    o[oh * wo + ow] = best.1;
                    ix[oh * wo + ow] = base + best.0;
                }
            }
        });
    Ok((Tensor::from_vec(&[n, c, ho, wo], out)?, idx))
}

/// See [`try_max_pool2d`].
#[track_caller]
pub fn max_pool2d<T: Element>(x: &Tensor<T>, p: Pool2dParams) -> (Tensor<T>, Vec<usize>) {
    or_panic(try_max_pool2d(x, p))
}

/// Max pooling backward: scatter `grad_out` to the recorded argmax `indices`.
pub fn try_max_pool2d_backward<T: Element>(
    grad_out: &Tensor<T>,
    indices: &[usize],
    input_shape: &[usize],
) -> TensorResult<Tensor<T>> {
    let _t = crate::profile::scope(crate::profile::Section::Pool);
    let total: usize = input_shape.iter().product();
    if grad_out.len() != indices.len()
        || input_shape.len() != 4
        || grad_out.shape()[..2] != input_shape[..2]
    {
        return Err(TensorError::mismatch(
            "max_pool2d_backward",
            input_shape,
            grad_out.shape(),
            None,
            "gradient must come from this input's pooling",
        ));
    }
    let plane = input_shape[2] * input_shape[3];
    let g = grad_out.to_contiguous();
    let gs = g.as_slice().expect("contiguous");
    let per = gs.len() / (input_shape[0] * input_shape[1]).max(1);
    let mut gx = vec![T::zero(); total];
    gx.par_chunks_mut(plane.max(1))
        .enumerate()
        .for_each(|(pl, dst)| {
            for (&i, &v) in indices[pl * per..(pl + 1) * per]
                .iter()
                .zip(&gs[pl * per..(pl + 1) * per])
            {
                dst[i - pl * plane] += v;
            }
        });
    Tensor::from_vec(input_shape, gx)
}

/// Average pooling (padding counted in the divisor).
pub fn try_avg_pool2d<T: Element>(x: &Tensor<T>, p: Pool2dParams) -> TensorResult<Tensor<T>> {
    let _t = crate::profile::scope(crate::profile::Section::Pool);
    let (ho, wo) = p.out_size("avg_pool2d", x.shape())?;
    let (n, c, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let x = x.to_contiguous();
    let xs = x.as_slice().expect("contiguous");
    let scale = T::one() / T::from_usize(p.kernel.0 * p.kernel.1).expect("size fits");
    let mut out = vec![T::zero(); n * c * ho * wo];
    out.par_chunks_mut((ho * wo).max(1))
        .enumerate()
        .for_each(|(plane, o)| {
            let src = &xs[plane * h * w..(plane + 1) * h * w];
            for oh in 0..ho {
                for ow in 0..wo {
                    o[oh * wo + ow] = p.window(oh, ow, h, w).map(|i| src[i]).sum::<T>() * scale;
                }
            }
        });
    Tensor::from_vec(&[n, c, ho, wo], out)
}

/// Average pooling backward.
pub fn try_avg_pool2d_backward<T: Element>(
    grad_out: &Tensor<T>,
    input_shape: &[usize],
    p: Pool2dParams,
) -> TensorResult<Tensor<T>> {
    let _t = crate::profile::scope(crate::profile::Section::Pool);
    let (ho, wo) = p.out_size("avg_pool2d_backward", input_shape)?;
    let expect = [input_shape[0], input_shape[1], ho, wo];
    if grad_out.shape() != expect {
        return Err(TensorError::mismatch(
            "avg_pool2d_backward",
            &expect,
            grad_out.shape(),
            None,
            "gradient must match the pooled shape",
        ));
    }
    let (h, w) = (input_shape[2], input_shape[3]);
    let g = grad_out.to_contiguous();
    let gs = g.as_slice().expect("contiguous");
    let scale = T::one() / T::from_usize(p.kernel.0 * p.kernel.1).expect("size fits");
    let mut gx = vec![T::zero(); input_shape.iter().product()];
    gx.par_chunks_mut((h * w).max(1))
        .enumerate()
        .for_each(|(plane, dst)| {
            let src = &gs[plane * ho * wo..(plane + 1) * ho * wo];
            for oh in 0..ho {
                for ow in 0..wo {
                    let v = src[oh * wo + ow] * scale;
                    p.window(oh, ow, h, w).for_each(|i| dst[i] += v);
                }
            }
        });
    Tensor::from_vec(input_shape, gx)
}

/// See [`try_avg_pool2d`].
#[track_caller]
pub fn avg_pool2d<T: Element>(x: &Tensor<T>, p: Pool2dParams) -> Tensor<T> {
    or_panic(try_avg_pool2d(x, p))
}
