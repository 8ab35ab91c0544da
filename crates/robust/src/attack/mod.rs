//! Attacks on aggregation rules: what `f` Byzantine trainers submit when they know the honest
//! updates, the rule in use and its pre-aggregation.
//!
//! Every attack is a pure function of the honest updates, the [`Setting`] (`n`, `f`, rule,
//! pre-aggregation chain, seed, optional stale update) and its own parameters, and returns the `f`
//! Byzantine updates row-major (`f × d`). The same inputs give the same bits on every machine:
//! statistics are accumulated in `f64` in row order, randomness is a seeded ChaCha20 stream and
//! transcendental functions come from the pure-Rust `libm`. Formulas and references are in
//! `docs/attacks.md`.
//!
//! ```
//! use cairn_robust::attack::{craft, Attack, Setting};
//! use cairn_robust::Rule;
//! let honest = [1.0, 2.0, 1.2, 2.2, 0.8, 1.8];
//! let setting = Setting::new(5, 2, Rule::Median);
//! let byzantine = craft(&Attack::SignFlip { scale: 1.0 }, &honest, 2, &setting).unwrap();
//! assert_eq!(byzantine, vec![-1.0, -2.0, -1.0, -2.0]);
//! ```

mod alie;
mod error;
mod label_flip;
mod mimic;
mod min_max;
mod moments;
mod noise;
mod normal;
mod search;
mod syntax;

use serde::{Deserialize, Serialize};

use crate::{PreAggregation, Rule};

pub use alie::z_max;
pub use error::AttackError;
pub use label_flip::{flip_label, flip_labels};
pub use mimic::MimicTarget;
pub use min_max::Perturbation;
pub use noise::NonFiniteValue;
pub use normal::inverse_normal_cdf;
pub use search::{StrengthSearch, MAX_EVALUATIONS};
pub use syntax::ATTACK_SYNTAX;

/// Most f32 values one call may return (`f x d`, 4 GiB): bounds memory whatever `f` says.
pub const MAX_OUTPUT_VALUES: usize = 1 << 30;
/// Most honest rows the min-max and min-sum attacks accept: they hold an `n x n` distance matrix.
pub const MAX_PAIRWISE_ROWS: usize = 16_384;

/// Default `ε` of the inner-product manipulation (Xie et al. 2020 use 0.1 against Krum).
pub const DEFAULT_IPM_EPSILON: f32 = 0.1;
/// Default standard deviation of the Gaussian attack.
pub const DEFAULT_GAUSSIAN_SIGMA: f32 = 1.0;

/// An attack and its parameters. Its text form (for `cairn attack --kind`) is given by
/// [`std::str::FromStr`] and [`std::fmt::Display`], e.g. `alie`, `alie:1.5`, `ipm:0.5`,
/// `min_max:std`, `sybil:gaussian:5`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "attack", rename_all = "snake_case")]
pub enum Attack {
    /// Each Byzantine update is `−scale · μ`, with `μ` the mean of the honest updates.
    SignFlip {
        /// Multiplier of the flipped mean (1 for a plain sign flip).
        scale: f32,
    },
    /// Each Byzantine update is drawn independently from `N(mu, sigma²)` per coordinate.
    Gaussian {
        /// Mean of every coordinate.
        mu: f32,
        /// Standard deviation of every coordinate (>= 0).
        sigma: f32,
    },
    /// Every coordinate of every Byzantine update is NaN or an infinity.
    NonFinite {
        /// The value sent.
        value: NonFiniteValue,
    },
    /// Inner-product manipulation (Xie et al. 2020): each Byzantine update is `−ε · μ`.
    Ipm {
        /// Strength `ε`.
        epsilon: f32,
    },
    /// A Little Is Enough (Baruch et al. 2019): `μ_j − z · σ_j` per coordinate, `σ` the sample
    /// standard deviation of the honest updates; `z = None` takes the paper's `z_max(n, f)`.
    Alie {
        /// Fixed strength, or `None` for [`z_max`].
        z: Option<f32>,
    },
    /// Inner-product manipulation whose `ε` is searched to move the rule's output furthest from
    /// the honest mean.
    OptimizedIpm {
        /// The search over `ε`.
        search: StrengthSearch,
    },
    /// A Little Is Enough whose `z` is searched to move the rule's output furthest from the honest
    /// mean.
    OptimizedAlie {
        /// The search over `z`.
        search: StrengthSearch,
    },
    /// Every Byzantine update copies one honest update (Karimireddy et al. 2022).
    Mimic {
        /// Which honest update is copied.
        target: MimicTarget,
    },
    /// Min-max (Shejwalkar & Houmansadr 2021): `μ − γ p`, with the largest `γ` found by halving
    /// such that the furthest honest update is no further than the two furthest honest ones.
    MinMax {
        /// The perturbation `p`.
        perturbation: Perturbation,
    },
    /// Min-sum (Shejwalkar & Houmansadr 2021): `μ − γ p`, with the largest `γ` such that the sum of
    /// squared distances to the honest updates stays within the largest such sum of an honest one.
    MinSum {
        /// The perturbation `p`.
        perturbation: Perturbation,
    },
    /// Free riders submit the zero update: they claim a reward for no work.
    FreeRider,
    /// Free riders resubmit a stale update ([`Setting::stale`], e.g. the previous round's).
    Stale,
    /// Colluding Sybils: all `f` submit the same vector, the first one crafted by `of`.
    Sybil {
        /// The attack whose first vector every Sybil submits.
        of: Box<Attack>,
    },
}

/// What the attackers know besides the honest updates.
#[derive(Clone, Debug)]
pub struct Setting<'a> {
    /// Total number of updates the aggregator receives (honest + Byzantine).
    pub n: usize,
    /// Number of Byzantine updates to craft.
    pub f: usize,
    /// The aggregation rule in use (the optimized attacks evaluate it).
    pub rule: Rule,
    /// The pre-aggregation chain in use, applied before `rule`.
    pub pre: Vec<PreAggregation>,
    /// Seed of every random choice (ChaCha20).
    pub seed: u64,
    /// A stale update for [`Attack::Stale`], of dimension `d`.
    pub stale: Option<&'a [f32]>,
}

impl Setting<'_> {
    /// A setting with no pre-aggregation, seed 0 and no stale update.
    pub fn new(n: usize, f: usize, rule: Rule) -> Self {
        Self {
            n,
            f,
            rule,
            pre: Vec::new(),
            seed: 0,
            stale: None,
        }
    }
}

/// Crafts the `f` Byzantine updates, row-major (`f × d`), from the honest updates the attackers
/// know (`honest`, row-major, `d` columns, between 1 and `n − f` rows).
///
/// `f == 0` returns an empty vector. Errors: `f >= n`, no honest update, `honest.len()` not a
/// multiple of `d`, more honest rows than `n − f`, non-finite honest values, a parameter out of
/// its domain, or (for the optimized attacks) a rule that refuses the combined updates.
pub fn craft(
    attack: &Attack,
    honest: &[f32],
    d: usize,
    setting: &Setting<'_>,
) -> Result<Vec<f32>, AttackError> {
    let (n, f) = (setting.n, setting.f);
    if f >= n {
        return Err(AttackError::TooManyByzantine { n, f });
    }
    if d == 0 || honest.len() % d != 0 {
        return Err(AttackError::Dimension {
            len: honest.len(),
            d,
        });
    }
    let rows = honest.len() / d;
    if rows == 0 {
        return Err(AttackError::NoHonest);
    }
    if rows > n - f {
        return Err(AttackError::TooManyHonest { rows, n, f });
    }
    if let Some(index) = honest.iter().position(|v| !v.is_finite()) {
        return Err(AttackError::NonFiniteHonest {
            row: index / d,
            column: index % d,
        });
    }
    if f == 0 {
        return Ok(Vec::new());
    }
    // The optimized attacks aggregate honest and Byzantine rows together: bound that whole matrix.
    let total_values = n.saturating_mul(d);
    if total_values > MAX_OUTPUT_VALUES {
        return Err(AttackError::TooLarge {
            what: "n x d values",
            size: total_values,
            limit: MAX_OUTPUT_VALUES,
        });
    }
    if matches!(attack, Attack::MinMax { .. } | Attack::MinSum { .. }) && rows > MAX_PAIRWISE_ROWS {
        return Err(AttackError::TooLarge {
            what: "honest rows for a pairwise-distance attack",
            size: rows,
            limit: MAX_PAIRWISE_ROWS,
        });
    }
    let honest = Honest {
        data: honest,
        rows,
        d,
    };
    let vector = match attack {
        Attack::SignFlip { scale } => {
            check_finite("sign_flip", "scale", *scale)?;
            scaled_mean(&honest, -f64::from(*scale))
        }
        Attack::Ipm { epsilon } => {
            check_finite("ipm", "epsilon", *epsilon)?;
            scaled_mean(&honest, -f64::from(*epsilon))
        }
        Attack::Alie { z } => {
            let z = match z {
                Some(z) => {
                    check_finite("alie", "z", *z)?;
                    f64::from(*z)
                }
                None => z_max(n, f)?,
            };
            alie::vector(&honest, z)
        }
        Attack::OptimizedIpm { search } => {
            search.check("optimized_ipm")?;
            let mean = moments::mean(&honest);
            let best = search::maximize(search, &honest, setting, |eps| {
                mean.iter().map(|m| (-eps * m) as f32).collect()
            })?;
            tracing::debug!(epsilon = best, "optimized ipm strength");
            scaled_mean(&honest, -best)
        }
        Attack::OptimizedAlie { search } => {
            search.check("optimized_alie")?;
            let (mean, std) = moments::mean_and_std(&honest);
            let best =
                search::maximize(search, &honest, setting, |z| alie::combine(&mean, &std, z))?;
            tracing::debug!(z = best, "optimized alie strength");
            alie::combine(&mean, &std, best)
        }
        Attack::MinMax { perturbation } => {
            min_max::vector(&honest, *perturbation, min_max::Bound::Max)
        }
        Attack::MinSum { perturbation } => {
            min_max::vector(&honest, *perturbation, min_max::Bound::Sum)
        }
        Attack::Mimic { target } => mimic::choose(&honest, *target, setting.seed)?.to_vec(),
        Attack::FreeRider => vec![0.0; d],
        Attack::Stale => {
            let stale = setting.stale.ok_or(AttackError::MissingStale)?;
            if stale.len() != d {
                return Err(AttackError::StaleDimension {
                    expected: d,
                    actual: stale.len(),
                });
            }
            stale.to_vec()
        }
        Attack::Gaussian { mu, sigma } => {
            check_finite("gaussian", "mu", *mu)?;
            check_finite("gaussian", "sigma", *sigma)?;
            if *sigma < 0.0 {
                return Err(AttackError::InvalidParameter {
                    attack: "gaussian",
                    reason: format!("sigma = {sigma} must be >= 0"),
                });
            }
            return Ok(noise::gaussian(f, d, *mu, *sigma, setting.seed));
        }
        Attack::NonFinite { value } => return Ok(vec![value.as_f32(); f * d]),
        Attack::Sybil { of } => {
            let crafted = craft(of, honest.data, d, setting)?;
            crafted[..d].to_vec()
        }
    };
    debug_assert_eq!(vector.len(), d);
    Ok(repeat_rows(&vector, f))
}

/// The honest updates as the attack modules see them: row-major, finite, at least one row.
#[derive(Clone, Copy)]
pub(crate) struct Honest<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rows: usize,
    pub(crate) d: usize,
}

impl<'a> Honest<'a> {
    /// Row `i`.
    pub(crate) fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }
}

/// `scale · μ`, rounded to f32.
fn scaled_mean(honest: &Honest<'_>, scale: f64) -> Vec<f32> {
    moments::mean(honest)
        .iter()
        .map(|m| (scale * m) as f32)
        .collect()
}

/// `f` copies of `vector`, row-major.
fn repeat_rows(vector: &[f32], f: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(vector.len() * f);
    for _ in 0..f {
        out.extend_from_slice(vector);
    }
    out
}

fn check_finite(attack: &'static str, name: &str, value: f32) -> Result<(), AttackError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(AttackError::InvalidParameter {
            attack,
            reason: format!("{name} = {value} must be finite"),
        })
    }
}

#[cfg(test)]
mod tests;
