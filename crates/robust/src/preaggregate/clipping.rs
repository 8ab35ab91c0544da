//! Static clipping and adaptive robust clipping (ARC, Allouah et al. 2024; ByzFL `Clipping`,
//! `ARC`).
//!
//! Static: `x_i ← min(1, c / ‖x_i‖) x_i`.
//! ARC: with `k = ⌊2 f (n − f) / n⌋` (exact integer arithmetic; ByzFL computes it in floating
//! point) and `π` ordering the norms ascending (ties by index), the threshold is
//! `c = ‖x_{π(n − k)}‖` and the `k` largest updates `x_{π(n−k+1)}..x_{π(n)}` are clipped to norm
//! `c`. Norms in `f64` with the crate's fixed order; scaling in `f64`, rounded to `f32`.
//! Memory: the `n × d` output plus `O(n)`.

use rayon::prelude::*;

use crate::distance::squared_norms;
use crate::updates::{Matrix, Updates};

/// Copies the updates, scaling row `i` by `factors[i]` (1 leaves it untouched).
fn scaled(updates: &Updates<'_>, factors: &[f64]) -> Matrix {
    let d = updates.d();
    let mut data = updates.as_slice().to_vec();
    data.par_chunks_mut(d)
        .zip(factors)
        .filter(|(_, &factor)| factor != 1.0)
        .for_each(|(row, &factor)| {
            for x in row.iter_mut() {
                *x = (f64::from(*x) * factor) as f32;
            }
        });
    Matrix {
        data,
        n: updates.n(),
        d,
    }
}

/// The factor that brings a vector of norm `norm` to norm at most `threshold`.
fn clip_factor(norm: f64, threshold: f64) -> f64 {
    if norm > threshold {
        threshold / norm
    } else {
        1.0
    }
}

/// Static clipping to norm `threshold`.
pub(crate) fn clip_static(updates: &Updates<'_>, threshold: f32) -> Matrix {
    let threshold = f64::from(threshold);
    let factors: Vec<f64> = squared_norms(updates)
        .into_iter()
        .map(|s| clip_factor(s.sqrt(), threshold))
        .collect();
    scaled(updates, &factors)
}

/// Number of updates ARC clips: `⌊2 f (n − f) / n⌋` (`f <= n`).
pub fn arc_clipped_count(n: usize, f: usize) -> usize {
    let product = 2u128 * f as u128 * (n - f) as u128;
    (product / n as u128) as usize
}

/// Adaptive robust clipping for `f` Byzantine updates.
pub(crate) fn clip_adaptive(updates: &Updates<'_>, f: usize) -> Matrix {
    let n = updates.n();
    let norms: Vec<f64> = squared_norms(updates).into_iter().map(f64::sqrt).collect();
    let clipped = arc_clipped_count(n, f);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| norms[a].total_cmp(&norms[b]).then(a.cmp(&b)));
    let cut = n - clipped;
    let threshold = norms[order[cut - 1]];
    let mut factors = vec![1.0f64; n];
    for &i in &order[cut..] {
        factors[i] = clip_factor(norms[i], threshold);
    }
    tracing::debug!(clipped, threshold, "adaptive robust clipping");
    scaled(updates, &factors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixture::BYZFL_3X3;

    fn close(actual: &[f32], expected: &[f32]) {
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-5, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn static_clipping_matches_byzfl_documentation_example() {
        let updates = Updates::new(&BYZFL_3X3, 3, 3).unwrap();
        let out = clip_static(&updates, 2.0);
        close(
            &out.data,
            &[
                0.534_522_5,
                1.069_045,
                1.603_567_4,
                0.911_684_6,
                1.139_605_8,
                1.367_526_9,
                1.005_141_4,
                1.148_733,
                1.292_324_7,
            ],
        );
    }

    #[test]
    fn arc_matches_byzfl_documentation_example() {
        let updates = Updates::new(&BYZFL_3X3, 3, 3).unwrap();
        let out = clip_adaptive(&updates, 1);
        close(
            &out.data,
            &[
                1.0,
                2.0,
                3.0,
                4.0,
                5.0,
                6.0,
                4.410_04,
                5.040_045_8,
                5.670_051_6,
            ],
        );
    }

    #[test]
    fn arc_clips_floor_of_two_f_n_minus_f_over_n() {
        assert_eq!(arc_clipped_count(3, 1), 1);
        assert_eq!(arc_clipped_count(10, 3), 4);
        assert_eq!(arc_clipped_count(10, 0), 0);
        assert_eq!(arc_clipped_count(10, 5), 5);
    }
}
