//! The training loop: batches from the prefetcher, forward and loss, backward,
//! SGD with SphereFace's schedule, a JSON-lines metrics log, atomic
//! checkpoints, exact resume, and a stop with a clear message when the loss
//! stops being finite.

use crate::config::TrainConfig;
use crate::data::loader::{Prefetcher, Sampler};
use crate::data::FaceSet;
use crate::model::{FaceModel, LossTerms};
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use nn::checkpoint;
use nn::optim::Optimizer;
use nn::schedule::Schedule;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tensor::Tensor;

/// Most classes a checkpoint may declare.
pub const MAX_CLASSES: usize = 1 << 24;

/// File name of the latest checkpoint in a run's folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// File name of the metrics log in a run's folder.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// How to run (as opposed to what to train).
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Folder for the checkpoint and the metrics log.
    pub out_dir: PathBuf,
    /// Save a checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Log metrics (and Sep statistics) every this many steps.
    pub log_every: u64,
    /// Continue from this checkpoint.
    pub resume: Option<PathBuf>,
    /// Draw a progress bar on standard error.
    pub progress: bool,
    /// Stop after this step as if interrupted (tests of resume).
    pub stop_after: Option<u64>,
    /// Make the loss of this step NaN (tests of the divergence guard).
    pub inject_nan_at: Option<u64>,
}

impl TrainOptions {
    /// Defaults for a run writing into `out_dir`.
    pub fn new(out_dir: &Path) -> Self {
        TrainOptions {
            out_dir: out_dir.into(),
            checkpoint_every: 0,
            log_every: 10,
            resume: None,
            progress: false,
            stop_after: None,
            inject_nan_at: None,
        }
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsLine {
    /// Steps completed.
    pub step: u64,
    /// Learning rate used.
    pub lr: f64,
    /// Loss terms.
    pub loss: LossTerms,
    /// Batch accuracy of the cosine classifier.
    pub accuracy: f64,
    /// A-Softmax λ (null for other losses).
    pub lambda: Option<f64>,
    /// Mean of Sep_i over the classifier's classes.
    pub sep_mean: f64,
    /// Population std of Sep_i.
    pub sep_std: f64,
    /// Training throughput since the previous line.
    pub images_per_s: f64,
}

/// What a finished run leaves.
pub struct TrainOutcome {
    /// The trained model.
    pub model: FaceModel,
    /// Steps completed in total (resumed runs count the earlier ones).
    pub steps: u64,
    /// The metrics of every logged step of this invocation.
    pub history: Vec<MetricsLine>,
    /// The final checkpoint.
    pub checkpoint: PathBuf,
    /// Mean images per second of this invocation.
    pub images_per_s: f64,
}

/// Save model, head, optimiser state and metadata to `path` atomically.
fn save(
    path: &Path,
    model: &FaceModel,
    opt: &Optimizer<f32>,
    step: u64,
    extra_meta: &BTreeMap<String, String>,
) -> Result<()> {
    let mut extra = model.head_state();
    extra.extend(
        opt.state()
            .into_iter()
            .map(|(n, t)| (format!("optim.{n}"), t)),
    );
    let mut meta = extra_meta.clone();
    meta.insert(
        "regularface.config".into(),
        serde_json::to_string(&model.cfg)?,
    );
    meta.insert("regularface.step".into(), step.to_string());
    meta.insert("regularface.classes".into(), model.classes().to_string());
    if let Some(a) = &model.asoftmax {
        meta.insert(
            "regularface.lambda_iteration".into(),
            a.schedule.iteration.to_string(),
        );
    }
    let named: Vec<(String, Tensor<f32>)> = model
        .backbone
        .state()
        .into_iter()
        .map(|(n, p)| (format!("backbone.{n}"), p.value().clone()))
        .chain(extra)
        .collect();
    checkpoint::save(path, &named, &meta)
        .with_context(|| format!("saving checkpoint at step {step}"))
}

/// A model (and its checkpoint's metadata and tensors) from a checkpoint file.
pub fn load_model(path: &Path) -> Result<(FaceModel, checkpoint::Checkpoint<f32>)> {
    let ck = checkpoint::load::<f32>(path)?;
    let cfg_json = ck.metadata.get("regularface.config").with_context(|| {
        format!(
            "{}: not a regularface checkpoint (no config in its metadata)",
            path.display()
        )
    })?;
    let cfg: TrainConfig = serde_json::from_str(cfg_json)
        .with_context(|| format!("{}: unreadable config in metadata", path.display()))?;
    let classes: usize = ck
        .metadata
        .get("regularface.classes")
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("{}: no class count in metadata", path.display()))?;
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("{}: invalid config in metadata: {e}", path.display()))?;
    if classes > MAX_CLASSES || classes * cfg.feature_dim > 1 << 30 {
        bail!(
            "{}: metadata asks for {classes} classes of {} features, more than this tool accepts",
            path.display(),
            cfg.feature_dim
        );
    }
    let mut model = FaceModel::new(&cfg, classes)?;
    let backbone: BTreeMap<String, Tensor<f32>> = ck
        .tensors
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("backbone.")
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    let sub = checkpoint::Checkpoint {
        tensors: backbone,
        metadata: BTreeMap::new(),
    };
    checkpoint::load_into(model.backbone.as_ref(), &sub, &[]).with_context(|| {
        format!(
            "{}: does not fit a {:?} backbone",
            path.display(),
            cfg.model
        )
    })?;
    let get = |name: &str, shape: &[usize]| -> Result<Tensor<f32>> {
        let t = ck
            .tensors
            .get(name)
            .with_context(|| format!("{}: missing tensor `{name}`", path.display()))?;
        if t.shape() != shape {
            bail!(
                "{}: tensor `{name}` has shape {:?}, expected {shape:?}",
                path.display(),
                t.shape()
            );
        }
        Ok(t.clone())
    };
    model
        .classifier
        .set_value(get("head.weight", &[classes, cfg.feature_dim])?);
    if let Some(b) = &model.bias {
        b.set_value(get("head.bias", &[classes])?);
    }
    if let Some(c) = &mut model.center {
        c.centers = get("head.centers", &[classes, cfg.feature_dim])?;
    }
    if let (Some(a), Some(it)) = (
        &mut model.asoftmax,
        ck.metadata.get("regularface.lambda_iteration"),
    ) {
        a.schedule.iteration = it
            .parse()
            .with_context(|| format!("{}: bad lambda_iteration `{it}`", path.display()))?;
    }
    Ok((model, ck))
}

/// Train `cfg` on `data`, or continue the run in `opts.resume`.
pub fn train(cfg: &TrainConfig, data: Arc<FaceSet>, opts: &TrainOptions) -> Result<TrainOutcome> {
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create output folder {}", opts.out_dir.display()))?;
    let (c, h, w) = cfg.input;
    if (data.channels, data.height, data.width) != (c, h, w) {
        bail!(
            "data is {}x{}x{} but the model expects {c}x{h}x{w}",
            data.channels,
            data.height,
            data.width
        );
    }
    let (mut model, start) = match &opts.resume {
        Some(path) => {
            let (model, ck) = load_model(path)?;
            if model.cfg != *cfg {
                bail!("{}: was trained with a different configuration; resume with the same flags (saved: {})", path.display(), serde_json::to_string(&model.cfg)?);
            }
            let step: u64 = ck
                .metadata
                .get("regularface.step")
                .and_then(|s| s.parse().ok())
                .context("checkpoint has no step")?;
            (model, Some((step, ck)))
        }
        None => (FaceModel::new(cfg, data.classes())?, None),
    };
    if model.classes() != data.classes() {
        bail!(
            "the checkpoint has {} classes but the data has {}",
            model.classes(),
            data.classes()
        );
    }
    let mut opt = Optimizer::sgd(model.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay);
    opt.exempt_biases_and_prelu();
    let first_step = match start {
        Some((step, ck)) => {
            let state: BTreeMap<String, Tensor<f32>> = ck
                .tensors
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("optim.").map(|k| (k.to_string(), v.clone())))
                .collect();
            opt.load_state(&state).map_err(anyhow::Error::msg)?;
            step
        }
        None => 0,
    };
    let schedule = Schedule::sphereface(cfg.lr, cfg.steps);
    let sampler = Sampler {
        len: data.len(),
        batch: cfg.batch.min(data.len()),
        seed: cfg.seed,
        flip: cfg.flip,
    };
    let end = opts.stop_after.map_or(cfg.steps, |s| s.min(cfg.steps));
    let mut loader = Prefetcher::start(data.clone(), sampler, first_step, end, 2);
    let ckpt_path = opts.out_dir.join(CHECKPOINT_FILE);
    let metrics_path = opts.out_dir.join(METRICS_FILE);
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("cannot open {}", metrics_path.display()))?;
    let meta = BTreeMap::new();
    let mut progress = Progress::new(cfg.steps, first_step, opts.progress);
    let mut history = vec![];
    let (t0, mut t_log, mut images_since_log) = (Instant::now(), Instant::now(), 0usize);
    let mut last_good = opts.resume.is_some().then_some(first_step);
    for step in first_step..end {
        let batch = loader
            .next_batch()
            .context("the data loader stopped early")?;
        opt.lr = schedule.lr_at(step);
        let (loss, mut terms, feats) = model.loss(&batch.images, &batch.labels, step);
        if opts.inject_nan_at == Some(step) {
            terms.total = f64::NAN;
        }
        if !terms.total.is_finite() {
            let kept = match last_good {
                Some(s) => format!("the last good checkpoint ({}, step {s}) is intact; resume from it with a lower --lr", ckpt_path.display()),
                None => "no checkpoint had been written yet; start again with a lower --lr".to_string(),
            };
            bail!(
                "training diverged at step {}: loss {} (main {}, center {}, exclusive {}); stopped without saving: {kept}",
                step + 1,
                terms.total,
                terms.main,
                terms.center,
                terms.exclusive
            );
        }
        loss.backward().context("backward")?;
        drop(loss);
        opt.step();
        model.backbone.zero_grad();
        model.classifier.zero_grad();
        model.bias.iter().for_each(|b| b.zero_grad());
        model.after_step(feats.value(), &batch.labels);
        images_since_log += batch.labels.len();
        let done = step + 1;
        if done % opts.log_every.max(1) == 0 || done == end {
            let stats = model.separability();
            let line = MetricsLine {
                step: done,
                lr: opt.lr,
                loss: terms,
                accuracy: model.accuracy(feats.value(), &batch.labels),
                lambda: model.asoftmax.as_ref().map(|a| a.schedule.current()),
                sep_mean: stats.mean,
                sep_std: stats.std,
                images_per_s: images_since_log as f64 / t_log.elapsed().as_secs_f64().max(1e-9),
            };
            writeln!(metrics, "{}", serde_json::to_string(&line)?)
                .with_context(|| format!("writing {}", metrics_path.display()))?;
            progress.update(done, &line);
            history.push(line);
            (t_log, images_since_log) = (Instant::now(), 0);
        }
        if opts.checkpoint_every > 0 && done % opts.checkpoint_every == 0 && done < cfg.steps {
            save(&ckpt_path, &model, &opt, done, &meta)?;
            last_good = Some(done);
        }
    }
    drop(loader);
    save(&ckpt_path, &model, &opt, end, &meta)?;
    progress.finish();
    let secs = t0.elapsed().as_secs_f64();
    let images = (end - first_step) as f64 * sampler.batch as f64;
    Ok(TrainOutcome {
        model,
        steps: end,
        history,
        checkpoint: ckpt_path,
        images_per_s: images / secs.max(1e-9),
    })
}
