//! The dot-product path of `gemm` (a few rows of A, both operands contiguous
//! along k: a Linear layer's `x·Wᵀ` at batch 1-4) against a naive f64
//! product: every row count it takes and the first it does not, f32 and f64,
//! alpha/beta with a NaN-filled output for beta 0, serial and split over
//! threads, and results that do not depend on the thread count.

use tensor::gemm::{gemm, MatRef};
use tensor::{Element, Rng};

/// `a (m x k) · wᵀ (w: n x k)` in f64.
fn naive(m: usize, k: usize, n: usize, a: &[f64], w: &[f64]) -> Vec<f64> {
    (0..m * n)
        .map(|q| {
            (0..k)
                .map(|p| a[(q / n) * k + p] * w[(q % n) * k + p])
                .sum()
        })
        .collect()
}

fn check<T: Element>(m: usize, k: usize, n: usize, parallel: bool, rng: &mut Rng, tol: f64) {
    let a64: Vec<f64> = (0..m * k).map(|_| rng.normal()).collect();
    let w64: Vec<f64> = (0..n * k).map(|_| rng.normal()).collect();
    let (a, w): (Vec<T>, Vec<T>) = (
        a64.iter().map(|&v| T::from_f64_lossy(v)).collect(),
        w64.iter().map(|&v| T::from_f64_lossy(v)).collect(),
    );
    let exact = naive(m, k, n, &a64, &w64);
    for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
        let c0: Vec<f64> = (0..m * n).map(|i| (i % 7) as f64 - 3.0).collect();
        let mut c: Vec<T> = if beta == 0.0 {
            vec![T::from_f64_lossy(f64::NAN); m * n]
        } else {
            c0.iter().map(|&v| T::from_f64_lossy(v)).collect()
        };
        gemm(
            T::from_f64_lossy(alpha),
            MatRef::new(&a, m, k),
            MatRef::new(&w, n, k).t(),
            T::from_f64_lossy(beta),
            &mut c,
            parallel,
        );
        for (q, got) in c.iter().enumerate() {
            let want = alpha * exact[q] + beta * c0[q];
            let got = got.to_f64().unwrap();
            assert!(
                (got - want).abs() <= tol * (1.0 + (k as f64).sqrt()),
                "{m}x{k}·({n}x{k})ᵀ alpha {alpha} beta {beta} parallel {parallel}: \
                 element {q} is {got}, want {want}"
            );
        }
    }
}

#[test]
fn few_rows_times_a_transposed_matrix_match_a_naive_product() {
    let mut rng = Rng::new(11);
    for m in 1..=5 {
        for &(k, n) in &[(1, 1), (17, 3), (100, 33), (4100, 520)] {
            for parallel in [false, true] {
                check::<f32>(m, k, n, parallel, &mut rng, 1e-5);
                check::<f64>(m, k, n, parallel, &mut rng, 1e-12);
            }
        }
    }
}

#[test]
fn the_dot_path_does_not_depend_on_the_thread_count() {
    let mut rng = Rng::new(5);
    let (k, n) = (21504, 512);
    let x: Vec<f32> = (0..k).map(|_| rng.normal() as f32).collect();
    let w: Vec<f32> = (0..n * k).map(|_| rng.normal() as f32).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a pool");
        pool.install(|| {
            let mut c = vec![0.0f32; n];
            gemm(
                1.0,
                MatRef::new(&x, 1, k),
                MatRef::new(&w, n, k).t(),
                0.0,
                &mut c,
                true,
            );
            c
        })
    };
    assert_eq!(run(1), run(3), "one thread and three differ");
}
