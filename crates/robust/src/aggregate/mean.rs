//! Arithmetic and weighted mean.
//!
//! `mean(x_1..x_n) = (1/n) Σ x_i`; `weighted_mean = Σ w_i x_i / Σ w_i`. Sums in `f64`, in update
//! order, for every coordinate. Requirement: `n >= 1`; weights finite, `>= 0`, positive sum.
//! Extra memory: `O(d)`. Not robust: one update moves the output arbitrarily far.

use crate::coordinate::weighted_average;
use crate::Updates;

/// Arithmetic mean of all updates.
pub(crate) fn mean(updates: &Updates<'_>) -> Vec<f32> {
    let terms: Vec<(usize, f64)> = (0..updates.n()).map(|i| (i, 1.0)).collect();
    weighted_average(updates, &terms)
}

/// Weighted mean; `weights` are already checked (length `n`, finite, non-negative, not all 0).
pub(crate) fn weighted_mean(updates: &Updates<'_>, weights: &[f32]) -> Vec<f32> {
    let terms: Vec<(usize, f64)> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (i, f64::from(w)))
        .collect();
    weighted_average(updates, &terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixture::{rows, BYZFL_3X3};

    #[test]
    fn mean_of_byzfl_example_is_middle_row() {
        assert_eq!(mean(&rows(&BYZFL_3X3, 3)), vec![4.0, 5.0, 6.0]);
    }

    #[test]
    fn weighted_mean_weights_rows_and_ignores_zero_weight() {
        let out = weighted_mean(&rows(&BYZFL_3X3, 3), &[1.0, 3.0, 0.0]);
        assert_eq!(out, vec![3.25, 4.25, 5.25]);
    }
}
