//! The `Tensor` type: storage, construction and element access.
//!
//! Storage choice: an `ndarray::ArcArray<T, IxDyn>`. Cloning a tensor clones an
//! `Arc`, so the autograd tape can keep a value for its backward without copying
//! it, and reshape / permute / slice return views that share the buffer. A
//! write (`make_mut`) copies only when the buffer is shared. Tensors are row-major
//! and contiguous when freshly made; views may be strided, and every kernel either
//! handles strides or asks for [`Tensor::to_contiguous`] first.

use crate::error::{TensorError, TensorResult};
use crate::Element;
use ndarray::{ArcArray, ArrayD, ArrayViewD, IxDyn};

/// An n-dimensional array of `f32` or `f64`, cheap to clone (shared buffer).
#[derive(Clone, PartialEq)]
pub struct Tensor<T: Element> {
    pub(crate) data: ArcArray<T, IxDyn>,
}

impl<T: Element> std::fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor<{}>{:?} {:?}", T::DTYPE, self.shape(), self.data)
    }
}

impl<T: Element> Tensor<T> {
    /// Wrap an owned ndarray.
    pub fn from_array(a: ArrayD<T>) -> Self {
        Tensor {
            data: a.into_shared(),
        }
    }

    /// A tensor of `shape` from row-major `values`; fails when the count differs.
    pub fn from_vec(shape: &[usize], values: Vec<T>) -> TensorResult<Self> {
        let n: usize = shape.iter().product();
        if n != values.len() {
            return Err(TensorError::invalid(
                "from_vec",
                shape,
                format!(
                    "shape holds {n} elements but {} values were given",
                    values.len()
                ),
            ));
        }
        let a = ArrayD::from_shape_vec(IxDyn(shape), values).expect("length checked above");
        Ok(Self::from_array(a))
    }

    /// A tensor filled with `value`.
    pub fn full(shape: &[usize], value: T) -> Self {
        Self::from_array(ArrayD::from_elem(IxDyn(shape), value))
    }

    /// All zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::zero())
    }

    /// All ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::one())
    }

    /// A 0-d tensor holding one value.
    pub fn scalar(value: T) -> Self {
        Self::full(&[], value)
    }

    /// Row-major values converted from `f64` (handy in tests and examples).
    pub fn from_f64s(shape: &[usize], values: &[f64]) -> TensorResult<Self> {
        Self::from_vec(
            shape,
            values.iter().map(|&v| T::from_f64_lossy(v)).collect(),
        )
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.data.shape()
    }

    /// Strides in elements (may be negative or zero for views).
    pub fn strides(&self) -> &[isize] {
        self.data.strides()
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.data.ndim()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Size of `axis`, or an error naming the op when the axis does not exist.
    pub(crate) fn dim_checked(&self, op: &'static str, axis: usize) -> TensorResult<usize> {
        self.shape().get(axis).copied().ok_or_else(|| {
            TensorError::invalid(
                op,
                self.shape(),
                format!("axis {axis} out of range for {} axes", self.ndim()),
            )
        })
    }

    /// True when the elements lie row-major and contiguous in memory.
    pub fn is_contiguous(&self) -> bool {
        self.data.is_standard_layout()
    }

    /// A row-major contiguous tensor with the same values (shares the buffer
    /// when already contiguous).
    pub fn to_contiguous(&self) -> Self {
        if self.is_contiguous() {
            self.clone()
        } else {
            Self::from_array(self.data.as_standard_layout().into_owned())
        }
    }

    /// The elements as a slice when contiguous.
    pub fn as_slice(&self) -> Option<&[T]> {
        self.data.as_slice()
    }

    /// The elements in row-major (logical) order.
    pub fn to_vec(&self) -> Vec<T> {
        self.data.iter().copied().collect()
    }

    /// Contiguous elements, mutable; copies first when the buffer is shared or strided.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        if !self.is_contiguous() {
            *self = Self::from_array(self.data.as_standard_layout().into_owned());
        }
        self.data
            .as_slice_mut()
            .expect("standard layout after the copy above")
    }

    /// A read-only ndarray view.
    pub fn view(&self) -> ArrayViewD<'_, T> {
        self.data.view()
    }

    /// The underlying shared array.
    pub fn array(&self) -> &ArcArray<T, IxDyn> {
        &self.data
    }

    /// An owned ndarray copy (or move, when unshared).
    pub fn into_array(self) -> ArrayD<T> {
        self.data.into_owned()
    }

    /// The single value of a tensor with one element.
    pub fn item(&self) -> TensorResult<T> {
        if self.len() != 1 {
            return Err(TensorError::invalid(
                "item",
                self.shape(),
                "tensor has more than one element",
            ));
        }
        Ok(*self.data.iter().next().expect("one element"))
    }

    /// Element at a multi-index.
    pub fn get(&self, index: &[usize]) -> TensorResult<T> {
        self.data.get(IxDyn(index)).copied().ok_or_else(|| {
            TensorError::invalid(
                "get",
                self.shape(),
                format!("index {index:?} out of bounds"),
            )
        })
    }

    /// Convert every element to another element type.
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        Tensor::from_array(self.data.mapv(|v| U::from(v).expect("float to float cast")))
    }

    /// True when every element is finite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// Largest absolute difference to another tensor of the same shape.
    pub fn max_abs_diff(&self, other: &Self) -> TensorResult<T> {
        if self.shape() != other.shape() {
            return Err(TensorError::mismatch(
                "max_abs_diff",
                self.shape(),
                other.shape(),
                None,
                "shapes must be equal",
            ));
        }
        Ok(self
            .data
            .iter()
            .zip(other.data.iter())
            .fold(T::zero(), |m, (&a, &b)| m.max((a - b).abs())))
    }
}
