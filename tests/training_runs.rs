//! Training end to end on synthetic data: it learns, resume is exact, a
//! diverging loss stops the run cleanly.

use regularface::config::{LossKind, ModelKind, TrainConfig};
use regularface::data::synthetic::{generate, SyntheticConfig};
use regularface::data::FaceSet;
use regularface::runs::{evaluate, prepare, DataSpec};
use regularface::train::{load_model, train, TrainOptions};
use std::path::PathBuf;
use std::sync::Arc;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("regularface-app-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn small_config(steps: u64) -> TrainConfig {
    TrainConfig {
        model: ModelKind::Sphereface4,
        loss: LossKind::Asoftmax,
        exclusive: 1.0,
        input: (3, 32, 32),
        feature_dim: 64,
        steps,
        batch: 16,
        ..TrainConfig::default()
    }
}

fn small_data() -> Arc<FaceSet> {
    Arc::new(generate(&SyntheticConfig {
        identities: 12,
        images_per_identity: 6,
        height: 32,
        width: 32,
        seed: 3,
        difficulty: 1.0,
    }))
}

#[test]
fn resume_is_bit_identical_to_an_uninterrupted_run() {
    let cfg = small_config(12);
    let data = small_data();
    let whole = train(&cfg, data.clone(), &TrainOptions::new(&scratch("whole"))).unwrap();
    let dir = scratch("halves");
    let first = train(
        &cfg,
        data.clone(),
        &TrainOptions {
            stop_after: Some(6),
            ..TrainOptions::new(&dir)
        },
    )
    .unwrap();
    assert_eq!(first.steps, 6);
    let second = train(
        &cfg,
        data,
        &TrainOptions {
            resume: Some(first.checkpoint.clone()),
            ..TrainOptions::new(&dir)
        },
    )
    .unwrap();
    assert_eq!(second.steps, 12);
    for ((n, a), (_, b)) in whole
        .model
        .parameters()
        .iter()
        .zip(second.model.parameters())
    {
        assert_eq!(&*a.value(), &*b.value(), "{n} differs after resume");
    }
    assert_eq!(
        whole.model.asoftmax.as_ref().unwrap().schedule.iteration,
        12
    );
    assert_eq!(
        second.model.asoftmax.as_ref().unwrap().schedule.iteration,
        12
    );
    // and the reloaded checkpoint matches too
    let (reloaded, _) = load_model(&second.checkpoint).unwrap();
    assert_eq!(
        &*reloaded.classifier.value(),
        &*whole.model.classifier.value()
    );
}

#[test]
fn a_diverging_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let cfg = small_config(10);
    let dir = scratch("nan");
    let opts = TrainOptions {
        checkpoint_every: 4,
        inject_nan_at: Some(6),
        ..TrainOptions::new(&dir)
    };
    let err = format!(
        "{:#}",
        train(&cfg, small_data(), &opts).err().expect("must stop")
    );
    assert!(
        err.contains("diverged at step 7") && err.contains("main") && err.contains("exclusive"),
        "{err}"
    );
    assert!(err.contains("step 4") && err.contains("intact"), "{err}");
    let (model, ck) = load_model(&dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.metadata["regularface.step"], "4");
    assert!(model.classifier.value().all_finite());
}

#[test]
fn a_short_run_on_synthetic_faces_beats_chance() {
    let cfg = TrainConfig {
        steps: 120,
        batch: 32,
        input: (3, 40, 32),
        feature_dim: 128,
        exclusive: 0.0,
        ..small_config(120)
    };
    let spec = DataSpec::Synthetic {
        identities: 40,
        images_per_identity: 10,
        test_identities: 40,
        seed: 5,
    };
    let data = prepare(&spec, cfg.input).unwrap();
    let dir = scratch("learn");
    let out = train(&cfg, Arc::new(data.train.clone()), &TrainOptions::new(&dir)).unwrap();
    let report = evaluate(
        &out.model,
        &data,
        &out.checkpoint,
        &dir,
        Some(&dir.join("metrics.jsonl")),
    )
    .unwrap();
    let v = &report.verification;
    assert!(
        v.mean_accuracy > 0.65,
        "verification accuracy {:.3} (chance is 0.5)",
        v.mean_accuracy
    );
    assert!(v.auc > 0.7, "AUC {:.3}", v.auc);
    for f in [
        "report.json",
        "roc.svg",
        "sep_hist.svg",
        "loss.svg",
        "metrics.jsonl",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
}
