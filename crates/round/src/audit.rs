//! Which trainers are audited in a round, and by whom, from a seed fixed after the reveals; and
//! the arithmetic that sets the audit rate (`docs/verification.md`).
//!
//! The seed is `domain_hash("cairn/audit-seed/v1", parent ‖ task ‖ round)`, where `parent` is the
//! hash of the last block of the reveal window: it did not exist when trainers committed, so no
//! trainer can know whether it will be audited. Each revealed update is audited with probability
//! `audit_ppm / 10⁶`, and always when its hash was revealed by another trainer too or was revealed
//! in the previous round (an update that is not its sender's own work). An audited trainer gets
//! [`AUDITORS_PER_TRAINER`] distinct auditors among the task's validators (all of them when there
//! are fewer).

use std::collections::{BTreeMap, BTreeSet};

use crate::address::Address;
use crate::encoding::{domain_hash, first_u64, Hash};

/// Auditors drawn for each audited trainer.
pub const AUDITORS_PER_TRAINER: usize = 2;

/// Parts per million.
const PPM: u64 = 1_000_000;

/// The audit seed of a round.
pub fn audit_seed(parent: &Hash, task: u64, round: u32) -> Hash {
    domain_hash(
        b"cairn/audit-seed/v1",
        &[parent, &task.to_be_bytes(), &round.to_be_bytes()],
    )
}

/// Why a trainer is audited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuditReason {
    /// Drawn at the task's audit rate.
    Drawn,
    /// Its update hash was also revealed by another trainer this round.
    Duplicate,
    /// Its update hash was revealed in the previous round.
    Replayed,
}

/// The draw for one trainer, in `[0, 10⁶)`: audited when below the rate.
pub fn draw_value(seed: &Hash, trainer: &Address) -> u64 {
    first_u64(&domain_hash(
        b"cairn/audit-draw/v1",
        &[seed, trainer.as_bytes()],
    )) % PPM
}

/// The audits of a round: for every audited trainer, why and by which validators (ascending).
///
/// `revealed` maps each trainer that revealed to its update hash; `replayed` holds update
/// hashes revealed in the previous round; `validators` are the task's validators (sorted).
pub fn draw(
    seed: &Hash,
    revealed: &BTreeMap<Address, Hash>,
    replayed: &BTreeSet<Hash>,
    validators: &[Address],
    audit_ppm: u32,
) -> BTreeMap<Address, (AuditReason, Vec<Address>)> {
    let mut holders: BTreeMap<Hash, usize> = BTreeMap::new();
    for hash in revealed.values() {
        *holders.entry(*hash).or_default() += 1;
    }
    let mut audits = BTreeMap::new();
    for (trainer, hash) in revealed {
        let reason = if holders.get(hash).copied().unwrap_or(0) > 1 {
            AuditReason::Duplicate
        } else if replayed.contains(hash) {
            AuditReason::Replayed
        } else if draw_value(seed, trainer) < u64::from(audit_ppm) {
            AuditReason::Drawn
        } else {
            continue;
        };
        audits.insert(*trainer, (reason, auditors(seed, trainer, validators)));
    }
    audits
}

/// [`AUDITORS_PER_TRAINER`] distinct validators for `trainer`, drawn without replacement.
pub fn auditors(seed: &Hash, trainer: &Address, validators: &[Address]) -> Vec<Address> {
    let mut pool: Vec<Address> = validators.to_vec();
    let mut chosen = Vec::new();
    for i in 0..AUDITORS_PER_TRAINER.min(pool.len()) {
        let value = first_u64(&domain_hash(
            b"cairn/auditor/v1",
            &[seed, trainer.as_bytes(), &(i as u64).to_be_bytes()],
        ));
        let pick = (value % pool.len() as u64) as usize;
        chosen.push(pool.remove(pick));
    }
    chosen.sort_unstable();
    chosen
}

/// Probability that a cheating trainer is caught in one round: it is audited with probability
/// `rate`, and each of its `auditors` checks with probability `1 − lazy` (an auditor that never
/// audits catches nothing): `rate · (1 − lazy^auditors)`.
pub fn catch_probability(rate: f64, lazy: f64, auditors: usize) -> f64 {
    rate * (1.0 - lazy.powi(auditors as i32))
}

/// The smallest audit rate, in ppm, at which cheating in a round has a negative expected
/// profit for a trainer that would earn `reward` and forfeits `bond` (and that reward) when
/// caught: `p · (bond + reward) > reward`, i.e. `p > reward / (reward + bond)`, rounded up.
pub fn deterrent_rate_ppm(reward: u128, bond: u128) -> u32 {
    // Scale both down until `reward · 10⁶` and `reward + bond` fit (only huge amounts need it).
    let (mut reward, mut bond) = (reward, bond);
    while reward > u128::MAX / u128::from(PPM) || reward.checked_add(bond).is_none() {
        reward >>= 1;
        bond >>= 1;
    }
    let total = reward + bond;
    if total == 0 {
        return PPM as u32;
    }
    let ppm = reward * u128::from(PPM) / total + 1;
    ppm.min(u128::from(PPM)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(i: u8) -> Address {
        Address([i; 20])
    }

    #[test]
    fn duplicates_and_replays_are_always_audited_by_two_distinct_validators() {
        let validators: Vec<Address> = (100..104).map(address).collect();
        let revealed = BTreeMap::from([
            (address(1), [1; 32]),
            (address(2), [1; 32]),
            (address(3), [3; 32]),
            (address(4), [4; 32]),
        ]);
        let replayed = BTreeSet::from([[3; 32]]);
        let audits = draw(&[9; 32], &revealed, &replayed, &validators, 0);
        assert_eq!(audits.len(), 3);
        assert_eq!(audits[&address(1)].0, AuditReason::Duplicate);
        assert_eq!(audits[&address(2)].0, AuditReason::Duplicate);
        assert_eq!(audits[&address(3)].0, AuditReason::Replayed);
        for (_, auditors) in audits.values() {
            assert_eq!(auditors.len(), 2);
            assert_ne!(auditors[0], auditors[1]);
            assert!(auditors.iter().all(|a| validators.contains(a)));
        }
        let one = draw(&[9; 32], &revealed, &replayed, &validators[..1], 0);
        assert_eq!(one[&address(1)].1, vec![validators[0]]);
    }

    #[test]
    fn the_drawn_fraction_follows_the_rate() {
        let validators: Vec<Address> = (0..4).map(address).collect();
        let mut audited = 0;
        let trials = 20_000u32;
        for i in 0..trials {
            let mut trainer = [0u8; 20];
            trainer[..4].copy_from_slice(&i.to_be_bytes());
            let revealed = BTreeMap::from([(Address(trainer), [7; 32])]);
            let seed = [i as u8; 32];
            audited += draw(&seed, &revealed, &BTreeSet::new(), &validators, 100_000).len();
        }
        let fraction = audited as f64 / f64::from(trials);
        assert!((fraction - 0.1).abs() < 0.01, "{fraction}");
        assert!(draw(
            &[1; 32],
            &BTreeMap::from([(address(1), [1; 32])]),
            &BTreeSet::new(),
            &validators,
            1_000_000
        )
        .contains_key(&address(1)));
    }

    #[test]
    fn the_deterrent_rate_makes_cheating_lose_money() {
        let (reward, bond) = (800u128, 15_200u128);
        let rate = deterrent_rate_ppm(reward, bond);
        assert_eq!(rate, 50_001);
        let p = f64::from(rate) / 1e6;
        let expected = (1.0 - p) * reward as f64 - p * bond as f64;
        assert!(expected < 0.0, "{expected}");
        assert_eq!(deterrent_rate_ppm(0, 0), 1_000_000);
        assert_eq!(deterrent_rate_ppm(u128::MAX, 1), 1_000_000);
        assert!((catch_probability(0.1, 0.5, 2) - 0.075).abs() < 1e-12);
    }
}
