//! ONNX export of a trained backbone, for deployment (`regularface export`).
//!
//! The graph is the backbone's inference pass (BatchNorm folded into the
//! layers before it, no classifier), opset 13: input `input` of shape
//! `(batch, C, H, W)`, float32, already normalised as training normalises
//! (RGB or luma, channels first, the largest centred crop of the model's
//! aspect resized to H x W, `(x − 127.5) / 128`); output `features`,
//! `(batch, feature_dim)`, the feature of each image as it is (no mirror, not
//! L2-normalised: compare features by cosine). `batch` is symbolic. The
//! model's metadata_props say so, and hold the run's configuration.

use crate::checkpoint;
use crate::model::FaceModel;
use anyhow::{Context, Result};
use nn::onnx::OnnxGraph;
use std::path::Path;

/// How a caller must prepare the input, as stored in the model's metadata.
pub const PREPROCESSING: &str =
    "RGB (3 channels) or luma (1), channels first; the largest centred crop \
with the model's aspect, resized to H x W; each value (x - 127.5) / 128; no mirror";

/// The ONNX model of `model`'s backbone (puts the backbone in inference mode).
pub fn onnx_model(model: &FaceModel) -> Result<Vec<u8>> {
    let backbone = model.backbone.as_ref();
    backbone.set_training(false);
    backbone.fold_batchnorm();
    let (c, h, w) = model.cfg.input;
    let mut g = OnnxGraph::new("input", 4);
    let out = backbone
        .export_onnx("backbone", &mut g, "input")
        .map_err(anyhow::Error::msg)
        .context("exporting the backbone")?;
    let features = g.node("Identity", &[&out], &[], "features", 2);
    let metadata = [
        (
            "regularface.model",
            format!("{:?}", model.cfg.model).to_lowercase(),
        ),
        (
            "regularface.input",
            format!("input: float32 (batch, {c}, {h}, {w})"),
        ),
        (
            "regularface.output",
            format!(
                "features: float32 (batch, {}), compared by cosine",
                model.cfg.feature_dim
            ),
        ),
        ("regularface.preprocessing", PREPROCESSING.to_string()),
        ("regularface.config", serde_json::to_string(&model.cfg)?),
    ]
    .map(|(k, v)| (k.to_string(), v));
    Ok(g.finish(
        "input",
        &[None, Some(c), Some(h), Some(w)],
        &features,
        &[None, Some(model.cfg.feature_dim)],
        &metadata,
    ))
}

/// Export the checkpoint at `checkpoint` to `out` (written atomically).
pub fn export(checkpoint: &Path, out: &Path) -> Result<()> {
    let model = checkpoint::load(checkpoint)?.model;
    let bytes = onnx_model(&model)?;
    nn::checkpoint::write_atomic(out, &bytes).with_context(|| format!("writing {}", out.display()))
}
