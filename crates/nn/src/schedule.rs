//! Learning-rate schedules, as a function of the step number.

/// How the learning rate decays after warm-up.
#[derive(Debug, Clone, PartialEq)]
pub enum Decay {
    /// Constant.
    Constant,
    /// Multiply by `gamma` at each milestone step.
    MultiStep {
        /// Steps at which the rate drops.
        milestones: Vec<u64>,
        /// Factor per drop.
        gamma: f64,
    },
    /// Multiply by `gamma` every `step_size` steps.
    Step {
        /// Steps between drops.
        step_size: u64,
        /// Factor per drop.
        gamma: f64,
    },
    /// Cosine from the base rate down to `min_lr` at `total` steps.
    Cosine {
        /// Length of the decay.
        total: u64,
        /// Final rate.
        min_lr: f64,
    },
}

/// A base rate, a decay and an optional linear warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Rate after warm-up, before decay.
    pub base_lr: f64,
    /// The decay.
    pub decay: Decay,
    /// Steps of linear warm-up from `base_lr / warmup_steps` to `base_lr`.
    pub warmup_steps: u64,
}

impl Schedule {
    /// SphereFace's recipe scaled to a run of `total` steps: drops by 10x at
    /// 16/28 and 24/28 of the run.
    pub fn sphereface(base_lr: f64, total: u64) -> Self {
        Schedule {
            base_lr,
            decay: Decay::MultiStep {
                milestones: vec![total * 16 / 28, total * 24 / 28],
                gamma: 0.1,
            },
            warmup_steps: 0,
        }
    }

    /// The rate for step `step` (0-based: the first update uses step 0).
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match &self.decay {
            Decay::Constant => self.base_lr,
            Decay::MultiStep { milestones, gamma } => {
                self.base_lr * gamma.powi(milestones.iter().filter(|&&m| step >= m).count() as i32)
            }
            Decay::Step { step_size, gamma } => {
                self.base_lr * gamma.powi((step / (*step_size).max(1)) as i32)
            }
            Decay::Cosine { total, min_lr } => {
                let p = (step.min(*total) as f64) / (*total).max(1) as f64;
                min_lr + (self.base_lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }
}
