//! Quantity-skew partitions: unequal client sizes, labels IID.

use super::super::sampling::{dirichlet, rng, shuffle, STREAM_QUANTITY};
use super::{cut_runs, sizes_from_proportions};

/// Client proportions from Dirichlet(`alpha`), drawn before the shuffle of all indices.
pub(super) fn partition_dirichlet(
    samples: usize,
    clients: usize,
    alpha: f64,
    min_samples: usize,
    seed: u64,
) -> Vec<Vec<usize>> {
    let mut rng = rng(seed, STREAM_QUANTITY);
    let proportions = dirichlet(&mut rng, alpha, clients);
    deal(samples, &proportions, min_samples, &mut rng)
}

/// Client proportions from power-law weights `(rank + 1)^-exponent`, ranks dealt by a shuffle
/// drawn before the shuffle of all indices.
pub(super) fn partition_power_law(
    samples: usize,
    clients: usize,
    exponent: f64,
    min_samples: usize,
    seed: u64,
) -> Vec<Vec<usize>> {
    let mut rng = rng(seed, STREAM_QUANTITY);
    let mut ranks: Vec<usize> = (0..clients).collect();
    shuffle(&mut rng, &mut ranks);
    let weights: Vec<f64> = ranks
        .iter()
        .map(|&r| libm::pow((r + 1) as f64, -exponent))
        .collect();
    let total: f64 = weights.iter().sum();
    let proportions: Vec<f64> = weights.iter().map(|w| w / total).collect();
    deal(samples, &proportions, min_samples, &mut rng)
}

/// Gives each client `min_samples` plus its proportional share of the rest, as consecutive runs
/// of one shuffle of all indices.
fn deal(
    samples: usize,
    proportions: &[f64],
    min_samples: usize,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> Vec<Vec<usize>> {
    let rest = samples - proportions.len() * min_samples;
    let sizes: Vec<usize> = sizes_from_proportions(rest, proportions)
        .into_iter()
        .map(|s| s + min_samples)
        .collect();
    let mut order: Vec<usize> = (0..samples).collect();
    shuffle(rng, &mut order);
    cut_runs(&order, &sizes)
}
