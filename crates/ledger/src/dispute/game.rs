//! The moves of a dispute and their deadlines.

use std::sync::Arc;

use cairn_round::referee::judge;
use cairn_round::trace;
use cairn_round::training::{batch_seed, shard_of, LocalRun};
use cairn_round::{witness, TaskPlan};

use super::outcome::resolve;
use super::{Dispute, Party, Point, Reason, Resolution, Stage};
use crate::address::Address;
use crate::encoding::{Hash, MAX_WITNESS_CHUNK};
use crate::execute::{Env, TxError};
use crate::lifecycle::{self, TaskError};
use crate::round::{AuditStatus, Round};
use crate::schedule::{self, Event};
use crate::staking;
use crate::state::{keys, Overlay};
use crate::task::{Task, TaskStatus, MAX_OPEN_DISPUTES};

/// Why a dispute move was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DisputeError {
    /// No dispute has this id.
    #[error("dispute {0} does not exist")]
    Unknown(u64),
    /// The dispute is over.
    #[error("dispute {0} is already resolved")]
    Resolved(u64),
    /// The sender is not the side whose move it is.
    #[error("it is not {0}'s move in this dispute")]
    NotYourMove(Address),
    /// The move's deadline passed (the deadline event decides the dispute).
    #[error("the move's deadline was height {0}")]
    DeadlinePassed(u64),
    /// The move is not the kind the dispute waits for.
    #[error("the dispute waits for {0}")]
    WrongMove(&'static str),
    /// Only a validator of the task may challenge.
    #[error("{0} is not a validator of this task")]
    NotValidator(Address),
    /// The trainer revealed no update (with its last checkpoint) in that round.
    #[error("{0} revealed no update in this round")]
    NotRevealed(Address),
    /// The trainer already lost a dispute in this task.
    #[error("{0} already lost a dispute in this task")]
    Expelled(Address),
    /// Challenges for the round are not open yet, or no longer.
    #[error("challenges for this round are accepted from height {opens} to {closes}")]
    Window {
        /// First height.
        opens: u64,
        /// Last height.
        closes: u64,
    },
    /// The challenger's trace root is the trainer's: there is nothing to dispute.
    #[error("the challenger's trace root equals the trainer's")]
    SameTrace,
    /// This challenger already disputes this trainer's update.
    #[error("{0} already challenged this update")]
    AlreadyChallenged(Address),
    /// The task has as many open disputes as it may, or the round as many disputes.
    #[error("the task has {MAX_OPEN_DISPUTES} open disputes, or the round has had that many")]
    TooManyOpen,
    /// A claim at a trace leaf must open the committed trace root; one between leaves carries
    /// no proof.
    #[error("the claim's proof does not open leaf {0} of the committed trace")]
    BadProof(u32),
    /// The witness chunk is not the next one.
    #[error("witness chunk at offset {got}; the next one starts at {expected}")]
    ChunkOffset {
        /// The next offset.
        expected: u64,
        /// The chunk's.
        got: u64,
    },
    /// The witness chunk has the wrong length (every chunk but the last is full).
    #[error("witness chunk of {got} bytes; this one must be {expected}")]
    ChunkLength {
        /// The length required.
        expected: u64,
        /// The chunk's.
        got: u64,
    },
    /// The task's plan no longer parses against this node's datasets (a damaged registry).
    #[error("the task's plan cannot be rebuilt: {0}")]
    Plan(String),
}

/// The step the trainer must claim next in `dispute`'s range, and its leaf index when it is a
/// trace leaf (the middle leaf while the range spans more than one leaf interval, else the
/// middle step). `None` when one step is left.
pub fn next_claim(low: u32, high: u32, steps: u32, every: u32) -> Option<(u32, Option<usize>)> {
    if high.saturating_sub(low) < 2 {
        return None;
    }
    if let (Some(a), Some(b)) = (
        trace::leaf_index(low, steps, every),
        trace::leaf_index(high, steps, every),
    ) {
        if b > a + 1 {
            let middle = a + (b - a) / 2;
            return Some((trace::leaf_step(middle, steps, every), Some(middle)));
        }
    }
    Some((low + (high - low) / 2, None))
}

fn load(state: &Overlay, id: u64) -> Result<Dispute, TxError> {
    state
        .read::<Dispute>(&keys::dispute(id))?
        .ok_or_else(|| DisputeError::Unknown(id).into())
}

fn plan(task: &Task, env: &Env) -> Result<Arc<TaskPlan>, TxError> {
    TaskPlan::from_spec(&task.spec, &env.datasets)
        .map(Arc::new)
        .map_err(|error| DisputeError::Plan(error.to_string()).into())
}

/// With worker momentum, the hash of the vector the disputed trainer carried into the round
/// (`crate::query::carried`); `None` without worker momentum.
fn carried(
    state: &Overlay,
    plan: &TaskPlan,
    task: u64,
    round: u32,
    trainer: &Address,
) -> Result<Option<Hash>, TxError> {
    if plan.worker_momentum == 0.0 {
        return Ok(None);
    }
    Ok(crate::query::carried(state, task, round, trainer)?)
}

/// The stage after the range changed: another claim, or the witness when one step is left
/// (`carries`: the trainer carried a vector into the round, which a last-step witness holds).
fn next_stage(task: &Task, plan: &TaskPlan, low: u32, high: u32, carries: bool) -> Stage {
    let steps = task.spec.local_steps;
    match next_claim(low, high, steps, task.spec.verification.trace_every) {
        Some((step, _)) => Stage::Claim { step },
        None => Stage::Witness {
            received: 0,
            expected: witness::encoded_len(plan, low, carries),
            chunks: 0,
        },
    }
}

/// Records a move: the count goes up and the next side gets a fresh deadline.
fn advance(
    state: &mut Overlay,
    env: &Env,
    task: &Task,
    dispute: &mut Dispute,
) -> Result<(), TxError> {
    dispute.moves = dispute.moves.saturating_add(1);
    dispute.deadline = env
        .height
        .checked_add(task.spec.verification.move_window)
        .ok_or(TxError::Overflow("height"))?;
    schedule::push(
        state,
        dispute.deadline.saturating_add(1),
        &Event::DisputeDeadline {
            dispute: dispute.id,
            moves: dispute.moves,
        },
    )
}

/// The checks every move shares: the dispute is open, it is `sender`'s move as `party`, and
/// the deadline has not passed.
fn check_move(dispute: &Dispute, env: &Env, sender: &Address, party: Party) -> Result<(), TxError> {
    if !dispute.is_open() {
        return Err(DisputeError::Resolved(dispute.id).into());
    }
    let mover = match party {
        Party::Trainer => dispute.trainer,
        Party::Challenger => dispute.challenger,
    };
    if dispute.to_move() != Some(party) || mover != *sender {
        return Err(DisputeError::NotYourMove(*sender).into());
    }
    if env.height > dispute.deadline {
        return Err(DisputeError::DeadlinePassed(dispute.deadline).into());
    }
    Ok(())
}

/// A task validator challenges `trainer`'s update in a round, locking the task's challenge bond.
pub fn open(
    state: &mut Overlay,
    env: &Env,
    challenger: &Address,
    (task_id, number): (u64, u32),
    trainer: &Address,
    trace_root: &Hash,
) -> Result<(), TxError> {
    let mut task = lifecycle::load(state, task_id)?;
    if !matches!(
        task.status,
        TaskStatus::Running { .. } | TaskStatus::Finished
    ) {
        return Err(TaskError::WrongStatus {
            task: task_id,
            status: task.status,
            needed: "running or finished",
        }
        .into());
    }
    if !task.validators.contains_key(challenger) {
        return Err(DisputeError::NotValidator(*challenger).into());
    }
    if task.expelled.contains(trainer) {
        return Err(DisputeError::Expelled(*trainer).into());
    }
    let round_key = keys::round(task_id, number);
    let mut round: Round = state
        .read(&round_key)?
        .ok_or(DisputeError::NotRevealed(*trainer))?;
    let opens = round.opened_at.saturating_add(task.spec.audit_offset());
    let closes = round.challenge_deadline(&task.spec);
    if env.height < opens || env.height > closes {
        return Err(DisputeError::Window { opens, closes }.into());
    }
    let commit = round
        .commits
        .get(trainer)
        .ok_or(DisputeError::NotRevealed(*trainer))?;
    let Some(last) = commit.last_checkpoint else {
        return Err(DisputeError::NotRevealed(*trainer).into());
    };
    if commit.trace_root == *trace_root {
        return Err(DisputeError::SameTrace.into());
    }
    for id in &round.disputes {
        let other = load(state, *id)?;
        if other.trainer == *trainer && other.challenger == *challenger {
            return Err(DisputeError::AlreadyChallenged(*challenger).into());
        }
    }
    if task.open_disputes.len() >= MAX_OPEN_DISPUTES || round.disputes.len() >= MAX_OPEN_DISPUTES {
        return Err(DisputeError::TooManyOpen.into());
    }
    let bond = task.spec.verification.challenge_bond;
    staking::lock(state, challenger, bond)?;
    let plan = plan(&task, env)?;
    let start = plan
        .start_checkpoint(round.model_hash)
        .map_err(|error| DisputeError::Plan(error.to_string()))?
        .hash();
    let id: u64 = state.read(keys::NEXT_DISPUTE)?.unwrap_or(0);
    state.write(
        keys::NEXT_DISPUTE.to_vec(),
        &id.checked_add(1).ok_or(TxError::Overflow("dispute id"))?,
    );
    let low = Point {
        step: 0,
        checkpoint: start,
    };
    let high = Point {
        step: task.spec.local_steps,
        checkpoint: last,
    };
    let mut dispute = Dispute {
        id,
        task: task_id,
        round: number,
        trainer: *trainer,
        challenger: *challenger,
        bond,
        challenger_root: *trace_root,
        opened_at: env.height,
        low,
        high,
        stage: next_stage(
            &task,
            &plan,
            low.step,
            high.step,
            carried(state, &plan, task_id, number, trainer)?.is_some(),
        ),
        moves: 0,
        deadline: 0,
    };
    // `advance` counts opening as the first move, so every deadline event names a fresh count.
    advance(state, env, &task, &mut dispute)?;
    // A pass stays on record: an auditor that reported a match and challenges later (once
    // another auditor's dispute looks like winning) must not wipe the report a referee's verdict
    // would slash it for.
    if let Some(audit) = round.audits.get_mut(trainer) {
        if let Some(status) = audit.auditors.get_mut(challenger) {
            if *status == AuditStatus::Assigned {
                *status = AuditStatus::Challenged;
            }
        }
    }
    round.disputes.insert(id);
    task.open_disputes.insert(id);
    state.write(round_key, &round);
    lifecycle::save(state, &task);
    state.write(keys::dispute(id), &dispute);
    tracing::info!(task = task_id, round = number, dispute = id, trainer = %trainer, challenger = %challenger, "dispute opened");
    Ok(())
}

/// The trainer's claim at the step the dispute asks for.
pub fn claim(
    state: &mut Overlay,
    env: &Env,
    sender: &Address,
    id: u64,
    checkpoint: &Hash,
    proof: &[Hash],
) -> Result<(), TxError> {
    let mut dispute = load(state, id)?;
    check_move(&dispute, env, sender, Party::Trainer)?;
    let Stage::Claim { step } = dispute.stage else {
        return Err(DisputeError::WrongMove("the trainer's witness").into());
    };
    let task = lifecycle::load(state, dispute.task)?;
    let steps = task.spec.local_steps;
    let every = task.spec.verification.trace_every;
    let leaf = next_claim(dispute.low.step, dispute.high.step, steps, every).and_then(|(_, l)| l);
    match leaf {
        Some(index) => {
            let round: Round = state
                .read(&keys::round(dispute.task, dispute.round))?
                .ok_or(DisputeError::NotRevealed(dispute.trainer))?;
            let root = round
                .commits
                .get(&dispute.trainer)
                .map(|c| c.trace_root)
                .ok_or(DisputeError::NotRevealed(dispute.trainer))?;
            let count = trace::leaf_count(steps, every);
            if !trace::verify(&root, count, index, checkpoint, proof) {
                return Err(DisputeError::BadProof(step).into());
            }
        }
        None if !proof.is_empty() => return Err(DisputeError::BadProof(step).into()),
        None => {}
    }
    dispute.stage = Stage::Answer {
        claim: Point {
            step,
            checkpoint: *checkpoint,
        },
    };
    advance(state, env, &task, &mut dispute)?;
    state.write(keys::dispute(id), &dispute);
    Ok(())
}

/// The challenger's answer to the trainer's last claim.
pub fn answer(
    state: &mut Overlay,
    env: &Env,
    sender: &Address,
    id: u64,
    agree: bool,
) -> Result<(), TxError> {
    let mut dispute = load(state, id)?;
    check_move(&dispute, env, sender, Party::Challenger)?;
    let Stage::Answer { claim } = dispute.stage else {
        return Err(DisputeError::WrongMove("the trainer's move").into());
    };
    if agree {
        dispute.low = claim;
    } else {
        dispute.high = claim;
    }
    let task = lifecycle::load(state, dispute.task)?;
    let plan = plan(&task, env)?;
    let carries = carried(state, &plan, dispute.task, dispute.round, &dispute.trainer)?.is_some();
    dispute.stage = next_stage(&task, &plan, dispute.low.step, dispute.high.step, carries);
    advance(state, env, &task, &mut dispute)?;
    state.write(keys::dispute(id), &dispute);
    Ok(())
}

/// A chunk of the trainer's witness; the last one runs the referee and resolves the dispute.
pub fn witness(
    state: &mut Overlay,
    env: &Env,
    sender: &Address,
    id: u64,
    offset: u64,
    bytes: &[u8],
) -> Result<(), TxError> {
    let mut dispute = load(state, id)?;
    check_move(&dispute, env, sender, Party::Trainer)?;
    let Stage::Witness {
        received,
        expected,
        chunks,
    } = dispute.stage
    else {
        return Err(DisputeError::WrongMove("a claim or an answer").into());
    };
    if offset != received {
        return Err(DisputeError::ChunkOffset {
            expected: received,
            got: offset,
        }
        .into());
    }
    let want = (expected - received).min(MAX_WITNESS_CHUNK as u64);
    if bytes.len() as u64 != want {
        return Err(DisputeError::ChunkLength {
            expected: want,
            got: bytes.len() as u64,
        }
        .into());
    }
    state.write(keys::witness_chunk(id, chunks), &bytes.to_vec());
    let received = received + want;
    let chunks = chunks + 1;
    let task = lifecycle::load(state, dispute.task)?;
    if received < expected {
        dispute.stage = Stage::Witness {
            received,
            expected,
            chunks,
        };
        advance(state, env, &task, &mut dispute)?;
        state.write(keys::dispute(id), &dispute);
        return Ok(());
    }
    let mut whole = Vec::with_capacity(expected as usize);
    for chunk in 0..chunks {
        let key = keys::witness_chunk(id, chunk);
        let part: Vec<u8> = state
            .read_cfg(
                &key,
                &(commonware_codec::RangeCfg::new(..=MAX_WITNESS_CHUNK), ()),
            )?
            .unwrap_or_default();
        whole.extend_from_slice(&part);
        state.delete(key);
    }
    let round: Round = state
        .read(&keys::round(dispute.task, dispute.round))?
        .ok_or(DisputeError::NotRevealed(dispute.trainer))?;
    let plan = plan(&task, env)?;
    let trainers: Vec<Address> = task.trainers.keys().copied().collect();
    let shard = shard_of(&plan, task.id, &trainers, &dispute.trainer)
        .map_err(|error| DisputeError::Plan(error.to_string()))?;
    let run = LocalRun {
        plan,
        shard: Arc::new(shard),
        seed: batch_seed(&round.seed, &dispute.trainer),
    };
    let carried = carried(
        state,
        &run.plan,
        dispute.task,
        dispute.round,
        &dispute.trainer,
    )?;
    let resolution = match judge(
        &run,
        &round.model_hash,
        carried.as_ref(),
        dispute.low.step,
        &dispute.low.checkpoint,
        &whole,
    ) {
        Ok(judgement) => {
            let computed = judgement.next.hash();
            Resolution {
                winner: if computed == dispute.high.checkpoint {
                    Party::Trainer
                } else {
                    Party::Challenger
                },
                reason: Reason::Referee,
                computed: Some(computed),
                referee_steps: judgement.steps_executed,
                height: env.height,
            }
        }
        Err(error) => {
            tracing::info!(dispute = id, %error, "the trainer's witness was refused");
            Resolution {
                winner: Party::Challenger,
                reason: Reason::BadWitness,
                computed: None,
                referee_steps: 0,
                height: env.height,
            }
        }
    };
    dispute.moves = dispute.moves.saturating_add(1);
    resolve(state, env, &mut dispute, resolution)
}

/// A move's deadline passed (a scheduled event): if nobody moved since it was set, the side
/// that had to move loses.
pub fn deadline(state: &mut Overlay, env: &Env, id: u64, moves: u32) -> Result<(), TxError> {
    let Some(mut dispute) = state.read::<Dispute>(&keys::dispute(id))? else {
        return Ok(());
    };
    if dispute.moves != moves {
        return Ok(());
    }
    let Some(silent) = dispute.to_move() else {
        return Ok(());
    };
    let winner = match silent {
        Party::Trainer => Party::Challenger,
        Party::Challenger => Party::Trainer,
    };
    // Chunks of a witness that never completed are dropped.
    if let Stage::Witness { chunks, .. } = dispute.stage {
        for chunk in 0..chunks {
            state.delete(keys::witness_chunk(id, chunk));
        }
    }
    let resolution = Resolution {
        winner,
        reason: Reason::Silence,
        computed: None,
        referee_steps: 0,
        height: env.height,
    };
    resolve(state, env, &mut dispute, resolution)
}
