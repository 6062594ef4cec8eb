//! Every op against central finite differences in f64, on three or more random
//! shapes each, including broadcasting and odd sizes.

use autograd::{gradcheck, Tolerance, Var};
use tensor::{Conv2dParams, Pool2dParams, Rng, Tensor};

fn rand(shape: &[usize], rng: &mut Rng) -> Tensor<f64> {
    Tensor::rand_normal(shape, 0.0, 1.0, rng)
}

/// Positive values away from 0 (for ln, sqrt, div, powf).
fn positive(shape: &[usize], rng: &mut Rng) -> Tensor<f64> {
    Tensor::rand_uniform(shape, 0.5, 2.0, rng)
}

/// Values kept away from a kink at 0 (relu, abs, prelu, clamp, max).
fn away_from_zero(shape: &[usize], rng: &mut Rng) -> Tensor<f64> {
    rand(shape, rng).map(|v| {
        if v.abs() < 0.05 {
            v + 0.1f64.copysign(v)
        } else {
            v
        }
    })
}

fn check(name: &str, f: impl Fn(&[Var<f64>]) -> Var<f64>, inputs: &[&Tensor<f64>], tol: Tolerance) {
    let inputs: Vec<Tensor<f64>> = inputs.iter().map(|&t| t.clone()).collect();
    let r = gradcheck(f, &inputs, tol);
    assert!(
        r.passed(),
        "{name} on {:?}:\n{r}",
        inputs
            .iter()
            .map(|t| t.shape().to_vec())
            .collect::<Vec<_>>()
    );
}

const BINARY_SHAPES: &[(&[usize], &[usize])] = &[
    (&[3, 4], &[3, 4]),
    (&[2, 3, 5], &[5]),
    (&[4, 1], &[1, 3]),
    (&[], &[2, 3]),
    (&[7], &[1]),
];

#[test]
fn binary_ops_with_broadcasting() {
    let mut rng = Rng::new(1);
    for (sa, sb) in BINARY_SHAPES {
        let (a, b) = (rand(sa, &mut rng), rand(sb, &mut rng));
        check("add", |v| v[0].add(&v[1]), &[&a, &b], Tolerance::SMOOTH);
        check("sub", |v| v[0].sub(&v[1]), &[&a, &b], Tolerance::SMOOTH);
        check("mul", |v| v[0].mul(&v[1]), &[&a, &b], Tolerance::SMOOTH);
        check(
            "div",
            |v| v[0].div(&v[1]),
            &[&a, &positive(sb, &mut rng)],
            Tolerance::SMOOTH,
        );
        // one side constant: only the other gets (and needs) a gradient
        let bc = b.clone();
        check(
            "mul by constant",
            move |v| v[0].mul(&Var::constant(bc.clone())),
            &[&a],
            Tolerance::SMOOTH,
        );
    }
}

#[test]
fn unary_ops() {
    let mut rng = Rng::new(2);
    for shape in [&[5][..], &[3, 4], &[2, 3, 5]] {
        let x = rand(shape, &mut rng);
        let p = positive(shape, &mut rng);
        let k = away_from_zero(shape, &mut rng);
        check("neg", |v| v[0].neg(), &[&x], Tolerance::SMOOTH);
        check("exp", |v| v[0].exp(), &[&x], Tolerance::SMOOTH);
        check("ln", |v| v[0].ln(), &[&p], Tolerance::SMOOTH);
        check("sqrt", |v| v[0].sqrt(), &[&p], Tolerance::SMOOTH);
        check("powf", |v| v[0].powf(2.5), &[&p], Tolerance::SMOOTH);
        check("abs", |v| v[0].abs(), &[&k], Tolerance::SMOOTH);
        check("relu", |v| v[0].relu(), &[&k], Tolerance::SMOOTH);
        check(
            "clamp",
            |v| v[0].clamp(-0.52, 0.48),
            &[&k],
            Tolerance::SMOOTH,
        );
        check(
            "scalars",
            |v| v[0].mul_scalar(-1.5).add_scalar(0.3),
            &[&x],
            Tolerance::SMOOTH,
        );
    }
}

#[test]
fn prelu_slope_and_input() {
    let mut rng = Rng::new(3);
    for shape in [&[2, 3][..], &[2, 4, 3, 3], &[1, 5, 2, 7]] {
        let x = away_from_zero(shape, &mut rng);
        // slopes in (0, 1]: the backward reads x off the output
        let a = Tensor::rand_uniform(&[shape[1]], 0.1, 0.4, &mut rng);
        check("prelu", |v| v[0].prelu(&v[1]), &[&x, &a], Tolerance::SMOOTH);
        // a negative slope and one above 1: the backward keeps the input
        let a = Tensor::rand_uniform(&[shape[1]], -0.5, 1.5, &mut rng);
        let mut a = a.to_vec();
        (a[0], a[1]) = (-0.3, 1.4);
        let a = Tensor::from_vec(&[shape[1]], a).unwrap();
        check("prelu", |v| v[0].prelu(&v[1]), &[&x, &a], Tolerance::SMOOTH);
    }
}

#[test]
fn dropout_is_seeded_and_differentiable() {
    let x = rand(&[4, 6], &mut Rng::new(4));
    let run = |seed| {
        Var::constant(x.clone())
            .dropout(0.3, true, &mut Rng::new(seed))
            .value()
            .clone()
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
    for shape in [&[4, 6][..], &[7], &[2, 3, 3]] {
        let x = rand(shape, &mut Rng::new(5));
        check(
            "dropout",
            |v| v[0].dropout(0.4, true, &mut Rng::new(11)),
            &[&x],
            Tolerance::SMOOTH,
        );
    }
    assert_eq!(
        Var::constant(x.clone())
            .dropout(0.5, false, &mut Rng::new(1))
            .value(),
        &x
    );
}

#[test]
fn matmul_2d_batched_and_transposed() {
    let mut rng = Rng::new(6);
    for (m, k, n) in [(1, 1, 1), (3, 5, 2), (4, 7, 6)] {
        let (a, b) = (rand(&[m, k], &mut rng), rand(&[k, n], &mut rng));
        check(
            "matmul",
            |v| v[0].matmul(&v[1]),
            &[&a, &b],
            Tolerance::SMOOTH,
        );
        let (at, bt) = (rand(&[k, m], &mut rng), rand(&[n, k], &mut rng));
        check(
            "matmul Aᵀ·Bᵀ",
            |v| v[0].t().matmul(&v[1].t()),
            &[&at, &bt],
            Tolerance::SMOOTH,
        );
        check(
            "matmul A·Bᵀ (Linear's x·Wᵀ)",
            |v| v[0].matmul(&v[1].t()),
            &[&a, &bt],
            Tolerance::SMOOTH,
        );
        check(
            "matmul Aᵀ·B",
            |v| v[0].t().matmul(&v[1]),
            &[&at, &b],
            Tolerance::SMOOTH,
        );
        let (ba, bb) = (rand(&[3, m, k], &mut rng), rand(&[3, k, n], &mut rng));
        check(
            "batched matmul",
            |v| v[0].matmul(&v[1]),
            &[&ba, &bb],
            Tolerance::SMOOTH,
        );
        let shared = rand(&[1, k, n], &mut rng);
        check(
            "batch-broadcast matmul",
            |v| v[0].matmul(&v[1]),
            &[&ba, &shared],
            Tolerance::SMOOTH,
        );
    }
}

/// A weight used as a transposed view (x·Wᵀ) gets its gradient back contiguous,
/// so that accumulating it is a plain SIMD pass, not a strided walk.
#[test]
fn transposed_operand_gets_a_contiguous_gradient() {
    let mut rng = Rng::new(16);
    let (x, w) = (rand(&[4, 6], &mut rng), rand(&[5, 6], &mut rng));
    let (xv, wv) = (Var::leaf(x.clone()), Var::leaf(w.clone()));
    let grads = xv.matmul(&wv.t()).sum().backward().unwrap();
    let gw = grads.get(&wv).unwrap();
    assert!(gw.is_contiguous(), "dW has strides of a transposed view");
    // dW = gᵀ·x with g all ones: every row of dW is the column sums of x
    let want = Tensor::ones(&[4, 5]).t().matmul(&x);
    for (a, b) in gw.to_vec().iter().zip(want.to_vec()) {
        approx::assert_abs_diff_eq!(*a, b, epsilon = 1e-12);
    }
}

#[test]
fn shape_ops() {
    let mut rng = Rng::new(7);
    for shape in [&[2, 3, 4][..], &[3, 1, 5], &[5, 2, 1]] {
        let x = rand(shape, &mut rng);
        let n: usize = shape.iter().product();
        check(
            "reshape",
            move |v| v[0].reshape(&[n]),
            &[&x],
            Tolerance::SMOOTH,
        );
        check(
            "permute",
            |v| v[0].permute(&[2, 0, 1]),
            &[&x],
            Tolerance::SMOOTH,
        );
        check("t", |v| v[0].t(), &[&x], Tolerance::SMOOTH);
        let d = shape[0];
        check(
            "slice_axis",
            move |v| v[0].slice_axis(0, 1, d),
            &[&x],
            Tolerance::SMOOTH,
        );
        let y = rand(&[shape[0], 2, shape[2]], &mut rng);
        check(
            "concat",
            |v| Var::concat(&[&v[0], &v[1]], 1),
            &[&x, &y],
            Tolerance::SMOOTH,
        );
        check(
            "index_select",
            |v| v[0].index_select(&[0, 0, shape[0] - 1]),
            &[&x],
            Tolerance::SMOOTH,
        );
    }
    for (n, c) in [(1, 1), (3, 4), (5, 2)] {
        let x = rand(&[n, c], &mut rng);
        let idx: Vec<usize> = (0..n).map(|i| (i * 7) % c).collect();
        check(
            "gather_rows",
            move |v| v[0].gather_rows(&idx),
            &[&x],
            Tolerance::SMOOTH,
        );
    }
}

#[test]
fn reductions() {
    let mut rng = Rng::new(8);
    for shape in [&[6][..], &[3, 4], &[2, 3, 5]] {
        let x = rand(shape, &mut rng);
        check("sum", |v| v[0].sum(), &[&x], Tolerance::SMOOTH);
        check("mean", |v| v[0].mean(), &[&x], Tolerance::SMOOTH);
        for axis in 0..shape.len() {
            check(
                "sum_axis",
                move |v| v[0].sum_axis(axis, false),
                &[&x],
                Tolerance::SMOOTH,
            );
            check(
                "mean_axis keepdim",
                move |v| v[0].mean_axis(axis, true),
                &[&x],
                Tolerance::SMOOTH,
            );
            check(
                "max_axis",
                move |v| v[0].max_axis(axis, axis % 2 == 0),
                &[&x],
                Tolerance::SMOOTH,
            );
            check(
                "log_softmax",
                move |v| v[0].log_softmax(axis),
                &[&x],
                Tolerance::SMOOTH,
            );
            check(
                "l2_normalize",
                move |v| v[0].l2_normalize(axis, 1e-12),
                &[&x],
                Tolerance::SMOOTH,
            );
        }
    }
}

#[test]
fn softmax_cross_entropy_fused() {
    let mut rng = Rng::new(9);
    for (n, c) in [(1, 2), (4, 3), (7, 11)] {
        let x = rand(&[n, c], &mut rng).mul_scalar(3.0);
        let labels: Vec<usize> = (0..n).map(|i| (i * 5 + 1) % c).collect();
        let l2 = labels.clone();
        check(
            "softmax_cross_entropy",
            move |v| v[0].softmax_cross_entropy(&labels),
            &[&x],
            Tolerance::SMOOTH,
        );
        // equals the unfused composition
        let fused = Var::constant(x.clone())
            .softmax_cross_entropy(&l2)
            .value()
            .item()
            .unwrap();
        let unfused = Var::constant(x.clone())
            .log_softmax(1)
            .gather_rows(&l2)
            .mean()
            .neg()
            .value()
            .item()
            .unwrap();
        assert!((fused - unfused).abs() < 1e-12);
    }
}

#[test]
fn grouped_and_depthwise_conv2d_all_gradients() {
    let mut rng = Rng::new(13);
    // (x, weight, groups, stride, padding): depthwise 3x3 and 7x7 at strides 1 and 2, a
    // depthwise multiplier, two groups, one group; odd sizes
    for (xs, ws, groups, stride, pad) in [
        ([2, 3, 5, 4], [3, 1, 3, 3], 3, 1, 1),
        ([1, 4, 7, 6], [4, 1, 3, 3], 4, 2, 1),
        ([1, 2, 7, 7], [2, 1, 7, 7], 2, 1, 3),
        ([1, 2, 9, 8], [2, 1, 7, 7], 2, 2, 2),
        ([1, 2, 4, 5], [4, 1, 3, 3], 2, 1, 0),
        ([2, 4, 5, 5], [6, 2, 3, 3], 2, 2, 1),
        ([1, 3, 4, 3], [2, 3, 3, 3], 1, 1, 1),
    ] {
        let p = Conv2dParams::new(stride, pad);
        let (x, w, b) = (
            rand(&xs, &mut rng),
            rand(&ws, &mut rng),
            rand(&[ws[0]], &mut rng),
        );
        check(
            "conv2d_grouped",
            move |v| v[0].conv2d_grouped(&v[1], Some(&v[2]), p, groups),
            &[&x, &w, &b],
            Tolerance::SMOOTH,
        );
        check(
            "conv2d_grouped no bias",
            move |v| v[0].conv2d_grouped(&v[1], None, p, groups),
            &[&x, &w],
            Tolerance::SMOOTH,
        );
    }
}

#[test]
fn conv2d_all_gradients() {
    let mut rng = Rng::new(10);
    for (xs, ws, stride, pad) in [
        ([2, 3, 5, 4], [2, 3, 3, 3], 1, 1),
        ([1, 2, 6, 5], [3, 2, 3, 2], 2, 0),
        ([3, 2, 3, 3], [2, 2, 1, 1], 1, 0),
    ] {
        let p = Conv2dParams::new(stride, pad);
        let (x, w, b) = (
            rand(&xs, &mut rng),
            rand(&ws, &mut rng),
            rand(&[ws[0]], &mut rng),
        );
        check(
            "conv2d",
            move |v| v[0].conv2d(&v[1], Some(&v[2]), p),
            &[&x, &w, &b],
            Tolerance::SMOOTH,
        );
        check(
            "conv2d no bias",
            move |v| v[0].conv2d(&v[1], None, p),
            &[&x, &w],
            Tolerance::SMOOTH,
        );
    }
}

#[test]
fn pooling() {
    let mut rng = Rng::new(11);
    for (xs, p) in [
        ([2, 3, 4, 4], Pool2dParams::new(2, 2, 0)),
        ([1, 2, 5, 7], Pool2dParams::new(3, 2, 1)),
        ([2, 1, 3, 3], Pool2dParams::new(2, 1, 0)),
    ] {
        let x = rand(&xs, &mut rng);
        check(
            "max_pool2d",
            move |v| v[0].max_pool2d(p),
            &[&x],
            Tolerance::SMOOTH,
        );
        check(
            "avg_pool2d",
            move |v| v[0].avg_pool2d(p),
            &[&x],
            Tolerance::SMOOTH,
        );
    }
}

#[test]
fn a_value_used_twice_accumulates() {
    let x = rand(&[3, 3], &mut Rng::new(12));
    check(
        "x·x + x",
        |v| v[0].mul(&v[0]).add(&v[0]).matmul(&v[0]),
        &[&x],
        Tolerance::SMOOTH,
    );
}

#[test]
fn gradcheck_catches_a_wrong_gradient() {
    // An op with a deliberately wrong backward must fail the check.
    let x = rand(&[4], &mut Rng::new(13));
    let r = gradcheck(
        |v| {
            Var::from_op(
                "bad_square",
                v[0].value().mul(v[0].value()),
                &[&v[0]],
                |g| vec![Some(g.clone())],
            )
        },
        std::slice::from_ref(&x),
        Tolerance::SMOOTH,
    );
    assert!(!r.passed());
    assert!(r.to_string().contains("FAILS"));
}

#[test]
fn batch_norm_train_all_gradients_and_statistics() {
    let mut rng = Rng::new(14);
    for shape in [vec![4, 3], vec![3, 2, 3, 2], vec![2, 5, 1, 3]] {
        let c = shape[1];
        let x = rand(&shape, &mut rng);
        let (g, b) = (rand(&[c], &mut rng), rand(&[c], &mut rng));
        check(
            "batch_norm_train",
            |v| v[0].batch_norm_train(&v[1], &v[2], 1e-5).0,
            &[&x, &g, &b],
            Tolerance::SMOOTH,
        );
        // the statistics and the output against the definition
        let (y, mean, var) = Var::constant(x.clone()).batch_norm_train(
            &Var::constant(g.clone()),
            &Var::constant(b.clone()),
            1e-5,
        );
        let (xv, yv, gv, bv) = (x.to_vec(), y.value().to_vec(), g.to_vec(), b.to_vec());
        let s: usize = shape[2..].iter().product();
        for ch in 0..c {
            let idx: Vec<usize> = (0..shape[0])
                .flat_map(|n| (0..s).map(move |k| (n * c + ch) * s + k))
                .collect();
            let mu = idx.iter().map(|&i| xv[i]).sum::<f64>() / idx.len() as f64;
            let var_ch = idx.iter().map(|&i| (xv[i] - mu).powi(2)).sum::<f64>() / idx.len() as f64;
            assert!((mean[ch] - mu).abs() < 1e-12 && (var[ch] - var_ch).abs() < 1e-12);
            for &i in &idx {
                let want = gv[ch] * (xv[i] - mu) / (var_ch + 1e-5).sqrt() + bv[ch];
                assert!((yv[i] - want).abs() < 1e-12);
            }
        }
    }
}
