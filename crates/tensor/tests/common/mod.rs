//! Shared helpers of the kernel tests: naive references, finite differences
//! and the convolution checks that both the im2col and the Winograd test
//! binaries run on their own cases.
#![allow(dead_code)] // each test binary uses a subset

use approx::assert_abs_diff_eq;
use tensor::conv::{conv2d, conv2d_backward};
use tensor::{Conv2dParams, Rng, Tensor};

/// A convolution case: input shape, weight shape, stride, padding.
pub type ConvCase = ([usize; 4], [usize; 4], (usize, usize), (usize, usize));

pub fn rand(shape: &[usize], rng: &mut Rng) -> Tensor<f64> {
    Tensor::rand_normal(shape, 0.0, 1.0, rng)
}

pub fn assert_close(a: &Tensor<f64>, b: &Tensor<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape());
    for (x, y) in a.to_vec().iter().zip(b.to_vec()) {
        assert_abs_diff_eq!(*x, y, epsilon = tol * (1.0 + y.abs()));
    }
}

pub fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    let n: usize = shape.iter().product();
    let mut idx = vec![0; shape.len()];
    for _ in 0..n {
        f(&idx);
        for a in (0..shape.len()).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

pub fn naive_conv(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    b: Option<&Tensor<f64>>,
    p: Conv2dParams,
) -> Tensor<f64> {
    let (n, c, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let (o, kh, kw) = (w.shape()[0], w.shape()[2], w.shape()[3]);
    let ho = (h + 2 * p.padding.0 - kh) / p.stride.0 + 1;
    let wo = (wd + 2 * p.padding.1 - kw) / p.stride.1 + 1;
    let mut out = vec![0.0; n * o * ho * wo];
    for_each_index(&[n, o, ho, wo], |i| {
        let mut s = b.map_or(0.0, |b| b.get(&[i[1]]).unwrap());
        for ci in 0..c {
            for a in 0..kh {
                for d in 0..kw {
                    let r = (i[2] * p.stride.0 + a) as isize - p.padding.0 as isize;
                    let q = (i[3] * p.stride.1 + d) as isize - p.padding.1 as isize;
                    if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < wd {
                        s += x.get(&[i[0], ci, r as usize, q as usize]).unwrap()
                            * w.get(&[i[1], ci, a, d]).unwrap();
                    }
                }
            }
        }
        out[((i[0] * o + i[1]) * ho + i[2]) * wo + i[3]] = s;
    });
    Tensor::from_vec(&[n, o, ho, wo], out).unwrap()
}

/// Central finite difference of `f` with respect to every element of `t`.
pub fn numeric_grad(t: &Tensor<f64>, f: impl Fn(&Tensor<f64>) -> f64) -> Tensor<f64> {
    let mut v = t.to_vec();
    let eps = 1e-6;
    let g = (0..v.len())
        .map(|i| {
            let orig = v[i];
            v[i] = orig + eps;
            let up = f(&Tensor::from_vec(t.shape(), v.clone()).unwrap());
            v[i] = orig - eps;
            let down = f(&Tensor::from_vec(t.shape(), v.clone()).unwrap());
            v[i] = orig;
            (up - down) / (2.0 * eps)
        })
        .collect();
    Tensor::from_vec(t.shape(), g).unwrap()
}

/// A case's parameters and random input, weight and bias.
fn case_tensors(
    (xs, ws, s, pd): ConvCase,
    rng: &mut Rng,
) -> (Conv2dParams, Tensor<f64>, Tensor<f64>, Tensor<f64>) {
    let p = Conv2dParams {
        stride: s,
        padding: pd,
    };
    (p, rand(&xs, rng), rand(&ws, rng), rand(&[ws[0]], rng))
}

/// Forward (f64 with and without bias, f32 on a strided input) against the direct sum.
pub fn check_conv_forward(cases: &[ConvCase], seed: u64) {
    let mut rng = Rng::new(seed);
    for &case in cases {
        let (p, x, w, b) = case_tensors(case, &mut rng);
        assert_close(
            &conv2d(&x, &w, Some(&b), p),
            &naive_conv(&x, &w, Some(&b), p),
            1e-10,
        );
        assert_close(
            &conv2d(&x, &w, None, p),
            &naive_conv(&x, &w, None, p),
            1e-10,
        );
        // f32 path, and a non-contiguous input.
        let xt = x
            .permute(&[0, 1, 3, 2])
            .to_contiguous()
            .permute(&[0, 1, 3, 2]);
        assert!(!xt.is_contiguous() || x.shape()[2] == 1 || x.shape()[3] == 1);
        let got = conv2d(&xt.cast::<f32>(), &w.cast::<f32>(), None, p).cast::<f64>();
        assert_close(&got, &naive_conv(&x, &w, None, p), 1e-4);
    }
}

/// Input, weight and bias gradients against central finite differences (f64).
pub fn check_conv_gradients(cases: &[ConvCase], seed: u64) {
    let mut rng = Rng::new(seed);
    for &case in cases {
        let (p, x, w, b) = case_tensors(case, &mut rng);
        let r = rand(conv2d(&x, &w, None, p).shape(), &mut rng);
        let loss = |x: &Tensor<f64>, w: &Tensor<f64>, b: &Tensor<f64>| {
            conv2d(x, w, Some(b), p).mul(&r).sum_all()
        };
        let g = conv2d_backward(&r, &x, &w, p, (true, true, true));
        assert_close(
            g.input.as_ref().unwrap(),
            &numeric_grad(&x, |x| loss(x, &w, &b)),
            1e-6,
        );
        assert_close(
            g.weight.as_ref().unwrap(),
            &numeric_grad(&w, |w| loss(&x, w, &b)),
            1e-6,
        );
        assert_close(
            g.bias.as_ref().unwrap(),
            &numeric_grad(&b, |b| loss(&x, &w, b)),
            1e-6,
        );
        let only_w = conv2d_backward(&r, &x, &w, p, (false, true, false));
        assert!(only_w.input.is_none() && only_w.bias.is_none());
    }
}

/// The weight gradient of a `k x k` stride-1 "same" convolution is bitwise the
/// same over 20 runs for each `(n, c, h, w)` (the sum order must not depend on
/// scheduling).
pub fn check_wgrad_reproducible(k: usize, shapes: &[(usize, usize, usize, usize)]) {
    let mut rng = Rng::new(14);
    for &(n, c, h, w) in shapes {
        let x = Tensor::<f32>::rand_normal(&[n, c, h, w], 0.0, 1.0, &mut rng);
        let wt = Tensor::<f32>::rand_normal(&[c, c, k, k], 0.0, 1.0, &mut rng);
        let gy = Tensor::<f32>::rand_normal(&[n, c, h, w], 0.0, 1.0, &mut rng);
        let p = Conv2dParams::new(1, k / 2);
        let grad = || {
            conv2d_backward(&gy, &x, &wt, p, (false, true, false))
                .weight
                .unwrap()
        };
        let first = grad();
        for _ in 0..20 {
            assert_eq!(grad(), first);
        }
    }
}
