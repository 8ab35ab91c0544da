//! Squared Euclidean distances and norms with a fixed summation order.
//!
//! A distance between two rows is summed in blocks of [`BLOCK`] coordinates: inside a block into
//! 32 `f32` lanes (lane `l` takes coordinates `l, l + 32, ...`), the lanes added in order into an
//! `f64`; the block sums of each chunk of [`CHUNK`] coordinates added in block order into an `f64`
//! chunk sum, and the chunk sums added in chunk order into the `f64` result. The order depends only
//! on `d`, so every caller (Krum, NNM, MoNNA, clipping) gets the same bits for the same pair, on
//! any thread count. A block whose `f32` sum overflows (inputs beyond ~1.8e19) is redone in `f64`,
//! so distances of finite inputs are always finite. Differences are formed directly (`x - y`, not
//! `‖x‖² + ‖y‖² − 2⟨x, y⟩`), which costs the same three flops per coordinate and does not cancel
//! catastrophically.

use std::ops::Range;

use rayon::prelude::*;

use crate::simd::dispatch;
use crate::{RobustError, Updates, MAX_PAIRWISE_UPDATES};

/// Coordinates per block of the fixed-order sums.
pub const BLOCK: usize = 1024;
/// Coordinates per chunk of the fixed-order sums (64 blocks): pairwise distances are computed a
/// chunk at a time, so that chunks run in parallel. For `d ≤ CHUNK` the result is the one chunk's
/// sum, the same bits as summing the blocks directly.
pub const CHUNK: usize = 64 * BLOCK;
const LANES: usize = 32;

/// Largest number of rows per side of a tile of the pairwise computation: a block of both
/// tiles' rows is at most 512 KiB, well inside L2, and up to 64 updates every row is read from
/// memory once (tiles of 32 read each row of n = 50 twice: 1.1x slower).
const MAX_TILE: usize = 64;

/// Rows of `b` whose block (8 × 4 KiB) stays in L1 while every pair of `a` rows passes it, so
/// that only the `a` rows come from L2 (1.05–1.1x faster than whole tiles of `b` at a time).
const BAND: usize = 8;

/// Bytes of partial results held at once by [`pairwise_squared_distances`]: each task of a wave
/// holds its pairs' indices and chunk sums, [`BYTES_PER_PAIR`] per pair.
const WAVE_BYTES: usize = 64 << 20;

/// Bytes a task holds per pair it sums: the pair's indices and its chunk sum.
const BYTES_PER_PAIR: usize = 3 * 8;

#[inline]
fn lanes_to_f64(lanes: [f32; LANES]) -> f64 {
    lanes
        .iter()
        .fold(0.0f64, |acc, &lane| acc + f64::from(lane))
}

dispatch! {
/// `Σ (a_k − b_k)²` over one block (at most [`BLOCK`] coordinates), in the fixed lane order.
///
/// Uses AVX2 when the CPU has it: the same lane-wise IEEE operations (Rust never fuses a
/// multiply and an add), so the same bits as the portable path.
fn block_squared_distance(a: &[f32], b: &[f32]) -> f64 {
    avx2: block_squared_distance_portable(a, b),
    portable: block_squared_distance_portable(a, b),
}
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
        block_squared_distance_f64(a, b)
    }
}

dispatch! {
/// The block distances `‖a_i − b_j‖²` for two rows `a` against two rows `b`, as `[i][j]`: each
/// bit-identical to [`block_squared_distance`] of its pair, for half the loads (every value read
/// serves two pairs).
fn block_squared_distances(a: [&[f32]; 2], b: [&[f32]; 2]) -> [[f64; 2]; 2] {
    avx512: block_squared_distances_portable(a, b),
    avx2: block_squared_distances_portable(a, b),
    portable: block_squared_distances_portable(a, b),
}
}

// Index loops over constant bounds keep every accumulator in a register once unrolled.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn block_squared_distances_portable(a: [&[f32]; 2], b: [&[f32]; 2]) -> [[f64; 2]; 2] {
    let len = a[0].len();
    let a = a.map(|row| &row[..len]);
    let b = b.map(|row| &row[..len]);
    let mut lanes = [[[0.0f32; LANES]; 2]; 2];
    let full = len / LANES * LANES;
    let mut start = 0;
    while start < full {
        let x = a.map(|row| &row[start..start + LANES]);
        let y = b.map(|row| &row[start..start + LANES]);
        for l in 0..LANES {
            for i in 0..2 {
                for j in 0..2 {
                    let diff = x[i][l] - y[j][l];
                    lanes[i][j][l] += diff * diff;
                }
            }
        }
        start += LANES;
    }
    for (l, k) in (full..len).enumerate() {
        for i in 0..2 {
            for j in 0..2 {
                let diff = a[i][k] - b[j][k];
                lanes[i][j][l] += diff * diff;
            }
        }
    }
    // Each pair's lanes are added in lane order, as in `lanes_to_f64`; the chains of the pairs
    // are interleaved so that their additions overlap.
    let mut sums = [[0.0f64; 2]; 2];
    for l in 0..LANES {
        for i in 0..2 {
            for j in 0..2 {
                sums[i][j] += f64::from(lanes[i][j][l]);
            }
        }
    }
    for i in 0..2 {
        for j in 0..2 {
            if !sums[i][j].is_finite() {
                sums[i][j] = block_squared_distance_f64(a[i], b[j]);
            }
        }
    }
    sums
}

/// `Σ (a_k − b_k)²` over one block in `f64`: the fallback for blocks whose `f32` sum overflows.
fn block_squared_distance_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).fold(0.0f64, |acc, (&x, &y)| {
        let diff = f64::from(x) - f64::from(y);
        acc + diff * diff
    })
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
    a.chunks(CHUNK)
        .zip(b.chunks(CHUNK))
        .fold(0.0f64, |acc, (x, y)| {
            acc + x
                .chunks(BLOCK)
                .zip(y.chunks(BLOCK))
                .fold(0.0f64, |chunk, (x, y)| chunk + block_squared_distance(x, y))
        })
}

/// Squared Euclidean norm `‖a‖²` in the crate's fixed summation order.
pub fn squared_norm(a: &[f32]) -> f64 {
    a.chunks(CHUNK).fold(0.0f64, |acc, x| {
        acc + x
            .chunks(BLOCK)
            .fold(0.0f64, |chunk, x| chunk + block_squared_norm(x))
    })
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
/// The rows are cut into tiles of an even number of rows, at most 64 (fewer rows when that is
/// needed for at least four tasks per thread: `tile_rows`); the work is one task per chunk of
/// [`CHUNK`] coordinates and pair of tiles, which sums the chunk for every pair of rows across the
/// two tiles, block by block (the blocks of the tiles' rows stay in L2; a band of 8 rows of the
/// second tile stays in L1 while the first tile's rows pass it), two rows by two at a time (each
/// value loaded serves two pairs). Tasks run in parallel in chunk-major waves, and each pair's
/// chunk sums are added in chunk order, so the result is bit-identical to [`squared_distance`] of
/// the pair, whatever the tiles and the thread count.
///
/// Memory: `n²` `f64` for the result and at most 64 MiB of partial results (or one task's, at
/// most 64 × 64 pairs); refused with [`RobustError::TooManyUpdates`] beyond
/// [`MAX_PAIRWISE_UPDATES`] updates (2 GiB of result).
pub fn pairwise_squared_distances(updates: &Updates<'_>) -> Result<Vec<f64>, RobustError> {
    pairwise_in_waves(updates, WAVE_BYTES)
}

/// [`pairwise_squared_distances`] with waves of at most `wave_bytes` of partial results.
fn pairwise_in_waves(updates: &Updates<'_>, wave_bytes: usize) -> Result<Vec<f64>, RobustError> {
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
    let mut matrix = vec![0.0f64; cells];
    if n < 2 {
        return Ok(matrix);
    }
    let chunks = d.div_ceil(CHUNK).max(1);
    let threads = rayon::current_num_threads().max(1);
    // Tiles of at most MAX_TILE rows; smaller ones (down to 2 rows) when the chunks alone would
    // leave threads idle. Tiles only group the work: they never change a bit.
    let tile = tile_rows(n, chunks, threads);
    let tiles = n.div_ceil(tile);
    let rows = |t: usize| t * tile..((t + 1) * tile).min(n);
    let tile_pairs: Vec<(Range<usize>, Range<usize>)> = (0..tiles)
        .flat_map(|a| (a..tiles).map(move |b| (a, b)))
        .map(|(a, b)| (rows(a), rows(b)))
        .collect();
    let pairs_of = |(a, b): &(Range<usize>, Range<usize>)| {
        if a == b {
            a.len() * (a.len() - 1) / 2
        } else {
            a.len() * b.len()
        }
    };
    // Tasks in chunk-major order, cut into waves of bounded memory (at least one task each):
    // every cell gets its chunk sums in chunk order.
    let tasks = chunks * tile_pairs.len();
    let mut first = 0;
    while first < tasks {
        let mut last = first;
        let mut bytes = 0;
        while last < tasks {
            let cost = BYTES_PER_PAIR * pairs_of(&tile_pairs[last % tile_pairs.len()]);
            if last > first && bytes + cost > wave_bytes {
                break;
            }
            bytes += cost;
            last += 1;
        }
        let results: Vec<TileSums> = (first..last)
            .into_par_iter()
            .map(|task| {
                let (chunk, (rows_a, rows_b)) = (
                    task / tile_pairs.len(),
                    &tile_pairs[task % tile_pairs.len()],
                );
                let plan = TilePlan::new(rows_a.clone(), rows_b.clone());
                let sums = plan.chunk_sums(updates, chunk * CHUNK..((chunk + 1) * CHUNK).min(d));
                TileSums {
                    cells: plan.cells,
                    sums,
                }
            })
            .collect();
        for result in results {
            for (&(i, j), &s) in result.cells.iter().zip(&result.sums) {
                matrix[i * n + j] += s;
            }
        }
        first = last;
    }
    for i in 1..n {
        for j in 0..i {
            matrix[i * n + j] = matrix[j * n + i];
        }
    }
    Ok(matrix)
}

/// Rows per tile for `n` updates, `chunks` chunks and `threads` threads: the largest even number
/// of rows, at most [`MAX_TILE`], that still gives four tasks per thread (down to 2 rows). Tiles
/// only group the work: they never change a bit.
///
/// Even, because an odd tile leaves a row that pairs one at a time with every row of the other
/// tile (tiles of 25 at n = 50 left a tenth of the pairs to the one-pair kernel, a quarter of the
/// time). With an odd `n` the last tile is odd all the same, and its last row pairs one at a
/// time.
fn tile_rows(n: usize, chunks: usize, threads: usize) -> usize {
    let even_tile = |tiles: usize| n.div_ceil(tiles).next_multiple_of(2);
    let mut tiles = n.div_ceil(MAX_TILE).max(1);
    loop {
        let tile = even_tile(tiles);
        let count = n.div_ceil(tile);
        if tile <= 2 || chunks * count * (count + 1) / 2 >= 4 * threads {
            return tile;
        }
        tiles += 1;
    }
}

/// One task's result: the chunk sum of each of its pairs.
struct TileSums {
    cells: Vec<(usize, usize)>,
    sums: Vec<f64>,
}

/// The pairs `(i, j)`, `i < j`, with `i` in one tile and `j` in another (or the same) tile, and
/// how they are computed: two rows by two where possible.
struct TilePlan {
    /// The pairs, indexed by slot.
    cells: Vec<(usize, usize)>,
    /// The work over each block, in order.
    work: Vec<Work>,
}

enum Work {
    /// Rows `a[0], a[1]` against rows `b[0], b[1]`: four pairs, into these slots.
    Four {
        a: [usize; 2],
        b: [usize; 2],
        slots: [[usize; 2]; 2],
    },
    /// One pair, into this slot.
    Single { a: usize, b: usize, slot: usize },
}

impl TilePlan {
    fn new(rows_a: Range<usize>, rows_b: Range<usize>) -> Self {
        let mut plan = TilePlan {
            cells: Vec::new(),
            work: Vec::new(),
        };
        let a: Vec<usize> = rows_a.collect();
        let b: Vec<usize> = rows_b.collect();
        // Two rows by two (wider tiles measured slower: their accumulators spill), one band of
        // `b` rows at a time.
        for band in b.chunks(BAND) {
            for pair_a in a.chunks(2) {
                for pair_b in band.chunks(2) {
                    // Four pairs at once only where every pair has i < j.
                    if pair_a.len() == 2 && pair_b.len() == 2 && pair_a[1] < pair_b[0] {
                        let a = [pair_a[0], pair_a[1]];
                        let b = [pair_b[0], pair_b[1]];
                        let slots = a.map(|i| b.map(|j| plan.cell(i, j)));
                        plan.work.push(Work::Four { a, b, slots });
                        continue;
                    }
                    for &i in pair_a {
                        for &j in pair_b.iter().filter(|&&j| j > i) {
                            let slot = plan.cell(i, j);
                            plan.work.push(Work::Single { a: i, b: j, slot });
                        }
                    }
                }
            }
        }
        plan
    }

    fn cell(&mut self, i: usize, j: usize) -> usize {
        self.cells.push((i, j));
        self.cells.len() - 1
    }

    /// Every pair's sum over the coordinates `chunk` (one chunk): block sums added in order.
    fn chunk_sums(&self, updates: &Updates<'_>, chunk: Range<usize>) -> Vec<f64> {
        let mut sums = vec![0.0f64; self.cells.len()];
        let mut start = chunk.start;
        while start < chunk.end {
            let end = (start + BLOCK).min(chunk.end);
            let row = |i: usize| &updates.row(i)[start..end];
            for work in &self.work {
                match *work {
                    Work::Four { a, b, slots } => {
                        let block = block_squared_distances(a.map(row), b.map(row));
                        for (slots, sums_a) in slots.iter().zip(block) {
                            for (&slot, s) in slots.iter().zip(sums_a) {
                                sums[slot] += s;
                            }
                        }
                    }
                    Work::Single { a, b, slot } => {
                        sums[slot] += block_squared_distance(row(a), row(b));
                    }
                }
            }
            start = end;
        }
        sums
    }
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
    fn pairwise_matches_pair_function_across_chunks_and_tiles() {
        // n = 191 on one thread: tiles of 64, 64 and 63 rows (eight bands of 8, an odd last
        // tile).
        for (n, d) in [
            (5, 2 * CHUNK + 1037),
            (2, CHUNK + 1),
            (70, 1500),
            (3, 40),
            (191, 40),
        ] {
            let data: Vec<f32> = (0..n * d)
                .map(|k| ((k as u32).wrapping_mul(2_654_435_761) >> 12) as f32 * 1e-3 - 300.0)
                .collect();
            let updates = Updates::new(&data, n, d).unwrap();
            let matrix = pairwise_squared_distances(&updates).unwrap();
            // Waves of one task each: many waves, chunks of a pair in different waves.
            let one_task_waves = pairwise_in_waves(&updates, 1).unwrap();
            // One thread: the fewest, largest tiles.
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let one_thread = pool.install(|| pairwise_squared_distances(&updates).unwrap());
            for i in 0..n {
                for j in 0..n {
                    let direct = squared_distance(updates.row(i), updates.row(j)).to_bits();
                    for (name, m) in [
                        ("default", &matrix),
                        ("one-task waves", &one_task_waves),
                        ("one thread", &one_thread),
                    ] {
                        assert_eq!(
                            m[i * n + j].to_bits(),
                            direct,
                            "{name}: n = {n}, d = {d}, ({i}, {j})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn tiles_are_even_at_most_64_rows_and_give_four_tasks_per_thread_where_possible() {
        for n in 2..300 {
            for chunks in 1..4 {
                for threads in [1, 2, 3, 8] {
                    let tile = tile_rows(n, chunks, threads);
                    let tiles = n.div_ceil(tile);
                    assert!(tile % 2 == 0 && tile <= MAX_TILE, "n = {n}: tile {tile}");
                    assert!(
                        tile == 2 || chunks * tiles * (tiles + 1) / 2 >= 4 * threads,
                        "n = {n}, chunks = {chunks}, threads = {threads}: tile {tile}"
                    );
                }
            }
        }
    }

    #[test]
    fn distances_two_by_two_match_one_pair_at_a_time_bit_for_bit() {
        for len in [1, 31, 32, 100, BLOCK] {
            let row = |seed: f32| -> Vec<f32> {
                (0..len)
                    .map(|k| ((k as f32 + seed) * 0.37).sin() * seed)
                    .collect()
            };
            let (a0, a1, b0) = (row(1.0), row(2.5), row(-3.0));
            // Squares beyond f32's range: that pair's block is redone in f64.
            let mut b1 = row(7.0);
            b1[len / 2] = 3.0e38;
            let pairs = [(&a0, &b0), (&a0, &b1), (&a1, &b0), (&a1, &b1)];
            let singles = pairs.map(|(x, y)| block_squared_distance(x, y).to_bits());
            let quad = block_squared_distances([&a0, &a1], [&b0, &b1]);
            let portable = block_squared_distances_portable([&a0, &a1], [&b0, &b1]);
            for got in [quad, portable] {
                let bits = [got[0][0], got[0][1], got[1][0], got[1][1]].map(f64::to_bits);
                assert_eq!(bits, singles, "len = {len}");
            }
            assert!(quad[0][1].is_finite() && quad[0][1] > 1e76);
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
