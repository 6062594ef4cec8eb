//! A progress line on standard error: step, images/s, ETA, loss, accuracy, λ, Sep mean.
//!
//! Written here (a dozen lines) rather than taken from a progress-bar crate:
//! one redrawn line is all a training run needs, and it keeps the dependency
//! tree small.

use crate::metrics::MetricsLine;
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// The progress display of one run.
pub struct Progress {
    total: u64,
    start_step: u64,
    started: Instant,
    enabled: bool,
    redraw: bool,
}

impl Progress {
    /// A display for steps `start_step..total`; silent unless `enabled`.
    pub fn new(total: u64, start_step: u64, enabled: bool) -> Self {
        Progress {
            total,
            start_step,
            started: Instant::now(),
            enabled,
            redraw: std::io::stderr().is_terminal(),
        }
    }

    /// Show the state after step `done`.
    pub fn update(&mut self, done: u64, m: &MetricsLine) {
        if !self.enabled {
            return;
        }
        let frac = done as f64 / self.total.max(1) as f64;
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = elapsed / (done - self.start_step).max(1) as f64 * (self.total - done) as f64;
        let bar: String = (0..24)
            .map(|i| if (i as f64) < frac * 24.0 { '#' } else { '.' })
            .collect();
        let lambda = m.lambda.map_or(String::new(), |l| format!(" λ {l:.1}"));
        let line = format!(
            "[{bar}] {done}/{} {:.1} img/s ETA {:.0}s loss {:.4} acc {:.3}{lambda} Sep {:.3}",
            self.total, m.images_per_s, eta, m.loss.total, m.accuracy, m.sep_mean
        );
        let mut err = std::io::stderr();
        let _ = if self.redraw {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
    }

    /// End the line.
    pub fn finish(&self) {
        if self.enabled && self.redraw {
            eprintln!();
        }
    }
}
