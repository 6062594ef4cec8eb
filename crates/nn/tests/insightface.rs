//! insightface's backbones: parameter counts, the keys, dtypes and shapes of
//! the checkpoints we write against committed lists of insightface's own
//! `state_dict`s, BatchNorm's `num_batches_tracked`, and BatchNorm folding.
//!
//! The lists in `tests/fixtures/insightface_<model>.txt` were generated once
//! from insightface's published definitions with
//! `interop/pytorch/insightface_keys.py <insightface clone> crates/nn/tests/fixtures`
//! (its first line names the insightface commit and PyTorch's parameter count).

use autograd::{no_grad, Var};
use nn::{BatchNorm, Conv2d, IResNet, Linear, MobileFaceNet, Module, Sequential};
use safetensors::SafeTensors;
use std::path::Path;
use tensor::{Conv2dParams, Rng, Tensor};

#[test]
fn iresnets_have_insightfaces_parameter_counts() {
    // PyTorch's count includes `features.weight`, which insightface freezes
    // (requires_grad = False); we keep it as a saved, untrained tensor.
    for (depth, count) in [
        (18, 24_025_600),
        (34, 34_139_328),
        (50, 43_590_848),
        (100, 65_156_160),
    ] {
        let net = IResNet::<f32>::new(depth, 512, &mut Rng::new(0)).unwrap();
        assert_eq!(net.num_parameters() + 512, count, "iresnet{depth}");
        assert!(net.parameters().iter().all(|(n, _)| n != "features.weight"));
    }
    assert!(IResNet::<f32>::new(26, 512, &mut Rng::new(0))
        .err()
        .unwrap()
        .contains("18, 34, 50 or 100"));
}

#[test]
fn iresnet18_maps_faces_to_512_features() {
    let net = IResNet::<f32>::new(18, 512, &mut Rng::new(1)).unwrap();
    let x = Var::constant(Tensor::rand_normal(
        &[2, 3, 112, 112],
        0.0,
        1.0,
        &mut Rng::new(2),
    ));
    let y = no_grad(|| net.forward(&x));
    assert_eq!(y.shape(), &[2, 512]);
    assert!(y.value().all_finite());
}

/// `(key, dtype, shape)` lines of a committed insightface list.
fn insightface_list(model: &str) -> Vec<(String, String, Vec<usize>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("insightface_{model}.txt"));
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let (key, dtype, shape) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let shape = shape
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .filter(|d| !d.is_empty())
                .map(|d| d.parse().unwrap())
                .collect();
            (key.to_string(), dtype.to_string(), shape)
        })
        .collect()
}

/// Save `net` as a checkpoint and compare every stored tensor's key, dtype and
/// shape with insightface's list, in both directions.
fn check_checkpoint_against_list(net: &dyn Module<f32>, model: &str) {
    let dir = std::env::temp_dir().join(format!("rf_insightface_{model}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ck.safetensors");
    nn::checkpoint::save_module(&path, net, &[], &Default::default()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ours: Vec<(String, String, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let dtype = match view.dtype() {
                safetensors::Dtype::F32 => "float32",
                safetensors::Dtype::I64 => "int64",
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, dtype.to_string(), view.shape().to_vec())
        })
        .collect();
    let theirs = insightface_list(model);
    let mut problems = vec![];
    for (key, dtype, shape) in &theirs {
        match ours.iter().find(|(n, _, _)| n == key) {
            None => problems.push(format!("missing {key}")),
            Some((_, d, s)) if d != dtype || s != shape => problems.push(format!(
                "{key}: ours {d} {s:?}, insightface {dtype} {shape:?}"
            )),
            Some(_) => {}
        }
    }
    for (name, _, _) in &ours {
        if !theirs.iter().any(|(k, _, _)| k == name) {
            problems.push(format!("extra {name}"));
        }
    }
    assert!(problems.is_empty(), "{model}:\n{}", problems.join("\n"));
    assert!(theirs
        .iter()
        .any(|(k, d, s)| k.ends_with("num_batches_tracked") && d == "int64" && s.is_empty()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mobilefacenet_checkpoint_has_insightfaces_keys_dtypes_and_shapes() {
    check_checkpoint_against_list(
        &MobileFaceNet::<f32>::new(512, &mut Rng::new(3)),
        "mobilefacenet",
    );
}

#[test]
fn iresnet18_checkpoint_has_insightfaces_keys_dtypes_and_shapes() {
    let net = IResNet::<f32>::new(18, 512, &mut Rng::new(4)).unwrap();
    check_checkpoint_against_list(&net, "iresnet18");
}

#[test]
fn num_batches_tracked_counts_training_batches_and_round_trips_as_int64() {
    let bn = BatchNorm::<f32>::new(3);
    let x = Var::constant(Tensor::rand_normal(
        &[4, 3, 2, 2],
        0.0,
        1.0,
        &mut Rng::new(5),
    ));
    for _ in 0..3 {
        bn.forward(&x);
    }
    bn.set_training(false);
    bn.forward(&x); // evaluation does not count
    assert_eq!(bn.num_batches_tracked.value().item().unwrap(), 3.0);
    let dir = std::env::temp_dir().join(format!("rf_nbt_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bn.safetensors");
    nn::checkpoint::save_module(&path, &bn, &[], &Default::default()).unwrap();
    let ck = nn::checkpoint::load::<f32>(&path).unwrap();
    assert_eq!(ck.counters.get("num_batches_tracked"), Some(&3));
    assert!(!ck.tensors.contains_key("num_batches_tracked"));
    let fresh = BatchNorm::<f32>::new(3);
    nn::checkpoint::load_into(&fresh, &ck, &[]).unwrap();
    assert_eq!(fresh.num_batches_tracked.value().item().unwrap(), 3.0);
    // A checkpoint without the counter (written before it existed) still loads, at 0.
    let mut old = ck.clone();
    old.counters.clear();
    nn::checkpoint::load_into(&fresh, &old, &[]).unwrap();
    assert_eq!(fresh.num_batches_tracked.value().item().unwrap(), 0.0);
    // A float where the model expects the int64 counter is a mismatch.
    old.tensors
        .insert("num_batches_tracked".into(), Tensor::scalar(1.0));
    let err = nn::checkpoint::load_into(&fresh, &old, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("int64 counter"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Largest |folded − unfolded| relative to the largest |unfolded|.
fn fold_error(net: &dyn Module<f32>, x: &Tensor<f32>) -> f32 {
    net.set_training(false);
    let x = Var::constant(x.clone());
    let plain = no_grad(|| net.forward(&x)).value().clone();
    net.fold_batchnorm();
    let folded = no_grad(|| net.forward(&x)).value().clone();
    let scale = plain.to_vec().iter().fold(0f32, |m, v| m.max(v.abs()));
    plain.max_abs_diff(&folded).unwrap() / scale
}

#[test]
fn folding_batchnorm_keeps_mobilefacenet_and_iresnet_outputs() {
    let mut rng = Rng::new(6);
    let x = Tensor::rand_normal(&[2, 3, 112, 112], 0.0, 1.0, &mut rng);
    let mbf = MobileFaceNet::<f32>::new(512, &mut rng);
    nn::randomise_like_trained(&mbf, &mut rng);
    let err = fold_error(&mbf, &x);
    assert!(
        err < 1e-5,
        "MobileFaceNet: folded differs by {err} (relative)"
    );
    let r18 = IResNet::<f32>::new(18, 512, &mut rng).unwrap();
    nn::randomise_like_trained(&r18, &mut rng);
    let err = fold_error(&r18, &x);
    assert!(err < 1e-5, "iResNet-18: folded differs by {err} (relative)");
}

#[test]
fn folding_changes_the_layers_it_should_and_training_undoes_it() {
    let mut rng = Rng::new(7);
    let net = Sequential::<f32>::new()
        .push(Conv2d::from_tensors(
            Tensor::rand_normal(&[4, 3, 3, 3], 0.0, 0.5, &mut rng),
            Some(Tensor::rand_normal(&[4], 0.0, 0.5, &mut rng)),
            Conv2dParams::new(1, 1),
        ))
        .push(BatchNorm::new(4))
        .push(nn::Flatten)
        .push(Linear::xavier(4 * 5 * 5, 6, false, &mut rng))
        .push(BatchNorm::new(6));
    nn::randomise_like_trained(&net, &mut rng);
    let x = Tensor::rand_normal(&[3, 3, 5, 5], 0.0, 1.0, &mut rng);
    let err = fold_error(&net, &x);
    assert!(err < 1e-6, "conv+BN, linear+BN: {err}");
    // Folded evaluation skips the BatchNorms: changing their statistics now has no effect ...
    let xv = Var::constant(x.clone());
    let before = no_grad(|| net.forward(&xv)).value().clone();
    for (name, p) in net.state() {
        if name.ends_with("running_mean") {
            let moved = p.value().add_scalar(1.0);
            p.set_value(moved);
        }
    }
    let after = no_grad(|| net.forward(&xv)).value().clone();
    assert_eq!(before.to_vec(), after.to_vec());
    // ... and training mode drops the folded copies, so evaluation sees them again.
    net.set_training(true);
    net.set_training(false);
    let refreshed = no_grad(|| net.forward(&xv)).value().clone();
    assert!(before.max_abs_diff(&refreshed).unwrap() > 1e-3);
    // The saved tensors are the trained ones, never the folded ones.
    assert_eq!(net.state().len(), 2 + 5 + 1 + 5);
}

#[test]
fn training_mode_batchnorm_does_not_fold() {
    let mut rng = Rng::new(8);
    let net = Sequential::<f32>::new()
        .push(Conv2d::from_tensors(
            Tensor::rand_normal(&[2, 1, 1, 1], 0.0, 1.0, &mut rng),
            None,
            Conv2dParams::new(1, 0),
        ))
        .push(BatchNorm::new(2));
    net.fold_batchnorm(); // still in training mode: nothing happens
    let x = Var::constant(Tensor::rand_normal(&[8, 1, 3, 3], 0.0, 1.0, &mut rng));
    let y = net.forward(&x).value().clone();
    for c in 0..2 {
        assert!(
            y.slice_axis(1, c, c + 1).mean_all().abs() < 1e-5,
            "channel {c} is batch-normalised"
        );
    }
}

/// Why the PyTorch round trip cannot run here, if it cannot.
fn pytorch_unavailable() -> Option<String> {
    let Ok(clone) = std::env::var("INSIGHTFACE_DIR") else {
        return Some("INSIGHTFACE_DIR (a clone of deepinsight/insightface) is not set".into());
    };
    if !Path::new(&clone)
        .join("recognition/arcface_torch/backbones")
        .is_dir()
    {
        return Some(format!(
            "INSIGHTFACE_DIR {clone} has no recognition/arcface_torch/backbones"
        ));
    }
    let torch = std::process::Command::new("python3")
        .args(["-c", "import torch, safetensors"])
        .output();
    match torch {
        Ok(o) if o.status.success() => None,
        _ => Some("python3 cannot import torch and safetensors".into()),
    }
}

/// Our checkpoint into insightface's class (strict) with equal outputs, and
/// the state PyTorch writes back after a training forward into ours, with
/// equal outputs and the counters carried.
fn pytorch_round_trip(net: &dyn Module<f32>, fresh: &dyn Module<f32>, name: &str) {
    if let Some(why) = pytorch_unavailable() {
        println!("skipped: the insightface round trip for {name} needs PyTorch: {why}");
        return;
    }
    let mut rng = Rng::new(11);
    nn::randomise_like_trained(net, &mut rng);
    net.set_training(false);
    let x = Tensor::rand_normal(&[2, 3, 112, 112], 0.0, 1.0, &mut rng);
    let y = no_grad(|| net.forward(&Var::constant(x.clone())))
        .value()
        .clone();
    let dir = std::env::temp_dir().join(format!("rf_torch_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ck, io) = (
        dir.join("ours.safetensors"),
        dir.join("ours_io.safetensors"),
    );
    nn::checkpoint::save_module(&ck, net, &[], &Default::default()).unwrap();
    let tensors = [("input".to_string(), x.clone()), ("output".to_string(), y)];
    nn::checkpoint::save(&io, &tensors, &[], &Default::default()).unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/pytorch/check_insightface.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args([
            "--insightface",
            &std::env::var("INSIGHTFACE_DIR").unwrap(),
            "--model",
            name,
        ])
        .arg("--checkpoint")
        .arg(&ck)
        .arg("--io")
        .arg(&io)
        .arg("--out-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name}: {text}");
    println!("{name}: {}", text.trim());
    // Back: PyTorch's state loads strictly into a fresh network of ours.
    let back = nn::checkpoint::load::<f32>(&dir.join("back.safetensors")).unwrap();
    nn::checkpoint::load_into(fresh, &back, &[]).unwrap();
    let counters: Vec<i64> = back.counters.values().copied().collect();
    assert!(
        !counters.is_empty() && counters.iter().all(|&c| c == 1),
        "{counters:?}"
    );
    fresh.set_training(false);
    let want = nn::checkpoint::load::<f32>(&dir.join("back_io.safetensors"))
        .unwrap()
        .tensors["output"]
        .clone();
    let got = no_grad(|| fresh.forward(&Var::constant(x))).value().clone();
    let scale = want.to_vec().iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got.max_abs_diff(&want).unwrap() / scale;
    assert!(
        err < 1e-4,
        "{name}: PyTorch's state gives outputs {err} apart (relative)"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mobilefacenet_round_trips_through_insightfaces_pytorch_class() {
    let mut rng = Rng::new(12);
    let (net, fresh) = (
        MobileFaceNet::<f32>::new(512, &mut rng),
        MobileFaceNet::<f32>::new(512, &mut rng),
    );
    pytorch_round_trip(&net, &fresh, "mbf");
}

#[test]
fn iresnet18_round_trips_through_insightfaces_pytorch_class() {
    let mut rng = Rng::new(13);
    let net = IResNet::<f32>::new(18, 512, &mut rng).unwrap();
    let fresh = IResNet::<f32>::new(18, 512, &mut rng).unwrap();
    pytorch_round_trip(&net, &fresh, "r18");
}
