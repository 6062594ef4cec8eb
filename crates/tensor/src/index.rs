//! Indexing: select rows, scatter-add rows, gather one entry per row, one-hot.

use crate::error::{or_panic, TensorError, TensorResult};
use crate::{Element, Tensor};
use ndarray::{Axis, IxDyn};

impl<T: Element> Tensor<T> {
    /// The sub-tensors at `indices` along `axis`, in that order (repeats allowed).
    pub fn try_index_select(&self, axis: usize, indices: &[usize]) -> TensorResult<Self> {
        let d = self.dim_checked("index_select", axis)?;
        if let Some(&bad) = indices.iter().find(|&&i| i >= d) {
            return Err(TensorError::invalid(
                "index_select",
                self.shape(),
                format!("index {bad} out of range for axis {axis} of size {d}"),
            ));
        }
        Ok(Tensor::from_array(self.data.select(Axis(axis), indices)))
    }

    /// See [`Tensor::try_index_select`].
    #[track_caller]
    pub fn index_select(&self, axis: usize, indices: &[usize]) -> Self {
        or_panic(self.try_index_select(axis, indices))
    }

    /// A `[rows, ...]` tensor of zeros with row `indices[i]` increased by `self[i]`
    /// (the backward of [`Tensor::index_select`] on axis 0).
    pub fn try_scatter_add_rows(&self, indices: &[usize], rows: usize) -> TensorResult<Self> {
        let n = self.dim_checked("scatter_add_rows", 0)?;
        if n != indices.len() {
            return Err(TensorError::invalid(
                "scatter_add_rows",
                self.shape(),
                format!("{} indices for {n} rows", indices.len()),
            ));
        }
        if let Some(&bad) = indices.iter().find(|&&i| i >= rows) {
            return Err(TensorError::invalid(
                "scatter_add_rows",
                self.shape(),
                format!("index {bad} out of range for {rows} rows"),
            ));
        }
        let mut shape = self.shape().to_vec();
        shape[0] = rows;
        let mut out = ndarray::ArrayD::<T>::zeros(IxDyn(&shape));
        for (src, &i) in self.data.outer_iter().zip(indices) {
            let mut dst = out.index_axis_mut(Axis(0), i);
            dst += &src;
        }
        Ok(Tensor::from_array(out))
    }

    /// From a 2-D `[N, C]` tensor, the `[N]` entries `self[i, indices[i]]`.
    pub fn try_gather_rows(&self, indices: &[usize]) -> TensorResult<Self> {
        if self.ndim() != 2 || self.shape()[0] != indices.len() {
            return Err(TensorError::invalid(
                "gather_rows",
                self.shape(),
                format!("expects [N, C] with N = {} indices", indices.len()),
            ));
        }
        let c = self.shape()[1];
        if let Some(&bad) = indices.iter().find(|&&i| i >= c) {
            return Err(TensorError::invalid(
                "gather_rows",
                self.shape(),
                format!("index {bad} out of range for {c} columns"),
            ));
        }
        let v = indices
            .iter()
            .enumerate()
            .map(|(r, &i)| self.data[[r, i].as_slice()])
            .collect();
        Tensor::from_vec(&[indices.len()], v)
    }

    /// `[N, C]` rows of zeros with a one at column `labels[i]`.
    pub fn try_one_hot(labels: &[usize], classes: usize) -> TensorResult<Self> {
        if let Some(&bad) = labels.iter().find(|&&l| l >= classes) {
            return Err(TensorError::invalid(
                "one_hot",
                &[labels.len(), classes],
                format!("label {bad} out of range for {classes} classes"),
            ));
        }
        let mut v = vec![T::zero(); labels.len() * classes];
        for (r, &l) in labels.iter().enumerate() {
            v[r * classes + l] = T::one();
        }
        Tensor::from_vec(&[labels.len(), classes], v)
    }

    /// See [`Tensor::try_one_hot`].
    #[track_caller]
    pub fn one_hot(labels: &[usize], classes: usize) -> Self {
        or_panic(Self::try_one_hot(labels, classes))
    }
}
