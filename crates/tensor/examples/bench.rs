//! GEMM and convolution throughput of the `tensor` crate.
//!
//! `cargo run --release -p tensor --example bench` (add `-- --quick` for a
//! smoke run, `-- --lenet` for the LeNet++ table alone). Prints its
//! conditions, then sgemm GFLOP/s at n = 256..2048 and the forward,
//! input-gradient and weight-gradient GFLOP/s of SphereFace-20's 3x3 stride-1
//! convolutions at 112x96 input, batch 32, and of LeNet++'s 5x5 ones at 28x28,
//! batch 128. Each figure is the median of several timed runs after one
//! warm-up.

use rayon::prelude::*;
use std::time::Instant;
use tensor::conv::{conv2d, conv2d_backward};
use tensor::{Conv2dParams, Rng, Tensor};

/// Median seconds of `reps` runs of `f` after one warm-up run.
fn time_median(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[t.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let lenet_only = std::env::args().any(|a| a == "--lenet");
    let reps = if quick { 1 } else { 5 };
    let batch = if quick { 2 } else { 32 };
    println!("# tensor bench");
    println!("conditions:      {}", tensor::backend::describe());
    println!(
        "matrixmultiply threading: {}",
        if cfg!(feature = "matrixmultiply-threading") {
            "on"
        } else {
            "off (rayon panels)"
        }
    );
    println!("timing:          median of {reps} runs after 1 warm-up\n");

    let mut rng = Rng::new(0);
    if lenet_only {
        lenet_table(quick, reps, &mut rng);
        return;
    }
    println!(
        "{:<34} {:>10} {:>10}",
        "sgemm (row-major, C = A·B)", "ms", "GFLOP/s"
    );
    let mut sgemm_1024 = 0.0;
    for n in [256, 512, 1024, 2048] {
        if quick && n > 256 {
            break;
        }
        let a = Tensor::<f32>::rand_normal(&[n, n], 0.0, 1.0, &mut rng);
        let b = Tensor::<f32>::rand_normal(&[n, n], 0.0, 1.0, &mut rng);
        let s = time_median(reps, || {
            std::hint::black_box(a.matmul(&b));
        });
        let gf = 2.0 * (n as f64).powi(3) / s / 1e9;
        if n == 1024 {
            sgemm_1024 = gf;
        }
        println!("{:<34} {:>10.2} {:>10.1}", format!("n = {n}"), s * 1e3, gf);
    }

    let sphere = [
        (64, 64, 56, 48),
        (128, 128, 28, 24),
        (256, 256, 14, 12),
        (512, 512, 7, 6),
    ];
    let title = format!("SphereFace-20 3x3/s1/p1 convs, batch {batch}");
    let worst = conv_table(&title, &sphere, (3, batch, reps), &mut rng);
    lenet_table(quick, reps, &mut rng);
    #[cfg(target_arch = "x86_64")]
    if tensor::sgemm::avx512_enabled() {
        kernel_table(if quick { 1 } else { 9 }, &mut rng);
    }
    if sgemm_1024 > 0.0 {
        let peak = fma_peak();
        println!(
            "\nFP32 FMA peak measured on this machine (all threads, independent FMA chains): {peak:.0} GFLOP/s"
        );
        println!(
            "sgemm n=1024 / peak: {:.0}%; slowest conv pass / sgemm n=1024: {:.0}%",
            100.0 * sgemm_1024 / peak,
            100.0 * worst / sgemm_1024
        );
    }
}

/// [`conv_table`] on LeNet++'s 5x5 layers after the first (which has one
/// input channel), batch 128.
fn lenet_table(quick: bool, reps: usize, rng: &mut Rng) {
    let layers = [
        (32, 32, 28, 28),
        (32, 64, 14, 14),
        (64, 64, 14, 14),
        (64, 128, 7, 7),
        (128, 128, 7, 7),
    ];
    let batch = if quick { 2 } else { 128 };
    let title = format!("LeNet++ 5x5/s1/p2 convs, batch {batch}");
    conv_table(&title, &layers, (5, batch, reps), rng);
}

/// Time the three passes of `k x k`, stride-1, "same" convolutions on
/// `(c, o, h, w)` layers at batch `batch`; print effective GFLOP/s (the direct
/// sum's 2·N·O·C·k²·H·W, whatever the algorithm) and return the slowest.
fn conv_table(
    title: &str,
    layers: &[(usize, usize, usize, usize)],
    (k, batch, reps): (usize, usize, usize),
    rng: &mut Rng,
) -> f64 {
    println!("\n{title} (GFLOP/s: fwd, input-grad, weight-grad)");
    println!(
        "{:<24} {:>10} {:>10} {:>10}",
        "layer", "forward", "grad_in", "grad_w"
    );
    let p = Conv2dParams::new(1, k / 2);
    let mut worst: f64 = f64::MAX;
    for &(c, o, h, w) in layers {
        let x = Tensor::<f32>::rand_normal(&[batch, c, h, w], 0.0, 1.0, rng);
        let wt = Tensor::<f32>::rand_normal(&[o, c, k, k], 0.0, 0.05, rng);
        let gy = Tensor::<f32>::rand_normal(&[batch, o, h, w], 0.0, 1.0, rng);
        let flops = 2.0 * (batch * c * h * w * o * k * k) as f64;
        let f = time_median(reps, || {
            std::hint::black_box(conv2d(&x, &wt, None, p));
        });
        let gi = time_median(reps, || {
            std::hint::black_box(conv2d_backward(&gy, &x, &wt, p, (true, false, false)));
        });
        let gw = time_median(reps, || {
            std::hint::black_box(conv2d_backward(&gy, &x, &wt, p, (false, true, false)));
        });
        let r = [flops / f / 1e9, flops / gi / 1e9, flops / gw / 1e9];
        worst = worst.min(r.iter().cloned().fold(f64::MAX, f64::min));
        let name = if c == o {
            format!("{c}ch {h}x{w}")
        } else {
            format!("{c}->{o}ch {h}x{w}")
        };
        println!("{:<24} {:>10.1} {:>10.1} {:>10.1}", name, r[0], r[1], r[2]);
    }
    worst
}

/// The machine's FP32 multiply-add peak, measured: every rayon thread runs 12
/// independent chains of 8-lane fused multiply-adds for about 0.3 s (AVX2 + FMA;
/// a 512-bit FMA gives the same figure on a Zen 4, which splits it in two).
fn fma_peak() -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return f64::NAN;
        }
        #[target_feature(enable = "avx2,fma")]
        fn chains(n: usize) -> f32 {
            let mut acc = [_mm256_set1_ps(1.0); 12];
            let (x, y) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
            for _ in 0..n {
                for a in acc.iter_mut() {
                    *a = _mm256_fmadd_ps(*a, x, y);
                }
            }
            let mut out = [0.0f32; 8];
            // SAFETY: `out` holds 8 floats.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc[0]) };
            out[0]
        }
        let n = 30_000_000;
        let threads = rayon::current_num_threads();
        let t = Instant::now();
        let sink: f32 = (0..threads)
            .into_par_iter()
            // SAFETY: AVX2 and FMA were detected above.
            .map(|_| unsafe { chains(n) })
            .sum();
        std::hint::black_box(sink);
        (threads * n * 12 * 16) as f64 / t.elapsed().as_secs_f64() / 1e9
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        f64::NAN
    }
}

/// Our AVX-512 sgemm against `matrixmultiply`, one thread, on the GEMMs the
/// convolution passes run per image group (forward W·col; input-grad Wᵀ·dy,
/// A transposed; weight-grad dy·colᵀ, B transposed), interleaved in one run.
#[cfg(target_arch = "x86_64")]
fn kernel_table(reps: usize, rng: &mut Rng) {
    println!(
        "\nsingle-thread kernels on conv GEMM shapes, GFLOP/s (median of {reps})\n{:<40} {:>10} {:>14} {:>8}",
        "m x k x n (what)", "ours", "matrixmult.", "ratio"
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let mut shapes = vec![];
    for (o, k, cols) in [
        (64, 576, 2688),
        (128, 1152, 672),
        (256, 2304, 504),
        (512, 4608, 420),
    ] {
        shapes.push(("conv fwd NN", o, k, cols, false, false));
        shapes.push(("conv in-grad TN", k, o, cols, true, false));
        shapes.push(("conv w-grad NT", o, cols, k, false, true));
    }
    // one image of the last stage, then fc5 and the classifier (forward and both gradients)
    shapes.push(("conv4 one image NN", 512, 4608, 42, false, false));
    shapes.push(("fc5 fwd NN", 32, 21504, 512, false, false));
    shapes.push(("classifier fwd NT", 32, 512, 10572, false, true));
    shapes.push(("classifier dW TN", 10572, 32, 512, true, false));
    shapes.push(("classifier df NN", 32, 10572, 512, false, false));
    {
        for (name, m, kk, n, ta, tb) in shapes {
            let a = Tensor::<f32>::rand_normal(&[m * kk], 0.0, 1.0, rng).to_vec();
            let b = Tensor::<f32>::rand_normal(&[kk * n], 0.0, 1.0, rng).to_vec();
            let mut c = vec![0.0f32; m * n];
            let sa = if ta {
                (1, m as isize)
            } else {
                (kk as isize, 1)
            };
            let sb = if tb {
                (1, kk as isize)
            } else {
                (n as isize, 1)
            };
            let flops = 2.0 * (m * kk * n) as f64;
            let (mut ours, mut theirs) = (vec![], vec![]);
            pool.install(|| {
                for _ in 0..reps + 1 {
                    let t = Instant::now();
                    // SAFETY: the vectors hold m x kk, kk x n and m x n floats under these strides; AVX-512F checked.
                    unsafe {
                        tensor::sgemm::sgemm(
                            m,
                            kk,
                            n,
                            1.0,
                            a.as_ptr(),
                            sa,
                            b.as_ptr(),
                            sb,
                            0.0,
                            c.as_mut_ptr(),
                            (n as isize, 1),
                        )
                    };
                    ours.push(t.elapsed().as_secs_f64());
                    let t = Instant::now();
                    // SAFETY: as above.
                    unsafe {
                        matrixmultiply::sgemm(
                            m,
                            kk,
                            n,
                            1.0,
                            a.as_ptr(),
                            sa.0,
                            sa.1,
                            b.as_ptr(),
                            sb.0,
                            sb.1,
                            0.0,
                            c.as_mut_ptr(),
                            n as isize,
                            1,
                        )
                    };
                    theirs.push(t.elapsed().as_secs_f64());
                }
            });
            let med = |v: &mut Vec<f64>| {
                v.remove(0);
                v.sort_by(|x, y| x.partial_cmp(y).unwrap());
                flops / v[v.len() / 2] / 1e9
            };
            let (x, y) = (med(&mut ours), med(&mut theirs));
            println!(
                "{:<40} {:>10.1} {:>14.1} {:>8.2}",
                format!("{m}x{kk}x{n} ({name})"),
                x,
                y,
                x / y
            );
        }
    }
}
