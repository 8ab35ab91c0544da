//! Task rules: creating a task with an escrowed budget, joining it, starting it, cancelling it,
//! opening each round and finishing with refunds.

use std::collections::{BTreeMap, BTreeSet};

use cairn_round::plan::{self, TaskPlan};

use crate::account;
use crate::address::Address;
use crate::encoding::{domain_hash, to_hex, MAX_TASK_MEMBERS, MAX_TASK_VALIDATORS, PPM};
use crate::execute::{Env, TxError};
use crate::query;
use crate::round::Round;
use crate::schedule::{self, Event};
use crate::staking;
use crate::state::{keys, Overlay};
use crate::task::{Role, Task, TaskSpec, TaskStatus, MAX_ROUNDS, MAX_WINDOW};

/// Why a task operation was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TaskError {
    /// No task has this id.
    #[error("task {0} does not exist")]
    UnknownTask(u64),
    /// Only the creator may do this.
    #[error("only task {task}'s creator may start or cancel it")]
    NotCreator {
        /// Task id.
        task: u64,
    },
    /// The task is not in the state this operation needs.
    #[error("task {task} is {status:?}; this operation needs it {needed}")]
    WrongStatus {
        /// Task id.
        task: u64,
        /// Its current status.
        status: TaskStatus,
        /// What the operation needs.
        needed: &'static str,
    },
    /// The spec breaks a rule.
    #[error("invalid task spec: {0}")]
    InvalidSpec(&'static str),
    /// The spec's model, optimizer, partition, rule or trace settings do not parse against its
    /// dataset.
    #[error("invalid task plan: {0}")]
    InvalidPlan(String),
    /// The dataset is not one the chain serves.
    #[error("dataset {0} is not served by this chain (genesis lists the datasets tasks may use)")]
    DatasetNotServed(String),
    /// The spec's initial model is not the one derived from it.
    #[error("initial model {got} is not the model derived from the spec ({expected}); seal the spec with cairn_round::plan::seal_initial_model")]
    InitialModelMismatch {
        /// The derived `M_0` hash.
        expected: String,
        /// The spec's.
        got: String,
    },
    /// The signer already belongs to the task.
    #[error("{address} already belongs to task {task}")]
    AlreadyMember {
        /// Task id.
        task: u64,
        /// The member.
        address: Address,
    },
    /// The task has as many members as it may (or, for a validator, as many validators).
    #[error(
        "task {0} already has the maximum number of members ({max_members}) or validators \
         ({max_validators})",
        max_members = MAX_TASK_MEMBERS,
        max_validators = MAX_TASK_VALIDATORS
    )]
    Full(u64),
    /// The bond is below the task's minimum stake (or zero).
    #[error("bond {bond} is below task minimum stake {minimum} (and must be positive)")]
    BondTooSmall {
        /// Offered bond.
        bond: u128,
        /// The task's minimum.
        minimum: u128,
    },
    /// Only members of the consensus validator set may validate tasks.
    #[error("{0} is not in the consensus validator set; only consensus validators validate tasks")]
    NotConsensusValidator(Address),
    /// A validator's task bond must be its consensus weight.
    #[error("a validator joins with its consensus weight {weight} as its bond, not {bond}")]
    BondNotConsensusWeight {
        /// Offered bond.
        bond: u128,
        /// The validator's consensus weight.
        weight: u128,
    },
    /// Too little consensus weight has joined the task for it to start.
    #[error(
        "task {task}'s validators hold {joined} of {total} consensus weight; it starts once \
         they hold at least 2/3"
    )]
    ValidatorQuorum {
        /// Task id.
        task: u64,
        /// Consensus weight of the validators that joined.
        joined: u128,
        /// The whole consensus weight.
        total: u128,
    },
    /// A task cannot start without at least one trainer and one validator.
    #[error("task {0} needs at least one trainer and one validator to start")]
    NotEnoughMembers(u64),
}

/// Reads a task or fails with [`TaskError::UnknownTask`].
pub fn load(state: &Overlay, id: u64) -> Result<Task, TxError> {
    state
        .read(&keys::task(id))?
        .ok_or_else(|| TaskError::UnknownTask(id).into())
}

/// Writes a task.
pub fn save(state: &mut Overlay, task: &Task) {
    state.write(keys::task(task.id), task);
}

/// Checks a spec's bounds.
pub fn validate_spec(spec: &TaskSpec) -> Result<(), TaskError> {
    let text_fields = [
        &spec.model,
        &spec.partition,
        &spec.optimizer,
        &spec.robust_rule,
    ];
    if text_fields.iter().any(|text| text.is_empty()) {
        return Err(TaskError::InvalidSpec(
            "model, partition, optimizer and robust rule must be named",
        ));
    }
    if spec.rounds == 0 || spec.rounds > MAX_ROUNDS {
        return Err(TaskError::InvalidSpec(
            "rounds must be between 1 and 1000000",
        ));
    }
    if spec.local_steps == 0 {
        return Err(TaskError::InvalidSpec("local steps must be positive"));
    }
    let verification = &spec.verification;
    let windows = [
        spec.commit_window,
        spec.reveal_window,
        spec.availability_window,
        spec.attest_window,
        verification.audit_window,
        verification.move_window,
    ];
    if windows.iter().any(|w| *w == 0 || *w > MAX_WINDOW) {
        return Err(TaskError::InvalidSpec(
            "commit, reveal, availability, attest, audit and move windows must be between 1 and \
             1000000 blocks",
        ));
    }
    if verification.audit_ppm > PPM {
        return Err(TaskError::InvalidSpec(
            "the audit rate must be at most 1000000 ppm",
        ));
    }
    if verification.challenge_bond == 0 {
        return Err(TaskError::InvalidSpec(
            "the challenge bond must be positive",
        ));
    }
    Ok(())
}

/// Parses a spec's plan against the chain's datasets and checks its initial model: the checks
/// that need the dataset. A task the ledger accepts is one every trainer, auditor and the
/// referee can run.
pub fn validate_plan(state: &Overlay, env: &Env, spec: &TaskSpec) -> Result<TaskPlan, TxError> {
    if !query::datasets(state)?.contains(&spec.dataset) {
        return Err(TaskError::DatasetNotServed(to_hex(&spec.dataset)).into());
    }
    let plan = TaskPlan::from_spec(spec, &env.datasets)
        .map_err(|error| TaskError::InvalidPlan(error.to_string()))?;
    let mut sealed = spec.clone();
    plan::seal_initial_model(&mut sealed, &env.datasets)
        .map_err(|error| TaskError::InvalidPlan(error.to_string()))?;
    if sealed.initial_model != spec.initial_model {
        return Err(TaskError::InitialModelMismatch {
            expected: to_hex(&sealed.initial_model),
            got: to_hex(&spec.initial_model),
        }
        .into());
    }
    Ok(plan)
}

/// Creates a task and escrows its whole budget from the creator.
pub fn create(
    state: &mut Overlay,
    env: &Env,
    creator: &Address,
    spec: &TaskSpec,
) -> Result<u64, TxError> {
    validate_spec(spec)?;
    validate_plan(state, env, spec)?;
    let budget = spec.budget().ok_or(TxError::Overflow("task budget"))?;
    account::debit(state, creator, budget)?;
    let id: u64 = state.read(keys::NEXT_TASK)?.unwrap_or(0);
    let next = id.checked_add(1).ok_or(TxError::Overflow("task id"))?;
    state.write(keys::NEXT_TASK.to_vec(), &next);
    save(
        state,
        &Task {
            id,
            creator: *creator,
            spec: spec.clone(),
            escrow: budget,
            status: TaskStatus::Open,
            model_hash: spec.initial_model,
            trainers: BTreeMap::new(),
            validators: BTreeMap::new(),
            expelled: BTreeSet::new(),
            pending: 0,
            open_disputes: BTreeSet::new(),
        },
    );
    tracing::debug!(task = id, creator = %creator, budget, "task created");
    Ok(id)
}

/// Adds the signer to an open task, locking `bond` of its free stake.
///
/// Who validates a task: only members of the consensus validator set, each with a bond equal to
/// its consensus weight. A task's validators are thus the same stake, in the same proportions,
/// that keeps the chain safe; stake bought for one task adds no weight (it is not consensus
/// weight), and a validator cannot understate its bond to make its slashes cheap. With the
/// quorum [`start`] asks for, a coalition below 1/3 of consensus weight holds less than half of
/// any task's validator bond: it can neither finalize a model hash (2/3) nor move the weighted
/// median of a score (1/2). `docs/economics.md` has the argument.
pub fn join(
    state: &mut Overlay,
    env: &Env,
    member: &Address,
    id: u64,
    role: Role,
    bond: u128,
) -> Result<(), TxError> {
    let mut task = load(state, id)?;
    if task.status != TaskStatus::Open {
        return Err(TaskError::WrongStatus {
            task: id,
            status: task.status,
            needed: "open",
        }
        .into());
    }
    if task.trainers.contains_key(member) || task.validators.contains_key(member) {
        return Err(TaskError::AlreadyMember {
            task: id,
            address: *member,
        }
        .into());
    }
    if task.members() >= MAX_TASK_MEMBERS
        || (role == Role::Validator && task.validators.len() >= MAX_TASK_VALIDATORS)
    {
        return Err(TaskError::Full(id).into());
    }
    let minimum = match role {
        Role::Trainer => task
            .spec
            .min_stake
            .max(task.spec.verification.min_trainer_bond),
        Role::Validator => task.spec.min_stake,
    }
    .max(env.params.min_bond);
    if bond == 0 || bond < minimum {
        return Err(TaskError::BondTooSmall { bond, minimum }.into());
    }
    if role == Role::Validator {
        let weight = query::consensus_validators(state)?
            .get(member)
            .copied()
            .ok_or(TaskError::NotConsensusValidator(*member))?;
        if bond != weight {
            return Err(TaskError::BondNotConsensusWeight { bond, weight }.into());
        }
    }
    staking::lock(state, member, bond)?;
    match role {
        Role::Trainer => task.trainers.insert(*member, bond),
        Role::Validator => task.validators.insert(*member, bond),
    };
    save(state, &task);
    Ok(())
}

/// The creator starts an open task: round 0 opens in this block.
pub fn start(state: &mut Overlay, env: &Env, sender: &Address, id: u64) -> Result<(), TxError> {
    let mut task = load(state, id)?;
    if task.creator != *sender {
        return Err(TaskError::NotCreator { task: id }.into());
    }
    if task.status != TaskStatus::Open {
        return Err(TaskError::WrongStatus {
            task: id,
            status: task.status,
            needed: "open",
        }
        .into());
    }
    if task.trainers.is_empty() || task.validators.is_empty() {
        return Err(TaskError::NotEnoughMembers(id).into());
    }
    let total: u128 = query::consensus_validators(state)?.values().sum();
    let joined = task.validator_stake();
    if !crate::settlement::is_supermajority(joined, total) {
        return Err(TaskError::ValidatorQuorum {
            task: id,
            joined,
            total,
        }
        .into());
    }
    open_round(state, env, &mut task, 0)
}

/// The creator cancels a task that has not started: escrow returns to it, bonds unlock.
pub fn cancel(state: &mut Overlay, sender: &Address, id: u64) -> Result<(), TxError> {
    let mut task = load(state, id)?;
    if task.creator != *sender {
        return Err(TaskError::NotCreator { task: id }.into());
    }
    if task.status != TaskStatus::Open {
        return Err(TaskError::WrongStatus {
            task: id,
            status: task.status,
            needed: "open",
        }
        .into());
    }
    settle(state, &mut task, TaskStatus::Cancelled)
}

/// Opens round `number`: fixes its seed and input model, schedules its close.
///
/// Round 0's seed comes from the parent of the block that starts the task; every later round's
/// from the previous round's seed and beacon, which no proposer chooses: a block's proposer can
/// try many block contents for a parent hash it likes, but the beacon is fixed by salts
/// committed before any was revealed (`docs/economics.md`, "grinding").
pub fn open_round(
    state: &mut Overlay,
    env: &Env,
    task: &mut Task,
    number: u32,
) -> Result<(), TxError> {
    let source = match number.checked_sub(1) {
        None => env.parent,
        Some(previous) => {
            let previous: Round = state
                .read(&keys::round(task.id, previous))?
                .ok_or(TaskError::UnknownTask(task.id))?;
            domain_hash(
                b"cairn/round-entropy/v1",
                &[&previous.seed, &previous.beacon],
            )
        }
    };
    let seed = domain_hash(
        b"cairn/round-seed",
        &[&source, &task.id.to_be_bytes(), &number.to_be_bytes()],
    );
    let round = Round {
        task: task.id,
        number,
        opened_at: env.height,
        seed,
        beacon: [0; 32],
        model_hash: task.model_hash,
        commits: BTreeMap::new(),
        votes: BTreeMap::new(),
        available: None,
        unserved: BTreeSet::new(),
        attestations: BTreeMap::new(),
        outcome: None,
        audit_seed: None,
        audits: BTreeMap::new(),
        disputes: BTreeSet::new(),
        penalties: BTreeMap::new(),
        vesting: None,
    };
    state.write(keys::round(task.id, number), &round);
    task.status = TaskStatus::Running { round: number };
    save(state, task);
    let due = env
        .height
        .checked_add(task.spec.round_length())
        .ok_or(TxError::Overflow("height"))?;
    tracing::debug!(task = task.id, round = number, due, "round opened");
    let draw = env
        .height
        .checked_add(task.spec.audit_offset())
        .ok_or(TxError::Overflow("height"))?;
    schedule::push(
        state,
        draw,
        &Event::DrawAudits {
            task: task.id,
            round: number,
        },
    )?;
    schedule::push(
        state,
        due,
        &Event::CloseRound {
            task: task.id,
            round: number,
        },
    )
}

/// Ends a task's rounds: it is `Finished`, and settles (refund, bonds unlocked) once the last
/// round's audit window is over and no dispute is open.
pub fn finish(state: &mut Overlay, env: &Env, task: &mut Task) -> Result<(), TxError> {
    task.status = TaskStatus::Finished;
    save(state, task);
    let at = env
        .height
        .checked_add(task.spec.verification.audit_window)
        .and_then(|h| h.checked_add(1))
        .ok_or(TxError::Overflow("height"))?;
    tracing::debug!(task = task.id, settles_at = at, "task finished");
    schedule::push(state, at, &Event::SettleTask { task: task.id })
}

/// Settles a task: refunds the escrow no round was promised to the creator and unlocks every
/// member's remaining bond.
pub fn settle(state: &mut Overlay, task: &mut Task, status: TaskStatus) -> Result<(), TxError> {
    let refund = task.unpromised();
    if refund > 0 {
        account::credit(state, &task.creator, refund)?;
        task.escrow -= refund;
    }
    for (member, bond) in task.trainers.iter().chain(task.validators.iter()) {
        staking::unlock(state, member, *bond)?;
    }
    task.status = status;
    save(state, task);
    tracing::debug!(task = task.id, status = ?status, "task settled");
    Ok(())
}
