//! Bulyan (El Mhamdi, Guerraoui, Rouault 2018) over textbook Krum.
//!
//! 1. Selection: `θ = n − 2f` updates, picked one at a time: with `R` the updates not yet picked,
//!    pick `argmin_{i ∈ R} Σ_{j ∈ N_i} ‖x_i − x_j‖²`, `N_i` the `|R| − f − 2` nearest others of
//!    `x_i` in `R` (textbook Krum on `R`; lowest index on ties). When `|R| − f − 2 < 1`, in the
//!    last picks for small `f`, the count is held at 1 (as Flower does): with 0 neighbours every
//!    score would be 0 and the pick would depend only on input order.
//! 2. Aggregation: `β = θ − 2f = n − 4f`; per coordinate, the mean of the `β` values of the
//!    selected updates closest to their median (ties to the smaller value).
//!
//! ByzFL has no Bulyan; this follows the paper. Requirement: `n >= 4f + 3`. Extra memory: the
//! `n × n` distance matrix, computed once, plus `O(d)` and `threads × θ × (r + 16)` keys of sort
//! buffer.

use crate::aggregate::krum::{ranking, scores};
use crate::coordinate::{map_sorted_columns, mean_around_median};
use crate::distance::pairwise_squared_distances;
use crate::{RobustError, Updates};

/// Indices picked by iterated Krum, ascending.
pub(crate) fn select(distances: &[f64], n: usize, f: usize, count: usize) -> Vec<usize> {
    let mut remaining: Vec<usize> = (0..n).collect();
    let mut selected = Vec::with_capacity(count);
    while selected.len() < count && !remaining.is_empty() {
        let neighbours = remaining.len().saturating_sub(f + 2).max(1);
        let scored = scores(distances, n, &remaining, neighbours);
        let best = ranking(&scored)[0];
        selected.push(remaining.remove(best));
    }
    selected.sort_unstable();
    selected
}

/// Bulyan of all updates tolerating `f` Byzantine ones.
pub(crate) fn bulyan(updates: &Updates<'_>, f: usize) -> Result<Vec<f32>, RobustError> {
    let n = updates.n();
    let theta = n - 2 * f;
    let beta = theta - 2 * f;
    let distances = pairwise_squared_distances(updates)?;
    let selected = select(&distances, n, f, theta);
    tracing::debug!(?selected, beta, "bulyan selection");
    Ok(map_sorted_columns(updates, &selected, |column| {
        mean_around_median(column, beta)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixture::rows;

    #[test]
    fn bulyan_selection_skips_the_outlier_and_trims_around_median() {
        // n = 7, f = 1: θ = 5, β = 3. One Byzantine update at 1000.
        let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1000.0];
        let distances = pairwise_squared_distances(&rows(&data, 7)).unwrap();
        let selected = select(&distances, 7, 1, 5);
        assert!(!selected.contains(&6), "selected {selected:?}");
        let out = bulyan(&rows(&data, 7), 1).unwrap();
        assert!(out[0] >= 2.0 && out[0] <= 5.0, "output {out:?}");
    }

    #[test]
    fn bulyan_with_zero_f_is_the_mean_around_median_of_all() {
        let data = [1.0, 2.0, 6.0];
        assert_eq!(bulyan(&rows(&data, 3), 0).unwrap(), vec![3.0]);
    }
}
