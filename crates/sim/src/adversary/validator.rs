//! Validators that attest falsely, copy, stay silent, skip their audits or challenge without
//! cause, each a [`ValidatorConduct`] that changes one decision of the protocol's.

use std::collections::{BTreeMap, BTreeSet};

use cairn_ledger::dispute::Dispute;
use cairn_ledger::round::Round;
use cairn_ledger::{query, Address, Task};
use cairn_node::protocol::{AttestInput, Attestation, ValidatorConduct, VoteInput};

/// Parts per million.
const PPM: u32 = 1_000_000;

/// Scores honestly but attests a model hash other than the one it computed.
#[derive(Debug, Default)]
pub struct WrongHash;

impl ValidatorConduct for WrongHash {
    fn attest(&mut self, _input: &AttestInput<'_>, honest: Attestation) -> Option<Attestation> {
        Some(Attestation {
            model_hash: *blake3::keyed_hash(&honest.model_hash, b"cairn/wrong-model").as_bytes(),
            ..honest
        })
    }
}

/// Computes the model but does not score: copies the previous round's consensus scores (equal
/// shares in round 0), since attestations are hidden until their reveal.
#[derive(Debug, Default)]
pub struct ScoreCopier;

impl ValidatorConduct for ScoreCopier {
    fn scores(&mut self) -> bool {
        false
    }

    fn attest(&mut self, input: &AttestInput<'_>, honest: Attestation) -> Option<Attestation> {
        let previous = match input.round.number.checked_sub(1) {
            Some(r) => query::scores(input.state, input.task.id, r).unwrap_or_default(),
            None => BTreeMap::new(),
        };
        let scores = if previous.is_empty() {
            let share = PPM / (input.counted.len().max(1) as u32);
            input.counted.iter().map(|(t, _)| (*t, share)).collect()
        } else {
            input
                .counted
                .iter()
                .map(|(t, _)| (*t, previous.get(t).copied().unwrap_or(0)))
                .collect()
        };
        Some(Attestation {
            model_hash: honest.model_hash,
            scores,
        })
    }
}

/// Joins and never votes, attests, audits or challenges.
#[derive(Debug, Default)]
pub struct Mute;

impl ValidatorConduct for Mute {
    fn vote(
        &mut self,
        _input: &VoteInput<'_>,
        _honest: BTreeSet<Address>,
    ) -> Option<BTreeSet<Address>> {
        None
    }

    fn scores(&mut self) -> bool {
        false
    }

    fn attest(&mut self, _input: &AttestInput<'_>, _honest: Attestation) -> Option<Attestation> {
        None
    }

    fn audits(&mut self) -> bool {
        false
    }
}

/// Attests honestly but never runs the audits it is drawn for (nor challenges).
#[derive(Debug, Default)]
pub struct LazyAuditor;

impl ValidatorConduct for LazyAuditor {
    fn audits(&mut self) -> bool {
        false
    }
}

/// Challenges one trainer per round whatever its audit says (the revealed trainer at position
/// `round mod revealers`), and disagrees with every claim in its disputes.
#[derive(Debug, Default)]
pub struct FalseChallenger;

impl ValidatorConduct for FalseChallenger {
    fn unfounded_challenges(&mut self, _task: &Task, round: &Round) -> Vec<Address> {
        let revealed: Vec<Address> = round
            .commits
            .iter()
            .filter(|(_, commit)| commit.last_checkpoint.is_some())
            .map(|(trainer, _)| *trainer)
            .collect();
        if revealed.is_empty() {
            return Vec::new();
        }
        vec![revealed[round.number as usize % revealed.len()]]
    }

    fn answer(&mut self, _dispute: &Dispute, _honest: bool) -> bool {
        false
    }
}
