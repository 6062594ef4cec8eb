//! # nn
//!
//! Layers, the networks of the SphereFace / RegularFace papers, initialisers,
//! optimisers, learning-rate schedules and safetensors checkpoints.
//!
//! * [`Module`]: a forward pass plus a visitor over named tensors in PyTorch's
//!   dotted style (`stage1.unit0.conv1.weight`), so checkpoints load into an
//!   equivalent PyTorch module.
//! * Layers: [`Conv2d`], [`Linear`], [`PRelu`], [`BatchNorm`] (with folding for
//!   inference), [`MaxPool2d`],
//!   [`AvgPool2d`], [`Dropout`], [`Flatten`], [`Sequential`], [`ResidualUnit`].
//! * Models: [`SphereFace`] (4/10/20/36/64 layers), [`LeNetPlusPlus`], and
//!   insightface's [`MobileFaceNet`] and [`IResNet`] (18/34/50/100) with their state-dict names.
//! * [`optim`]: SGD (momentum, Nesterov, per-parameter weight-decay multiplier),
//!   Adam, AdamW, with savable state; [`schedule`]: multi-step, step, cosine, warm-up.
//! * [`checkpoint`]: atomic safetensors writes with a checksum, loads that list every mismatch.
//! * [`onnx`]: inference graphs as ONNX (opset 13), BatchNorm folded, with a hand-written protobuf encoder.

#![warn(missing_docs)]

mod batchnorm;
pub mod checkpoint;
pub mod init;
mod iresnet;
mod layers;
mod lenetpp;
mod mobilefacenet;
mod module;
pub mod onnx;
pub mod optim;
pub mod schedule;
mod sphereface;

pub use batchnorm::{randomise_like_trained, BatchNorm, Foldable};
pub use iresnet::{iresnet_layers, IResNet};
pub use layers::{AvgPool2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, PRelu, ResidualUnit};
pub use lenetpp::LeNetPlusPlus;
pub use mobilefacenet::MobileFaceNet;
pub use module::{Module, Sequential, TensorKind};
pub use sphereface::{SphereFace, SphereFaceConfig};
