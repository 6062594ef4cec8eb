//! Every kernel against a naive f64 reference on seeded random shapes and values.

mod common;

use approx::assert_abs_diff_eq;
use common::*;
use tensor::conv::{conv2d, conv2d_backward};
use tensor::pool::{max_pool2d, try_avg_pool2d, try_avg_pool2d_backward, try_max_pool2d_backward};
use tensor::{Conv2dParams, Pool2dParams, Rng, Tensor};

/// Naive broadcasting: index into `t` (of shape `s`) from an output multi-index.
fn bget(t: &Tensor<f64>, out_idx: &[usize]) -> f64 {
    let off = out_idx.len() - t.ndim();
    let idx: Vec<usize> = t
        .shape()
        .iter()
        .enumerate()
        .map(|(i, &d)| if d == 1 { 0 } else { out_idx[off + i] })
        .collect();
    t.get(&idx).unwrap()
}

#[test]
fn binary_ops_broadcast_like_numpy() {
    let mut rng = Rng::new(1);
    let cases: &[(&[usize], &[usize])] = &[
        (&[3, 4], &[3, 4]),
        (&[3, 4], &[4]),
        (&[3, 1], &[1, 5]),
        (&[2, 3, 4, 5], &[3, 1, 1]),
        (&[1], &[7, 3]),
        (&[], &[2, 2]),
        (&[257, 129], &[257, 129]), // large: SIMD and parallel path
        (&[5, 3], &[5, 1]),         // one scalar per row: the per-lane path
        (&[2, 3, 7], &[2, 3, 1]),
        (&[3001, 37], &[3001, 1]), // per-lane path, parallel
    ];
    for (sa, sb) in cases {
        let a = rand(sa, &mut rng);
        let b = rand(sb, &mut rng).abs().add_scalar(0.5);
        for (name, got, f) in [
            ("add", a.add(&b), (|x, y| x + y) as fn(f64, f64) -> f64),
            ("sub", a.sub(&b), |x, y| x - y),
            ("mul", a.mul(&b), |x, y| x * y),
            ("div", a.div(&b), |x, y| x / y),
            ("max", a.maximum(&b), f64::max),
            ("min", a.minimum(&b), f64::min),
            ("pow", a.abs().pow(&b), |x: f64, y| x.abs().powf(y)),
            ("gt", a.gt(&b), |x, y| (x > y) as u8 as f64),
        ] {
            for_each_index(got.shape(), |i| {
                let want = f(bget(&a, i), bget(&b, i));
                assert_abs_diff_eq!(got.get(i).unwrap(), want, epsilon = 1e-12);
            });
            let _ = name;
        }
    }
}

#[test]
fn binary_ops_on_non_contiguous_views() {
    let mut rng = Rng::new(2);
    let a = rand(&[5, 7], &mut rng);
    let b = rand(&[7, 5], &mut rng);
    let got = a.add(&b.t());
    for_each_index(&[5, 7], |i| {
        assert_abs_diff_eq!(
            got.get(i).unwrap(),
            a.get(i).unwrap() + b.get(&[i[1], i[0]]).unwrap(),
            epsilon = 1e-12
        );
    });
    let s = a.slice_axis(1, 2, 6);
    let got = s.mul(&s);
    for_each_index(&[5, 4], |i| {
        let v = a.get(&[i[0], i[1] + 2]).unwrap();
        assert_abs_diff_eq!(got.get(i).unwrap(), v * v, epsilon = 1e-12);
    });
}

#[test]
fn unary_ops_match_std() {
    let mut rng = Rng::new(3);
    for n in [1, 13, 40_000] {
        let x = rand(&[n], &mut rng);
        let xv = x.to_vec();
        type Check = (Tensor<f64>, fn(f64) -> f64);
        let checks: Vec<Check> = vec![
            (x.neg(), |v| -v),
            (x.abs(), f64::abs),
            (x.exp(), f64::exp),
            (x.abs().ln(), |v| v.abs().ln()),
            (x.abs().sqrt(), |v| v.abs().sqrt()),
            (x.relu(), |v| v.max(0.0)),
            (x.sign(), |v| {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }),
            (x.clamp(-0.5, 0.25), |v| v.clamp(-0.5, 0.25)),
            (x.powi(3), |v| v.powi(3)),
            (x.abs().powf(1.5), |v| v.abs().powf(1.5)),
        ];
        for (got, f) in checks {
            for (g, &v) in got.to_vec().iter().zip(&xv) {
                assert_abs_diff_eq!(*g, f(v), epsilon = 1e-12);
            }
        }
    }
}

#[test]
fn f32_simd_path_matches_f64() {
    let mut rng = Rng::new(4);
    let a64 = rand(&[100_003], &mut rng);
    let b64 = rand(&[100_003], &mut rng);
    let (a, b) = (a64.cast::<f32>(), b64.cast::<f32>());
    let got = a.mul(&b).add(&a).cast::<f64>();
    let want = a64.mul(&b64).add(&a64);
    assert_close(&got, &want, 1e-5);
}

#[test]
fn prelu_forward_and_backward() {
    let mut rng = Rng::new(5);
    // planes of 10 and 37 elements: the vectorised body (8 lanes) and its tail
    for shape in [[3, 4, 5, 2], [2, 4, 1, 37]] {
        prelu_case(&shape, &mut rng);
    }
}

fn prelu_case(shape: &[usize], rng: &mut Rng) {
    let x = rand(shape, rng);
    let a = rand(&[4], rng);
    let y = x.prelu(&a);
    let g = rand(shape, rng);
    let (gx, ga) = x.try_prelu_backward(&a, &g).unwrap();
    let mut ga_want = [0.0; 4];
    for_each_index(x.shape(), |i| {
        let (v, s, gv) = (
            x.get(i).unwrap(),
            a.get(&[i[1]]).unwrap(),
            g.get(i).unwrap(),
        );
        assert_abs_diff_eq!(
            y.get(i).unwrap(),
            if v > 0.0 { v } else { s * v },
            epsilon = 1e-12
        );
        assert_abs_diff_eq!(
            gx.get(i).unwrap(),
            if v > 0.0 { gv } else { s * gv },
            epsilon = 1e-12
        );
        if v <= 0.0 {
            ga_want[i[1]] += v * gv;
        }
    });
    for (c, want) in ga_want.iter().enumerate() {
        assert_abs_diff_eq!(ga.get(&[c]).unwrap(), *want, epsilon = 1e-10);
    }
    // From the output: the same gradients when every slope is in (0, 1]
    // (x = y / a on the non-positive side), refused otherwise.
    let refused = y.try_prelu_backward_from_output(&a, &g);
    assert_eq!(refused.is_err(), !a.prelu_output_determines_input());
    let a = a.map(|s| 0.05 + 0.9 * s.abs().min(1.0));
    let y = x.prelu(&a);
    let (gx, ga) = x.try_prelu_backward(&a, &g).unwrap();
    let (gx_out, ga_out) = y.try_prelu_backward_from_output(&a, &g).unwrap();
    assert_eq!(gx.to_vec(), gx_out.to_vec());
    for (want, got) in ga.to_vec().iter().zip(ga_out.to_vec()) {
        assert_abs_diff_eq!(got, *want, epsilon = 1e-12);
    }
    let zero_slope = a.map(|_| 0.0);
    assert!(y.try_prelu_backward_from_output(&zero_slope, &g).is_err());
}

#[test]
fn reductions_along_every_axis() {
    let mut rng = Rng::new(6);
    let x = rand(&[3, 5, 4], &mut rng).permute(&[1, 0, 2]); // non-contiguous [5, 3, 4]
    for axis in 0..3 {
        let (s, m, mx, am) = (
            x.sum_axis(axis, true),
            x.mean_axis(axis, false),
            x.max_axis(axis, false),
            x.argmax_axis(axis),
        );
        let lse = x.logsumexp(axis, false);
        let sm = x.softmax(axis);
        let lsm = x.log_softmax(axis);
        let nrm = x.l2_norm(axis, false);
        let unit = x.l2_normalize(axis, 1e-12);
        let mut out_shape = x.shape().to_vec();
        out_shape.remove(axis);
        for_each_index(&out_shape, |o| {
            let lane: Vec<f64> = (0..x.shape()[axis])
                .map(|k| {
                    let mut i = o.to_vec();
                    i.insert(axis, k);
                    x.get(&i).unwrap()
                })
                .collect();
            let sum: f64 = lane.iter().sum();
            let max = lane.iter().cloned().fold(f64::MIN, f64::max);
            let arg = lane.iter().position(|&v| v == max).unwrap();
            let lse_want = lane.iter().map(|v| v.exp()).sum::<f64>().ln();
            let norm = lane.iter().map(|v| v * v).sum::<f64>().sqrt();
            let mut keep = o.to_vec();
            keep.insert(axis, 0);
            assert_abs_diff_eq!(s.get(&keep).unwrap(), sum, epsilon = 1e-12);
            assert_abs_diff_eq!(m.get(o).unwrap(), sum / lane.len() as f64, epsilon = 1e-12);
            assert_eq!(mx.get(o).unwrap(), max);
            assert_eq!(am[o], arg);
            assert_abs_diff_eq!(lse.get(o).unwrap(), lse_want, epsilon = 1e-12);
            assert_abs_diff_eq!(nrm.get(o).unwrap(), norm, epsilon = 1e-12);
            for (k, &v) in lane.iter().enumerate() {
                let mut i = o.to_vec();
                i.insert(axis, k);
                assert_abs_diff_eq!(
                    sm.get(&i).unwrap(),
                    v.exp() / lse_want.exp(),
                    epsilon = 1e-12
                );
                assert_abs_diff_eq!(lsm.get(&i).unwrap(), v - lse_want, epsilon = 1e-12);
                assert_abs_diff_eq!(unit.get(&i).unwrap(), v / norm, epsilon = 1e-12);
            }
        });
    }
}

#[test]
fn softmax_is_stable_for_huge_logits() {
    let x = Tensor::<f32>::from_vec(&[1, 3], vec![1000.0, 1001.0, -1e30]).unwrap();
    let s = x.softmax(1).to_vec();
    assert!(s.iter().all(|v| v.is_finite()));
    assert!((s[1] - 1.0 / (1.0 + (-1.0f32).exp())).abs() < 1e-6);
    assert!(x.logsumexp(1, false).item().unwrap().is_finite());
}

#[test]
fn sum_to_shape_reverses_broadcasting() {
    let mut rng = Rng::new(7);
    let g = rand(&[2, 3, 4], &mut rng);
    let r = g.sum_to_shape(&[3, 1]);
    for i in 0..3 {
        let want: f64 = (0..2)
            .flat_map(|a| (0..4).map(move |c| (a, c)))
            .map(|(a, c)| g.get(&[a, i, c]).unwrap())
            .sum();
        assert_abs_diff_eq!(r.get(&[i, 0]).unwrap(), want, epsilon = 1e-12);
    }
}

fn naive_matmul(a: &Tensor<f64>, b: &Tensor<f64>) -> Vec<f64> {
    let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k)
                .map(|p| a.get(&[i, p]).unwrap() * b.get(&[p, j]).unwrap())
                .sum();
        }
    }
    out
}

#[test]
fn matmul_with_transposed_operands() {
    let mut rng = Rng::new(8);
    for &(m, k, n) in &[
        (1, 1, 1),
        (3, 5, 7),
        (17, 33, 9),
        (130, 70, 150),
        (300, 129, 257),
    ] {
        let a = rand(&[m, k], &mut rng);
        let b = rand(&[k, n], &mut rng);
        let at = rand(&[k, m], &mut rng);
        let bt = rand(&[n, k], &mut rng);
        for (x, y) in [(&a, &b), (&at.t(), &b), (&a, &bt.t()), (&at.t(), &bt.t())] {
            let got = x.matmul(y);
            let want = Tensor::from_vec(&[m, n], naive_matmul(x, y)).unwrap();
            assert_close(&got, &want, 1e-10);
        }
        let got32 = a.cast::<f32>().matmul(&bt.cast::<f32>().t()).cast::<f64>();
        assert_close(
            &got32,
            &Tensor::from_vec(&[m, n], naive_matmul(&a, &bt.t())).unwrap(),
            1e-4,
        );
    }
}

#[test]
fn batched_matmul_and_batch_broadcast() {
    let mut rng = Rng::new(9);
    let a = rand(&[4, 3, 5], &mut rng);
    let b = rand(&[1, 6, 5], &mut rng);
    let got = a.matmul(&b.t());
    assert_eq!(got.shape(), &[4, 3, 6]);
    for i in 0..4 {
        let ai = a.slice_axis(0, i, i + 1).reshape(&[3, 5]);
        let bi = b.reshape(&[6, 5]).t();
        let want = naive_matmul(&ai, &bi);
        assert_eq!(got.slice_axis(0, i, i + 1).to_vec().len(), want.len());
        for (g, w) in got.slice_axis(0, i, i + 1).to_vec().iter().zip(want) {
            assert_abs_diff_eq!(*g, w, epsilon = 1e-10);
        }
    }
}

/// (input shape, weight shape, stride, padding) covering odd sizes, every stride/padding mix, 1x1 and non-square kernels.
/// (input shape, weight shape, stride, padding).
fn conv_cases() -> Vec<ConvCase> {
    vec![
        ([2, 3, 7, 6], [4, 3, 3, 3], (1, 1), (1, 1)),
        ([1, 2, 8, 9], [3, 2, 3, 3], (2, 2), (1, 1)),
        ([3, 1, 5, 5], [2, 1, 5, 5], (1, 1), (0, 0)),
        ([2, 4, 6, 7], [5, 4, 1, 1], (1, 1), (0, 0)),
        ([1, 3, 9, 7], [2, 3, 3, 2], (2, 1), (0, 1)),
        ([2, 2, 5, 6], [3, 2, 2, 3], (3, 2), (1, 0)),
        ([1, 2, 4, 4], [2, 2, 3, 3], (1, 2), (2, 2)),
        ([5, 3, 6, 6], [4, 3, 3, 3], (1, 1), (0, 0)),
    ]
}

#[test]
fn conv_forward_matches_direct_convolution() {
    check_conv_forward(&conv_cases(), 10);
}

#[test]
fn conv_gradients_match_finite_differences() {
    check_conv_gradients(&conv_cases(), 11);
}

#[test]
fn conv_weight_gradient_is_bit_reproducible() {
    // 8 channels: below the Winograd path's minimum, so im2col.
    check_wgrad_reproducible(3, &[(32, 8, 7, 6)]);
}

fn pool_cases() -> Vec<([usize; 4], Pool2dParams)> {
    vec![
        ([2, 3, 6, 6], Pool2dParams::new(2, 2, 0)),
        ([1, 2, 7, 5], Pool2dParams::new(2, 2, 0)),
        ([1, 2, 7, 5], Pool2dParams::new(3, 2, 1)),
        (
            [2, 1, 5, 8],
            Pool2dParams {
                kernel: (2, 3),
                stride: (1, 2),
                padding: (0, 1),
            },
        ),
        ([1, 1, 4, 4], Pool2dParams::new(3, 1, 0)),
    ]
}

#[test]
fn pooling_forward_matches_naive() {
    let mut rng = Rng::new(12);
    for (xs, p) in pool_cases() {
        let x = rand(&xs, &mut rng);
        let (mx, _) = max_pool2d(&x, p);
        let av = try_avg_pool2d(&x, p).unwrap();
        for_each_index(mx.shape(), |i| {
            let mut cells = vec![];
            for a in 0..p.kernel.0 {
                for b in 0..p.kernel.1 {
                    let r = (i[2] * p.stride.0 + a) as isize - p.padding.0 as isize;
                    let c = (i[3] * p.stride.1 + b) as isize - p.padding.1 as isize;
                    if r >= 0 && c >= 0 && (r as usize) < xs[2] && (c as usize) < xs[3] {
                        cells.push(x.get(&[i[0], i[1], r as usize, c as usize]).unwrap());
                    }
                }
            }
            assert_eq!(
                mx.get(i).unwrap(),
                cells.iter().cloned().fold(f64::MIN, f64::max)
            );
            assert_abs_diff_eq!(
                av.get(i).unwrap(),
                cells.iter().sum::<f64>() / (p.kernel.0 * p.kernel.1) as f64,
                epsilon = 1e-12
            );
        });
    }
}

#[test]
fn pooling_gradients_match_finite_differences() {
    let mut rng = Rng::new(13);
    for (xs, p) in pool_cases() {
        let x = rand(&xs, &mut rng);
        let (y, idx) = max_pool2d(&x, p);
        let r = rand(y.shape(), &mut rng);
        let g = try_max_pool2d_backward(&r, &idx, &xs).unwrap();
        assert_close(
            &g,
            &numeric_grad(&x, |x| max_pool2d(x, p).0.mul(&r).sum_all()),
            1e-6,
        );
        let ga = try_avg_pool2d_backward(&r, &xs, p).unwrap();
        assert_close(
            &ga,
            &numeric_grad(&x, |x| try_avg_pool2d(x, p).unwrap().mul(&r).sum_all()),
            1e-6,
        );
    }
}

#[test]
fn shape_ops_are_views_and_concat_joins() {
    let x = Tensor::<f64>::from_vec(&[2, 3], vec![0., 1., 2., 3., 4., 5.]).unwrap();
    assert_eq!(x.reshape(&[3, 2]).to_vec(), x.to_vec());
    assert_eq!(x.t().to_vec(), vec![0., 3., 1., 4., 2., 5.]);
    assert_eq!(x.t().reshape(&[6]).to_vec(), vec![0., 3., 1., 4., 2., 5.]);
    assert_eq!(x.slice_axis(1, 1, 3).to_vec(), vec![1., 2., 4., 5.]);
    let c = Tensor::concat(&[&x, &x.mul_scalar(10.0)], 0);
    assert_eq!(c.shape(), &[4, 3]);
    assert_eq!(c.get(&[3, 2]).unwrap(), 50.0);
    let c1 = Tensor::concat(&[&x, &x.slice_axis(1, 0, 1)], 1);
    assert_eq!(c1.to_vec(), vec![0., 1., 2., 0., 3., 4., 5., 3.]);
    assert_eq!(x.permute(&[1, 0]).shape(), &[3, 2]);
    assert_eq!(x.unsqueeze(0).shape(), &[1, 2, 3]);
}

#[test]
fn indexing_ops() {
    let x = Tensor::<f64>::from_vec(&[3, 2], vec![0., 1., 2., 3., 4., 5.]).unwrap();
    let s = x.index_select(0, &[2, 0, 2]);
    assert_eq!(s.to_vec(), vec![4., 5., 0., 1., 4., 5.]);
    let back = s.try_scatter_add_rows(&[2, 0, 2], 3).unwrap();
    assert_eq!(back.to_vec(), vec![0., 1., 0., 0., 8., 10.]);
    assert_eq!(
        x.try_gather_rows(&[1, 0, 1]).unwrap().to_vec(),
        vec![1., 2., 5.]
    );
    assert_eq!(
        Tensor::<f64>::one_hot(&[1, 0], 3).to_vec(),
        vec![0., 1., 0., 1., 0., 0.]
    );
    assert!(Tensor::<f64>::try_one_hot(&[3], 3)
        .unwrap_err()
        .to_string()
        .contains("label 3 out of range"));
    assert_eq!(x.index_select(1, &[1]).to_vec(), vec![1., 3., 5.]);
}

#[test]
fn random_fills_are_reproducible() {
    let a = Tensor::<f32>::rand_normal(&[1000], 0.0, 1.0, &mut Rng::new(42));
    let b = Tensor::<f32>::rand_normal(&[1000], 0.0, 1.0, &mut Rng::new(42));
    let c = Tensor::<f32>::rand_normal(&[1000], 0.0, 1.0, &mut Rng::new(43));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mean = a.mean_all();
    let var = a.mul(&a).mean_all() - mean * mean;
    assert!(
        mean.abs() < 0.1 && (var - 1.0).abs() < 0.1,
        "mean {mean} var {var}"
    );
    let u = Tensor::<f64>::rand_uniform(&[1000], -2.0, 3.0, &mut Rng::new(1));
    assert!(u.to_vec().iter().all(|&v| (-2.0..3.0).contains(&v)));
    // The first value of seed 0 is pinned, so a change of generator is noticed.
    assert_eq!(Rng::new(0).next_u64(), Rng::new(0).next_u64());
    let mut r = Rng::new(5);
    let st = r.state();
    let v = r.next_u64();
    assert_eq!(Rng::from_state(st).next_u64(), v);
}

#[test]
fn clamp_keeps_nan_visible() {
    let x = Tensor::<f32>::from_vec(&[3], vec![f32::NAN, -5.0, 5.0]).unwrap();
    let c = x.clamp(-1.0, 1.0).to_vec();
    assert!(c[0].is_nan());
    assert_eq!(&c[1..], &[-1.0, 1.0]);
}

#[test]
fn conv_with_padding_wider_than_the_image() {
    // Kernel columns that see only padding for some outputs, on a 1-pixel-wide image.
    let mut rng = Rng::new(15);
    for (xs, ws, s, pd) in [
        ([1, 2, 3, 1], [2, 2, 3, 3], (1, 1), (2, 2)),
        ([2, 1, 1, 2], [1, 1, 3, 3], (2, 2), (2, 2)),
        ([1, 1, 4, 3], [2, 1, 2, 5], (1, 3), (0, 2)),
    ] {
        let p = Conv2dParams {
            stride: s,
            padding: pd,
        };
        let (x, w) = (rand(&xs, &mut rng), rand(&ws, &mut rng));
        assert_close(
            &conv2d(&x, &w, None, p),
            &naive_conv(&x, &w, None, p),
            1e-10,
        );
        let r = rand(conv2d(&x, &w, None, p).shape(), &mut rng);
        let g = conv2d_backward(&r, &x, &w, p, (true, true, false));
        assert_close(
            g.input.as_ref().unwrap(),
            &numeric_grad(&x, |x| conv2d(x, &w, None, p).mul(&r).sum_all()),
            1e-6,
        );
        assert_close(
            g.weight.as_ref().unwrap(),
            &numeric_grad(&w, |w| conv2d(&x, w, None, p).mul(&r).sum_all()),
            1e-6,
        );
    }
}

#[test]
fn transpose_8x8_moves_every_element_to_its_mirror() {
    // strided source and destination, f32 (the AVX path where the CPU has
    // it) and f64 (the portable loop)
    let (ss, ds) = (11, 13);
    let src: Vec<f32> = (0..7 * ss + 8).map(|v| v as f32).collect();
    let mut dst = vec![-1.0f32; 7 * ds + 8];
    tensor::simd::transpose_8x8(&src, ss, &mut dst, ds);
    let src64: Vec<f64> = src.iter().map(|&v| v as f64).collect();
    let mut dst64 = vec![-1.0f64; dst.len()];
    tensor::simd::transpose_8x8(&src64, ss, &mut dst64, ds);
    for p in 0..8 {
        for i in 0..8 {
            assert_eq!(dst[p * ds + i], src[i * ss + p], "f32 ({p}, {i})");
            assert_eq!(dst64[p * ds + i], src64[i * ss + p], "f64 ({p}, {i})");
        }
    }
    // elements between the rows are not touched
    assert_eq!(dst[8], -1.0);
    assert_eq!(dst64[8], -1.0);
}

#[test]
fn max_pool_keeps_the_first_maximum_and_the_first_nan() {
    // one 2x2 window per case, cells in window order (row-major); the 2x2/2
    // path and the general path (the same window at stride 1) must agree
    let nan = f64::NAN;
    let cases: [([f64; 4], usize); 5] = [
        ([1.0, 3.0, 3.0, 2.0], 1),
        ([5.0, 5.0, 5.0, 5.0], 0),
        ([1.0, nan, 7.0, nan], 1),
        ([nan, 9.0, 1.0, 2.0], 0),
        ([0.0, -1.0, 2.0, 2.0], 2),
    ];
    for (cells, first) in cases {
        let x = Tensor::from_vec(&[1, 1, 2, 2], cells.to_vec()).unwrap();
        let (y, idx) = max_pool2d(&x, Pool2dParams::new(2, 2, 0));
        assert_eq!(idx, vec![first], "2x2/2 on {cells:?}");
        let v = y.get(&[0, 0, 0, 0]).unwrap();
        assert!(v == cells[first] || (v.is_nan() && cells[first].is_nan()));
        let general = Pool2dParams {
            kernel: (2, 2),
            stride: (1, 1),
            padding: (0, 0),
        };
        let (_, idx) = max_pool2d(&x, general);
        assert_eq!(idx, vec![first], "2x2/1 on {cells:?}");
    }
}
