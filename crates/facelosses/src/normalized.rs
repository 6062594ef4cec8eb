//! Losses on cosine logits: NormFace, CosFace (additive cosine margin) and
//! ArcFace (additive angular margin). Both `x` and `W` rows are normalised.

use crate::{check_inputs, NORM_EPS};
use autograd::Var;
use tensor::{Element, Tensor};

/// `cos θ_ij = <x̂_i, Ŵ_j>`, `[N, C]`.
pub fn cosine_matrix<T: Element>(x: &Var<T>, w: &Var<T>) -> Var<T> {
    let eps = T::from_f64_lossy(NORM_EPS);
    x.l2_normalize(1, eps).matmul(&w.l2_normalize(1, eps).t())
}

/// Add `delta_i` to logit `(i, y_i)` of `logits` (`delta` is `[N]`).
fn add_at_targets<T: Element>(logits: &Var<T>, delta: &Var<T>, labels: &[usize]) -> Var<T> {
    let c = logits.shape()[1];
    let one_hot = Var::constant(Tensor::one_hot(labels, c));
    logits.add(&delta.reshape(&[labels.len(), 1]).mul(&one_hot))
}

/// NormFace: `CE(s cos θ)`.
pub fn normface_loss<T: Element>(x: &Var<T>, w: &Var<T>, labels: &[usize], s: f64) -> Var<T> {
    check_inputs("normface_loss", x.shape(), w.shape(), labels);
    cosine_matrix(x, w)
        .mul_scalar(T::from_f64_lossy(s))
        .softmax_cross_entropy(labels)
}

/// CosFace / AM-Softmax: `CE(s (cos θ_j - m [j = y]))`.
pub fn cosface_loss<T: Element>(
    x: &Var<T>,
    w: &Var<T>,
    labels: &[usize],
    s: f64,
    m: f64,
) -> Var<T> {
    check_inputs("cosface_loss", x.shape(), w.shape(), labels);
    let cos = cosine_matrix(x, w);
    let margin = Var::constant(Tensor::full(&[labels.len()], T::from_f64_lossy(-m)));
    add_at_targets(&cos, &margin, labels)
        .mul_scalar(T::from_f64_lossy(s))
        .softmax_cross_entropy(labels)
}

/// ArcFace: target logit `s cos(θ_y + m)`, others `s cos θ_j`.
///
/// `cos(θ + m) = cos θ cos m - sin θ sin m` with `sin θ = √(1 - cos² θ)`.
/// When `θ + m > π` the angle would wrap and the logit rise again; there the
/// usual fallback `cos θ - m sin m` (InsightFace's) keeps it monotone.
pub fn arcface_loss<T: Element>(
    x: &Var<T>,
    w: &Var<T>,
    labels: &[usize],
    s: f64,
    m: f64,
) -> Var<T> {
    check_inputs("arcface_loss", x.shape(), w.shape(), labels);
    let t = T::from_f64_lossy;
    let cos = cosine_matrix(x, w);
    let cos_y = cos.gather_rows(labels);
    // 1 - cos² floored just above 0 so the square root's gradient stays finite.
    let sin_y = cos_y
        .mul(&cos_y)
        .neg()
        .add_scalar(t(1.0))
        .clamp(t(1e-12), t(1.0))
        .sqrt();
    let with_margin = cos_y
        .mul_scalar(t(m.cos()))
        .sub(&sin_y.mul_scalar(t(m.sin())));
    let wraps: Vec<bool> = cos_y
        .value()
        .to_vec()
        .iter()
        .map(|&c| c.to_f64().unwrap_or(0.0) <= (std::f64::consts::PI - m).cos())
        .collect();
    let keep = Tensor::from_vec(
        &[labels.len()],
        wraps
            .iter()
            .map(|&w| if w { t(0.0) } else { t(1.0) })
            .collect(),
    )
    .expect("N values");
    let fallback = cos_y.add_scalar(t(-m * m.sin()));
    let target = with_margin
        .mul(&Var::constant(keep.clone()))
        .add(&fallback.mul(&Var::constant(keep.neg().add_scalar(t(1.0)))));
    add_at_targets(&cos, &target.sub(&cos_y), labels)
        .mul_scalar(t(s))
        .softmax_cross_entropy(labels)
}
