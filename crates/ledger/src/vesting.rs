//! Money waits for verification: a finalized round's rewards are paid only once its audit window
//! is over, a trainer with an open dispute over the round waits for the dispute, a trainer that
//! loses one forfeits the round's reward, a validator that skipped an audit it was drawn for
//! forfeits its own and is slashed, and a task settles (unspent escrow refunded, bonds
//! unlocked) only when its last audit window is over and no dispute is open.

use crate::account;
use crate::address::Address;
use crate::execute::{Env, TxError};
use crate::lifecycle;
use std::collections::BTreeSet;

use crate::round::{AuditStatus, Outcome, Round};
use crate::schedule::{self, Event};
use crate::settlement::slash_bond;
use crate::state::{keys, Overlay};
use crate::task::{Task, TaskStatus};

/// The reward `address` was awarded in `round` (0 when none).
pub fn awarded(round: &Round, address: &Address) -> u128 {
    match &round.outcome {
        Some(Outcome::Finalized {
            trainer_rewards,
            validator_rewards,
            ..
        }) => trainer_rewards
            .get(address)
            .or_else(|| validator_rewards.get(address))
            .copied()
            .unwrap_or(0),
        _ => 0,
    }
}

/// Pays a promised reward out of the task's escrow.
fn pay(
    state: &mut Overlay,
    task: &mut Task,
    address: &Address,
    amount: u128,
) -> Result<(), TxError> {
    if amount == 0 {
        return Ok(());
    }
    task.escrow = task
        .escrow
        .checked_sub(amount)
        .ok_or(TxError::Overflow("task escrow"))?;
    task.pending = task
        .pending
        .checked_sub(amount)
        .ok_or(TxError::Overflow("pending rewards"))?;
    account::credit(state, address, amount)?;
    let key = keys::reward(address);
    let earned: u128 = state.read(&key)?.unwrap_or(0);
    state.write(key, &earned.saturating_add(amount));
    Ok(())
}

/// Whether `trainer` has a dispute over `round` that is still open.
pub fn has_open_dispute(
    state: &Overlay,
    round: &Round,
    trainer: &Address,
) -> Result<bool, TxError> {
    for id in &round.disputes {
        if let Some(dispute) = state.read::<crate::dispute::Dispute>(&keys::dispute(*id))? {
            if dispute.trainer == *trainer && dispute.is_open() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Pays a finalized round's rewards (a scheduled event after its audit window): each validator
/// in full unless it left an audit it was drawn for unreported (forfeited, and slashed
/// `slash_fraction_ppm` of its task bond); each trainer unless it lost a dispute over the round
/// (forfeited) or one is still open (withheld until it resolves).
pub fn vest_round(state: &mut Overlay, env: &Env, id: u64, number: u32) -> Result<(), TxError> {
    let mut task = lifecycle::load(state, id)?;
    let key = keys::round(id, number);
    let Some(mut round) = state.read::<Round>(&key)? else {
        return Ok(());
    };
    let Some(Outcome::Finalized {
        trainer_rewards,
        validator_rewards,
        ..
    }) = round.outcome.clone()
    else {
        return Ok(());
    };
    let Some(mut vesting) = round.vesting.take() else {
        return Ok(());
    };
    if vesting.done {
        round.vesting = Some(vesting);
        return Ok(());
    }
    // An auditor that never reported on an audit it was drawn for (neither passed nor
    // challenged by the end of the audit window) did not audit: it forfeits the round's
    // validator reward, which would otherwise pay it as much as one that did the work. An audit
    // of a trainer expelled meanwhile (it lost a dispute over another round) is moot: there is
    // nothing left to take from it, and auditors rightly stop.
    let silent_auditors: BTreeSet<Address> = round
        .audits
        .iter()
        .filter(|(trainer, _)| !task.expelled.contains(*trainer))
        .flat_map(|(_, audit)| {
            audit
                .auditors
                .iter()
                .filter(|(_, status)| **status == AuditStatus::Assigned)
                .map(|(auditor, _)| *auditor)
        })
        .collect();
    // Forfeiting alone would leave skipping profitable whenever the audit costs more than the
    // round's validator reward: a drawn audit left unreported is also slashed, like a hidden
    // commitment.
    for auditor in &silent_auditors {
        let amount = slash_bond(state, env, &mut task.validators, auditor, round.opened_at)?;
        round.add_penalty(auditor, amount);
        tracing::info!(task = id, round = number, %auditor, amount, "audit left unreported: slashed");
    }
    for (validator, amount) in &validator_rewards {
        if silent_auditors.contains(validator) {
            if *amount > 0 {
                vesting.forfeited.insert(*validator, *amount);
                task.pending = task.pending.saturating_sub(*amount);
            }
            continue;
        }
        pay(state, &mut task, validator, *amount)?;
    }
    for (trainer, amount) in &trainer_rewards {
        if vesting.forfeited.contains_key(trainer) {
            continue;
        }
        if has_open_dispute(state, &round, trainer)? {
            vesting.withheld.insert(*trainer);
            continue;
        }
        pay(state, &mut task, trainer, *amount)?;
    }
    vesting.done = true;
    tracing::debug!(
        task = id,
        round = number,
        withheld = vesting.withheld.len(),
        "round vested"
    );
    round.vesting = Some(vesting);
    state.write(key, &round);
    lifecycle::save(state, &task);
    Ok(())
}

/// A trainer lost a dispute over `round`: its reward for the round is forfeited (it stays in the
/// escrow and goes back to the creator when the task settles).
pub fn forfeit(task: &mut Task, round: &mut Round, trainer: &Address) {
    let amount = awarded(round, trainer);
    let Some(vesting) = round.vesting.as_mut() else {
        return;
    };
    if amount == 0 || vesting.forfeited.contains_key(trainer) {
        return;
    }
    // Paid rewards cannot be forfeited; a dispute open at vesting time withheld this one.
    if vesting.done && !vesting.withheld.contains(trainer) {
        return;
    }
    vesting.withheld.remove(trainer);
    vesting.forfeited.insert(*trainer, amount);
    task.pending = task.pending.saturating_sub(amount);
}

/// A trainer's last open dispute over `round` ended in its favour: pay a withheld reward now
/// (or let the vesting pay it, if it has not run).
pub fn release(
    state: &mut Overlay,
    task: &mut Task,
    round: &mut Round,
    trainer: &Address,
) -> Result<(), TxError> {
    let amount = awarded(round, trainer);
    let Some(vesting) = round.vesting.as_mut() else {
        return Ok(());
    };
    if vesting.withheld.remove(trainer) && vesting.done {
        pay(state, task, trainer, amount)?;
    }
    Ok(())
}

/// Settles a finished task (a scheduled event after its last audit window); while a dispute is
/// open it looks again after the latest open dispute's deadline.
pub fn settle_task(state: &mut Overlay, env: &Env, id: u64) -> Result<(), TxError> {
    let mut task = lifecycle::load(state, id)?;
    if task.status != TaskStatus::Finished {
        return Ok(());
    }
    let mut latest = None;
    for dispute in &task.open_disputes {
        let record = state
            .read::<crate::dispute::Dispute>(&keys::dispute(*dispute))?
            .ok_or(crate::dispute::DisputeError::Unknown(*dispute))?;
        latest = latest.max(Some(record.deadline));
    }
    if let Some(deadline) = latest {
        let again = deadline.max(env.height).saturating_add(2);
        tracing::debug!(task = id, again, "task settlement waits for open disputes");
        return schedule::push(state, again, &Event::SettleTask { task: id });
    }
    lifecycle::settle(state, &mut task, TaskStatus::Settled)
}
