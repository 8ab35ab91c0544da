//! Mean around median (Xie et al. 2018, ByzFL `Meamed`).
//!
//! `[Meamed_f(x_1..x_n)]_k` = mean of the `n − f` values of coordinate `k` closest to that
//! coordinate's median (`|x − med|`, ties between a smaller and a larger value to the smaller).
//! The kept values are a contiguous run of the sorted column, summed in ascending order, so the
//! output does not depend on the order of the updates. Requirement: `n >= 2f + 1`.
//! Extra memory: `O(d)` plus `threads × n × (r + 16)` keys of sort buffer, `r ≤ 2048` the run
//! length.

use crate::coordinate::{map_sorted_columns, mean_around_median};
use crate::Updates;

/// Mean around median of all updates, keeping `n − f` values per coordinate.
pub(crate) fn meamed(updates: &Updates<'_>, f: usize) -> Vec<f32> {
    let rows: Vec<usize> = (0..updates.n()).collect();
    let keep = updates.n() - f;
    map_sorted_columns(updates, &rows, |column| mean_around_median(column, keep))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixture::{rows, BYZFL_3X3};

    #[test]
    fn meamed_on_byzfl_example_matches_documented_output() {
        assert_eq!(meamed(&rows(&BYZFL_3X3, 3), 1), vec![2.5, 3.5, 4.5]);
    }

    #[test]
    fn meamed_keeps_values_nearest_the_median() {
        let data = [0.0, 1.0, 2.0, 3.0, 100.0];
        // median 2, keep 3 closest: 1, 2, 3.
        assert_eq!(meamed(&rows(&data, 5), 2), vec![2.0]);
    }
}
