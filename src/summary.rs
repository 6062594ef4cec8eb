//! Paired summaries of repeated experiments: every run without the
//! regularizer (λ_r = 0) is paired with the run of the same loss, unit (LFW
//! fold or synthetic seed) and seed with it (λ_r > 0); per loss, the paired
//! t-test over units and McNemar's test over the pooled per-pair decisions.

use crate::config::LossKind;
use crate::stats::{mcnemar_exact, paired_t, PairedResult};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// One evaluated run, as the paired analysis sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The unit runs are paired within: the LFW fold, or the synthetic data seed.
    pub unit: u64,
    /// Initialisation seed.
    pub seed: u64,
    /// Main loss.
    pub loss: LossKind,
    /// λ_r (0 = baseline).
    pub lambda_r: f64,
    /// Verification accuracy (fraction).
    pub accuracy: f64,
    /// Each test pair decided correctly (`1`) or not (`0`), in a fixed pair order.
    pub decisions: String,
}

/// The paired comparison of one loss.
#[derive(Debug, Clone, PartialEq)]
pub struct LossComparison {
    /// λ_r of the regularised runs.
    pub lambda_r: f64,
    /// Paired t-test of accuracy over units (None with fewer than two pairs).
    pub paired: Option<PairedResult>,
    /// McNemar's exact test over all pooled test pairs.
    pub mcnemar: PairedResult,
}

/// Pair the observations and compare, per loss (keyed by the loss's name).
/// Refuses duplicates, a loss whose regularised runs use different λ_r, and
/// pairs whose decision strings differ in length (different pair lists).
pub fn compare_by_loss(obs: &[Observation]) -> Result<BTreeMap<String, LossComparison>> {
    let mut seen = BTreeMap::new();
    for o in obs {
        let key = (o.loss.name(), o.unit, o.seed, o.lambda_r > 0.0);
        if seen.insert(key, o).is_some() {
            bail!(
                "two runs of {} for unit {} seed {} {} the regularizer: parts overlap",
                o.loss.name(),
                o.unit,
                o.seed,
                if o.lambda_r > 0.0 { "with" } else { "without" }
            );
        }
    }
    let mut out = BTreeMap::new();
    for loss in [
        LossKind::Softmax,
        LossKind::Center,
        LossKind::Asoftmax,
        LossKind::Cosface,
        LossKind::Arcface,
    ] {
        let treated: Vec<&&Observation> = seen
            .iter()
            .filter(|(k, _)| k.0 == loss.name() && k.3)
            .map(|(_, o)| o)
            .collect();
        let Some(first) = treated.first() else {
            continue;
        };
        if let Some(other) = treated.iter().find(|o| o.lambda_r != first.lambda_r) {
            bail!(
                "{}: regularised runs with λ_r {} and {}; summarise one λ_r at a time",
                loss.name(),
                first.lambda_r,
                other.lambda_r
            );
        }
        let (mut base_acc, mut reg_acc, mut base_dec, mut reg_dec) =
            (vec![], vec![], vec![], vec![]);
        for t in &treated {
            let Some(b) = seen.get(&(loss.name(), t.unit, t.seed, false)) else {
                continue;
            };
            if b.decisions.len() != t.decisions.len() {
                bail!(
                    "{} unit {} seed {}: {} decisions without the regularizer, {} with",
                    loss.name(),
                    t.unit,
                    t.seed,
                    b.decisions.len(),
                    t.decisions.len()
                );
            }
            base_acc.push(b.accuracy);
            reg_acc.push(t.accuracy);
            base_dec.extend(b.decisions.bytes().map(|c| c == b'1'));
            reg_dec.extend(t.decisions.bytes().map(|c| c == b'1'));
        }
        if base_acc.is_empty() {
            continue;
        }
        out.insert(
            loss.name().to_string(),
            LossComparison {
                lambda_r: first.lambda_r,
                paired: paired_t(&base_acc, &reg_acc),
                mcnemar: mcnemar_exact(&base_dec, &reg_dec),
            },
        );
    }
    Ok(out)
}

/// The `paired` and `mcnemar` objects of a summary report.
pub fn comparison_json(
    cmp: &BTreeMap<String, LossComparison>,
) -> (serde_json::Value, serde_json::Value) {
    let paired = cmp
        .iter()
        .map(|(k, c)| (k.clone(), serde_json::json!(c.paired)))
        .collect::<serde_json::Map<_, _>>();
    let mcnemar = cmp
        .iter()
        .map(|(k, c)| (k.clone(), serde_json::json!(c.mcnemar)))
        .collect::<serde_json::Map<_, _>>();
    (paired.into(), mcnemar.into())
}
