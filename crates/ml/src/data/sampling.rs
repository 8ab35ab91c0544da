//! Seeded random draws for splits and partitions, bit-identical on every platform.
//!
//! Everything here is built on a ChaCha20 stream and on the pure-Rust `libm` functions, never on
//! the platform's C library, so a seed gives the same draws everywhere. (`rand_distr` uses std's
//! `exp`/`ln`, which call the platform libm; that is why Gamma is implemented here.)

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// ChaCha stream of [`train_test_split`](super::train_test_split).
pub(crate) const STREAM_SPLIT: u64 = 1;
/// ChaCha stream of [`stratified_split`](super::stratified_split).
pub(crate) const STREAM_STRATIFIED: u64 = 2;
/// ChaCha stream of the IID partition.
pub(crate) const STREAM_IID: u64 = 3;
/// ChaCha stream of the Dirichlet label-skew partition.
pub(crate) const STREAM_DIRICHLET: u64 = 4;
/// ChaCha stream of the label-sorted shards partition.
pub(crate) const STREAM_SHARDS: u64 = 5;
/// ChaCha stream of the quantity-skew partitions.
pub(crate) const STREAM_QUANTITY: u64 = 6;

/// The generator for `seed`, on its own `stream` so that different uses of one seed are
/// independent.
pub(crate) fn rng(seed: u64, stream: u64) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A uniform integer in `0..bound` (Lemire's multiply-and-reject, unbiased). `bound` must be > 0.
pub(crate) fn below(rng: &mut ChaCha20Rng, bound: usize) -> usize {
    debug_assert!(bound > 0);
    let n = bound as u64;
    let mut product = u128::from(rng.next_u64()) * u128::from(n);
    if (product as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (product as u64) < threshold {
            product = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (product >> 64) as usize
}

/// Shuffles `items` uniformly (Fisher-Yates, from the last position down).
pub(crate) fn shuffle<T>(rng: &mut ChaCha20Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i + 1);
        items.swap(i, j);
    }
}

/// A uniform f64 in the open interval `(0, 1)`, on a grid of 2^-53.
pub(crate) fn open01(rng: &mut ChaCha20Rng) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// A standard normal draw (Marsaglia's polar method; the second value is discarded).
pub(crate) fn standard_normal(rng: &mut ChaCha20Rng) -> f64 {
    loop {
        let u = 2.0 * open01(rng) - 1.0;
        let v = 2.0 * open01(rng) - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * libm::sqrt(-2.0 * libm::log(s) / s);
        }
    }
}

/// The natural log of a Gamma(`shape`, 1) draw, `shape > 0` (Marsaglia and Tsang, 2000).
///
/// Returned as a log so that tiny shapes, whose draws underflow f64 (`U^(1/shape)` for
/// shape 0.001), still order and normalize correctly.
pub(crate) fn ln_gamma_draw(rng: &mut ChaCha20Rng, shape: f64) -> f64 {
    debug_assert!(shape > 0.0 && shape.is_finite());
    if shape < 1.0 {
        // Gamma(a) = Gamma(a + 1) * U^(1/a).
        let boosted = ln_gamma_draw(rng, shape + 1.0);
        return boosted + libm::log(open01(rng)) / shape;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / libm::sqrt(9.0 * d);
    loop {
        let x = standard_normal(rng);
        let t = 1.0 + c * x;
        if t <= 0.0 {
            continue;
        }
        let v = t * t * t;
        let u = open01(rng);
        let x2 = x * x;
        if u < 1.0 - 0.0331 * x2 * x2 || libm::log(u) < 0.5 * x2 + d * (1.0 - v + libm::log(v)) {
            return libm::log(d * v);
        }
    }
}

/// A draw from the symmetric Dirichlet(`alpha`, ..., `alpha`) over `k` outcomes, `alpha > 0`:
/// independent Gamma(`alpha`) draws normalized to sum to 1 (computed from their logs).
pub(crate) fn dirichlet(rng: &mut ChaCha20Rng, alpha: f64, k: usize) -> Vec<f64> {
    let logs: Vec<f64> = (0..k).map(|_| ln_gamma_draw(rng, alpha)).collect();
    let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = logs.iter().map(|&l| libm::exp(l - max)).collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_hits_every_value() {
        let mut r = rng(7, 0);
        let mut seen = [0usize; 7];
        for _ in 0..7000 {
            seen[below(&mut r, 7)] += 1;
        }
        // Each count is Binomial(7000, 1/7): mean 1000, sd ~29; 150 is over 5 sd.
        assert!(seen.iter().all(|&c| c.abs_diff(1000) < 150), "{seen:?}");
    }

    #[test]
    fn shuffle_is_a_permutation_and_depends_on_the_seed() {
        let mut a: Vec<usize> = (0..100).collect();
        shuffle(&mut rng(1, 0), &mut a);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        let mut b: Vec<usize> = (0..100).collect();
        shuffle(&mut rng(2, 0), &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn streams_of_one_seed_differ() {
        assert_ne!(
            rng(5, STREAM_SPLIT).next_u64(),
            rng(5, STREAM_IID).next_u64()
        );
    }

    #[test]
    fn gamma_draws_have_the_right_mean_and_variance() {
        // Gamma(a, 1) has mean a and variance a; with n = 40000 draws the sample mean has
        // sd sqrt(a / n) and we allow 5 sd. The variance gets a looser 10% bound.
        let n = 40_000;
        for shape in [0.3, 1.0, 2.5, 20.0] {
            let mut r = rng(11, 0);
            let draws: Vec<f64> = (0..n)
                .map(|_| libm::exp(ln_gamma_draw(&mut r, shape)))
                .collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
            let tolerance = 5.0 * (shape / n as f64).sqrt();
            assert!(
                (mean - shape).abs() < tolerance,
                "shape {shape}: mean {mean}"
            );
            assert!(
                (var - shape).abs() < 0.1 * shape,
                "shape {shape}: variance {var}"
            );
        }
    }

    #[test]
    fn dirichlet_sums_to_one_even_for_tiny_alpha() {
        let mut r = rng(3, 0);
        for alpha in [1e-4, 0.1, 1.0, 1000.0] {
            let p = dirichlet(&mut r, alpha, 10);
            assert!(p.iter().all(|&x| (0.0..=1.0).contains(&x)));
            assert!(
                (p.iter().sum::<f64>() - 1.0).abs() < 1e-12,
                "{alpha}: {p:?}"
            );
        }
    }

    #[test]
    fn draws_are_bit_identical_to_the_recorded_ones() {
        // Golden values: any change to the stream, the sampler or libm's results shows up here.
        let mut r = rng(42, STREAM_DIRICHLET);
        let bits: Vec<u64> = (0..3)
            .map(|_| ln_gamma_draw(&mut r, 0.5).to_bits())
            .collect();
        assert_eq!(bits, GOLDEN_LN_GAMMA_BITS);
    }

    const GOLDEN_LN_GAMMA_BITS: [u64; 3] = [
        13832981575664852349,
        13829198192914083559,
        13831786876835184230,
    ];
}
