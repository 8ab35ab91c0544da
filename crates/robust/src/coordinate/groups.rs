//! The first four stages of Batcher's sort done in registers: every aligned group of
//! [`GROUP`] rows is sorted per lane while it sits in vector registers, so its 63 compare-exchanges
//! cost 16 loads and 16 stores instead of 252 memory accesses.
//!
//! Batcher's odd–even merge sort leaves each aligned group of 16 inputs sorted after its stages
//! `p = 1, 2, 4, 8`, and the sorted order of a group is unique, so sorting the groups in any way
//! and then running the network's later stages ([`super::merge_network`]) gives exactly the
//! network's output.

use super::COLUMNS;

/// Rows per group sorted in registers.
pub(super) const GROUP: usize = 16;

/// Sorts, for every lane `k` in `offset..offset + COLUMNS`, each aligned group of 16 of the keys
/// `block[r * stride + k]`, `r < m` (the last group may be shorter).
pub(super) fn sort_groups(block: &mut [i32], stride: usize, offset: usize, m: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            unsafe { sort_groups_avx512(block, stride, offset, m) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { sort_groups_avx2(block, stride, offset, m) };
            return;
        }
    }
    sort_groups_portable::<8>(block, stride, offset, m);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sort_groups_avx512(block: &mut [i32], stride: usize, offset: usize, m: usize) {
    // One 512-bit register per row: the 16 rows fill half of the 32 registers.
    sort_groups_portable::<16>(block, stride, offset, m);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sort_groups_avx2(block: &mut [i32], stride: usize, offset: usize, m: usize) {
    // One 256-bit register per row: the 16 rows fill the 16 registers.
    sort_groups_portable::<8>(block, stride, offset, m);
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
            sort16(&mut v);
            for (r, row) in v.iter().enumerate().take(rows) {
                let start = (base + r) * stride + lane;
                block[start..start + LANES].copy_from_slice(row);
            }
        }
        base += GROUP;
    }
}

/// Compare-exchanges rows `a < b` of `v` in every lane.
// Indexing both rows by lane keeps them in registers once `a` and `b` are constants.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn exchange<const LANES: usize>(v: &mut [[i32; LANES]; GROUP], a: usize, b: usize) {
    for k in 0..LANES {
        let (x, y) = (v[a][k], v[b][k]);
        v[a][k] = x.min(y);
        v[b][k] = x.max(y);
    }
}

macro_rules! exchanges {
    ($v:ident: $(($a:literal, $b:literal)),* $(,)?) => {
        $( exchange($v, $a, $b); )*
    };
}

/// Batcher's odd–even merge sort for 16 inputs (63 comparators), unrolled so that the rows stay
/// in registers.
#[inline(always)]
fn sort16<const LANES: usize>(v: &mut [[i32; LANES]; GROUP]) {
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

    #[test]
    fn every_group_of_sixteen_rows_is_sorted_per_lane_and_rows_beyond_m_are_untouched() {
        let mut state = 4242u64;
        for m in [1, 2, 5, 16, 17, 31, 40, 70] {
            let stride = COLUMNS + 16;
            let mut block = vec![0i32; (m + 1) * stride];
            for slot in block.iter_mut() {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *slot = (state >> 32) as i32;
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
}
