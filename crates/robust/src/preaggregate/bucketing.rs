//! Bucketing (Karimireddy, He, Jaggi 2022; ByzFL `Bucketing`).
//!
//! `Bucketing_s(x_1..x_n) = (b_1..b_⌈n/s⌉)`, `b_k = mean of x_{π(j)}` for
//! `j ∈ [(k−1)s + 1, min(ks, n)]`, `π` a uniform permutation drawn by Fisher–Yates from
//! `ChaCha20Rng::seed_from_u64(seed)` (bounded draws by rejection, so unbiased); the last bucket
//! may be shorter. Sums in `f64` in permutation order. Permutation-invariant only in law: with a
//! fixed seed, reordering the inputs changes which updates share a bucket.
//! Memory: the `⌈n/s⌉ × d` output plus `O(n)`.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;

use crate::updates::{Matrix, Updates};

/// Uniform integer in `0..=bound` by rejection sampling on 64-bit draws.
fn uniform_up_to(rng: &mut ChaCha20Rng, bound: u64) -> u64 {
    let range = bound + 1;
    if range == 0 {
        return rng.next_u64();
    }
    let zone = u64::MAX - (u64::MAX - range + 1) % range;
    loop {
        let draw = rng.next_u64();
        if draw <= zone {
            return draw % range;
        }
    }
}

/// The seeded permutation of `0..n` used by bucketing.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = uniform_up_to(&mut rng, i as u64) as usize;
        order.swap(i, j);
    }
    order
}

/// Shuffles with `seed`, then averages consecutive buckets of `bucket_size` updates.
pub(crate) fn bucket_means(updates: &Updates<'_>, bucket_size: usize, seed: u64) -> Matrix {
    let n = updates.n();
    let d = updates.d();
    let order = permutation(n, seed);
    let buckets: Vec<&[usize]> = order.chunks(bucket_size).collect();
    let mut data = vec![0.0f32; buckets.len() * d];
    data.par_chunks_mut(d)
        .zip(&buckets)
        .for_each(|(out, members)| {
            let mut sums = vec![0.0f64; d];
            for &i in members.iter() {
                for (sum, &x) in sums.iter_mut().zip(updates.row(i)) {
                    *sum += f64::from(x);
                }
            }
            let count = members.len() as f64;
            for (slot, sum) in out.iter_mut().zip(sums) {
                *slot = (sum / count) as f32;
            }
        });
    Matrix {
        data,
        n: buckets.len(),
        d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_a_seeded_permutation() {
        let a = permutation(50, 7);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(a, permutation(50, 7));
        assert_ne!(a, permutation(50, 8));
    }

    #[test]
    fn buckets_average_their_members_and_keep_the_total() {
        let data: Vec<f32> = (0..5).map(|i| i as f32).collect();
        let updates = Updates::new(&data, 5, 1).unwrap();
        let out = bucket_means(&updates, 2, 3);
        assert_eq!(out.n, 3);
        let order = permutation(5, 3);
        assert_eq!(out.data[0], (order[0] + order[1]) as f32 / 2.0);
        assert_eq!(out.data[2], order[4] as f32);
    }
}
