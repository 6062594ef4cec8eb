//! Paired summaries of repeated experiments: every run without the
//! regularizer (λ_r = 0) is paired with the run of the same loss, unit (LFW
//! fold or synthetic seed) and seed with it (λ_r > 0); per loss, the paired
//! t-test over units (of accuracy, and of AUC, which needs no threshold) and
//! McNemar's test over the pooled per-pair decisions.

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
    /// Area under the ROC curve of the verification scores.
    pub auc: f64,
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
    /// Paired t-test of AUC over units: the same comparison free of the
    /// threshold choice, which moves accuracy by whole pairs (None with fewer
    /// than two pairs).
    pub paired_auc: Option<PairedResult>,
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
        let (mut base_auc, mut reg_auc) = (vec![], vec![]);
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
            base_auc.push(b.auc);
            reg_auc.push(t.auc);
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
                paired_auc: paired_t(&base_auc, &reg_auc),
                mcnemar: mcnemar_exact(&base_dec, &reg_dec),
            },
        );
    }
    Ok(out)
}

/// The `paired`, `paired_auc` and `mcnemar` objects of a summary report, by
/// those keys.
pub fn comparison_json(
    cmp: &BTreeMap<String, LossComparison>,
) -> serde_json::Map<String, serde_json::Value> {
    let by_loss = |f: &dyn Fn(&LossComparison) -> serde_json::Value| -> serde_json::Value {
        cmp.iter()
            .map(|(k, c)| (k.clone(), f(c)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let mut out = serde_json::Map::new();
    out.insert("paired".into(), by_loss(&|c| serde_json::json!(c.paired)));
    out.insert(
        "paired_auc".into(),
        by_loss(&|c| serde_json::json!(c.paired_auc)),
    );
    out.insert("mcnemar".into(), by_loss(&|c| serde_json::json!(c.mcnemar)));
    out
}
