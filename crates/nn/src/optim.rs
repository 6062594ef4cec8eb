//! Optimisers: SGD (momentum, Nesterov), Adam and AdamW, with a weight-decay
//! multiplier per parameter and savable state.
//!
//! Updates run in place over the parameter, gradient and state buffers in one
//! fused pass per parameter (parallel over chunks for large tensors): a steady
//! state step allocates nothing.

use autograd::Param;
use rayon::prelude::*;
use std::collections::BTreeMap;
use tensor::{Element, Tensor};

/// Elements per parallel chunk of an update.
const CHUNK: usize = 1 << 15;

/// The update rule and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// `buf = μ buf + (g + λ w)`, `w -= lr · buf` (or `lr · (g + λ w + μ buf)` with Nesterov);
    /// PyTorch's formulation (the first step sets `buf = g + λ w`).
    Sgd {
        /// Momentum μ.
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// Adam with L2 weight decay added to the gradient.
    Adam {
        /// β1.
        beta1: f64,
        /// β2.
        beta2: f64,
        /// ε.
        eps: f64,
    },
    /// Adam with decoupled weight decay (`w -= lr λ w` before the Adam step).
    AdamW {
        /// β1.
        beta1: f64,
        /// β2.
        beta2: f64,
        /// ε.
        eps: f64,
    },
}

struct Slot<T: Element> {
    name: String,
    param: Param<T>,
    decay_mult: f64,
    /// Momentum buffer (SGD) or first moment (Adam).
    first: Option<Tensor<T>>,
    /// Second moment (Adam).
    second: Option<Tensor<T>>,
}

/// An optimiser over named parameters.
pub struct Optimizer<T: Element> {
    /// The update rule.
    pub method: Method,
    /// Learning rate of the next step (set it from a schedule).
    pub lr: f64,
    /// Weight decay λ (times each parameter's multiplier).
    pub weight_decay: f64,
    /// Steps taken.
    pub steps: u64,
    slots: Vec<Slot<T>>,
}

impl<T: Element> Optimizer<T> {
    /// An optimiser over `params` (every decay multiplier 1).
    pub fn new(
        method: Method,
        params: Vec<(String, Param<T>)>,
        lr: f64,
        weight_decay: f64,
    ) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param)| Slot {
                name,
                param,
                decay_mult: 1.0,
                first: None,
                second: None,
            })
            .collect();
        Optimizer {
            method,
            lr,
            weight_decay,
            steps: 0,
            slots,
        }
    }

    /// SGD with momentum.
    pub fn sgd(params: Vec<(String, Param<T>)>, lr: f64, momentum: f64, weight_decay: f64) -> Self {
        Self::new(
            Method::Sgd {
                momentum,
                nesterov: false,
            },
            params,
            lr,
            weight_decay,
        )
    }

    /// Set the weight-decay multiplier of every parameter whose name matches.
    pub fn set_decay_mult(&mut self, matches: impl Fn(&str) -> bool, mult: f64) {
        self.slots
            .iter_mut()
            .filter(|s| matches(&s.name))
            .for_each(|s| s.decay_mult = mult);
    }

    /// No weight decay on biases and PReLU slopes (names ending in `bias` or holding `prelu`).
    pub fn exempt_biases_and_prelu(&mut self) {
        self.set_decay_mult(|n| n.ends_with("bias") || n.contains("prelu"), 0.0);
    }

    /// The weight-decay multiplier of a named parameter.
    pub fn decay_mult(&self, name: &str) -> Option<f64> {
        self.slots
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.decay_mult)
    }

    /// Apply one update to every parameter that has a gradient.
    pub fn step(&mut self) {
        self.steps += 1;
        let t = T::from_f64_lossy;
        let (lr, step) = (self.lr, self.steps as i32);
        for slot in &mut self.slots {
            let grad = slot.param.grad();
            let Some(g) = grad.as_ref() else { continue };
            let g = g.to_contiguous();
            let gs = g.as_slice().expect("contiguous");
            let mut w = slot.param.value_mut();
            let decay = self.weight_decay * slot.decay_mult;
            let first = slot
                .first
                .get_or_insert_with(|| Tensor::zeros(w.shape()))
                .as_mut_slice();
            let ws = w.as_mut_slice();
            match self.method {
                Method::Sgd { momentum, nesterov } => {
                    let (mu, wd, lr) = (t(momentum), t(decay), t(lr));
                    let fresh = step == 1 || momentum == 0.0;
                    par_update3(ws, first, gs, move |w, buf, g| {
                        let d = g + wd * *w;
                        *buf = if fresh { d } else { mu * *buf + d };
                        *w -= lr * if nesterov { d + mu * *buf } else { *buf };
                    });
                }
                Method::Adam { beta1, beta2, eps } | Method::AdamW { beta1, beta2, eps } => {
                    let decoupled = matches!(self.method, Method::AdamW { .. });
                    let second = slot
                        .second
                        .get_or_insert_with(|| Tensor::zeros(&[gs.len()]))
                        .as_mut_slice();
                    let (b1, b2, e, wd, lr) = (t(beta1), t(beta2), t(eps), t(decay), t(lr));
                    let (c1, c2) = (t(1.0 - beta1.powi(step)), t(1.0 - beta2.powi(step)));
                    let one = T::one();
                    ws.par_chunks_mut(CHUNK)
                        .zip(first.par_chunks_mut(CHUNK))
                        .zip(second.par_chunks_mut(CHUNK))
                        .zip(gs.par_chunks(CHUNK))
                        .for_each(|(((w, m), v), g)| {
                            for (((w, m), v), &g) in w.iter_mut().zip(m).zip(v).zip(g) {
                                let g = if decoupled {
                                    *w -= lr * wd * *w;
                                    g
                                } else {
                                    g + wd * *w
                                };
                                *m = b1 * *m + (one - b1) * g;
                                *v = b2 * *v + (one - b2) * g * g;
                                *w -= lr * (*m / c1) / ((*v / c2).sqrt() + e);
                            }
                        });
                }
            }
        }
    }

    /// The optimiser's state as named tensors: `steps` and, per parameter,
    /// `<name>.first` (momentum / first moment) and `<name>.second` (Adam).
    pub fn state(&self) -> Vec<(String, Tensor<T>)> {
        let mut out = vec![(
            "steps".to_string(),
            Tensor::scalar(T::from_f64_lossy(self.steps as f64)),
        )];
        for s in &self.slots {
            if let Some(f) = &s.first {
                out.push((format!("{}.first", s.name), f.reshape(&s.param.shape())));
            }
            if let Some(v) = &s.second {
                out.push((format!("{}.second", s.name), v.reshape(&s.param.shape())));
            }
        }
        out
    }

    /// Restore [`Optimizer::state`]. Fails, naming the entry, on a missing step
    /// count or a state tensor whose shape differs from its parameter's.
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor<T>>) -> Result<(), String> {
        let steps = state
            .get("steps")
            .ok_or("optimiser state: `steps` is missing")?;
        self.steps = steps
            .item()
            .map_err(|e| e.to_string())?
            .to_f64()
            .unwrap_or(0.0)
            .round() as u64;
        for s in &mut self.slots {
            for (suffix, target) in [("first", &mut s.first), ("second", &mut s.second)] {
                let key = format!("{}.{suffix}", s.name);
                *target = match state.get(&key) {
                    Some(t) if t.shape() == s.param.shape().as_slice() => Some(t.to_contiguous()),
                    Some(t) => {
                        return Err(format!(
                            "optimiser state `{key}` has shape {:?}, parameter has {:?}",
                            t.shape(),
                            s.param.shape()
                        ))
                    }
                    None => None,
                };
            }
        }
        Ok(())
    }
}

/// `f(w, state, g)` over three equal-length slices, in parallel chunks.
fn par_update3<T: Element>(
    w: &mut [T],
    s: &mut [T],
    g: &[T],
    f: impl Fn(&mut T, &mut T, T) + Sync,
) {
    w.par_chunks_mut(CHUNK)
        .zip(s.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|((w, s), g)| {
            for ((w, s), &g) in w.iter_mut().zip(s).zip(g) {
                f(w, s, g);
            }
        });
}
