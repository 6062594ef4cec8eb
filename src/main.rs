//! The `regularface` command line: parse, set the thread count, dispatch.
//! Each command's flags, library call and printing are in `cli/<command>.rs`.

mod cli;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "regularface",
    version,
    about = "Train and evaluate face recognition with RegularFace's exclusive regularizer"
)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model, then evaluate it on the data's verification pairs.
    Train(cli::train::TrainCmd),
    /// Evaluate a checkpoint: 10-fold verification, ROC, Sep statistics.
    Eval(cli::eval::EvalCmd),
    /// Write the features of images (image and mirror concatenated).
    Embed(cli::embed::EmbedCmd),
    /// Cosine of two face images and the same/different decision.
    Verify(cli::verify::VerifyCmd),
    /// The paper's MNIST toy: LeNet++ with 3-d features, softmax vs A-Softmax vs A-Softmax + exclusive.
    MnistToy(cli::mnist_toy::MnistToyCmd),
    /// LFW ablation: softmax, center, A-Softmax, each without and with the regularizer (λ_r
    /// fixed, or chosen on a validation split of the training people), A-Softmax over several seeds.
    Ablation(cli::ablation::AblationCmd),
    /// Measure training and inference throughput (each workload in its own process).
    Bench(cli::bench::BenchCmd),
    /// Train with and without the exclusive regularizer (same data, same seed) and compare.
    Compare(cli::compare::CompareCmd),
    /// Pack an image folder into a RecordIO pack (train.rec/.idx, property), or LFW's pairs
    /// into a .bin verification set, as insightface's tools write them.
    Pack(cli::pack::PackCmd),
    /// Write a checkpoint's backbone as an ONNX model (BatchNorm folded, dynamic batch).
    Export(cli::export::ExportCmd),
    /// Write the batch a checkpoint's run trains on at its next step (safetensors), for
    /// checking one step against PyTorch's (interop/pytorch/one_step.py).
    Batch(cli::batch::BatchCmd),
    /// Take one training step from a checkpoint on a batch file and save the result.
    Step(cli::step::StepCmd),
    /// Version and compute back end (threads, CPU features, kernels), for bug reports.
    Info,
}

fn run(cli: Cli) -> Result<()> {
    if let Some(t) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global()
            .context("setting the thread count")?;
    }
    match cli.command {
        Command::Train(c) => cli::train::run(c),
        Command::Eval(c) => cli::eval::run(c),
        Command::Embed(c) => cli::embed::run(c),
        Command::Verify(c) => cli::verify::run(c),
        Command::MnistToy(c) => cli::mnist_toy::run(c),
        Command::Ablation(c) => cli::ablation::run(c),
        Command::Bench(c) => cli::bench::run(c),
        Command::Compare(c) => cli::compare::run(c),
        Command::Pack(c) => cli::pack::run(c),
        Command::Export(c) => cli::export::run(c),
        Command::Batch(c) => cli::batch::run(c),
        Command::Step(c) => cli::step::run(c),
        Command::Info => cli::info::run(),
    }
}

/// Large activation buffers are reused across training steps instead of
/// being mapped and page-faulted in again every step (see `tensor::memory`).
#[global_allocator]
static ALLOCATOR: tensor::memory::BlockCache = tensor::memory::BlockCache::new();

fn main() -> ExitCode {
    // Reuse freed activation buffers across training steps (see tensor::memory).
    tensor::memory::retain_freed_memory();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
