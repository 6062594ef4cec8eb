//! Our AVX-512 sgemm (`tensor::sgemm`) against a naive f64 product: edges of
//! every block size, transposed operands, alpha/beta, strided output. Skipped,
//! with a printed reason, on CPUs without AVX-512F.
#![cfg(target_arch = "x86_64")]

use tensor::sgemm::{avx512_enabled, sgemm};
use tensor::Rng;

fn naive(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                .sum();
        }
    }
    c
}

/// Edges of every block size, transposed operands, alpha/beta and a NaN-filled C with beta 0.
#[test]
fn matches_a_naive_product_on_awkward_shapes() {
    if !avx512_enabled() {
        eprintln!("skipped: this CPU has no AVX-512F");
        return;
    }
    let mut rng = Rng::new(7);
    let shapes = [
        (1, 1, 1),
        (8, 192, 32),
        (9, 193, 33),
        (7, 5, 3),
        (300, 400, 70),
        (64, 27, 3100),
        (3, 1000, 5),
    ];
    for &(m, k, n) in &shapes {
        let a: Vec<f32> = (0..m * k).map(|_| rng.normal() as f32).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.normal() as f32).collect();
        let want = naive(m, k, n, &a, &b);
        // transposed copies, to read A and B through column-major strides
        let at: Vec<f32> = (0..k * m).map(|q| a[(q % m) * k + q / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|q| b[(q % k) * n + q / k]).collect();
        for (trans_a, trans_b, beta) in [
            (false, false, 0.0),
            (true, false, 0.5),
            (false, true, 1.0),
            (true, true, 0.0),
        ] {
            let c0: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.01).collect();
            let mut c = if beta == 0.0 {
                vec![f32::NAN; m * n]
            } else {
                c0.clone()
            };
            let (ap, sa) = if trans_a {
                (at.as_ptr(), (1, m as isize))
            } else {
                (a.as_ptr(), (k as isize, 1))
            };
            let (bp, sb) = if trans_b {
                (bt.as_ptr(), (1, k as isize))
            } else {
                (b.as_ptr(), (n as isize, 1))
            };
            // SAFETY: sizes and strides describe the vectors above; the CPU check passed.
            unsafe {
                sgemm(
                    m,
                    k,
                    n,
                    2.0,
                    ap,
                    sa,
                    bp,
                    sb,
                    beta,
                    c.as_mut_ptr(),
                    (n as isize, 1),
                )
            };
            for q in 0..m * n {
                let expect = 2.0 * want[q] + beta as f64 * c0[q] as f64;
                let tol = 1e-4 * (k as f64).sqrt() * (1.0 + expect.abs());
                assert!(
                    (c[q] as f64 - expect).abs() <= tol,
                    "{m}x{k}x{n} ta {trans_a} tb {trans_b} beta {beta}: c[{q}] = {} vs {expect}",
                    c[q]
                );
            }
        }
    }
}

#[test]
fn a_strided_output_and_zero_depth() {
    if !avx512_enabled() {
        eprintln!("skipped: this CPU has no AVX-512F");
        return;
    }
    // C written column-major (csc = m) and k = 0 scaling C by beta.
    let (m, k, n) = (10, 4, 40);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
    let want = naive(m, k, n, &a, &b);
    let mut c = vec![1.0f32; m * n];
    // SAFETY: sizes and strides describe the vectors above.
    unsafe {
        sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            (k as isize, 1),
            b.as_ptr(),
            (n as isize, 1),
            -1.0,
            c.as_mut_ptr(),
            (1, m as isize),
        )
    };
    for i in 0..m {
        for j in 0..n {
            assert_eq!(c[j * m + i] as f64, want[i * n + j] - 1.0);
        }
    }
    let mut c = vec![3.0f32; 6];
    // SAFETY: k = 0, so A and B are not read.
    unsafe {
        sgemm(
            2,
            0,
            3,
            1.0,
            a.as_ptr(),
            (0, 1),
            b.as_ptr(),
            (3, 1),
            0.5,
            c.as_mut_ptr(),
            (3, 1),
        )
    };
    assert_eq!(c, vec![1.5; 6]);
}
