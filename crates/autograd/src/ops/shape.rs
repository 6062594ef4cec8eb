//! Shape ops and indexing: the gradient goes back to where each element came from.

use crate::Var;
use tensor::{Element, Tensor};

impl<T: Element> Var<T> {
    /// Same values, new shape.  dx = g reshaped back.
    pub fn reshape(&self, shape: &[usize]) -> Var<T> {
        let orig = self.shape().to_vec();
        Var::from_op("reshape", self.value().reshape(shape), &[self], move |g| {
            vec![Some(g.reshape(&orig))]
        })
    }

    /// Reorder axes.  dx = g permuted by the inverse permutation.
    pub fn permute(&self, perm: &[usize]) -> Var<T> {
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Var::from_op("permute", self.value().permute(perm), &[self], move |g| {
            vec![Some(g.permute(&inverse))]
        })
    }

    /// Swap the last two axes.  dx = gᵀ.
    pub fn t(&self) -> Var<T> {
        Var::from_op("t", self.value().t(), &[self], |g| vec![Some(g.t())])
    }

    /// Elements `start..end` along `axis`.  dx = g placed back in a zero tensor.
    pub fn slice_axis(&self, axis: usize, start: usize, end: usize) -> Var<T> {
        let shape = self.shape().to_vec();
        Var::from_op(
            "slice_axis",
            self.value().slice_axis(axis, start, end),
            &[self],
            move |g| {
                let mut before = shape.clone();
                before[axis] = start;
                let mut after = shape.clone();
                after[axis] = shape[axis] - end;
                let (zb, za) = (Tensor::zeros(&before), Tensor::zeros(&after));
                vec![Some(Tensor::concat(&[&zb, g, &za], axis))]
            },
        )
    }

    /// Join along `axis`.  Each input's gradient is its slice of g.
    pub fn concat(parts: &[&Var<T>], axis: usize) -> Var<T> {
        let values: Vec<&Tensor<T>> = parts.iter().map(|p| p.value()).collect();
        let sizes: Vec<usize> = parts.iter().map(|p| p.shape()[axis]).collect();
        Var::from_op("concat", Tensor::concat(&values, axis), parts, move |g| {
            let mut start = 0;
            sizes
                .iter()
                .map(|&s| {
                    start += s;
                    Some(g.slice_axis(axis, start - s, start))
                })
                .collect()
        })
    }

    /// Rows `indices` of axis 0 (repeats allowed).  dx = g scatter-added back to those rows.
    pub fn index_select(&self, indices: &[usize]) -> Var<T> {
        let rows = self.shape()[0];
        let idx = indices.to_vec();
        Var::from_op(
            "index_select",
            self.value().index_select(0, indices),
            &[self],
            move |g| {
                vec![Some(
                    g.try_scatter_add_rows(&idx, rows)
                        .expect("indices checked in the forward"),
                )]
            },
        )
    }

    /// From `[N, C]`, the `[N]` entries `x[i, idx[i]]`.  dx = g[i] at (i, idx[i]), zero elsewhere.
    pub fn gather_rows(&self, indices: &[usize]) -> Var<T> {
        let shape = self.shape().to_vec();
        let idx = indices.to_vec();
        let value = self
            .value()
            .try_gather_rows(indices)
            .unwrap_or_else(|e| panic!("{e}"));
        Var::from_op("gather_rows", value, &[self], move |g| {
            let gv = g.to_vec();
            let mut out = vec![T::zero(); shape[0] * shape[1]];
            for (r, (&i, &v)) in idx.iter().zip(&gv).enumerate() {
                out[r * shape[1] + i] = v;
            }
            vec![Some(Tensor::from_vec(&shape, out).expect("input-sized"))]
        })
    }
}
