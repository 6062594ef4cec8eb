//! The checkpoint a training run writes, `checkpoint.safetensors`, defined here
//! and nowhere else.
//!
//! A safetensors file (atomic write, FNV-1a checksum: see `nn::checkpoint`).
//!
//! **Tensors** (f32, PyTorch layouts):
//! - `backbone.<name>`: the backbone's state, named as its PyTorch module's `state_dict`
//!   (BatchNorm's `num_batches_tracked` as int64 scalars, as there);
//! - `head.weight` `[C, K]` (the classifier's W_i rows), `head.bias` `[C]`
//!   (softmax and center loss), `head.centers` `[C, K]` (center loss);
//! - `optim.<param>.momentum`: SGD's momentum buffers.
//!
//! **Metadata** (strings):
//! - `regularface.config`: the [`TrainConfig`] as JSON;
//! - `regularface.step`: training steps completed;
//! - `regularface.classes`: C;
//! - `regularface.lambda_iteration`: A-Softmax's λ counter (A-Softmax);
//! - `regularface.exclusive_cache`: `{"computed_at": step, "nearest": [n(i)...]}`,
//!   the neighbours a refreshing regularizer holds (`--exclusive-refresh` > 1);
//! - `regularface.data`: the [`DataSpec`] trained on, as JSON (e.g. LFW and its held-out fold);
//! - `regularface.verify_threshold`, `regularface.verify_threshold_fitted_on`: the
//!   plain-cosine threshold `verify` uses and which pairs it was fitted on (the
//!   final checkpoint of a run; intermediate ones have none);
//! - `regularface.checksum`: written by `nn::checkpoint`.
//!
//! A run writes the file every `--checkpoint-every` steps and once at the end,
//! complete; nothing rewrites it afterwards.

use crate::config::TrainConfig;
use crate::data::source::DataSpec;
use crate::model::FaceModel;
use anyhow::{bail, Context, Result};
use facelosses::NeighbourCache;
use nn::optim::Optimizer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tensor::Tensor;

/// File name of the latest checkpoint in a run's folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Most classes a checkpoint may declare.
pub const MAX_CLASSES: usize = 1 << 24;

const CONFIG: &str = "regularface.config";
const STEP: &str = "regularface.step";
const CLASSES: &str = "regularface.classes";
const LAMBDA_ITERATION: &str = "regularface.lambda_iteration";
const EXCLUSIVE_CACHE: &str = "regularface.exclusive_cache";
const DATA: &str = "regularface.data";
const THRESHOLD: &str = "regularface.verify_threshold";
const THRESHOLD_FITTED_ON: &str = "regularface.verify_threshold_fitted_on";

/// The threshold `verify` compares plain cosines with, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Pairs scoring above it are the same person.
    pub value: f64,
    /// The pairs it was fitted on, in words (e.g. "600 pairs of training identities").
    pub fitted_on: String,
}

/// What a checkpoint records about its run besides the model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRecord {
    /// Training steps completed.
    pub step: u64,
    /// The data trained on (absent in checkpoints of older versions).
    pub data: Option<DataSpec>,
    /// The verification threshold (final checkpoints only).
    pub threshold: Option<Threshold>,
}

impl RunRecord {
    /// Fail, naming the checkpoint at `path`, when the run recorded other data than `spec`
    /// (a record without a data source, from an older version, passes).
    pub fn check_data(&self, spec: &DataSpec, path: &Path) -> Result<()> {
        match &self.data {
            Some(then) if then != spec => bail!(
                "{}: was trained on other data ({}); use the same data flags",
                path.display(),
                serde_json::to_string(then)?
            ),
            _ => Ok(()),
        }
    }
}

/// Write `model`, `opt`'s state and `record` to `path` atomically.
pub fn save(
    path: &Path,
    model: &FaceModel,
    opt: &Optimizer<f32>,
    record: &RunRecord,
) -> Result<()> {
    let (mut tensors, counters) =
        nn::checkpoint::module_state(model.backbone.as_ref(), "backbone.");
    tensors.push(("head.weight".into(), model.classifier.value().clone()));
    if let Some(b) = &model.bias {
        tensors.push(("head.bias".into(), b.value().clone()));
    }
    if let Some(c) = &model.center {
        tensors.push(("head.centers".into(), c.centers.clone()));
    }
    tensors.extend(
        opt.state()
            .into_iter()
            .map(|(n, t)| (format!("optim.{n}"), t)),
    );
    let mut meta = BTreeMap::new();
    meta.insert(CONFIG.into(), serde_json::to_string(&model.cfg)?);
    meta.insert(STEP.into(), record.step.to_string());
    meta.insert(CLASSES.into(), model.classes().to_string());
    if let Some(a) = &model.asoftmax {
        meta.insert(LAMBDA_ITERATION.into(), a.iteration.to_string());
    }
    if let Some(cache) = model.exclusive.as_ref().and_then(|r| r.cache.as_ref()) {
        meta.insert(EXCLUSIVE_CACHE.into(), serde_json::to_string(cache)?);
    }
    if let Some(d) = &record.data {
        meta.insert(DATA.into(), serde_json::to_string(d)?);
    }
    if let Some(t) = &record.threshold {
        meta.insert(THRESHOLD.into(), t.value.to_string());
        meta.insert(THRESHOLD_FITTED_ON.into(), t.fitted_on.clone());
    }
    nn::checkpoint::save(path, &tensors, &counters, &meta)
        .with_context(|| format!("saving checkpoint at step {}", record.step))
}

/// A checkpoint read back: the model with all its loss state, the run record,
/// and the optimiser state (by parameter name, without the `optim.` prefix).
pub struct Loaded {
    /// The model, its head and loss state restored.
    pub model: FaceModel,
    /// Step, data and threshold.
    pub record: RunRecord,
    /// SGD's buffers, for `Optimizer::load_state`.
    pub optimizer_state: BTreeMap<String, Tensor<f32>>,
}

/// Read a checkpoint written by [`save`] (or by an older version of this tool).
pub fn load(path: &Path) -> Result<Loaded> {
    let ck = nn::checkpoint::load::<f32>(path)?;
    let at = |what: &str| format!("{}: {what}", path.display());
    let meta = &ck.metadata;
    let cfg_json = meta
        .get(CONFIG)
        .with_context(|| at("not a regularface checkpoint (no config in its metadata)"))?;
    let cfg = TrainConfig::from_json(cfg_json)
        .map_err(|e| anyhow::anyhow!(at(&format!("unreadable config in metadata: {e}"))))?;
    cfg.validate()
        .map_err(|e| anyhow::anyhow!(at(&format!("invalid config in metadata: {e}"))))?;
    let classes: usize = meta
        .get(CLASSES)
        .and_then(|c| c.parse().ok())
        .with_context(|| at("no class count in metadata"))?;
    if classes > MAX_CLASSES || classes * cfg.feature_dim > 1 << 30 {
        bail!(at(&format!(
            "metadata asks for {classes} classes of {} features, more than this tool accepts",
            cfg.feature_dim
        )));
    }
    let mut model = FaceModel::new(&cfg, classes)?;
    let sub = nn::checkpoint::Checkpoint {
        tensors: prefixed(&ck.tensors, "backbone."),
        counters: prefixed(&ck.counters, "backbone."),
        metadata: BTreeMap::new(),
    };
    nn::checkpoint::load_into(model.backbone.as_ref(), &sub, &[])
        .with_context(|| at(&format!("does not fit a {:?} backbone", cfg.model)))?;
    let get = |name: &str, shape: &[usize]| -> Result<Tensor<f32>> {
        let t = ck
            .tensors
            .get(name)
            .with_context(|| at(&format!("missing tensor `{name}`")))?;
        if t.shape() != shape {
            bail!(at(&format!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                t.shape()
            )));
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
    if let (Some(a), Some(it)) = (&mut model.asoftmax, meta.get(LAMBDA_ITERATION)) {
        a.iteration = it
            .parse()
            .with_context(|| at(&format!("bad lambda_iteration `{it}`")))?;
    }
    if let (Some(r), Some(text)) = (&mut model.exclusive, meta.get(EXCLUSIVE_CACHE)) {
        let cache: NeighbourCache = serde_json::from_str(text)
            .with_context(|| at("unreadable exclusive_cache in metadata"))?;
        if cache.nearest.len() != classes || cache.nearest.iter().any(|&j| j >= classes) {
            bail!(at(&format!(
                "exclusive_cache holds {} neighbours for {classes} classes, or one out of range",
                cache.nearest.len()
            )));
        }
        r.cache = Some(cache);
    }
    let step = meta
        .get(STEP)
        .map(|s| s.parse::<u64>())
        .transpose()
        .with_context(|| at("bad step in metadata"))?
        .unwrap_or(0);
    let data = meta
        .get(DATA)
        .map(|d| serde_json::from_str(d))
        .transpose()
        .with_context(|| at("unreadable data source in metadata"))?;
    let threshold = match meta.get(THRESHOLD) {
        Some(v) => Some(Threshold {
            value: v
                .parse()
                .with_context(|| at(&format!("bad verify_threshold `{v}`")))?,
            fitted_on: meta
                .get(THRESHOLD_FITTED_ON)
                .cloned()
                .unwrap_or_else(|| "the evaluation pairs (an older version's choice)".into()),
        }),
        None => None,
    };
    Ok(Loaded {
        model,
        record: RunRecord {
            step,
            data,
            threshold,
        },
        optimizer_state: prefixed(&ck.tensors, "optim."),
    })
}

/// The entries whose name starts with `prefix`, named without it.
fn prefixed<V: Clone>(tensors: &BTreeMap<String, V>, prefix: &str) -> BTreeMap<String, V> {
    tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}
