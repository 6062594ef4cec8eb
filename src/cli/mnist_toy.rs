//! `regularface mnist-toy`: the paper's MNIST toy (LeNet++ with 3-d features).

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Flags of `mnist-toy`.
#[derive(Args)]
pub struct MnistToyCmd {
    /// MNIST folder (IDX files, raw or gzip).
    #[arg(long)]
    mnist: PathBuf,
    /// Output folder: a folder per run, sphere pictures, mnist_toy.json.
    #[arg(long, default_value = "runs/mnist_toy")]
    out: PathBuf,
    /// Training steps per run (batch 128).
    #[arg(long, default_value_t = regularface::toy::TOY_STEPS)]
    steps: u64,
    /// Seed.
    #[arg(long, default_value_t = 1, conflicts_with = "seeds")]
    seed: u64,
    /// Repeat over these seeds (`1..3` or `1,2,5`), each in OUT/seed<K>/ (finished seeds are
    /// read back, so an interrupted invocation continues); all runs in OUT/mnist_toy_seeds.json.
    #[arg(long, value_parser = super::args::parse_seeds)]
    seeds: Option<super::args::SeedList>,
    /// λ_r of the regularised run.
    #[arg(long = "exclusive", default_value_t = 1.0)]
    lambda_r: f64,
    /// Test digits to evaluate and draw (of 10,000).
    #[arg(long, default_value_t = 10_000)]
    test_images: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Run `mnist-toy`.
pub fn run(cmd: MnistToyCmd) -> Result<()> {
    if let Some(super::args::SeedList(seeds)) = &cmd.seeds {
        let report = regularface::toy::run_seeds(
            &cmd.mnist,
            &cmd.out,
            cmd.steps,
            seeds,
            cmd.lambda_r,
            cmd.test_images,
            !cmd.quiet,
        )?;
        println!(
            "{:<20} {:>6} {:>14} {:>10} {:>10}",
            "run", "seed", "test acc. %", "Sep mean", "Sep std"
        );
        for r in report["runs"].as_array().into_iter().flatten() {
            println!(
                "{:<20} {:>6} {:>14.2} {:>10.4} {:>10.4}",
                r["run"].as_str().unwrap_or(""),
                r["seed"],
                100.0 * r["accuracy"].as_f64().unwrap_or(f64::NAN),
                r["sep_mean"].as_f64().unwrap_or(f64::NAN),
                r["sep_std"].as_f64().unwrap_or(f64::NAN)
            );
        }
        let p = &report["paired"]["asoftmax"];
        if !p.is_null() {
            let label = "A-Softmax + exclusive minus A-Softmax, accuracy (points)";
            println!("{}", super::paired_line(label, p, "seeds", 100.0));
        }
        println!(
            "report: {}",
            cmd.out.join(regularface::toy::SEEDS_REPORT).display()
        );
        return Ok(());
    }
    let results = regularface::toy::run(
        &cmd.mnist,
        &cmd.out,
        cmd.steps,
        cmd.seed,
        cmd.lambda_r,
        cmd.test_images,
        !cmd.quiet,
    )?;
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
    println!("report: {}", cmd.out.join("mnist_toy.json").display());
    Ok(())
}
