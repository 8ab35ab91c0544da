//! Approximate geometric median by smoothed Weiszfeld iterations (Pillutla et al. 2022; ByzFL
//! `GeometricMedian`).
//!
//! Target: `argmin_z Σ_i ‖z − x_i‖`. From `z_0` (zeros, mean or coordinate-wise median), for
//! `t = 0..T−1`: `β_i = max(ν, ‖x_i − z_t‖)`, `w_i = (1/n) / β_i`,
//! `z_{t+1} = Σ_i w_i x_i / Σ_i w_i`. Distances and sums in `f64` with the crate's fixed order;
//! `z_t` is stored in `f32` between iterations. Requirement: `n >= 1`, `ν > 0`,
//! `1 <= T <= 10000`. Extra memory: `O(d + n)`.

use crate::aggregate::{mean, median};
use crate::coordinate::weighted_average;
use crate::distance::squared_distances_to;
use crate::{GmInit, Updates};

/// Smoothed Weiszfeld geometric median.
pub(crate) fn geometric_median(
    updates: &Updates<'_>,
    nu: f32,
    iterations: usize,
    init: GmInit,
) -> Vec<f32> {
    let n = updates.n();
    let mut z = match init {
        GmInit::Zeros => vec![0.0f32; updates.d()],
        GmInit::Mean => mean::mean(updates),
        GmInit::Median => median::median(updates),
    };
    let alpha = 1.0 / n as f64;
    let nu = f64::from(nu);
    for _ in 0..iterations {
        let terms: Vec<(usize, f64)> = squared_distances_to(updates, &z)
            .into_iter()
            .enumerate()
            .map(|(i, squared)| (i, alpha / squared.sqrt().max(nu)))
            .collect();
        z = weighted_average(updates, &terms);
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixture::{assert_close, rows, BYZFL_3X3};

    #[test]
    fn geometric_median_matches_byzfl_documentation_example() {
        // byzfl.GeometricMedian() (nu = 0.1, T = 3, start at zeros) documents
        // [3.78788764, 4.78788764, 5.78788764].
        let out = geometric_median(&rows(&BYZFL_3X3, 3), 0.1, 3, GmInit::Zeros);
        assert_close(&out, &[3.787_887_6, 4.787_887_6, 5.787_887_6], 1e-5);
    }

    #[test]
    fn geometric_median_resists_one_far_point() {
        let data = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1e6, 1e6];
        let out = geometric_median(&rows(&data, 5), 1e-3, 200, GmInit::Median);
        assert!(out.iter().all(|v| (0.0..=1.5).contains(v)), "{out:?}");
    }
}
