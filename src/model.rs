//! What a run trains: the backbone, the classifier head and the losses, built
//! from a [`TrainConfig`], and [`FaceModel::train_step`], the one training step
//! that `train` and `bench` both run. The checkpoint layout is in the
//! `checkpoint` module.

use crate::config::{LossKind, ModelKind, TrainConfig};
use anyhow::{bail, Result};
use autograd::{Param, Var};
use facelosses::{
    arcface_loss, cosface_loss, nearest_neighbours, softmax_loss, ASoftmax, CenterLoss,
    ExclusiveRegularizer, SeparabilityStats,
};
use nn::optim::Optimizer;
use nn::{IResNet, LeNetPlusPlus, MobileFaceNet, Module, SphereFace, SphereFaceConfig};
use tensor::{Rng, Tensor};

/// The backbone network, by kind.
pub fn build_backbone(cfg: &TrainConfig, rng: &mut Rng) -> Result<Box<dyn Module<f32>>> {
    let (c, h, w) = cfg.input;
    Ok(match cfg.model {
        ModelKind::Lenetpp => Box::new(LeNetPlusPlus::new(c, (h, w), cfg.feature_dim, rng)),
        ModelKind::Mobilefacenet => Box::new(MobileFaceNet::new(cfg.feature_dim, rng)),
        kind if kind.iresnet_depth().is_some() => {
            let depth = kind.iresnet_depth().expect("iresnet kinds have a depth");
            Box::new(IResNet::new(depth, cfg.feature_dim, rng).map_err(anyhow::Error::msg)?)
        }
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
    /// The regularizer's term λ_r · L_r (0 when it is off).
    pub regularizer: f64,
    /// Their sum, what backward starts from.
    pub total: f64,
}

/// What one training step leaves for logging.
pub struct StepOutput {
    /// The loss terms.
    pub terms: LossTerms,
    /// The batch's features `[B, feature_dim]` (before the update).
    pub features: Tensor<f32>,
}

/// A step whose loss was not finite: nothing was updated.
#[derive(Debug, Clone, Copy)]
pub struct Diverged(pub LossTerms);

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
    /// A-Softmax with its λ schedule and counter (A-Softmax only).
    pub asoftmax: Option<ASoftmax>,
    /// The exclusive regularizer with its held neighbours (λ_r > 0 only).
    pub exclusive: Option<ExclusiveRegularizer>,
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
                a.schedule = cfg.lambda_schedule;
                Some(a)
            }
            _ => None,
        };
        let exclusive = if cfg.lambda_r > 0.0 {
            Some(
                ExclusiveRegularizer::new(cfg.lambda_r, cfg.exclusive_refresh)
                    .map_err(anyhow::Error::msg)?,
            )
        } else {
            None
        };
        Ok(FaceModel {
            cfg: cfg.clone(),
            backbone,
            classifier,
            bias: with_bias.then(|| Param::new(Tensor::zeros(&[classes]))),
            center: (cfg.loss == LossKind::Center)
                .then(|| CenterLoss::new(classes, cfg.feature_dim, cfg.center_alpha as f32)),
            asoftmax,
            exclusive,
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

    /// The run's optimiser: SGD with the configuration's rate, momentum and
    /// weight decay. Which parameters decay follows each backbone's source:
    /// SphereFace and LeNet++ exempt biases and PReLU slopes (SphereFace's
    /// Caffe recipe); insightface's backbones decay every trained parameter,
    /// BatchNorm γ/β and PReLU slopes included, as `arcface_torch` passes
    /// `backbone.parameters()` to one SGD group with `weight_decay` (its frozen
    /// `features.weight` is not trained, so not decayed either).
    pub fn optimizer(&self) -> Optimizer<f32> {
        let cfg = &self.cfg;
        let mut opt = Optimizer::sgd(self.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay);
        if !cfg.model.is_insightface() {
            opt.exempt_biases_and_prelu();
        }
        opt
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
        let bias = self.bias.as_ref().map(|b| b.var());
        let scalar = |v: &Var<f32>| v.value().item().expect("scalar") as f64;
        let mut terms = LossTerms::default();
        let main = match cfg.loss {
            LossKind::Softmax => softmax_loss(&feats, &w, bias.as_ref(), labels),
            LossKind::Center => {
                let ce = softmax_loss(&feats, &w, bias.as_ref(), labels);
                let c = self
                    .center
                    .as_ref()
                    .expect("center state")
                    .loss(&feats, labels)
                    .mul_scalar(cfg.center_weight as f32);
                terms.center = scalar(&c);
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
        terms.main = scalar(&main);
        let total = match &mut self.exclusive {
            Some(reg) => {
                let term = reg.forward(&w, step);
                terms.regularizer = scalar(&term);
                main.add(&term)
            }
            None => main,
        };
        terms.total = scalar(&total);
        (total, terms, feats)
    }

    /// One training step on a batch: forward and loss, backward, the optimiser's
    /// update at its current rate, gradients cleared, center loss's centers
    /// moved. A loss that is not finite stops before anything is updated.
    pub fn train_step(
        &mut self,
        opt: &mut Optimizer<f32>,
        images: &Tensor<f32>,
        labels: &[usize],
        step: u64,
    ) -> Result<StepOutput, Diverged> {
        let (loss, terms, feats) = self.loss(images, labels, step);
        if !terms.total.is_finite() {
            return Err(Diverged(terms));
        }
        loss.backward()
            .expect("the loss is a scalar of the parameters");
        drop(loss);
        opt.step();
        self.parameters().iter().for_each(|(_, p)| p.clear_grad());
        let features = feats.value().clone();
        if let Some(c) = &mut self.center {
            c.update_centers(&features, labels);
        }
        Ok(StepOutput { terms, features })
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
}
