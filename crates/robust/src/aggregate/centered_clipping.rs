//! Centered clipping (Karimireddy, He, Jaggi 2021; ByzFL `CenteredClipping`).
//!
//! `v_0 = previous aggregate` (or `0` when there is none — the rule keeps no hidden state),
//! `v_{l+1} = v_l + (1/n) Σ_i (x_i − v_l) · min(1, τ / ‖x_i − v_l‖)` for `l = 0..L−1`
//! (an update at distance 0 contributes 0). Sums in `f64` in update order; `v_l` is stored in
//! `f32`. Each step is a convex combination of `v_l` and the updates, so the output stays within
//! their range. Requirement: `n >= 1`, `τ > 0`, `1 <= L <= 10000`. Extra memory: `O(d + n)`.

use rayon::prelude::*;

use crate::distance::squared_distances_to;
use crate::Updates;

const SPAN: usize = 4096;

/// Centered clipping with radius `tau`, `iterations` steps, from `previous` or zero.
pub(crate) fn centered_clipping(
    updates: &Updates<'_>,
    tau: f32,
    iterations: usize,
    previous: Option<&[f32]>,
) -> Vec<f32> {
    let n = updates.n();
    let tau = f64::from(tau);
    let mut v = previous.map_or_else(|| vec![0.0f32; updates.d()], <[f32]>::to_vec);
    for _ in 0..iterations {
        let factors: Vec<f64> = squared_distances_to(updates, &v)
            .into_iter()
            .map(|squared| {
                let norm = squared.sqrt();
                if norm > tau {
                    tau / norm
                } else {
                    1.0
                }
            })
            .collect();
        let mut next = vec![0.0f32; v.len()];
        next.par_chunks_mut(SPAN)
            .enumerate()
            .for_each(|(block, out)| {
                let start = block * SPAN;
                let centre = &v[start..start + out.len()];
                let mut sums = vec![0.0f64; out.len()];
                for (i, &c) in factors.iter().enumerate() {
                    let row = &updates.row(i)[start..start + out.len()];
                    for ((sum, &x), &m) in sums.iter_mut().zip(row).zip(centre) {
                        *sum += c * (f64::from(x) - f64::from(m));
                    }
                }
                for ((slot, sum), &m) in out.iter_mut().zip(sums).zip(centre) {
                    *slot = (f64::from(m) + sum / n as f64) as f32;
                }
            });
        v = next;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixture::{assert_close, rows, BYZFL_3X3};

    #[test]
    fn centered_clipping_with_large_tau_from_zero_is_the_mean() {
        let out = centered_clipping(&rows(&BYZFL_3X3, 3), 100.0, 1, None);
        assert_close(&out, &[4.0, 5.0, 6.0], 1e-6);
    }

    #[test]
    fn centered_clipping_bounds_each_update_pull_to_tau() {
        // Centre 0, updates at distance 10 and 0: with τ = 1 the step is (1 + 0) / 2 = 0.5.
        let data = [10.0, 0.0];
        let out = centered_clipping(&rows(&data, 2), 1.0, 1, Some(&[0.0]));
        assert_close(&out, &[0.5], 1e-7);
    }

    #[test]
    fn centered_clipping_starts_from_the_previous_aggregate() {
        let data = [1.0, 1.0];
        let out = centered_clipping(&rows(&data, 2), 0.5, 1, Some(&[3.0]));
        assert_close(&out, &[2.5], 1e-7);
    }
}
