//! The one-step referee: given the state both dispute parties agreed on (as a witness), re-run
//! the single disputed step and compute the checkpoint it must produce.
//!
//! The referee runs inside the ledger's state machine on every node, so it is deterministic
//! (bit-exact kernels, seeded batches), bounded in memory (one model, its optimizer state and
//! one batch, under [`crate::witness::MAX_WITNESS_BYTES`]) and in time (one training step), and
//! it never panics on a hostile witness: every failure is a [`RefereeError`].

use cairn_ml::model::Model;
use cairn_ml::train::StepBuffers;

use crate::encoding::{Hash, ZERO_HASH};
use crate::optimizer;
use crate::params;
use crate::trace::Checkpoint;
use crate::training::{LocalRun, TrainState, TrainerError};
use crate::witness::{Witness, WitnessError};

/// What the referee computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// The checkpoint the disputed step produces from the agreed state.
    pub next: Checkpoint,
    /// Training steps the referee executed (the step counter's advance: one).
    pub steps_executed: u32,
}

/// Why the referee could not take the disputed step from the witness: each means the witness's
/// author failed to prove its claim.
#[derive(Debug, thiserror::Error)]
pub enum RefereeError {
    /// The witness does not decode for this task and step.
    #[error("the witness is malformed: {0}")]
    Witness(#[from] WitnessError),
    /// The witness is not the state both parties agreed on.
    #[error("the witness is not the agreed state (it hashes to {got:02x?}, the agreed checkpoint is {expected:02x?})")]
    NotAgreed {
        /// The agreed checkpoint hash.
        expected: Hash,
        /// The witness's checkpoint hash.
        got: Hash,
    },
    /// The witness's input model is not the round's `M_r`.
    #[error("the witness's input model is not the round's model")]
    WrongInputModel,
    /// With worker momentum: the witness's carried vector is not the one the ledger names
    /// (what the trainer sent in its previous round, or none).
    #[error("the witness's carried momentum is not what the trainer sent in its previous round")]
    WrongCarried,
    /// The step itself fails from this state (e.g. the loss diverges).
    #[error("the step cannot be taken from the agreed state: {0}")]
    Step(#[from] TrainerError),
}

/// Re-executes step `step` (0-based) of `run` from the `witness` of the state after `step`
/// steps, which must match the `agreed` checkpoint hash; `model_hash` is the round's `M_r`,
/// `carried` the hash of the vector the trainer carries into the round with worker momentum
/// (`None`: it carries none, or the task has no worker momentum).
pub fn judge(
    run: &LocalRun,
    model_hash: &Hash,
    carried: Option<&Hash>,
    step: u32,
    agreed: &Hash,
    witness: &[u8],
) -> Result<Judgement, RefereeError> {
    let witness = Witness::decode(witness, &run.plan, step)?;
    let batch = match step {
        0 => ZERO_HASH,
        _ => run.batch_hash(step - 1)?,
    };
    let claimed = Checkpoint {
        step,
        weights: params::hash(&witness.params),
        optimizer: optimizer::hash(&witness.optimizer),
        batch,
        update: ZERO_HASH,
    }
    .hash();
    if claimed != *agreed {
        return Err(RefereeError::NotAgreed {
            expected: *agreed,
            got: claimed,
        });
    }
    if let Some(model) = &witness.model {
        if params::hash(model) != *model_hash {
            return Err(RefereeError::WrongInputModel);
        }
    }
    if witness.model.is_some()
        && run.plan.worker_momentum != 0.0
        && witness.carried.as_deref().map(params::hash).as_ref() != carried
    {
        return Err(RefereeError::WrongCarried);
    }
    let model = Model::new(run.plan.model.clone(), witness.params)
        .map_err(|error| RefereeError::Step(error.into()))?;
    let mut state = TrainState {
        step,
        model,
        optimizer: witness.optimizer,
        batch,
    };
    let mut buffers = StepBuffers::new(&state.model);
    run.advance(&mut state, &mut buffers)?;
    let (next, _) = run.checkpoint(&state, witness.model.as_deref(), witness.carried.as_deref())?;
    Ok(Judgement {
        next,
        steps_executed: state.step - step,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fixtures;
    use crate::plan::TaskPlan;
    use crate::training::{Assignment, Trajectory};

    fn judge_step(model: &str, optimizer: &str, steps: u32, step: u32) {
        let plan = fixtures::plan_for(model, optimizer, steps, 3);
        let assignment = fixtures::assignment(&plan, 2, [4; 32]);
        let agreed = assignment.checkpoint(step).unwrap().hash();
        let witness = assignment.witness(step).unwrap().encode();
        let model_hash = params::hash(&assignment.start);
        let judgement = judge(&assignment.run, &model_hash, None, step, &agreed, &witness).unwrap();
        assert_eq!(judgement.steps_executed, 1);
        assert_eq!(judgement.next, assignment.checkpoint(step + 1).unwrap());
    }

    #[test]
    fn the_referee_reproduces_the_honest_next_checkpoint_at_any_step() {
        for step in [0, 4, 9] {
            judge_step("logistic:4-2", "sgd:lr=0.5,momentum=0.9,batch=16", 10, step);
            judge_step("mlp:4-8-2", "adam:lr=0.01,batch=8", 10, step);
        }
    }

    #[test]
    fn a_witness_that_is_not_the_agreed_state_or_model_is_refused() {
        let plan = fixtures::plan_for("mlp:4-8-2", "adam:lr=0.01,batch=8", 6, 2);
        let assignment = fixtures::assignment(&plan, 1, [4; 32]);
        let model_hash = params::hash(&assignment.start);
        let agreed = assignment.checkpoint(3).unwrap().hash();
        let mut witness = assignment.witness(3).unwrap();
        witness.params[0] += 1.0;
        assert!(matches!(
            judge(
                &assignment.run,
                &model_hash,
                None,
                3,
                &agreed,
                &witness.encode()
            ),
            Err(RefereeError::NotAgreed { .. })
        ));
        let agreed = assignment.checkpoint(5).unwrap().hash();
        let mut last = assignment.witness(5).unwrap();
        if let Some(model) = &mut last.model {
            model[0] += 1.0;
        }
        assert!(matches!(
            judge(
                &assignment.run,
                &model_hash,
                None,
                5,
                &agreed,
                &last.encode()
            ),
            Err(RefereeError::WrongInputModel)
        ));
        assert!(matches!(
            judge(&assignment.run, &model_hash, None, 5, &agreed, b"garbage"),
            Err(RefereeError::Witness(_))
        ));
        let for_step_four = assignment.witness(4).unwrap().encode();
        assert!(matches!(
            judge(
                &assignment.run,
                &model_hash,
                None,
                5,
                &agreed,
                &for_step_four
            ),
            Err(RefereeError::Witness(WitnessError::WrongStep { .. }))
        ));
    }

    /// A toy plan with worker momentum 0.5, and a trainer's assignment carrying `carried`.
    fn momentum_assignment(carried: Option<Vec<f32>>) -> Assignment {
        let plan = fixtures::plan_for("mlp:4-8-2", "sgd:lr=0.5,momentum=0.9,batch=8", 6, 2);
        let plan = Arc::new(TaskPlan {
            worker_momentum: 0.5,
            ..(*plan).clone()
        });
        fixtures::assignment(&plan, 2, [6; 32]).carrying(carried.map(Into::into))
    }

    #[test]
    fn with_worker_momentum_the_last_step_commits_the_carried_update_and_the_referee_replays_it() {
        let fresh = fixtures::assignment(
            &fixtures::plan_for("mlp:4-8-2", "sgd:lr=0.5,momentum=0.9,batch=8", 6, 2),
            2,
            [6; 32],
        );
        let delta = fresh.train().unwrap().update;
        let previous: Vec<f32> = (0..delta.len()).map(|i| 0.01 * i as f32).collect();
        let assignment = momentum_assignment(Some(previous.clone()));
        let work = assignment.train().unwrap();
        // The update sent is β m + (1 − β) Δ, bit for bit, and the last checkpoint names it.
        assert_eq!(
            work.update,
            crate::training::carry_momentum(Some(&previous), &delta, 0.5)
        );
        assert_eq!(work.last.update, params::hash(&work.update));
        // The referee re-executes the last step from the witness, carried vector included.
        let model_hash = params::hash(&assignment.start);
        let carried_hash = params::hash(&previous);
        let agreed = assignment.checkpoint(5).unwrap().hash();
        let witness = assignment.witness(5).unwrap();
        assert_eq!(witness.carried.as_deref(), Some(previous.as_slice()));
        let bytes = witness.encode();
        assert_eq!(
            bytes.len() as u64,
            crate::witness::encoded_len(&assignment.run.plan, 5, true)
        );
        let judgement = judge(
            &assignment.run,
            &model_hash,
            Some(&carried_hash),
            5,
            &agreed,
            &bytes,
        )
        .unwrap();
        assert_eq!(judgement.next, work.last);
        // A witness carrying another vector than the ledger names, or none, is refused.
        assert!(matches!(
            judge(&assignment.run, &model_hash, None, 5, &agreed, &bytes),
            Err(RefereeError::WrongCarried)
        ));
        let mut other = witness.clone();
        if let Some(carried) = &mut other.carried {
            carried[0] += 1.0;
        }
        assert!(matches!(
            judge(
                &assignment.run,
                &model_hash,
                Some(&carried_hash),
                5,
                &agreed,
                &other.encode()
            ),
            Err(RefereeError::WrongCarried)
        ));
        // A trainer that carries nothing (its first round) commits Δ itself; its witness says so.
        let first = momentum_assignment(None);
        assert_eq!(first.train().unwrap().update, delta);
        let bare = first.witness(5).unwrap();
        assert!(bare.momentum && bare.carried.is_none());
        let bytes = bare.encode();
        assert_eq!(
            crate::witness::Witness::decode(&bytes, &first.run.plan, 5).unwrap(),
            bare
        );
        let agreed = first.checkpoint(5).unwrap().hash();
        let judgement = judge(&first.run, &model_hash, None, 5, &agreed, &bytes).unwrap();
        assert_eq!(judgement.next, first.train().unwrap().last);
        // Earlier steps carry nothing: their witnesses are the same bytes as without momentum.
        assert_eq!(
            assignment.witness(2).unwrap().encode(),
            fresh.witness(2).unwrap().encode()
        );
    }
}
