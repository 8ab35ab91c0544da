//! Minimum-diameter averaging (El Mhamdi et al. 2020; ByzFL `MDA`).
//!
//! `MDA_f(x_1..x_n) = (1/(n − f)) Σ_{i ∈ S*} x_i`,
//! `S* ∈ argmin_{|S| = n − f} max_{i, j ∈ S} ‖x_i − x_j‖`. Among subsets of equal diameter the
//! first in lexicographic order wins (as ByzFL's `itertools.combinations` scan with a strict
//! `<`). The search is exact: a depth-first walk in lexicographic order that prunes a branch as
//! soon as its diameter reaches the best found, so it visits at most `C(n, f)` subsets; it is
//! refused beyond [`MAX_SUBSETS`]. Requirement: `n >= 2f + 1`. Extra memory: the `n × n`
//! distance matrix plus `O(d + n)`.

use crate::coordinate::mean_of_rows;
use crate::distance::pairwise_squared_distances;
use crate::{RobustError, Updates};

/// Largest `C(n, f)` the exact search accepts.
pub const MAX_SUBSETS: u64 = 5_000_000;

/// `C(n, k)`, saturating at `u64::MAX`.
fn binomial(n: usize, k: usize) -> u64 {
    let k = k.min(n - k);
    let mut value: u128 = 1;
    for i in 0..k {
        value = value * (n - i) as u128 / (i + 1) as u128;
        if value > u128::from(u64::MAX) {
            return u64::MAX;
        }
    }
    value as u64
}

struct Search<'a> {
    distances: &'a [f64],
    n: usize,
    size: usize,
    chosen: Vec<usize>,
    best: Option<(f64, Vec<usize>)>,
}

impl Search<'_> {
    fn walk(&mut self, next: usize, diameter: f64) {
        if self.chosen.len() == self.size {
            self.best = Some((diameter, self.chosen.clone()));
            return;
        }
        let missing = self.size - self.chosen.len();
        for candidate in next..=(self.n - missing) {
            let widened = self
                .chosen
                .iter()
                .map(|&c| self.distances[c * self.n + candidate])
                .fold(diameter, f64::max);
            if let Some((best, _)) = &self.best {
                if widened >= *best {
                    continue;
                }
            }
            self.chosen.push(candidate);
            self.walk(candidate + 1, widened);
            self.chosen.pop();
        }
    }
}

/// Indices (ascending) of the first subset of `n − f` updates with the smallest diameter.
pub(crate) fn minimum_diameter_subset(distances: &[f64], n: usize, f: usize) -> Vec<usize> {
    let mut search = Search {
        distances,
        n,
        size: n - f,
        chosen: Vec::with_capacity(n - f),
        best: None,
    };
    search.walk(0, 0.0);
    search.best.map(|(_, subset)| subset).unwrap_or_default()
}

/// Minimum-diameter averaging tolerating `f` Byzantine updates.
pub(crate) fn mda(updates: &Updates<'_>, f: usize) -> Result<Vec<f32>, RobustError> {
    let n = updates.n();
    if binomial(n, f) > MAX_SUBSETS {
        return Err(RobustError::TooManySubsets {
            n,
            f,
            limit: MAX_SUBSETS,
        });
    }
    let distances = pairwise_squared_distances(updates)?;
    let subset = minimum_diameter_subset(&distances, n, f);
    tracing::debug!(?subset, "mda");
    Ok(mean_of_rows(updates, &subset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixture::{rows, BYZFL_3X3};

    #[test]
    fn mda_matches_byzfl_documentation_example() {
        assert_eq!(mda(&rows(&BYZFL_3X3, 3), 1).unwrap(), vec![2.5, 3.5, 4.5]);
    }

    #[test]
    fn mda_excludes_the_far_updates() {
        let data = [0.0, 10.0, 0.5, 1.0, -9.0];
        assert_eq!(mda(&rows(&data, 5), 2).unwrap(), vec![0.5]);
    }

    #[test]
    fn mda_refuses_searches_over_the_bound() {
        let data = vec![0.0f32; 60];
        let err = mda(&rows(&data, 60), 29).unwrap_err();
        assert!(matches!(
            err,
            RobustError::TooManySubsets { n: 60, f: 29, .. }
        ));
    }

    #[test]
    fn binomial_counts_subsets() {
        assert_eq!(binomial(5, 2), 10);
        assert_eq!(binomial(60, 29), 114_449_595_062_769_120);
    }
}
