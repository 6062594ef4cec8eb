//! Optimisers, schedules and checkpoints.

use approx::assert_abs_diff_eq;
use autograd::{no_grad, Param, Var};
use nn::checkpoint::{self, CheckpointError};
use nn::optim::{Method, Optimizer};
use nn::schedule::{Decay, Schedule};
use nn::{LeNetPlusPlus, Linear, Module};
use std::collections::BTreeMap;
use tensor::{Rng, Tensor};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("regularface-nn-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ckpt.safetensors")
}

#[test]
fn sgd_momentum_matches_hand_computation() {
    let p = Param::new(Tensor::<f64>::from_vec(&[2], vec![1.0, -2.0]).unwrap());
    let mut opt = Optimizer::sgd(vec![("w".into(), p.clone())], 0.1, 0.9, 0.01);
    let mut buf = [0.0f64; 2];
    let mut w = [1.0f64, -2.0];
    for step in 0..3 {
        p.zero_grad();
        p.var().mul(&p.var()).sum().backward().unwrap(); // g = 2w
        opt.step();
        for i in 0..2 {
            let d = 2.0 * w[i] + 0.01 * w[i];
            buf[i] = if step == 0 { d } else { 0.9 * buf[i] + d };
            w[i] -= 0.1 * buf[i];
        }
        assert_eq!(p.value().to_vec(), w.to_vec());
    }
}

#[test]
fn nesterov_adam_adamw_and_decay_multipliers() {
    for method in [
        Method::Sgd {
            momentum: 0.9,
            nesterov: true,
        },
        Method::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        Method::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    ] {
        let p = Param::new(Tensor::<f64>::from_vec(&[1], vec![3.0]).unwrap());
        let bias = Param::new(Tensor::<f64>::from_vec(&[1], vec![3.0]).unwrap());
        let mut opt = Optimizer::new(
            method,
            vec![("w".into(), p.clone()), ("b.bias".into(), bias.clone())],
            0.01,
            0.1,
        );
        opt.exempt_biases_and_prelu();
        assert_eq!(opt.decay_mult("b.bias"), Some(0.0));
        p.var().sum().add(&bias.var().sum()).backward().unwrap(); // g = 1 for both
        opt.step();
        let (w, b) = (p.value().to_vec()[0], bias.value().to_vec()[0]);
        match method {
            Method::Sgd { .. } => {
                let d = 1.0 + 0.1 * 3.0;
                assert_abs_diff_eq!(w, 3.0 - 0.01 * (d + 0.9 * d), epsilon = 1e-12);
                assert_abs_diff_eq!(b, 3.0 - 0.01 * 1.9, epsilon = 1e-12);
            }
            Method::Adam { .. } => {
                // first Adam step moves by lr·sign(g) (bias-corrected m/√v = 1)
                assert_abs_diff_eq!(w, 3.0 - 0.01, epsilon = 1e-7);
                assert_abs_diff_eq!(b, 3.0 - 0.01, epsilon = 1e-7);
            }
            Method::AdamW { .. } => {
                assert_abs_diff_eq!(w, 3.0 * (1.0 - 0.01 * 0.1) - 0.01, epsilon = 1e-7);
                assert_abs_diff_eq!(b, 3.0 - 0.01, epsilon = 1e-7);
            }
        }
    }
}

#[test]
fn schedules() {
    let s = Schedule::sphereface(0.1, 28_000);
    assert_abs_diff_eq!(s.lr_at(0), 0.1);
    assert_abs_diff_eq!(s.lr_at(15_999), 0.1);
    assert_abs_diff_eq!(s.lr_at(16_000), 0.01, epsilon = 1e-15);
    assert_abs_diff_eq!(s.lr_at(24_000), 0.001, epsilon = 1e-15);
    let step = Schedule {
        base_lr: 1.0,
        decay: Decay::Step {
            step_size: 10,
            gamma: 0.5,
        },
        warmup_steps: 0,
    };
    assert_abs_diff_eq!(step.lr_at(25), 0.25);
    let cos = Schedule {
        base_lr: 1.0,
        decay: Decay::Cosine {
            total: 100,
            min_lr: 0.0,
        },
        warmup_steps: 10,
    };
    assert_abs_diff_eq!(cos.lr_at(0), 0.1);
    assert_abs_diff_eq!(cos.lr_at(9), 1.0);
    assert_abs_diff_eq!(cos.lr_at(50), 0.5, epsilon = 1e-12);
    assert_abs_diff_eq!(cos.lr_at(100), 0.0, epsilon = 1e-12);
}

/// A small model + head trained for `steps` steps from the current state.
fn train(
    net: &LeNetPlusPlus<f32>,
    head: &Linear<f32>,
    opt: &mut Optimizer<f32>,
    steps: usize,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    for _ in 0..steps {
        let x = Var::constant(Tensor::rand_normal(&[4, 1, 12, 12], 0.0, 1.0, &mut rng));
        let y: Vec<usize> = (0..4).map(|_| rng.below(3)).collect();
        head.forward(&net.forward(&x))
            .softmax_cross_entropy(&y)
            .backward()
            .unwrap();
        opt.step();
        net.zero_grad();
        head.zero_grad();
    }
}

fn model(seed: u64) -> (LeNetPlusPlus<f32>, Linear<f32>, Optimizer<f32>) {
    let mut rng = Rng::new(seed);
    let net = LeNetPlusPlus::new(1, (12, 12), 3, &mut rng);
    let head = Linear::xavier(3, 3, true, &mut rng);
    let mut params = net.parameters();
    params.extend(
        head.parameters()
            .into_iter()
            .map(|(n, p)| (format!("head.{n}"), p)),
    );
    let opt = Optimizer::sgd(params, 0.05, 0.9, 5e-4);
    (net, head, opt)
}

#[test]
fn save_load_is_bit_identical_and_training_resumes_exactly() {
    let path = scratch("resume");
    // Uninterrupted: 6 steps.
    let (net_a, head_a, mut opt_a) = model(1);
    train(&net_a, &head_a, &mut opt_a, 3, 10);
    train(&net_a, &head_a, &mut opt_a, 3, 11);
    // Interrupted: 3 steps, save everything, load into a fresh model, 3 more.
    let (net_b, head_b, mut opt_b) = model(1);
    train(&net_b, &head_b, &mut opt_b, 3, 10);
    let mut extra: Vec<(String, Tensor<f32>)> = head_b
        .state()
        .into_iter()
        .map(|(n, p)| (format!("head.{n}"), p.value().clone()))
        .collect();
    extra.extend(
        opt_b
            .state()
            .into_iter()
            .map(|(n, t)| (format!("optim.{n}"), t)),
    );
    let meta = BTreeMap::from([("model".to_string(), "lenetpp".to_string())]);
    checkpoint::save_module(&path, &net_b, &extra, &meta).unwrap();

    let (net_c, head_c, mut opt_c) = model(99); // different init: everything must come from the file
    let ck = checkpoint::load::<f32>(&path).unwrap();
    assert_eq!(ck.metadata["model"], "lenetpp");
    checkpoint::load_into(&net_c, &ck, &["head.", "optim."]).unwrap();
    for (n, p) in head_c.state() {
        p.set_value(ck.tensors[&format!("head.{n}")].clone());
    }
    let optim: BTreeMap<String, Tensor<f32>> = ck
        .tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("optim.").map(|k| (k.to_string(), v.clone())))
        .collect();
    opt_c.load_state(&optim).unwrap();
    // Same outputs right after loading...
    let x = Var::constant(Tensor::rand_normal(
        &[2, 1, 12, 12],
        0.0,
        1.0,
        &mut Rng::new(5),
    ));
    assert_eq!(
        no_grad(|| net_b.forward(&x)).value(),
        no_grad(|| net_c.forward(&x)).value()
    );
    // ...and the same weights after continuing.
    train(&net_c, &head_c, &mut opt_c, 3, 11);
    for ((n, a), (_, c)) in net_a.state().iter().zip(net_c.state()) {
        assert_eq!(&*a.value(), &*c.value(), "{n} differs after resume");
    }
    assert_eq!(opt_c.steps, 6);
}

#[test]
fn mismatched_checkpoints_are_refused_with_every_problem_named() {
    let path = scratch("mismatch");
    let net = LeNetPlusPlus::<f32>::new(1, (12, 12), 3, &mut Rng::new(0));
    let mut tensors: Vec<(String, Tensor<f32>)> = net
        .state()
        .into_iter()
        .map(|(n, p)| (n, p.value().clone()))
        .collect();
    tensors.retain(|(n, _)| n != "fc.bias");
    tensors
        .iter_mut()
        .find(|(n, _)| n == "conv2_1.weight")
        .unwrap()
        .1 = Tensor::zeros(&[64, 32, 3, 3]);
    tensors.push(("stray".into(), Tensor::zeros(&[1])));
    checkpoint::save(&path, &tensors, &[], &BTreeMap::new()).unwrap();
    let before: Vec<f32> = net.parameters()[0].1.value().to_vec();
    let err = checkpoint::load_into(&net, &checkpoint::load(&path).unwrap(), &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("missing tensor `fc.bias`"), "{msg}");
    assert!(msg.contains("`conv2_1.weight` has shape [64, 32, 3, 3] in the file, the model expects [64, 32, 5, 5]"), "{msg}");
    assert!(msg.contains("unexpected tensor `stray`"), "{msg}");
    assert!(matches!(err, CheckpointError::Mismatch { ref problems } if problems.len() == 3));
    assert_eq!(
        net.parameters()[0].1.value().to_vec(),
        before,
        "nothing loaded on failure"
    );
}

#[test]
fn corrupt_checkpoints_are_detected_and_writes_are_atomic() {
    let path = scratch("corrupt");
    let t = vec![(
        "w".to_string(),
        Tensor::<f32>::rand_normal(&[64], 0.0, 1.0, &mut Rng::new(1)),
    )];
    checkpoint::save(&path, &t, &[], &BTreeMap::new()).unwrap();
    assert!(
        !path.with_file_name("ckpt.safetensors.tmp").exists(),
        "temporary file renamed away"
    );
    let good = std::fs::read(&path).unwrap();
    // flip one bit of the data
    let mut bad = good.clone();
    let last = bad.len() - 5;
    bad[last] ^= 0x10;
    std::fs::write(&path, &bad).unwrap();
    let err = checkpoint::load::<f32>(&path).unwrap_err();
    assert!(matches!(err, CheckpointError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("corrupt"));
    // truncate
    std::fs::write(&path, &good[..good.len() - 7]).unwrap();
    let err = checkpoint::load::<f32>(&path).unwrap_err();
    assert!(matches!(err, CheckpointError::Format { .. }), "{err}");
    // missing file
    let err = checkpoint::load::<f32>(&path.with_file_name("nope.safetensors")).unwrap_err();
    assert!(err.to_string().contains("nope.safetensors"));
}

#[test]
fn a_failed_atomic_write_removes_its_temporary_file_and_keeps_the_old_one() {
    let dir = scratch("failed-write");
    // The target is a non-empty folder: the temporary file is written, the rename fails.
    let target = dir.join("checkpoint.safetensors");
    std::fs::create_dir_all(target.join("inside")).unwrap();
    let err = nn::checkpoint::write_atomic(&target, b"new bytes").unwrap_err();
    assert!(err.to_string().contains("checkpoint.safetensors"), "{err}");
    assert!(
        !nn::checkpoint::temporary_path(&target).exists(),
        "the .tmp stays behind"
    );
    assert!(target.join("inside").is_dir(), "the old contents are kept");
    // and a write that works leaves no temporary file either
    let ok = dir.join("ok.bin");
    nn::checkpoint::write_atomic(&ok, b"bytes").unwrap();
    assert_eq!(std::fs::read(&ok).unwrap(), b"bytes");
    assert!(!nn::checkpoint::temporary_path(&ok).exists());
}
