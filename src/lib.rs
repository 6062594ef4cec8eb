//! # regularface
//!
//! The application: data sets, the training loop, LFW-protocol evaluation and
//! the `regularface` command line, on the engine crates `tensor`, `autograd`,
//! `nn` and `facelosses`.

#![warn(missing_docs)]

pub mod ablation;
pub mod bench;
pub mod config;
pub mod data;
pub mod eval;
pub mod model;
pub mod plot;
pub mod progress;
pub mod runs;
pub mod toy;
pub mod train;
