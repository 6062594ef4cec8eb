//! The `regularface` command line.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use regularface::config::{LossKind, ModelKind, TrainConfig};
use regularface::data::images::load_image;
use regularface::eval::{cosine, embed};
use regularface::runs::{evaluate, prepare, DataSpec, EvalReport, PreparedData};
use regularface::train::{load_model, train, TrainOptions, METRICS_FILE};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

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
    Train {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        model: ModelArgs,
        /// Output folder: checkpoint, metrics.jsonl, report.json, plots.
        #[arg(long, default_value = "runs/train")]
        out: PathBuf,
        /// Save a checkpoint every N steps (0: only at the end).
        #[arg(long, default_value_t = 200)]
        checkpoint_every: u64,
        /// Continue the run saved in this checkpoint (same flags as the original run).
        #[arg(long)]
        resume: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Evaluate a checkpoint: 10-fold verification, ROC, Sep statistics.
    Eval {
        /// The checkpoint.
        #[arg(long)]
        checkpoint: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Output folder for report.json and plots.
        #[arg(long, default_value = "runs/eval")]
        out: PathBuf,
    },
    /// Write the features of images (image and mirror concatenated).
    Embed {
        /// The checkpoint.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Images to embed.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// Cosine of two face images and the same/different decision.
    Verify {
        /// The checkpoint.
        #[arg(long)]
        checkpoint: PathBuf,
        /// First image.
        a: PathBuf,
        /// Second image.
        b: PathBuf,
    },
    /// The paper's MNIST toy: LeNet++ with 3-d features, softmax vs A-Softmax vs A-Softmax + exclusive.
    MnistToy {
        /// MNIST folder (IDX files, raw or gzip).
        #[arg(long)]
        mnist: PathBuf,
        /// Output folder: a folder per run, sphere pictures, mnist_toy.json.
        #[arg(long, default_value = "runs/mnist_toy")]
        out: PathBuf,
        /// Training steps per run (batch 128).
        #[arg(long, default_value_t = 250)]
        steps: u64,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// λ_r of the regularised run.
        #[arg(long, default_value_t = 1.0)]
        exclusive: f64,
        /// Test digits to evaluate and draw (of 10,000).
        #[arg(long, default_value_t = 10_000)]
        test_images: usize,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// LFW ablation: softmax, center, A-Softmax, each without and with the regularizer (λ_r chosen
    /// on a validation split of the training people), A-Softmax over several seeds.
    Ablation {
        /// LFW folder with pairs.txt and people.txt.
        #[arg(long)]
        lfw: PathBuf,
        /// Held-out fold (0-9).
        #[arg(long, default_value_t = 0)]
        fold: usize,
        #[command(flatten)]
        model: ModelArgs,
        /// λ_r candidates for the validation grid.
        #[arg(long, value_delimiter = ',', default_values_t = vec![0.5, 1.0, 2.0])]
        grid: Vec<f64>,
        /// Steps of each validation-grid run.
        #[arg(long, default_value_t = 300)]
        grid_steps: u64,
        /// Seeds of the A-Softmax pair (the other losses use the first).
        #[arg(long, value_delimiter = ',', default_values_t = vec![1, 2, 3])]
        seeds: Vec<u64>,
        /// Main losses to run (a subset splits the ablation over several invocations).
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = vec![LossKind::Softmax, LossKind::Center, LossKind::Asoftmax])]
        losses: Vec<LossKind>,
        /// Output folder: a folder per run and ablation.json.
        #[arg(long, default_value = "runs/ablation")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Measure training and inference throughput (each workload in its own process).
    Bench {
        /// Workloads to run (default: all).
        #[arg(long = "only")]
        only: Vec<String>,
        /// One JSON object per workload on standard output instead of the table.
        #[arg(long)]
        json: bool,
        /// A step or two at tiny sizes: proves it runs, measures nothing.
        #[arg(long)]
        quick: bool,
        /// Print where one training step spends its time instead (SphereFace-20
        /// with and without the exclusive regularizer, and LeNet++).
        #[arg(long)]
        profile: bool,
        /// Internal: run one workload in this process and print its JSON.
        #[arg(long, hide = true)]
        child: Option<String>,
    },
    /// Train with and without the exclusive regularizer (same data, same seed) and compare.
    Compare {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        model: ModelArgs,
        /// λ_r of the regularised run.
        #[arg(long = "with-exclusive", default_value_t = 1.0)]
        with_exclusive: f64,
        /// Output folder (one sub-folder per run, plus compare.json).
        #[arg(long, default_value = "runs/compare")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Csv,
}

#[derive(Args, Clone)]
struct DataArgs {
    /// Image folder with one sub-folder per identity (default: the synthetic generator).
    #[arg(long)]
    data: Option<PathBuf>,
    /// LFW folder with pairs.txt and people.txt (unrestricted, no outside data).
    #[arg(long, conflicts_with = "data")]
    lfw: Option<PathBuf>,
    /// Held-out LFW fold (0-9).
    #[arg(long, default_value_t = 0)]
    fold: usize,
    /// MNIST folder (IDX files, raw or gzip).
    #[arg(long, conflicts_with_all = ["data", "lfw"])]
    mnist: Option<PathBuf>,
    /// Synthetic: training identities.
    #[arg(long, default_value_t = 100)]
    identities: usize,
    /// Synthetic: images per identity.
    #[arg(long, default_value_t = 16)]
    images_per_identity: usize,
    /// Synthetic: identities held out for verification pairs.
    #[arg(long, default_value_t = 60)]
    test_identities: usize,
    /// Synthetic: generator seed.
    #[arg(long, default_value_t = 1)]
    data_seed: u64,
}

impl DataArgs {
    fn spec(&self) -> DataSpec {
        if let Some(root) = &self.lfw {
            DataSpec::Lfw {
                root: root.clone(),
                fold: self.fold,
            }
        } else if let Some(dir) = &self.data {
            DataSpec::Folder(dir.clone())
        } else if let Some(dir) = &self.mnist {
            DataSpec::Mnist(dir.clone())
        } else {
            DataSpec::Synthetic {
                identities: self.identities,
                images_per_identity: self.images_per_identity,
                test_identities: self.test_identities,
                seed: self.data_seed,
            }
        }
    }
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// Backbone.
    #[arg(long, value_enum, default_value_t = ModelKind::Sphereface4)]
    model: ModelKind,
    /// Main loss.
    #[arg(long, value_enum, default_value_t = LossKind::Asoftmax)]
    loss: LossKind,
    /// λ_r of the exclusive regularizer (0 = off).
    #[arg(long, default_value_t = 0.0)]
    exclusive: f64,
    /// Recompute the regularizer's nearest neighbours every k steps (1 = exact).
    #[arg(long, default_value_t = 1)]
    exclusive_refresh: u64,
    /// Margin (A-Softmax m in 1..4; CosFace / ArcFace m). Default: 4, 0.35, 0.5.
    #[arg(long)]
    margin: Option<f64>,
    /// Scale s of CosFace / ArcFace.
    #[arg(long, default_value_t = 30.0)]
    scale: f64,
    /// Weight of the center-loss term.
    #[arg(long, default_value_t = 0.01)]
    center_weight: f64,
    /// Training steps.
    #[arg(long, default_value_t = 600)]
    steps: u64,
    /// Images per batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Base learning rate (SGD; drops 10x at 16/28 and 24/28 of the run). SphereFace's 0.1 is
    /// for batches of 256; at batch 32 it diverges within a few hundred steps, 0.05 does not.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Weight decay (not on biases and PReLU slopes).
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f64,
    /// Seed of initialisation and batch order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Input channels (3: RGB, 1: grey).
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// Input height.
    #[arg(long, default_value_t = 56)]
    height: usize,
    /// Input width.
    #[arg(long, default_value_t = 48)]
    width: usize,
    /// Feature size.
    #[arg(long, default_value_t = 512)]
    feature_dim: usize,
    /// A-Softmax λ schedule: base.
    #[arg(long, default_value_t = 1000.0)]
    lambda_base: f64,
    /// A-Softmax λ schedule: γ.
    #[arg(long, default_value_t = 0.12)]
    lambda_gamma: f64,
    /// A-Softmax λ schedule: power.
    #[arg(long, default_value_t = 1.0)]
    lambda_power: f64,
    /// A-Softmax λ schedule: λ_min.
    #[arg(long, default_value_t = 5.0)]
    lambda_min: f64,
    /// Do not mirror training images at random.
    #[arg(long)]
    no_flip: bool,
}

impl ModelArgs {
    fn config(&self) -> Result<TrainConfig> {
        let margin = self.margin.unwrap_or(match self.loss {
            LossKind::Cosface => 0.35,
            LossKind::Arcface => 0.5,
            _ => 4.0,
        });
        let cfg = TrainConfig {
            model: self.model,
            loss: self.loss,
            exclusive: self.exclusive,
            exclusive_refresh: self.exclusive_refresh,
            margin,
            scale: self.scale,
            center_weight: self.center_weight,
            center_alpha: 0.5,
            lambda_base: self.lambda_base,
            lambda_gamma: self.lambda_gamma,
            lambda_power: self.lambda_power,
            lambda_min: self.lambda_min,
            input: (self.channels, self.height, self.width),
            feature_dim: self.feature_dim,
            steps: self.steps,
            batch: self.batch,
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            seed: self.seed,
            flip: !self.no_flip,
        };
        cfg.validate().map_err(anyhow::Error::msg)?;
        Ok(cfg)
    }
}

fn load_data(spec: &DataSpec, input: (usize, usize, usize)) -> Result<PreparedData> {
    let data = prepare(spec, input)?;
    if !data.skipped.is_empty() {
        eprintln!("skipped {} unreadable image(s):", data.skipped.len());
        for s in data.skipped.iter().take(20) {
            eprintln!("  {}: {}", s.path.display(), s.reason);
        }
    }
    eprintln!(
        "data: {} training images of {} identities; {} verification pairs",
        data.train.len(),
        data.train.classes(),
        data.pairs.len()
    );
    Ok(data)
}

fn train_and_evaluate(
    cfg: &TrainConfig,
    data: &PreparedData,
    out: &Path,
    opts: TrainOptions,
) -> Result<EvalReport> {
    let outcome = train(cfg, Arc::new(data.train.clone()), &opts)?;
    eprintln!(
        "trained {} steps at {:.1} images/s; checkpoint {}",
        outcome.steps,
        outcome.images_per_s,
        outcome.checkpoint.display()
    );
    let report = evaluate(
        &outcome.model,
        data,
        &outcome.checkpoint,
        out,
        Some(&out.join(METRICS_FILE)),
    )?;
    // Store the plain-cosine threshold for `verify` in the checkpoint.
    let mut ck = nn::checkpoint::load::<f32>(&outcome.checkpoint)?;
    ck.metadata.insert(
        "regularface.verify_threshold".into(),
        report.verification.plain_threshold.to_string(),
    );
    ck.metadata.remove(nn::checkpoint::CHECKSUM_KEY);
    let tensors: Vec<_> = ck.tensors.into_iter().collect();
    nn::checkpoint::save(&outcome.checkpoint, &tensors, &ck.metadata)?;
    Ok(report)
}

fn print_report(r: &EvalReport) {
    let v = &r.verification;
    println!(
        "verification: {:.2}% ± {:.2}% over {} folds ({} pairs)",
        100.0 * v.mean_accuracy,
        100.0 * v.std_accuracy,
        v.fold_accuracy.len(),
        r.pairs
    );
    println!(
        "AUC {:.4}  TAR@FAR=1e-2 {:.4}  TAR@FAR=1e-3 {:.4}",
        v.auc, v.tar_at_far_1e2, v.tar_at_far_1e3
    );
    println!(
        "Sep mean {:.4}  std {:.4}  (min {:.4}, max {:.4})",
        r.sep.mean, r.sep.std, r.sep.min, r.sep.max
    );
}

fn run(cli: Cli) -> Result<()> {
    if let Some(t) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global()
            .context("setting the thread count")?;
    }
    match cli.command {
        Command::Train {
            data,
            model,
            out,
            checkpoint_every,
            resume,
            quiet,
        } => {
            let cfg = model.config()?;
            let prepared = load_data(&data.spec(), cfg.input)?;
            let opts = TrainOptions {
                checkpoint_every,
                resume,
                progress: !quiet,
                ..TrainOptions::new(&out)
            };
            let report = train_and_evaluate(&cfg, &prepared, &out, opts)?;
            print_report(&report);
            println!("report: {}", out.join("report.json").display());
        }
        Command::Eval {
            checkpoint,
            data,
            out,
        } => {
            let (model, _) = load_model(&checkpoint)?;
            let prepared = load_data(&data.spec(), model.cfg.input)?;
            let metrics = checkpoint.parent().map(|p| p.join(METRICS_FILE));
            let report = evaluate(&model, &prepared, &checkpoint, &out, metrics.as_deref())?;
            print_report(&report);
            println!("report: {}", out.join("report.json").display());
        }
        Command::Embed {
            checkpoint,
            images,
            format,
        } => {
            let (model, _) = load_model(&checkpoint)?;
            let set = image_set(&images, model.cfg.input)?;
            let feats = embed(model.backbone.as_ref(), &set, 32);
            match format {
                Format::Json => {
                    let rows: Vec<serde_json::Value> = images.iter().zip(&feats).map(|(p, f)| serde_json::json!({"image": p.display().to_string(), "feature": f})).collect();
                    println!("{}", serde_json::to_string(&rows)?);
                }
                Format::Csv => {
                    for (p, f) in images.iter().zip(&feats) {
                        let vals: Vec<String> = f.iter().map(|v| v.to_string()).collect();
                        println!("{},{}", p.display(), vals.join(","));
                    }
                }
            }
        }
        Command::Verify { checkpoint, a, b } => {
            let (model, ck) = load_model(&checkpoint)?;
            let threshold: f64 = ck
                .metadata
                .get("regularface.verify_threshold")
                .and_then(|t| t.parse().ok())
                .with_context(|| {
                    format!(
                        "{}: no verification threshold stored (train or eval it first)",
                        checkpoint.display()
                    )
                })?;
            let set = image_set(&[a.clone(), b.clone()], model.cfg.input)?;
            let f = embed(model.backbone.as_ref(), &set, 2);
            let c = cosine(&f[0], &f[1], &vec![0.0; f[0].len()]);
            println!(
                "cosine {c:.4} (threshold {threshold:.4}): {}",
                if c > threshold {
                    "same person"
                } else {
                    "different people"
                }
            );
        }
        Command::MnistToy {
            mnist,
            out,
            steps,
            seed,
            exclusive,
            test_images,
            quiet,
        } => {
            if exclusive <= 0.0 {
                bail!("--exclusive {exclusive} must be positive (it is the λ_r of the regularised run)");
            }
            let results =
                regularface::toy::run(&mnist, &out, steps, seed, exclusive, test_images, !quiet)?;
            println!(
                "{:<20} {:>14} {:>10} {:>10} {:>8}",
                "run", "test acc. %", "Sep mean", "Sep std", "seconds"
            );
            for r in &results {
                println!(
                    "{:<20} {:>14.2} {:>10.4} {:>10.4} {:>8.0}",
                    r.run,
                    100.0 * r.test_accuracy,
                    r.sep_mean,
                    r.sep_std,
                    r.seconds
                );
            }
            println!("report: {}", out.join("mnist_toy.json").display());
        }
        Command::Ablation {
            lfw,
            fold,
            model,
            grid,
            grid_steps,
            seeds,
            losses,
            out,
            quiet,
        } => {
            let base = model.config()?;
            let data = load_data(&DataSpec::Lfw { root: lfw, fold }, base.input)?;
            let report = regularface::ablation::run(
                &data,
                &regularface::ablation::AblationPlan {
                    test_fold: fold,
                    base,
                    grid,
                    grid_steps,
                    seeds,
                    losses,
                },
                &out,
                !quiet,
            )?;
            println!(
                "{:<10} {:>6} {:>6} {:>16} {:>10} {:>10}",
                "loss", "λ_r", "seed", "accuracy %", "Sep mean", "Sep std"
            );
            for r in &report.runs {
                println!(
                    "{:<10} {:>6} {:>6} {:>9.2} ± {:<4.2} {:>10.4} {:>10.4}",
                    format!("{:?}", r.loss),
                    r.exclusive,
                    r.seed,
                    100.0 * r.accuracy,
                    100.0 * r.accuracy_std,
                    r.sep_mean,
                    r.sep_std
                );
            }
            println!("report: {}", out.join("ablation.json").display());
        }
        Command::Bench {
            only,
            json,
            quick,
            profile,
            child,
        } => {
            if profile {
                println!(
                    "# one SphereFace-20 training step, batch {}, C 10572, A-Softmax m=4\n{}\n",
                    if quick { 2 } else { 32 },
                    regularface::bench::conditions(quick)
                );
                for excl in [0.0, 1.0] {
                    println!("exclusive regularizer λ_r = {excl}");
                    for (name, secs) in regularface::bench::profile_step(quick, excl)? {
                        println!("{name:<48} {:>9.1} ms", secs * 1e3);
                    }
                }
                println!(
                    "LeNet++ 1x28x28, batch {}, 10 classes, softmax",
                    if quick { 8 } else { 128 }
                );
                for (name, secs) in regularface::bench::profile_lenetpp(quick)? {
                    println!("{name:<48} {:>9.1} ms", secs * 1e3);
                }
                return Ok(());
            }
            if let Some(name) = child {
                for r in regularface::bench::run_one(&name, quick)? {
                    println!("{}", serde_json::to_string(&r)?);
                }
                return Ok(());
            }
            let selected: Vec<String> = if only.is_empty() {
                regularface::bench::WORKLOADS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                only
            };
            if let Some(bad) = selected
                .iter()
                .find(|s| !regularface::bench::WORKLOADS.contains(&s.as_str()))
            {
                bail!(
                    "unknown workload `{bad}`; choose from {}",
                    regularface::bench::WORKLOADS.join(", ")
                );
            }
            if !json {
                println!(
                    "# regularface bench\n{}\n",
                    regularface::bench::conditions(quick)
                );
                println!(
                    "{:<30} {:>10} {:>10} {:>10} {:>6} {:>10}  unit / conditions",
                    "workload", "median", "min", "max", "steps", "RSS MiB"
                );
            }
            for name in &selected {
                for r in regularface::bench::run_all(std::slice::from_ref(name), quick)? {
                    if json {
                        println!("{}", serde_json::to_string(&r)?);
                    } else {
                        println!(
                            "{:<30} {:>10.2} {:>10.2} {:>10.2} {:>6} {:>10.0}  {} / {}",
                            r.workload,
                            r.img_per_s,
                            r.min,
                            r.max,
                            r.steps,
                            r.peak_rss_mib,
                            r.unit,
                            r.detail
                        );
                    }
                }
            }
        }
        Command::Compare {
            data,
            model,
            with_exclusive,
            out,
            quiet,
        } => {
            if with_exclusive <= 0.0 {
                bail!("--with-exclusive {with_exclusive} must be positive (it is the λ_r of the regularised run)");
            }
            let base = ModelArgs {
                exclusive: 0.0,
                ..model
            }
            .config()?;
            let reg = TrainConfig {
                exclusive: with_exclusive,
                ..base.clone()
            };
            let prepared = load_data(&data.spec(), base.input)?;
            let mut rows = vec![];
            for (name, cfg) in [("baseline", &base), ("exclusive", &reg)] {
                eprintln!("== {name} (λ_r = {})", cfg.exclusive);
                let dir = out.join(name);
                let opts = TrainOptions {
                    checkpoint_every: 0,
                    progress: !quiet,
                    ..TrainOptions::new(&dir)
                };
                let _ = std::fs::remove_file(dir.join(METRICS_FILE));
                rows.push((
                    name,
                    cfg.exclusive,
                    train_and_evaluate(cfg, &prepared, &dir, opts)?,
                ));
            }
            println!(
                "{:<10} {:>6} {:>10} {:>10} {:>16} {:>8}",
                "run", "λ_r", "Sep mean", "Sep std", "verification %", "AUC"
            );
            for (name, l, r) in &rows {
                let v = &r.verification;
                println!(
                    "{name:<10} {l:>6} {:>10.4} {:>10.4} {:>9.2} ± {:<4.2} {:>8.4}",
                    r.sep.mean,
                    r.sep.std,
                    100.0 * v.mean_accuracy,
                    100.0 * v.std_accuracy,
                    v.auc
                );
            }
            let json = serde_json::json!({"config": base, "with_exclusive": with_exclusive, "runs": rows.iter().map(|(n, l, r)| serde_json::json!({"run": n, "exclusive": l, "report": r})).collect::<Vec<_>>()});
            nn::checkpoint::write_atomic(
                &out.join("compare.json"),
                serde_json::to_string_pretty(&json)?.as_bytes(),
            )?;
            println!("report: {}", out.join("compare.json").display());
        }
    }
    Ok(())
}

/// Images given on the command line, preprocessed for the model; an unreadable one is an error.
fn image_set(
    paths: &[PathBuf],
    (c, h, w): (usize, usize, usize),
) -> Result<regularface::data::FaceSet> {
    let mut set = regularface::data::FaceSet::empty(c, h, w);
    set.class_names = vec!["query".into()];
    for p in paths {
        set.push(&load_image(p, c, h, w)?, 0, p.display().to_string());
    }
    Ok(set)
}

fn main() -> ExitCode {
    // Reuse freed activation buffers across training steps (see tensor::memory).
    tensor::memory::retain_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
