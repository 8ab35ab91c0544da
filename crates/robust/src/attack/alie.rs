//! A Little Is Enough (Baruch, Baruch & Goldberg, NeurIPS 2019): shift every coordinate of the
//! honest mean by a few standard deviations, little enough to pass as honest.

use super::{moments, AttackError, Honest};

/// The paper's strength `z_max` for `n` updates of which `f` are Byzantine:
/// `s = ⌊n/2 + 1⌋ − f` honest updates must be won over, and
/// `z_max = Φ⁻¹((n − s) / n)`.
///
/// Errors when `f >= n` or when `s <= 0` (the attackers already hold a majority, so the formula
/// gives `z = ∞`: pass a fixed `z` instead).
///
/// ```
/// // n = 50, f = 10: s = 16, z_max = Φ⁻¹(0.68) ≈ 0.4677.
/// let z = cairn_robust::attack::z_max(50, 10).unwrap();
/// assert!((z - 0.467_698_799).abs() < 1e-9);
/// ```
pub fn z_max(n: usize, f: usize) -> Result<f64, AttackError> {
    if f >= n {
        return Err(AttackError::TooManyByzantine { n, f });
    }
    // ⌊n/2 + 1⌋ = n/2 + 1 in integer arithmetic.
    let supporters = (n / 2 + 1) as i128 - f as i128;
    if supporters <= 0 {
        return Err(AttackError::InvalidParameter {
            attack: "alie",
            reason: format!(
                "z_max is infinite for n = {n}, f = {f} (s = ⌊n/2 + 1⌋ − f = {supporters} <= 0); give a fixed z (alie:Z)"
            ),
        });
    }
    let p = (n as f64 - supporters as f64) / n as f64;
    Ok(super::inverse_normal_cdf(p))
}

/// `μ − z σ`, rounded to f32.
pub(crate) fn combine(mean: &[f64], std: &[f64], z: f64) -> Vec<f32> {
    mean.iter()
        .zip(std)
        .map(|(m, s)| (m - z * s) as f32)
        .collect()
}

/// The ALIE vector of strength `z` for these honest updates.
pub(crate) fn vector(honest: &Honest<'_>, z: f64) -> Vec<f32> {
    let (mean, std) = moments::mean_and_std(honest);
    combine(&mean, &std, z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_max_follows_the_paper_formula() {
        // n = 10, f = 2: s = 6 − 2 = 4, p = 0.6.
        assert!((z_max(10, 2).unwrap() - 0.253_347_103_135_799_7).abs() < 1e-12);
        // n = 7, f = 1: s = 4 − 1 = 3, p = 4/7.
        assert!((z_max(7, 1).unwrap() - 0.180_012_369_792_704_96).abs() < 1e-12);
    }

    #[test]
    fn z_max_refuses_a_byzantine_majority() {
        assert!(matches!(
            z_max(10, 6),
            Err(AttackError::InvalidParameter { .. })
        ));
        assert!(matches!(
            z_max(4, 4),
            Err(AttackError::TooManyByzantine { .. })
        ));
    }
}
