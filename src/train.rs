//! The training loop: batches from the prefetcher, [`FaceModel::train_step`]
//! with SphereFace's learning-rate schedule, a JSON-lines metrics log, atomic
//! checkpoints, exact resume, and a stop with a clear message when the loss
//! stops being finite. The final checkpoint carries the verification
//! threshold, fitted on pairs of *training* identities.

use crate::checkpoint::{self, RunRecord, Threshold, CHECKPOINT_FILE};
use crate::config::TrainConfig;
use crate::data::loader::{Prefetcher, Sampler};
use crate::data::source::PreparedData;
use crate::data::stream::TrainImages;
use crate::data::synthetic::make_pairs;
use crate::eval::fit_plain_threshold;
use crate::eval_bin::{evaluate_bin_data, BinData, BinResult};
use crate::metrics::{MetricsLine, MetricsLog};
use crate::model::{Diverged, FaceModel};
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use nn::schedule::Schedule;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// Feed this step's batch as NaN (tests of the divergence guard).
    pub inject_nan_at: Option<u64>,
    /// insightface `.bin` sets to verify on, every `eval_every` steps and at the end.
    pub eval_bins: Vec<PathBuf>,
    /// Steps between verifications on `eval_bins` (0: only at the end).
    pub eval_every: u64,
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
            eval_bins: vec![],
            eval_every: 0,
        }
    }
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
    /// The `.bin` results at the last step, when the run verified during training
    /// (so the report need not verify the same model again).
    pub final_verification: Option<Vec<BinResult>>,
}

/// Pairs of training identities per fold for the stored threshold (600 in all).
const THRESHOLD_PAIRS_PER_FOLD: usize = 30;
/// Images decoded from a streamed pack to draw those pairs from.
const THRESHOLD_SAMPLE: usize = 2400;

/// Train `cfg` on `data.train`, or continue the run in `opts.resume`.
pub fn train(cfg: &TrainConfig, data: &PreparedData, opts: &TrainOptions) -> Result<TrainOutcome> {
    let train_set = &data.train;
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create output folder {}", opts.out_dir.display()))?;
    let (c, h, w) = cfg.input;
    if train_set.input() != (c, h, w) {
        let (dc, dh, dw) = train_set.input();
        bail!("data is {dc}x{dh}x{dw} but the model expects {c}x{h}x{w}");
    }
    let (mut model, mut opt, first_step) = match &opts.resume {
        Some(path) => {
            let loaded = checkpoint::load(path)?;
            if loaded.model.cfg != *cfg {
                bail!("{}: was trained with a different configuration; resume with the same flags (saved: {})", path.display(), serde_json::to_string(&loaded.model.cfg)?);
            }
            loaded.record.check_data(&data.spec, path)?;
            let mut opt = loaded.model.optimizer();
            opt.load_state(&loaded.optimizer_state)
                .map_err(anyhow::Error::msg)?;
            (loaded.model, opt, loaded.record.step)
        }
        None => {
            let model = FaceModel::new(cfg, train_set.classes())?;
            let opt = model.optimizer();
            (model, opt, 0)
        }
    };
    if model.classes() != train_set.classes() {
        bail!(
            "the checkpoint has {} classes but the data has {}",
            model.classes(),
            train_set.classes()
        );
    }
    let schedule = Schedule::sphereface(cfg.lr, cfg.steps);
    let sampler = Sampler {
        len: train_set.len(),
        batch: cfg.batch.min(train_set.len()),
        seed: cfg.seed,
        flip: cfg.flip,
    };
    let end = opts.stop_after.map_or(cfg.steps, |s| s.min(cfg.steps));
    let mut loader = Prefetcher::start(train_set.clone(), sampler, first_step, end, 2);
    let ckpt_path = opts.out_dir.join(CHECKPOINT_FILE);
    // A write killed mid-way (or that failed on a full disk in an older version) left this.
    let _ = std::fs::remove_file(nn::checkpoint::temporary_path(&ckpt_path));
    let mut metrics = MetricsLog::open(&opts.out_dir, first_step)?;
    let mut record = RunRecord {
        step: first_step,
        data: Some(data.spec.clone()),
        threshold: None,
    };
    // Decoded once for the whole run, and only when it verifies as it trains.
    let bins = match opts.eval_every {
        0 => vec![],
        _ => opts
            .eval_bins
            .iter()
            .map(|b| BinData::load(b, cfg.input))
            .collect::<Result<Vec<_>>>()?,
    };
    let mut final_verification = None;
    let mut progress = Progress::new(cfg.steps, first_step, opts.progress);
    let mut history = vec![];
    let (t0, mut t_log, mut images_since_log) = (Instant::now(), Instant::now(), 0usize);
    let mut last_good = opts.resume.is_some().then_some(first_step);
    for step in first_step..end {
        let mut batch = loader
            .next_batch()
            .context("the data loader stopped early")?;
        if opts.inject_nan_at == Some(step) {
            batch.images = batch.images.map(|_| f32::NAN);
        }
        opt.lr = schedule.lr_at(step);
        let out = match model.train_step(&mut opt, &batch.images, &batch.labels, step) {
            Ok(out) => out,
            Err(Diverged(terms)) => {
                let kept = match last_good {
                    Some(s) => format!("the last good checkpoint ({}, step {s}) is intact; resume from it with a lower --lr", ckpt_path.display()),
                    None => "no checkpoint had been written yet; start again with a lower --lr".to_string(),
                };
                bail!(
                    "training diverged at step {}: loss {} (main {}, center {}, regularizer {}); stopped without saving: {kept}",
                    step + 1,
                    terms.total,
                    terms.main,
                    terms.center,
                    terms.regularizer
                );
            }
        };
        images_since_log += batch.labels.len();
        let done = step + 1;
        if done % opts.log_every.max(1) == 0 || done == end {
            let stats = model.separability();
            let line = MetricsLine {
                step: done,
                lr: opt.lr,
                loss: out.terms,
                accuracy: model.accuracy(&out.features, &batch.labels),
                lambda: model.asoftmax.as_ref().map(|a| a.lambda()),
                sep_mean: stats.mean,
                sep_std: stats.std,
                images_per_s: images_since_log as f64 / t_log.elapsed().as_secs_f64().max(1e-9),
            };
            metrics.write(&line)?;
            progress.update(done, &line);
            history.push(line);
            (t_log, images_since_log) = (Instant::now(), 0);
        }
        if !bins.is_empty() && (done % opts.eval_every == 0 || done == end) {
            let results: Vec<_> = bins.iter().map(|b| evaluate_bin_data(&model, b)).collect();
            metrics.write_verification(done, &results)?;
            final_verification = (done == end).then_some(results);
        }
        if opts.checkpoint_every > 0 && done % opts.checkpoint_every == 0 && done < cfg.steps {
            record.step = done;
            checkpoint::save(&ckpt_path, &model, &opt, &record)?;
            last_good = Some(done);
        }
    }
    drop(loader);
    let secs = t0.elapsed().as_secs_f64();
    let sampled;
    let threshold_set = match train_set {
        TrainImages::Memory(set) => set.as_ref(),
        TrainImages::Pack(pack) => {
            sampled = pack.sample(THRESHOLD_SAMPLE, 4, cfg.seed);
            &sampled
        }
    };
    let pairs = make_pairs(threshold_set, THRESHOLD_PAIRS_PER_FOLD, cfg.seed);
    if !pairs.is_empty() {
        record.threshold = Some(Threshold {
            value: fit_plain_threshold(model.backbone.as_ref(), threshold_set, &pairs),
            fitted_on: format!("{} pairs of training identities", pairs.len()),
        });
    }
    record.step = end;
    checkpoint::save(&ckpt_path, &model, &opt, &record)?;
    progress.finish();
    let images = (end - first_step) as f64 * sampler.batch as f64;
    Ok(TrainOutcome {
        model,
        steps: end,
        history,
        checkpoint: ckpt_path,
        images_per_s: images / secs.max(1e-9),
        final_verification,
    })
}
