//! Parameters: values that live across steps, with a gradient slot reused every step.

use crate::graph::{GradSlot, Var};
use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;
use tensor::{Element, Tensor};

/// A trainable tensor. Cloning shares it. Each forward takes a fresh leaf with
/// [`Param::var`]; each backward adds into the gradient slot in place, which
/// [`Param::zero_grad`] clears without freeing, so a step allocates no new
/// gradient buffers once the first one exists.
#[derive(Clone)]
pub struct Param<T: Element> {
    inner: Rc<ParamInner<T>>,
}

struct ParamInner<T: Element> {
    value: RefCell<Tensor<T>>,
    grad: GradSlot<T>,
}

impl<T: Element> std::fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param{:?}", self.inner.value.borrow().shape())
    }
}

impl<T: Element> Param<T> {
    /// A parameter with an initial value.
    pub fn new(value: Tensor<T>) -> Self {
        let value = value.to_contiguous();
        Param {
            inner: Rc::new(ParamInner {
                value: RefCell::new(value),
                grad: Rc::new(RefCell::new(None)),
            }),
        }
    }

    /// A leaf for this step's graph (shares the value's buffer, no copy).
    pub fn var(&self) -> Var<T> {
        Var::make_leaf(
            self.inner.value.borrow().clone(),
            Some(self.inner.grad.clone()),
        )
    }

    /// The current value.
    pub fn value(&self) -> Ref<'_, Tensor<T>> {
        self.inner.value.borrow()
    }

    /// The value, for in-place updates by an optimiser.
    pub fn value_mut(&self) -> RefMut<'_, Tensor<T>> {
        self.inner.value.borrow_mut()
    }

    /// Replace the value (shape must match; checked by callers such as checkpoint loading).
    pub fn set_value(&self, v: Tensor<T>) {
        *self.inner.value.borrow_mut() = v.to_contiguous();
    }

    /// The accumulated gradient, if any backward reached this parameter.
    pub fn grad(&self) -> Ref<'_, Option<Tensor<T>>> {
        self.inner.grad.borrow()
    }

    /// Mutable access to the gradient slot (optimisers, gradient clipping).
    pub fn grad_mut(&self) -> RefMut<'_, Option<Tensor<T>>> {
        self.inner.grad.borrow_mut()
    }

    /// Drop the gradient (PyTorch's `zero_grad(set_to_none=True)`): the next
    /// backward's gradient becomes the slot's buffer as computed, and until
    /// then the memory is free for the forward's activations. Training steps
    /// use this; [`Param::zero_grad`] keeps the buffer instead.
    pub fn clear_grad(&self) {
        *self.inner.grad.borrow_mut() = None;
    }

    /// Set the gradient to zero, keeping its buffer.
    pub fn zero_grad(&self) {
        if let Some(g) = self.inner.grad.borrow_mut().as_mut() {
            g.as_mut_slice().fill(T::zero());
        }
    }

    /// Shape of the value.
    pub fn shape(&self) -> Vec<usize> {
        self.inner.value.borrow().shape().to_vec()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.inner.value.borrow().len()
    }

    /// True for an empty parameter.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `other` is this same parameter (not a copy).
    pub fn ptr_eq(&self, other: &Param<T>) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}
