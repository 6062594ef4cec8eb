//! `regularface bench`: throughput of the workloads of the paper's setting,
//! each in its own child process so that its peak RSS is its own.
//!
//! Training workloads time forward + backward + SGD (momentum 0.9, weight
//! decay 5e-4) on random inputs and labels: median, min and max img/s over the
//! timed steps after the warm-up steps. `sgemm` reports GFLOP/s instead.

use crate::config::{LossKind, ModelKind, TrainConfig};
use crate::model::FaceModel;
use anyhow::{bail, Context, Result};
use autograd::{no_grad, Var};
use facelosses::exclusive_regularizer;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tensor::{Rng, Tensor};

/// One measured workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    /// Workload name.
    pub workload: String,
    /// What the numbers count: `img_per_s`, `gflops` or `seconds`.
    pub unit: String,
    /// Median over the timed steps, in `unit`.
    pub median: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Timed steps.
    pub steps: usize,
    /// Peak resident memory of the process that ran it.
    pub peak_rss_mib: f64,
    /// Conditions: batch, classes, shape.
    pub detail: String,
}

/// The workload names, in the order the full run measures them.
pub const WORKLOADS: &[&str] = &[
    "sgemm",
    "sphere20_train_b32",
    "sphere20_train_b8",
    "sphere20_train_exclusive_b32",
    "sphere4_train_b64",
    "lenetpp_train_b128",
    "mobilefacenet_train_b64",
    "iresnet50_train_b32",
    "sphere20_embed_b1",
    "sphere20_embed_b32",
    "mobilefacenet_embed_b1",
    "exclusive_c1000",
    "exclusive_c10572",
    "loader_pack_112",
];

/// Peak resident set size of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn result(workload: &str, unit: &str, values: Vec<f64>, detail: String) -> BenchResult {
    let steps = values.len();
    let (med, min, max) = stats(values);
    BenchResult {
        workload: workload.into(),
        unit: unit.into(),
        median: med,
        min,
        max,
        steps,
        peak_rss_mib: peak_rss_mib(),
        detail,
    }
}

/// Timed training steps of one configuration: img/s per step.
fn train_steps(cfg: &TrainConfig, classes: usize, warmup: usize, steps: usize) -> Result<Vec<f64>> {
    let mut model = FaceModel::new(cfg, classes)?;
    let mut opt = model.optimizer();
    let mut rng = Rng::new(7);
    let (c, h, w) = cfg.input;
    let mut rates = vec![];
    for i in 0..warmup + steps {
        let x = Tensor::<f32>::rand_normal(&[cfg.batch, c, h, w], 0.0, 1.0, &mut rng);
        let labels: Vec<usize> = (0..cfg.batch).map(|_| rng.below(classes)).collect();
        let t = Instant::now();
        model
            .train_step(&mut opt, &x, &labels, i as u64)
            .map_err(|d| anyhow::anyhow!("benchmark step {i} diverged: {:?}", d.0))?;
        if i >= warmup {
            rates.push(cfg.batch as f64 / t.elapsed().as_secs_f64());
        }
    }
    Ok(rates)
}

/// A face model with A-Softmax (m = 4) at its benchmark input: the one input
/// insightface's backbones take, SphereFace's paper 3x112x96 otherwise; learning
/// rate 0.01 (the step's cost does not depend on it).
fn face_model(kind: ModelKind, batch: usize, lambda_r: f64) -> TrainConfig {
    TrainConfig {
        model: kind,
        lambda_r,
        input: kind.fixed_input().unwrap_or((3, 112, 96)),
        batch,
        lr: 0.01,
        ..TrainConfig::DEFAULT.with_loss(LossKind::Asoftmax)
    }
}

/// LeNet++ on 1 x 28 x 28 digits with a 2-d feature and a softmax head, as in
/// the centre-loss paper's MNIST toy (and PyTorch's `torch_bench.py lenet`).
fn lenetpp(batch: usize) -> TrainConfig {
    TrainConfig {
        model: ModelKind::Lenetpp,
        input: (1, 28, 28),
        feature_dim: 2,
        batch,
        lr: 0.01,
        ..TrainConfig::DEFAULT.with_loss(LossKind::Softmax)
    }
}

/// Run one workload in this process.
pub fn run_one(name: &str, quick: bool) -> Result<Vec<BenchResult>> {
    let (warm, steps) = if quick { (0, 1) } else { (2, 5) };
    let b = |full: usize, small: usize| if quick { small } else { full };
    Ok(match name {
        "sgemm" => {
            let mut out = vec![];
            let shapes: Vec<(usize, usize, usize)> = if quick {
                vec![(256, 256, 256)]
            } else {
                vec![
                    (256, 256, 256),
                    (512, 512, 512),
                    (1024, 1024, 1024),
                    (2048, 2048, 2048),
                    (64, 576, 2688),
                    (128, 1152, 672),
                    (256, 2304, 168),
                    (512, 4608, 42),
                    (32, 21504, 512),
                    (32, 512, 10572),
                ]
            };
            for (m, k, n) in shapes {
                let mut rng = Rng::new(1);
                let a = Tensor::<f32>::rand_normal(&[m, k], 0.0, 1.0, &mut rng);
                let bm = Tensor::<f32>::rand_normal(&[k, n], 0.0, 1.0, &mut rng);
                let _ = a.matmul(&bm);
                let g: Vec<f64> = (0..if quick { 1 } else { 5 })
                    .map(|_| {
                        let t = Instant::now();
                        std::hint::black_box(a.matmul(&bm));
                        2.0 * (m * k * n) as f64 / t.elapsed().as_secs_f64() / 1e9
                    })
                    .collect();
                out.push(result("sgemm", "gflops", g, format!("{m}x{k}x{n}")));
            }
            out
        }
        "sphere20_train_b32" | "sphere20_train_b8" | "sphere20_train_exclusive_b32" => {
            let batch = b(if name.ends_with("b8") { 8 } else { 32 }, 2);
            let lambda_r = if name.contains("exclusive") { 1.0 } else { 0.0 };
            let rates = train_steps(
                &face_model(ModelKind::Sphereface20, batch, lambda_r),
                10_572,
                warm,
                steps,
            )?;
            vec![result(
                name,
                "img_per_s",
                rates,
                format!(
                    "SphereFace-20 3x112x96, batch {batch}, C 10572, A-Softmax m=4{}",
                    if lambda_r > 0.0 {
                        ", exclusive λ_r=1"
                    } else {
                        ""
                    }
                ),
            )]
        }
        "sphere4_train_b64" => {
            let batch = b(64, 4);
            vec![result(
                name,
                "img_per_s",
                train_steps(
                    &face_model(ModelKind::Sphereface4, batch, 0.0),
                    1000,
                    warm,
                    steps,
                )?,
                format!("SphereFace-4 3x112x96, batch {batch}, C 1000, A-Softmax m=4"),
            )]
        }
        "lenetpp_train_b128" => {
            let batch = b(128, 8);
            let cfg = lenetpp(batch);
            vec![result(
                name,
                "img_per_s",
                train_steps(&cfg, 10, warm, steps)?,
                format!("LeNet++ 1x28x28, batch {batch}, 10 classes, softmax"),
            )]
        }
        "mobilefacenet_train_b64" => {
            let batch = b(64, 2);
            let cfg = face_model(ModelKind::Mobilefacenet, batch, 0.0);
            vec![result(
                name,
                "img_per_s",
                train_steps(&cfg, 10_572, warm, steps)?,
                format!("MobileFaceNet 3x112x112, batch {batch}, C 10572, A-Softmax m=4"),
            )]
        }
        "iresnet50_train_b32" => {
            let batch = b(32, 2);
            let cfg = face_model(ModelKind::Iresnet50, batch, 0.0);
            vec![result(
                name,
                "img_per_s",
                train_steps(&cfg, 10_572, warm, steps)?,
                format!("iResNet-50 3x112x112, batch {batch}, C 10572, A-Softmax m=4"),
            )]
        }
        "sphere20_embed_b1" | "sphere20_embed_b32" | "mobilefacenet_embed_b1" => {
            let batch = b(if name.ends_with("b1") { 1 } else { 32 }, 1);
            let kind = if name.starts_with("mobile") {
                ModelKind::Mobilefacenet
            } else {
                ModelKind::Sphereface20
            };
            let cfg = face_model(kind, batch, 0.0);
            let model = FaceModel::new(&cfg, 2)?;
            model.backbone.set_training(false);
            model.backbone.fold_batchnorm();
            let mut rng = Rng::new(3);
            let (c, h, w) = cfg.input;
            let x = Var::constant(Tensor::<f32>::rand_normal(
                &[batch, c, h, w],
                0.0,
                1.0,
                &mut rng,
            ));
            // A batch-1 forward takes tens of milliseconds: time ten times as many
            // as a training row does, so the median is not one scheduler hiccup.
            let (warm, steps) = if batch == 1 {
                (warm * 5, steps * 10)
            } else {
                (warm, steps)
            };
            let rates: Vec<f64> = (0..warm + steps)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(no_grad(|| model.backbone.forward(&x)));
                    batch as f64 / t.elapsed().as_secs_f64()
                })
                .skip(warm)
                .collect();
            vec![result(
                name,
                "img_per_s",
                rates,
                format!(
                    "{} inference {}x{}x{}, batch {batch}, no graph",
                    if kind == ModelKind::Mobilefacenet {
                        "MobileFaceNet"
                    } else {
                        "SphereFace-20"
                    },
                    cfg.input.0,
                    cfg.input.1,
                    cfg.input.2
                ),
            )]
        }
        "loader_pack_112" => {
            let (images, batch) = (b(1024, 32), b(64, 8));
            let rates = loader_rates(images, batch, warm + steps)?;
            vec![result(
                name,
                "img_per_s",
                rates[warm..].to_vec(),
                format!(
                    "read + decode + crop to 3x112x96 from a RecordIO pack of {images} 112x112 JPEG faces, \
                     batches of {batch}, decode pool of {} threads",
                    std::thread::available_parallelism().map_or(2, |n| n.get()).min(8)
                ),
            )]
        }
        "exclusive_c1000" | "exclusive_c10572" => {
            let c = if name.ends_with("10572") {
                10_572
            } else {
                1000
            };
            let w = Tensor::<f32>::rand_normal(&[c, 512], 0.0, 1.0, &mut Rng::new(1));
            let secs: Vec<f64> = (0..warm + steps)
                .map(|_| {
                    let leaf = Var::leaf(w.clone());
                    let t = Instant::now();
                    let (loss, _) = exclusive_regularizer(&leaf);
                    std::hint::black_box(
                        loss.backward().expect("scalar").get(&leaf).map(|g| g.len()),
                    );
                    t.elapsed().as_secs_f64()
                })
                .skip(warm)
                .collect();
            vec![result(
                name,
                "seconds",
                secs,
                format!("exclusive regularizer forward+backward, C {c}, K 512 (RSS includes W)"),
            )]
        }
        other => bail!(
            "unknown workload `{other}`; choose from {}",
            WORKLOADS.join(", ")
        ),
    })
}

/// Run every selected workload in a child process and collect the results.
pub fn run_all(selected: &[String], quick: bool) -> Result<Vec<BenchResult>> {
    let exe = std::env::current_exe().context("locating the regularface binary")?;
    let mut all = vec![];
    for name in selected {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["bench", "--child", name]);
        if quick {
            cmd.arg("--quick");
        }
        let out = cmd
            .output()
            .with_context(|| format!("running workload {name}"))?;
        if !out.status.success() {
            bail!(
                "workload {name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            all.push(
                serde_json::from_str(line)
                    .with_context(|| format!("workload {name} printed `{line}`"))?,
            );
        }
    }
    Ok(all)
}

/// The conditions line printed above the table: the back end, then the timing.
pub fn conditions(quick: bool) -> String {
    format!(
        "{}, {}",
        tensor::backend::describe(),
        if quick {
            "QUICK smoke setting (not a measurement)"
        } else {
            "median of 5 timed steps after 2 warm-up steps"
        }
    )
}

/// Where one SphereFace-20 training step (batch 32, C = 10,572, A-Softmax)
/// spends its time: forward, backward and optimiser wall time, and the kernel
/// sections of `tensor::profile`. One warm-up step first.
pub fn profile_step(quick: bool, lambda_r: f64) -> Result<Vec<(String, f64)>> {
    let batch = if quick { 2 } else { 32 };
    profile_config(
        &face_model(ModelKind::Sphereface20, batch, lambda_r),
        10_572,
    )
}

/// The same breakdown for MobileFaceNet at batch 64 (2 with `quick`), C = 10,572, A-Softmax.
pub fn profile_mobilefacenet(quick: bool) -> Result<Vec<(String, f64)>> {
    let batch = if quick { 2 } else { 64 };
    profile_config(&face_model(ModelKind::Mobilefacenet, batch, 0.0), 10_572)
}

/// The same breakdown for LeNet++ at batch 128 (8 with `quick`), 10 classes.
pub fn profile_lenetpp(quick: bool) -> Result<Vec<(String, f64)>> {
    profile_config(&lenetpp(if quick { 8 } else { 128 }), 10)
}

fn profile_config(cfg: &TrainConfig, classes: usize) -> Result<Vec<(String, f64)>> {
    use tensor::profile;
    let (batch, (c, h, w)) = (cfg.batch, cfg.input);
    let mut model = FaceModel::new(cfg, classes)?;
    let mut opt = model.optimizer();
    let mut rng = Rng::new(7);
    let mut rows = vec![];
    for step in 0..2 {
        let x = Tensor::<f32>::rand_normal(&[batch, c, h, w], 0.0, 1.0, &mut rng);
        let labels: Vec<usize> = (0..batch).map(|_| rng.below(classes)).collect();
        profile::enable(step == 1);
        let t = Instant::now();
        let (loss, _, _) = model.loss(&x, &labels, step);
        let t_fwd = t.elapsed().as_secs_f64();
        loss.backward()?;
        drop(loss);
        let t_bwd = t.elapsed().as_secs_f64() - t_fwd;
        let sections = profile::snapshot();
        let t2 = Instant::now();
        opt.step();
        model.parameters().iter().for_each(|(_, p)| p.clear_grad());
        let t_opt = t2.elapsed().as_secs_f64();
        profile::enable(false);
        if step == 1 {
            rows.push(("step total (wall)".to_string(), t_fwd + t_bwd + t_opt));
            rows.push(("  forward incl. loss (wall)".to_string(), t_fwd));
            rows.push(("  backward (wall)".to_string(), t_bwd));
            rows.push(("  optimiser + clear_grad (wall)".to_string(), t_opt));
            for (s, secs) in sections {
                let cpu = if matches!(
                    s,
                    profile::Section::Im2col | profile::Section::WinogradTransform
                ) {
                    " (CPU time, all threads)"
                } else {
                    ""
                };
                rows.push((format!("  kernel {s:?}{cpu}"), secs));
            }
        }
    }
    Ok(rows)
}

/// Loader throughput: a temporary pack of `images` synthetic 112x112 JPEG
/// faces, read back as training batches of `batch` at SphereFace's 3x112x96
/// (img/s per pass over `passes` batches).
fn loader_rates(images: usize, batch: usize, passes: usize) -> Result<Vec<f64>> {
    use crate::data::recordio::PackWriter;
    use crate::data::stream::{PackImages, TrainImages};
    use crate::data::synthetic::{generate, SyntheticConfig};
    let dir = std::env::temp_dir().join(format!("regularface-bench-pack-{}", std::process::id()));
    let faces = generate(&SyntheticConfig {
        identities: images / 8,
        images_per_identity: 8,
        height: 112,
        width: 112,
        seed: 1,
        difficulty: 1.0,
    });
    let mut w = PackWriter::create(&dir, 112, 112)?;
    for i in 0..faces.len() {
        let px = faces.image(i);
        let plane = 112 * 112;
        let rgb: Vec<u8> = (0..plane)
            .flat_map(|p| [px[p], px[plane + p], px[2 * plane + p]])
            .collect();
        let img = image::RgbImage::from_raw(112, 112, rgb).context("synthetic face")?;
        let mut jpeg = std::io::Cursor::new(vec![]);
        image::DynamicImage::ImageRgb8(img).write_to(&mut jpeg, image::ImageFormat::Jpeg)?;
        w.add(faces.labels[i], &jpeg.into_inner())?;
    }
    w.finish()?;
    let pack = TrainImages::Pack(std::sync::Arc::new(PackImages::open(&dir, (3, 112, 96))?));
    let mut rng = Rng::new(5);
    let rates = (0..passes)
        .map(|_| {
            let idx: Vec<usize> = (0..batch).map(|_| rng.below(pack.len())).collect();
            let t = Instant::now();
            std::hint::black_box(pack.batch(&idx, &vec![false; batch]));
            batch as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rates)
}
