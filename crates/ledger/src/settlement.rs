//! Closing a round: slash commitments never revealed (trainers' and validators') and provably
//! wrong attestations (`crate::accountability`), finalize when at least 2/3 of validator stake
//! agrees on one model hash (awarding rewards, which vest once the round's audit window is over:
//! `crate::vesting`) or time out (nobody paid), then open the next round or finish the task.

use std::collections::BTreeMap;

use crate::accountability;
use crate::address::Address;
use crate::amount::fraction_up;
use crate::encoding::Hash;
use crate::execute::{Env, TxError};
use crate::lifecycle;
use crate::reward::{self, Ballot};
use crate::round::{Outcome, Round, Vesting};
use crate::schedule::{self, Event};
use crate::staking;
use crate::state::{keys, Overlay};
use crate::task::{Role, Task, TaskStatus};

/// Whether `agreeing` stake is at least two thirds of `total` (exact, no overflow).
pub fn is_supermajority(agreeing: u128, total: u128) -> bool {
    // 3a >= 2t  <=>  a >= ceil(2t / 3) = t - floor(t / 3).
    total > 0 && agreeing >= total - total / 3
}

/// The model hash backed by at least 2/3 of the task's validator stake, if any.
pub fn winning_model(task: &Task, round: &Round) -> Option<Hash> {
    let mut tally: BTreeMap<Hash, u128> = BTreeMap::new();
    for (validator, attestation) in &round.attestations {
        if let (Some(reveal), Some(bond)) = (&attestation.reveal, task.validators.get(validator)) {
            *tally.entry(reveal.model_hash).or_default() += bond;
        }
    }
    let total = task.validator_stake();
    tally
        .into_iter()
        .find(|(_, stake)| is_supermajority(*stake, total))
        .map(|(hash, _)| hash)
}

/// Closes round `number` of task `id` (a scheduled event at the round's last height + 1).
pub fn close_round(state: &mut Overlay, env: &Env, id: u64, number: u32) -> Result<(), TxError> {
    let mut task = lifecycle::load(state, id)?;
    if task.status != (TaskStatus::Running { round: number }) {
        // The task was closed some other way since the event was scheduled.
        return Ok(());
    }
    let key = keys::round(id, number);
    let mut round: Round = state
        .read(&key)?
        .ok_or(lifecycle::TaskError::UnknownTask(id))?;

    // The quorum is measured against the bonds the round opened with, before its own slashes.
    let winner = winning_model(&task, &round);
    let wrong = match &winner {
        Some(model_hash) => accountability::provably_wrong(&task, &round, model_hash),
        None => BTreeMap::new(),
    };
    let slashed = slash_offenders(state, env, &mut task, &round, &wrong)?;
    let outcome = match winner {
        Some(model_hash) => {
            let settlement = award(env, &mut task, &round, &model_hash, &wrong)?;
            state.write(keys::model(id, number), &model_hash);
            task.model_hash = model_hash;
            let vest_at = round
                .challenge_deadline(&task.spec)
                .checked_add(1)
                .ok_or(TxError::Overflow("height"))?;
            round.vesting = Some(Vesting {
                at: vest_at,
                done: false,
                withheld: Default::default(),
                forfeited: BTreeMap::new(),
            });
            schedule::push(
                state,
                vest_at,
                &Event::VestRound {
                    task: id,
                    round: number,
                },
            )?;
            tracing::info!(
                task = id,
                round = number,
                awarded = settlement.total(),
                vest_at,
                "round finalized"
            );
            Outcome::Finalized {
                model_hash,
                scores: settlement.scores,
                trainer_rewards: settlement.trainer_rewards,
                validator_rewards: settlement.validator_rewards,
                slashed,
            }
        }
        None => {
            tracing::info!(task = id, round = number, "round timed out");
            Outcome::TimedOut { slashed }
        }
    };
    round.outcome = Some(outcome);
    state.write(key, &round);

    let next = number + 1;
    if next < task.spec.rounds {
        lifecycle::open_round(state, env, &mut task, next)
    } else {
        lifecycle::finish(state, env, &mut task)
    }
}

/// Slashes every member that committed in this round and never revealed (trainers: an update
/// held back; validators: an attestation held back) and every validator whose revealed
/// attestation is provably wrong (`wrong`, [`accountability::provably_wrong`]). Each loses
/// `slash_fraction_ppm` of its task bond, rounded up, so no bond is too small to be slashed.
/// Returns what each lost.
fn slash_offenders(
    state: &mut Overlay,
    env: &Env,
    task: &mut Task,
    round: &Round,
    wrong: &BTreeMap<Address, accountability::Fault>,
) -> Result<BTreeMap<Address, u128>, TxError> {
    let trainers = round
        .commits
        .iter()
        .filter(|(_, commit)| commit.update_hash.is_none())
        .map(|(trainer, _)| (*trainer, Role::Trainer));
    let validators = round
        .attestations
        .iter()
        .filter(|(validator, attestation)| {
            attestation.reveal.is_none() || wrong.contains_key(*validator)
        })
        .map(|(validator, _)| (*validator, Role::Validator));
    let offenders: Vec<(Address, Role)> = trainers.chain(validators).collect();
    let mut slashed = BTreeMap::new();
    for (member, role) in offenders {
        let bonds = match role {
            Role::Trainer => &mut task.trainers,
            Role::Validator => &mut task.validators,
        };
        let amount = slash_bond(state, env, bonds, &member, round.opened_at)?;
        if amount == 0 {
            continue;
        }
        slashed.insert(member, amount);
        let fault = wrong.get(&member);
        tracing::info!(task = task.id, round = round.number, member = %member, ?role, amount, ?fault, "commitment unrevealed or provably wrong: slashed");
    }
    Ok(slashed)
}

/// Slashes `slash_fraction_ppm` of `member`'s bond in `bonds` (a task's trainer or validator
/// bonds), rounded up so that no bond is too small to be slashed, from its stake for an offence
/// in the round opened at `offence`. Returns the amount (0 when it has no bond left).
pub(crate) fn slash_bond(
    state: &mut Overlay,
    env: &Env,
    bonds: &mut BTreeMap<Address, u128>,
    member: &Address,
    offence: u64,
) -> Result<u128, TxError> {
    let Some(bond) = bonds.get_mut(member) else {
        return Ok(0);
    };
    let amount = fraction_up(*bond, env.params.slash_fraction_ppm);
    if amount > 0 {
        *bond -= amount;
        staking::slash(state, env, member, amount, offence, None)?;
    }
    Ok(amount)
}

/// Computes the round's rewards and promises them from the escrow (they are paid when the
/// round vests). Trainers whose update was not available, or that lost a dispute, get nothing.
fn award(
    env: &Env,
    task: &mut Task,
    round: &Round,
    model_hash: &Hash,
    wrong: &BTreeMap<Address, accountability::Fault>,
) -> Result<reward::Settlement, TxError> {
    let trainers: Vec<Address> = round
        .commits
        .iter()
        .filter(|(trainer, commit)| {
            commit.update_hash.is_some()
                && round.counts(trainer)
                && !task.expelled.contains(*trainer)
        })
        .map(|(trainer, _)| *trainer)
        .collect();
    let ballots: BTreeMap<Address, Ballot> = round
        .attestations
        .iter()
        .filter_map(|(validator, attestation)| {
            let reveal = attestation.reveal.as_ref()?;
            let weight = *task.validators.get(validator)?;
            // Paid for the round's whole work: its availability vote, then an attestation
            // that agrees with the finalized model, and no provably wrong score.
            let voted = round.votes.contains_key(validator);
            let right = reveal.model_hash == *model_hash && !wrong.contains_key(validator);
            (voted && right).then_some((
                *validator,
                Ballot {
                    weight,
                    scores: &reveal.scores,
                },
            ))
        })
        .collect();
    let pool = task.spec.reward_per_round.min(task.unpromised());
    let settlement = reward::settle(
        &trainers,
        &ballots,
        pool,
        env.params.validator_reward_ppm,
        env.params.score_tolerance_ppm,
    );
    task.pending = task
        .pending
        .checked_add(settlement.total())
        .ok_or(TxError::Overflow("pending rewards"))?;
    debug_assert!(task.pending <= task.escrow);
    Ok(settlement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supermajority_is_exactly_two_thirds() {
        assert!(is_supermajority(2, 3));
        assert!(!is_supermajority(1, 3));
        assert!(is_supermajority(67, 100));
        assert!(!is_supermajority(66, 100));
        assert!(is_supermajority(u128::MAX, u128::MAX));
        assert!(!is_supermajority(0, 0));
    }
}
