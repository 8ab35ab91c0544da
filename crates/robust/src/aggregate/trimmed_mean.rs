//! Coordinate-wise trimmed mean.
//!
//! `[TrMean_f(x_1..x_n)]_k = (1/(n − 2f)) Σ_{j=f+1}^{n−f} [x_{π_k(j)}]_k` where `π_k` sorts the
//! k-th coordinates ascending: drop the `f` smallest and `f` largest values of each coordinate
//! and average the rest (ByzFL `TrMean`). Requirement: `n >= 2f + 1`. Extra memory: `O(d)` plus
//! `threads × n × 64` keys. Each column is sorted, so the kept values are summed in ascending
//! order: the output is bit-for-bit independent of the order of the updates.

use crate::coordinate::{map_sorted_columns, sum_values};
use crate::Updates;

/// Trimmed mean of one sorted column of keys.
pub(crate) fn trimmed_mean_of(column: &[i32], f: usize) -> f32 {
    let kept = &column[f..column.len() - f];
    (sum_values(kept) / kept.len() as f64) as f32
}

/// Coordinate-wise trimmed mean of all updates, dropping `f` values at each end.
pub(crate) fn trimmed_mean(updates: &Updates<'_>, f: usize) -> Vec<f32> {
    let rows: Vec<usize> = (0..updates.n()).collect();
    map_sorted_columns(updates, &rows, |column| trimmed_mean_of(column, f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixture::{rows, BYZFL_3X3};

    #[test]
    fn trimmed_mean_of_byzfl_example_is_middle_row() {
        assert_eq!(trimmed_mean(&rows(&BYZFL_3X3, 3), 1), vec![4.0, 5.0, 6.0]);
    }

    #[test]
    fn trimmed_mean_drops_extremes_per_coordinate() {
        let data = [-50.0, 1.0, 2.0, 90.0, 3.0, 3.0, 4.0, -7.0, 100.0, 5.0];
        assert_eq!(trimmed_mean(&rows(&data, 5), 1), vec![3.0, 3.0]);
    }

    #[test]
    fn trimmed_mean_with_zero_f_is_the_mean() {
        assert_eq!(trimmed_mean(&rows(&[1.0, 2.0, 6.0], 3), 0), vec![3.0]);
    }
}
