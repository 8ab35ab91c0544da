//! Coordinate-wise median.
//!
//! `[median(x_1..x_n)]_k = median([x_1]_k, ..., [x_n]_k)`; for even `n` the mean of the two
//! middle values (numpy and ByzFL with numpy inputs; torch would return the lower one).
//! Requirement: `n >= 1` (robust to `f < n/2`). Extra memory: `O(d)` output plus
//! `threads × n × (r + 16)` keys of sort buffer, `r ≤ 2048` the run length. The middle order
//! statistic(s) of each column are selected by a branch-free network (Batcher's sort pruned to
//! the comparators that reach the middle) run across 64 coordinates at once, so the result does
//! not depend on the input order.

use crate::coordinate::{median_into, median_of_rows};
use crate::Updates;

/// Coordinate-wise median of all updates.
pub(crate) fn median(updates: &Updates<'_>) -> Vec<f32> {
    let rows: Vec<usize> = (0..updates.n()).collect();
    median_of_rows(updates, &rows)
}

/// [`median`] written into `out` (length `d`), checking the input as it is read: `false`, with
/// `out` meaningless, when an input value is not finite. Otherwise every output is finite: it
/// lies between its coordinate's smallest and largest value.
pub(crate) fn median_if_finite(updates: &Updates<'_>, out: &mut [f32]) -> bool {
    let rows: Vec<usize> = (0..updates.n()).collect();
    let finite = median_into(updates, &rows, out);
    debug_assert!(!finite || out.iter().all(|v| v.is_finite()));
    finite
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
    fn median_matches_the_per_column_reference_bit_for_bit() {
        for n in [1, 2, 7, 24, 51] {
            let d = 257;
            let data: Vec<f32> = (0..n * d)
                .map(|k| ((k as u32).wrapping_mul(2_654_435_761) >> 8) as f32 / 1e4 - 800.0)
                .collect();
            let updates = rows(&data, n);
            let reference =
                crate::coordinate::map_sorted_columns(&updates, &(0..n).collect::<Vec<_>>(), |c| {
                    crate::coordinate::median_of_sorted(c) as f32
                });
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&median(&updates)), bits(&reference), "n = {n}");
        }
    }

    #[test]
    fn median_ignores_one_huge_outlier() {
        let data = [1.0, 2.0, 1e30, 3.0, 2.5];
        assert_eq!(median(&rows(&data, 5)), vec![2.5]);
    }
}
