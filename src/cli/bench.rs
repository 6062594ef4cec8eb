//! `regularface bench`: throughput of the paper's workloads, each in its own process.

use anyhow::{bail, Result};
use clap::Args;
use regularface::bench::{self, WORKLOADS};

/// Flags of `bench`.
#[derive(Args)]
pub struct BenchCmd {
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
}

fn print_profile(quick: bool) -> Result<()> {
    println!(
        "# one SphereFace-20 training step, batch {}, C 10572, A-Softmax m=4\n{}\n",
        if quick { 2 } else { 32 },
        bench::conditions(quick)
    );
    for lambda_r in [0.0, 1.0] {
        println!("exclusive regularizer λ_r = {lambda_r}");
        for (name, secs) in bench::profile_step(quick, lambda_r)? {
            println!("{name:<48} {:>9.1} ms", secs * 1e3);
        }
    }
    println!(
        "LeNet++ 1x28x28, batch {}, 10 classes, softmax",
        if quick { 8 } else { 128 }
    );
    for (name, secs) in bench::profile_lenetpp(quick)? {
        println!("{name:<48} {:>9.1} ms", secs * 1e3);
    }
    println!(
        "MobileFaceNet 3x112x112, batch {}, C 10572, A-Softmax m=4",
        if quick { 2 } else { 64 }
    );
    for (name, secs) in bench::profile_mobilefacenet(quick)? {
        println!("{name:<48} {:>9.1} ms", secs * 1e3);
    }
    Ok(())
}

/// Run `bench`.
pub fn run(cmd: BenchCmd) -> Result<()> {
    if cmd.profile {
        return print_profile(cmd.quick);
    }
    if let Some(name) = cmd.child {
        for r in bench::run_one(&name, cmd.quick)? {
            println!("{}", serde_json::to_string(&r)?);
        }
        return Ok(());
    }
    let selected: Vec<String> = if cmd.only.is_empty() {
        WORKLOADS.iter().map(|s| s.to_string()).collect()
    } else {
        cmd.only
    };
    if let Some(bad) = selected.iter().find(|s| !WORKLOADS.contains(&s.as_str())) {
        bail!(
            "unknown workload `{bad}`; choose from {}",
            WORKLOADS.join(", ")
        );
    }
    if !cmd.json {
        println!("# regularface bench\n{}\n", bench::conditions(cmd.quick));
        println!(
            "{:<30} {:>10} {:>10} {:>10} {:>6} {:>10}  unit / conditions",
            "workload", "median", "min", "max", "steps", "RSS MiB"
        );
    }
    for name in &selected {
        for r in bench::run_all(std::slice::from_ref(name), cmd.quick)? {
            if cmd.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "{:<30} {:>10.2} {:>10.2} {:>10.2} {:>6} {:>10.0}  {} / {}",
                    r.workload, r.median, r.min, r.max, r.steps, r.peak_rss_mib, r.unit, r.detail
                );
            }
        }
    }
    Ok(())
}
