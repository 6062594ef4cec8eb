//! The networks: shapes, parameter counts, names, initialisation, and LeNet++ learning.

use autograd::{no_grad, Var};
use nn::optim::{Method, Optimizer};
use nn::{LeNetPlusPlus, Linear, Module, SphereFace, SphereFaceConfig};
use tensor::{Rng, Tensor};

#[test]
fn sphereface20_has_the_published_parameter_count() {
    let net = SphereFace::<f32>::new(SphereFaceConfig::new(20), &mut Rng::new(0)).unwrap();
    assert_eq!(net.num_parameters(), 22_670_656);
    let names: Vec<String> = net.parameters().into_iter().map(|(n, _)| n).collect();
    for want in [
        "stage1.conv.weight",
        "stage1.conv.bias",
        "stage1.prelu.weight",
        "stage1.unit0.conv1.weight",
        "stage1.unit0.prelu2.weight",
        "stage3.unit3.conv2.bias",
        "fc5.weight",
        "fc5.bias",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "missing {want} in {names:?}"
        );
    }
    let shapes: Vec<Vec<usize>> = net
        .parameters()
        .iter()
        .filter(|(n, _)| n == "fc5.weight" || n == "stage2.conv.weight")
        .map(|(_, p)| p.shape())
        .collect();
    assert_eq!(shapes, vec![vec![128, 64, 3, 3], vec![512, 512 * 7 * 6]]);
}

#[test]
fn every_sphereface_depth_maps_images_to_features() {
    for depth in [4, 10, 20, 36, 64] {
        for (cfg, n) in [
            (SphereFaceConfig::new(depth), 1),
            (
                SphereFaceConfig {
                    depth,
                    in_channels: 1,
                    input_hw: (64, 48),
                    feature_dim: 128,
                },
                2,
            ),
        ] {
            let net = SphereFace::<f32>::new(cfg, &mut Rng::new(1)).unwrap();
            let x = Tensor::rand_normal(
                &[n, cfg.in_channels, cfg.input_hw.0, cfg.input_hw.1],
                0.0,
                1.0,
                &mut Rng::new(2),
            );
            let y = no_grad(|| net.forward(&Var::constant(x)));
            assert_eq!(
                y.shape(),
                &[n, cfg.feature_dim],
                "SphereFace-{depth} {cfg:?}"
            );
            assert!(y.value().all_finite());
        }
    }
    assert!(
        SphereFace::<f32>::new(SphereFaceConfig::new(18), &mut Rng::new(0))
            .err()
            .unwrap()
            .contains("depth must be 4, 10, 20, 36 or 64")
    );
}

#[test]
fn sphereface_initialisation_follows_the_paper() {
    let net = SphereFace::<f64>::new(SphereFaceConfig::new(10), &mut Rng::new(3)).unwrap();
    for (name, p) in net.parameters() {
        let v = p.value().to_vec();
        let std = (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
        if name.ends_with("bias") {
            assert!(v.iter().all(|&x| x == 0.0), "{name} must start at zero");
        } else if name.contains("prelu") {
            assert!(v.iter().all(|&x| x == 0.25), "{name} must start at 0.25");
        } else if name.contains(".unit") {
            assert!(
                (std - 0.01).abs() < 0.001,
                "{name}: std {std}, expected Gaussian σ = 0.01"
            );
        } else {
            let shape = p.shape();
            let receptive: usize = shape[2..].iter().product();
            let bound = (6.0 / ((shape[0] + shape[1]) * receptive) as f64).sqrt();
            assert!(
                v.iter().all(|x| x.abs() <= bound),
                "{name} exceeds its Xavier bound"
            );
            assert!(
                (std - bound / 3f64.sqrt()).abs() < 0.1 * bound,
                "{name}: std {std}, Xavier expects {}",
                bound / 3f64.sqrt()
            );
        }
    }
}

#[test]
fn lenetpp_shapes() {
    for (hw, dim) in [((28, 28), 2), ((32, 24), 3)] {
        let net = LeNetPlusPlus::<f32>::new(1, hw, dim, &mut Rng::new(0));
        let y = no_grad(|| net.forward(&Var::constant(Tensor::zeros(&[3, 1, hw.0, hw.1]))));
        assert_eq!(y.shape(), &[3, dim]);
    }
    let net = LeNetPlusPlus::<f32>::new(1, (28, 28), 2, &mut Rng::new(0));
    assert_eq!(net.parameters()[0].0, "conv1_1.weight");
    assert_eq!(net.parameters().last().unwrap().0, "prelu_fc.weight");
}

/// Four classes of 16x16 images: a bright square in one quadrant, plus noise.
fn quadrant_images(n: usize, rng: &mut Rng) -> (Tensor<f32>, Vec<usize>) {
    let mut data = vec![0f32; n * 256];
    let labels: Vec<usize> = (0..n).map(|_| rng.below(4)).collect();
    for (i, &l) in labels.iter().enumerate() {
        let (r0, c0) = ((l / 2) * 8, (l % 2) * 8);
        for r in 0..16 {
            for c in 0..16 {
                let on = (r0..r0 + 8).contains(&r) && (c0..c0 + 8).contains(&c);
                data[i * 256 + r * 16 + c] = if on { 1.0 } else { 0.0 } + 0.3 * rng.normal() as f32;
            }
        }
    }
    (Tensor::from_vec(&[n, 1, 16, 16], data).unwrap(), labels)
}

#[test]
fn lenetpp_learns_a_separable_problem() {
    let mut rng = Rng::new(4);
    let (train_x, train_y) = quadrant_images(256, &mut rng);
    let (test_x, test_y) = quadrant_images(200, &mut rng);
    let net = LeNetPlusPlus::<f32>::new(1, (16, 16), 2, &mut rng);
    let head = Linear::<f32>::xavier(2, 4, true, &mut rng);
    let mut params = net.parameters();
    params.extend(
        head.parameters()
            .into_iter()
            .map(|(n, p)| (format!("head.{n}"), p)),
    );
    let mut opt = Optimizer::new(
        Method::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        params,
        0.003,
        5e-4,
    );
    opt.exempt_biases_and_prelu();
    for epoch in 0..4 {
        for b in 0..8 {
            let idx: Vec<usize> = (b * 32..(b + 1) * 32).collect();
            let x = Var::constant(train_x.index_select(0, &idx));
            let y: Vec<usize> = idx.iter().map(|&i| train_y[i]).collect();
            let loss = head.forward(&net.forward(&x)).softmax_cross_entropy(&y);
            loss.backward().unwrap();
            opt.step();
            net.zero_grad();
            head.zero_grad();
            assert!(loss.value().all_finite(), "epoch {epoch}: loss diverged");
        }
    }
    let logits = no_grad(|| head.forward(&net.forward(&Var::constant(test_x))));
    let pred = logits.value().argmax_axis(1);
    let correct = pred.iter().zip(&test_y).filter(|(p, y)| p == y).count();
    assert!(
        correct as f64 / test_y.len() as f64 > 0.95,
        "test accuracy {correct}/200"
    );
}

#[test]
fn mobilefacenet_has_insightfaces_parameters_and_names() {
    let mut rng = Rng::new(3);
    let net = nn::MobileFaceNet::<f32>::new(512, &mut rng);
    // insightface's get_mbf(fp16=False, num_features=512): 2,059,520 parameters
    assert_eq!(net.num_parameters(), 2_059_520);
    let names: Vec<String> = net.state().into_iter().map(|(n, _)| n).collect();
    for key in [
        "layers.0.layers.0.weight",
        "layers.0.layers.1.running_mean",
        "layers.0.layers.2.weight",
        "layers.1.layers.0.weight",
        "layers.2.layers.1.layers.0.weight",
        "layers.3.layers.3.layers.2.layers.1.running_var",
        "layers.7.layers.1.layers.2.layers.0.weight",
        "conv_sep.layers.2.weight",
        "features.layers.0.layers.0.weight",
        "features.layers.2.weight",
        "features.layers.3.bias",
    ] {
        assert!(names.iter().any(|n| n == key), "missing {key}");
    }
    // shapes of the grouped and depthwise kernels: [O, C/groups, k, k]
    let shape = |k: &str| {
        net.state()
            .into_iter()
            .find(|(n, _)| n == k)
            .unwrap()
            .1
            .shape()
    };
    assert_eq!(shape("layers.1.layers.0.weight"), vec![128, 2, 3, 3]);
    assert_eq!(
        shape("layers.2.layers.1.layers.0.weight"),
        vec![128, 1, 3, 3]
    );
    assert_eq!(
        shape("features.layers.0.layers.0.weight"),
        vec![512, 1, 7, 7]
    );
    let x = Var::constant(Tensor::rand_normal(&[2, 3, 112, 112], 0.0, 1.0, &mut rng));
    assert_eq!(net.forward(&x).shape(), &[2, 512]);
}
