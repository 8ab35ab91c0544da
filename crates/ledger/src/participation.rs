//! What members do during a round: trainers commit and reveal updates, validators vote which
//! revealed updates they hold, then commit and reveal attestations. Each action is accepted only
//! in its phase and only once.

use std::collections::{BTreeMap, BTreeSet};

use cairn_round::trace::{self, Checkpoint};

use crate::address::Address;
use crate::encoding::{domain_hash, Hash, PPM};
use crate::execute::{Env, TxError};
use crate::lifecycle::{self, TaskError};
use crate::round::{Attestation, AttestationReveal, Phase, Round, UpdateCommit};
use crate::state::{keys, Overlay};
use crate::task::{Task, TaskStatus};
use crate::transaction::{
    attestation_commitment, update_commitment, CommitmentScope, LastCheckpoint,
};

/// Why a round action was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoundError {
    /// The transaction names a round other than the task's current one.
    #[error("task {task} is in round {current}, not round {got}")]
    WrongRound {
        /// Task id.
        task: u64,
        /// The current round.
        current: u32,
        /// The round named.
        got: u32,
    },
    /// A trainer commit arrived after the commit window closed.
    #[error("the commit window of this round closed at height {closed_at} (now {height})")]
    CommitWindowClosed {
        /// First height after the window.
        closed_at: u64,
        /// This block's height.
        height: u64,
    },
    /// The round is not in the phase this action needs.
    #[error("round is in phase {actual:?}; this action needs phase {needed:?}")]
    WrongPhase {
        /// The phase needed.
        needed: Phase,
        /// The phase now.
        actual: Phase,
    },
    /// The signer is not a trainer of the task.
    #[error("{0} is not a trainer of this task")]
    NotTrainer(Address),
    /// The signer is not a validator of the task.
    #[error("{0} is not a validator of this task")]
    NotValidator(Address),
    /// The signer already committed in this round.
    #[error("{0} already committed in this round")]
    AlreadyCommitted(Address),
    /// The signer has nothing to reveal in this round.
    #[error("{0} made no commitment in this round")]
    NothingCommitted(Address),
    /// The signer already revealed in this round.
    #[error("{0} already revealed in this round")]
    AlreadyRevealed(Address),
    /// The revealed values do not hash to the commitment.
    #[error("revealed values do not match the commitment")]
    CommitmentMismatch,
    /// An attestation scores someone who did not reveal an update this round.
    #[error("attestation scores {0}, who revealed no update this round")]
    ScoredNonParticipant(Address),
    /// A score is above one million ppm.
    #[error("score {0} is above 1000000 ppm")]
    ScoreTooHigh(u32),
    /// The trainer lost a dispute in this task and takes no further part.
    #[error("{0} lost a dispute in this task and can no longer commit")]
    Expelled(Address),
    /// An availability vote names someone who revealed no update this round.
    #[error("availability vote names {0}, who revealed no update this round")]
    HeldNonParticipant(Address),
    /// The validator already voted on this round's availability.
    #[error("{0} already voted on this round's availability")]
    AlreadyVoted(Address),
    /// An attestation scores a trainer whose update did not count this round.
    #[error("attestation scores {0}, whose update was not available to 2/3 of validator stake")]
    ScoredUnavailable(Address),
    /// The revealed last checkpoint does not open the committed trace root.
    #[error("the revealed last checkpoint and its proof do not match the committed trace root")]
    BadTraceProof,
}

/// One member's share of a round's beacon: a hash of its address and the salt it committed to.
pub fn beacon_share(member: &Address, salt: &Hash) -> Hash {
    domain_hash(b"cairn/beacon-share/v1", &[&member.0, salt])
}

/// Folds a reveal's share into the beacon. XOR makes the beacon independent of the order in
/// which a proposer includes reveals; each salt was committed before any reveal, so a member's
/// only choice is whether to reveal at all, and hiding a commitment is slashed
/// (`crate::settlement`).
fn fold_beacon(beacon: &mut Hash, member: &Address, salt: &Hash) {
    for (byte, share) in beacon.iter_mut().zip(beacon_share(member, salt)) {
        *byte ^= share;
    }
}

/// The task and its current round, checked to be the round the transaction names.
fn current(state: &Overlay, id: u64, number: u32) -> Result<(Task, Round), TxError> {
    let task = lifecycle::load(state, id)?;
    let TaskStatus::Running { round } = task.status else {
        return Err(TaskError::WrongStatus {
            task: id,
            status: task.status,
            needed: "running",
        }
        .into());
    };
    if round != number {
        return Err(RoundError::WrongRound {
            task: id,
            current: round,
            got: number,
        }
        .into());
    }
    let record = state
        .read::<Round>(&keys::round(id, round))?
        .ok_or(TaskError::UnknownTask(id))?;
    Ok((task, record))
}

fn require_phase(task: &Task, round: &Round, env: &Env, needed: Phase) -> Result<(), RoundError> {
    let actual = Phase::at(&task.spec, round.opened_at, env.height);
    if actual != needed {
        return Err(RoundError::WrongPhase { needed, actual });
    }
    Ok(())
}

/// A trainer commits to its update.
pub fn commit_update(
    state: &mut Overlay,
    env: &Env,
    trainer: &Address,
    (task_id, number): (u64, u32),
    commitment: Hash,
    trace_root: Hash,
) -> Result<(), TxError> {
    let (task, mut round) = current(state, task_id, number)?;
    if !task.trainers.contains_key(trainer) {
        return Err(RoundError::NotTrainer(*trainer).into());
    }
    if task.expelled.contains(trainer) {
        return Err(RoundError::Expelled(*trainer).into());
    }
    if env.height <= round.opened_at {
        return Err(RoundError::WrongPhase {
            needed: Phase::Commit,
            actual: Phase::Opening,
        }
        .into());
    }
    let closed_at = round
        .opened_at
        .saturating_add(1)
        .saturating_add(task.spec.commit_window);
    if env.height >= closed_at {
        return Err(RoundError::CommitWindowClosed {
            closed_at,
            height: env.height,
        }
        .into());
    }
    if round.commits.contains_key(trainer) {
        return Err(RoundError::AlreadyCommitted(*trainer).into());
    }
    round.commits.insert(
        *trainer,
        UpdateCommit {
            commitment,
            trace_root,
            update_hash: None,
            last_checkpoint: None,
        },
    );
    state.write(keys::round(task_id, number), &round);
    Ok(())
}

/// A trainer reveals its update hash and salt, and opens the last checkpoint of its trace (step
/// `T`, naming the update) against the trace root it committed.
pub fn reveal_update(
    state: &mut Overlay,
    env: &Env,
    trainer: &Address,
    (task_id, number): (u64, u32),
    (update_hash, salt): (Hash, Hash),
    last: &LastCheckpoint,
    proof: &[Hash],
) -> Result<(), TxError> {
    let (task, mut round) = current(state, task_id, number)?;
    require_phase(&task, &round, env, Phase::Reveal)?;
    let commit = round
        .commits
        .get_mut(trainer)
        .ok_or(RoundError::NothingCommitted(*trainer))?;
    if commit.update_hash.is_some() {
        return Err(RoundError::AlreadyRevealed(*trainer).into());
    }
    let scope = CommitmentScope {
        chain_id: env.chain_id,
        task: task_id,
        round: number,
        member: *trainer,
    };
    if update_commitment(&scope, &update_hash, &salt) != commit.commitment {
        return Err(RoundError::CommitmentMismatch.into());
    }
    let steps = task.spec.local_steps;
    let checkpoint = Checkpoint {
        step: steps,
        weights: last.weights,
        optimizer: last.optimizer,
        batch: last.batch,
        update: update_hash,
    }
    .hash();
    let count = trace::leaf_count(steps, task.spec.verification.trace_every);
    if !trace::verify(&commit.trace_root, count, count - 1, &checkpoint, proof) {
        return Err(RoundError::BadTraceProof.into());
    }
    commit.update_hash = Some(update_hash);
    commit.last_checkpoint = Some(checkpoint);
    fold_beacon(&mut round.beacon, trainer, &salt);
    state.write(keys::round(task_id, number), &round);
    Ok(())
}

/// A validator votes which revealed updates it holds (once, in the availability window).
pub fn vote_availability(
    state: &mut Overlay,
    env: &Env,
    validator: &Address,
    (task_id, number): (u64, u32),
    held: &BTreeSet<Address>,
) -> Result<(), TxError> {
    let (task, mut round) = current(state, task_id, number)?;
    if !task.validators.contains_key(validator) {
        return Err(RoundError::NotValidator(*validator).into());
    }
    require_phase(&task, &round, env, Phase::Availability)?;
    if round.votes.contains_key(validator) {
        return Err(RoundError::AlreadyVoted(*validator).into());
    }
    for trainer in held {
        let revealed = round
            .commits
            .get(trainer)
            .is_some_and(|commit| commit.update_hash.is_some());
        if !revealed {
            return Err(RoundError::HeldNonParticipant(*trainer).into());
        }
    }
    round.votes.insert(*validator, held.clone());
    state.write(keys::round(task_id, number), &round);
    Ok(())
}

/// A validator commits to its attestation.
pub fn commit_attestation(
    state: &mut Overlay,
    env: &Env,
    validator: &Address,
    (task_id, number): (u64, u32),
    commitment: Hash,
) -> Result<(), TxError> {
    let (task, mut round) = current(state, task_id, number)?;
    if !task.validators.contains_key(validator) {
        return Err(RoundError::NotValidator(*validator).into());
    }
    require_phase(&task, &round, env, Phase::AttestCommit)?;
    if round.attestations.contains_key(validator) {
        return Err(RoundError::AlreadyCommitted(*validator).into());
    }
    round.attestations.insert(
        *validator,
        Attestation {
            commitment,
            reveal: None,
        },
    );
    state.write(keys::round(task_id, number), &round);
    Ok(())
}

/// A validator reveals its model hash and scores.
pub fn reveal_attestation(
    state: &mut Overlay,
    env: &Env,
    validator: &Address,
    (task_id, number): (u64, u32),
    model_hash: Hash,
    scores: &BTreeMap<Address, u32>,
    salt: Hash,
) -> Result<(), TxError> {
    let (task, mut round) = current(state, task_id, number)?;
    require_phase(&task, &round, env, Phase::AttestReveal)?;
    for (trainer, score) in scores {
        let revealed = round
            .commits
            .get(trainer)
            .is_some_and(|commit| commit.update_hash.is_some());
        if !revealed {
            return Err(RoundError::ScoredNonParticipant(*trainer).into());
        }
        if !round.counts(trainer) {
            return Err(RoundError::ScoredUnavailable(*trainer).into());
        }
        if *score > PPM {
            return Err(RoundError::ScoreTooHigh(*score).into());
        }
    }
    let attestation = round
        .attestations
        .get_mut(validator)
        .ok_or(RoundError::NothingCommitted(*validator))?;
    if attestation.reveal.is_some() {
        return Err(RoundError::AlreadyRevealed(*validator).into());
    }
    let scope = CommitmentScope {
        chain_id: env.chain_id,
        task: task_id,
        round: number,
        member: *validator,
    };
    if attestation_commitment(&scope, &model_hash, scores, &salt) != attestation.commitment {
        return Err(RoundError::CommitmentMismatch.into());
    }
    attestation.reveal = Some(AttestationReveal {
        model_hash,
        scores: scores.clone(),
    });
    fold_beacon(&mut round.beacon, validator, &salt);
    state.write(keys::round(task_id, number), &round);
    Ok(())
}
