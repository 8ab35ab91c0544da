//! Coordinate-wise median.
//!
//! `[median(x_1..x_n)]_k = median([x_1]_k, ..., [x_n]_k)`; for even `n` the mean of the two
//! middle values (numpy and ByzFL with numpy inputs; torch would return the lower one).
//! Requirement: `n >= 1` (robust to `f < n/2`). Extra memory: `O(d)` output plus
//! `threads × n × 64` keys of sorted blocks. Each column is sorted by a branch-free sorting
//! network run across 64 coordinates at once, so the result does not depend on the input order.

use crate::coordinate::{map_sorted_columns, median_of_sorted};
use crate::Updates;

/// Coordinate-wise median of all updates.
pub(crate) fn median(updates: &Updates<'_>) -> Vec<f32> {
    let rows: Vec<usize> = (0..updates.n()).collect();
    map_sorted_columns(updates, &rows, |column| median_of_sorted(column) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixture::{rows, BYZFL_3X3};

    #[test]
    fn median_of_byzfl_example_is_middle_row() {
        assert_eq!(median(&rows(&BYZFL_3X3, 3)), vec![4.0, 5.0, 6.0]);
    }

    #[test]
    fn median_of_even_count_averages_the_two_middle_values() {
        let data = [10.0, -1.0, 0.0, 3.0, 2.0, 8.0, -100.0, 5.0];
        assert_eq!(median(&rows(&data, 4)), vec![1.0, 4.0]);
    }

    #[test]
    fn median_ignores_one_huge_outlier() {
        let data = [1.0, 2.0, 1e30, 3.0, 2.5];
        assert_eq!(median(&rows(&data, 5)), vec![2.5]);
    }
}
