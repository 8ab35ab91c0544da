//! The strength search of the optimized attacks: ByzFL's expansion–contraction line search over a
//! scalar strength, maximizing the distance between the rule's output and the honest mean.

use serde::{Deserialize, Serialize};

use super::{moments, AttackError, Honest, Setting};
use crate::{aggregate, Context, Updates};

/// Largest number of aggregations one search may run.
pub const MAX_EVALUATIONS: usize = 10_000;

/// A line search over the strength `x` of an attack (ByzFL's `Optimal_*` attacks).
///
/// Expansion: from `start`, try `best + delta`; while that improves, keep it and double `delta`;
/// on the first failure multiply `delta` by `ratio` and contract. Contraction: try `best + delta`
/// (keep it if better) and multiply `delta` by `ratio`, until `evaluations` aggregations have been
/// run in all. The objective is `‖aggregate(rule, pre, honest ∪ f × byzantine(x)) − μ‖`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrengthSearch {
    /// First strength evaluated.
    pub start: f32,
    /// First step (non-zero; its sign is the direction searched).
    pub delta: f32,
    /// Step shrink factor, in (0.5, 1).
    pub ratio: f32,
    /// Aggregations run in all (1..=10000).
    pub evaluations: usize,
}

impl Default for StrengthSearch {
    /// ByzFL's defaults: start 0, delta 10, ratio 0.8, 20 evaluations.
    fn default() -> Self {
        Self {
            start: 0.0,
            delta: 10.0,
            ratio: 0.8,
            evaluations: 20,
        }
    }
}

impl StrengthSearch {
    /// Checks every parameter's domain.
    pub(crate) fn check(&self, attack: &'static str) -> Result<(), AttackError> {
        let invalid = |reason: String| Err(AttackError::InvalidParameter { attack, reason });
        if !self.start.is_finite() {
            return invalid(format!("start = {} must be finite", self.start));
        }
        if !self.delta.is_finite() || self.delta == 0.0 {
            return invalid(format!(
                "delta = {} must be finite and non-zero",
                self.delta
            ));
        }
        if !(self.ratio > 0.5 && self.ratio < 1.0) {
            return invalid(format!("ratio = {} must be in (0.5, 1)", self.ratio));
        }
        if self.evaluations == 0 || self.evaluations > MAX_EVALUATIONS {
            return invalid(format!(
                "evaluations = {} must be in 1..={MAX_EVALUATIONS}",
                self.evaluations
            ));
        }
        Ok(())
    }
}

/// Runs the search and returns the best strength found.
pub(crate) fn maximize(
    search: &StrengthSearch,
    honest: &Honest<'_>,
    setting: &Setting<'_>,
    byzantine: impl Fn(f64) -> Vec<f32>,
) -> Result<f64, AttackError> {
    let mean = moments::mean(honest);
    let rows = honest.rows + setting.f;
    let mut buffer = Vec::with_capacity(rows * honest.d);
    let mut objective = |x: f64| -> Result<f64, AttackError> {
        let vector = byzantine(x);
        buffer.clear();
        buffer.extend_from_slice(honest.data);
        for _ in 0..setting.f {
            buffer.extend_from_slice(&vector);
        }
        let updates = Updates::new(&buffer, rows, honest.d)?;
        let output = aggregate(&setting.rule, &setting.pre, &updates, &Context::default())?;
        Ok(moments::squared_distance(&output, &mean).sqrt())
    };
    let ratio = f64::from(search.ratio);
    let mut best_x = f64::from(search.start);
    let mut best_y = objective(best_x)?;
    let mut delta = f64::from(search.delta);
    let mut remaining = search.evaluations - 1;
    // Expansion.
    while remaining > 0 {
        let x = best_x + delta;
        let y = objective(x)?;
        remaining -= 1;
        if y > best_y {
            best_x = x;
            best_y = y;
            delta *= 2.0;
        } else {
            delta *= ratio;
            break;
        }
    }
    // Contraction.
    while remaining > 0 {
        let x = best_x + delta;
        let y = objective(x)?;
        remaining -= 1;
        if y > best_y {
            best_x = x;
            best_y = y;
        }
        delta *= ratio;
    }
    Ok(best_x)
}
