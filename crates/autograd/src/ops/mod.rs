//! Built-in ops. Each op is one function: its forward, its backward as a
//! closure handed to [`Var::from_op`](crate::Var::from_op), and the maths of the
//! backward in a comment above it. `g` is always the gradient of the output.

mod conv;
mod elementwise;
mod linalg;
mod norm;
mod reduce;
mod shape;

/// Flags of which inputs need a gradient, captured by a backward closure.
pub(crate) fn needs<T: tensor::Element>(inputs: &[&crate::Var<T>]) -> Vec<bool> {
    inputs.iter().map(|v| v.requires_grad()).collect()
}
