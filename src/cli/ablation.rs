//! `regularface ablation`: the paper's LFW ablation on one held-out fold.

use super::args::TrainArgs;
use super::load_data;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use regularface::ablation::{self, AblationPlan, AblationReport, LambdaPolicy, ABLATION_FILE};
use regularface::config::LossKind;
use regularface::data::source::DataSpec;
use std::path::{Path, PathBuf};

/// Flags of `ablation`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AblationCmd {
    #[command(subcommand)]
    action: Option<Action>,
    /// LFW folder with pairs.txt and people.txt.
    #[arg(long, required_unless_present = "rec", conflicts_with = "rec")]
    lfw: Option<PathBuf>,
    /// Instead of LFW: an insightface RecordIO pack to train on (needs --rec-pairs and
    /// --lambda-r: the validation grid splits LFW's people).
    #[arg(long, requires_all = ["rec_pairs", "fixed_lambda_r"])]
    rec: Option<PathBuf>,
    /// With --rec: the .bin verification set the runs are verified on.
    #[arg(long, requires = "rec")]
    rec_pairs: Option<PathBuf>,
    /// Held-out fold (0-9).
    #[arg(long, default_value_t = 0)]
    fold: usize,
    #[command(flatten)]
    train: TrainArgs,
    /// λ_r of every regularised run, fixed in advance (no validation grid).
    #[arg(long = "lambda-r", conflicts_with = "grid")]
    fixed_lambda_r: Option<f64>,
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
}

/// What `ablation` can do besides running one fold.
#[derive(Subcommand)]
enum Action {
    /// Aggregate ablation.json parts (one per fold or per loss) into one report with paired
    /// statistics over folds and McNemar's test over the pooled test pairs.
    Summarize {
        /// The parts: ablation.json files, or folders holding one.
        #[arg(required = true)]
        parts: Vec<PathBuf>,
        /// The aggregated report (JSON).
        #[arg(long)]
        out: PathBuf,
    },
}

fn read_part(path: &Path) -> Result<AblationReport> {
    let file = if path.is_dir() {
        path.join(ABLATION_FILE)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not an ablation.json of this version (fold, lambda_r, decisions per run)",
            file.display()
        )
    })
}

fn summarize(parts: &[PathBuf], out: &Path) -> Result<()> {
    let parts: Vec<AblationReport> = parts.iter().map(|p| read_part(p)).collect::<Result<_>>()?;
    let report = ablation::summarize(&parts)?;
    println!(
        "{:<10} {:>4} {:>6} {:>12} {:>22} {:>9} {:>14}",
        "loss", "n", "λ_r", "mean diff pp", "95% CI pp", "p (t)", "p (McNemar)"
    );
    for (loss, p) in report["paired"].as_object().into_iter().flatten() {
        let ci = p["ci95"].as_array();
        let pp = |v: &serde_json::Value| 100.0 * v.as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<10} {:>4} {:>6} {:>12.2} {:>22} {:>9.4} {:>14.4}",
            loss,
            p["n"],
            report["protocol"]["lambda_r"][loss],
            pp(&p["mean_diff"]),
            ci.map_or("-".into(), |c| format!(
                "[{:.2}, {:.2}]",
                pp(&c[0]),
                pp(&c[1])
            )),
            p["p_value"].as_f64().unwrap_or(f64::NAN),
            report["mcnemar"][loss]["p_value"]
                .as_f64()
                .unwrap_or(f64::NAN)
        );
    }
    super::print_paired_auc(&report, "folds");
    nn::checkpoint::write_atomic(out, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("report: {}", out.display());
    Ok(())
}

/// Run `ablation`.
pub fn run(cmd: AblationCmd) -> Result<()> {
    if let Some(Action::Summarize { parts, out }) = &cmd.action {
        return summarize(parts, out);
    }
    let base = cmd.train.config()?;
    let spec = match (cmd.lfw, cmd.rec, cmd.rec_pairs) {
        (Some(root), _, _) => DataSpec::Lfw {
            root,
            fold: cmd.fold,
        },
        (None, Some(root), Some(verify)) => DataSpec::Rec { root, verify },
        _ => anyhow::bail!("give --lfw DIR, or --rec DIR with --rec-pairs F.bin"),
    };
    let data = load_data(&spec, base.input)?;
    let lambda_r = match cmd.fixed_lambda_r {
        Some(l) => LambdaPolicy::Fixed(l),
        None => LambdaPolicy::Grid {
            candidates: cmd.grid,
            steps: cmd.grid_steps,
        },
    };
    let plan = AblationPlan {
        test_fold: cmd.fold,
        base,
        lambda_r,
        seeds: cmd.seeds,
        losses: cmd.losses,
    };
    let report = ablation::run(&data, &plan, &cmd.out, !cmd.quiet)?;
    println!(
        "{:<10} {:>6} {:>6} {:>16} {:>8} {:>10} {:>10}",
        "loss", "λ_r", "seed", "accuracy %", "AUC", "Sep mean", "Sep std"
    );
    for r in &report.runs {
        println!(
            "{:<10} {:>6} {:>6} {:>9.2} ± {:<4.2} {:>8.4} {:>10.4} {:>10.4}",
            r.loss.name(),
            r.lambda_r,
            r.seed,
            100.0 * r.accuracy,
            100.0 * r.accuracy_std,
            r.auc,
            r.sep_mean,
            r.sep_std
        );
    }
    println!("report: {}", cmd.out.join(ABLATION_FILE).display());
    Ok(())
}
