//! Mimic (Karimireddy, He & Jaggi, ICLR 2022): every Byzantine trainer copies one honest update,
//! over-weighting it so that heterogeneous (rare) data is drowned out.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use super::normal::standard_normal;
use super::{moments, AttackError, Honest};

/// Power-iteration steps of the heuristic.
const POWER_ITERATIONS: usize = 100;

/// Which honest update the mimics copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MimicTarget {
    /// The honest update with this index (ByzFL's `Mimic(epsilon)`).
    Index(usize),
    /// An honest update drawn uniformly with the setting's seed.
    Seeded,
    /// The paper's heuristic: the honest update furthest from the mean along the direction of
    /// largest variance, `argmax_i |⟨v, x_i − μ⟩|` with `v` the top eigenvector of
    /// `Σ_i (x_i − μ)(x_i − μ)ᵀ` (power iteration from a seeded start).
    Heuristic,
}

/// The honest update to copy.
pub(crate) fn choose<'a>(
    honest: &Honest<'a>,
    target: MimicTarget,
    seed: u64,
) -> Result<&'a [f32], AttackError> {
    let index = match target {
        MimicTarget::Index(index) => {
            if index >= honest.rows {
                return Err(AttackError::InvalidParameter {
                    attack: "mimic",
                    reason: format!("index {index} must be < {} honest updates", honest.rows),
                });
            }
            index
        }
        MimicTarget::Seeded => {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            // Multiply-shift maps 64 uniform bits onto 0..rows.
            ((u128::from(rng.next_u64()) * honest.rows as u128) >> 64) as usize
        }
        MimicTarget::Heuristic => heuristic(honest, seed),
    };
    Ok(honest.row(index))
}

fn heuristic(honest: &Honest<'_>, seed: u64) -> usize {
    let mean = moments::mean(honest);
    let centered: Vec<Vec<f64>> = (0..honest.rows)
        .map(|i| {
            honest
                .row(i)
                .iter()
                .zip(&mean)
                .map(|(&x, m)| f64::from(x) - m)
                .collect()
        })
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut direction: Vec<f64> = (0..honest.d).map(|_| standard_normal(&mut rng)).collect();
    for _ in 0..POWER_ITERATIONS {
        let mut next = vec![0.0f64; honest.d];
        for row in &centered {
            let projection: f64 = row.iter().zip(&direction).map(|(a, b)| a * b).sum();
            for (n, a) in next.iter_mut().zip(row) {
                *n += projection * a;
            }
        }
        let norm = next.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            // No spread at all: every honest update is the mean, any of them will do.
            return 0;
        }
        direction = next.iter().map(|v| v / norm).collect();
    }
    let mut best = (0, f64::NEG_INFINITY);
    for (i, row) in centered.iter().enumerate() {
        let score = row
            .iter()
            .zip(&direction)
            .map(|(a, b)| a * b)
            .sum::<f64>()
            .abs();
        if score > best.1 {
            best = (i, score);
        }
    }
    best.0
}
