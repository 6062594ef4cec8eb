//! Weight initialisers (deterministic for a given `Rng`).
//!
//! Fan-in and fan-out follow PyTorch: for a weight `[out, in, k...]`,
//! `fan_in = in · Πk`, `fan_out = out · Πk`.

use tensor::{Element, Rng, Tensor};

fn fans(shape: &[usize]) -> (f64, f64) {
    let receptive: usize = shape.iter().skip(2).product();
    let fan_in = shape.get(1).copied().unwrap_or(1) * receptive;
    let fan_out = shape.first().copied().unwrap_or(1) * receptive;
    (fan_in as f64, fan_out as f64)
}

/// Xavier/Glorot uniform: U(-a, a), `a = √(6 / (fan_in + fan_out))`.
pub fn xavier_uniform<T: Element>(shape: &[usize], rng: &mut Rng) -> Tensor<T> {
    let (fi, fo) = fans(shape);
    let a = (6.0 / (fi + fo)).sqrt();
    Tensor::rand_uniform(shape, -a, a, rng)
}

/// Gaussian N(0, σ²).
pub fn gaussian<T: Element>(shape: &[usize], sigma: f64, rng: &mut Rng) -> Tensor<T> {
    Tensor::rand_normal(shape, 0.0, sigma, rng)
}

/// Kaiming/He normal for ReLU-like layers with negative slope `a`:
/// N(0, σ²), `σ = √(2 / ((1 + a²) · fan_in))`.
pub fn kaiming_normal<T: Element>(
    shape: &[usize],
    negative_slope: f64,
    rng: &mut Rng,
) -> Tensor<T> {
    let (fi, _) = fans(shape);
    Tensor::rand_normal(
        shape,
        0.0,
        (2.0 / ((1.0 + negative_slope * negative_slope) * fi)).sqrt(),
        rng,
    )
}

/// PyTorch's `kaiming_normal_(w, mode='fan_out', nonlinearity='relu')`, as
/// insightface initialises its convolutions and linear layers:
/// N(0, σ²), `σ = √(2 / fan_out)`, `fan_out = shape[0] · Π shape[2..]`.
pub fn kaiming_normal_fan_out<T: Element>(shape: &[usize], rng: &mut Rng) -> Tensor<T> {
    let fan_out = shape[0] * shape[2..].iter().product::<usize>();
    Tensor::rand_normal(shape, 0.0, (2.0 / fan_out.max(1) as f64).sqrt(), rng)
}
