//! A-Softmax (SphereFace) with its annealed λ.

use crate::{check_inputs, NORM_EPS};
use autograd::Var;
use tensor::{Element, Tensor};

/// SphereFace's annealing of λ: `λ(it) = max(λ_min, base · (1 + γ·it)^(-power))`,
/// where `it` is [`ASoftmax::iteration`], incremented before each forward. The
/// schedule is configuration (serialisable); the counter is training state.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LambdaSchedule {
    /// λ at iteration 0.
    pub base: f64,
    /// γ.
    pub gamma: f64,
    /// The power.
    pub power: f64,
    /// The floor λ_min.
    pub lambda_min: f64,
}

impl LambdaSchedule {
    /// SphereFace's Caffe model: base 1000, γ 0.12, power 1, λ_min 5.
    pub const SPHEREFACE: LambdaSchedule = LambdaSchedule {
        base: 1000.0,
        gamma: 0.12,
        power: 1.0,
        lambda_min: 5.0,
    };

    /// λ at iteration `it`.
    pub fn lambda_at(&self, it: u64) -> f64 {
        (self.base * (1.0 + self.gamma * it as f64).powf(-self.power)).max(self.lambda_min)
    }
}

impl Default for LambdaSchedule {
    fn default() -> Self {
        Self::SPHEREFACE
    }
}

/// The A-Softmax loss with margin `m` ∈ {1, 2, 3, 4} and its λ schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ASoftmax {
    /// Angular margin (1 is the modified softmax without margin).
    pub m: u32,
    /// λ annealing.
    pub schedule: LambdaSchedule,
    /// Forwards run so far (training state: a checkpoint must carry it).
    pub iteration: u64,
}

impl ASoftmax {
    /// A-Softmax with margin `m` and SphereFace's schedule. Fails for m outside 1..=4.
    pub fn new(m: u32) -> Result<Self, String> {
        if !(1..=4).contains(&m) {
            return Err(format!(
                "A-Softmax margin m = {m} is not supported: choose 1, 2, 3 or 4"
            ));
        }
        Ok(ASoftmax {
            m,
            schedule: LambdaSchedule::SPHEREFACE,
            iteration: 0,
        })
    }

    /// λ of the most recent forward (of iteration 0 before any).
    pub fn lambda(&self) -> f64 {
        self.schedule.lambda_at(self.iteration)
    }

    /// Advance λ, then compute the loss.
    pub fn forward<T: Element>(&mut self, x: &Var<T>, w: &Var<T>, labels: &[usize]) -> Var<T> {
        self.iteration += 1;
        let lambda = self.lambda();
        a_softmax_loss(x, w, labels, self.m, lambda)
    }
}

/// Chebyshev polynomial `T_m(c)` for m in 1..=4, as graph ops (no `powf` of a negative base).
fn chebyshev<T: Element>(c: &Var<T>, m: u32) -> Var<T> {
    let t = T::from_f64_lossy;
    let c2 = || c.mul(c);
    match m {
        1 => c.clone(),
        2 => c2().mul_scalar(t(2.0)).add_scalar(t(-1.0)),
        3 => c2().mul(c).mul_scalar(t(4.0)).sub(&c.mul_scalar(t(3.0))),
        4 => {
            let sq = c2();
            sq.mul(&sq)
                .mul_scalar(t(8.0))
                .sub(&sq.mul_scalar(t(8.0)))
                .add_scalar(t(1.0))
        }
        _ => panic!("A-Softmax margin m = {m} is not supported: choose 1, 2, 3 or 4"),
    }
}

/// A-Softmax for a given λ. `W` rows are normalised inside; `x` is not.
///
/// `cos θ_j = <x, W_j> / (|x| |W_j|)` clamped to [-1, 1];
/// `ψ(θ) = (-1)^k T_m(cos θ) - 2k`, `k = ⌊m θ / π⌋` held constant;
/// target logit `|x| (λ cos θ_y + ψ(θ_y)) / (1 + λ)`, other logits `|x| cos θ_j`.
pub fn a_softmax_loss<T: Element>(
    x: &Var<T>,
    w: &Var<T>,
    labels: &[usize],
    m: u32,
    lambda: f64,
) -> Var<T> {
    check_inputs("a_softmax_loss", x.shape(), w.shape(), labels);
    assert!(
        lambda >= 0.0,
        "a_softmax_loss: λ = {lambda} must not be negative"
    );
    let t = T::from_f64_lossy;
    let n = labels.len();
    let x_norm = x
        .mul(x)
        .sum_axis(1, true)
        .sqrt()
        .clamp(t(NORM_EPS), t(f64::MAX)); // [N, 1]
    let cos = x
        .matmul(&w.l2_normalize(1, t(NORM_EPS)).t())
        .div(&x_norm)
        .clamp(t(-1.0), t(1.0));
    let cos_y = cos.gather_rows(labels); // [N]
    let (sign, two_k): (Vec<T>, Vec<T>) = cos_y
        .value()
        .to_vec()
        .iter()
        .map(|&c| {
            let k = (m as f64 * c.to_f64().unwrap_or(1.0).acos() / std::f64::consts::PI).floor();
            (t(if k as i64 % 2 == 0 { 1.0 } else { -1.0 }), t(2.0 * k))
        })
        .unzip();
    let psi = chebyshev(&cos_y, m)
        .mul(&Var::constant(
            Tensor::from_vec(&[n], sign).expect("N values"),
        ))
        .sub(&Var::constant(
            Tensor::from_vec(&[n], two_k).expect("N values"),
        ));
    let target = cos_y
        .mul_scalar(t(lambda))
        .add(&psi)
        .mul_scalar(t(1.0 / (1.0 + lambda)));
    let x_norm_row = x_norm.reshape(&[n]);
    let delta = target.sub(&cos_y).mul(&x_norm_row); // target logit minus the plain one
    let one_hot = Var::constant(Tensor::one_hot(labels, w.shape()[0]));
    let logits = cos.mul(&x_norm).add(&delta.reshape(&[n, 1]).mul(&one_hot));
    logits.softmax_cross_entropy(labels)
}
