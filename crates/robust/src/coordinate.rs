//! Coordinate-parallel machinery shared by the rules: per-coordinate kernels over transposed
//! blocks, and weighted sums of rows with a fixed order.
//!
//! Parallelism is over blocks of output coordinates; each output is computed by exactly one task
//! in a fixed order, so the result does not depend on the number of threads.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

mod groups;

use groups::{load_sorted_group, sort_groups, Reduce, GROUP};

use crate::simd::dispatch;
use crate::Updates;

/// Coordinates sorted together by one pass of the network: `m × COLUMNS` keys stay in L1.
const COLUMNS: usize = 64;

/// Longest run, in coordinates, read from each row at a time (8 KiB): long enough for the
/// hardware prefetchers.
const MAX_RUN: usize = 2048;

/// Shortest run: shorter ones were slower at n = 200 (128: 1.4× the time of 256).
const MIN_RUN: usize = 256;

/// Keys of a run's input (`m × run`, 128 KiB) from 17 to 64 rows; beyond, runs stay at
/// [`MIN_RUN`]. Measured: runs of 512 at n = 50 and 256 at n = 200 were 1.15–1.27× faster than
/// the earlier fixed 2048.
const RUN_KEYS: usize = 32 * 1024;

/// Keys per 64-byte cache line: task buffers are aligned to it, and the distance between two
/// rows of a buffer is the run length plus one line, so that the rows of a column group do not
/// all map to the same L1 sets (a pitch of exactly 8 KiB would make every compare-exchange miss).
const ALIGN: usize = 16;

/// Run length, in coordinates, for `m` rows: the largest power of two between [`MIN_RUN`] and
/// [`MAX_RUN`] with `m × run ≤ RUN_KEYS` where possible (2048 up to 16 rows, 256 from 65 on).
fn run_length(m: usize) -> usize {
    let fit = (RUN_KEYS / m.max(1)).clamp(MIN_RUN, MAX_RUN);
    1 << fit.ilog2()
}

/// Coordinates per task of the row-combining loops.
const SPAN: usize = 4096;

/// Maps a finite `f32` to an `i32` whose integer order is the IEEE total order of the floats
/// (`-0.0 < +0.0`). The map is an involution on bit patterns: [`value`] undoes it.
#[inline]
pub(crate) fn key(x: f32) -> i32 {
    let bits = x.to_bits() as i32;
    bits ^ ((((bits >> 31) as u32) >> 1) as i32)
}

/// The float whose [`key`] is `k`.
#[inline]
pub(crate) fn value(k: i32) -> f32 {
    f32::from_bits((k ^ ((((k >> 31) as u32) >> 1) as i32)) as u32)
}

/// Comparators `(a, b)`, `a < b`, of Batcher's odd–even merge sort for `m` inputs.
///
/// Generated for the next power of two and restricted to indices below `m`, which is exact:
/// padding with `+∞` at the end never moves, so comparators touching the padding are no-ops.
#[cfg(test)]
pub(crate) fn sorting_network(m: usize) -> Vec<(usize, usize)> {
    batcher(m, 1)
}

/// The stages `p ≥ 16` of [`sorting_network`]: they sort `m` inputs whose aligned groups of 16
/// are already sorted (by [`sort_groups`]).
pub(crate) fn merge_network(m: usize) -> Vec<(usize, usize)> {
    batcher(m, GROUP)
}

/// Comparators of Batcher's odd–even merge sort for `m` inputs, from the stage that merges runs
/// of length `first` (a power of two) on.
fn batcher(m: usize, first: usize) -> Vec<(usize, usize)> {
    let mut comparators = Vec::new();
    let mut p = first;
    while p < m {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < m {
                for i in 0..k.min(m - j - k) {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        comparators.push((i + j, i + j + k));
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    comparators
}

/// The comparators of [`merge_network`] that can affect the sorted positions in `needed`: the
/// others are dropped (walking the network backwards, a comparator is kept when either of its
/// outputs is still read later, and then both of its inputs are).
///
/// Run after [`sort_groups`], positions in `needed` hold exactly what the full sort puts there;
/// the other positions are unspecified. The median needs one or two positions, the trimmed mean
/// the middle `m − 2f`.
pub(crate) fn selection_network(m: usize, needed: Range<usize>) -> Vec<(usize, usize)> {
    let mut live = vec![false; m];
    for position in needed {
        live[position] = true;
    }
    let mut kept: Vec<(usize, usize)> = merge_network(m)
        .into_iter()
        .rev()
        .filter(|&(a, b)| {
            let keep = live[a] || live[b];
            if keep {
                live[a] = true;
                live[b] = true;
            }
            keep
        })
        .collect();
    kept.reverse();
    kept
}

dispatch! {
/// Sorts, for every lane `k` in `offset..offset + COLUMNS`, the keys `block[r * stride + k]`
/// over `r`.
///
/// Uses AVX-512 or AVX2 min/max when the CPU has them. Integer min/max are exact, so every path
/// gives the same bits.
fn sort_lanes(block: &mut [i32], stride: usize, offset: usize, network: &[(usize, usize)]) {
    avx512: sort_lanes_portable(block, stride, offset, network),
    avx2: sort_lanes_portable(block, stride, offset, network),
    portable: sort_lanes_portable(block, stride, offset, network),
}
}

#[inline(always)]
fn sort_lanes_portable(
    block: &mut [i32],
    stride: usize,
    offset: usize,
    network: &[(usize, usize)],
) {
    for &(a, b) in network {
        let (low, high) = block.split_at_mut(b * stride + offset);
        let x = &mut low[a * stride + offset..a * stride + offset + COLUMNS];
        let y = &mut high[..COLUMNS];
        for (p, q) in x.iter_mut().zip(y.iter_mut()) {
            let (small, large) = ((*p).min(*q), (*p).max(*q));
            *p = small;
            *q = large;
        }
    }
}

/// Runs [`sort_groups`] then `network` (stages `p ≥ 16` of Batcher's sort, possibly pruned) over
/// every coordinate's column of the listed rows (as [`key`]s) and hands each run of coordinates
/// to `finish`, which writes their outputs into `out` (length `d`; those `reduce` has not
/// already written). Returns whether every value read was finite (when not, `out` is
/// meaningless).
///
/// Rows are read once, in runs of [`run_length`] coordinates, one task per run: the run of every
/// listed row is copied (as keys) into a per-task `m × pitch` buffer — the only extra memory
/// besides the output — then sorted column-wise, [`COLUMNS`] coordinates at a time, by the
/// network, whose compare-exchanges run across those coordinates at once (SIMD min/max, no
/// branches). Up to 16 rows the whole sort is one register-held group, so the columns are loaded
/// from the rows and sorted in one step ([`load_sorted_group`]), with the rows prefetched a
/// little ahead, and `reduce` says what happens next: [`Reduce::Store`] stores only the sorted
/// positions the caller reads into the buffer, [`Reduce::Median`] and [`Reduce::Mean`] write
/// the outputs themselves. `network` must be the merge network pruned to the positions `finish`
/// reads, or the whole one. `finish` gets the buffer (row `r` of the run at `r * pitch`; only
/// the positions it reads are specified, as after a pruned network), the pitch and the slice of
/// the output it must fill, the buffer's column `k` belonging to the slice's `k`: the whole run,
/// or after the register path with a median or mean, only the run's last partial group of
/// columns (possibly none).
fn for_each_sorted_run<F>(
    updates: &Updates<'_>,
    rows: &[usize],
    network: &[(usize, usize)],
    reduce: Reduce,
    out: &mut [f32],
    finish: F,
) -> bool
where
    F: Fn(&[i32], usize, &mut [f32]) + Sync,
{
    debug_assert_eq!(out.len(), updates.d());
    let m = rows.len();
    let run = run_length(m);
    let pitch = run + ALIGN;
    let non_finite = AtomicBool::new(false);
    out.par_chunks_mut(run).enumerate().for_each_init(
        || vec![0i32; m * pitch + ALIGN],
        |buffer, (index, out_run)| {
            // Rows start on 64-byte boundaries (`pitch` is a multiple of 16 keys), so no SIMD
            // load or store of the network straddles two cache lines.
            let pad = buffer.as_ptr().align_offset(4 * ALIGN).min(ALIGN);
            let block = &mut buffer[pad..pad + m * pitch];
            let start = index * run;
            let width = out_run.len();
            let mut largest = 0i32;
            // Up to 16 rows the groups are the whole sort (the network is empty): the run's
            // whole columns go from the input straight into the registers that sort them, and
            // only a last partial group of columns is copied first. (Done for every group of 16
            // rows at larger n, it measured 0.85-1.07x.)
            let fused = if m <= GROUP {
                width / COLUMNS * COLUMNS
            } else {
                0
            };
            if fused > 0 {
                let mut sources = [&[][..]; GROUP];
                for (source, &i) in sources.iter_mut().zip(rows) {
                    // To the row's end: the kernel prefetches past this run.
                    *source = &updates.row(i)[start..];
                }
                largest = load_sorted_group(block, pitch, &sources[..m], fused, &reduce, out_run);
            }
            for (r, &i) in rows.iter().enumerate() {
                if let Some(&next) = rows.get(r + 1) {
                    prefetch(&updates.row(next)[start + fused..start + width]);
                }
                let source = &updates.row(i)[start + fused..start + width];
                let keys = &mut block[r * pitch + fused..r * pitch + width];
                largest = largest.max(copy_keys(keys, source));
            }
            if largest >= EXPONENT as i32 {
                non_finite.store(true, Ordering::Relaxed);
            }
            for offset in (fused..width).step_by(COLUMNS) {
                sort_groups(block, pitch, offset, m);
                sort_lanes(block, pitch, offset, network);
            }
            match reduce {
                Reduce::Store(_) => finish(block, pitch, out_run),
                Reduce::Median | Reduce::Mean(_) => {
                    finish(&block[fused..], pitch, &mut out_run[fused..]);
                }
            }
        },
    );
    !non_finite.into_inner()
}

/// Asks the CPU to start loading `run` into the cache. The rows of a run are pieces of at most
/// 8 KiB far apart in memory, too short for the hardware prefetchers to ramp up on; prefetching
/// the next row's piece while the current one is copied keeps the memory system busy.
#[inline]
fn prefetch(run: &[f32]) {
    for line in run.chunks(ALIGN) {
        prefetch_line(&line[0]);
    }
}

/// Asks the CPU to start loading the cache line holding `value` (a hint: it never faults).
#[inline(always)]
fn prefetch_line(value: &f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only hints the cache; the pointer is a valid reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (value as *const f32).cast(),
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The exponent bits of an `f32`: all set exactly for infinities and NaNs.
const EXPONENT: u32 = 0x7f80_0000;

dispatch! {
/// Writes the [`key`]s of `source` into `keys` and returns the largest `bits & 0x7fff_ffff` of
/// the values: at least [`EXPONENT`] iff one of them is infinite or NaN. Screening the input this
/// way costs no extra read of it. Uses AVX-512 or AVX2 when the CPU has them (integer operations:
/// the same bits on every path).
fn copy_keys(keys: &mut [i32], source: &[f32]) -> i32 {
    avx512: copy_keys_portable(keys, source),
    avx2: copy_keys_portable(keys, source),
    portable: copy_keys_portable(keys, source),
}
}

#[inline(always)]
fn copy_keys_portable(keys: &mut [i32], source: &[f32]) -> i32 {
    let mut largest = [0i32; ALIGN];
    let mut key_chunks = keys.chunks_exact_mut(ALIGN);
    let mut source_chunks = source.chunks_exact(ALIGN);
    for (slots, values) in (&mut key_chunks).zip(&mut source_chunks) {
        for k in 0..ALIGN {
            let bits = values[k].to_bits() as i32;
            largest[k] = largest[k].max(bits & i32::MAX);
            slots[k] = key(values[k]);
        }
    }
    let mut tail = 0i32;
    for (slot, &x) in key_chunks
        .into_remainder()
        .iter_mut()
        .zip(source_chunks.remainder())
    {
        tail = tail.max(x.to_bits() as i32 & i32::MAX);
        *slot = key(x);
    }
    largest.into_iter().fold(tail, i32::max)
}

/// Applies `kernel` to every coordinate's column of the listed rows, sorted ascending as
/// [`key`]s, and returns the `d` results. Sorted keys are canonical, so the kernels' results do
/// not depend on the order of the rows.
pub(crate) fn map_sorted_columns<K>(updates: &Updates<'_>, rows: &[usize], kernel: K) -> Vec<f32>
where
    K: Fn(&[i32]) -> f32 + Sync,
{
    let m = rows.len();
    let network = merge_network(m);
    let mut out = vec![0.0f32; updates.d()];
    for_each_sorted_run(
        updates,
        rows,
        &network,
        Reduce::Store(0..m),
        &mut out,
        |block, pitch, out_block| {
            let mut column = vec![0i32; m];
            for (k, slot) in out_block.iter_mut().enumerate() {
                for (r, entry) in column.iter_mut().enumerate() {
                    *entry = block[r * pitch + k];
                }
                *slot = kernel(&column);
            }
        },
    );
    out
}

/// Coordinate-wise median of the listed rows: bit-identical to [`median_of_sorted`] on every
/// sorted column, but only the middle order statistics are selected (a pruned network) and they
/// are read row-wise, many coordinates at once.
pub(crate) fn median_of_rows(updates: &Updates<'_>, rows: &[usize]) -> Vec<f32> {
    let mut out = vec![0.0f32; updates.d()];
    median_into(updates, rows, &mut out);
    out
}

/// [`median_of_rows`] written into `out` (length `d`). Returns whether every value it read was
/// finite; when not, `out` is meaningless.
pub(crate) fn median_into(updates: &Updates<'_>, rows: &[usize], out: &mut [f32]) -> bool {
    let m = rows.len();
    let (lower, upper) = ((m - 1) / 2, m / 2);
    let network = selection_network(m, lower..upper + 1);
    for_each_sorted_run(
        updates,
        rows,
        &network,
        Reduce::Median,
        out,
        |block, pitch, out_block| {
            let low = &block[lower * pitch..];
            if lower == upper {
                for (slot, &k) in out_block.iter_mut().zip(low) {
                    *slot = value(k);
                }
            } else {
                let high = &block[upper * pitch..];
                for ((slot, &a), &b) in out_block.iter_mut().zip(low).zip(high) {
                    *slot = midpoint(a, b) as f32;
                }
            }
        },
    )
}

/// Coordinate-wise mean of the sorted positions `f..m − f` of the listed rows, summed in `f64` in
/// ascending order: bit-identical to [`sum_values`] over each sorted column's middle, but only the
/// middle is selected (a pruned network) and it is summed row-wise, many coordinates at once.
/// Requires `2f < m`.
pub(crate) fn trimmed_mean_of_rows(updates: &Updates<'_>, rows: &[usize], f: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; updates.d()];
    trimmed_mean_into(updates, rows, f, &mut out);
    out
}

/// [`trimmed_mean_of_rows`] written into `out` (length `d`). Returns whether every value it read
/// was finite; when not, `out` is meaningless.
pub(crate) fn trimmed_mean_into(
    updates: &Updates<'_>,
    rows: &[usize],
    f: usize,
    out: &mut [f32],
) -> bool {
    let m = rows.len();
    debug_assert!(2 * f < m);
    let network = selection_network(m, f..m - f);
    for_each_sorted_run(
        updates,
        rows,
        &network,
        Reduce::Mean(f..m - f),
        out,
        |block, pitch, out_block| mean_of_positions(block, pitch, f..m - f, out_block),
    )
}

dispatch! {
/// For every coordinate `k` of `out`, the mean of the values whose keys are
/// `block[r * pitch + k]`, `r` in `positions`, summed in `f64` in ascending `r`. Uses AVX-512 or
/// AVX2 when the CPU has them (the same IEEE operations in the same order: the same bits); the
/// closure that calls it is compiled for the baseline instruction set, where its conversions
/// and adds ran two `f64` at a time.
fn mean_of_positions(block: &[i32], pitch: usize, positions: Range<usize>, out: &mut [f32]) {
    avx512: mean_of_positions_portable(block, pitch, positions, out),
    avx2: mean_of_positions_portable(block, pitch, positions, out),
    portable: mean_of_positions_portable(block, pitch, positions, out),
}
}

#[inline(always)]
fn mean_of_positions_portable(
    block: &[i32],
    pitch: usize,
    positions: Range<usize>,
    out: &mut [f32],
) {
    let kept = positions.len() as f64;
    // A column group's sums stay in registers across the rows.
    for (group, out) in out.chunks_mut(COLUMNS).enumerate() {
        let start = group * COLUMNS;
        let mut sums = [0.0f64; COLUMNS];
        for r in positions.clone() {
            let keys = &block[r * pitch + start..r * pitch + start + out.len()];
            for (sum, &k) in sums.iter_mut().zip(keys) {
                *sum += f64::from(value(k));
            }
        }
        for (slot, sum) in out.iter_mut().zip(sums) {
            *slot = (sum / kept) as f32;
        }
    }
}

/// `(Σ_t w_t x_{r_t}) / (Σ_t w_t)` for the terms `(r_t, w_t)`, summed in `f64` in the order of
/// the terms for every coordinate. The weights' sum must be positive.
pub(crate) fn weighted_average(updates: &Updates<'_>, terms: &[(usize, f64)]) -> Vec<f32> {
    let total: f64 = terms.iter().fold(0.0, |acc, &(_, w)| acc + w);
    debug_assert!(total > 0.0);
    let d = updates.d();
    let mut out = vec![0.0f32; d];
    out.par_chunks_mut(SPAN)
        .enumerate()
        .for_each(|(block, out_block)| {
            let start = block * SPAN;
            let width = out_block.len();
            let mut sums = vec![0.0f64; width];
            // Eight terms per pass over `sums`: an eighth of the accumulator traffic, and each
            // coordinate still adds its terms one at a time in the terms' order.
            let mut groups = terms.chunks_exact(8);
            for group in &mut groups {
                let rows: [&[f32]; 8] =
                    std::array::from_fn(|k| &updates.row(group[k].0)[start..start + width]);
                let weights: [f64; 8] = std::array::from_fn(|k| group[k].1);
                accumulate(&mut sums, rows, weights);
            }
            for &(i, w) in groups.remainder() {
                let row = &updates.row(i)[start..start + width];
                accumulate(&mut sums, [row], [w]);
            }
            for (slot, sum) in out_block.iter_mut().zip(sums) {
                *slot = (sum / total) as f32;
            }
        });
    out
}

/// `sums[j] += w_k * rows[k][j]` for `k = 0, 1, ...` in that order, with a separate multiply and
/// add (Rust never fuses them), so every instruction set gives the same bits. Uses AVX2 when the
/// CPU has it: four `f64` lanes per instruction instead of SSE2's two.
///
/// When every weight is 1 (the plain mean) the multiplications are skipped: `1 * x` is exactly
/// `x` in `f64`, so the bits are the same.
fn accumulate<const K: usize>(sums: &mut [f64], rows: [&[f32]; K], weights: [f64; K]) {
    if weights.iter().all(|&w| w == 1.0) {
        accumulate_as::<K, true>(sums, rows, weights);
    } else {
        accumulate_as::<K, false>(sums, rows, weights);
    }
}

dispatch! {
/// [`accumulate`], with every weight 1 when `UNIT`.
fn accumulate_as<const K: usize, const UNIT: bool>(
    sums: &mut [f64],
    rows: [&[f32]; K],
    weights: [f64; K],
) {
    avx2: accumulate_portable::<K, UNIT>(sums, rows, weights),
    portable: accumulate_portable::<K, UNIT>(sums, rows, weights),
}
}

#[inline(always)]
fn accumulate_portable<const K: usize, const UNIT: bool>(
    sums: &mut [f64],
    rows: [&[f32]; K],
    weights: [f64; K],
) {
    let width = sums.len();
    let rows: [&[f32]; K] = std::array::from_fn(|k| &rows[k][..width]);
    for (j, sum) in sums.iter_mut().enumerate() {
        let mut acc = *sum;
        for k in 0..K {
            let x = f64::from(rows[k][j]);
            acc += if UNIT { x } else { weights[k] * x };
        }
        *sum = acc;
    }
}

/// Plain mean of the listed rows, summed in the listed order.
pub(crate) fn mean_of_rows(updates: &Updates<'_>, rows: &[usize]) -> Vec<f32> {
    let terms: Vec<(usize, f64)> = rows.iter().map(|&i| (i, 1.0)).collect();
    weighted_average(updates, &terms)
}

/// Median of a sorted, non-empty column of keys: the middle value, or the mean of the two middle
/// values when the length is even (numpy's convention; torch returns the lower one).
pub(crate) fn median_of_sorted(column: &[i32]) -> f64 {
    let m = column.len();
    if m % 2 == 1 {
        f64::from(value(column[m / 2]))
    } else {
        midpoint(column[m / 2 - 1], column[m / 2])
    }
}

/// The mean of the values of keys `a` and `b`, in `f64` (exact): the median of an even count,
/// rounded to `f32` by its callers.
#[inline(always)]
pub(crate) fn midpoint(a: i32, b: i32) -> f64 {
    (f64::from(value(a)) + f64::from(value(b))) * 0.5
}

/// Sum of the values of a run of keys, in `f64`, in order.
pub(crate) fn sum_values(keys: &[i32]) -> f64 {
    keys.iter()
        .fold(0.0f64, |acc, &k| acc + f64::from(value(k)))
}

/// Mean of the `keep` values of a sorted column of keys closest to its median; ties between a smaller
/// and a larger value at equal distance go to the smaller one. The kept values form a contiguous
/// run of the sorted column and are summed in ascending order.
pub(crate) fn mean_around_median(column: &[i32], keep: usize) -> f32 {
    let m = column.len();
    debug_assert!(keep >= 1 && keep <= m);
    let median = median_of_sorted(column);
    let mut low = column.partition_point(|&k| f64::from(value(k)) < median);
    let mut high = low;
    while high - low < keep {
        let take_left = if low == 0 {
            false
        } else if high == m {
            true
        } else {
            median - f64::from(value(column[low - 1])) <= f64::from(value(column[high])) - median
        };
        if take_left {
            low -= 1;
        } else {
            high += 1;
        }
    }
    (sum_values(&column[low..high]) / keep as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_sorted_columns_sees_every_coordinate_across_block_edges() {
        let n = 3;
        let d = MAX_RUN * 2 + COLUMNS + 5;
        let data: Vec<f32> = (0..n * d).map(|k| k as f32).collect();
        let updates = Updates::new(&data, n, d).unwrap();
        let sums = map_sorted_columns(&updates, &[2, 0, 1], |column| {
            assert!(column.windows(2).all(|w| w[0] <= w[1]));
            column.iter().map(|&k| value(k)).sum()
        });
        for (k, &s) in sums.iter().enumerate() {
            assert_eq!(s, (k + (d + k) + (2 * d + k)) as f32);
        }
    }

    #[test]
    fn median_and_trimmed_mean_match_a_plain_sort_for_every_run_length() {
        // Runs of 2048 (m ≤ 16, columns loaded straight into the sorting registers but for a
        // last partial group), 1024 (m = 17), 256 (m ≥ 65); partial last runs and a last
        // column group shorter than 64.
        for (m, d) in [
            (1, 130),
            (2, COLUMNS + 37),
            (10, 2 * MAX_RUN + 9),
            (16, COLUMNS + 37),
            (5, 2 * MAX_RUN + 9),
            (17, 3 * 1024 + 7),
            (65, 3 * 256 + 7),
            (200, 700),
        ] {
            let data: Vec<f32> = (0..m * d)
                .map(|k| ((k as u32).wrapping_mul(2_654_435_761) >> 9) as f32 * 1e-3 - 4000.0)
                .collect();
            let updates = Updates::new(&data, m, d).unwrap();
            let rows: Vec<usize> = (0..m).rev().collect();
            let f = m / 5;
            let median = median_of_rows(&updates, &rows);
            let trimmed = trimmed_mean_of_rows(&updates, &rows, f);
            for k in 0..d {
                let mut column: Vec<i32> = (0..m).map(|r| key(data[r * d + k])).collect();
                column.sort_unstable();
                let expected_median = median_of_sorted(&column) as f32;
                let kept = &column[f..m - f];
                let expected_trimmed = (sum_values(kept) / kept.len() as f64) as f32;
                assert_eq!(
                    median[k].to_bits(),
                    expected_median.to_bits(),
                    "m = {m}, {k}"
                );
                assert_eq!(
                    trimmed[k].to_bits(),
                    expected_trimmed.to_bits(),
                    "m = {m}, {k}"
                );
            }
        }
    }

    #[test]
    fn sorting_network_sorts_every_size_up_to_70() {
        let mut state = 12345u64;
        for m in 1..=70 {
            let network = sorting_network(m);
            for _ in 0..20 {
                let mut block = vec![0i32; m * COLUMNS];
                for slot in block.iter_mut() {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    *slot = ((state >> 33) % 7) as i32 - 3;
                }
                let mut expected: Vec<Vec<i32>> = (0..COLUMNS)
                    .map(|k| (0..m).map(|r| block[r * COLUMNS + k]).collect())
                    .collect();
                expected
                    .iter_mut()
                    .for_each(|column| column.sort_unstable());
                let mut merged = block.clone();
                sort_lanes(&mut block, COLUMNS, 0, &network);
                sort_groups(&mut merged, COLUMNS, 0, m);
                sort_lanes(&mut merged, COLUMNS, 0, &merge_network(m));
                assert_eq!(merged, block, "m = {m}: groups then merges");
                for (k, column) in expected.iter().enumerate() {
                    let sorted: Vec<i32> = (0..m).map(|r| block[r * COLUMNS + k]).collect();
                    assert_eq!(&sorted, column, "m = {m}, lane {k}");
                }
            }
        }
    }

    #[test]
    fn selection_networks_place_the_needed_positions_like_a_full_sort() {
        let mut state = 987u64;
        for m in 1..=70 {
            let ranges = [
                (m - 1) / 2..m / 2 + 1,
                (m - 1) / 4..m - (m - 1) / 4,
                0..1,
                m - 1..m,
            ];
            for needed in ranges {
                let network = selection_network(m, needed.clone());
                assert!(network.len() <= merge_network(m).len());
                let mut block = vec![0i32; m * COLUMNS];
                for slot in block.iter_mut() {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    *slot = ((state >> 33) % 11) as i32 - 5;
                }
                let mut sorted = block.clone();
                sort_lanes(&mut sorted, COLUMNS, 0, &sorting_network(m));
                sort_groups(&mut block, COLUMNS, 0, m);
                sort_lanes(&mut block, COLUMNS, 0, &network);
                for r in needed.clone() {
                    assert_eq!(
                        block[r * COLUMNS..(r + 1) * COLUMNS],
                        sorted[r * COLUMNS..(r + 1) * COLUMNS],
                        "m = {m}, position {r}"
                    );
                }
            }
        }
    }

    #[test]
    fn dispatched_and_portable_sorts_agree() {
        let m = 37;
        let network = sorting_network(m);
        let block: Vec<i32> = (0..m * COLUMNS)
            .map(|k| (k as i32).wrapping_mul(-1_640_531_535))
            .collect();
        let mut fast = block.clone();
        let mut portable = block;
        sort_lanes(&mut fast, COLUMNS, 0, &network);
        sort_lanes_portable(&mut portable, COLUMNS, 0, &network);
        assert_eq!(fast, portable);
    }

    #[test]
    fn copy_keys_converts_every_value_and_flags_any_non_finite_one() {
        for len in [0, 5, 16, 37, 100] {
            let values: Vec<f32> = (0..len).map(|k| (k as f32 - 20.0) * 1.5e30).collect();
            let mut keys = vec![0i32; len];
            let largest = copy_keys(&mut keys, &values);
            assert!(largest < EXPONENT as i32, "len = {len}");
            assert_eq!(keys, super::tests::keys(&values), "len = {len}");
            assert_eq!(copy_keys_portable(&mut keys, &values), largest);
            for position in 0..len {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut values = values.clone();
                    values[position] = bad;
                    assert!(copy_keys(&mut keys, &values) >= EXPONENT as i32);
                }
            }
        }
    }

    fn keys(values: &[f32]) -> Vec<i32> {
        values.iter().map(|&x| key(x)).collect()
    }

    #[test]
    fn keys_order_like_floats_and_invert_exactly() {
        let floats = [-3.0e38f32, -1.0, -1e-40, -0.0, 0.0, 1e-40, 2.5, 3.0e38];
        let k = keys(&floats);
        assert!(k.windows(2).all(|w| w[0] < w[1]));
        for (&x, &kx) in floats.iter().zip(&k) {
            assert_eq!(value(kx).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn mean_around_median_prefers_the_smaller_value_on_ties() {
        assert_eq!(mean_around_median(&keys(&[1.0, 4.0, 7.0]), 2), 2.5);
        assert_eq!(mean_around_median(&keys(&[1.0, 4.0, 7.0, 100.0]), 2), 5.5);
        assert_eq!(mean_around_median(&keys(&[-3.0, 5.0, 5.0]), 3), 7.0 / 3.0);
    }
}
