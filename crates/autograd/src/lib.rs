//! # autograd
//!
//! Reverse-mode automatic differentiation over [`tensor`].
//!
//! ```
//! use autograd::Var;
//! use tensor::Tensor;
//!
//! // f(x, y) = sum(x · y + exp(x)); df/dx = y + exp(x), df/dy = x.
//! let x = Var::leaf(Tensor::<f64>::from_vec(&[2], vec![0.0, 1.0]).unwrap());
//! let y = Var::leaf(Tensor::<f64>::from_vec(&[2], vec![3.0, 4.0]).unwrap());
//! let f = x.mul(&y).add(&x.exp()).sum();
//! let grads = f.backward().unwrap();
//! assert_eq!(grads.get(&x).unwrap().to_vec(), vec![4.0, 4.0 + 1f64.exp()]);
//! assert_eq!(grads.get(&y).unwrap().to_vec(), vec![0.0, 1.0]);
//! ```
//!
//! A tiny network: parameters live across steps; each step builds a graph from
//! `param.var()`, and `backward` adds into the parameters' gradient slots.
//!
//! ```
//! use autograd::{Param, Var};
//! use tensor::{Rng, Tensor};
//!
//! let mut rng = Rng::new(0);
//! let w = Param::new(Tensor::<f32>::rand_normal(&[4, 3], 0.0, 0.5, &mut rng));
//! let x = Var::constant(Tensor::rand_normal(&[8, 4], 0.0, 1.0, &mut rng));
//! let labels = [0, 1, 2, 0, 1, 2, 0, 1];
//! for _ in 0..50 {
//!     w.zero_grad();
//!     let loss = x.matmul(&w.var()).softmax_cross_entropy(&labels);
//!     loss.backward().unwrap();
//!     let g = w.grad().clone().unwrap();
//!     w.value_mut().scale_add_assign(1.0, &g, -0.5); // plain SGD
//! }
//! ```
//!
//! ## Design
//! * **What is recorded.** An op whose inputs all need no gradient (or any op
//!   inside [`no_grad`]) returns a constant and records nothing. Otherwise it
//!   records a node: its parents' nodes and a one-shot backward closure that
//!   captures only what its maths needs (a product keeps `b` only if `a` needs a
//!   gradient; `exp` keeps its output, not its input). A node never keeps its
//!   own output value, so dropping an intermediate [`Var`] frees it unless a
//!   backward saved it.
//! * **When it is freed.** [`Var::backward`] walks the nodes from the loss
//!   towards the leaves; each closure runs once and is dropped with what it
//!   captured, and each node's gradient is dropped once passed on. After the
//!   walk only the parameters' gradient slots hold new memory. A second
//!   backward through the same graph is an error ([`AutogradError::GraphConsumed`]).
//! * **Parameters** ([`Param`]) hold a value and a gradient slot that
//!   [`Param::zero_grad`] clears in place (steady-state steps reallocate no
//!   gradient); [`Param::clear_grad`] drops it, so the forward can use that
//!   memory (what training steps do: it lowers the peak).
//! * **Adding an op.** Compute the value with `tensor`, then call
//!   [`Var::from_op`] with the inputs and a closure from the output gradient to
//!   one gradient per input (`None` for inputs that need none). That is all the
//!   built-in ops in `ops/` do, one function each, with the maths in a comment;
//!   `facelosses` registers its fused losses the same way. Test it with [`gradcheck`].

#![warn(missing_docs)]

mod error;
mod gradcheck;
mod graph;
mod ops;
mod param;

pub use error::{AutogradError, AutogradResult};
pub use gradcheck::{gradcheck, GradcheckReport, InputReport, Tolerance};
pub use graph::{is_grad_enabled, no_grad, BackwardFn, Gradients, Var};
pub use param::Param;
