//! Batch-norm kernels against a naive f64 reference, on odd sizes, including
//! a channel whose mean is far larger than its spread (the case a one-pass
//! variance gets wrong without its shift).

use tensor::norm::{batch_norm_grad_sums, batch_norm_input_grad, batch_norm_stats, channel_affine};
use tensor::{Rng, Tensor};

fn naive_stats(xs: &[f64], n: usize, c: usize, s: usize) -> Vec<(f64, f64)> {
    (0..c)
        .map(|ch| {
            let v: Vec<f64> = (0..n)
                .flat_map(|i| xs[(i * c + ch) * s..][..s].to_vec())
                .collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64;
            (mean, var)
        })
        .collect()
}

#[test]
fn stats_match_the_two_pass_reference_also_far_from_zero() {
    for &(n, c, s) in &[(3, 5, 37), (1, 2, 1), (7, 3, 17), (2, 4, 113)] {
        let mut rng = Rng::new((n * c * s) as u64);
        let mut x = Tensor::<f32>::rand_normal(&[n, c, s], 0.0, 1.0, &mut rng).to_vec();
        // channel 1: mean 1000, spread 0.01
        for i in 0..n {
            for v in &mut x[(i * c + 1) * s..][..s] {
                *v = 1000.0 + *v * 0.01;
            }
        }
        let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let want = naive_stats(&xd, n, c, s);
        let got = batch_norm_stats(&x, n, c, s);
        for (ch, ((m, v), (wm, wv))) in got.iter().zip(&want).enumerate() {
            assert!(
                ((*m as f64) - wm).abs() <= 1e-6 * wm.abs().max(1.0),
                "{n}x{c}x{s} ch {ch}: mean {m} vs {wm}"
            );
            assert!(
                ((*v as f64) - wv).abs() <= 1e-4 * wv + 1e-9,
                "{n}x{c}x{s} ch {ch}: var {v} vs {wv}"
            );
        }
    }
}

#[test]
fn affine_and_gradient_kernels_match_the_reference() {
    let (n, c, s) = (3, 5, 29);
    let mut rng = Rng::new(4);
    let x = Tensor::<f64>::rand_normal(&[n, c, s], 0.5, 2.0, &mut rng).to_vec();
    let g = Tensor::<f64>::rand_normal(&[n, c, s], 0.0, 1.0, &mut rng).to_vec();
    let scale: Vec<f64> = (0..c).map(|i| 0.5 + i as f64).collect();
    let shift: Vec<f64> = (0..c).map(|i| -(i as f64)).collect();
    let mut y = vec![0.0; x.len()];
    channel_affine(&x, &mut y, c, s, &scale, &shift);
    for (i, (&yv, &xv)) in y.iter().zip(&x).enumerate() {
        let ch = (i / s) % c;
        assert!((yv - (xv * scale[ch] + shift[ch])).abs() < 1e-12);
    }
    let mean: Vec<f64> = naive_stats(&x, n, c, s).iter().map(|p| p.0).collect();
    let sums = batch_norm_grad_sums(&g, &x, n, c, s, &mean);
    for ch in 0..c {
        let (mut sg, mut sgc) = (0.0, 0.0);
        for i in 0..n {
            for j in 0..s {
                let at = (i * c + ch) * s + j;
                sg += g[at];
                sgc += g[at] * (x[at] - mean[ch]);
            }
        }
        assert!(
            (sums[ch].0 - sg).abs() < 1e-10 && (sums[ch].1 - sgc).abs() < 1e-10,
            "channel {ch}"
        );
    }
    let k: Vec<[f64; 4]> = (0..c)
        .map(|ch| [1.5, 0.25 * ch as f64, -0.5, mean[ch]])
        .collect();
    let mut dx = vec![0.0; x.len()];
    batch_norm_input_grad(&g, &x, &mut dx, c, s, &k);
    for (i, &d) in dx.iter().enumerate() {
        let [a, b, cc, m] = k[(i / s) % c];
        assert!((d - (a * g[i] - b - cc * (x[i] - m))).abs() < 1e-12);
    }
}
