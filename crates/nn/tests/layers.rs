//! Layers: gradients in f64, BatchNorm train/eval, Dropout modes, Sequential naming.

use autograd::{gradcheck, no_grad, Tolerance, Var};
use nn::{
    AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, PRelu, ResidualUnit,
    Sequential,
};
use tensor::{Pool2dParams, Rng, Tensor};

#[test]
fn residual_unit_gradient() {
    let mut rng = Rng::new(1);
    let unit = ResidualUnit::<f64>::new(3, &mut rng);
    // Larger weights than the init so the PReLU branches all take part.
    for (_, p) in unit.parameters() {
        let v = p
            .value()
            .add(&Tensor::rand_normal(&p.shape(), 0.0, 0.3, &mut rng));
        p.set_value(v);
    }
    let x = Tensor::rand_normal(&[2, 3, 5, 4], 0.0, 1.0, &mut rng);
    let r = gradcheck(|v| unit.forward(&v[0]), &[x], Tolerance::SMOOTH);
    assert!(r.passed(), "{r}");
}

#[test]
fn avg_pool_layer_averages_windows_and_has_no_parameters() {
    let mut rng = Rng::new(9);
    let layer = AvgPool2d(Pool2dParams::new(2, 2, 0));
    assert!(Module::<f64>::parameters(&layer).is_empty());
    let x = Tensor::<f64>::rand_normal(&[2, 3, 4, 6], 0.0, 1.0, &mut rng);
    let y = layer.forward(&Var::constant(x.clone()));
    assert_eq!(y.shape(), &[2, 3, 2, 3]);
    let (xv, yv) = (x.to_vec(), y.value().to_vec());
    for (i, &got) in yv.iter().enumerate() {
        let (plane, r, c) = (i / 6, (i % 6) / 3, i % 3);
        let at = |dr: usize, dc: usize| xv[plane * 24 + (2 * r + dr) * 6 + 2 * c + dc];
        let want = (at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4.0;
        assert!((got - want).abs() < 1e-12, "window {i}: {got} vs {want}");
    }
    let r = gradcheck(|v| layer.forward(&v[0]), &[x], Tolerance::SMOOTH);
    assert!(r.passed(), "{r}");
}

#[test]
fn batchnorm_normalises_in_training_and_uses_running_stats_in_eval() {
    let mut rng = Rng::new(2);
    let bn = BatchNorm::<f64>::new(3);
    let x = Tensor::rand_normal(&[8, 3, 4, 4], 2.0, 3.0, &mut rng);
    let y = bn.forward(&Var::constant(x.clone()));
    for c in 0..3 {
        let ch = y.value().slice_axis(1, c, c + 1);
        assert!(ch.mean_all().abs() < 1e-10);
        assert!((ch.mul(&ch).mean_all() - 1.0).abs() < 1e-3);
    }
    // running mean moved 10% of the way to the batch mean
    let batch_mean = x.slice_axis(1, 0, 1).mean_all();
    assert!((bn.running_mean.value().to_vec()[0] - 0.1 * batch_mean).abs() < 1e-12);
    bn.set_training(false);
    let before = bn.running_mean.value().clone();
    let e = bn.forward(&Var::constant(x.clone()));
    assert_eq!(
        &*bn.running_mean.value(),
        &before,
        "eval does not update statistics"
    );
    let rm = before.to_vec()[0];
    let rv = bn.running_var.value().to_vec()[0];
    let want = (x.get(&[0, 0, 0, 0]).unwrap() - rm) / (rv + 1e-5).sqrt();
    assert!((e.value().get(&[0, 0, 0, 0]).unwrap() - want).abs() < 1e-12);
    // gradients in training mode, 1-d and 2-d
    for shape in [vec![5, 3], vec![4, 3, 2, 3]] {
        let bn = BatchNorm::<f64>::new(3);
        let x = Tensor::rand_normal(&shape, 0.0, 1.0, &mut rng);
        let r = gradcheck(|v| bn.forward(&v[0]), &[x], Tolerance::SMOOTH);
        assert!(r.passed(), "{r}");
    }
}

#[test]
fn dropout_only_in_training() {
    let d = Dropout::new(0.5, 7);
    let x = Var::constant(Tensor::<f32>::ones(&[1000]));
    let y = Module::<f32>::forward(&d, &x);
    let zeros = y.value().to_vec().iter().filter(|&&v| v == 0.0).count();
    assert!((400..600).contains(&zeros), "{zeros} zeros");
    Module::<f32>::set_training(&d, false);
    assert_eq!(Module::<f32>::forward(&d, &x).value(), x.value());
}

#[test]
fn sequential_names_and_runs_its_layers() {
    let mut rng = Rng::new(3);
    let net = Sequential::<f64>::new()
        .push_named("conv", Conv2d::xavier(1, 2, 3, 1, 1, true, &mut rng))
        .push_named("act", PRelu::new(2))
        .push(MaxPool2d(Pool2dParams::new(2, 2, 0)))
        .push(Flatten)
        .push_named("fc", Linear::xavier(2 * 2 * 2, 3, true, &mut rng));
    let names: Vec<String> = net.parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "conv.weight",
            "conv.bias",
            "act.weight",
            "fc.weight",
            "fc.bias"
        ]
    );
    let x = Tensor::rand_normal(&[2, 1, 4, 4], 0.0, 1.0, &mut rng);
    assert_eq!(
        no_grad(|| net.forward(&Var::constant(x.clone()))).shape(),
        &[2, 3]
    );
    let r = gradcheck(|v| net.forward(&v[0]), &[x], Tolerance::SMOOTH);
    assert!(r.passed(), "{r}");
}

#[test]
#[should_panic(expected = "Linear: input [2, 5] does not fit weight [3, 4]")]
fn linear_names_bad_input() {
    let l = Linear::<f32>::xavier(4, 3, false, &mut Rng::new(0));
    l.forward(&Var::constant(Tensor::zeros(&[2, 5])));
}
