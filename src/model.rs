//! What a run trains: the backbone, the classifier head and the losses, built
//! from a [`TrainConfig`], and their checkpoint layout.

use crate::config::{LossKind, ModelKind, TrainConfig};
use anyhow::{bail, Result};
use autograd::{Param, Var};
use facelosses::{
    arcface_loss, cosface_loss, exclusive_regularizer, nearest_neighbours, softmax_loss, ASoftmax,
    CenterLoss, NearestNeighbours, SeparabilityStats,
};
use nn::{LeNetPlusPlus, Module, SphereFace, SphereFaceConfig};
use tensor::{Rng, Tensor};

/// The backbone network, by kind.
pub fn build_backbone(cfg: &TrainConfig, rng: &mut Rng) -> Result<Box<dyn Module<f32>>> {
    let (c, h, w) = cfg.input;
    Ok(match cfg.model {
        ModelKind::Lenetpp => Box::new(LeNetPlusPlus::new(c, (h, w), cfg.feature_dim, rng)),
        kind => {
            let depth = kind
                .sphereface_depth()
                .expect("sphereface kinds have a depth");
            let sc = SphereFaceConfig {
                depth,
                in_channels: c,
                input_hw: (h, w),
                feature_dim: cfg.feature_dim,
            };
            Box::new(SphereFace::new(sc, rng).map_err(anyhow::Error::msg)?)
        }
    })
}

/// The loss values of one step, for logs and for the divergence message.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct LossTerms {
    /// The main loss (softmax, A-Softmax, ...), center term included.
    pub main: f64,
    /// The center-loss term alone (0 unless center loss).
    pub center: f64,
    /// λ_r · L_r (0 when the regularizer is off).
    pub exclusive: f64,
    /// Their sum, what backward starts from.
    pub total: f64,
}

/// Backbone plus classifier head and loss state.
pub struct FaceModel {
    /// The configuration it was built from.
    pub cfg: TrainConfig,
    /// Image → feature network.
    pub backbone: Box<dyn Module<f32>>,
    /// Classifier weights `[C, feature_dim]`.
    pub classifier: Param<f32>,
    /// Classifier bias `[C]` (softmax and center loss only).
    pub bias: Option<Param<f32>>,
    /// Center loss state (center loss only).
    pub center: Option<CenterLoss<f32>>,
    /// A-Softmax with its λ schedule (A-Softmax only).
    pub asoftmax: Option<ASoftmax>,
    /// Nearest neighbours cached between refreshes (exclusive regularizer).
    pub cached_neighbours: Option<NearestNeighbours<f32>>,
}

impl FaceModel {
    /// A freshly initialised model for `classes` identities.
    pub fn new(cfg: &TrainConfig, classes: usize) -> Result<Self> {
        if classes < 2 {
            bail!("training needs at least 2 identities, the data has {classes}");
        }
        let mut rng = Rng::new(cfg.seed);
        let backbone = build_backbone(cfg, &mut rng)?;
        let classifier = Param::new(nn::init::xavier_uniform(
            &[classes, cfg.feature_dim],
            &mut rng,
        ));
        let with_bias = matches!(cfg.loss, LossKind::Softmax | LossKind::Center);
        let asoftmax = match cfg.loss {
            LossKind::Asoftmax => {
                let mut a = ASoftmax::new(cfg.margin as u32).map_err(anyhow::Error::msg)?;
                a.schedule = cfg.lambda_schedule();
                Some(a)
            }
            _ => None,
        };
        Ok(FaceModel {
            cfg: cfg.clone(),
            backbone,
            classifier,
            bias: with_bias.then(|| Param::new(Tensor::zeros(&[classes]))),
            center: (cfg.loss == LossKind::Center)
                .then(|| CenterLoss::new(classes, cfg.feature_dim, cfg.center_alpha as f32)),
            asoftmax,
            cached_neighbours: None,
        })
    }

    /// Number of identities of the classifier.
    pub fn classes(&self) -> usize {
        self.classifier.shape()[0]
    }

    /// Every trainable parameter, named as in the checkpoint.
    pub fn parameters(&self) -> Vec<(String, Param<f32>)> {
        let mut p: Vec<(String, Param<f32>)> = self
            .backbone
            .parameters()
            .into_iter()
            .map(|(n, p)| (format!("backbone.{n}"), p))
            .collect();
        p.push(("head.weight".into(), self.classifier.clone()));
        if let Some(b) = &self.bias {
            p.push(("head.bias".into(), b.clone()));
        }
        p
    }

    /// Forward and loss of one batch at training step `step` (0-based).
    /// Returns the loss to backpropagate, its terms, and the features.
    pub fn loss(
        &mut self,
        images: &Tensor<f32>,
        labels: &[usize],
        step: u64,
    ) -> (Var<f32>, LossTerms, Var<f32>) {
        let feats = self.backbone.forward(&Var::constant(images.clone()));
        let w = self.classifier.var();
        let cfg = &self.cfg;
        let mut center_term = None;
        let main = match cfg.loss {
            LossKind::Softmax => softmax_loss(
                &feats,
                &w,
                self.bias.as_ref().map(|b| b.var()).as_ref(),
                labels,
            ),
            LossKind::Center => {
                let ce = softmax_loss(
                    &feats,
                    &w,
                    self.bias.as_ref().map(|b| b.var()).as_ref(),
                    labels,
                );
                let c = self
                    .center
                    .as_ref()
                    .expect("center state")
                    .loss(&feats, labels)
                    .mul_scalar(cfg.center_weight as f32);
                center_term = Some(c.value().item().expect("scalar") as f64);
                ce.add(&c)
            }
            LossKind::Asoftmax => self
                .asoftmax
                .as_mut()
                .expect("a-softmax state")
                .forward(&feats, &w, labels),
            LossKind::Cosface => cosface_loss(&feats, &w, labels, cfg.scale, cfg.margin),
            LossKind::Arcface => arcface_loss(&feats, &w, labels, cfg.scale, cfg.margin),
        };
        let mut terms = LossTerms {
            main: main.value().item().expect("scalar") as f64,
            center: center_term.unwrap_or(0.0),
            ..Default::default()
        };
        let total = if cfg.exclusive > 0.0 {
            let reg = self.exclusive_term(&w, step);
            terms.exclusive = reg.value().item().expect("scalar") as f64;
            main.add(&reg)
        } else {
            main
        };
        terms.total = total.value().item().expect("scalar") as f64;
        (total, terms, feats)
    }

    /// `λ_r · L_r(W)`. With a refresh interval k > 1 the nearest neighbours are
    /// recomputed only every k steps and held fixed in between (cheaper forward);
    /// k = 1 is the exact regularizer.
    fn exclusive_term(&mut self, w: &Var<f32>, step: u64) -> Var<f32> {
        let lambda = self.cfg.exclusive as f32;
        let k = self.cfg.exclusive_refresh.max(1);
        if k == 1 || self.cached_neighbours.is_none() || step.is_multiple_of(k) {
            let (reg, nn) = exclusive_regularizer(w);
            self.cached_neighbours = Some(nn);
            return reg.mul_scalar(lambda);
        }
        let nearest = &self.cached_neighbours.as_ref().expect("cached").nearest;
        // With n(i) fixed, L_r = (1/C) Σ_i cos(W_i, W_n(i)), as graph ops.
        let hat = w.l2_normalize(1, 1e-12);
        let partner = hat.index_select(nearest);
        hat.mul(&partner)
            .sum()
            .mul_scalar(lambda / self.classes() as f32)
    }

    /// Update center-loss centers from this step's features (center loss only).
    pub fn after_step(&mut self, feats: &Tensor<f32>, labels: &[usize]) {
        if let Some(c) = &mut self.center {
            c.update_centers(feats, labels);
        }
    }

    /// Sep_i statistics of the classifier (20 histogram bins over [-1, 1]).
    pub fn separability(&self) -> SeparabilityStats {
        let sep: Vec<f64> = nearest_neighbours(&self.classifier.value())
            .sep
            .iter()
            .map(|&v| v as f64)
            .collect();
        SeparabilityStats::from_values(&sep, 20)
    }

    /// Classification accuracy of cosine logits against `labels`.
    pub fn accuracy(&self, feats: &Tensor<f32>, labels: &[usize]) -> f64 {
        let cos = feats
            .l2_normalize(1, 1e-12)
            .matmul(&self.classifier.value().l2_normalize(1, 1e-12).t());
        let pred = cos.argmax_axis(1);
        pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len().max(1) as f64
    }

    /// Named tensors to checkpoint besides the backbone: head, centers.
    pub fn head_state(&self) -> Vec<(String, Tensor<f32>)> {
        let mut v = vec![("head.weight".to_string(), self.classifier.value().clone())];
        if let Some(b) = &self.bias {
            v.push(("head.bias".into(), b.value().clone()));
        }
        if let Some(c) = &self.center {
            v.push(("head.centers".into(), c.centers.clone()));
        }
        v
    }
}
