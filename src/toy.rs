//! The MNIST toy of the paper: LeNet++ with a 3-d feature, trained with
//! softmax, with A-Softmax (m = 4) and with A-Softmax plus the exclusive
//! regularizer; test accuracy, Sep statistics of the 10 class weights, and a
//! picture of the normalised test features on the unit sphere.

use crate::config::{LossKind, ModelKind, TrainConfig};
use crate::data::loader::to_tensor;
use crate::data::{mnist, FaceSet};
use crate::model::FaceModel;
use crate::train::{train, TrainOptions};
use anyhow::Result;
use autograd::{no_grad, Var};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use tensor::Tensor;

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

/// Features of every image of `set` (no mirroring: digits are not symmetric).
fn features(model: &FaceModel, set: &FaceSet) -> Tensor<f32> {
    model.backbone.set_training(false);
    let rows: Vec<Tensor<f32>> = (0..set.len())
        .step_by(500)
        .map(|s| {
            let idx: Vec<usize> = (s..(s + 500).min(set.len())).collect();
            no_grad(|| {
                model.backbone.forward(&Var::constant(to_tensor(
                    set,
                    &idx,
                    &vec![false; idx.len()],
                )))
            })
            .value()
            .clone()
        })
        .collect();
    model.backbone.set_training(true);
    Tensor::concat(&rows.iter().collect::<Vec<_>>(), 0)
}

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
    let train_set = Arc::new(mnist::load(dir, "train")?);
    let mut test_set = mnist::load(dir, "t10k")?;
    let keep = test_images.clamp(1, test_set.len());
    test_set.pixels.truncate(keep * test_set.image_len());
    test_set.labels.truncate(keep);
    test_set.sources.truncate(keep);
    let base = TrainConfig {
        model: ModelKind::Lenetpp,
        loss: LossKind::Softmax,
        input: (1, 28, 28),
        feature_dim: 3,
        steps,
        batch: 128,
        lr: 0.01,
        seed,
        flip: false,
        ..TrainConfig::default()
    };
    let runs = [
        ("softmax", TrainConfig { ..base.clone() }),
        (
            "asoftmax",
            TrainConfig {
                loss: LossKind::Asoftmax,
                margin: 4.0,
                ..base.clone()
            },
        ),
        (
            "asoftmax_exclusive",
            TrainConfig {
                loss: LossKind::Asoftmax,
                margin: 4.0,
                exclusive: lambda_r,
                ..base.clone()
            },
        ),
    ];
    let mut results = vec![];
    for (name, cfg) in runs {
        let run_dir = out.join(name);
        let _ = std::fs::remove_file(run_dir.join(crate::train::METRICS_FILE));
        let t = std::time::Instant::now();
        let outcome = train(
            &cfg,
            train_set.clone(),
            &TrainOptions {
                progress,
                log_every: 25,
                ..TrainOptions::new(&run_dir)
            },
        )?;
        let seconds = t.elapsed().as_secs_f64();
        let feats = features(&outcome.model, &test_set);
        let sep = outcome.model.separability();
        let picture = out.join(format!("{name}_sphere.png"));
        render_sphere(
            &picture,
            &feats,
            &test_set.labels,
            &outcome.model.classifier.value(),
        )?;
        results.push(ToyResult {
            run: name.into(),
            config: cfg,
            test_accuracy: outcome.model.accuracy(&feats, &test_set.labels),
            sep_mean: sep.mean,
            sep_std: sep.std,
            seconds,
            picture: picture.display().to_string(),
        });
    }
    nn::checkpoint::write_atomic(
        &out.join("mnist_toy.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    Ok(results)
}
