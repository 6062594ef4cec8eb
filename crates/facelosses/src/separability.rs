//! Inter-class separability statistics of `Sep_i = max_{j≠i} cos(W_i, W_j)`.

use std::fmt;

/// Summary of the per-class separability values.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeparabilityStats {
    /// Mean of Sep_i.
    pub mean: f64,
    /// Population standard deviation of Sep_i.
    pub std: f64,
    /// Smallest Sep_i.
    pub min: f64,
    /// Largest Sep_i.
    pub max: f64,
    /// Counts of Sep_i in equal bins over [-1, 1] (the last bin includes 1).
    pub histogram: Vec<usize>,
}

impl SeparabilityStats {
    /// Statistics of `sep` with a histogram of `bins` bins over [-1, 1].
    pub fn from_values(sep: &[f64], bins: usize) -> Self {
        let n = sep.len().max(1) as f64;
        let mean = sep.iter().sum::<f64>() / n;
        let std = (sep.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n).sqrt();
        let mut histogram = vec![0; bins.max(1)];
        for &s in sep {
            let b = (((s + 1.0) / 2.0) * histogram.len() as f64)
                .floor()
                .clamp(0.0, (histogram.len() - 1) as f64);
            histogram[b as usize] += 1;
        }
        SeparabilityStats {
            mean,
            std,
            min: sep.iter().cloned().fold(f64::INFINITY, f64::min),
            max: sep.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            histogram,
        }
    }
}

impl fmt::Display for SeparabilityStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sep mean {:.4} std {:.4} min {:.4} max {:.4}",
            self.mean, self.std, self.min, self.max
        )
    }
}
