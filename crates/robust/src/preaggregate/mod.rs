//! Pre-aggregation steps: transforms of the set of updates applied before a rule
//! (Allouah et al. 2023 "fixing by mixing", Karimireddy et al. 2022 bucketing, clipping).
//!
//! Every step maps `n` updates of dimension `d` to `n'` updates of dimension `d` (`n' = n`
//! except for bucketing, `n' = ⌈n / s⌉`), so any chain composes with any rule except those whose
//! parameters index the original updates (MoNNA, weighted mean) after bucketing, which merges
//! shuffled rows ([`crate::Rule::check_chain`]); NNM, clipping and ARC keep row `i` as a
//! transform of update `i`. The rule's requirement is checked on the `n'` that reaches it. Each
//! step allocates its output (`n' * d` values) plus `O(n^2)` for distances (NNM, at most
//! [`crate::MAX_PAIRWISE_UPDATES`] updates) or `O(n)` for norms.

mod bucketing;
mod clipping;
mod nnm;

pub use bucketing::permutation;
pub use clipping::arc_clipped_count;

use serde::{Deserialize, Serialize};

use crate::updates::{Matrix, Updates};
use crate::{RobustError, MAX_PAIRWISE_UPDATES};

/// A pre-aggregation step with its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "pre", rename_all = "snake_case")]
pub enum PreAggregation {
    /// Nearest-neighbour mixing: each `x_i` becomes the mean of its `n - f` nearest neighbours
    /// (itself included). Requires `n >= 2f + 1`.
    Nnm {
        /// Byzantine updates tolerated.
        f: usize,
    },
    /// Bucketing: shuffle with a seeded ChaCha20 permutation, then replace each run of
    /// `bucket_size` updates by its mean (a last, shorter bucket is averaged too).
    Bucketing {
        /// Updates per bucket (>= 1).
        bucket_size: usize,
        /// Seed of the permutation (take it from the round seed for replayability).
        seed: u64,
    },
    /// Static clipping: `x_i ← min(1, c / ‖x_i‖) x_i`.
    #[serde(rename = "clip")]
    StaticClip {
        /// The norm bound `c` (finite, > 0).
        threshold: f32,
    },
    /// Adaptive robust clipping (Allouah et al. 2024): the `k = ⌊2 f (n − f) / n⌋` largest
    /// updates are clipped to the norm of the `(n − k)`-th smallest. Requires `f <= n`.
    Arc {
        /// Byzantine updates tolerated.
        f: usize,
    },
}

impl PreAggregation {
    /// The step's name, as in its serde tag and CLI syntax (`"nnm"`, `"bucketing"`, `"clip"`,
    /// `"arc"`).
    pub fn name(&self) -> &'static str {
        match self {
            PreAggregation::Nnm { .. } => "nnm",
            PreAggregation::Bucketing { .. } => "bucketing",
            PreAggregation::StaticClip { .. } => "clip",
            PreAggregation::Arc { .. } => "arc",
        }
    }

    /// Number of updates this step outputs for `n` inputs.
    pub fn output_n(&self, n: usize) -> usize {
        match self {
            PreAggregation::Bucketing { bucket_size, .. } if *bucket_size > 0 => {
                n.div_ceil(*bucket_size)
            }
            _ => n,
        }
    }

    /// Applies the step to finite updates.
    pub(crate) fn apply(&self, updates: &Updates<'_>) -> Result<Matrix, RobustError> {
        let n = updates.n();
        match self {
            PreAggregation::Nnm { f } => {
                let required = f.saturating_mul(2).saturating_add(1);
                if n < required {
                    return Err(RobustError::NotEnoughUpdates {
                        rule: self.name(),
                        n,
                        required,
                        requirement: "n >= 2f + 1",
                    });
                }
                if n > MAX_PAIRWISE_UPDATES {
                    return Err(RobustError::TooManyUpdates {
                        n,
                        limit: MAX_PAIRWISE_UPDATES,
                        rule: self.name(),
                    });
                }
                nnm::mix(updates, *f)
            }
            PreAggregation::Bucketing { bucket_size, seed } => {
                if *bucket_size == 0 {
                    return Err(RobustError::InvalidParameter {
                        rule: self.name(),
                        reason: "bucket_size must be >= 1".into(),
                    });
                }
                Ok(bucketing::bucket_means(updates, *bucket_size, *seed))
            }
            PreAggregation::StaticClip { threshold } => {
                if !(threshold.is_finite() && *threshold > 0.0) {
                    return Err(RobustError::InvalidParameter {
                        rule: self.name(),
                        reason: format!("threshold = {threshold} must be finite and > 0"),
                    });
                }
                Ok(clipping::clip_static(updates, *threshold))
            }
            PreAggregation::Arc { f } => {
                if *f > n {
                    return Err(RobustError::InvalidParameter {
                        rule: self.name(),
                        reason: format!("f = {f} must be <= n = {n}"),
                    });
                }
                Ok(clipping::clip_adaptive(updates, *f))
            }
        }
    }
}
