//! The aggregation rules a task can name, their parameters and their requirements on `n`.

use serde::{Deserialize, Serialize};

use crate::{PreAggregation, RobustError};

/// Largest iteration count accepted by the iterative rules (geometric median, centered clipping).
pub const MAX_ITERATIONS: usize = 10_000;

/// Most updates accepted by the rules and steps that hold the `n × n` matrix of pairwise squared
/// distances (Krum, Multi-Krum, Bulyan, MDA and the NNM pre-aggregation): `16_384² × 8` bytes
/// = 2 GiB of `f64`, the same bound as the attacks' [`crate::attack::MAX_PAIRWISE_ROWS`].
pub const MAX_PAIRWISE_UPDATES: usize = 16_384;

/// Most updates accepted by the coordinate-wise sorting rules (median, trimmed mean, MeaMed, and
/// the geometric median started from the median):
/// each rayon thread holds a buffer of `n × (r + 16)` `i32` keys, the run length `r` shrinking
/// from 2048 as `n` grows past 16 (`n × r ≤ 32 Ki`, `r ≥ 256`), so at the limit 17 MiB per
/// thread. Mean, weighted mean, geometric median and centered clipping use
/// `O(n + d)` extra memory and take any `n`.
pub const MAX_SORTED_UPDATES: usize = 16_384;

/// Which neighbour count Krum's score uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KrumVariant {
    /// Blanchard et al. 2017: `score(i)` sums the squared distances from `x_i` to its `n - f - 2`
    /// nearest other updates. Requires `n >= 2f + 3`.
    #[default]
    Textbook,
    /// ByzFL (`byzfl.Krum`, `byzfl.MultiKrum`): sorts each row of the squared-distance matrix,
    /// drops the first entry (the update itself, distance 0) and averages the next `n - f - 1`,
    /// i.e. the `n - f - 1` nearest other updates (the mean has the same argmin as the sum).
    /// Requires `n >= 2f + 1`. Serialized as `"byzfl"`, as in the CLI syntax.
    #[serde(rename = "byzfl")]
    ByzFl,
}

impl KrumVariant {
    /// How many nearest other updates enter `score(i)` for `n` updates and `f` Byzantine ones.
    pub fn neighbours(self, n: usize, f: usize) -> usize {
        match self {
            KrumVariant::Textbook => n.saturating_sub(f + 2),
            KrumVariant::ByzFl => n.saturating_sub(f + 1),
        }
    }
}

/// Starting point of the Weiszfeld iterations of the geometric median.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GmInit {
    /// The zero vector (ByzFL's choice).
    #[default]
    Zeros,
    /// The arithmetic mean of the updates.
    Mean,
    /// The coordinate-wise median of the updates.
    Median,
}

/// An aggregation rule with its parameters. `f` is always the number of Byzantine updates the
/// rule is asked to tolerate. See `docs/robust.md` for each formula.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// Arithmetic mean `(1/n) Σ x_i`. Not robust: the baseline.
    Mean,
    /// `Σ w_i x_i / Σ w_i`, weights finite, non-negative, with a positive sum; one per update.
    WeightedMean {
        /// One weight per update, in update order.
        weights: Vec<f32>,
    },
    /// Coordinate-wise median (mean of the two middle values when `n` is even, as numpy).
    Median,
    /// Coordinate-wise mean after dropping the `f` largest and `f` smallest values.
    TrimmedMean {
        /// Values dropped at each end of every coordinate.
        f: usize,
    },
    /// The update with the lowest Krum score.
    Krum {
        /// Byzantine updates tolerated.
        f: usize,
        /// Neighbour count used by the score.
        #[serde(default)]
        variant: KrumVariant,
    },
    /// Mean of the `m` updates with the lowest Krum scores.
    MultiKrum {
        /// Byzantine updates tolerated.
        f: usize,
        /// Updates averaged; `None` means `n - f` (ByzFL's choice).
        #[serde(default)]
        m: Option<usize>,
        /// Neighbour count used by the score.
        #[serde(default)]
        variant: KrumVariant,
    },
    /// El Mhamdi et al. 2018: `n - 2f` updates picked by iterated Krum, then per coordinate the
    /// mean of the `n - 4f` values closest to the median of the picked ones.
    Bulyan {
        /// Byzantine updates tolerated.
        f: usize,
    },
    /// Approximate geometric median by smoothed Weiszfeld iterations.
    GeometricMedian {
        /// Smoothing: distances below `nu` count as `nu` (> 0).
        nu: f32,
        /// Weiszfeld iterations (1..=10000).
        iterations: usize,
        /// Starting point.
        #[serde(default)]
        init: GmInit,
    },
    /// Karimireddy et al. 2021: `v ← v + (1/n) Σ (x_i − v) min(1, τ/‖x_i − v‖)`, from the
    /// previous aggregate (or zero).
    CenteredClipping {
        /// Clipping radius τ (> 0).
        tau: f32,
        /// Iterations (1..=10000).
        iterations: usize,
    },
    /// Minimum-diameter averaging: mean of the `n - f` updates with the smallest diameter.
    Mda {
        /// Byzantine updates tolerated.
        f: usize,
    },
    /// Mean of the `n - f` nearest neighbours of a trusted reference update (itself included).
    Monna {
        /// Byzantine updates tolerated.
        f: usize,
        /// Index of the reference update (the aggregating node's own).
        reference: usize,
    },
    /// Mean around median: per coordinate, mean of the `n - f` values closest to the median.
    Meamed {
        /// Byzantine updates tolerated.
        f: usize,
    },
}

impl Rule {
    /// The rule's name, as in its serde tag and its CLI syntax (`"trimmed_mean"`, `"krum"`...).
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Mean => "mean",
            Rule::WeightedMean { .. } => "weighted_mean",
            Rule::Median => "median",
            Rule::TrimmedMean { .. } => "trimmed_mean",
            Rule::Krum { .. } => "krum",
            Rule::MultiKrum { .. } => "multi_krum",
            Rule::Bulyan { .. } => "bulyan",
            Rule::GeometricMedian { .. } => "geometric_median",
            Rule::CenteredClipping { .. } => "centered_clipping",
            Rule::Mda { .. } => "mda",
            Rule::Monna { .. } => "monna",
            Rule::Meamed { .. } => "meamed",
        }
    }

    /// The number of Byzantine updates the rule tolerates, for rules that take one.
    pub fn f(&self) -> Option<usize> {
        match self {
            Rule::TrimmedMean { f }
            | Rule::Krum { f, .. }
            | Rule::MultiKrum { f, .. }
            | Rule::Bulyan { f }
            | Rule::Mda { f }
            | Rule::Monna { f, .. }
            | Rule::Meamed { f } => Some(*f),
            _ => None,
        }
    }

    /// Smallest number of updates the rule accepts (its resilience requirement).
    ///
    /// `mean`, `weighted_mean`, `median`, `geometric_median`, `centered_clipping`: 1;
    /// `trimmed_mean`, `mda`, `monna`, `meamed`, ByzFL-variant Krum: `2f + 1`;
    /// textbook Krum and Multi-Krum: `2f + 3`; `bulyan`: `4f + 3`.
    pub fn min_n(&self) -> usize {
        let (required, _) = self.requirement();
        required
    }

    /// The requirement as `(minimum n, formula)`.
    pub(crate) fn requirement(&self) -> (usize, &'static str) {
        let f = self.f().unwrap_or(0);
        match self {
            Rule::Mean
            | Rule::WeightedMean { .. }
            | Rule::Median
            | Rule::GeometricMedian { .. }
            | Rule::CenteredClipping { .. } => (1, "n >= 1"),
            Rule::Krum { variant, .. } | Rule::MultiKrum { variant, .. } => match variant {
                KrumVariant::Textbook => (f.saturating_mul(2).saturating_add(3), "n >= 2f + 3"),
                KrumVariant::ByzFl => (f.saturating_mul(2).saturating_add(1), "n >= 2f + 1"),
            },
            Rule::Bulyan { .. } => (f.saturating_mul(4).saturating_add(3), "n >= 4f + 3"),
            Rule::TrimmedMean { .. }
            | Rule::Mda { .. }
            | Rule::Monna { .. }
            | Rule::Meamed { .. } => (f.saturating_mul(2).saturating_add(1), "n >= 2f + 1"),
        }
    }

    /// Largest `n` the rule accepts, bounded by the memory it needs; `None` when unbounded.
    pub fn max_n(&self) -> Option<usize> {
        match self {
            Rule::Krum { .. } | Rule::MultiKrum { .. } | Rule::Bulyan { .. } | Rule::Mda { .. } => {
                Some(MAX_PAIRWISE_UPDATES)
            }
            Rule::Median
            | Rule::TrimmedMean { .. }
            | Rule::Meamed { .. }
            | Rule::GeometricMedian {
                init: GmInit::Median,
                ..
            } => Some(MAX_SORTED_UPDATES),
            Rule::Mean
            | Rule::WeightedMean { .. }
            | Rule::GeometricMedian { .. }
            | Rule::CenteredClipping { .. }
            | Rule::Monna { .. } => None,
        }
    }

    /// Checks that the rule may follow the pre-aggregation chain `pre`.
    ///
    /// Refuses a rule whose parameters index the original updates (MoNNA's reference, the
    /// weights of a weighted mean) after bucketing, which replaces the updates by means of
    /// shuffled buckets: the indices would silently point at unrelated buckets. NNM, clipping and
    /// ARC keep row `i` as (a transform of) update `i`, so indices stay meaningful after them.
    pub fn check_chain(&self, pre: &[PreAggregation]) -> Result<(), RobustError> {
        let reason = match self {
            Rule::Monna { .. } => {
                "the reference indexes an original update, but bucketing replaces the updates \
                 by means of shuffled buckets; drop bucketing or use another rule"
            }
            Rule::WeightedMean { .. } => {
                "the weights index the original updates, but bucketing replaces them by means \
                 of shuffled buckets; drop bucketing or use mean"
            }
            _ => return Ok(()),
        };
        match pre
            .iter()
            .find(|step| matches!(step, PreAggregation::Bucketing { .. }))
        {
            Some(step) => Err(RobustError::IncompatibleChain {
                rule: self.name(),
                step: step.name(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Refuses `n` above [`Rule::max_n`], before anything of size `n²` or `threads × n` exists.
    pub(crate) fn check_size(&self, n: usize) -> Result<(), RobustError> {
        match self.max_n() {
            Some(limit) if n > limit => Err(RobustError::TooManyUpdates {
                n,
                limit,
                rule: self.name(),
            }),
            _ => Ok(()),
        }
    }

    /// Checks the rule's parameters and its requirement for `n` updates.
    pub(crate) fn check(&self, n: usize) -> Result<(), RobustError> {
        self.check_size(n)?;
        let (required, requirement) = self.requirement();
        if n < required {
            return Err(RobustError::NotEnoughUpdates {
                rule: self.name(),
                n,
                required,
                requirement,
            });
        }
        let invalid = |reason: String| {
            Err(RobustError::InvalidParameter {
                rule: self.name(),
                reason,
            })
        };
        match self {
            Rule::WeightedMean { weights } => {
                if weights.len() != n {
                    return Err(RobustError::SideInputLength {
                        what: "weights",
                        expected: n,
                        actual: weights.len(),
                    });
                }
                if let Some(index) = weights.iter().position(|w| !w.is_finite()) {
                    return Err(RobustError::SideInputNonFinite {
                        what: "weights",
                        index,
                    });
                }
                if let Some(index) = weights.iter().position(|w| *w < 0.0) {
                    return invalid(format!("weight {index} is negative; weights must be >= 0"));
                }
                if weights.iter().all(|w| *w == 0.0) {
                    return invalid("all weights are zero; at least one must be positive".into());
                }
            }
            Rule::MultiKrum { f, m: Some(m), .. } if *m == 0 || *m > n => {
                return invalid(format!("m = {m} must be in 1..=n (n = {n}, f = {f})"));
            }
            Rule::GeometricMedian { nu, iterations, .. } => {
                if !(nu.is_finite() && *nu > 0.0) {
                    return invalid(format!("nu = {nu} must be finite and > 0"));
                }
                check_iterations(self.name(), *iterations)?;
            }
            Rule::CenteredClipping { tau, iterations } => {
                if !(tau.is_finite() && *tau > 0.0) {
                    return invalid(format!("tau = {tau} must be finite and > 0"));
                }
                check_iterations(self.name(), *iterations)?;
            }
            Rule::Monna { reference, .. } if *reference >= n => {
                return invalid(format!("reference = {reference} must be < n = {n}"));
            }
            _ => {}
        }
        Ok(())
    }
}

fn check_iterations(rule: &'static str, iterations: usize) -> Result<(), RobustError> {
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(RobustError::InvalidParameter {
            rule,
            reason: format!("iterations = {iterations} must be in 1..={MAX_ITERATIONS}"),
        });
    }
    Ok(())
}
