//! # facelosses
//!
//! The losses of deep face recognition, and the paper this project reproduces.
//!
//! Conventions (those of `tests/fixtures/face_losses.json`, PyTorch float64):
//! features `x` are `N x K` rows, class weights `W` are `C x K` rows (one per
//! class), labels are `N` class indices, and every classification loss is the
//! mean cross-entropy over the batch.
//!
//! | loss | logits |
//! |---|---|
//! | [`softmax_loss`] | `x Wᵀ + b` |
//! | [`ASoftmax`] (SphereFace) | `|x| cos θ_j`, target `|x| (λ cos θ_y + ψ(θ_y)) / (1 + λ)` |
//! | [`cosface_loss`] | `s (cos θ_j - m [j = y])` |
//! | [`arcface_loss`] | `s cos θ_j`, target `s cos(θ_y + m)` |
//! | [`normface_loss`] | `s cos θ_j` |
//! | [`CenterLoss`] | `1/(2N) Σ |x_i - c_{y_i}|²` (no logits) |
//!
//! RegularFace's **exclusive regularizer** ([`exclusive`]) adds
//! `λ_r · (1/C) Σ_i max_{j≠i} cos(W_i, W_j)`, pushing every class away from its
//! nearest neighbour; [`SeparabilityStats`] summarises `Sep_i = max_{j≠i} cos(W_i, W_j)`.
//!
//! Each loss is built from `autograd` ops (so its gradient is the composition
//! of gradient-checked rules) except the exclusive regularizer, a custom op
//! with a tiled forward and a sparse hand-written backward.

#![warn(missing_docs)]

mod asoftmax;
mod center;
pub mod exclusive;
mod normalized;
mod separability;
mod softmax;

pub use asoftmax::{a_softmax_loss, ASoftmax, LambdaSchedule};
pub use center::CenterLoss;
pub use exclusive::{
    exclusive_regularizer, nearest_neighbours, ExclusiveRegularizer, NearestNeighbours,
    NeighbourCache,
};
pub use normalized::{arcface_loss, cosface_loss, cosine_matrix, normface_loss};
pub use separability::SeparabilityStats;
pub use softmax::softmax_loss;

/// Floor on norms when normalising rows, so a zero row gives zeros, not NaN.
pub const NORM_EPS: f64 = 1e-12;

/// Check the classifier inputs shared by every loss: `x` is `[N, K]`, `w` is
/// `[C, K]`, one label per row, each below `C`. Panics with a message naming the
/// loss, the shapes and the offending label.
pub(crate) fn check_inputs(loss: &str, x: &[usize], w: &[usize], labels: &[usize]) {
    assert!(
        x.len() == 2 && w.len() == 2,
        "{loss}: features {x:?} and weights {w:?} must both be 2-D ([N, K] and [C, K])"
    );
    assert!(
        x[1] == w[1],
        "{loss}: feature size {} of x {x:?} differs from {} of W {w:?} (axis 1)",
        x[1],
        w[1]
    );
    assert!(
        labels.len() == x[0],
        "{loss}: {} labels for {} feature rows",
        labels.len(),
        x[0]
    );
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= w[0]) {
        panic!(
            "{loss}: label {l} at row {i} is out of range for {} classes",
            w[0]
        );
    }
}
