//! Paired statistics for "does the regularizer help?": the paired t-test with
//! its confidence interval over runs (folds or seeds), and McNemar's exact
//! test over pooled per-pair decisions. Written here from the textbook
//! definitions (Student's t through the regularised incomplete beta function,
//! evaluated by its continued fraction), so no statistics crate is needed.

use serde::{Deserialize, Serialize};

/// The result of a paired comparison of two conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedResult {
    /// Number of pairs (runs, or test pairs for McNemar).
    pub n: usize,
    /// Mean of (treated − baseline); for McNemar, the difference in accuracy.
    pub mean_diff: f64,
    /// 95% confidence interval of `mean_diff` (t-interval; absent for McNemar).
    pub ci95: Option<[f64; 2]>,
    /// Two-sided p-value.
    pub p_value: f64,
    /// The test's name.
    pub test: String,
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; |error| < 1e-13 over the range used here).
pub fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |s, (i, &c)| s + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// The regularised incomplete beta function I_x(a, b), by the continued
/// fraction of Numerical Recipes §6.4 (modified Lentz), using the symmetry
/// I_x(a, b) = 1 − I_{1−x}(b, a) where that converges faster.
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    d = 1.0 / if d.abs() < tiny { tiny } else { d };
    let mut f = d;
    for m in 1..300 {
        let m = m as f64;
        for numerator in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            d = 1.0 / if d.abs() < tiny { tiny } else { d };
            c = 1.0 + numerator / c;
            if c.abs() < tiny {
                c = tiny;
            }
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * f / a
}

/// P(|T| > |t|) for Student's t with `df` degrees of freedom.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return if t.is_nan() { f64::NAN } else { 0.0 };
    }
    incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// The `q` quantile (0.5 < q < 1) of Student's t with `df` degrees of freedom, by bisection.
pub fn t_quantile(q: f64, df: f64) -> f64 {
    let tail = 2.0 * (1.0 - q);
    let (mut lo, mut hi) = (0.0, 1e6);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_two_sided_p(mid, df) > tail {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Mean and sample standard deviation (n − 1 in the denominator).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n.max(1.0);
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// The paired t-test of `treated[i] − baseline[i]`: mean difference, its 95%
/// t-interval and the two-sided p-value. `None` with fewer than two pairs.
pub fn paired_t(baseline: &[f64], treated: &[f64]) -> Option<PairedResult> {
    assert_eq!(baseline.len(), treated.len(), "paired_t: unpaired inputs");
    let diffs: Vec<f64> = treated.iter().zip(baseline).map(|(t, b)| t - b).collect();
    let n = diffs.len();
    if n < 2 {
        return None;
    }
    let (mean, sd) = mean_sd(&diffs);
    let df = (n - 1) as f64;
    let se = sd / (n as f64).sqrt();
    let half = t_quantile(0.975, df) * se;
    let p_value = if se > 0.0 {
        t_two_sided_p(mean / se, df)
    } else if mean == 0.0 {
        1.0
    } else {
        0.0
    };
    Some(PairedResult {
        n,
        mean_diff: mean,
        ci95: Some([mean - half, mean + half]),
        p_value,
        test: "paired t-test, two-sided".into(),
    })
}

/// McNemar's exact test on paired binary outcomes (`true` = correct):
/// only discordant pairs count; under the null hypothesis the `b` pairs that
/// only the baseline got right and the `c` that only the treated got right
/// are Binomial(b + c, 1/2). Two-sided p = min(1, 2 P(X ≤ min(b, c))).
pub fn mcnemar_exact(baseline: &[bool], treated: &[bool]) -> PairedResult {
    assert_eq!(baseline.len(), treated.len(), "mcnemar: unpaired inputs");
    let b = baseline
        .iter()
        .zip(treated)
        .filter(|(x, y)| **x && !**y)
        .count();
    let c = baseline
        .iter()
        .zip(treated)
        .filter(|(x, y)| !**x && **y)
        .count();
    let n = b + c;
    let k = b.min(c);
    let ln_half_n = n as f64 * 0.5f64.ln();
    let tail: f64 = (0..=k)
        .map(|i| {
            (ln_gamma(n as f64 + 1.0) - ln_gamma(i as f64 + 1.0) - ln_gamma((n - i) as f64 + 1.0)
                + ln_half_n)
                .exp()
        })
        .sum();
    PairedResult {
        n: baseline.len(),
        mean_diff: (c as f64 - b as f64) / baseline.len().max(1) as f64,
        ci95: None,
        p_value: if n == 0 { 1.0 } else { (2.0 * tail).min(1.0) },
        test: format!("McNemar exact (binomial), {b} pairs right only without, {c} only with"),
    }
}
