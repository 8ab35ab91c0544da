//! The first four stages of Batcher's sort done in registers: every aligned group of
//! [`GROUP`] rows is sorted per lane while it sits in vector registers, so its 63 compare-exchanges
//! cost 16 loads and 16 stores instead of 252 memory accesses. Up to 16 rows that is the whole
//! sort, and [`load_sorted_group`] does it straight from the input: each row loaded once into a
//! register, the network compiled per row count without the compare-exchanges that touch the
//! padding (32 remain at 10 rows), then either only the positions the rule reads stored, or the
//! median or trimmed mean taken from the registers and written to the output.
//!
//! Batcher's odd–even merge sort leaves each aligned group of 16 inputs sorted after its stages
//! `p = 1, 2, 4, 8`, and the sorted order of a group is unique, so sorting the groups in any way
//! and then running the network's later stages ([`super::merge_network`]) gives exactly the
//! network's output.

use std::ops::Range;

use super::{midpoint, value, COLUMNS};
use crate::simd::dispatch;

/// Rows per group sorted in registers.
pub(super) const GROUP: usize = 16;

dispatch! {
/// Sorts, for every lane `k` in `offset..offset + COLUMNS`, each aligned group of 16 of the keys
/// `block[r * stride + k]`, `r < m` (the last group may be shorter).
pub(super) fn sort_groups(block: &mut [i32], stride: usize, offset: usize, m: usize) {
    // One 512-bit register per row: the 16 rows fill half of the 32 registers.
    avx512: sort_groups_portable::<16>(block, stride, offset, m),
    // One 256-bit register per row: the 16 rows fill the 16 registers.
    avx2: sort_groups_portable::<8>(block, stride, offset, m),
    portable: sort_groups_portable::<8>(block, stride, offset, m),
}
}

/// Sorts the groups `LANES` lanes at a time; missing rows of a short last group are padded with
/// `i32::MAX`, which sorts last and is never stored.
#[inline(always)]
pub(super) fn sort_groups_portable<const LANES: usize>(
    block: &mut [i32],
    stride: usize,
    offset: usize,
    m: usize,
) {
    let mut base = 0;
    while base + 1 < m {
        let rows = (m - base).min(GROUP);
        for lane in (offset..offset + COLUMNS).step_by(LANES) {
            let mut v = [[i32::MAX; LANES]; GROUP];
            for (r, row) in v.iter_mut().enumerate().take(rows) {
                let start = (base + r) * stride + lane;
                row.copy_from_slice(&block[start..start + LANES]);
            }
            sort16::<LANES, GROUP>(&mut v);
            for (r, row) in v.iter().enumerate().take(rows) {
                let start = (base + r) * stride + lane;
                block[start..start + LANES].copy_from_slice(row);
            }
        }
        base += GROUP;
    }
}

/// What [`load_sorted_group`] does with each group of lanes once it is sorted in registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Reduce {
    /// Stores the sorted positions in the range into the block (position `r` at `r * stride`),
    /// for the caller to read; the other rows of the block are left as they were.
    Store(Range<usize>),
    /// Writes each lane's median to the output: the value of the middle key, or for an even
    /// count the mean of the two middle values taken in `f64` and rounded to `f32` (the
    /// median's kernel, bit for bit).
    Median,
    /// Writes each lane's mean of the values at the sorted positions in the range, summed in
    /// `f64` in ascending position, divided by their count and rounded to `f32` (the trimmed
    /// mean's kernel, bit for bit).
    Mean(Range<usize>),
}

dispatch! {
/// For at most [`GROUP`] rows: sorts the [`key`](super::key)s of `sources` (one slice per row, at
/// least `width` values each) per lane, for lanes `0..width`, `width` a multiple of [`COLUMNS`],
/// then either stores the sorted positions the caller reads into `block` or writes each lane's
/// result straight to `out[..width]`, as `reduce` says (`out` is not touched by
/// [`Reduce::Store`]). The same keys as a copy followed by [`sort_groups`], but each value goes
/// from the input straight into a register (at n = 10 the separate copy read the runs back from
/// L2 and cost a fifth of the median's time), and a median or mean is taken there too, without
/// a round trip through the block. Returns the largest `bits & 0x7fff_ffff` of the values read,
/// as the copy does, taken from the smallest and largest key of each lane: in key order the
/// values of largest magnitude, infinities and NaNs included, are at the two ends.
pub(super) fn load_sorted_group(
    block: &mut [i32],
    stride: usize,
    sources: &[&[f32]],
    width: usize,
    reduce: &Reduce,
    out: &mut [f32],
) -> i32 {
    avx512: load_sorted_group_portable::<16>(block, stride, sources, width, reduce, out),
    avx2: load_sorted_group_portable::<8>(block, stride, sources, width, reduce, out),
    portable: load_sorted_group_portable::<8>(block, stride, sources, width, reduce, out),
}
}

#[inline(always)]
pub(super) fn load_sorted_group_portable<const LANES: usize>(
    block: &mut [i32],
    stride: usize,
    sources: &[&[f32]],
    width: usize,
    reduce: &Reduce,
    out: &mut [f32],
) -> i32 {
    debug_assert!(sources.len() <= GROUP && width % COLUMNS == 0);
    debug_assert!(matches!(reduce, Reduce::Store(_)) || out.len() >= width);
    // One copy of the kernel per row count, so that the compare-exchanges with the padding rows
    // (no-ops) vanish at compile time: 32 of Batcher's 63 remain at m = 10.
    macro_rules! by_rows {
        ($($m:literal)*) => {
            match sources.len() {
                // No rows: nothing to sort or store, and no value read.
                0 => 0,
                $($m => load_sorted_rows::<LANES, $m>(block, stride, sources, width, reduce, out),)*
                _ => load_sorted_rows::<LANES, GROUP>(block, stride, sources, width, reduce, out),
            }
        };
    }
    by_rows!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
}

/// [`load_sorted_group_portable`] for `M = sources.len()` rows.
#[inline(always)]
fn load_sorted_rows<const LANES: usize, const M: usize>(
    block: &mut [i32],
    stride: usize,
    sources: &[&[f32]],
    width: usize,
    reduce: &Reduce,
    out: &mut [f32],
) -> i32 {
    let sources: &[&[f32]; M] = sources.try_into().expect("M rows");
    // `bits & 0x7fff_ffff` of the value whose key is `k` (the key map is its own inverse).
    let magnitude = |k: i32| (k ^ ((((k >> 31) as u32) >> 1) as i32)) & i32::MAX;
    let mut largest = [0i32; LANES];
    for lane in (0..width).step_by(LANES) {
        let mut v = [[i32::MAX; LANES]; GROUP];
        for (row, source) in v.iter_mut().zip(sources) {
            if let Some(ahead) = source.get(lane + PREFETCH) {
                super::prefetch_line(ahead);
            }
            let values: &[f32; LANES] = source[lane..lane + LANES]
                .try_into()
                .expect("a slice of LANES values");
            *row = values.map(|x| {
                let b = x.to_bits() as i32;
                b ^ ((((b >> 31) as u32) >> 1) as i32)
            });
        }
        sort16::<LANES, M>(&mut v);
        for k in 0..LANES {
            let ends = magnitude(v[0][k]).max(magnitude(v[M - 1][k]));
            largest[k] = largest[k].max(ends);
        }
        // Rows are only ever indexed by constants (`M` is one, and `r` runs over `0..M` with a
        // test per row), so that they stay in registers.
        match reduce {
            Reduce::Store(keep) => {
                for (r, row) in v.iter().enumerate().take(M) {
                    if keep.contains(&r) {
                        let start = r * stride + lane;
                        block[start..start + LANES].copy_from_slice(row);
                    }
                }
            }
            Reduce::Median => {
                let slots: &mut [f32; LANES] = (&mut out[lane..lane + LANES])
                    .try_into()
                    .expect("a slice of LANES outputs");
                let (lower, upper) = ((M - 1) / 2, M / 2);
                if lower == upper {
                    *slots = v[lower].map(value);
                } else {
                    for (slot, (&a, &b)) in slots.iter_mut().zip(v[lower].iter().zip(&v[upper])) {
                        *slot = midpoint(a, b) as f32;
                    }
                }
            }
            Reduce::Mean(positions) => {
                let mut sums = [0.0f64; LANES];
                for (r, row) in v.iter().enumerate().take(M) {
                    if positions.contains(&r) {
                        for (sum, &k) in sums.iter_mut().zip(row) {
                            *sum += f64::from(value(k));
                        }
                    }
                }
                let kept = positions.len() as f64;
                let slots = &mut out[lane..lane + LANES];
                for (slot, sum) in slots.iter_mut().zip(sums) {
                    *slot = (sum / kept) as f32;
                }
            }
        }
    }
    largest.into_iter().fold(0, i32::max)
}

/// How far ahead of the lanes being sorted each row is prefetched, in values.
const PREFETCH: usize = 256;

/// Compare-exchanges rows `a < b` of `v` in every lane; nothing when `b ≥ M`, where rows hold the
/// `i32::MAX` padding, which never moves (a test the compiler removes: `M` and `b` are constants).
// Indexing both rows by lane keeps them in registers once `a` and `b` are constants.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn exchange<const LANES: usize, const M: usize>(v: &mut [[i32; LANES]; GROUP], a: usize, b: usize) {
    if b >= M {
        return;
    }
    for k in 0..LANES {
        let (x, y) = (v[a][k], v[b][k]);
        v[a][k] = x.min(y);
        v[b][k] = x.max(y);
    }
}

macro_rules! exchanges {
    ($v:ident: $(($a:literal, $b:literal)),* $(,)?) => {
        $( exchange::<LANES, M>($v, $a, $b); )*
    };
}

/// Batcher's odd–even merge sort for 16 inputs (63 comparators), unrolled so that the rows stay
/// in registers, of which only the first `M` may differ from the padding (`i32::MAX`): the
/// comparators that touch a padding row are left out.
#[inline(always)]
fn sort16<const LANES: usize, const M: usize>(v: &mut [[i32; LANES]; GROUP]) {
    exchanges!(v: (0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15),
        (0, 2), (1, 3), (4, 6), (5, 7), (8, 10), (9, 11), (12, 14), (13, 15),
        (1, 2), (5, 6), (9, 10), (13, 14),
        (0, 4), (1, 5), (2, 6), (3, 7), (8, 12), (9, 13), (10, 14), (11, 15),
        (2, 4), (3, 5), (10, 12), (11, 13),
        (1, 2), (3, 4), (5, 6), (9, 10), (11, 12), (13, 14),
        (0, 8), (1, 9), (2, 10), (3, 11), (4, 12), (5, 13), (6, 14), (7, 15),
        (4, 8), (5, 9), (6, 10), (7, 11),
        (2, 4), (3, 5), (6, 8), (7, 9), (10, 12), (11, 13),
        (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit LCG (Knuth's MMIX constants): the high 32 bits of each new state.
    fn lcg(seed: u64) -> impl FnMut() -> u32 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 32) as u32
        }
    }

    #[test]
    fn every_group_of_sixteen_rows_is_sorted_per_lane_and_rows_beyond_m_are_untouched() {
        let mut next = lcg(4242);
        for m in [1, 2, 5, 16, 17, 31, 40, 70] {
            let stride = COLUMNS + 16;
            let mut block = vec![0i32; (m + 1) * stride];
            for slot in block.iter_mut() {
                *slot = next() as i32;
            }
            let original = block.clone();
            let mut portable = block.clone();
            sort_groups(&mut block, stride, 0, m);
            sort_groups_portable::<8>(&mut portable, stride, 0, m);
            assert_eq!(block, portable, "m = {m}");
            for k in 0..COLUMNS {
                for base in (0..m).step_by(GROUP) {
                    let rows = base..(base + GROUP).min(m);
                    let mut expected: Vec<i32> =
                        rows.clone().map(|r| original[r * stride + k]).collect();
                    expected.sort_unstable();
                    let got: Vec<i32> = rows.map(|r| block[r * stride + k]).collect();
                    assert_eq!(got, expected, "m = {m}, lane {k}, group at {base}");
                }
            }
            assert_eq!(block[m * stride..], original[m * stride..]);
            for r in 0..m {
                assert_eq!(
                    block[r * stride + COLUMNS..(r + 1) * stride],
                    original[r * stride + COLUMNS..(r + 1) * stride]
                );
            }
        }
    }

    #[test]
    fn loading_sorted_groups_equals_copying_then_sorting_and_flags_non_finite_values() {
        let mut bits = lcg(99);
        let mut next = move || f32::from_bits(bits() & 0xbfff_ffff);
        let stride = 2 * COLUMNS + 16;
        let width = 2 * COLUMNS;
        // Keys of `rows` sorted per lane by copy + `sort_groups`, and the largest magnitude bits;
        // checks that both kernels store exactly those keys and return exactly that flag.
        let check = |rows: &[Vec<f32>], m: usize| -> (Vec<i32>, i32) {
            let sources: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
            let mut expected = vec![0i32; m * stride];
            let mut largest = 0i32;
            for (r, row) in rows.iter().enumerate() {
                for (k, &x) in row[..width].iter().enumerate() {
                    expected[r * stride + k] = super::super::key(x);
                    largest = largest.max(x.to_bits() as i32 & i32::MAX);
                }
            }
            for offset in (0..width).step_by(COLUMNS) {
                sort_groups(&mut expected, stride, offset, m);
            }
            let mut block = vec![0i32; m * stride];
            let store = Reduce::Store(0..m);
            let got = load_sorted_group(&mut block, stride, &sources, width, &store, &mut []);
            let mut portable = vec![0i32; m * stride];
            let got_portable = load_sorted_group_portable::<8>(
                &mut portable,
                stride,
                &sources,
                width,
                &store,
                &mut [],
            );
            for r in 0..m {
                let lanes = r * stride..r * stride + width;
                assert_eq!(
                    block[lanes.clone()],
                    expected[lanes.clone()],
                    "m = {m}, row {r}"
                );
                assert_eq!(portable[lanes.clone()], expected[lanes], "m = {m}, row {r}");
            }
            assert_eq!((got, got_portable), (largest, largest), "m = {m}");
            (expected, largest)
        };
        for m in 1..=GROUP {
            // Rows longer than the width: the kernel may prefetch past it, never read it.
            let rows: Vec<Vec<f32>> = (0..m)
                .map(|_| (0..width + 40).map(|_| next()).collect())
                .collect();
            let (expected, largest) = check(&rows, m);
            assert!(
                largest < 0x7f80_0000,
                "the generator makes finite values only"
            );
            // Edge bit patterns, so that the flag's exact value (taken from the sorted ends) is
            // checked: -0, the smallest subnormal, -inf, a negative NaN with a payload, the
            // largest NaN, f32::MAX.
            let mut edged = rows.clone();
            let edges = [
                0x8000_0000u32,
                0x0000_0001,
                0xff80_0000,
                0xffc0_1234,
                0x7fff_ffff,
                0x7f7f_ffff,
            ];
            for (e, &bits) in edges.iter().enumerate() {
                edged[e % m][3 + 7 * e] = f32::from_bits(bits);
                check(&edged, m);
            }
            // A NaN of either sign is flagged, wherever it sorts.
            for nan in [f32::NAN, -f32::NAN] {
                let mut poisoned = rows.clone();
                poisoned[m - 1][width - 1] = nan;
                let sources: Vec<&[f32]> = poisoned.iter().map(Vec::as_slice).collect();
                let mut block = vec![0i32; m * stride];
                let store = Reduce::Store(0..m);
                let flagged =
                    load_sorted_group(&mut block, stride, &sources, width, &store, &mut []);
                assert!(flagged >= 0x7f80_0000, "m = {m}: {nan} is flagged");
            }
            // Only the kept positions are written.
            let sources: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
            let middle = m / 2..m / 2 + 1;
            let mut partial = vec![7i32; m * stride];
            let store = Reduce::Store(middle.clone());
            load_sorted_group(&mut partial, stride, &sources, width, &store, &mut []);
            for r in 0..m {
                let lanes = r * stride..r * stride + width;
                if middle.contains(&r) {
                    assert_eq!(partial[lanes.clone()], expected[lanes], "m = {m}, row {r}");
                } else {
                    assert!(partial[lanes].iter().all(|&k| k == 7), "m = {m}, row {r}");
                }
            }
        }
    }

    /// The register path's median and means are those of the sorted columns, bit for bit, on the
    /// dispatched path (the widest the CPU has) and the portable one, and leave the block alone.
    #[test]
    fn register_median_and_mean_match_the_sorted_column_kernels() {
        use super::super::{key, median_of_sorted, sum_values};
        let mut draw = lcg(7);
        let mut next = move || {
            // Finite values of every magnitude up to ±f32::MAX (bit 23 cleared: the exponent is
            // never all ones), both signs, with repeats: one value in eight is ±0 or ±MAX.
            let bits = draw();
            match bits & 7 {
                0 => f32::from_bits(bits & 0x8000_0000),
                1 => f32::from_bits((bits & 0x8000_0000) | f32::MAX.to_bits()),
                _ => f32::from_bits(bits & 0xff7f_ffff),
            }
        };
        let width = 2 * COLUMNS;
        for m in 1..=GROUP {
            let rows: Vec<Vec<f32>> = (0..m)
                .map(|_| (0..width + 20).map(|_| next()).collect())
                .collect();
            let sources: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
            let columns: Vec<Vec<i32>> = (0..width)
                .map(|k| {
                    let mut column: Vec<i32> = rows.iter().map(|row| key(row[k])).collect();
                    column.sort_unstable();
                    column
                })
                .collect();
            let mut reductions = vec![(Reduce::Median, None)];
            for f in 0..=(m - 1) / 2 {
                reductions.push((Reduce::Mean(f..m - f), Some(f)));
            }
            for (reduce, f) in reductions {
                let expected: Vec<u32> = columns
                    .iter()
                    .map(|column| match f {
                        None => (median_of_sorted(column) as f32).to_bits(),
                        Some(f) => {
                            let kept = &column[f..m - f];
                            ((sum_values(kept) / kept.len() as f64) as f32).to_bits()
                        }
                    })
                    .collect();
                let mut block = vec![3i32; m * width];
                let mut out = vec![f32::NAN; width + 5];
                load_sorted_group(&mut block, width, &sources, width, &reduce, &mut out);
                let mut portable = vec![f32::NAN; width];
                load_sorted_group_portable::<8>(
                    &mut block,
                    width,
                    &sources,
                    width,
                    &reduce,
                    &mut portable,
                );
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&out[..width]), expected, "m = {m}, {reduce:?}");
                assert_eq!(bits(&portable), expected, "m = {m}, {reduce:?} (portable)");
                assert!(
                    out[width..].iter().all(|x| x.is_nan()),
                    "m = {m}: wrote past width"
                );
                assert!(block.iter().all(|&k| k == 3), "m = {m}: touched the block");
            }
        }
    }
}
