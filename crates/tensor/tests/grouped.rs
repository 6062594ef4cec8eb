//! Grouped and depthwise convolution against a naive f64 sum, on odd sizes,
//! strides 1 and 2 and several paddings; against the dense path at one group.

use tensor::conv::conv2d;
use tensor::conv::grouped::{try_grouped_conv2d, try_grouped_conv2d_backward};
use tensor::{Conv2dParams, Rng, Tensor};

/// The definition, summed naively.
fn naive(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    b: Option<&Tensor<f64>>,
    s: usize,
    p: usize,
    groups: usize,
) -> Tensor<f64> {
    let (xs, ws) = (x.shape(), w.shape());
    let (n, c, h, wd, o, kh, kw) = (xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3]);
    let (cg, og) = (c / groups, o / groups);
    let (ho, wo) = ((h + 2 * p - kh) / s + 1, (wd + 2 * p - kw) / s + 1);
    let (xv, wv) = (x.to_vec(), w.to_vec());
    let bv = b.map(|b| b.to_vec());
    let mut out = vec![0.0; n * o * ho * wo];
    for ni in 0..n {
        for oi in 0..o {
            for i in 0..ho {
                for j in 0..wo {
                    let mut acc = bv.as_ref().map_or(0.0, |b| b[oi]);
                    for cl in 0..cg {
                        let ci = (oi / og) * cg + cl;
                        for a in 0..kh {
                            for bb in 0..kw {
                                let (r, q) = (
                                    (i * s + a) as isize - p as isize,
                                    (j * s + bb) as isize - p as isize,
                                );
                                if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < wd {
                                    acc += wv[((oi * cg + cl) * kh + a) * kw + bb]
                                        * xv[((ni * c + ci) * h + r as usize) * wd + q as usize];
                                }
                            }
                        }
                    }
                    out[((ni * o + oi) * ho + i) * wo + j] = acc;
                }
            }
        }
    }
    Tensor::from_vec(&[n, o, ho, wo], out).unwrap()
}

fn max_diff(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.to_vec()
        .iter()
        .zip(b.to_vec())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn forward_matches_the_definition() {
    let mut rng = Rng::new(11);
    // (N, C, O, groups, H, W, k, stride, padding): depthwise 3x3 and 7x7 at strides 1 and 2,
    // depthwise with a multiplier, grouped, and one group
    let cases = [
        (2, 6, 6, 6, 7, 9, 3, 1, 1),
        (1, 5, 5, 5, 9, 7, 3, 2, 1),
        (2, 4, 4, 4, 7, 7, 7, 1, 0),
        (1, 3, 3, 3, 11, 13, 7, 2, 3),
        (1, 3, 6, 3, 6, 5, 3, 1, 2),
        (2, 6, 4, 2, 5, 8, 3, 2, 0),
        (1, 4, 6, 1, 6, 6, 3, 1, 1),
        (1, 2, 2, 2, 3, 3, 3, 2, 2),
    ];
    for (n, c, o, g, h, w, k, s, p) in cases {
        let x = Tensor::<f64>::rand_normal(&[n, c, h, w], 0.0, 1.0, &mut rng);
        let wt = Tensor::<f64>::rand_normal(&[o, c / g, k, k], 0.0, 1.0, &mut rng);
        let b = Tensor::<f64>::rand_normal(&[o], 0.0, 1.0, &mut rng);
        let got = try_grouped_conv2d(&x, &wt, Some(&b), Conv2dParams::new(s, p), g).unwrap();
        let want = naive(&x, &wt, Some(&b), s, p, g);
        assert!(
            max_diff(&got, &want) < 1e-12,
            "case {:?}",
            (n, c, o, g, h, w, k, s, p)
        );
        if g == 1 {
            let dense = conv2d(&x, &wt, Some(&b), Conv2dParams::new(s, p));
            assert!(max_diff(&got, &dense) < 1e-12);
        }
        // f32 agrees with f64 to rounding
        let got32 = try_grouped_conv2d(
            &x.cast::<f32>(),
            &wt.cast::<f32>(),
            Some(&b.cast::<f32>()),
            Conv2dParams::new(s, p),
            g,
        )
        .unwrap();
        assert!(max_diff(&got32.cast::<f64>(), &want) < 1e-4);
    }
}

#[test]
fn backward_is_the_adjoint_of_the_forward() {
    // <dy, conv(x)> = <dx, x> for the input gradient, and likewise for the weights:
    // the backward passes are the transposes of the (linear) forward.
    let mut rng = Rng::new(12);
    for (c, o, g, k, s, p) in [
        (6, 6, 6, 3, 1, 1),
        (5, 5, 5, 7, 2, 3),
        (6, 4, 2, 3, 2, 1),
        (3, 6, 3, 3, 1, 0),
    ] {
        let x = Tensor::<f64>::rand_normal(&[2, c, 9, 8], 0.0, 1.0, &mut rng);
        let w = Tensor::<f64>::rand_normal(&[o, c / g, k, k], 0.0, 1.0, &mut rng);
        let params = Conv2dParams::new(s, p);
        let y = try_grouped_conv2d(&x, &w, None, params, g).unwrap();
        let dy = Tensor::<f64>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
        let grads =
            try_grouped_conv2d_backward(&dy, &x, &w, params, g, (true, true, true)).unwrap();
        let dot = |a: &Tensor<f64>, b: &Tensor<f64>| {
            a.to_vec()
                .iter()
                .zip(b.to_vec())
                .map(|(p, q)| p * q)
                .sum::<f64>()
        };
        let lhs = dot(&dy, &y);
        assert!((lhs - dot(grads.input.as_ref().unwrap(), &x)).abs() < 1e-9 * lhs.abs().max(1.0));
        assert!((lhs - dot(grads.weight.as_ref().unwrap(), &w)).abs() < 1e-9 * lhs.abs().max(1.0));
        let db = grads.bias.unwrap().to_vec();
        let sums: Vec<f64> = (0..o)
            .map(|oi| {
                (0..2)
                    .map(|n| {
                        dy.slice_axis(0, n, n + 1)
                            .slice_axis(1, oi, oi + 1)
                            .to_vec()
                            .iter()
                            .sum::<f64>()
                    })
                    .sum()
            })
            .collect();
        db.iter()
            .zip(&sums)
            .for_each(|(a, b)| assert!((a - b).abs() < 1e-9));
        // only what is asked for
        let none =
            try_grouped_conv2d_backward(&dy, &x, &w, params, g, (false, true, false)).unwrap();
        assert!(none.input.is_none() && none.bias.is_none() && none.weight.is_some());
    }
}

#[test]
fn bad_groups_and_shapes_are_errors() {
    let x = Tensor::<f32>::zeros(&[1, 6, 5, 5]);
    let err = |w: &[usize], g: usize| {
        try_grouped_conv2d(&x, &Tensor::zeros(w), None, Conv2dParams::new(1, 1), g)
            .unwrap_err()
            .to_string()
    };
    assert!(err(&[6, 1, 3, 3], 4).contains("4 groups must divide both C = 6 and O = 6"));
    assert!(
        err(&[6, 2, 3, 3], 6).contains("1 input channels per group")
            || err(&[6, 2, 3, 3], 6).contains("C / groups = 1")
    );
    assert!(err(&[6, 1, 9, 9], 6).contains("does not fit"));
    assert!(err(&[6, 1, 3, 3], 0).contains("groups must divide"));
}
