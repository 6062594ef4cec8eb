//! The one error type of the crate: what op failed, on which shapes, and why.

use std::fmt;

/// Result alias for fallible tensor ops.
pub type TensorResult<T> = Result<T, TensorError>;

/// An op refused its inputs. The message names the op, the shapes involved
/// and, where one axis is at fault, that axis (burn-style shape checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorError {
    /// Two shapes that had to agree do not.
    ShapeMismatch {
        /// The op that checked, e.g. `"add"` or `"matmul"`.
        op: &'static str,
        /// Shape of the left (first) operand.
        lhs: Vec<usize>,
        /// Shape of the right (second) operand.
        rhs: Vec<usize>,
        /// The offending axis, when one can be named.
        axis: Option<usize>,
        /// What was expected, in words.
        detail: String,
    },
    /// An argument is out of range for the tensor it applies to.
    InvalidArgument {
        /// The op that checked.
        op: &'static str,
        /// Shape of the tensor the argument applies to.
        shape: Vec<usize>,
        /// What is wrong.
        detail: String,
    },
}

impl TensorError {
    /// A shape mismatch between two operands.
    pub fn mismatch(
        op: &'static str,
        lhs: &[usize],
        rhs: &[usize],
        axis: Option<usize>,
        detail: impl Into<String>,
    ) -> Self {
        TensorError::ShapeMismatch {
            op,
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            axis,
            detail: detail.into(),
        }
    }

    /// A bad argument for a tensor of the given shape.
    pub fn invalid(op: &'static str, shape: &[usize], detail: impl Into<String>) -> Self {
        TensorError::InvalidArgument {
            op,
            shape: shape.to_vec(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorError::ShapeMismatch {
                op,
                lhs,
                rhs,
                axis,
                detail,
            } => {
                write!(f, "{op}: shapes {lhs:?} and {rhs:?} do not fit")?;
                if let Some(a) = axis {
                    write!(f, " at axis {a}")?;
                }
                write!(f, ": {detail}")
            }
            TensorError::InvalidArgument { op, shape, detail } => {
                write!(f, "{op}: invalid argument for shape {shape:?}: {detail}")
            }
        }
    }
}

impl std::error::Error for TensorError {}

/// Unwrap a fallible op's result, panicking with its message (the convenience
/// forms of every op go through here so the panic reads like the error).
#[track_caller]
pub(crate) fn or_panic<V>(r: TensorResult<V>) -> V {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
