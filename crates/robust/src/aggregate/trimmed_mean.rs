//! Coordinate-wise trimmed mean.
//!
//! `[TrMean_f(x_1..x_n)]_k = (1/(n − 2f)) Σ_{j=f+1}^{n−f} [x_{π_k(j)}]_k` where `π_k` sorts the
//! k-th coordinates ascending: drop the `f` smallest and `f` largest values of each coordinate
//! and average the rest (ByzFL `TrMean`). Requirement: `n >= 2f + 1`. Extra memory: `O(d)` plus
//! `threads × n × (r + 16)` keys, `r ≤ 2048` the run length. Each column's middle `n − 2f`
//! values are selected by a pruned sorting network and summed in ascending order: the output is
//! bit-for-bit independent of the order of the updates.

use crate::coordinate::{trimmed_mean_into, trimmed_mean_of_rows};
use crate::Updates;

/// Trimmed mean of one sorted column of keys: the reference the row-wise kernel must match.
#[cfg(test)]
pub(crate) fn trimmed_mean_of(column: &[i32], f: usize) -> f32 {
    let kept = &column[f..column.len() - f];
    (crate::coordinate::sum_values(kept) / kept.len() as f64) as f32
}

/// Coordinate-wise trimmed mean of all updates, dropping `f` values at each end.
pub(crate) fn trimmed_mean(updates: &Updates<'_>, f: usize) -> Vec<f32> {
    let rows: Vec<usize> = (0..updates.n()).collect();
    trimmed_mean_of_rows(updates, &rows, f)
}

/// [`trimmed_mean`] written into `out` (length `d`), checking the input as it is read: `false`,
/// with `out` meaningless, when an input value is not finite. Otherwise every output is finite:
/// it lies between its coordinate's smallest and largest value.
pub(crate) fn trimmed_mean_if_finite(updates: &Updates<'_>, f: usize, out: &mut [f32]) -> bool {
    let rows: Vec<usize> = (0..updates.n()).collect();
    let finite = trimmed_mean_into(updates, &rows, f, out);
    debug_assert!(!finite || out.iter().all(|v| v.is_finite()));
    finite
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
    fn trimmed_mean_matches_the_per_column_reference_bit_for_bit() {
        let (n, d) = (23, 300);
        let data: Vec<f32> = (0..n * d)
            .map(|k| ((k as u32).wrapping_mul(2_654_435_761) >> 8) as f32 / 1e4 - 800.0)
            .collect();
        let updates = rows(&data, n);
        for f in [0, 1, 5, 11] {
            let reference =
                crate::coordinate::map_sorted_columns(&updates, &(0..n).collect::<Vec<_>>(), |c| {
                    trimmed_mean_of(c, f)
                });
            let fast = trimmed_mean(&updates, f);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&reference), "f = {f}");
        }
    }

    #[test]
    fn trimmed_mean_with_zero_f_is_the_mean() {
        assert_eq!(trimmed_mean(&rows(&[1.0, 2.0, 6.0], 3), 0), vec![3.0]);
    }
}
