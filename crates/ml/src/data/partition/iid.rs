//! The IID partition: a shuffle cut into near-equal runs.

use super::super::sampling::{rng, shuffle, STREAM_IID};
use super::cut_runs;

/// Shuffles `0..samples` and cuts it into `clients` runs, the first `samples mod clients` one
/// longer than the rest. `clients` is in `1..=samples` (checked by the caller).
pub(super) fn partition(samples: usize, clients: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..samples).collect();
    shuffle(&mut rng(seed, STREAM_IID), &mut order);
    let (base, extra) = (samples / clients, samples % clients);
    let sizes: Vec<usize> = (0..clients)
        .map(|i| base + usize::from(i < extra))
        .collect();
    cut_runs(&order, &sizes)
}
