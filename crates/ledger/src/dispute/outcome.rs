//! What a resolved dispute does to stakes and rewards.
//!
//! The trainer loses: its whole remaining task bond is slashed (burned, or paid to the
//! challenger when slashes go to challengers), it forfeits the round's reward, it takes no
//! further part in the task, every other open dispute over the same update ends with it, and the
//! challenger gets its bond back; when the referee decided, every auditor that had reported the
//! update as matching is slashed too. The challenger loses: its bond goes to the trainer, and the
//! trainer's withheld reward is paid once no other dispute over the round is open.

use super::{Dispute, Party, Reason, Resolution, Stage};
use crate::execute::{Env, TxError};
use crate::lifecycle;
use crate::round::{AuditStatus, Round};
use crate::settlement::slash_bond;
use crate::staking;
use crate::state::{keys, Overlay};
use crate::task::Task;
use crate::vesting;

/// Applies `resolution` to `dispute` and everything it touches, and stores them.
pub(super) fn resolve(
    state: &mut Overlay,
    env: &Env,
    dispute: &mut Dispute,
    resolution: Resolution,
) -> Result<(), TxError> {
    let mut task = lifecycle::load(state, dispute.task)?;
    let round_key = keys::round(dispute.task, dispute.round);
    let mut round: Round = state
        .read(&round_key)?
        .ok_or(super::DisputeError::NotRevealed(dispute.trainer))?;
    finish(dispute, &mut task, resolution);
    match resolution.winner {
        Party::Challenger => {
            let bond = task.trainers.get(&dispute.trainer).copied().unwrap_or(0);
            let taken = staking::slash(
                state,
                env,
                &dispute.trainer,
                bond,
                round.opened_at,
                Some(&dispute.challenger),
            )?;
            round.add_penalty(&dispute.trainer, taken);
            task.trainers.insert(dispute.trainer, 0);
            task.expelled.insert(dispute.trainer);
            vesting::forfeit(&mut task, &mut round, &dispute.trainer);
            staking::unlock(state, &dispute.challenger, dispute.bond)?;
            // Every other open dispute over this update ends with it: its challenger is refunded.
            for other_id in round.disputes.clone() {
                if other_id == dispute.id {
                    continue;
                }
                let key = keys::dispute(other_id);
                let Some(mut other) = state.read::<Dispute>(&key)? else {
                    continue;
                };
                if other.trainer != dispute.trainer || !other.is_open() {
                    continue;
                }
                drop_chunks(state, &other);
                finish(
                    &mut other,
                    &mut task,
                    Resolution {
                        winner: Party::Challenger,
                        reason: Reason::Moot,
                        computed: None,
                        referee_steps: 0,
                        height: env.height,
                    },
                );
                staking::unlock(state, &other.challenger, other.bond)?;
                state.write(key, &other);
            }
            if resolution.reason == Reason::Referee {
                slash_false_passes(state, env, &mut task, &mut round, &dispute.trainer)?;
            }
            tracing::info!(dispute = dispute.id, trainer = %dispute.trainer, slashed = taken, reason = ?resolution.reason, "trainer lost its dispute");
        }
        Party::Trainer => {
            staking::forfeit_locked(state, &dispute.challenger, dispute.bond, &dispute.trainer)?;
            round.add_penalty(&dispute.challenger, dispute.bond);
            // This dispute is already resolved in `dispute` but not yet stored: skip it.
            let mut still_open = false;
            for id in round.disputes.iter().filter(|id| **id != dispute.id) {
                if let Some(other) = state.read::<Dispute>(&keys::dispute(*id))? {
                    still_open |= other.trainer == dispute.trainer && other.is_open();
                }
            }
            if !still_open {
                vesting::release(state, &mut task, &mut round, &dispute.trainer)?;
            }
            tracing::info!(dispute = dispute.id, challenger = %dispute.challenger, bond = dispute.bond, reason = ?resolution.reason, "challenger lost its dispute");
        }
    }
    state.write(round_key, &round);
    lifecycle::save(state, &task);
    state.write(keys::dispute(dispute.id), &*dispute);
    Ok(())
}

fn finish(dispute: &mut Dispute, task: &mut Task, resolution: Resolution) {
    dispute.stage = Stage::Resolved(resolution);
    task.open_disputes.remove(&dispute.id);
}

fn drop_chunks(state: &mut Overlay, dispute: &Dispute) {
    if let Stage::Witness { chunks, .. } = dispute.stage {
        for chunk in 0..chunks {
            state.delete(keys::witness_chunk(dispute.id, chunk));
        }
    }
}

/// The referee found `trainer`'s trace wrong at a step: an auditor of that update that reported
/// its re-run as matching could not have re-run it (an honest re-run gives another trace root),
/// so it is slashed `slash_fraction_ppm` of its task bond, rounded up. Only a referee's verdict
/// proves this: a trainer that lost by silence may have committed honest work.
fn slash_false_passes(
    state: &mut Overlay,
    env: &Env,
    task: &mut Task,
    round: &mut Round,
    trainer: &crate::address::Address,
) -> Result<(), TxError> {
    let passed: Vec<crate::address::Address> = round
        .audits
        .get(trainer)
        .map(|audit| {
            audit
                .auditors
                .iter()
                .filter(|(_, status)| **status == AuditStatus::Passed)
                .map(|(auditor, _)| *auditor)
                .collect()
        })
        .unwrap_or_default();
    for auditor in passed {
        let amount = slash_bond(state, env, &mut task.validators, &auditor, round.opened_at)?;
        round.add_penalty(&auditor, amount);
        tracing::info!(task = task.id, round = round.number, %auditor, %trainer, amount, "auditor passed work the referee proved wrong: slashed");
    }
    Ok(())
}
