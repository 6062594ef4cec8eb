//! What can go wrong in a backward pass.

use std::fmt;

/// Result alias for autograd calls.
pub type AutogradResult<T> = Result<T, AutogradError>;

/// A backward pass that cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutogradError {
    /// `backward()` was called on a value with more than one element.
    NotScalar {
        /// Its shape.
        shape: Vec<usize>,
    },
    /// `backward()` was called on a value that needs no gradient.
    NoGradient,
    /// A node's backward already ran: its graph was consumed by an earlier `backward()`.
    GraphConsumed {
        /// The op whose saved values are gone.
        op: &'static str,
    },
}

impl fmt::Display for AutogradError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AutogradError::NotScalar { shape } => {
                write!(f, "backward: the loss must be a scalar, got shape {shape:?} (reduce it with sum() or mean() first)")
            }
            AutogradError::NoGradient => write!(f, "backward: this value needs no gradient (no parameter or leaf reaches it, or it was made under no_grad)"),
            AutogradError::GraphConsumed { op } => write!(
                f,
                "backward: the graph through op `{op}` was already consumed by an earlier backward(); run the forward again"
            ),
        }
    }
}

impl std::error::Error for AutogradError {}
