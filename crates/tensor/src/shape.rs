//! Shape ops: reshape, permute, transpose, slice, concatenate and NumPy
//! broadcasting. All but concatenate return views that share the buffer.

use crate::error::{or_panic, TensorError, TensorResult};
use crate::{Element, Tensor};
use ndarray::{Axis, IxDyn, Slice};

/// The broadcast shape of two shapes under NumPy's rules: align trailing axes;
/// two sizes fit when equal or when one is 1.
pub fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> TensorResult<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(TensorError::mismatch(
                    op,
                    a,
                    b,
                    Some(i),
                    format!("sizes {da} and {db} cannot broadcast (aligned from the last axis)"),
                ))
            }
        };
    }
    Ok(out)
}

impl<T: Element> Tensor<T> {
    /// Same values under a new shape (a view when contiguous, else a copy).
    pub fn try_reshape(&self, shape: &[usize]) -> TensorResult<Self> {
        let n: usize = shape.iter().product();
        if n != self.len() {
            return Err(TensorError::mismatch(
                "reshape",
                self.shape(),
                shape,
                None,
                format!("{} elements cannot take a shape of {n}", self.len()),
            ));
        }
        let base = self.to_contiguous();
        let data = base
            .data
            .into_shape_with_order(IxDyn(shape))
            .expect("contiguous and same size");
        Ok(Tensor { data })
    }

    /// See [`Tensor::try_reshape`].
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Self {
        or_panic(self.try_reshape(shape))
    }

    /// Reorder the axes: output axis `i` is input axis `perm[i]` (a view).
    pub fn try_permute(&self, perm: &[usize]) -> TensorResult<Self> {
        let mut seen = vec![false; self.ndim()];
        let valid = perm.len() == self.ndim()
            && perm
                .iter()
                .all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(TensorError::invalid(
                "permute",
                self.shape(),
                format!("{perm:?} is not a permutation of the axes"),
            ));
        }
        Ok(Tensor {
            data: self.data.clone().permuted_axes(IxDyn(perm)),
        })
    }

    /// See [`Tensor::try_permute`].
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Self {
        or_panic(self.try_permute(perm))
    }

    /// Swap two axes (a view).
    pub fn try_transpose(&self, a: usize, b: usize) -> TensorResult<Self> {
        self.dim_checked("transpose", a)?;
        self.dim_checked("transpose", b)?;
        let mut perm: Vec<usize> = (0..self.ndim()).collect();
        perm.swap(a, b);
        self.try_permute(&perm)
    }

    /// Swap the last two axes (a view): the matrix transpose for 2-D and
    /// batched 3-D tensors. Panics below 2 axes.
    #[track_caller]
    pub fn t(&self) -> Self {
        let n = self.ndim();
        if n < 2 {
            panic!(
                "{}",
                TensorError::invalid("t", self.shape(), "needs at least 2 axes")
            );
        }
        or_panic(self.try_transpose(n - 2, n - 1))
    }

    /// Elements `start..end` along `axis` (a view).
    pub fn try_slice_axis(&self, axis: usize, start: usize, end: usize) -> TensorResult<Self> {
        let d = self.dim_checked("slice_axis", axis)?;
        if start > end || end > d {
            return Err(TensorError::invalid(
                "slice_axis",
                self.shape(),
                format!("range {start}..{end} out of bounds for axis {axis} of size {d}"),
            ));
        }
        let mut data = self.data.clone();
        data.slice_axis_inplace(Axis(axis), Slice::from(start..end));
        Ok(Tensor { data })
    }

    /// See [`Tensor::try_slice_axis`].
    #[track_caller]
    pub fn slice_axis(&self, axis: usize, start: usize, end: usize) -> Self {
        or_panic(self.try_slice_axis(axis, start, end))
    }

    /// Insert an axis of size 1 at `axis` (a view).
    pub fn unsqueeze(&self, axis: usize) -> Self {
        let mut shape = self.shape().to_vec();
        assert!(
            axis <= shape.len(),
            "unsqueeze: axis {axis} out of range for shape {shape:?}"
        );
        shape.insert(axis, 1);
        self.reshape(&shape)
    }

    /// A broadcast view with the given shape (no copy; zero strides).
    pub fn try_broadcast_to(&self, shape: &[usize]) -> TensorResult<Self> {
        let target = broadcast_shape("broadcast_to", self.shape(), shape)?;
        if target != shape {
            return Err(TensorError::mismatch(
                "broadcast_to",
                self.shape(),
                shape,
                None,
                "target must be the broadcast result",
            ));
        }
        let v = self
            .data
            .broadcast(IxDyn(shape))
            .expect("checked broadcast")
            .to_owned();
        Ok(Tensor::from_array(v))
    }

    /// Join tensors along `axis`; all other axes must agree.
    pub fn try_concat(parts: &[&Tensor<T>], axis: usize) -> TensorResult<Self> {
        let first = parts
            .first()
            .ok_or_else(|| TensorError::invalid("concat", &[], "no tensors given"))?;
        first.dim_checked("concat", axis)?;
        for p in &parts[1..] {
            let bad = p.ndim() != first.ndim()
                || (0..first.ndim())
                    .find(|&i| i != axis && p.shape()[i] != first.shape()[i])
                    .is_some();
            if bad {
                let at = (0..first.ndim().min(p.ndim()))
                    .find(|&i| i != axis && p.shape()[i] != first.shape()[i]);
                return Err(TensorError::mismatch(
                    "concat",
                    first.shape(),
                    p.shape(),
                    at,
                    format!("all axes but {axis} must agree"),
                ));
            }
        }
        let views: Vec<_> = parts.iter().map(|p| p.data.view()).collect();
        let out = ndarray::concatenate(Axis(axis), &views).expect("shapes checked above");
        Ok(Tensor::from_array(out))
    }

    /// See [`Tensor::try_concat`].
    #[track_caller]
    pub fn concat(parts: &[&Tensor<T>], axis: usize) -> Self {
        or_panic(Self::try_concat(parts, axis))
    }
}
