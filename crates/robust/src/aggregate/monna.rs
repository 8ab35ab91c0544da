//! MoNNA (Farhadkhani et al. 2023; ByzFL `MoNNA`).
//!
//! `MoNNA_{f,r}(x_1..x_n) = (1/(n − f)) Σ_{i ∈ N_r} x_i`, `N_r` the `n − f` nearest neighbours of
//! the reference update `x_r` (itself included, distance 0; ties by index), averaged in index
//! order. The reference is the aggregating node's own update, known to be honest.
//! Requirement: `n >= 2f + 1`, `r < n`. Extra memory: `O(d + n)`.

use crate::coordinate::mean_of_rows;
use crate::distance::{nearest, squared_distances_to};
use crate::Updates;

/// MoNNA around update `reference`.
pub(crate) fn monna(updates: &Updates<'_>, f: usize, reference: usize) -> Vec<f32> {
    let distances = squared_distances_to(updates, updates.row(reference));
    let neighbours = nearest(&distances, updates.n() - f);
    mean_of_rows(updates, &neighbours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixture::{rows, BYZFL_3X3};

    #[test]
    fn monna_matches_byzfl_documentation_example() {
        // byzfl.MoNNA(1, 1) documents [2.5, 3.5, 4.5].
        assert_eq!(monna(&rows(&BYZFL_3X3, 3), 1, 1), vec![2.5, 3.5, 4.5]);
    }

    #[test]
    fn monna_around_the_last_update_keeps_its_neighbourhood() {
        assert_eq!(monna(&rows(&BYZFL_3X3, 3), 1, 2), vec![5.5, 6.5, 7.5]);
    }
}
