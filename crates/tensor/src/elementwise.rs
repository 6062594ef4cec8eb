//! Elementwise ops: binary with NumPy broadcasting, with a scalar, and unary.
//!
//! Fast path: operands of equal shape, both contiguous, go through the SIMD
//! kernels of [`crate::simd`]. A scalar-shaped operand becomes a closure
//! constant. Everything else (strided views, real broadcasting) goes through
//! `ndarray::Zip` over broadcast views, which is correct for any strides.

use crate::error::{or_panic, TensorError, TensorResult};
use crate::shape::broadcast_shape;
use crate::{simd, Element, Tensor};
use ndarray::{ArrayD, IxDyn, Zip};
use rayon::prelude::*;

impl<T: Element> Tensor<T> {
    /// Apply `f` to every element (contiguous SIMD fast path).
    pub fn map<F: Fn(T) -> T + Sync>(&self, f: F) -> Self {
        let _t = crate::profile::scope(crate::profile::Section::Elementwise);
        match self.as_slice() {
            Some(x) => {
                let mut out = crate::memory::zeroed(x.len());
                simd::map(x, &mut out, f);
                Tensor::from_vec(self.shape(), out).expect("same length")
            }
            None => Tensor::from_array(self.data.map(|&v| f(v))),
        }
    }

    /// Combine with `other` elementwise under broadcasting.
    pub fn try_zip_with<F: Fn(T, T) -> T + Sync>(
        &self,
        other: &Self,
        op: &'static str,
        f: F,
    ) -> TensorResult<Self> {
        let _t = crate::profile::scope(crate::profile::Section::Elementwise);
        let shape = broadcast_shape(op, self.shape(), other.shape())?;
        if self.shape() == other.shape() {
            if let (Some(a), Some(b)) = (self.as_slice(), other.as_slice()) {
                let mut out = crate::memory::zeroed(a.len());
                simd::zip(a, b, &mut out, f);
                return Tensor::from_vec(&shape, out);
            }
        }
        if let Some(out) = per_lane_scalar(self, other, &f) {
            return Ok(out);
        }
        if other.len() == 1 && self.shape() == shape.as_slice() {
            let s = *other.data.iter().next().expect("one element");
            return Ok(self.map(|x| f(x, s)));
        }
        if self.len() == 1 && other.shape() == shape.as_slice() {
            let s = *self.data.iter().next().expect("one element");
            return Ok(other.map(|y| f(s, y)));
        }
        let a = self
            .data
            .broadcast(IxDyn(&shape))
            .expect("checked broadcast");
        let b = other
            .data
            .broadcast(IxDyn(&shape))
            .expect("checked broadcast");
        let mut out = ArrayD::<T>::zeros(IxDyn(&shape));
        Zip::from(&mut out)
            .and(&a)
            .and(&b)
            .for_each(|o, &x, &y| *o = f(x, y));
        Ok(Tensor::from_array(out))
    }

    /// In-place `self[i] = f(self[i], other[i])`; `other` must broadcast to
    /// `self`'s shape. Copies only when the buffer is shared.
    pub fn try_update_with<F: Fn(T, T) -> T + Sync>(
        &mut self,
        other: &Self,
        op: &'static str,
        f: F,
    ) -> TensorResult<()> {
        let _t = crate::profile::scope(crate::profile::Section::Elementwise);
        let shape = broadcast_shape(op, self.shape(), other.shape())?;
        if shape != self.shape() {
            return Err(TensorError::mismatch(
                op,
                self.shape(),
                other.shape(),
                None,
                "the right side must broadcast to the left",
            ));
        }
        if self.shape() == other.shape() && self.is_contiguous() {
            if let Some(b) = other.as_slice() {
                simd::update(self.as_mut_slice(), b, f);
                return Ok(());
            }
        }
        let b = other
            .data
            .broadcast(IxDyn(&shape))
            .expect("checked broadcast");
        Zip::from(&mut self.data)
            .and(&b)
            .for_each(|o, &y| *o = f(*o, y));
        Ok(())
    }

    /// In-place `self += other` (broadcasting `other`).
    #[track_caller]
    pub fn add_assign(&mut self, other: &Self) {
        or_panic(self.try_update_with(other, "add_assign", |a, b| a + b))
    }

    /// In-place `self = self * a + other * b` (used by optimisers).
    #[track_caller]
    pub fn scale_add_assign(&mut self, a: T, other: &Self, b: T) {
        or_panic(self.try_update_with(other, "scale_add_assign", move |x, y| x * a + y * b))
    }
}

/// The fast path for `x [.., L] op s [.., 1]`, both contiguous: one scalar per
/// lane of the last axis (a row norm dividing its row, as in `l2_normalize`).
/// Lanes run in parallel through the SIMD map kernel; the generic broadcast
/// below walks such shapes element by element (10-13 ms for A-Softmax's
/// 10,572 x 512 class weights, against about 1 ms here).
fn per_lane_scalar<T: Element, F: Fn(T, T) -> T + Sync>(
    x: &Tensor<T>,
    s: &Tensor<T>,
    f: &F,
) -> Option<Tensor<T>> {
    let (xs, ss) = (x.shape(), s.shape());
    let n = xs.len();
    if n < 2 || ss.len() != n || ss[..n - 1] != xs[..n - 1] || ss[n - 1] != 1 || xs[n - 1] < 2 {
        return None;
    }
    let (xv, sv) = (x.as_slice()?, s.as_slice()?);
    let lane = xs[n - 1];
    let mut out = crate::memory::zeroed(xv.len());
    let lanes_per_task = (simd::PARALLEL_THRESHOLD / lane).max(1);
    out.par_chunks_mut(lane * lanes_per_task)
        .zip(xv.par_chunks(lane * lanes_per_task))
        .zip(sv.par_chunks(lanes_per_task))
        .for_each(|((o, xi), si)| {
            for ((o, xi), &sc) in o.chunks_mut(lane).zip(xi.chunks(lane)).zip(si) {
                simd::map_serial(xi, o, |v| f(v, sc));
            }
        });
    Tensor::from_vec(xs, out).ok()
}

macro_rules! binary_ops {
    ($($(#[$doc:meta])* $name:ident, $try_name:ident, |$a:ident, $b:ident| $e:expr;)*) => {
        impl<T: Element> Tensor<T> {
            $(
                $(#[$doc])*
                pub fn $try_name(&self, other: &Self) -> TensorResult<Self> {
                    self.try_zip_with(other, stringify!($name), |$a, $b| $e)
                }
                $(#[$doc])*
                #[track_caller]
                pub fn $name(&self, other: &Self) -> Self {
                    or_panic(self.$try_name(other))
                }
            )*
        }
    };
}

binary_ops! {
    /// Elementwise sum with broadcasting.
    add, try_add, |a, b| a + b;
    /// Elementwise difference with broadcasting.
    sub, try_sub, |a, b| a - b;
    /// Elementwise product with broadcasting.
    mul, try_mul, |a, b| a * b;
    /// Elementwise quotient with broadcasting.
    div, try_div, |a, b| a / b;
    /// Elementwise maximum with broadcasting.
    maximum, try_maximum, |a, b| a.max(b);
    /// Elementwise minimum with broadcasting.
    minimum, try_minimum, |a, b| a.min(b);
    /// Elementwise `a^b` with broadcasting.
    pow, try_pow, |a, b| a.powf(b);
    /// 1 where `a > b`, else 0 (a mask, broadcasting).
    gt, try_gt, |a, b| if a > b { T::one() } else { T::zero() };
    /// 1 where `a >= b`, else 0.
    ge, try_ge, |a, b| if a >= b { T::one() } else { T::zero() };
    /// 1 where `a < b`, else 0.
    lt, try_lt, |a, b| if a < b { T::one() } else { T::zero() };
    /// 1 where `a <= b`, else 0.
    le, try_le, |a, b| if a <= b { T::one() } else { T::zero() };
    /// 1 where `a == b`, else 0.
    eq_mask, try_eq_mask, |a, b| if a == b { T::one() } else { T::zero() };
}

macro_rules! unary_ops {
    ($($(#[$doc:meta])* $name:ident($($p:ident: $pt:ty),*) = |$x:ident| $e:expr;)*) => {
        impl<T: Element> Tensor<T> {
            $(
                $(#[$doc])*
                pub fn $name(&self $(, $p: $pt)*) -> Self {
                    self.map(move |$x| $e)
                }
            )*
        }
    };
}

unary_ops! {
    /// `-x`.
    neg() = |x| -x;
    /// `|x|`.
    abs() = |x| x.abs();
    /// `e^x`.
    exp() = |x| x.exp();
    /// Natural logarithm.
    ln() = |x| x.ln();
    /// Square root.
    sqrt() = |x| x.sqrt();
    /// `x^p` for a real power.
    powf(p: T) = |x| x.powf(p);
    /// `x^n` for an integer power.
    powi(n: i32) = |x| x.powi(n);
    /// -1, 0 or 1 by the sign of `x` (0 at 0).
    sign() = |x| if x > T::zero() { T::one() } else if x < T::zero() { -T::one() } else { T::zero() };
    /// `max(x, 0)`.
    relu() = |x| if x > T::zero() { x } else { T::zero() };
    /// `x + s`.
    add_scalar(s: T) = |x| x + s;
    /// `x * s`.
    mul_scalar(s: T) = |x| x * s;
    /// `max(x, s)`.
    max_scalar(s: T) = |x| x.max(s);
    /// `min(x, s)`.
    min_scalar(s: T) = |x| x.min(s);
    /// `x` limited to `[lo, hi]`; NaN stays NaN (a clamp must not hide a divergence).
    clamp(lo: T, hi: T) = |x| if x.is_nan() { x } else { x.max(lo).min(hi) };
    /// 1 where `x > s`, else 0.
    gt_scalar(s: T) = |x| if x > s { T::one() } else { T::zero() };
    /// 1 where `x < s`, else 0.
    lt_scalar(s: T) = |x| if x < s { T::one() } else { T::zero() };
}

/// The per-channel view of an NCHW-like tensor: channels on axis 1, `inner`
/// elements per (sample, channel) plane.
fn channel_layout(
    op: &'static str,
    x: &[usize],
    slope: &[usize],
) -> TensorResult<(usize, usize, usize)> {
    if x.len() < 2 || slope.len() != 1 || (slope[0] != x[1] && slope[0] != 1) {
        return Err(TensorError::mismatch(
            op,
            x,
            slope,
            Some(1),
            "slope must be [channels] (or [1]) for an input [N, channels, ...]",
        ));
    }
    Ok((x[0], x[1], x[2..].iter().product()))
}

impl<T: Element> Tensor<T> {
    /// PReLU with one slope per channel (axis 1): `x` if `x > 0`, else `a_c · x`.
    /// Planes (one per sample and channel) run in parallel.
    pub fn try_prelu(&self, slope: &Self) -> TensorResult<Self> {
        let _t = crate::profile::scope(crate::profile::Section::Elementwise);
        let (_, c, inner) = channel_layout("prelu", self.shape(), slope.shape())?;
        let x = self.to_contiguous();
        let a = slope.to_vec();
        let xs = x.as_slice().expect("contiguous");
        let mut out = crate::memory::zeroed(xs.len());
        let inner = inner.max(1);
        let planes_per_task = (simd::PARALLEL_THRESHOLD / inner).max(1);
        out.par_chunks_mut(inner * planes_per_task)
            .zip(xs.par_chunks(inner * planes_per_task))
            .enumerate()
            .for_each(|(task, (o, xi))| {
                for (k, (o, xi)) in o.chunks_mut(inner).zip(xi.chunks(inner)).enumerate() {
                    let ac = a[if a.len() == 1 {
                        0
                    } else {
                        (task * planes_per_task + k) % c
                    }];
                    for (o, &v) in o.iter_mut().zip(xi) {
                        *o = if v > T::zero() { v } else { ac * v };
                    }
                }
            });
        Tensor::from_vec(self.shape(), out)
    }

    /// See [`Tensor::try_prelu`].
    #[track_caller]
    pub fn prelu(&self, slope: &Self) -> Self {
        or_panic(self.try_prelu(slope))
    }

    /// Gradients of PReLU: `(dL/dx, dL/dslope)` from the input, the slope and `dL/dy`.
    ///
    /// `dy/dx = 1` where `x > 0`, else `a_c`; `dy/da_c = Σ_{x ≤ 0 in channel c} x`.
    /// Planes run in parallel; each plane's slope contribution is summed on its
    /// own and the per-plane sums are added per channel in plane order, so the
    /// result does not depend on scheduling.
    pub fn try_prelu_backward(&self, slope: &Self, grad_out: &Self) -> TensorResult<(Self, Self)> {
        self.prelu_backward_impl(slope, grad_out, false)
    }

    /// [`Tensor::try_prelu_backward`] from PReLU's output `y` instead of its
    /// input, for slopes in (0, 1]: there `y > 0` exactly where `x > 0`, and
    /// `x = y / a_c` where it is not, so `dy/da_c = Σ_{y ≤ 0} y / a_c`. With a
    /// slope in that range, `|y| ≤ |x|`, so `y` never overflows where `x` did
    /// not. Keeping the output lets the input (a convolution's output, as
    /// large as the activation) be freed after the forward. Slopes outside
    /// (0, 1] are refused.
    pub fn try_prelu_backward_from_output(
        &self,
        slope: &Self,
        grad_out: &Self,
    ) -> TensorResult<(Self, Self)> {
        self.prelu_backward_impl(slope, grad_out, true)
    }

    /// For a PReLU slope tensor: whether every slope lies in (0, 1], where
    /// PReLU's output determines its input (see
    /// [`Tensor::try_prelu_backward_from_output`]).
    pub fn prelu_output_determines_input(&self) -> bool {
        self.to_vec()
            .iter()
            .all(|&a| a > T::zero() && a <= T::one())
    }

    fn prelu_backward_impl(
        &self,
        slope: &Self,
        grad_out: &Self,
        from_output: bool,
    ) -> TensorResult<(Self, Self)> {
        let _t = crate::profile::scope(crate::profile::Section::Elementwise);
        let (_, c, inner) = channel_layout("prelu_backward", self.shape(), slope.shape())?;
        if grad_out.shape() != self.shape() {
            return Err(TensorError::mismatch(
                "prelu_backward",
                self.shape(),
                grad_out.shape(),
                None,
                "gradient must match the input",
            ));
        }
        if from_output && !slope.prelu_output_determines_input() {
            return Err(TensorError::mismatch(
                "prelu_backward_from_output",
                self.shape(),
                slope.shape(),
                None,
                "needs every slope in (0, 1]",
            ));
        }
        let (x, g) = (self.to_contiguous(), grad_out.to_contiguous());
        let a = slope.to_vec();
        let (xs, gs) = (
            x.as_slice().expect("contiguous"),
            g.as_slice().expect("contiguous"),
        );
        let mut gx = crate::memory::zeroed(xs.len());
        let inner = inner.max(1);
        let mut plane_sums = vec![T::zero(); xs.len() / inner];
        gx.par_chunks_mut(inner)
            .zip(xs.par_chunks(inner))
            .zip(gs.par_chunks(inner))
            .zip(plane_sums.par_iter_mut())
            .enumerate()
            .with_min_len((simd::PARALLEL_THRESHOLD / inner).max(1))
            .for_each(|(plane, (((o, xi), gi), sum))| {
                let ac = a[if a.len() == 1 { 0 } else { plane % c }];
                *sum = simd::prelu_backward_plane(xi, gi, o, ac);
            });
        let mut ga = crate::memory::zeroed(a.len());
        for (plane, &s) in plane_sums.iter().enumerate() {
            ga[if a.len() == 1 { 0 } else { plane % c }] += s;
        }
        if from_output {
            // the sums were of y·g = a·x·g over the non-positive side
            for (g, &ac) in ga.iter_mut().zip(&a) {
                *g /= ac;
            }
        }
        Ok((
            Tensor::from_vec(self.shape(), gx)?,
            Tensor::from_vec(slope.shape(), ga)?,
        ))
    }
}
