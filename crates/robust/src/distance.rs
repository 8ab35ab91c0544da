//! Squared Euclidean distances and norms with a fixed summation order.
//!
//! A distance between two rows is summed in blocks of [`BLOCK`] coordinates: inside a block into
//! 32 `f32` lanes (lane `l` takes coordinates `l, l + 32, ...`), the lanes added in order into an
//! `f64`, and the block sums added in block order into the `f64` result. The order depends only on
//! `d`, so every caller (Krum, NNM, MoNNA, clipping) gets the same bits for the same pair, on any
//! thread count. A block whose `f32` sum overflows (inputs beyond ~1.8e19) is redone in `f64`,
//! so distances of finite inputs are always finite. Differences are formed directly (`x - y`, not `‖x‖² + ‖y‖² − 2⟨x, y⟩`), which
//! costs the same three flops per coordinate and does not cancel catastrophically.

use rayon::prelude::*;

use crate::{RobustError, Updates, MAX_PAIRWISE_UPDATES};

/// Coordinates per block of the fixed-order sums.
pub const BLOCK: usize = 1024;
const LANES: usize = 32;

/// Largest number of rows per side of a tile of the pairwise computation.
const MAX_TILE: usize = 32;

#[inline]
fn lanes_to_f64(lanes: [f32; LANES]) -> f64 {
    lanes
        .iter()
        .fold(0.0f64, |acc, &lane| acc + f64::from(lane))
}

/// `Σ (a_k − b_k)²` over one block (at most [`BLOCK`] coordinates), in the fixed lane order.
///
/// Uses AVX2 when the CPU has it: the same lane-wise IEEE operations (Rust never fuses a
/// multiply and an add), so the same bits as the portable path.
#[inline]
fn block_squared_distance(a: &[f32], b: &[f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { block_squared_distance_avx2(a, b) };
        }
    }
    block_squared_distance_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn block_squared_distance_avx2(a: &[f32], b: &[f32]) -> f64 {
    block_squared_distance_portable(a, b)
}

#[inline(always)]
fn block_squared_distance_portable(a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut lanes = [0.0f32; LANES];
    let mut a_chunks = a.chunks_exact(LANES);
    let mut b_chunks = b.chunks_exact(LANES);
    for (x, y) in (&mut a_chunks).zip(&mut b_chunks) {
        for l in 0..LANES {
            let diff = x[l] - y[l];
            lanes[l] += diff * diff;
        }
    }
    for (l, (x, y)) in a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .enumerate()
    {
        let diff = x - y;
        lanes[l] += diff * diff;
    }
    let sum = lanes_to_f64(lanes);
    if sum.is_finite() {
        sum
    } else {
        // Finite inputs beyond ~1.8e19 overflow f32 squares (never to NaN: only non-negative
        // terms are added). Redo this block in f64, where no f32 input can overflow.
        a.iter().zip(b).fold(0.0f64, |acc, (&x, &y)| {
            let diff = f64::from(x) - f64::from(y);
            acc + diff * diff
        })
    }
}

/// `Σ a_k²` over one block, in the fixed lane order.
#[inline]
fn block_squared_norm(a: &[f32]) -> f64 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = a.chunks_exact(LANES);
    for x in &mut chunks {
        for l in 0..LANES {
            lanes[l] += x[l] * x[l];
        }
    }
    for (l, x) in chunks.remainder().iter().enumerate() {
        lanes[l] += x * x;
    }
    let sum = lanes_to_f64(lanes);
    if sum.is_finite() {
        sum
    } else {
        a.iter()
            .fold(0.0f64, |acc, &x| acc + f64::from(x) * f64::from(x))
    }
}

/// Squared Euclidean distance `‖a − b‖²` in the crate's fixed summation order.
pub fn squared_distance(a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    a.chunks(BLOCK)
        .zip(b.chunks(BLOCK))
        .fold(0.0f64, |acc, (x, y)| acc + block_squared_distance(x, y))
}

/// Squared Euclidean norm `‖a‖²` in the crate's fixed summation order.
pub fn squared_norm(a: &[f32]) -> f64 {
    a.chunks(BLOCK)
        .fold(0.0f64, |acc, x| acc + block_squared_norm(x))
}

/// Squared norm of every update, in update order.
pub fn squared_norms(updates: &Updates<'_>) -> Vec<f64> {
    (0..updates.n())
        .into_par_iter()
        .map(|i| squared_norm(updates.row(i)))
        .collect()
}

/// Squared distance from every update to `point` (of dimension `d`), in update order.
pub fn squared_distances_to(updates: &Updates<'_>, point: &[f32]) -> Vec<f64> {
    (0..updates.n())
        .into_par_iter()
        .map(|i| squared_distance(updates.row(i), point))
        .collect()
}

/// Indices of the `count` smallest entries of `distances` (ties by index), returned ascending.
pub fn nearest(distances: &[f64], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..distances.len()).collect();
    order.sort_by(|&a, &b| distances[a].total_cmp(&distances[b]).then(a.cmp(&b)));
    order.truncate(count);
    order.sort_unstable();
    order
}

/// The symmetric `n × n` matrix of squared distances, row-major, zero diagonal.
///
/// Work is split into tiles of row pairs; each pair is summed entirely by one task in the fixed
/// order, so the tile size (chosen from the thread count for load balance) never changes a bit.
/// Inside a tile the rows are walked block by block so that the tile's blocks stay in cache.
/// Memory: `n²` `f64` for the result and one tile's sums per task; refused with
/// [`RobustError::TooManyUpdates`] beyond [`MAX_PAIRWISE_UPDATES`] updates (2 GiB of result).
pub fn pairwise_squared_distances(updates: &Updates<'_>) -> Result<Vec<f64>, RobustError> {
    let n = updates.n();
    let d = updates.d();
    let too_many = RobustError::TooManyUpdates {
        n,
        limit: MAX_PAIRWISE_UPDATES,
        rule: "pairwise distances",
    };
    if n > MAX_PAIRWISE_UPDATES {
        return Err(too_many);
    }
    let cells = n.checked_mul(n).ok_or(too_many)?;
    let threads = rayon::current_num_threads().max(1);
    let tile = (n / (2 * threads)).clamp(1, MAX_TILE);
    let groups = n.div_ceil(tile);
    let mut matrix = vec![0.0f64; cells];
    // Each task owns the rows of one tile group and fills their upper triangle, one tile at a
    // time; the lower triangle is mirrored afterwards.
    matrix
        .par_chunks_mut(tile * n)
        .enumerate()
        .for_each(|(a, band)| {
            let rows_a = a * tile..((a + 1) * tile).min(n);
            let mut sums: Vec<f64> = Vec::with_capacity(tile * tile);
            for b in a..groups {
                let rows_b = b * tile..((b + 1) * tile).min(n);
                let pairs: Vec<(usize, usize)> = rows_a
                    .clone()
                    .flat_map(|i| rows_b.clone().filter(move |&j| j > i).map(move |j| (i, j)))
                    .collect();
                sums.clear();
                sums.resize(pairs.len(), 0.0);
                let mut start = 0;
                while start < d {
                    let end = (start + BLOCK).min(d);
                    for (sum, &(i, j)) in sums.iter_mut().zip(&pairs) {
                        *sum += block_squared_distance(
                            &updates.row(i)[start..end],
                            &updates.row(j)[start..end],
                        );
                    }
                    start = end;
                }
                for (&(i, j), &s) in pairs.iter().zip(&sums) {
                    band[(i - rows_a.start) * n + j] = s;
                }
            }
        });
    for i in 1..n {
        for j in 0..i {
            matrix[i * n + j] = matrix[j * n + i];
        }
    }
    Ok(matrix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_matches_pair_function_bit_for_bit() {
        let n = 7;
        let d = 2500;
        let data: Vec<f32> = (0..n * d)
            .map(|k| ((k * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        let updates = Updates::new(&data, n, d).unwrap();
        let matrix = pairwise_squared_distances(&updates).unwrap();
        for i in 0..n {
            assert_eq!(matrix[i * n + i], 0.0);
            for j in 0..n {
                let direct = squared_distance(updates.row(i), updates.row(j));
                assert_eq!(
                    matrix[i * n + j].to_bits(),
                    direct.to_bits(),
                    "pair ({i}, {j})"
                );
            }
        }
    }

    #[test]
    fn pairwise_refuses_more_updates_than_its_bound_before_allocating() {
        let n = MAX_PAIRWISE_UPDATES + 1;
        let data = vec![0.0f32; n];
        let updates = Updates::new(&data, n, 1).unwrap();
        assert_eq!(
            pairwise_squared_distances(&updates),
            Err(RobustError::TooManyUpdates {
                n,
                limit: MAX_PAIRWISE_UPDATES,
                rule: "pairwise distances"
            })
        );
    }

    #[test]
    fn pairwise_mirrors_both_triangles_across_tile_bands() {
        let n = 97;
        let data: Vec<f32> = (0..n * 3).map(|k| (k as f32 * 0.7).sin()).collect();
        let updates = Updates::new(&data, n, 3).unwrap();
        let matrix = pairwise_squared_distances(&updates).unwrap();
        for i in 0..n {
            for j in 0..n {
                let direct = squared_distance(updates.row(i), updates.row(j));
                assert_eq!(matrix[i * n + j].to_bits(), direct.to_bits(), "({i}, {j})");
            }
        }
    }

    #[test]
    fn huge_finite_inputs_give_finite_distances() {
        let big = [3.0e38f32, -3.0e38];
        let far = [-3.0e38f32, 3.0e38];
        assert_eq!(squared_norm(&big), 2.0 * f64::from(3.0e38f32).powi(2));
        let distance = squared_distance(&big, &far);
        assert!(distance.is_finite() && distance > 1e77);
    }

    #[test]
    fn portable_and_dispatched_kernels_agree_bit_for_bit() {
        let a: Vec<f32> = (0..1021).map(|k| (k as f32 * 0.37).sin() * 1e3).collect();
        let b: Vec<f32> = (0..1021).map(|k| (k as f32 * 0.11).cos()).collect();
        assert_eq!(
            block_squared_distance(&a, &b).to_bits(),
            block_squared_distance_portable(&a, &b).to_bits()
        );
    }

    #[test]
    fn squared_distance_of_small_vectors_is_exact() {
        assert_eq!(squared_distance(&[1.0, 2.0, 3.0], &[4.0, 6.0, 3.0]), 25.0);
        assert_eq!(squared_norm(&[3.0, 4.0]), 25.0);
    }
}
