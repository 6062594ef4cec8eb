//! `regularface batch` and `regularface step` (the Rust half of the one-step
//! check against PyTorch): the written batch is the one training draws, and
//! one step from a checkpoint on it equals the step an uninterrupted run takes.

mod common;

use regularface::checkpoint;
use regularface::config::{LossKind, ModelKind, TrainConfig};
use regularface::data::source::PreparedData;
use regularface::interop::{one_step, read_batch, write_batch};
use regularface::train::{train, TrainOptions};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("regularface-interop-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_until(cfg: &TrainConfig, data: &PreparedData, dir: &Path, stop: u64) -> PathBuf {
    let opts = TrainOptions {
        stop_after: Some(stop),
        ..TrainOptions::new(dir)
    };
    train(cfg, data, &opts).unwrap().checkpoint
}

#[test]
fn one_step_from_a_checkpoint_equals_the_uninterrupted_runs_step() {
    let data = common::small_synthetic_data();
    for (loss, lambda_r, refresh) in [
        (LossKind::Asoftmax, 1.0, 1),
        (LossKind::Asoftmax, 0.0, 1),
        (LossKind::Center, 1.0, 3),
    ] {
        let cfg = TrainConfig {
            model: ModelKind::Sphereface4,
            loss,
            lambda_r,
            exclusive_refresh: refresh,
            input: (3, 32, 32),
            feature_dim: 64,
            steps: 12,
            batch: 16,
            ..TrainConfig::DEFAULT
        };
        let dir = scratch(&format!("{loss:?}{lambda_r}"));
        let at4 = run_until(&cfg, &data, &dir.join("a"), 4);
        let at5 = run_until(&cfg, &data, &dir.join("b"), 5);
        let batch = dir.join("batch.safetensors");
        let loaded = checkpoint::load(&at4).unwrap();
        assert_eq!(write_batch(&at4, &loaded, &data, &batch).unwrap(), (4, 16));
        let b = read_batch(&batch).unwrap();
        assert_eq!((b.step, b.images.shape()), (4, &[16, 3, 32, 32][..]));
        let stepped = dir.join("stepped.safetensors");
        assert!(one_step(&at4, &batch, &stepped).unwrap().is_finite());
        let (want, got) = (
            nn::checkpoint::load::<f32>(&at5).unwrap(),
            nn::checkpoint::load::<f32>(&stepped).unwrap(),
        );
        assert_eq!(want.tensors.len(), got.tensors.len());
        for (name, w) in &want.tensors {
            assert_eq!(
                w.to_vec(),
                got.tensors[name].to_vec(),
                "{loss:?} λ_r {lambda_r}: tensor {name} differs"
            );
        }
        assert_eq!(want.counters, got.counters);
        for key in [
            "regularface.step",
            "regularface.lambda_iteration",
            "regularface.exclusive_cache",
        ] {
            assert_eq!(want.metadata.get(key), got.metadata.get(key), "{key}");
        }
    }
}

#[test]
fn a_batch_of_another_step_or_a_file_that_is_no_batch_is_refused() {
    let data = common::small_synthetic_data();
    let cfg = TrainConfig {
        model: ModelKind::Sphereface4,
        input: (3, 32, 32),
        feature_dim: 64,
        steps: 12,
        batch: 16,
        ..TrainConfig::DEFAULT
    };
    let dir = scratch("refused");
    let at3 = run_until(&cfg, &data, &dir.join("a"), 3);
    let at4 = run_until(&cfg, &data, &dir.join("b"), 4);
    let batch = dir.join("batch.safetensors");
    write_batch(&at3, &checkpoint::load(&at3).unwrap(), &data, &batch).unwrap();
    let err = one_step(&at4, &batch, &dir.join("x.safetensors")).unwrap_err();
    assert!(
        format!("{err:#}").contains("the batch is of step 3")
            && format!("{err:#}").contains("at step 4"),
        "{err:#}"
    );
    let not_a_batch = one_step(&at4, &at3, &dir.join("x.safetensors")).unwrap_err();
    assert!(
        format!("{not_a_batch:#}").contains("no `images` tensor"),
        "{not_a_batch:#}"
    );
    assert!(!dir.join("x.safetensors").exists());
}
