//! Min-max and min-sum (Shejwalkar & Houmansadr, NDSS 2021): move the honest mean as far as
//! possible along a perturbation while staying, by distance, inside the crowd of honest updates.

use serde::{Deserialize, Serialize};

use super::{moments, Honest};

/// Starting `γ` of the halving search (the authors' code starts at 50).
const GAMMA_INIT: f64 = 50.0;
/// The search stops when successive `γ` differ by at most this.
const GAMMA_TOLERANCE: f64 = 1e-5;

/// The perturbation `p` subtracted from the honest mean, `μ − γ p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Perturbation {
    /// `p = σ`, the coordinate-wise sample standard deviation ("inverse std").
    Std,
    /// `p = μ / ‖μ‖` ("inverse unit vector"); zero when `μ = 0`.
    UnitMean,
    /// `p = sign(μ)` ("inverse sign").
    Sign,
}

/// Which distance budget the malicious vector must respect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bound {
    /// `max_i ‖m − x_i‖ ≤ max_{i,j} ‖x_i − x_j‖` (min-max).
    Max,
    /// `Σ_i ‖m − x_i‖² ≤ max_i Σ_j ‖x_i − x_j‖²` (min-sum).
    Sum,
}

/// The malicious vector `μ − γ p` with the paper's halving search for `γ`.
pub(crate) fn vector(honest: &Honest<'_>, perturbation: Perturbation, bound: Bound) -> Vec<f32> {
    let (mean, std) = moments::mean_and_std(honest);
    let direction: Vec<f64> = match perturbation {
        Perturbation::Std => std,
        Perturbation::UnitMean => {
            let norm = mean.iter().map(|m| m * m).sum::<f64>().sqrt();
            if norm > 0.0 {
                mean.iter().map(|m| m / norm).collect()
            } else {
                vec![0.0; mean.len()]
            }
        }
        Perturbation::Sign => mean
            .iter()
            .map(|&m| {
                if m > 0.0 {
                    1.0
                } else if m < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            })
            .collect(),
    };
    // Squared distances between honest updates, row by row.
    let rows: Vec<Vec<f64>> = (0..honest.rows)
        .map(|i| honest.row(i).iter().map(|&x| f64::from(x)).collect())
        .collect();
    let pairwise: Vec<Vec<f64>> = (0..honest.rows)
        .map(|i| {
            rows.iter()
                .map(|other| moments::squared_distance(honest.row(i), other))
                .collect()
        })
        .collect();
    let budget = match bound {
        Bound::Max => pairwise
            .iter()
            .flat_map(|row| row.iter().copied())
            .fold(0.0f64, f64::max),
        Bound::Sum => pairwise
            .iter()
            .map(|row| row.iter().sum::<f64>())
            .fold(0.0f64, f64::max),
    };
    let candidate = |gamma: f64| -> Vec<f64> {
        mean.iter()
            .zip(&direction)
            .map(|(m, p)| m - gamma * p)
            .collect()
    };
    let within = |gamma: f64| {
        let malicious = candidate(gamma);
        let distances =
            (0..honest.rows).map(|i| moments::squared_distance(honest.row(i), &malicious));
        let cost = match bound {
            Bound::Max => distances.fold(0.0f64, f64::max),
            Bound::Sum => distances.sum(),
        };
        cost <= budget
    };
    // Algorithm 1 of the paper: grow γ by half the last step on success, shrink it on failure.
    let mut gamma = GAMMA_INIT;
    let mut step = GAMMA_INIT;
    let mut success = 0.0f64;
    while (success - gamma).abs() > GAMMA_TOLERANCE {
        if within(gamma) {
            success = gamma;
            gamma += step / 2.0;
        } else {
            gamma -= step / 2.0;
        }
        step /= 2.0;
    }
    candidate(success).iter().map(|v| *v as f32).collect()
}
