//! ONNX export: every backbone's exported graph, run by a pure-Rust ONNX
//! runtime (tract), gives our features (1e-4 relative) at two batch sizes
//! (the batch is symbolic), and by onnxruntime when Python has it; the
//! metadata says how to prepare the input.

use regularface::config::{ModelKind, TrainConfig};
use regularface::export::onnx_model;
use regularface::model::FaceModel;
use std::process::Command;
use tensor::{Rng, Tensor};
use tract_onnx::prelude::*;

/// A model of `kind` whose BatchNorms hold non-trivial statistics (as after training).
fn model(kind: ModelKind, input: (usize, usize, usize)) -> FaceModel {
    let cfg = TrainConfig {
        model: kind,
        input,
        ..TrainConfig::DEFAULT
    };
    let m = FaceModel::new(&cfg, 3).unwrap();
    nn::randomise_like_trained(m.backbone.as_ref(), &mut Rng::new(5));
    m
}

/// Our inference features of `x` `[n, c, h, w]`.
fn ours(m: &FaceModel, x: &Tensor<f32>) -> Vec<f32> {
    m.backbone.set_training(false);
    m.backbone.fold_batchnorm();
    let y = autograd::no_grad(|| m.backbone.forward(&autograd::Var::constant(x.clone())));
    y.value().to_vec()
}

#[test]
fn every_backbone_exports_to_onnx_that_a_runtime_runs_to_our_features() {
    for (kind, input) in [
        (ModelKind::Sphereface4, (3, 56, 48)),
        (ModelKind::Sphereface20, (3, 112, 96)),
        (ModelKind::Lenetpp, (1, 28, 28)),
        (ModelKind::Mobilefacenet, (3, 112, 112)),
        (ModelKind::Iresnet18, (3, 112, 112)),
    ] {
        let m = model(kind, input);
        let bytes = onnx_model(&m).unwrap();
        let runnable = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(&bytes))
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let (c, h, w) = input;
        for n in [1, 3] {
            let x = Tensor::<f32>::rand_normal(&[n, c, h, w], 0.0, 1.0, &mut Rng::new(n as u64));
            let want = ours(&m, &x);
            let feed: tract_onnx::prelude::Tensor =
                tract_ndarray::Array4::from_shape_vec((n, c, h, w), x.to_vec())
                    .unwrap()
                    .into();
            let out = runnable.run(tvec!(feed.into())).unwrap();
            assert_eq!(out[0].shape(), &[n, m.cfg.feature_dim], "{kind:?}");
            let got: Vec<f32> = out[0]
                .clone()
                .into_tensor()
                .to_plain_array_view::<f32>()
                .unwrap()
                .iter()
                .copied()
                .collect();
            let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
            let err = got
                .iter()
                .zip(&want)
                .fold(0f32, |a, (g, w)| a.max((g - w).abs()))
                / scale;
            assert!(
                err < 1e-4,
                "{kind:?} batch {n}: ONNX differs from ours by {err} (relative)"
            );
            if n == 3 {
                check_with_onnxruntime(&bytes, &x, &want, kind);
            }
        }
    }
}

/// Also run the model with onnxruntime when Python has it (prints why not otherwise).
fn check_with_onnxruntime(bytes: &[u8], x: &Tensor<f32>, want: &[f32], kind: ModelKind) {
    let probe = Command::new("python3")
        .args(["-c", "import onnxruntime, safetensors, numpy"])
        .output();
    if !matches!(probe, Ok(ref o) if o.status.success()) {
        println!("skipped: the onnxruntime check of {kind:?} needs python3 with onnxruntime, safetensors and numpy");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rf-onnx-{kind:?}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (model, io) = (dir.join("model.onnx"), dir.join("io.safetensors"));
    std::fs::write(&model, bytes).unwrap();
    let n = x.shape()[0];
    let out = Tensor::from_vec(&[n, want.len() / n], want.to_vec()).unwrap();
    let tensors = [
        ("input".to_string(), x.clone()),
        ("output".to_string(), out),
    ];
    nn::checkpoint::save(&io, &tensors, &[], &Default::default()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pytorch/check_onnx.py");
    let run = Command::new("python3")
        .arg(script)
        .arg(&model)
        .arg(&io)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{kind:?}: {text}");
    println!("{kind:?}: {}", text.trim());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_model_says_how_to_prepare_its_input() {
    let m = model(ModelKind::Sphereface4, (3, 56, 48));
    let bytes = onnx_model(&m).unwrap();
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut std::io::Cursor::new(&bytes))
        .unwrap();
    assert_eq!(proto.opset_import[0].version, 13);
    let meta: std::collections::BTreeMap<String, String> = proto
        .metadata_props
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    assert_eq!(meta["regularface.model"], "sphereface4");
    assert!(meta["regularface.preprocessing"].contains("(x - 127.5) / 128"));
    assert!(meta["regularface.input"].contains("(batch, 3, 56, 48)"));
    let cfg = TrainConfig::from_json(&meta["regularface.config"]).unwrap();
    assert_eq!(cfg.model, ModelKind::Sphereface4);
    let graph = proto.graph.unwrap();
    assert_eq!(graph.input[0].name, "input");
    assert_eq!(graph.output[0].name, "features");
    assert!(graph.node.iter().all(|n| n.op_type != "BatchNormalization"));
}
