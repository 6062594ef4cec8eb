//! The Rust half of the "same maths on both sides" check with PyTorch
//! (`interop/pytorch/`): a run's next batch written to a file, and one
//! training step taken from a checkpoint on such a batch.
//!
//! `regularface batch` writes the batch a checkpoint's run would train on at
//! its next step; `regularface step` and `interop/pytorch/one_step.py` each
//! take that one SGD step from the same checkpoint, and the two checkpoints
//! they write are compared tensor by tensor.
//!
//! **Batch file** (safetensors, through `nn::checkpoint`, so atomic and
//! checksummed): `images` `[B, C, H, W]` f32, normalised and mirrored as the
//! loader does; `labels` `[B]` f32 holding class indices (exact: a checkpoint
//! has at most 2^24 classes, every one an f32 integer); metadata
//! `regularface.step` (the step the batch belongs to), `regularface.indices`
//! and `regularface.flips` (JSON lists: which images, which mirrored).

use crate::checkpoint::{self, Loaded, RunRecord, MAX_CLASSES};
use crate::data::loader::Sampler;
use crate::data::source::PreparedData;
use crate::model::Diverged;
use anyhow::{bail, Context, Result};
use nn::schedule::Schedule;
use std::collections::BTreeMap;
use std::path::Path;
use tensor::Tensor;

const STEP: &str = "regularface.step";
const INDICES: &str = "regularface.indices";
const FLIPS: &str = "regularface.flips";

/// One training batch read from a batch file.
pub struct BatchFile {
    /// The step of the run it belongs to (0-based).
    pub step: u64,
    /// `[B, C, H, W]`, normalised.
    pub images: Tensor<f32>,
    /// Class of each image.
    pub labels: Vec<usize>,
}

/// Write the batch that the run saved in `loaded` (read from `ck`) trains on at
/// its next step, drawn from `data` (the run's own data) exactly as its loader
/// draws it. Returns the step and the batch size.
pub fn write_batch(
    ck: &Path,
    loaded: &Loaded,
    data: &PreparedData,
    out: &Path,
) -> Result<(u64, usize)> {
    let cfg = &loaded.model.cfg;
    loaded.record.check_data(&data.spec, ck)?;
    if data.train.classes() != loaded.model.classes() || data.train.input() != cfg.input {
        bail!(
            "{}: the data has {} classes of {:?} images, the checkpoint {} of {:?}",
            ck.display(),
            data.train.classes(),
            data.train.input(),
            loaded.model.classes(),
            cfg.input
        );
    }
    let sampler = Sampler {
        len: data.train.len(),
        batch: cfg.batch.min(data.train.len()),
        seed: cfg.seed,
        flip: cfg.flip,
    };
    let step = loaded.record.step;
    let (idx, flips) = sampler.batch_at(step);
    let (images, labels) = data.train.batch(&idx, &flips);
    let labels = Tensor::from_vec(&[labels.len()], labels.iter().map(|&l| l as f32).collect())?;
    let mut meta = BTreeMap::new();
    meta.insert(STEP.into(), step.to_string());
    meta.insert(INDICES.into(), serde_json::to_string(&idx)?);
    meta.insert(FLIPS.into(), serde_json::to_string(&flips)?);
    let tensors = [
        ("images".to_string(), images),
        ("labels".to_string(), labels),
    ];
    nn::checkpoint::save(out, &tensors, &[], &meta)?;
    Ok((step, idx.len()))
}

/// Read a batch file written by [`write_batch`] (or by PyTorch in its layout).
pub fn read_batch(path: &Path) -> Result<BatchFile> {
    let file = nn::checkpoint::load::<f32>(path)?;
    let at = |what: String| anyhow::anyhow!("{}: {what}", path.display());
    let get = |name: &str| {
        file.tensors
            .get(name)
            .ok_or_else(|| at(format!("no `{name}` tensor; not a batch file")))
    };
    let (images, labels) = (get("images")?, get("labels")?);
    if images.ndim() != 4 || labels.shape() != [images.shape()[0]] {
        bail!(at(format!(
            "`images` {:?} must be [B, C, H, W] and `labels` {:?} must be [B]",
            images.shape(),
            labels.shape()
        )));
    }
    let labels = labels
        .to_vec()
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            if l >= 0.0 && l.fract() == 0.0 && (l as usize) < MAX_CLASSES {
                Ok(l as usize)
            } else {
                Err(at(format!("label {i} is {l}, not a class index")))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let step = file
        .metadata
        .get(STEP)
        .ok_or_else(|| at("no regularface.step in its metadata".into()))?
        .parse()
        .map_err(|e| at(format!("bad regularface.step: {e}")))?;
    Ok(BatchFile {
        step,
        images: images.clone(),
        labels,
    })
}

/// Take one training step of the run saved in `ck` on the batch in `batch`
/// (the step must be the checkpoint's next), at the rate the run's schedule
/// gives that step, and save the result to `out`. Returns the loss.
pub fn one_step(ck: &Path, batch: &Path, out: &Path) -> Result<f64> {
    let loaded = checkpoint::load(ck)?;
    let b = read_batch(batch)?;
    let mut model = loaded.model;
    let (c, h, w) = model.cfg.input;
    if b.images.shape()[1..] != [c, h, w] {
        bail!(
            "{}: images are {:?}, the model takes [B, {c}, {h}, {w}]",
            batch.display(),
            b.images.shape()
        );
    }
    if let Some((i, l)) = b
        .labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l >= model.classes())
    {
        bail!(
            "{}: label {i} is {l}, the model has {} classes",
            batch.display(),
            model.classes()
        );
    }
    let step = loaded.record.step;
    if b.step != step {
        bail!(
            "{}: the batch is of step {}, the checkpoint {} is at step {step}",
            batch.display(),
            b.step,
            ck.display()
        );
    }
    let mut opt = model.optimizer();
    opt.load_state(&loaded.optimizer_state)
        .map_err(|e| anyhow::anyhow!("{}: {e}", ck.display()))?;
    opt.lr = Schedule::sphereface(model.cfg.lr, model.cfg.steps).lr_at(step);
    let terms = match model.train_step(&mut opt, &b.images, &b.labels, step) {
        Ok(o) => o.terms,
        Err(Diverged(t)) => bail!("the loss is not finite at step {}: {}", step + 1, t.total),
    };
    let record = RunRecord {
        step: step + 1,
        data: loaded.record.data,
        threshold: None,
    };
    checkpoint::save(out, &model, &opt, &record)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(terms.total)
}
