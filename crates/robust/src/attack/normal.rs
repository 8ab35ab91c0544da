//! The standard normal distribution: its inverse CDF (for ALIE's `z_max`) and a seeded sampler,
//! both deterministic on every platform (pure-Rust `libm`, no platform math library).

use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

/// Inverse of the standard normal CDF, `Φ⁻¹(p)`: Acklam's rational approximation (relative
/// error below 1.2e-9) refined by one Halley step on `libm::erfc`, accurate to about 1e-15.
///
/// `p <= 0` gives `-∞`, `p >= 1` gives `+∞`, NaN gives NaN.
///
/// ```
/// use cairn_robust::attack::inverse_normal_cdf;
/// assert!((inverse_normal_cdf(0.975) - 1.959963984540054).abs() < 1e-12);
/// assert_eq!(inverse_normal_cdf(0.5), 0.0);
/// ```
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < P_LOW {
        tail((-2.0 * libm::log(p)).sqrt())
    } else if p > 1.0 - P_LOW {
        -tail((-2.0 * libm::log(1.0 - p)).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // One Halley step: e = Φ(x) − p, Φ(x) = erfc(−x/√2)/2.
    let e = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * libm::exp(x * x / 2.0);
    x - u / (1.0 + x * u / 2.0)
}

/// Draws one standard normal value by the Box–Muller transform (cosine branch) from two 53-bit
/// uniforms of `rng`.
pub(crate) fn standard_normal(rng: &mut ChaCha20Rng) -> f64 {
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    // u1 in (0, 1] so the logarithm is finite; u2 in [0, 1).
    let u1 = ((rng.next_u64() >> 11) + 1) as f64 * SCALE;
    let u2 = (rng.next_u64() >> 11) as f64 * SCALE;
    (-2.0 * libm::log(u1)).sqrt() * libm::cos(2.0 * std::f64::consts::PI * u2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_cdf_matches_reference_quantiles() {
        // Reference values from scipy.stats.norm.ppf.
        let cases = [
            (0.68, 0.467_698_799_114_508_4),
            (0.001, -3.090_232_306_167_813_5),
            (0.999_9, 3.719_016_485_455_709),
            (0.3, -0.524_400_512_708_040_9),
            (0.01, -2.326_347_874_040_840_8),
        ];
        for (p, expected) in cases {
            let got = inverse_normal_cdf(p);
            assert!(
                (got - expected).abs() < 1e-12,
                "p = {p}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn inverse_cdf_is_odd_around_one_half() {
        for p in [0.01, 0.1, 0.2, 0.4, 0.49] {
            assert!((inverse_normal_cdf(p) + inverse_normal_cdf(1.0 - p)).abs() < 1e-12);
        }
    }

    #[test]
    fn standard_normal_samples_have_unit_variance() {
        use rand_core::SeedableRng;
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let samples: Vec<f64> = (0..20_000).map(|_| standard_normal(&mut rng)).collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let var =
            samples.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / samples.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }
}
