//! What the final ledger state says about a run: each node's rewards, slashes and forfeits,
//! each round's audits and disputes, and the run's audit and dispute figures.

use std::collections::BTreeMap;

use cairn_ledger::dispute::{Party, Reason, Stage};
use cairn_ledger::encoding::to_hex;
use cairn_ledger::round::{AuditStatus, Outcome, Round};
use cairn_ledger::state::{keys, Overlay};
use cairn_ledger::store::StateRead;
use cairn_ledger::{query, Address};
use cairn_round::audit::AuditReason;
use cairn_round::{witness, TaskPlan};

use crate::result::{NodeCosts, NodeRecord, NodeRole, NodeWork, RoundRecord, VerificationRecord};

/// One node as the tally needs it.
pub(crate) struct Member<'a> {
    pub(crate) name: &'a str,
    pub(crate) address: Address,
    pub(crate) role: NodeRole,
    pub(crate) behaviour: &'a str,
    pub(crate) stake: u128,
}

/// Per-node records and run figures.
pub(crate) struct Tally {
    pub(crate) nodes: Vec<NodeRecord>,
    pub(crate) verification: VerificationRecord,
}

/// Fills the rounds' audit, dispute and slash figures and computes every node's record.
pub(crate) fn tally(
    state: &dyn StateRead,
    (task, plan): (u64, &TaskPlan),
    members: &[Member<'_>],
    records: &mut [RoundRecord],
) -> Tally {
    let rounds: Vec<Round> = (0..records.len() as u32)
        .filter_map(|r| query::round(state, task, r).ok().flatten())
        .collect();
    let plan_task = query::task(state, task).ok().flatten();
    let next_dispute: u64 = Overlay::new(state)
        .read(keys::NEXT_DISPUTE)
        .ok()
        .flatten()
        .unwrap_or(0);
    let disputes: Vec<_> = (0..next_dispute)
        .filter_map(|id| query::dispute(state, id).ok().flatten())
        .filter(|d| d.task == task)
        .collect();
    let mut verification = VerificationRecord {
        audit_ppm: plan_task
            .as_ref()
            .map_or(0, |t| t.spec.verification.audit_ppm),
        ..VerificationRecord::default()
    };
    for round in &rounds {
        verification.audited += round.audits.len() as u64;
        for audit in round.audits.values() {
            if audit.reason != AuditReason::Drawn {
                verification.forced_audits += 1;
            }
            verification.audits_passed += audit
                .auditors
                .values()
                .filter(|s| **s == AuditStatus::Passed)
                .count() as u64;
        }
    }
    let mut won: BTreeMap<Address, u32> = BTreeMap::new();
    let mut lost: BTreeMap<Address, u32> = BTreeMap::new();
    for dispute in &disputes {
        verification.disputes += 1;
        let Stage::Resolved(resolution) = dispute.stage else {
            continue;
        };
        verification
            .dispute_blocks
            .push(resolution.height.saturating_sub(dispute.opened_at));
        verification.referee_steps += u64::from(resolution.referee_steps);
        match resolution.reason {
            Reason::Moot => verification.moot += 1,
            Reason::Referee | Reason::BadWitness => {
                verification.refereed += 1;
                let carries = plan.worker_momentum != 0.0
                    && query::carried(state, dispute.task, dispute.round, &dispute.trainer)
                        .ok()
                        .flatten()
                        .is_some();
                verification.witness_bytes += witness::encoded_len(plan, dispute.low.step, carries);
            }
            Reason::Silence => {}
        }
        if resolution.reason == Reason::Moot {
            continue;
        }
        let (winner, loser) = match resolution.winner {
            Party::Trainer => (dispute.trainer, dispute.challenger),
            Party::Challenger => (dispute.challenger, dispute.trainer),
        };
        match resolution.winner {
            Party::Trainer => verification.trainer_won += 1,
            Party::Challenger => verification.challenger_won += 1,
        }
        *won.entry(winner).or_default() += 1;
        *lost.entry(loser).or_default() += 1;
    }
    for (record, round) in records.iter_mut().zip(&rounds) {
        record.audited = round.audits.len() as u32;
        record.disputes = round.disputes.len() as u32;
        let missed: u128 = match &round.outcome {
            Some(Outcome::Finalized { slashed, .. }) | Some(Outcome::TimedOut { slashed }) => {
                slashed.values().sum()
            }
            None => 0,
        };
        record.slashed = missed + round.penalties.values().sum::<u128>();
        let forfeited: u128 = round
            .vesting
            .as_ref()
            .map_or(0, |v| v.forfeited.values().sum());
        record.rewards_paid = record.rewards_paid.saturating_sub(forfeited);
    }
    let nodes = members
        .iter()
        .map(|member| node_record(state, member, &rounds, &won, &lost))
        .collect();
    Tally {
        nodes,
        verification,
    }
}

fn node_record(
    state: &dyn StateRead,
    member: &Member<'_>,
    rounds: &[Round],
    won: &BTreeMap<Address, u32>,
    lost: &BTreeMap<Address, u32>,
) -> NodeRecord {
    let address = member.address;
    let mut slashed_total = 0u128;
    let mut forfeited_total = 0u128;
    let mut audited = 0u32;
    let mut revealed = 0u32;
    let mut rewards_per_round = Vec::new();
    for round in rounds {
        revealed += u32::from(
            round
                .commits
                .get(&address)
                .is_some_and(|commit| commit.update_hash.is_some()),
        );
        slashed_total += round.penalties.get(&address).copied().unwrap_or(0);
        audited += u32::from(round.audits.contains_key(&address));
        let forfeited = round
            .vesting
            .as_ref()
            .and_then(|v| v.forfeited.get(&address).copied())
            .unwrap_or(0);
        forfeited_total += forfeited;
        match &round.outcome {
            Some(Outcome::Finalized {
                trainer_rewards,
                validator_rewards,
                slashed,
                ..
            }) => {
                let awarded = trainer_rewards.get(&address).copied().unwrap_or(0)
                    + validator_rewards.get(&address).copied().unwrap_or(0);
                rewards_per_round.push(awarded.saturating_sub(forfeited));
                slashed_total += slashed.get(&address).copied().unwrap_or(0);
            }
            Some(Outcome::TimedOut { slashed }) => {
                rewards_per_round.push(0);
                slashed_total += slashed.get(&address).copied().unwrap_or(0);
            }
            None => rewards_per_round.push(0),
        }
    }
    NodeRecord {
        name: member.name.to_owned(),
        role: member.role,
        behaviour: member.behaviour.to_owned(),
        address: to_hex(&address.0),
        stake_initial: member.stake,
        stake_final: query::stake(state, &address).map(|s| s.bonded).unwrap_or(0),
        balance_final: query::balance(state, &address).unwrap_or(0),
        rewards_total: query::rewards(state, &address).unwrap_or(0),
        slashed_total,
        forfeited_total,
        revealed,
        audited,
        disputes_won: won.get(&address).copied().unwrap_or(0),
        disputes_lost: lost.get(&address).copied().unwrap_or(0),
        rewards_per_round,
        work: NodeWork::default(),
        costs: NodeCosts::default(),
    }
}
