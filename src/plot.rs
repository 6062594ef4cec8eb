//! Plots as SVG, written by hand: a line chart (ROC, loss curve) and a bar
//! chart (Sep histogram). SVG is text, so no drawing or font library is needed
//! and any browser shows the result.

use anyhow::Result;
use std::fmt::Write;
use std::path::Path;

const W: f64 = 480.0;
const H: f64 = 360.0;
const M: f64 = 48.0;

fn frame(title: &str, xlabel: &str, ylabel: &str, x: (f64, f64), y: (f64, f64)) -> String {
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{title}</text>"#,
        W / 2.0
    );
    let _ = write!(
        s,
        r#"<line x1="{M}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{M}" y1="{M}" x2="{M}" y2="{}" stroke="black"/>"#,
        H - M,
        W - M / 2.0,
        H - M,
        H - M
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{xlabel}</text>"#,
        W / 2.0,
        H - 10.0
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">{ylabel}</text>"#,
        H / 2.0,
        H / 2.0
    );
    for (v, px) in [(x.0, M), (x.1, W - M / 2.0)] {
        let _ = write!(
            s,
            r#"<text x="{px}" y="{}" text-anchor="middle">{v:.3}</text>"#,
            H - M + 16.0
        );
    }
    for (v, py) in [(y.0, H - M), (y.1, M)] {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{v:.3}</text>"#,
            M - 4.0,
            py + 4.0
        );
    }
    s
}

fn to_px(v: (f64, f64), x: (f64, f64), y: (f64, f64)) -> (f64, f64) {
    let fx = if x.1 > x.0 {
        (v.0 - x.0) / (x.1 - x.0)
    } else {
        0.5
    };
    let fy = if y.1 > y.0 {
        (v.1 - y.0) / (y.1 - y.0)
    } else {
        0.5
    };
    (M + fx * (W - 1.5 * M), H - M - fy * (H - 2.0 * M))
}

fn range(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = v.clone().fold(f64::INFINITY, f64::min);
    let hi = v.fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// Write a line chart of one or more named series to `path` (atomically).
pub fn line_chart(
    path: &Path,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<()> {
    let all = series.iter().flat_map(|(_, s)| s.iter().copied());
    let (x, y) = (range(all.clone().map(|p| p.0)), range(all.map(|p| p.1)));
    let mut s = frame(title, xlabel, ylabel, x, y);
    let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    for (k, (name, pts)) in series.iter().enumerate() {
        let c = colours[k % colours.len()];
        let d: Vec<String> = pts
            .iter()
            .map(|&p| to_px(p, x, y))
            .map(|(a, b)| format!("{a:.1},{b:.1}"))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{}"/>"#,
            d.join(" ")
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" fill="{c}">{name}</text>"#,
            W - 150.0,
            M + 16.0 * (k as f64 + 1.0)
        );
    }
    s.push_str("</svg>\n");
    nn::checkpoint::write_atomic(path, s.as_bytes())?;
    Ok(())
}

/// Write a histogram of counts over [lo, hi] to `path` (atomically).
pub fn histogram(
    path: &Path,
    title: &str,
    xlabel: &str,
    counts: &[usize],
    lo: f64,
    hi: f64,
) -> Result<()> {
    let max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let mut s = frame(title, xlabel, "classes", (lo, hi), (0.0, max));
    let bw = (W - 1.5 * M) / counts.len().max(1) as f64;
    for (i, &c) in counts.iter().enumerate() {
        let h = c as f64 / max * (H - 2.0 * M);
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#1f77b4"/>"##,
            M + i as f64 * bw,
            H - M - h,
            (bw - 1.0).max(0.5)
        );
    }
    s.push_str("</svg>\n");
    nn::checkpoint::write_atomic(path, s.as_bytes())?;
    Ok(())
}
