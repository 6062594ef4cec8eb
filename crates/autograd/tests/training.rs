//! Small networks learn: XOR with a two-layer perceptron, and a small CNN fits one batch.

use autograd::{Param, Var};
use tensor::{Conv2dParams, Pool2dParams, Rng, Tensor};

fn sgd(params: &[&Param<f32>], lr: f32) {
    for p in params {
        let g = p.grad().clone().expect("gradient reached every parameter");
        p.value_mut().scale_add_assign(1.0, &g, -lr);
        p.zero_grad();
    }
}

#[test]
fn two_layer_perceptron_learns_xor() {
    let mut rng = Rng::new(1);
    let x = Var::constant(
        Tensor::<f32>::from_vec(&[4, 2], vec![0., 0., 0., 1., 1., 0., 1., 1.]).unwrap(),
    );
    let labels = [0, 1, 1, 0];
    let w1 = Param::new(Tensor::rand_normal(&[2, 16], 0.0, 1.0, &mut rng));
    let b1 = Param::new(Tensor::full(&[16], 0.1));
    let w2 = Param::new(Tensor::rand_normal(&[16, 2], 0.0, 0.5, &mut rng));
    let b2 = Param::new(Tensor::zeros(&[2]));
    let mut loss = f32::MAX;
    for _ in 0..1000 {
        let h = x.matmul(&w1.var()).add(&b1.var()).relu();
        let l = h
            .matmul(&w2.var())
            .add(&b2.var())
            .softmax_cross_entropy(&labels);
        l.backward().unwrap();
        loss = l.value().item().unwrap();
        sgd(&[&w1, &b1, &w2, &b2], 0.5);
    }
    assert!(loss < 0.05, "XOR loss stayed at {loss}");
    let logits = x
        .matmul(&w1.var())
        .add(&b1.var())
        .relu()
        .matmul(&w2.var())
        .add(&b2.var());
    let pred = logits.value().argmax_axis(1);
    assert_eq!(pred.iter().copied().collect::<Vec<_>>(), labels);
}

#[test]
fn small_cnn_fits_one_batch() {
    let mut rng = Rng::new(2);
    let images = Var::constant(Tensor::<f32>::rand_normal(
        &[8, 1, 8, 8],
        0.0,
        1.0,
        &mut rng,
    ));
    let labels = [0, 1, 2, 3, 0, 1, 2, 3];
    let conv = Param::new(Tensor::rand_normal(&[6, 1, 3, 3], 0.0, 0.4, &mut rng));
    let bias = Param::new(Tensor::zeros(&[6]));
    let slope = Param::new(Tensor::full(&[6], 0.25));
    let fc = Param::new(Tensor::rand_normal(&[6 * 4 * 4, 4], 0.0, 0.1, &mut rng));
    let first = {
        let h = images
            .conv2d(&conv.var(), Some(&bias.var()), Conv2dParams::new(1, 1))
            .prelu(&slope.var());
        h.max_pool2d(Pool2dParams::new(2, 2, 0))
            .reshape(&[8, 96])
            .matmul(&fc.var())
            .softmax_cross_entropy(&labels)
    };
    let first = first.value().item().unwrap();
    let mut last = first;
    for _ in 0..300 {
        let h = images
            .conv2d(&conv.var(), Some(&bias.var()), Conv2dParams::new(1, 1))
            .prelu(&slope.var());
        let l = h
            .max_pool2d(Pool2dParams::new(2, 2, 0))
            .reshape(&[8, 96])
            .matmul(&fc.var())
            .softmax_cross_entropy(&labels);
        l.backward().unwrap();
        last = l.value().item().unwrap();
        sgd(&[&conv, &bias, &slope, &fc], 0.1);
    }
    assert!(
        last < 0.02 && first > 1.0,
        "loss went from {first} to {last}"
    );
}
