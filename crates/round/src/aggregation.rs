//! A validator's aggregation of one round, given the revealed update blobs: decode and check
//! each, aggregate the valid ones with the task's robust rule, and compute
//! `M_{r+1} = M_r + aggregate (+ β (M_r − M_{r−1}) with server momentum)`. Deterministic:
//! every honest validator (and `cairn replay`) reaches the same model hash from the same blobs
//! and the two input models the ledger names.

use std::collections::BTreeMap;

use cairn_robust::{aggregate, Context, NonFinitePolicy, Updates};

use crate::address::Address;
use crate::encoding::Hash;
use crate::params;
use crate::plan::TaskPlan;

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
    /// What the rule did.
    pub outcome: AggregationOutcome,
}

/// Decodes every revealed update (ascending trainer order), aggregates the valid ones with the
/// plan's pre-aggregation chain and rule, and applies the result to `model` with the plan's
/// server step ([`server_step`]). `previous` is `M_{r−1}` (`None` in round 0): centered
/// clipping starts from the last global step `M_r − M_{r−1}`, and server momentum adds it.
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
    let (next_params, outcome) = apply(plan, model, previous, &updates);
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
