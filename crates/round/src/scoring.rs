//! Contribution scores: each validator scores every revealed update by its gain on the
//! task's held-out test split (`docs/protocol.md` says why this and not
//! leave-one-out).

use std::collections::{BTreeMap, BTreeSet};

use cairn_ml::data::{Dataset, DatasetError};
use cairn_ml::model::{Model, ModelError};

use crate::address::Address;
use crate::aggregation::Aggregated;
use crate::encoding::Hash;
use crate::params::{self, ParamsError};
use crate::plan::TaskPlan;

/// Samples per forward pass when scoring.
const EVALUATION_BATCH: usize = 256;
/// Parts per million: the unit of scores on the ledger.
pub const PPM: u32 = 1_000_000;

/// Why a validator could not evaluate a round at all (a bad update only excludes that update).
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    /// The input model blob is malformed.
    #[error("the round's input model blob is invalid: {0}")]
    Model(#[from] ParamsError),
    /// The model does not fit the held-out data.
    #[error(transparent)]
    Evaluation(#[from] ModelError),

    /// The held-out data could not be built.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The task's test split is empty: there is nothing to score on.
    #[error("the task's test split is empty; nothing to score updates on")]
    EmptyTestSplit,
}

/// The held-out data every validator scores on: the task's whole test split.
///
/// All validators score on the same samples, so honest validators' scores are bit-identical
/// (scoring is deterministic) and the ledger's consensus needs no tolerance for honest noise: a
/// validator that does not evaluate (copying last round's consensus, guessing, scoring 0)
/// stands out against the exact median and loses its agreement (`cairn_ledger::reward`).
/// Per-validator slices (`j mod V`) made honest scores differ by slice noise, and a copier of
/// last round's consensus then agreed with the median better than the honest validators did.
pub fn held_out(plan: &TaskPlan) -> Result<Dataset, ValidatorError> {
    let test = &plan.dataset.split.test;
    if test.is_empty() {
        return Err(ValidatorError::EmptyTestSplit);
    }
    Ok(test.clone())
}

/// How many held-out evaluations [`score_updates`] runs: the input model's, and one per
/// distinct update not in `stale` (a duplicated update is evaluated once). A measure of a
/// validator's scoring cost.
pub fn evaluations(aggregated: &Aggregated, stale: &BTreeSet<Hash>) -> u64 {
    let distinct: BTreeSet<&Hash> = aggregated
        .updates
        .iter()
        .map(|update| &update.hash)
        .filter(|hash| !stale.contains(*hash))
        .collect();
    1 + distinct.len() as u64
}

/// Contribution scores in ppm for every revealed trainer (excluded ones get 0).
///
/// The raw score of a valid update is its **individual gain** on the held-out data at the
/// weight it carries in a mean of the `n` valid updates, `max(0, L(M_r) − L(M_r + Δ_i / n))`;
/// updates whose hash is in `stale` (revealed in an earlier round, or equal to the last global
/// step) get 0. Raw scores are normalized to sum to at most 1 000 000 (floored; all 0 when no
/// update helped). Why this and not leave-one-out: `docs/protocol.md`.
///
/// Identical updates are scored like any other: an update that is not its sender's own work
/// (a copy, a colluder's crafted vector, a Sybil's) is caught by audits, and the ledger audits
/// every update whose hash another trainer also revealed (`crate::audit`), so a copier cannot
/// zero its victim's score by copying it.
pub fn score_updates(
    plan: &TaskPlan,
    model: &[f32],
    aggregated: &Aggregated,
    held_out: &Dataset,
    stale: &BTreeSet<Hash>,
) -> Result<BTreeMap<Address, u32>, ValidatorError> {
    let base = Model::new(plan.model.clone(), model.to_vec())?;
    let base_loss = f64::from(base.evaluate(held_out, EVALUATION_BATCH)?.loss);
    let mut gains: BTreeMap<Address, f64> = BTreeMap::new();
    // Each update is applied at the weight it would carry in a mean of all valid updates: its
    // share of the step, not a full step of its own (which overshoots once the model is close
    // to a minimum, so that every score would read 0).
    let weight = 1.0 / aggregated.updates.len().max(1) as f32;
    let mut by_hash: BTreeMap<Hash, f64> = BTreeMap::new();
    for update in &aggregated.updates {
        let gain = if stale.contains(&update.hash) {
            0.0
        } else if let Some(gain) = by_hash.get(&update.hash) {
            *gain
        } else {
            let candidate: Vec<f32> = model
                .iter()
                .zip(&update.values)
                .map(|(m, u)| m + u * weight)
                .collect();
            let gain = match Model::new(plan.model.clone(), candidate) {
                Ok(next) => base_loss - f64::from(next.evaluate(held_out, EVALUATION_BATCH)?.loss),
                Err(_) => 0.0,
            };
            let gain = if gain.is_finite() { gain.max(0.0) } else { 0.0 };
            by_hash.insert(update.hash, gain);
            gain
        };
        gains.insert(update.trainer, gain);
    }
    let total: f64 = gains.values().sum();
    let mut scores: BTreeMap<Address, u32> = aggregated.excluded.keys().map(|t| (*t, 0)).collect();
    for (trainer, gain) in gains {
        let share = if total > 0.0 {
            ((gain / total) * f64::from(PPM))
                .floor()
                .min(f64::from(PPM)) as u32
        } else {
            0
        };
        scores.insert(trainer, share);
    }
    Ok(scores)
}

/// The global step of the last round, `M_r − M_{r−1}`, as a blob hash: a free rider that
/// replays it is scored 0.
pub fn global_step_hash(current: &[f32], previous: &[f32]) -> Hash {
    let step: Vec<f32> = current.iter().zip(previous).map(|(c, p)| c - p).collect();
    params::hash(&step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregation::{aggregate_round, Revealed};
    use crate::fixtures;

    fn revealed(trainer: u8, blob: &[u8]) -> Revealed<'_> {
        Revealed {
            trainer: Address([trainer; 20]),
            hash: params::blob_hash(blob),
            blob: Some(blob),
        }
    }

    #[test]
    fn honest_updates_outscore_zero_sign_flipped_and_malformed_ones() {
        let plan = fixtures::toy_plan("sgd:lr=0.5,batch=16", 30, 5);
        let model = fixtures::initial(&plan);
        let honest = fixtures::assignment(&plan, 1, [1; 32]).train().unwrap();
        let flipped: Vec<f32> = honest.update.iter().map(|v| -v).collect();
        let blobs = [
            params::encode(&honest.update),
            params::encode(&vec![0.0; model.len()]),
            params::encode(&flipped),
            b"not a parameter blob".to_vec(),
        ];
        let inputs: Vec<Revealed<'_>> = blobs
            .iter()
            .enumerate()
            .map(|(i, blob)| revealed(i as u8 + 1, blob))
            .collect();
        let aggregated = aggregate_round(&plan, &model, None, &inputs);
        let held_out = &plan.dataset.split.test;
        let scores = score_updates(&plan, &model, &aggregated, held_out, &BTreeSet::new()).unwrap();
        assert_eq!(
            scores[&Address([1; 20])],
            PPM,
            "the only helpful update takes everything"
        );
        for trainer in 2..=4u8 {
            assert_eq!(scores[&Address([trainer; 20])], 0, "trainer {trainer}");
        }
    }

    #[test]
    fn a_copy_scores_like_its_original_and_a_stale_update_scores_zero() {
        let plan = fixtures::toy_plan("sgd:lr=0.5,batch=16", 30, 5);
        let model = fixtures::initial(&plan);
        let one = fixtures::assignment(&plan, 1, [1; 32]).train().unwrap();
        let two = fixtures::assignment(&plan, 2, [2; 32]).train().unwrap();
        let (a, b) = (params::encode(&one.update), params::encode(&two.update));
        let inputs = [revealed(1, &a), revealed(2, &b), revealed(3, &b)];
        let aggregated = aggregate_round(&plan, &model, None, &inputs);
        let held_out = &plan.dataset.split.test;
        let scores = score_updates(&plan, &model, &aggregated, held_out, &BTreeSet::new()).unwrap();
        assert_eq!(scores[&Address([2; 20])], scores[&Address([3; 20])]);
        assert!(
            scores[&Address([2; 20])] > 0,
            "copying does not zero the original"
        );
        assert!(scores.values().map(|s| u64::from(*s)).sum::<u64>() <= u64::from(PPM));
        let stale = BTreeSet::from([params::blob_hash(&a)]);
        let scores = score_updates(&plan, &model, &aggregated, held_out, &stale).unwrap();
        assert_eq!(scores[&Address([1; 20])], 0);
        assert_eq!(
            global_step_hash(&one.update, &vec![0.0; model.len()]),
            params::blob_hash(&a)
        );
    }
}
