//! Task rules: creating a task with an escrowed budget, joining it, starting it, cancelling it,
//! opening each round and finishing with refunds.

use std::collections::BTreeMap;

use crate::account;
use crate::address::Address;
use crate::encoding::{domain_hash, MAX_TASK_MEMBERS, MAX_TASK_VALIDATORS};
use crate::execute::{Env, TxError};
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
    let windows = [spec.commit_window, spec.reveal_window, spec.attest_window];
    if windows.iter().any(|w| *w == 0 || *w > MAX_WINDOW) {
        return Err(TaskError::InvalidSpec(
            "commit, reveal and attest windows must be between 1 and 1000000 blocks",
        ));
    }
    Ok(())
}

/// Creates a task and escrows its whole budget from the creator.
pub fn create(state: &mut Overlay, creator: &Address, spec: &TaskSpec) -> Result<u64, TxError> {
    validate_spec(spec)?;
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
        },
    );
    tracing::debug!(task = id, creator = %creator, budget, "task created");
    Ok(id)
}

/// Adds the signer to an open task, locking `bond` of its free stake.
pub fn join(
    state: &mut Overlay,
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
    if bond == 0 || bond < task.spec.min_stake {
        return Err(TaskError::BondTooSmall {
            bond,
            minimum: task.spec.min_stake,
        }
        .into());
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
    close(state, &mut task, TaskStatus::Cancelled)
}

/// Opens round `number`: fixes its seed and input model, schedules its close.
pub fn open_round(
    state: &mut Overlay,
    env: &Env,
    task: &mut Task,
    number: u32,
) -> Result<(), TxError> {
    let seed = domain_hash(
        b"cairn/round-seed",
        &[&env.parent, &task.id.to_be_bytes(), &number.to_be_bytes()],
    );
    let round = Round {
        task: task.id,
        number,
        opened_at: env.height,
        seed,
        model_hash: task.model_hash,
        commits: BTreeMap::new(),
        attestations: BTreeMap::new(),
        outcome: None,
    };
    state.write(keys::round(task.id, number), &round);
    task.status = TaskStatus::Running { round: number };
    save(state, task);
    let due = env
        .height
        .checked_add(task.spec.round_length())
        .ok_or(TxError::Overflow("height"))?;
    tracing::debug!(task = task.id, round = number, due, "round opened");
    schedule::push(
        state,
        due,
        &Event::CloseRound {
            task: task.id,
            round: number,
        },
    )
}

/// Ends a task: refunds the unspent escrow to the creator and unlocks every member's bond.
pub fn close(state: &mut Overlay, task: &mut Task, status: TaskStatus) -> Result<(), TxError> {
    if task.escrow > 0 {
        account::credit(state, &task.creator, task.escrow)?;
        task.escrow = 0;
    }
    for (member, bond) in task.trainers.iter().chain(task.validators.iter()) {
        staking::unlock(state, member, *bond)?;
    }
    task.status = status;
    save(state, task);
    tracing::debug!(task = task.id, status = ?status, "task closed");
    Ok(())
}
