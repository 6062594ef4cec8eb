//! The MNIST toy of the paper: LeNet++ with a 3-d feature, trained with
//! softmax, with A-Softmax (m = 4) and with A-Softmax plus the exclusive
//! regularizer; test accuracy, Sep statistics of the 10 class weights, and a
//! picture of the normalised test features on the unit sphere.

use crate::config::{LossKind, ModelKind, TrainConfig};
use crate::data::source::{prepare, DataSpec};
use crate::data::synthetic::make_pairs;
use crate::eval::features;
use crate::experiment::train_and_report;
use crate::train::TrainOptions;
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;
use tensor::Tensor;

/// Learning rate of every toy run: 0.05 diverges within 40 steps with 3-d features.
pub const TOY_LR: f64 = 0.01;

/// Steps per run by default: each run reaches its plateau (A-Softmax at least 98 %
/// test accuracy), and the three runs take about 20 minutes on 2 cores.
pub const TOY_STEPS: u64 = 1200;

/// One of the three runs.
#[derive(Debug, Clone, Serialize)]
pub struct ToyResult {
    /// Run name.
    pub run: String,
    /// Its configuration.
    pub config: TrainConfig,
    /// Accuracy of the cosine classifier on the test digits (the first `test_images` of them).
    pub test_accuracy: f64,
    /// Mean of Sep_i over the 10 class weights.
    pub sep_mean: f64,
    /// Population std of Sep_i.
    pub sep_std: f64,
    /// Training seconds.
    pub seconds: f64,
    /// The sphere picture.
    pub picture: String,
}

/// Tableau's ten colours, one per digit.
pub const DIGIT_COLOURS: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// Render unit 3-d `points` (coloured by `labels`) and class `directions` on a sphere,
/// seen from a fixed oblique direction; the far hemisphere is faded.
pub fn render_sphere(
    path: &Path,
    points: &Tensor<f32>,
    labels: &[usize],
    directions: &Tensor<f32>,
) -> Result<()> {
    const S: u32 = 480;
    let (r, c) = (S as f32 * 0.45, S as f32 / 2.0);
    let (yaw, pitch) = (0.6f32, 0.45f32);
    let view = |p: &[f32]| {
        let (x, z) = (
            p[0] * yaw.cos() - p[2] * yaw.sin(),
            p[0] * yaw.sin() + p[2] * yaw.cos(),
        );
        let (y, z) = (
            p[1] * pitch.cos() - z * pitch.sin(),
            p[1] * pitch.sin() + z * pitch.cos(),
        );
        (c + r * x, c - r * y, z)
    };
    let mut img = image::RgbImage::from_pixel(S, S, image::Rgb([255, 255, 255]));
    let dot = |img: &mut image::RgbImage, x: f32, y: f32, half: i32, col: [u8; 3]| {
        for dy in -half..=half {
            for dx in -half..=half {
                let (px, py) = (x as i32 + dx, y as i32 + dy);
                if px >= 0 && py >= 0 && (px as u32) < S && (py as u32) < S {
                    img.put_pixel(px as u32, py as u32, image::Rgb(col));
                }
            }
        }
    };
    for k in 0..720 {
        let a = k as f32 / 720.0 * std::f32::consts::TAU;
        dot(
            &mut img,
            c + r * a.cos(),
            c + r * a.sin(),
            0,
            [160, 160, 160],
        );
    }
    let unit = points.l2_normalize(1, 1e-12);
    let pts = unit.to_vec();
    let mut order: Vec<(f32, f32, f32, usize)> = pts
        .chunks(3)
        .zip(labels)
        .map(|(p, &l)| {
            let (x, y, z) = view(p);
            (z, x, y, l)
        })
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0)); // far side first
    for (z, x, y, l) in order {
        let col = DIGIT_COLOURS[l % 10];
        let fade = if z < 0.0 { 0.25 } else { 1.0 };
        let blend = col.map(|v| (v as f32 * fade + 255.0 * (1.0 - fade)) as u8);
        dot(&mut img, x, y, 1, blend);
    }
    let w = directions.l2_normalize(1, 1e-12).to_vec();
    for (i, d) in w.chunks(3).enumerate() {
        let (x, y, _) = view(d);
        for t in 0..100 {
            let f = t as f32 / 100.0;
            dot(&mut img, c + (x - c) * f, c + (y - c) * f, 0, [0, 0, 0]);
        }
        dot(&mut img, x, y, 5, [0, 0, 0]);
        dot(&mut img, x, y, 3, DIGIT_COLOURS[i % 10]);
    }
    let mut bytes = vec![];
    image::DynamicImage::ImageRgb8(img).write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    nn::checkpoint::write_atomic(path, &bytes)?;
    Ok(())
}

/// Train the three runs on MNIST from `dir`, writing each run's folder, picture
/// and `mnist_toy.json` into `out`.
pub fn run(
    dir: &Path,
    out: &Path,
    steps: u64,
    seed: u64,
    lambda_r: f64,
    test_images: usize,
    progress: bool,
) -> Result<Vec<ToyResult>> {
    if !(lambda_r > 0.0 && lambda_r.is_finite()) {
        bail!("--exclusive {lambda_r} must be positive (it is the λ_r of the regularised run)");
    }
    let input = (1, 28, 28);
    let mut data = prepare(&DataSpec::Mnist { root: dir.into() }, input)?;
    let keep = test_images.clamp(1, data.eval.len());
    let test_set = &mut data.eval;
    test_set.pixels.truncate(keep * test_set.image_len());
    test_set.labels.truncate(keep);
    test_set.sources.truncate(keep);
    data.pairs = make_pairs(&data.eval, 30, 1);
    let softmax = TrainConfig {
        model: ModelKind::Lenetpp,
        loss: LossKind::Softmax,
        input,
        feature_dim: 3,
        steps,
        batch: 128,
        lr: TOY_LR,
        seed,
        flip: false,
        ..TrainConfig::DEFAULT
    };
    let asoftmax = softmax.with_loss(LossKind::Asoftmax);
    let runs = [
        ("softmax", softmax.clone()),
        ("asoftmax", asoftmax.clone()),
        (
            "asoftmax_exclusive",
            TrainConfig {
                lambda_r,
                ..asoftmax
            },
        ),
    ];
    let mut results = vec![];
    for (name, cfg) in runs {
        let opts = TrainOptions {
            progress,
            log_every: 25,
            ..TrainOptions::new(&out.join(name))
        };
        let run = train_and_report(name, &cfg, &data, &opts)?;
        let feats = features(run.model.backbone.as_ref(), &data.eval, 500, false);
        let picture = out.join(format!("{name}_sphere.png"));
        render_sphere(
            &picture,
            &feats,
            &data.eval.labels,
            &run.model.classifier.value(),
        )?;
        results.push(ToyResult {
            run: name.into(),
            config: cfg,
            test_accuracy: run.model.accuracy(&feats, &data.eval.labels),
            sep_mean: run.report.sep.mean,
            sep_std: run.report.sep.std,
            seconds: run.seconds,
            picture: picture.display().to_string(),
        });
    }
    nn::checkpoint::write_atomic(
        &out.join("mnist_toy.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    Ok(results)
}

/// Name of the report `run_seeds` writes.
pub const SEEDS_REPORT: &str = "mnist_toy_seeds.json";

/// One run of one seed, as `mnist_toy_seeds.json` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SeedRow {
    /// `softmax` or `asoftmax`.
    pub loss: String,
    /// λ_r of the exclusive regularizer (0: off).
    pub lambda_r: f64,
    /// Initialisation and batch-order seed.
    pub seed: u64,
    /// Test accuracy of the cosine classifier.
    pub accuracy: f64,
    /// Mean of Sep_i over the 10 class weights.
    pub sep_mean: f64,
    /// Population std of Sep_i.
    pub sep_std: f64,
    /// The run's name within its seed.
    pub run: String,
    /// Training seconds.
    pub seconds: f64,
}

/// The toy over several seeds: each seed's three runs in `out/seed<K>/` (a seed
/// whose `mnist_toy.json` is already there with the same steps is read, not
/// trained again, so an interrupted invocation continues), then
/// `out/mnist_toy_seeds.json`: `protocol`, `runs` and the first seed's `pictures`.
pub fn run_seeds(
    dir: &Path,
    out: &Path,
    steps: u64,
    seeds: &[u64],
    lambda_r: f64,
    test_images: usize,
    progress: bool,
) -> Result<serde_json::Value> {
    let mut rows = vec![];
    let mut pictures = vec![];
    for &seed in seeds {
        let part = out.join(format!("seed{seed}"));
        let done: Option<Vec<ToyResult>> = std::fs::read_to_string(part.join("mnist_toy.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).ok())
            .filter(|runs| {
                runs.len() == 3
                    && runs
                        .iter()
                        .all(|r| r["config"]["steps"] == steps && r["config"]["seed"] == seed)
            })
            .map(|runs| runs.into_iter().filter_map(toy_result_from_json).collect());
        let results = match done {
            Some(r) if r.len() == 3 => r,
            _ => run(dir, &part, steps, seed, lambda_r, test_images, progress)?,
        };
        if pictures.is_empty() {
            pictures = results.iter().map(|r| r.picture.clone()).collect();
        }
        rows.extend(results.iter().map(|r| SeedRow {
            loss: r.config.loss.name().to_string(),
            lambda_r: r.config.lambda_r,
            seed,
            accuracy: r.test_accuracy,
            sep_mean: r.sep_mean,
            sep_std: r.sep_std,
            run: r.run.clone(),
            seconds: r.seconds,
        }));
    }
    // The regularizer's effect, paired by seed: A-Softmax with and without it.
    let accuracy_of = |run: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| r.run == run)
            .map(|r| r.accuracy)
            .collect()
    };
    let paired =
        crate::stats::paired_t(&accuracy_of("asoftmax"), &accuracy_of("asoftmax_exclusive"));
    let report = serde_json::json!({
        "protocol": {
            "model": "lenetpp", "feature_dim": 3, "input": [1, 28, 28], "steps": steps,
            "batch": 128, "lr": TOY_LR, "test_images": test_images,
            "runs": ["softmax", "asoftmax", "asoftmax_exclusive"], "exclusive_lambda_r": lambda_r,
            "seeds": seeds,
        },
        "runs": rows,
        "paired": { "asoftmax": paired },
        "pictures": pictures,
    });
    nn::checkpoint::write_atomic(
        &out.join(SEEDS_REPORT),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    Ok(report)
}

fn toy_result_from_json(v: serde_json::Value) -> Option<ToyResult> {
    Some(ToyResult {
        run: v["run"].as_str()?.to_string(),
        config: serde_json::from_value(v["config"].clone()).ok()?,
        test_accuracy: v["test_accuracy"].as_f64()?,
        sep_mean: v["sep_mean"].as_f64()?,
        sep_std: v["sep_std"].as_f64()?,
        seconds: v["seconds"].as_f64()?,
        picture: v["picture"].as_str()?.to_string(),
    })
}
