//! Training end to end on synthetic data: it learns, resume is exact (also
//! with the refreshing regularizer), the regularizer's gradient reaches the
//! classifier, a diverging loss stops the run cleanly.

mod common;

use autograd::Var;
use facelosses::exclusive_regularizer;
use regularface::checkpoint;
use regularface::config::{LossKind, ModelKind, TrainConfig};
use regularface::data::source::{prepare, DataSpec};
use regularface::model::FaceModel;
use regularface::report::evaluate;
use regularface::train::{train, TrainOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tensor::{Rng, Tensor};

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
        lambda_r: 1.0,
        input: (3, 32, 32),
        feature_dim: 64,
        steps,
        batch: 16,
        ..TrainConfig::DEFAULT
    }
}

/// Every tensor of a checkpoint (weights, head, optimiser state) as raw bits.
fn bits(path: &Path) -> BTreeMap<String, Vec<u32>> {
    let ck = nn::checkpoint::load::<f32>(path).unwrap();
    ck.tensors
        .into_iter()
        .map(|(k, v)| (k, v.to_vec().iter().map(|x| x.to_bits()).collect()))
        .collect()
}

#[test]
fn resume_is_bit_identical_to_an_uninterrupted_run_exact_and_refreshing() {
    let data = common::small_synthetic_data();
    for refresh in [1, 5] {
        let cfg = TrainConfig {
            exclusive_refresh: refresh,
            ..small_config(12)
        };
        let whole_dir = scratch(&format!("whole{refresh}"));
        let whole = train(&cfg, &data, &TrainOptions::new(&whole_dir)).unwrap();
        let dir = scratch(&format!("halves{refresh}"));
        let first = train(
            &cfg,
            &data,
            &TrainOptions {
                stop_after: Some(6),
                ..TrainOptions::new(&dir)
            },
        )
        .unwrap();
        assert_eq!(first.steps, 6);
        let second = train(
            &cfg,
            &data,
            &TrainOptions {
                resume: Some(first.checkpoint.clone()),
                ..TrainOptions::new(&dir)
            },
        )
        .unwrap();
        assert_eq!(second.steps, 12);
        let (want, got) = (bits(&whole.checkpoint), bits(&second.checkpoint));
        assert_eq!(want.len(), got.len());
        assert!(want.keys().any(|k| k.starts_with("optim.")));
        for (name, w) in &want {
            assert_eq!(
                Some(w),
                got.get(name),
                "refresh {refresh}: {name} differs after resume"
            );
        }
        for run in [&whole, &second] {
            assert_eq!(run.model.asoftmax.as_ref().unwrap().iteration, 12);
        }
        let reloaded = checkpoint::load(&second.checkpoint).unwrap();
        assert_eq!(reloaded.record.step, 12);
        assert_eq!(reloaded.record.data.as_ref(), Some(&data.spec));
        let t = reloaded
            .record
            .threshold
            .expect("final checkpoint has a threshold");
        assert!(
            t.value.is_finite() && t.fitted_on.contains("training identities"),
            "{t:?}"
        );
        assert_eq!(
            reloaded.model.exclusive.unwrap().cache,
            whole.model.exclusive.unwrap().cache
        );
    }
}

#[test]
fn training_adds_lambda_r_times_the_regularizer_gradient_to_the_classifier() {
    let mut rng = Rng::new(4);
    let images = Tensor::<f32>::rand_normal(&[8, 3, 32, 32], 0.0, 1.0, &mut rng);
    let labels: Vec<usize> = (0..8).map(|i| i % 5).collect();
    let grad_of = |lambda_r: f64| {
        let cfg = TrainConfig {
            lambda_r,
            loss: LossKind::Cosface,
            margin: LossKind::Cosface.default_margin(),
            ..small_config(1)
        };
        let mut model = FaceModel::new(&cfg, 5).unwrap();
        let (loss, terms, _) = model.loss(&images, &labels, 0);
        loss.backward().unwrap();
        let g = model.classifier.grad().clone().unwrap();
        let w = model.classifier.value().clone();
        (g, terms, w)
    };
    let (plain, plain_terms, w) = grad_of(0.0);
    let (with, terms, _) = grad_of(2.5);
    let leaf = Var::leaf(w);
    let (lr, _) = exclusive_regularizer(&leaf);
    let lr_value = lr.value().item().unwrap() as f64;
    let reg_grad = lr.backward().unwrap().get(&leaf).unwrap().clone();
    assert!(
        (terms.regularizer - 2.5 * lr_value).abs() < 1e-5,
        "{terms:?}"
    );
    assert!((terms.total - plain_terms.total - 2.5 * lr_value).abs() < 1e-4);
    let (p, g, r) = (plain.to_vec(), with.to_vec(), reg_grad.to_vec());
    let worst = p
        .iter()
        .zip(&g)
        .zip(&r)
        .map(|((p, g), r)| (g - p - 2.5 * r).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-6, "largest deviation {worst}");
    assert!(
        r.iter().any(|v| v.abs() > 1e-3),
        "the regularizer's gradient is not trivial"
    );
}

#[test]
fn a_diverging_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let cfg = small_config(10);
    let dir = scratch("nan");
    // a stale temporary file from a write killed in an earlier run is cleared at start
    let stale = nn::checkpoint::temporary_path(&dir.join("checkpoint.safetensors"));
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    let opts = TrainOptions {
        checkpoint_every: 4,
        inject_nan_at: Some(6),
        ..TrainOptions::new(&dir)
    };
    let err = format!(
        "{:#}",
        train(&cfg, &common::small_synthetic_data(), &opts)
            .err()
            .expect("must stop")
    );
    assert!(
        err.contains("diverged at step 7") && err.contains("main") && err.contains("regularizer"),
        "{err}"
    );
    assert!(err.contains("step 4") && err.contains("intact"), "{err}");
    assert!(!stale.exists(), "the stale temporary file is removed");
    let loaded = checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!(loaded.record.step, 4);
    assert!(
        loaded.record.threshold.is_none(),
        "an intermediate checkpoint"
    );
    assert!(loaded.model.classifier.value().all_finite());
}

#[test]
fn a_short_run_on_synthetic_faces_beats_chance() {
    let cfg = TrainConfig {
        steps: 120,
        batch: 32,
        input: (3, 40, 32),
        feature_dim: 128,
        lambda_r: 0.0,
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
    let out = train(&cfg, &data, &TrainOptions::new(&dir)).unwrap();
    let report = evaluate(
        &out.model,
        &data,
        &out.checkpoint,
        &dir,
        Some(&dir.join("metrics.jsonl")),
        vec![],
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

#[test]
fn configurations_of_older_checkpoints_still_parse() {
    let old = r#"{"model":"sphereface4","loss":"asoftmax","exclusive":2.0,"exclusive_refresh":1,
        "margin":4.0,"scale":30.0,"center_weight":0.01,"center_alpha":0.5,"lambda_base":1000.0,
        "lambda_gamma":0.12,"lambda_power":1.0,"lambda_min":5.0,"input":[3,56,48],"feature_dim":512,
        "steps":2000,"batch":32,"lr":0.05,"momentum":0.9,"weight_decay":0.0005,"seed":1,"flip":true}"#;
    let cfg = TrainConfig::from_json(old).unwrap();
    assert_eq!(
        cfg,
        TrainConfig {
            lambda_r: 2.0,
            steps: 2000,
            ..TrainConfig::DEFAULT
        }
    );
    let new = serde_json::to_string(&cfg).unwrap();
    assert_eq!(TrainConfig::from_json(&new).unwrap(), cfg);
    assert!(TrainConfig::from_json("{\"model\": 3}").is_err());
}
