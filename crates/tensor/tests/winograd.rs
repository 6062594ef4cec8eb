//! The Winograd F(2x2, 3x3) and F(2x2, 5x5) convolution paths, forced on for
//! every 3x3 and 5x5 stride-1 convolution of this test binary
//! (`REGULARFACE_CONV=winograd`, set before the first convolution runs),
//! against the same references as the im2col path.

mod common;

use common::*;
use tensor::conv::{conv2d, conv2d_backward};
use tensor::{Conv2dParams, Tensor};

/// Force the Winograd path in this process (every test calls it first; the
/// setting is read once, at the first convolution).
fn force_winograd() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("REGULARFACE_CONV", "winograd"));
}

/// Odd and even sizes, paddings 0, 1, 2 and mixed, one tile and many, channel
/// counts that are not multiples of anything, batches of one and several.
fn winograd_cases() -> Vec<ConvCase> {
    vec![
        ([2, 3, 5, 7], [4, 3, 3, 3], (1, 1), (1, 1)),
        ([1, 2, 6, 4], [5, 2, 3, 3], (1, 1), (0, 0)),
        ([3, 5, 4, 5], [2, 5, 3, 3], (1, 1), (2, 2)),
        ([1, 4, 3, 3], [3, 4, 3, 3], (1, 1), (1, 0)),
        ([2, 1, 1, 2], [2, 1, 3, 3], (1, 1), (2, 1)),
        ([4, 6, 8, 9], [7, 6, 3, 3], (1, 1), (1, 1)),
    ]
}

#[test]
fn winograd_forward_matches_direct_convolution() {
    force_winograd();
    check_conv_forward(&winograd_cases(), 20);
}

#[test]
fn winograd_gradients_match_finite_differences() {
    force_winograd();
    check_conv_gradients(&winograd_cases(), 21);
}

#[test]
fn winograd_weight_gradient_is_bit_reproducible() {
    force_winograd();
    // four groups of 8 images at 14x12, and at 7x6 as many groups as workers
    // (the parallel-over-ξ path)
    check_wgrad_reproducible(3, &[(32, 16, 14, 12), (32, 16, 7, 6)]);
}

/// 5x5 kernels: paddings 0 to 4 and mixed, sizes down to a single output,
/// channel counts below, at and across the 8-channel blocks of the
/// channels-last transforms.
fn winograd5_cases() -> Vec<ConvCase> {
    vec![
        ([2, 3, 7, 9], [4, 3, 5, 5], (1, 1), (2, 2)),
        ([1, 9, 6, 5], [10, 9, 5, 5], (1, 1), (0, 0)),
        ([3, 8, 5, 6], [8, 8, 5, 5], (1, 1), (4, 4)),
        ([1, 2, 4, 4], [3, 2, 5, 5], (1, 1), (1, 3)),
        ([2, 17, 9, 8], [5, 17, 5, 5], (1, 1), (2, 1)),
    ]
}

#[test]
fn winograd5_forward_matches_direct_convolution() {
    force_winograd();
    check_conv_forward(&winograd5_cases(), 22);
}

#[test]
fn winograd5_gradients_match_finite_differences() {
    force_winograd();
    check_conv_gradients(&winograd5_cases(), 23);
}

#[test]
fn winograd5_weight_gradient_is_bit_reproducible() {
    force_winograd();
    // LeNet++'s second and third stages: groups over workers, and fewer groups
    check_wgrad_reproducible(5, &[(32, 32, 14, 14), (8, 16, 7, 7)]);
}

/// f32 accuracy at realistic sizes (LeNet++'s and SphereFace's channel
/// counts, He-scaled weights): every pass within 1e-5 of the f64 result in
/// relative L2 norm. Measured: 1.5-2.5e-6 for F(2x2, 5x5), 3e-7 for
/// F(2x2, 3x3) and for im2col (the 6x6 transforms' constants up to 5 cost
/// about a decimal digit, as F(4x4, 3x3) does elsewhere).
#[test]
fn winograd_f32_error_is_small_at_realistic_sizes() {
    force_winograd();
    let mut rng = tensor::Rng::new(3);
    for (c, h, k) in [(32, 28, 5), (128, 7, 5), (64, 14, 3)] {
        let x = Tensor::<f64>::rand_normal(&[4, c, h, h], 0.0, 1.0, &mut rng);
        let sd = (2.0 / (c * k * k) as f64).sqrt();
        let w = Tensor::<f64>::rand_normal(&[c, c, k, k], 0.0, sd, &mut rng);
        let gy = Tensor::<f64>::rand_normal(&[4, c, h, h], 0.0, 1.0, &mut rng);
        let p = Conv2dParams::new(1, k / 2);
        let (x32, w32, gy32) = (x.cast::<f32>(), w.cast::<f32>(), gy.cast::<f32>());
        let rel = |a: Tensor<f32>, b: &Tensor<f64>| {
            let d = a.cast::<f64>().sub(b);
            (d.mul(&d).sum_all() / b.mul(b).sum_all()).sqrt()
        };
        let g64 = conv2d_backward(&gy, &x, &w, p, (true, true, false));
        let g32 = conv2d_backward(&gy32, &x32, &w32, p, (true, true, false));
        let errors = [
            rel(conv2d(&x32, &w32, None, p), &conv2d(&x, &w, None, p)),
            rel(g32.input.unwrap(), g64.input.as_ref().unwrap()),
            rel(g32.weight.unwrap(), g64.weight.as_ref().unwrap()),
        ];
        assert!(
            errors.iter().all(|&e| e < 1e-5),
            "{c}ch {h}x{h} k{k}: {errors:?}"
        );
    }
}
