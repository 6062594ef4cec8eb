//! Our checkpoints in PyTorch: `interop/pytorch/regularface_torch` builds
//! every backbone from a checkpoint's config, loads its `backbone.*` tensors
//! with `strict=True` and gives our features (1e-4 relative). Runs when
//! `python3` can import torch and safetensors; says why it skipped otherwise.

use regularface::checkpoint::{self, RunRecord};
use regularface::config::{ModelKind, TrainConfig};
use regularface::model::FaceModel;
use std::path::Path;
use std::process::Command;
use tensor::{Rng, Tensor};

fn torch_available() -> bool {
    matches!(
        Command::new("python3").args(["-c", "import torch, safetensors"]).output(),
        Ok(o) if o.status.success()
    )
}

#[test]
fn every_backbone_loads_strictly_into_pytorch_with_the_same_features() {
    if !torch_available() {
        println!("skipped: the PyTorch check needs python3 with torch and safetensors");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rf-torch-backbones-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (kind, input) in [
        (ModelKind::Sphereface4, (3, 56, 48)),
        (ModelKind::Sphereface20, (3, 112, 96)),
        (ModelKind::Lenetpp, (1, 28, 28)),
        (ModelKind::Mobilefacenet, (3, 112, 112)),
        (ModelKind::Iresnet18, (3, 112, 112)),
    ] {
        let cfg = TrainConfig {
            model: kind,
            input,
            ..TrainConfig::DEFAULT
        };
        let model = FaceModel::new(&cfg, 4).unwrap();
        let mut rng = Rng::new(9);
        nn::randomise_like_trained(model.backbone.as_ref(), &mut rng);
        let ckpt = dir.join(format!("{kind:?}.safetensors"));
        checkpoint::save(&ckpt, &model, &model.optimizer(), &RunRecord::default()).unwrap();
        let (c, h, w) = input;
        let x = Tensor::<f32>::rand_normal(&[2, c, h, w], 0.0, 1.0, &mut rng);
        model.backbone.set_training(false);
        let y = autograd::no_grad(|| model.backbone.forward(&autograd::Var::constant(x.clone())))
            .value()
            .clone();
        let io = dir.join(format!("{kind:?}_io.safetensors"));
        let tensors = [("input".to_string(), x), ("output".to_string(), y)];
        nn::checkpoint::save(&io, &tensors, &[], &Default::default()).unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/pytorch/check_backbone.py");
        let out = Command::new("python3")
            .arg(script)
            .arg(&ckpt)
            .arg(&io)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{kind:?}: {text}");
        println!("{kind:?}: {}", text.trim());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
