//! The paired statistics against hand-computed (and textbook) values.

use regularface::stats::{
    incomplete_beta, ln_gamma, mcnemar_exact, mean_sd, paired_t, t_quantile, t_two_sided_p,
};

fn close(got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol, "got {got}, want {want}");
}

#[test]
fn special_functions_match_known_values() {
    close(ln_gamma(1.0), 0.0, 1e-13);
    close(ln_gamma(5.0), 24f64.ln(), 1e-12);
    close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-12);
    // I_x(1, 1) = x; I_x(2, 1) = x²; I_x(a, b) + I_{1-x}(b, a) = 1
    close(incomplete_beta(0.3, 1.0, 1.0), 0.3, 1e-12);
    close(incomplete_beta(0.3, 2.0, 1.0), 0.09, 1e-12);
    close(
        incomplete_beta(0.7, 2.5, 4.0) + incomplete_beta(0.3, 4.0, 2.5),
        1.0,
        1e-12,
    );
    // Student's t tables: t_{0.975, 4} = 2.776445, t_{0.975, 9} = 2.262157;
    // df = 1 is Cauchy: P(|T| > 1) = 1/2.
    close(t_quantile(0.975, 4.0), 2.776_445, 1e-6);
    close(t_quantile(0.975, 9.0), 2.262_157, 1e-6);
    close(t_two_sided_p(1.0, 1.0), 0.5, 1e-12);
    close(t_two_sided_p(0.0, 7.0), 1.0, 1e-12);
}

#[test]
fn paired_t_on_a_hand_computed_example() {
    // differences 1..5: mean 3, sd √2.5, se √0.5, t = 3/√0.5 = 4.2426 on 4 df;
    // R's t.test(1:5): p = 0.01324, 95% CI [1.036757, 4.963243].
    let base = [0.0; 5];
    let treated = [1.0, 2.0, 3.0, 4.0, 5.0];
    let r = paired_t(&base, &treated).unwrap();
    assert_eq!(r.n, 5);
    close(r.mean_diff, 3.0, 1e-12);
    close(r.p_value, 0.013_24, 1e-5);
    let [lo, hi] = r.ci95.unwrap();
    close(lo, 1.036_757, 1e-6);
    close(hi, 4.963_243, 1e-6);
    let (m, sd) = mean_sd(&treated);
    close(m, 3.0, 1e-12);
    close(sd, 2.5f64.sqrt(), 1e-12);
    // shifting both conditions changes nothing; no difference at all gives p = 1
    let shifted: Vec<f64> = treated.iter().map(|t| t + 10.0).collect();
    let base10 = [10.0; 5];
    assert_eq!(paired_t(&base10, &shifted).unwrap().p_value, r.p_value);
    assert_eq!(paired_t(&treated, &treated).unwrap().p_value, 1.0);
    assert!(
        paired_t(&[1.0], &[2.0]).is_none(),
        "one pair has no variance"
    );
}

#[test]
fn mcnemar_exact_on_a_hand_computed_example() {
    // 2 pairs right only without, 10 right only with, 88 agreeing:
    // P(X <= 2 | Bin(12, 1/2)) = (1 + 12 + 66) / 4096, two-sided 0.0385742.
    let mut base = vec![true; 100];
    let mut treated = vec![true; 100];
    base[..10].iter_mut().for_each(|b| *b = false);
    treated[10..12].iter_mut().for_each(|t| *t = false);
    let r = mcnemar_exact(&base, &treated);
    close(r.p_value, 2.0 * 79.0 / 4096.0, 1e-12);
    close(r.mean_diff, 0.08, 1e-12);
    assert_eq!(r.n, 100);
    assert!(
        r.test.contains("2 pairs right only without, 10 only with"),
        "{}",
        r.test
    );
    // symmetric discordance: p = 1; no discordance: p = 1
    let alternating: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
    let opposite: Vec<bool> = alternating.iter().map(|b| !b).collect();
    assert_eq!(mcnemar_exact(&alternating, &opposite).p_value, 1.0);
    assert_eq!(mcnemar_exact(&base, &base).p_value, 1.0);
}
