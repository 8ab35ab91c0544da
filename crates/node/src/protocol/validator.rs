//! A validator's work in one round, given the revealed update blobs: decode and check each,
//! aggregate with the task's robust rule, compute `M_{r+1} = M_r + aggregate`, and score every
//! trainer's contribution on the validator's own held-out data. No fetching happens here.

use std::collections::{BTreeMap, BTreeSet};

use cairn_ledger::{Address, Hash};
use cairn_ml::data::{Dataset, DatasetError};
use cairn_ml::model::{Model, ModelError};
use cairn_robust::{aggregate, Context, NonFinitePolicy, Updates};

use super::params::{self, ParamsError};
use super::plan::TaskPlan;

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
    /// This address is not among the task's validators.
    #[error("{0} is not a validator of this task")]
    NotMember(Address),
    /// The held-out slice could not be built.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The held-out slice is empty (more validators than test samples).
    #[error("validator {0}'s held-out slice is empty")]
    EmptySlice(Address),
}

/// One revealed update as the validator holds it.
#[derive(Clone, Copy, Debug)]
pub struct Revealed<'a> {
    /// The trainer.
    pub trainer: Address,
    /// The update hash it revealed.
    pub hash: Hash,
    /// The blob, or `None` when it never arrived (treated as malformed).
    pub blob: Option<&'a [u8]>,
}

/// A decoded, checked update.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedUpdate {
    /// The trainer.
    pub trainer: Address,
    /// Its revealed hash.
    pub hash: Hash,
    /// `Δ`.
    pub values: Vec<f32>,
}

/// How the aggregation went.
#[derive(Clone, Debug, PartialEq)]
pub enum AggregationOutcome {
    /// The rule aggregated this many updates.
    Applied(usize),
    /// No valid update: the model is unchanged.
    NoUpdates,
    /// The rule refused the updates (e.g. too few for its `f`), or the result was not finite:
    /// the model is unchanged. Every honest validator reaches the same outcome.
    Refused(String),
}

/// The next model and the per-update verdicts of one round.
#[derive(Clone, Debug)]
pub struct Aggregated {
    /// `M_{r+1}`'s parameters.
    pub next_params: Vec<f32>,
    /// `M_{r+1}`'s blob.
    pub next_blob: Vec<u8>,
    /// blake3 of the blob: the hash validators attest.
    pub model_hash: Hash,
    /// Valid updates, in ascending trainer order.
    pub updates: Vec<DecodedUpdate>,
    /// Updates left out and why.
    pub excluded: BTreeMap<Address, String>,
    /// What the rule did.
    pub outcome: AggregationOutcome,
}

/// Decodes every revealed update (ascending trainer order), aggregates the valid ones with the
/// plan's pre-aggregation chain and rule, and applies the result to `model`.
pub fn aggregate_round(plan: &TaskPlan, model: &[f32], revealed: &[Revealed<'_>]) -> Aggregated {
    let d = plan.param_count();
    let mut updates = Vec::new();
    let mut excluded = BTreeMap::new();
    for item in revealed {
        let decoded = match item.blob {
            None => Err("the blob never arrived".to_string()),
            Some(blob) => params::decode(blob, d).map_err(|error| error.to_string()),
        };
        match decoded {
            Ok(values) => updates.push(DecodedUpdate {
                trainer: item.trainer,
                hash: item.hash,
                values,
            }),
            Err(reason) => {
                tracing::debug!(trainer = %item.trainer, %reason, "update excluded");
                excluded.insert(item.trainer, reason);
            }
        }
    }
    updates.sort_by_key(|update| update.trainer);
    let (next_params, outcome) = apply(plan, model, &updates);
    let next_blob = params::encode(&next_params);
    Aggregated {
        model_hash: params::blob_hash(&next_blob),
        next_params,
        next_blob,
        updates,
        excluded,
        outcome,
    }
}

fn apply(
    plan: &TaskPlan,
    model: &[f32],
    updates: &[DecodedUpdate],
) -> (Vec<f32>, AggregationOutcome) {
    if updates.is_empty() {
        return (model.to_vec(), AggregationOutcome::NoUpdates);
    }
    let d = model.len();
    let flat: Vec<f32> = updates
        .iter()
        .flat_map(|u| u.values.iter().copied())
        .collect();
    let result = Updates::new(&flat, updates.len(), d).and_then(|matrix| {
        let ctx = Context {
            previous: None,
            non_finite: NonFinitePolicy::Reject,
        };
        aggregate(&plan.rule, &plan.pre, &matrix, &ctx)
    });
    match result {
        Ok(step) => {
            let next: Vec<f32> = model.iter().zip(&step).map(|(m, s)| m + s).collect();
            if next.iter().all(|v| v.is_finite()) {
                (next, AggregationOutcome::Applied(updates.len()))
            } else {
                (
                    model.to_vec(),
                    AggregationOutcome::Refused("the next model is not finite".into()),
                )
            }
        }
        Err(error) => (
            model.to_vec(),
            AggregationOutcome::Refused(error.to_string()),
        ),
    }
}

/// A validator's held-out data: the test samples whose index `j` satisfies
/// `j mod V == i`, with `V` validators and `i` this validator's rank in ascending address order.
pub fn held_out_slice(
    plan: &TaskPlan,
    validators: &[Address],
    validator: &Address,
) -> Result<Dataset, ValidatorError> {
    let rank = validators
        .binary_search(validator)
        .map_err(|_| ValidatorError::NotMember(*validator))?;
    let test = &plan.dataset.split.test;
    let indices: Vec<usize> = (rank..test.len()).step_by(validators.len()).collect();
    if indices.is_empty() {
        return Err(ValidatorError::EmptySlice(*validator));
    }
    Ok(test.subset(&indices)?)
}

/// Contribution scores in ppm for every revealed trainer (excluded ones get 0).
///
/// The raw score of a valid update is its **individual gain** on the held-out data at the
/// weight it carries in a mean of the `n` valid updates, `max(0, L(M_r) − L(M_r + Δ_i / n))`; updates whose hash is in `stale` (revealed in an earlier
/// round, or equal to the last global step) get 0, and so do updates that two or more trainers
/// submitted identically or nearly so (relative distance below [`NEAR_DUPLICATE`]): every
/// trainer's shard and batch order are its own, so independent work never coincides, while
/// colluders (ALIE, IPM, Sybil identities) and copiers submit one crafted vector. Raw scores
/// are normalized to sum to at most 1 000 000 (floored; all 0 when no update helped). Why this
/// and not leave-one-out: `docs/protocol.md`.
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
    let duplicated = duplicated_updates(aggregated);
    // Each update is applied at the weight it would carry in a mean of all valid updates: its
    // share of the step, not a full step of its own (which overshoots once the model is close
    // to a minimum, so that every score would read 0).
    let weight = 1.0 / aggregated.updates.len().max(1) as f32;
    let mut by_hash: BTreeMap<Hash, f64> = BTreeMap::new();
    for update in &aggregated.updates {
        let gain = if stale.contains(&update.hash) || duplicated.contains(&update.hash) {
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

/// Relative L2 distance under which two updates count as the same vector.
pub const NEAR_DUPLICATE: f64 = 1e-3;

/// Hashes of updates that more than one trainer submitted, exactly or within [`NEAR_DUPLICATE`].
fn duplicated_updates(aggregated: &Aggregated) -> BTreeSet<Hash> {
    let mut duplicated = BTreeSet::new();
    let mut first_by_hash: BTreeMap<Hash, usize> = BTreeMap::new();
    for (i, update) in aggregated.updates.iter().enumerate() {
        if first_by_hash.insert(update.hash, i).is_some() {
            duplicated.insert(update.hash);
        }
    }
    let unique: Vec<&DecodedUpdate> = first_by_hash
        .values()
        .map(|&i| &aggregated.updates[i])
        .collect();
    let norms: Vec<f64> = unique
        .iter()
        .map(|u| squared_norm(&u.values).sqrt())
        .collect();
    for a in 0..unique.len() {
        for b in a + 1..unique.len() {
            let scale = norms[a].max(norms[b]);
            if scale == 0.0 {
                duplicated.insert(unique[a].hash);
                duplicated.insert(unique[b].hash);
                continue;
            }
            let distance: f64 = unique[a]
                .values
                .iter()
                .zip(&unique[b].values)
                .map(|(x, y)| {
                    let d = f64::from(*x) - f64::from(*y);
                    d * d
                })
                .sum::<f64>()
                .sqrt();
            if distance < NEAR_DUPLICATE * scale {
                duplicated.insert(unique[a].hash);
                duplicated.insert(unique[b].hash);
            }
        }
    }
    duplicated
}

fn squared_norm(values: &[f32]) -> f64 {
    values.iter().map(|v| f64::from(*v) * f64::from(*v)).sum()
}

/// The global step of the last round, `M_r − M_{r−1}`, as a blob hash: a free rider that
/// replays it is scored 0.
pub fn global_step_hash(current: &[f32], previous: &[f32]) -> Hash {
    let step: Vec<f32> = current.iter().zip(previous).map(|(c, p)| c - p).collect();
    params::blob_hash(&params::encode(&step))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::dataset::DatasetRegistry;
    use crate::protocol::trainer::train_round;
    use cairn_ledger::TaskSpec;

    /// A separable toy task: 4 features, 2 classes (class = whether feature 0 exceeds 0.5).
    fn toy() -> (TaskPlan, TaskSpec) {
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for i in 0..200u32 {
            let x = (i % 20) as f32 / 19.0;
            features.extend([x, 1.0 - x, (i % 7) as f32 / 7.0, 0.5]);
            labels.push(u32::from(x > 0.5));
        }
        let data = Dataset::new(features, labels, 2, (1, 1, 4)).expect("dataset");
        let mut registry = DatasetRegistry::new();
        let hash = registry.insert("toy", &data).expect("insert");
        let spec = TaskSpec {
            model: "logistic:4-2".into(),
            initial_model: [0; 32],
            dataset: hash,
            partition: "iid".into(),
            rounds: 1,
            local_steps: 30,
            optimizer: "sgd:lr=0.5,batch=16".into(),
            robust_rule: "mean".into(),
            commit_window: 1,
            reveal_window: 1,
            attest_window: 1,
            min_stake: 1,
            reward_per_round: 1,
        };
        (TaskPlan::from_spec(&spec, &registry).expect("plan"), spec)
    }

    fn revealed<'a>(trainer: u8, blob: &'a [u8]) -> Revealed<'a> {
        Revealed {
            trainer: Address([trainer; 20]),
            hash: params::blob_hash(blob),
            blob: Some(blob),
        }
    }

    #[test]
    fn honest_updates_outscore_zero_sign_flipped_and_malformed_ones() {
        let (plan, spec) = toy();
        let model = plan.initial_params(&spec).expect("initial model");
        let train = &plan.dataset.split.train;
        let honest = train_round(&plan, train, &model, &[1; 32], &Address([1; 20])).unwrap();
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
        let aggregated = aggregate_round(&plan, &model, &inputs);
        assert_eq!(aggregated.outcome, AggregationOutcome::Applied(3));
        assert!(aggregated.excluded.contains_key(&Address([4; 20])));
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
    fn identical_and_stale_updates_score_zero() {
        let (plan, spec) = toy();
        let model = plan.initial_params(&spec).expect("initial model");
        let train = &plan.dataset.split.train;
        let one = train_round(&plan, train, &model, &[1; 32], &Address([1; 20])).unwrap();
        let two = train_round(&plan, train, &model, &[2; 32], &Address([2; 20])).unwrap();
        let (a, b) = (params::encode(&one.update), params::encode(&two.update));
        let inputs = [revealed(1, &a), revealed(2, &b), revealed(3, &b)];
        let aggregated = aggregate_round(&plan, &model, &inputs);
        let held_out = &plan.dataset.split.test;
        let scores = score_updates(&plan, &model, &aggregated, held_out, &BTreeSet::new()).unwrap();
        assert_eq!(scores[&Address([2; 20])], scores[&Address([3; 20])]);
        assert!(scores.values().map(|s| u64::from(*s)).sum::<u64>() <= u64::from(PPM));
        let stale = BTreeSet::from([params::blob_hash(&a)]);
        let scores = score_updates(&plan, &model, &aggregated, held_out, &stale).unwrap();
        assert_eq!(scores[&Address([1; 20])], 0);
    }

    #[test]
    fn a_round_without_valid_updates_keeps_the_model() {
        let (plan, spec) = toy();
        let model = plan.initial_params(&spec).expect("initial model");
        let missing = Revealed {
            trainer: Address([9; 20]),
            hash: [9; 32],
            blob: None,
        };
        let aggregated = aggregate_round(&plan, &model, &[missing]);
        assert_eq!(aggregated.outcome, AggregationOutcome::NoUpdates);
        assert_eq!(aggregated.next_params, model);
        assert_eq!(
            aggregated.model_hash,
            params::blob_hash(&params::encode(&model))
        );
    }
}
