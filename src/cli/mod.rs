//! The subcommands: each file holds one command's flags, its call into the
//! library and its printing.

pub mod ablation;
pub mod args;
pub mod batch;
pub mod bench;
pub mod compare;
pub mod embed;
pub mod eval;
pub mod export;
pub mod info;
pub mod mnist_toy;
pub mod pack;
pub mod step;
pub mod train;
pub mod verify;

use anyhow::Result;
use regularface::data::images::load_image;
use regularface::data::source::{prepare, DataSpec, PreparedData};
use regularface::data::FaceSet;
use regularface::report::EvalReport;
use std::path::PathBuf;

/// Load or generate a command's data, reporting skipped files and the sizes on standard error.
pub fn load_data(spec: &DataSpec, input: (usize, usize, usize)) -> Result<PreparedData> {
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

/// Print the `paired_auc` lines of a summary report, one per loss.
pub fn print_paired_auc(report: &serde_json::Value, units: &str) {
    for (loss, p) in report["paired_auc"].as_object().into_iter().flatten() {
        if !p.is_null() {
            println!("{}", paired_line(&format!("{loss} AUC"), p, units, 1.0));
        }
    }
}

/// One line of a paired comparison (`paired` or `paired_auc` of a summary
/// report): "<label>: +d over n <units>, 95% CI [lo, hi], p = …", differences
/// multiplied by `scale` (100 for accuracy in points, 1 for AUC).
pub fn paired_line(label: &str, p: &serde_json::Value, units: &str, scale: f64) -> String {
    let v = |x: &serde_json::Value| scale * x.as_f64().unwrap_or(f64::NAN);
    let digits = if scale == 1.0 { 4 } else { 2 };
    format!(
        "{label}: {:+.digits$} over {} {units}, 95% CI [{:.digits$}, {:.digits$}], p = {:.4} ({})",
        v(&p["mean_diff"]),
        p["n"],
        v(&p["ci95"][0]),
        v(&p["ci95"][1]),
        p["p_value"].as_f64().unwrap_or(f64::NAN),
        p["test"].as_str().unwrap_or("")
    )
}

/// The verification summary of a report.
pub fn print_report(r: &EvalReport) {
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
    for b in &r.bins {
        println!(
            "{}: {:.2}% ± {:.2}% over {} pairs (insightface protocol, threshold {:.2}); SphereFace protocol {:.2}% ± {:.2}%",
            b.name,
            100.0 * b.accuracy,
            100.0 * b.std,
            b.pairs,
            b.threshold,
            100.0 * b.sphereface_accuracy,
            100.0 * b.sphereface_std
        );
    }
}

/// Images given on the command line, preprocessed for the model; an unreadable one is an error.
pub fn image_set(paths: &[PathBuf], (c, h, w): (usize, usize, usize)) -> Result<FaceSet> {
    let mut set = FaceSet::empty(c, h, w);
    set.class_names = vec!["query".into()];
    for p in paths {
        set.push(&load_image(p, c, h, w)?, 0, p.display().to_string());
    }
    Ok(set)
}
