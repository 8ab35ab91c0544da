//! Optimizers: SGD with momentum and Adam, updating a flat parameter vector in place.
//!
//! Every update is elementwise, so there is no sum whose order could vary; `sqrt` is exact in
//! IEEE 754 and Adam's bias corrections use `libm::pow`, so the same state and gradient give the
//! same bits everywhere.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Errors from configuring or restoring an optimizer.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum OptimizerError {
    /// A hyperparameter is out of range; the message says which.
    #[error("invalid optimizer setting: {0}")]
    InvalidSpec(String),
    /// Restored optimizer state does not match the model's parameter count.
    #[error(
        "optimizer state holds {got} values per buffer but the model has {expected} parameters"
    )]
    StateLength {
        /// Parameters of the model.
        expected: usize,
        /// Values in the optimizer's state buffers.
        got: usize,
    },
}

fn default_momentum() -> f32 {
    0.0
}
fn default_weight_decay() -> f32 {
    0.0
}
fn default_beta1() -> f32 {
    0.9
}
fn default_beta2() -> f32 {
    0.999
}
fn default_eps() -> f32 {
    1e-8
}

/// Which optimizer to use and its hyperparameters (PyTorch semantics and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerSpec {
    /// Stochastic gradient descent: `g += wd·p; buf = momentum·buf + g; p -= lr·buf`.
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum factor in `[0, 1)` (0 disables the momentum buffer). Default 0.
        #[serde(default = "default_momentum")]
        momentum: f32,
        /// L2 penalty added to the gradient. Default 0.
        #[serde(default = "default_weight_decay")]
        weight_decay: f32,
    },
    /// Adam (Kingma & Ba) with L2 weight decay added to the gradient, as `torch.optim.Adam`.
    Adam {
        /// Learning rate.
        lr: f32,
        /// Decay of the first-moment average, in `[0, 1)`. Default 0.9.
        #[serde(default = "default_beta1")]
        beta1: f32,
        /// Decay of the second-moment average, in `[0, 1)`. Default 0.999.
        #[serde(default = "default_beta2")]
        beta2: f32,
        /// Added to the denominator for stability, positive. Default 1e-8.
        #[serde(default = "default_eps")]
        eps: f32,
        /// L2 penalty added to the gradient. Default 0.
        #[serde(default = "default_weight_decay")]
        weight_decay: f32,
    },
}

impl Default for OptimizerSpec {
    /// Plain SGD with learning rate 0.01.
    fn default() -> Self {
        OptimizerSpec::sgd(0.01)
    }
}

impl OptimizerSpec {
    /// Plain SGD (no momentum, no weight decay) with learning rate `lr`.
    pub fn sgd(lr: f32) -> Self {
        OptimizerSpec::Sgd {
            lr,
            momentum: default_momentum(),
            weight_decay: default_weight_decay(),
        }
    }

    /// Adam with PyTorch's default betas and eps and learning rate `lr`.
    pub fn adam(lr: f32) -> Self {
        OptimizerSpec::Adam {
            lr,
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            weight_decay: default_weight_decay(),
        }
    }

    /// Checks every hyperparameter is finite and in range.
    pub fn validate(&self) -> Result<(), OptimizerError> {
        let check = |name: &str, value: f32, ok: bool, range: &str| {
            if value.is_finite() && ok {
                Ok(())
            } else {
                Err(OptimizerError::InvalidSpec(format!(
                    "{name} is {value}; it must be {range}"
                )))
            }
        };
        match *self {
            OptimizerSpec::Sgd {
                lr,
                momentum,
                weight_decay,
            } => {
                check("lr", lr, lr >= 0.0, "at least 0")?;
                check(
                    "momentum",
                    momentum,
                    (0.0..1.0).contains(&momentum),
                    "in [0, 1)",
                )?;
                check(
                    "weight_decay",
                    weight_decay,
                    weight_decay >= 0.0,
                    "at least 0",
                )
            }
            OptimizerSpec::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                check("lr", lr, lr >= 0.0, "at least 0")?;
                check("beta1", beta1, (0.0..1.0).contains(&beta1), "in [0, 1)")?;
                check("beta2", beta2, (0.0..1.0).contains(&beta2), "in [0, 1)")?;
                check("eps", eps, eps > 0.0, "positive")?;
                check(
                    "weight_decay",
                    weight_decay,
                    weight_decay >= 0.0,
                    "at least 0",
                )
            }
        }
    }
}

/// An optimizer and its state (step count and moment buffers) for one parameter vector.
///
/// The state is part of what a training step depends on, so it serializes and hashes
/// ([`Optimizer::state_hash`]) for re-execution of a single step elsewhere.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Optimizer {
    spec: OptimizerSpec,
    steps: u64,
    /// SGD momentum buffer or Adam first moment (empty when unused).
    first: Vec<f32>,
    /// Adam second moment (empty when unused).
    second: Vec<f32>,
}

impl Optimizer {
    /// A fresh optimizer (zero steps, zero moments) for `param_count` parameters.
    pub fn new(spec: &OptimizerSpec, param_count: usize) -> Result<Optimizer, OptimizerError> {
        spec.validate()?;
        let (first, second) = Optimizer::state_lengths(spec, param_count);
        let (first, second) = (vec![0.0; first], vec![0.0; second]);
        Ok(Optimizer {
            spec: spec.clone(),
            steps: 0,
            first,
            second,
        })
    }

    /// Lengths of the (first, second) state buffers `spec` keeps for `param_count` parameters.
    fn state_lengths(spec: &OptimizerSpec, param_count: usize) -> (usize, usize) {
        match *spec {
            OptimizerSpec::Sgd { momentum, .. } => {
                (if momentum == 0.0 { 0 } else { param_count }, 0)
            }
            OptimizerSpec::Adam { .. } => (param_count, param_count),
        }
    }

    /// The hyperparameters.
    pub fn spec(&self) -> &OptimizerSpec {
        &self.spec
    }

    /// Number of steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The moment buffers: (SGD momentum or Adam first moment, Adam second moment); a buffer
    /// the optimizer does not use is empty. With [`Optimizer::steps`] this is the whole state a
    /// step depends on, which a re-execution elsewhere must be given exactly.
    pub fn moments(&self) -> (&[f32], &[f32]) {
        (&self.first, &self.second)
    }

    /// An optimizer restored from its spec, step count and moment buffers (as
    /// [`Optimizer::moments`] gives them), checked against `param_count` parameters: buffers of
    /// the wrong length or holding a non-finite value are refused.
    pub fn restore(
        spec: &OptimizerSpec,
        param_count: usize,
        steps: u64,
        first: Vec<f32>,
        second: Vec<f32>,
    ) -> Result<Optimizer, OptimizerError> {
        let optimizer = Optimizer {
            spec: spec.clone(),
            steps,
            first,
            second,
        };
        optimizer.check(param_count)?;
        Ok(optimizer)
    }

    /// Lengths of the (first, second) moment buffers `spec` keeps for `param_count` parameters.
    pub fn moment_lengths(spec: &OptimizerSpec, param_count: usize) -> (usize, usize) {
        Optimizer::state_lengths(spec, param_count)
    }

    /// Checks that restored state is consistent with its spec and with `param_count` parameters.
    pub fn check(&self, param_count: usize) -> Result<(), OptimizerError> {
        self.spec.validate()?;
        let (first, second) = Optimizer::state_lengths(&self.spec, param_count);
        for (have, want) in [(self.first.len(), first), (self.second.len(), second)] {
            if have != want {
                return Err(OptimizerError::StateLength {
                    expected: want,
                    got: have,
                });
            }
        }
        if let Some(bad) = self
            .first
            .iter()
            .chain(&self.second)
            .find(|v| !v.is_finite())
        {
            return Err(OptimizerError::InvalidSpec(format!(
                "optimizer state holds {bad}"
            )));
        }
        Ok(())
    }

    /// blake3 over the step count and moment buffers (little-endian), so a trace can commit to
    /// the optimizer state as well as the weights.
    pub fn state_hash(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.steps.to_le_bytes());
        for buffer in [&self.first, &self.second] {
            hasher.update(&(buffer.len() as u64).to_le_bytes());
            for value in buffer {
                hasher.update(&value.to_le_bytes());
            }
        }
        *hasher.finalize().as_bytes()
    }

    /// Applies one update to `params` from `grads`.
    ///
    /// Panics if the lengths differ from each other or from the optimizer's state (a programmer
    /// error: the optimizer was made for another model).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        assert_eq!(
            params.len(),
            grads.len(),
            "optimizer step: {} params, {} grads",
            params.len(),
            grads.len()
        );
        match self.spec {
            OptimizerSpec::Sgd {
                lr,
                momentum,
                weight_decay,
            } => {
                if momentum == 0.0 {
                    for (p, &g) in params.iter_mut().zip(grads) {
                        let g = g + weight_decay * *p;
                        *p -= lr * g;
                    }
                } else {
                    assert_eq!(
                        self.first.len(),
                        params.len(),
                        "optimizer state is for another model"
                    );
                    let first_step = self.steps == 0;
                    for ((p, &g), buf) in params.iter_mut().zip(grads).zip(self.first.iter_mut()) {
                        let g = g + weight_decay * *p;
                        *buf = if first_step { g } else { momentum * *buf + g };
                        *p -= lr * *buf;
                    }
                }
            }
            OptimizerSpec::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                assert_eq!(
                    self.first.len(),
                    params.len(),
                    "optimizer state is for another model"
                );
                assert_eq!(
                    self.second.len(),
                    params.len(),
                    "optimizer state is for another model"
                );
                let t = (self.steps + 1) as f64;
                let correction1 = (1.0 - libm::pow(f64::from(beta1), t)) as f32;
                let correction2 = (1.0 - libm::pow(f64::from(beta2), t)) as f32;
                let step_size = lr / correction1;
                let correction2_sqrt = correction2.sqrt();
                let (keep1, keep2) = (1.0 - beta1, 1.0 - beta2);
                let moments = self.first.iter_mut().zip(self.second.iter_mut());
                for ((p, &g), (m, v)) in params.iter_mut().zip(grads).zip(moments) {
                    let g = g + weight_decay * *p;
                    *m = beta1 * *m + keep1 * g;
                    *v = beta2 * *v + keep2 * (g * g);
                    let denom = v.sqrt() / correction2_sqrt + eps;
                    *p -= step_size * (*m / denom);
                }
            }
        }
        self.steps += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_with_momentum_follows_pytorch_recurrence() {
        let spec = OptimizerSpec::Sgd {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.0,
        };
        let mut opt = Optimizer::new(&spec, 1).unwrap();
        let mut p = [1.0f32];
        opt.step(&mut p, &[1.0]);
        assert_eq!(p[0], 1.0 - 0.1);
        opt.step(&mut p, &[1.0]);
        assert_eq!(p[0], (1.0f32 - 0.1) - 0.1 * (0.9 * 1.0 + 1.0));
        assert_eq!(opt.steps(), 2);
    }

    #[test]
    fn adam_first_step_moves_each_weight_by_about_lr() {
        let mut opt = Optimizer::new(&OptimizerSpec::adam(0.01), 3).unwrap();
        let mut p = [0.0f32, 1.0, -1.0];
        opt.step(&mut p, &[0.5, -2.0, 1e-3]);
        assert!((p[0] + 0.01).abs() < 1e-6);
        assert!((p[1] - 1.01).abs() < 1e-6);
        assert!((p[2] + 1.01).abs() < 1e-4);
    }

    #[test]
    fn state_hash_changes_with_steps_and_specs_round_trip_with_defaults() {
        let mut opt = Optimizer::new(&OptimizerSpec::adam(0.001), 2).unwrap();
        let before = opt.state_hash();
        opt.step(&mut [0.0, 0.0], &[1.0, 1.0]);
        assert_ne!(before, opt.state_hash());
        opt.check(2).unwrap();
        assert!(matches!(
            opt.check(3),
            Err(OptimizerError::StateLength { .. })
        ));
        let parsed: OptimizerSpec = serde_json::from_str(r#"{"kind":"adam","lr":0.001}"#).unwrap();
        assert_eq!(parsed, OptimizerSpec::adam(0.001));
        let sgd: OptimizerSpec =
            serde_json::from_str(r#"{"kind":"sgd","lr":0.5,"momentum":0.9}"#).unwrap();
        assert_eq!(
            sgd,
            OptimizerSpec::Sgd {
                lr: 0.5,
                momentum: 0.9,
                weight_decay: 0.0
            }
        );
    }

    #[test]
    fn invalid_hyperparameters_are_rejected() {
        assert!(Optimizer::new(&OptimizerSpec::sgd(f32::NAN), 1).is_err());
        assert!(Optimizer::new(
            &OptimizerSpec::Sgd {
                lr: 0.1,
                momentum: 1.0,
                weight_decay: 0.0
            },
            1
        )
        .is_err());
        let bad_eps = OptimizerSpec::Adam {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            eps: 0.0,
            weight_decay: 0.0,
        };
        assert!(bad_eps.validate().is_err());
    }
}
