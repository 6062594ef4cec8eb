//! `gradcheck`: analytic gradients against central finite differences, in f64.

use crate::{no_grad, Var};
use std::fmt;
use tensor::{Rng, Tensor};

/// The step and the error bounds of a gradient check. An element passes when
/// `|analytic - numeric| <= atol + rtol · |numeric|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute error allowed.
    pub atol: f64,
    /// Error allowed relative to the numeric gradient.
    pub rtol: f64,
}

impl Tolerance {
    /// For smooth ops in f64: step 1e-6, atol 1e-6, rtol 1e-5.
    pub const SMOOTH: Tolerance = Tolerance {
        eps: 1e-6,
        atol: 1e-6,
        rtol: 1e-5,
    };
    /// For long chains (a whole network, a composite loss): atol and rtol 1e-4.
    pub const LOOSE: Tolerance = Tolerance {
        eps: 1e-6,
        atol: 1e-4,
        rtol: 1e-4,
    };
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance::SMOOTH
    }
}

/// Errors of one input's gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct InputReport {
    /// Largest |analytic - numeric| over the input's elements.
    pub max_abs_err: f64,
    /// Largest |analytic - numeric| / max(|numeric|, |analytic|) over elements whose gradient is not tiny.
    pub max_rel_err: f64,
    /// Flat index of the element that failed first, if any.
    pub first_failure: Option<usize>,
}

/// The outcome of [`gradcheck`]: one report per input.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckReport {
    /// Per input, in the order given.
    pub inputs: Vec<InputReport>,
    /// The tolerance used.
    pub tolerance: Tolerance,
}

impl GradcheckReport {
    /// True when every element of every input passed.
    pub fn passed(&self) -> bool {
        self.inputs.iter().all(|r| r.first_failure.is_none())
    }
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.inputs.iter().enumerate() {
            writeln!(
                f,
                "input {i}: max abs err {:.3e}, max rel err {:.3e}{}",
                r.max_abs_err,
                r.max_rel_err,
                r.first_failure
                    .map_or(String::new(), |j| format!(", FAILS at element {j}"))
            )?;
        }
        write!(f, "tolerance {:?}", self.tolerance)
    }
}

/// Check the gradients of `f` with respect to each of `inputs`.
///
/// A non-scalar output is reduced to the scalar `Σ out · R` with a fixed random
/// `R`, so every output element takes part. Every input element is perturbed
/// by ±eps and `f` re-run without recording.
pub fn gradcheck(
    f: impl Fn(&[Var<f64>]) -> Var<f64>,
    inputs: &[Tensor<f64>],
    tol: Tolerance,
) -> GradcheckReport {
    let leaves: Vec<Var<f64>> = inputs.iter().map(|t| Var::leaf(t.clone())).collect();
    let out = f(&leaves);
    let projection = Tensor::rand_normal(out.shape(), 0.0, 1.0, &mut Rng::new(0x5eed));
    let project = |v: &Var<f64>| {
        if v.value().len() == 1 {
            v.sum()
        } else {
            v.mul(&Var::constant(projection.clone())).sum()
        }
    };
    let loss = project(&out);
    let grads = loss
        .backward()
        .expect("gradcheck: the function's output must depend on its inputs");
    let scalar_at = |values: &[Tensor<f64>]| -> f64 {
        no_grad(|| {
            let vars: Vec<Var<f64>> = values.iter().map(|t| Var::constant(t.clone())).collect();
            project(&f(&vars)).value().item().expect("scalar")
        })
    };
    let mut reports = vec![];
    for (i, leaf) in leaves.iter().enumerate() {
        let analytic = grads
            .get(leaf)
            .map_or_else(|| vec![0.0; inputs[i].len()], |g| g.to_vec());
        let mut values: Vec<Tensor<f64>> = inputs.to_vec();
        let mut flat = inputs[i].to_vec();
        let mut report = InputReport {
            max_abs_err: 0.0,
            max_rel_err: 0.0,
            first_failure: None,
        };
        for j in 0..flat.len() {
            let orig = flat[j];
            flat[j] = orig + tol.eps;
            values[i] = Tensor::from_vec(inputs[i].shape(), flat.clone()).expect("same size");
            let up = scalar_at(&values);
            flat[j] = orig - tol.eps;
            values[i] = Tensor::from_vec(inputs[i].shape(), flat.clone()).expect("same size");
            let down = scalar_at(&values);
            flat[j] = orig;
            let numeric = (up - down) / (2.0 * tol.eps);
            let err = (analytic[j] - numeric).abs();
            report.max_abs_err = report.max_abs_err.max(err);
            let scale = numeric.abs().max(analytic[j].abs());
            if scale > tol.atol {
                report.max_rel_err = report.max_rel_err.max(err / scale);
            }
            if (err > tol.atol + tol.rtol * numeric.abs() || !err.is_finite())
                && report.first_failure.is_none()
            {
                report.first_failure = Some(j);
            }
        }
        reports.push(report);
    }
    GradcheckReport {
        inputs: reports,
        tolerance: tol,
    }
}
