//! Elementwise ops. Binary ops broadcast; the backward sums each input's
//! gradient back to that input's shape (`sum_to_shape`).

use super::needs;
use crate::Var;
use tensor::{Element, Rng, Tensor};

impl<T: Element> Var<T> {
    /// `a + b`.  da = g, db = g (each summed back to its shape).
    pub fn add(&self, b: &Var<T>) -> Var<T> {
        let (sa, sb) = (self.shape().to_vec(), b.shape().to_vec());
        Var::from_op("add", self.value().add(b.value()), &[self, b], move |g| {
            vec![Some(g.sum_to_shape(&sa)), Some(g.sum_to_shape(&sb))]
        })
    }

    /// `a - b`.  da = g, db = -g.
    pub fn sub(&self, b: &Var<T>) -> Var<T> {
        let (sa, sb) = (self.shape().to_vec(), b.shape().to_vec());
        Var::from_op("sub", self.value().sub(b.value()), &[self, b], move |g| {
            vec![Some(g.sum_to_shape(&sa)), Some(g.neg().sum_to_shape(&sb))]
        })
    }

    /// `a * b`.  da = g·b, db = g·a. Saves b only if a needs a gradient, and a only if b does.
    pub fn mul(&self, b: &Var<T>) -> Var<T> {
        let need = needs(&[self, b]);
        let (sa, sb) = (self.shape().to_vec(), b.shape().to_vec());
        let keep_b = need[0].then(|| b.value().clone());
        let keep_a = need[1].then(|| self.value().clone());
        Var::from_op("mul", self.value().mul(b.value()), &[self, b], move |g| {
            vec![
                keep_b.map(|b| g.mul(&b).sum_to_shape(&sa)),
                keep_a.map(|a| g.mul(&a).sum_to_shape(&sb)),
            ]
        })
    }

    /// `a / b`.  da = g / b, db = -g·a / b² = -g·z / b (z the output).
    pub fn div(&self, b: &Var<T>) -> Var<T> {
        let need = needs(&[self, b]);
        let (sa, sb) = (self.shape().to_vec(), b.shape().to_vec());
        let z = self.value().div(b.value());
        let bv = b.value().clone();
        let keep_z = need[1].then(|| z.clone());
        Var::from_op("div", z, &[self, b], move |g| {
            let ga = g.div(&bv);
            let gb = keep_z.map(|z| ga.mul(&z).neg().sum_to_shape(&sb));
            vec![need[0].then(|| ga.sum_to_shape(&sa)), gb]
        })
    }

    /// `-x`.  dx = -g.
    pub fn neg(&self) -> Var<T> {
        Var::from_op("neg", self.value().neg(), &[self], |g| vec![Some(g.neg())])
    }

    /// `x + s`.  dx = g.
    pub fn add_scalar(&self, s: T) -> Var<T> {
        Var::from_op("add_scalar", self.value().add_scalar(s), &[self], |g| {
            vec![Some(g.clone())]
        })
    }

    /// `x · s`.  dx = g·s.
    pub fn mul_scalar(&self, s: T) -> Var<T> {
        Var::from_op(
            "mul_scalar",
            self.value().mul_scalar(s),
            &[self],
            move |g| vec![Some(g.mul_scalar(s))],
        )
    }

    /// `e^x`.  dx = g·z: the output is saved, not the input.
    pub fn exp(&self) -> Var<T> {
        let z = self.value().exp();
        let keep = z.clone();
        Var::from_op("exp", z, &[self], move |g| vec![Some(g.mul(&keep))])
    }

    /// `ln x`.  dx = g / x.
    pub fn ln(&self) -> Var<T> {
        let x = self.value().clone();
        Var::from_op("ln", x.ln(), &[self], move |g| vec![Some(g.div(&x))])
    }

    /// `√x`.  dx = g / (2z), from the output.
    pub fn sqrt(&self) -> Var<T> {
        let z = self.value().sqrt();
        let keep = z.clone();
        let two = T::one() + T::one();
        Var::from_op("sqrt", z, &[self], move |g| {
            vec![Some(g.div(&keep.mul_scalar(two)))]
        })
    }

    /// `x^p`.  dx = g·p·x^(p-1).
    pub fn powf(&self, p: T) -> Var<T> {
        let x = self.value().clone();
        Var::from_op("powf", x.powf(p), &[self], move |g| {
            vec![Some(g.mul(&x.powf(p - T::one()).mul_scalar(p)))]
        })
    }

    /// `|x|`.  dx = g·sign(x) (0 at 0).
    pub fn abs(&self) -> Var<T> {
        let s = self.value().sign();
        Var::from_op("abs", self.value().abs(), &[self], move |g| {
            vec![Some(g.mul(&s))]
        })
    }

    /// `max(x, 0)`.  dx = g where z > 0, else 0 (from the output).
    pub fn relu(&self) -> Var<T> {
        let z = self.value().relu();
        let keep = z.clone();
        Var::from_op("relu", z, &[self], move |g| {
            vec![Some(g.mul(&keep.gt_scalar(T::zero())))]
        })
    }

    /// `x` limited to `[lo, hi]`.  dx = g where lo < x < hi, else 0.
    pub fn clamp(&self, lo: T, hi: T) -> Var<T> {
        let x = self.value().clone();
        Var::from_op("clamp", x.clamp(lo, hi), &[self], move |g| {
            vec![Some(g.mul(&x.gt_scalar(lo).mul(&x.lt_scalar(hi))))]
        })
    }

    /// PReLU with a slope per channel (axis 1).  dx = g where x > 0, else a_c·g;
    /// da_c = Σ over channel c where x ≤ 0 of g·x.
    ///
    /// With every slope in (0, 1] (as trained PReLUs have: they start at 0.25)
    /// the backward keeps the output y, which the next layer holds anyway, and
    /// reads x off it (x = y where y > 0, else y / a_c); the input, usually a
    /// convolution's output of the activation's full size, is then freed after
    /// the forward. That cut SphereFace-20's peak memory at batch 32 (see
    /// docs/performance.md). Other slopes keep x.
    pub fn prelu(&self, slope: &Var<T>) -> Var<T> {
        let (x, a) = (self.value().clone(), slope.value().clone());
        let need = needs(&[self, slope]);
        let y = x.prelu(&a);
        let from_output = a.prelu_output_determines_input();
        let kept = if from_output { y.clone() } else { x };
        Var::from_op("prelu", y, &[self, slope], move |g| {
            let (gx, ga) = if from_output {
                kept.try_prelu_backward_from_output(&a, g)
            } else {
                kept.try_prelu_backward(&a, g)
            }
            .expect("shapes checked in the forward");
            vec![need[0].then_some(gx), need[1].then_some(ga)]
        })
    }

    /// Inverted dropout: zero each element with probability `p`, scale the rest
    /// by 1/(1-p). dx = g·mask/(1-p). The identity when `training` is false.
    pub fn dropout(&self, p: f64, training: bool, rng: &mut Rng) -> Var<T> {
        assert!(
            (0.0..1.0).contains(&p),
            "dropout: probability {p} must lie in [0, 1)"
        );
        if !training || p == 0.0 {
            return self.clone();
        }
        let keep = T::from_f64_lossy(1.0 / (1.0 - p));
        let mask: Vec<T> = (0..self.value().len())
            .map(|_| if rng.uniform() < p { T::zero() } else { keep })
            .collect();
        let mask = Tensor::from_vec(self.shape(), mask).expect("same size");
        Var::from_op("dropout", self.value().mul(&mask), &[self], move |g| {
            vec![Some(g.mul(&mask))]
        })
    }
}
