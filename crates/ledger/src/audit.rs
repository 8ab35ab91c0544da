//! Availability and audits on the ledger: at the first block after a round's availability
//! window the updates that count are fixed (those validators holding at least 2/3 of stake voted
//! they hold), a trainer that provably served its update to nobody in this round and the one
//! before is slashed,
//! and a seed that did not exist when trainers committed chooses which counted updates are
//! audited and by which validators (`cairn_round::audit`); an auditor whose re-run matches
//! reports it, one whose re-run differs opens a dispute (`crate::dispute`).

use std::collections::{BTreeMap, BTreeSet};

use cairn_round::audit::{self as draw_rules, audit_seed};

use crate::address::Address;
use crate::encoding::{domain_hash, Hash};
use crate::execute::{Env, TxError};
use crate::lifecycle;
use crate::round::{Audit, AuditStatus, Round};
use crate::settlement::slash_bond;
use crate::state::{keys, Overlay};
use crate::task::Task;

/// Fixes a round's available updates, slashes repeated withholders and draws its audits (a
/// scheduled event at the first block of its attestation-commit window), seeded by the round's
/// seed and the beacon of its update reveals.
pub fn draw(state: &mut Overlay, env: &Env, task_id: u64, number: u32) -> Result<(), TxError> {
    let mut task = lifecycle::load(state, task_id)?;
    let key = keys::round(task_id, number);
    let Some(mut round) = state.read::<Round>(&key)? else {
        return Ok(());
    };
    if round.audit_seed.is_some() {
        return Ok(());
    }
    // From the reveals, not from a block hash: a proposer could grind its block's contents for
    // a parent hash that spares a friend's update, but no one can choose the beacon.
    let entropy = domain_hash(b"cairn/audit-entropy/v1", &[&round.seed, &round.beacon]);
    let seed = audit_seed(&entropy, task_id, number);
    let available = round.tally_available(&task.validators);
    round.available = Some(available.clone());
    round.unserved = round.tally_unserved(&task.validators);
    let revealed: BTreeMap<Address, Hash> = round
        .revealed()
        .filter(|(trainer, _)| available.contains(*trainer))
        .map(|(trainer, hash)| (*trainer, *hash))
        .collect();
    let previous = match number.checked_sub(1) {
        Some(previous) => state.read::<Round>(&keys::round(task_id, previous))?,
        None => None,
    };
    let replayed: BTreeSet<Hash> = previous
        .as_ref()
        .map(|p| p.commits.values().filter_map(|c| c.update_hash).collect())
        .unwrap_or_default();
    let withheld_before = previous.map(|p| p.unserved).unwrap_or_default();
    slash_withholders(state, env, &mut task, &mut round, &withheld_before)?;
    let validators: Vec<Address> = task.validators.keys().copied().collect();
    let drawn = draw_rules::draw(
        &seed,
        &revealed,
        &replayed,
        &validators,
        task.spec.verification.audit_ppm,
    );
    round.audit_seed = Some(seed);
    round.audits = drawn
        .into_iter()
        .map(|(trainer, (reason, auditors))| {
            let auditors = auditors
                .into_iter()
                .map(|auditor| (auditor, AuditStatus::Assigned))
                .collect();
            (trainer, Audit { reason, auditors })
        })
        .collect();
    tracing::debug!(
        task = task_id,
        round = number,
        audited = round.audits.len(),
        "audits drawn"
    );
    state.write(key, &round);
    Ok(())
}

/// Slashes every trainer that provably did not serve its revealed update ([`Round::unserved`])
/// in this round and in the round before (`slash_fraction_ppm` of its task bond, rounded up). A
/// first miss costs only the round's reward, so one lost connection is not punished; a trainer
/// that keeps revealing what it does not serve pays for every round it does it again.
fn slash_withholders(
    state: &mut Overlay,
    env: &Env,
    task: &mut Task,
    round: &mut Round,
    withheld_before: &BTreeSet<Address>,
) -> Result<(), TxError> {
    let repeated: Vec<Address> = round
        .unserved
        .intersection(withheld_before)
        .copied()
        .collect();
    if repeated.is_empty() {
        return Ok(());
    }
    for trainer in repeated {
        let amount = slash_bond(state, env, &mut task.trainers, &trainer, round.opened_at)?;
        round.add_penalty(&trainer, amount);
        tracing::info!(task = task.id, round = round.number, %trainer, amount, "repeated withholding slashed");
    }
    lifecycle::save(state, task);
    Ok(())
}

/// Why an audit report was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    /// The task has no such round (yet).
    #[error("task {task} has no round {round}")]
    UnknownRound {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
    },
    /// The round's audits are not drawn yet.
    #[error("the audits of this round are not drawn yet")]
    NotDrawn,
    /// The sender was not drawn to audit this trainer.
    #[error("{auditor} was not drawn to audit {trainer} in this round")]
    NotAuditor {
        /// The sender.
        auditor: Address,
        /// The trainer named.
        trainer: Address,
    },
    /// The auditor already reported or challenged.
    #[error("{0} already reported on this audit")]
    AlreadyReported(Address),
    /// The round's audit window is over.
    #[error("the audit window of this round closed at height {0}")]
    WindowClosed(u64),
}

/// An auditor reports that its re-run of `trainer`'s round matched (recorded on the round).
pub fn report(
    state: &mut Overlay,
    env: &Env,
    auditor: &Address,
    (task_id, number): (u64, u32),
    trainer: &Address,
) -> Result<(), TxError> {
    let task = lifecycle::load(state, task_id)?;
    let key = keys::round(task_id, number);
    let mut round: Round = state.read(&key)?.ok_or(AuditError::UnknownRound {
        task: task_id,
        round: number,
    })?;
    if round.audit_seed.is_none() {
        return Err(AuditError::NotDrawn.into());
    }
    let deadline = round.challenge_deadline(&task.spec);
    if env.height > deadline {
        return Err(AuditError::WindowClosed(deadline).into());
    }
    let status = round
        .audits
        .get_mut(trainer)
        .and_then(|audit| audit.auditors.get_mut(auditor))
        .ok_or(AuditError::NotAuditor {
            auditor: *auditor,
            trainer: *trainer,
        })?;
    if *status != AuditStatus::Assigned {
        return Err(AuditError::AlreadyReported(*auditor).into());
    }
    *status = AuditStatus::Passed;
    state.write(key, &round);
    Ok(())
}
