//! insightface's backbones inside the application: MobileFaceNet learns on the
//! synthetic default, its checkpoint carries the BatchNorm state, evaluation
//! runs the folded network, and the weight-decay recipe follows insightface.

use regularface::checkpoint;
use regularface::config::{LossKind, ModelKind, TrainConfig};
use regularface::data::source::{prepare, DataSpec};
use regularface::eval::features;
use regularface::model::FaceModel;
use regularface::report::evaluate;
use regularface::train::{train, TrainOptions};

#[test]
fn mobilefacenet_trains_on_synthetic_faces_to_better_than_chance() {
    let cfg = TrainConfig {
        model: ModelKind::Mobilefacenet,
        input: ModelKind::Mobilefacenet.default_input(),
        loss: LossKind::Softmax,
        lambda_r: 0.0,
        steps: 60,
        batch: 16,
        ..TrainConfig::DEFAULT
    };
    let spec = DataSpec::Synthetic {
        identities: 20,
        images_per_identity: 10,
        test_identities: 20,
        seed: 1,
    };
    let data = prepare(&spec, cfg.input).unwrap();
    let dir = std::env::temp_dir().join(format!("regularface-mbf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = train(&cfg, &data, &TrainOptions::new(&dir)).unwrap();
    let report = evaluate(&out.model, &data, &out.checkpoint, &dir, None, vec![]).unwrap();
    let v = &report.verification;
    assert!(v.auc > 0.7, "AUC {:.3} (chance is 0.5)", v.auc);
    assert!(v.mean_accuracy > 0.65, "accuracy {:.3}", v.mean_accuracy);

    // The checkpoint holds insightface's BatchNorm state, counters as int64.
    let ck = nn::checkpoint::load::<f32>(&out.checkpoint).unwrap();
    let counters = ck
        .counters
        .iter()
        .filter(|(k, _)| k.starts_with("backbone.") && k.ends_with(".num_batches_tracked"))
        .count();
    assert_eq!(counters, 50, "one counter per BatchNorm of MobileFaceNet");
    assert!(
        ck.counters.values().all(|&c| c == 60),
        "one count per training step"
    );

    // Reloaded, it gives the same (folded) features as the trained model.
    let loaded = checkpoint::load(&out.checkpoint).unwrap().model;
    let (a, b) = (
        features(out.model.backbone.as_ref(), &data.eval, 8, false),
        features(loaded.backbone.as_ref(), &data.eval, 8, false),
    );
    assert!(a.max_abs_diff(&b).unwrap() < 1e-5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn insightface_backbones_decay_every_trained_parameter_sphereface_exempts_biases() {
    let mbf = FaceModel::new(
        &TrainConfig {
            model: ModelKind::Mobilefacenet,
            input: (3, 112, 112),
            ..TrainConfig::DEFAULT
        },
        3,
    )
    .unwrap();
    let opt = mbf.optimizer();
    for name in [
        "backbone.layers.0.layers.1.bias",
        "backbone.layers.0.layers.1.weight",
        "backbone.layers.0.layers.2.weight",
        "head.weight",
    ] {
        assert_eq!(opt.decay_mult(name), Some(1.0), "{name}");
    }
    let sphere = FaceModel::new(&TrainConfig::DEFAULT, 3).unwrap();
    let opt = sphere.optimizer();
    assert_eq!(opt.decay_mult("backbone.stage1.conv.bias"), Some(0.0));
    assert_eq!(opt.decay_mult("backbone.stage1.prelu.weight"), Some(0.0));
    assert_eq!(opt.decay_mult("backbone.stage1.conv.weight"), Some(1.0));
    // iResNet's `features.weight` is frozen at 1, as insightface's: not trained at all.
    let r18 = FaceModel::new(
        &TrainConfig {
            model: ModelKind::Iresnet18,
            input: (3, 112, 112),
            ..TrainConfig::DEFAULT
        },
        3,
    )
    .unwrap();
    let opt = r18.optimizer();
    assert_eq!(opt.decay_mult("backbone.features.weight"), None);
    assert_eq!(opt.decay_mult("backbone.features.bias"), Some(1.0));
}
