//! # regularface
//!
//! The application: data sets, the training loop, LFW-protocol evaluation and
//! the experiments of the `regularface` command line, on the engine crates
//! `tensor`, `autograd`, `nn` and `facelosses`.
//!
//! The one experiment API is [`experiment::train_and_report`] (train a named
//! run, evaluate it, write its report); [`compare`], [`ablation`] and [`toy`]
//! are made of it, and [`model::FaceModel::train_step`] is the one training
//! step that [`train`] and [`bench`] run. [`config::TrainConfig::DEFAULT`] is
//! the one source of defaults, and [`checkpoint`] the one definition of what a
//! run saves.

#![warn(missing_docs)]

pub mod ablation;
pub mod bench;
pub mod checkpoint;
pub mod compare;
pub mod config;
pub mod data;
pub mod eval;
pub mod eval_bin;
pub mod experiment;
pub mod export;
pub mod interop;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod progress;
pub mod report;
pub mod stats;
pub mod summary;
pub mod toy;
pub mod train;
