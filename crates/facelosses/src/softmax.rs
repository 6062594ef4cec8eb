//! Plain softmax cross-entropy over a linear classifier.

use crate::check_inputs;
use autograd::Var;
use tensor::Element;

/// `mean_i CE(x_i Wᵀ + b, y_i)` with `W` as `[C, K]` rows and an optional bias `[C]`.
pub fn softmax_loss<T: Element>(
    x: &Var<T>,
    w: &Var<T>,
    bias: Option<&Var<T>>,
    labels: &[usize],
) -> Var<T> {
    check_inputs("softmax_loss", x.shape(), w.shape(), labels);
    let logits = x.matmul(&w.t());
    let logits = match bias {
        Some(b) => logits.add(b),
        None => logits,
    };
    logits.softmax_cross_entropy(labels)
}
