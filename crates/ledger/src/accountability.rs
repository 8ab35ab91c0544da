//! Validators answer for what they attest. Once a round's counted updates are fixed on the
//! ledger (availability votes), its next model and every score are deterministic functions of
//! data every validator holds: the counted update blobs, `M_r`, and the task's held-out split.
//! Honest validators therefore attest the same hash and give identical scores, bit for bit, and
//! one that cannot fetch a counted blob in time attests nothing rather than something else.
//!
//! **What is provably wrong.** With less than 1/3 of validator stake faulty (the chain's own
//! assumption), any value backed by more than 1/3 of stake was given by at least one honest
//! validator, so it is the value of the deterministic computation, and any other value is wrong:
//! - a revealed model hash other than the finalized one (backed by at least 2/3);
//! - a score for a counted trainer other than the value backed by more than half of the stake
//!   (when one is: honest validators may be missing, and then nobody's score is judged).
//!
//! Each offender is slashed `slash_fraction_ppm` of its task bond (rounded up) once per round and
//! earns no validator reward for it; `cairn replay` re-executes the round to show the same
//! thing off-chain. A missing score is shirking, not a lie: it earns nothing
//! (`crate::reward`), it is not slashed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::address::Address;
use crate::encoding::Hash;
use crate::round::Round;
use crate::task::Task;

/// What a validator attested that the round proves wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Fault {
    /// It revealed a model hash other than the finalized one.
    WrongModelHash,
    /// It attested the finalized hash with a score that differs from the one more than half
    /// of the stake gave.
    WrongScore,
}

/// The score of each counted trainer that validators holding more than half of the task's
/// validator stake gave exactly (over attestations of the `winner` hash). A trainer on which
/// no value has such backing is absent.
pub fn settled_scores(task: &Task, round: &Round, winner: &Hash) -> BTreeMap<Address, u32> {
    let total = task.validator_stake();
    let mut tallies: BTreeMap<Address, BTreeMap<u32, u128>> = BTreeMap::new();
    for (validator, attestation) in &round.attestations {
        let (Some(reveal), Some(bond)) = (&attestation.reveal, task.validators.get(validator))
        else {
            continue;
        };
        if reveal.model_hash != *winner {
            continue;
        }
        for (trainer, score) in &reveal.scores {
            let stake = tallies
                .entry(*trainer)
                .or_default()
                .entry(*score)
                .or_default();
            *stake = stake.saturating_add(*bond);
        }
    }
    tallies
        .into_iter()
        .filter(|(trainer, _)| round.counts(trainer))
        .filter_map(|(trainer, tally)| {
            tally
                .into_iter()
                .find(|(_, stake)| stake.saturating_mul(2) > total)
                .map(|(score, _)| (trainer, score))
        })
        .collect()
}

/// Every validator whose revealed attestation the finalized `winner` proves wrong, with the
/// first fault found (a wrong hash before a wrong score).
pub fn provably_wrong(task: &Task, round: &Round, winner: &Hash) -> BTreeMap<Address, Fault> {
    let settled = settled_scores(task, round, winner);
    round
        .attestations
        .iter()
        .filter(|(validator, _)| task.validators.contains_key(*validator))
        .filter_map(|(validator, attestation)| {
            let reveal = attestation.reveal.as_ref()?;
            if reveal.model_hash != *winner {
                return Some((*validator, Fault::WrongModelHash));
            }
            let wrong = reveal.scores.iter().any(|(trainer, score)| {
                settled.get(trainer).is_some_and(|settled| settled != score)
            });
            wrong.then_some((*validator, Fault::WrongScore))
        })
        .collect()
}
