//! The aggregation rules, one module per rule. Each module states its formula, its requirement
//! on `n` and its extra memory; [`apply`] dispatches a checked [`Rule`] to them.

mod bulyan;
mod centered_clipping;
mod geometric_median;
pub(crate) mod krum;
mod mda;
mod meamed;
mod mean;
pub(crate) mod median;
mod monna;
pub(crate) mod trimmed_mean;

pub use mda::MAX_SUBSETS as MDA_MAX_SUBSETS;

use crate::{RobustError, Rule, Updates};

/// Runs `rule` on finite `updates` whose count already meets the rule's requirement.
pub(crate) fn apply(
    rule: &Rule,
    updates: &Updates<'_>,
    previous: Option<&[f32]>,
) -> Result<Vec<f32>, RobustError> {
    let output = match rule {
        Rule::Mean => mean::mean(updates),
        Rule::WeightedMean { weights } => mean::weighted_mean(updates, weights),
        Rule::Median => median::median(updates),
        Rule::TrimmedMean { f } => trimmed_mean::trimmed_mean(updates, *f),
        Rule::Krum { f, variant } => krum::krum(updates, *f, *variant)?,
        Rule::MultiKrum { f, m, variant } => {
            krum::multi_krum(updates, *f, krum::selected(updates.n(), *f, *m), *variant)?
        }
        Rule::Bulyan { f } => bulyan::bulyan(updates, *f)?,
        Rule::GeometricMedian {
            nu,
            iterations,
            init,
        } => geometric_median::geometric_median(updates, *nu, *iterations, *init),
        Rule::CenteredClipping { tau, iterations } => {
            centered_clipping::centered_clipping(updates, *tau, *iterations, previous)
        }
        Rule::Mda { f } => mda::mda(updates, *f)?,
        Rule::Monna { f, reference } => monna::monna(updates, *f, *reference),
        Rule::Meamed { f } => meamed::meamed(updates, *f),
    };
    Ok(output)
}

#[cfg(test)]
pub(crate) mod fixture {
    //! Small hand-checkable inputs shared by the rules' unit tests.

    use crate::Updates;

    /// ByzFL's documentation example: rows `[1, 2, 3]`, `[4, 5, 6]`, `[7, 8, 9]`.
    pub(crate) const BYZFL_3X3: [f32; 9] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];

    /// Views `data` as `n` rows.
    pub(crate) fn rows(data: &[f32], n: usize) -> Updates<'_> {
        Updates::new(data, n, data.len() / n).unwrap()
    }

    /// Asserts two vectors agree within `tolerance` per coordinate.
    pub(crate) fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32) {
        assert_eq!(actual.len(), expected.len());
        for (k, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() <= tolerance, "coordinate {k}: {a} vs {e}");
        }
    }
}
