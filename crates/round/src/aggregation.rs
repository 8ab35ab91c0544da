//! A validator's aggregation of one round, given the revealed update blobs: decode and check
//! each, aggregate the valid ones with the task's robust rule, and compute
//! `M_{r+1} = M_r + aggregate (+ β (M_r − M_{r−1}) with server momentum)`. Deterministic:
//! every honest validator (and `cairn replay`) reaches the same model hash from the same blobs
//! and the two input models the ledger names.

use std::collections::BTreeMap;

use std::sync::Arc;

use cairn_ml::data::Dataset;
use cairn_ml::model::Model;
use cairn_ml::train::StepBuffers;
use cairn_robust::{aggregate, Context, NonFinitePolicy, Updates};

use crate::address::Address;
use crate::encoding::{first_u64, Hash};
use crate::params;
use crate::plan::TaskPlan;
use crate::training::{LocalRun, Shard};

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

impl<'a> Revealed<'a> {
    /// Every `(trainer, blob)` as a revealed update named by its blob's hash (a party that
    /// holds the blobs themselves: a simulation, a demo, `cairn replay`).
    pub fn all(blobs: &'a [(Address, Vec<u8>)]) -> Vec<Revealed<'a>> {
        blobs
            .iter()
            .map(|(trainer, blob)| Revealed {
                trainer: *trainer,
                hash: params::blob_hash(blob),
                blob: Some(blob),
            })
            .collect()
    }
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
    /// Valid updates the held-out guard (`+screen:K`) kept out of the rule this round,
    /// ascending (empty when it kept every update). They stay in `updates`: they are scored
    /// like every valid update, so a screened honest trainer is still paid for the gain it
    /// measures.
    pub screened: Vec<Address>,
    /// What the rule did.
    pub outcome: AggregationOutcome,
}

/// Decodes every revealed update (ascending trainer order), aggregates the valid ones with the
/// plan's pre-aggregation chain and rule, and applies the result to `model` with the plan's
/// server step ([`server_step`]). `previous` is `M_{r−1}` (`None` in round 0): centered
/// clipping starts from the last global step `M_r − M_{r−1}`, and server momentum adds it.
///
/// With the plan's held-out guard (`+screen:K`) the validator also trains a reference step on
/// a fixed, public part of the train split ([`reference_step`], [`screening_set`]), screens
/// out at most `K` updates pointing against it ([`screen`]), and keeps the screen only when
/// the rule's result on the kept updates has the lower loss on that set; `docs/robustness.md`
/// has the measurements.
pub fn aggregate_round(
    plan: &TaskPlan,
    model: &[f32],
    previous: Option<&[f32]>,
    revealed: &[Revealed<'_>],
) -> Aggregated {
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
    let (next_params, outcome, screened) = guarded(plan, model, previous, &updates);
    let next_blob = params::encode(&next_params);
    Aggregated {
        model_hash: params::blob_hash(&next_blob),
        next_params,
        next_blob,
        updates,
        excluded,
        screened,
        outcome,
    }
}

/// Samples of the screening set (at most; fewer when the train split is smaller).
pub const SCREEN_SAMPLES: usize = 512;
/// Samples per forward pass on the screening set.
const SCREEN_BATCH: usize = 256;
/// Domain tag of the reference run's batch seed.
const REFERENCE_DOMAIN: &[u8] = b"cairn/screen-reference/v1";

/// The rule with the task's held-out guard (`+screen:K`), or the rule alone without one.
///
/// The guard (after FLTrust, Cao et al. 2021, and Zeno, Xie, Koyejo and Gupta 2019): every
/// validator computes a **reference step** ([`reference_step`]: the task's own local run from
/// `M_r` on the [`screening_set`], a fixed part of the public train split), then
/// 1. **screens**: of the valid updates whose cosine with the reference is negative, the `K`
///    lowest (ties by address) are candidates to leave out ([`screen`]);
/// 2. **selects**: when any update is screened, the rule runs twice, on every valid update
///    and on those kept, and the next model is the candidate with the lower loss on the
///    screening set (the unscreened one on a tie).
///
/// Why both: under label skew, no rule that sees only the vectors tells `f` crafted vectors
/// pushing against the honest mean from honest trainers who disagree (the `f/n · ζ²` floor,
/// `docs/robustness.md`); a validator holding data of every class can. But an honest trainer
/// with two classes also points away from a class-balanced reference, and screening such
/// trainers round after round starves their classes (mimicry then took 16-21 points on
/// two-class shards, measured); the selection keeps the screen only in rounds where it helps on data of every
/// class. Everything is deterministic (bit-exact training and evaluation, a seed from `M_r`'s
/// hash), so every validator and `cairn replay` reach the same model. The guard never reads
/// the test split, on which updates are scored and accuracy is reported.
///
/// Returns the next parameters, the outcome and the updates the chosen candidate left out.
fn guarded(
    plan: &TaskPlan,
    model: &[f32],
    previous: Option<&[f32]>,
    updates: &[DecodedUpdate],
) -> (Vec<f32>, AggregationOutcome, Vec<Address>) {
    let (all_params, all_outcome) = apply(plan, model, previous, updates);
    if plan.screen == 0 || updates.is_empty() {
        return (all_params, all_outcome, Vec::new());
    }
    let data = screening_set(plan);
    let screened = match reference_step(plan, model, &data) {
        Some(reference) => screen(plan.screen, &reference, updates),
        None => Vec::new(),
    };
    if screened.is_empty() || screened.len() == updates.len() {
        return (all_params, all_outcome, Vec::new());
    }
    let kept: Vec<DecodedUpdate> = updates
        .iter()
        .filter(|update| screened.binary_search(&update.trainer).is_err())
        .cloned()
        .collect();
    let (kept_params, kept_outcome) = apply(plan, model, previous, &kept);
    let applied = |outcome: &AggregationOutcome| matches!(outcome, AggregationOutcome::Applied(_));
    let choose_kept = match (applied(&all_outcome), applied(&kept_outcome)) {
        (_, false) => false,
        (false, true) => true,
        (true, true) => loss_on(plan, &kept_params, &data) < loss_on(plan, &all_params, &data),
    };
    tracing::debug!(
        screened = screened.len(),
        kept = choose_kept,
        "held-out guard"
    );
    if choose_kept {
        (kept_params, kept_outcome, screened)
    } else {
        (all_params, all_outcome, Vec::new())
    }
}

/// The loss of `params` on `data`; `+∞` when it cannot be evaluated or is not finite.
fn loss_on(plan: &TaskPlan, params: &[f32], data: &Dataset) -> f64 {
    Model::new(plan.model.clone(), params.to_vec())
        .and_then(|model| model.evaluate(data, SCREEN_BATCH))
        .map(|evaluation| f64::from(evaluation.loss))
        .ok()
        .filter(|loss| loss.is_finite())
        .unwrap_or(f64::INFINITY)
}

/// The screen of the held-out guard (`+screen:K`, see [`aggregate_round`]): among the updates whose cosine with `reference` is negative (or
/// not finite), the `k` lowest, ties broken by trainer address; ascending by address.
pub fn screen(k: usize, reference: &[f32], updates: &[DecodedUpdate]) -> Vec<Address> {
    let norm = |values: &[f32]| -> f64 {
        values
            .iter()
            .map(|v| f64::from(*v) * f64::from(*v))
            .sum::<f64>()
            .sqrt()
    };
    let reference_norm = norm(reference);
    let mut ranked: Vec<(f64, Address)> = updates
        .iter()
        .map(|update| {
            let dot: f64 = update
                .values
                .iter()
                .zip(reference)
                .map(|(u, r)| f64::from(*u) * f64::from(*r))
                .sum();
            let cosine = dot / (norm(&update.values) * reference_norm);
            let cosine = if cosine.is_finite() {
                cosine
            } else {
                f64::NEG_INFINITY
            };
            (cosine, update.trainer)
        })
        .filter(|(cosine, _)| *cosine < 0.0)
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut screened: Vec<Address> = ranked.iter().take(k).map(|(_, trainer)| *trainer).collect();
    screened.sort();
    screened
}

/// The guard's reference step `M' − M_r`: the task's local run (its optimizer, batch size
/// and local steps) from `model` on `data`, with a batch order seeded by `model`'s hash.
/// `None` when the run fails (every validator fails alike: the round is not screened).
pub fn reference_step(plan: &TaskPlan, model: &[f32], data: &Dataset) -> Option<Vec<f32>> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(REFERENCE_DOMAIN);
    hasher.update(&params::hash(model));
    let run = LocalRun {
        plan: Arc::new(plan.clone()),
        shard: Arc::new(Shard {
            indices: (0..data.len()).collect(),
            data: data.clone(),
        }),
        seed: first_u64(hasher.finalize().as_bytes()),
    };
    let mut state = run.initial_state(model.to_vec()).ok()?;
    let mut buffers = StepBuffers::new(&state.model);
    while state.step < run.steps() {
        run.advance(&mut state, &mut buffers).ok()?;
    }
    Some(
        state
            .model
            .params()
            .iter()
            .zip(model)
            .map(|(trained, start)| trained - start)
            .collect(),
    )
}

/// The guard's screening set: [`SCREEN_SAMPLES`] samples of the task's train split at an
/// even stride (the whole split when it is smaller). The train split is public on a
/// public-data task and is what trainers' shards are cut from, so the set holds every class
/// in the split's proportions.
pub fn screening_set(plan: &TaskPlan) -> Dataset {
    let train = &plan.dataset.split.train;
    let len = train.len();
    if len <= SCREEN_SAMPLES {
        return train.clone();
    }
    let indices: Vec<usize> = (0..SCREEN_SAMPLES)
        .map(|i| i * len / SCREEN_SAMPLES)
        .collect();
    // Every index is below `len`: the subset cannot fail, and the whole split stands in if
    // it ever did.
    train.subset(&indices).unwrap_or_else(|_| train.clone())
}

fn apply(
    plan: &TaskPlan,
    model: &[f32],
    previous: Option<&[f32]>,
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
    let reference = last_step(model, previous);
    let result = Updates::new(&flat, updates.len(), d).and_then(|matrix| {
        let ctx = Context {
            previous: reference.as_deref(),
            non_finite: NonFinitePolicy::Reject,
        };
        aggregate(&plan.rule, &plan.pre, &matrix, &ctx)
    });
    match result {
        Ok(step) => {
            let next = server_step(model, previous, &step, plan.server_momentum);
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

/// The server's step with heavy-ball momentum (Polyak): `M_{r+1} = M_r + a + β (M_r − M_{r−1})`,
/// element by element, where `a` is the robust aggregate. The momentum state is the last step
/// taken, `M_r − M_{r−1}`, which every validator recomputes from the two models the ledger
/// names, so the task carries no hidden state and `cairn replay` needs nothing more. `β = 0` or
/// no `M_{r−1}` (round 0) is the plain step `M_r + a`.
pub fn server_step(
    model: &[f32],
    previous: Option<&[f32]>,
    aggregate: &[f32],
    beta: f32,
) -> Vec<f32> {
    match previous {
        Some(previous) if beta != 0.0 && previous.len() == model.len() => model
            .iter()
            .zip(previous)
            .zip(aggregate)
            .map(|((m, p), a)| m + a + beta * (m - p))
            .collect(),
        _ => model.iter().zip(aggregate).map(|(m, a)| m + a).collect(),
    }
}

/// The last global step `M_r − M_{r−1}` (the reference centered clipping starts from), or
/// `None` in round 0 or when the lengths differ.
pub fn last_step(model: &[f32], previous: Option<&[f32]>) -> Option<Vec<f32>> {
    let previous = previous.filter(|p| p.len() == model.len())?;
    Some(model.iter().zip(previous).map(|(m, p)| m - p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn plan_with_rule(rule: &str) -> TaskPlan {
        let (registry, hash) = fixtures::registry();
        let mut spec = fixtures::spec(hash, "logistic:4-2", "sgd:lr=0.5,batch=16", 10, 5);
        spec.robust_rule = rule.into();
        crate::plan::seal_initial_model(&mut spec, &registry).expect("initial model");
        TaskPlan::from_spec(&spec, &registry).expect("plan")
    }

    /// Blobs of `[i; 20]` sending `scale × reference`, one per scale.
    fn scaled(reference: &[f32], scales: &[f32]) -> Vec<(Address, Vec<u8>)> {
        scales
            .iter()
            .enumerate()
            .map(|(i, scale)| {
                let values: Vec<f32> = reference.iter().map(|r| r * scale).collect();
                (Address([i as u8 + 1; 20]), params::encode(&values))
            })
            .collect()
    }

    #[test]
    fn the_guard_leaves_out_updates_against_the_reference_when_that_lowers_the_loss() {
        let plan = plan_with_rule("mean+screen:2");
        let model = fixtures::initial(&plan);
        let data = screening_set(&plan);
        assert_eq!(
            data.len(),
            160,
            "the toy train split is smaller than the set"
        );
        let reference = reference_step(&plan, &model, &data).expect("reference");
        assert!(reference.iter().any(|r| *r != 0.0));
        // Four honest trainers roughly along the reference, two sending −3 × it.
        let blobs = scaled(&reference, &[1.0, 0.9, 1.1, 1.2, -3.0, -3.0]);
        let attackers = vec![Address([5; 20]), Address([6; 20])];
        let guarded = aggregate_round(&plan, &model, None, &Revealed::all(&blobs));
        assert_eq!(guarded.screened, attackers);
        assert_eq!(guarded.outcome, AggregationOutcome::Applied(4));
        // Screened updates stay among the valid ones (they are scored), not the excluded.
        assert_eq!(guarded.updates.len(), 6);
        assert!(guarded.excluded.is_empty());
        // The next model is the rule on the four honest updates alone.
        let honest = aggregate_round(
            &plan_with_rule("mean"),
            &model,
            None,
            &Revealed::all(&blobs[..4]),
        );
        assert_eq!(guarded.next_params, honest.next_params);
        assert!(loss_on(&plan, &guarded.next_params, &data) < loss_on(&plan, &model, &data));
        // Deterministic: the same inputs give the same model hash.
        let again = aggregate_round(&plan, &model, None, &Revealed::all(&blobs));
        assert_eq!(again.model_hash, guarded.model_hash);
        // At most K are screened: of three attackers (all at cosine −1), two go.
        let blobs = scaled(&reference, &[1.0, 0.9, 1.1, 1.2, -3.0, -2.0, -1.0]);
        let three = aggregate_round(&plan, &model, None, &Revealed::all(&blobs));
        assert_eq!(three.screened.len(), 2);
        assert!(three.screened.iter().all(|t| t.0[0] >= 5));
    }

    #[test]
    fn without_updates_against_the_reference_the_guard_changes_nothing() {
        let plan = plan_with_rule("mean+screen:2");
        let model = fixtures::initial(&plan);
        let reference = reference_step(&plan, &model, &screening_set(&plan)).expect("reference");
        let blobs = scaled(&reference, &[1.0, 0.5, 2.0]);
        let guarded = aggregate_round(&plan, &model, None, &Revealed::all(&blobs));
        let plain = aggregate_round(
            &plan_with_rule("mean"),
            &model,
            None,
            &Revealed::all(&blobs),
        );
        assert!(guarded.screened.is_empty());
        assert_eq!(guarded.model_hash, plain.model_hash);
        assert_eq!(guarded.outcome, AggregationOutcome::Applied(3));
    }

    #[test]
    fn the_guard_keeps_every_update_when_the_screened_rule_refuses_or_nothing_is_left() {
        // trimmed_mean:1 needs more than 2 updates: screening 2 of 4 leaves it refusing, so
        // the rule runs on all four.
        let plan = plan_with_rule("trimmed_mean:1+screen:2");
        let model = fixtures::initial(&plan);
        let reference = reference_step(&plan, &model, &screening_set(&plan)).expect("reference");
        let blobs = scaled(&reference, &[1.0, 1.1, -1.0, -1.0]);
        let guarded = aggregate_round(&plan, &model, None, &Revealed::all(&blobs));
        assert!(guarded.screened.is_empty());
        assert_eq!(guarded.outcome, AggregationOutcome::Applied(4));
        // Every update against the reference: nothing would be left, so none is screened.
        let plan = plan_with_rule("mean+screen:5");
        let blobs = scaled(&reference, &[-1.0, -2.0]);
        let guarded = aggregate_round(&plan, &model, None, &Revealed::all(&blobs));
        assert!(guarded.screened.is_empty());
        assert_eq!(guarded.outcome, AggregationOutcome::Applied(2));
        // A non-finite cosine (an all-zero update) ranks lowest.
        let zero = DecodedUpdate {
            trainer: Address([9; 20]),
            hash: [0; 32],
            values: vec![0.0; reference.len()],
        };
        let along = DecodedUpdate {
            trainer: Address([1; 20]),
            hash: [1; 32],
            values: reference.clone(),
        };
        assert_eq!(
            screen(1, &reference, &[along, zero]),
            vec![Address([9; 20])]
        );
    }

    #[test]
    fn a_round_without_valid_updates_keeps_the_model() {
        let plan = fixtures::toy_plan("sgd:lr=0.5,batch=16", 30, 5);
        let model = fixtures::initial(&plan);
        let missing = Revealed {
            trainer: Address([9; 20]),
            hash: [9; 32],
            blob: None,
        };
        let aggregated = aggregate_round(&plan, &model, None, &[missing]);
        assert_eq!(aggregated.outcome, AggregationOutcome::NoUpdates);
        assert_eq!(aggregated.next_params, model);
        assert_eq!(aggregated.model_hash, params::hash(&model));
        assert!(aggregated.excluded.contains_key(&Address([9; 20])));
    }

    #[test]
    fn the_server_step_adds_heavy_ball_momentum_from_the_last_two_models() {
        let model = [1.0f32, 2.0, -1.0];
        let previous = [0.5f32, 2.5, -1.0];
        let aggregate = [0.25f32, 0.25, 1.0];
        // Round 0 or β = 0: the plain step.
        assert_eq!(
            server_step(&model, None, &aggregate, 0.9),
            vec![1.25, 2.25, 0.0]
        );
        assert_eq!(
            server_step(&model, Some(&previous), &aggregate, 0.0),
            vec![1.25, 2.25, 0.0]
        );
        // M + a + β (M − M_prev).
        assert_eq!(
            server_step(&model, Some(&previous), &aggregate, 0.5),
            vec![1.5, 2.0, 0.0]
        );
        assert_eq!(
            last_step(&model, Some(&previous)),
            Some(vec![0.5, -0.5, 0.0])
        );
        assert_eq!(last_step(&model, None), None);
        assert_eq!(last_step(&model, Some(&[1.0])), None);
    }
}
