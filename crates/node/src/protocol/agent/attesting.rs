//! A validator's rounds: once the reveal window is over, fetch the revealed updates, aggregate,
//! store `M_{r+1}`, score and commit the attestation, and run the audits it was drawn for
//! (`super::auditing`); then reveal the attestation. Each once per round.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cairn_ledger::round::Round;
use cairn_ledger::transaction::{attestation_commitment, CommitmentScope};
use cairn_ledger::{query, Address, Hash, Payload, Phase};
use cairn_ml::data::Dataset;

use cairn_round::aggregation::{aggregate_round, Revealed};
use cairn_round::scoring::{self, score_updates};

use super::auditing::Audits;
use super::{model_params, prune, salt, AgentError, Cached, Intent, Needed, Step};
use crate::protocol::conduct::{AttestInput, Attestation, ValidatorConduct};

/// A validator's attestation for one round.
#[derive(Debug)]
struct Attested {
    model_hash: Hash,
    scores: BTreeMap<Address, u32>,
    salt: Hash,
    revealed: bool,
}

/// A validator's state across rounds.
#[derive(Debug)]
pub(crate) struct Validator {
    pub(crate) conduct: Box<dyn ValidatorConduct>,
    held_out: Cached,
    rounds: BTreeMap<u32, Attested>,
    failed: BTreeSet<u32>,
    pub(crate) audits: Audits,
    /// What its scoring cost.
    pub(crate) work: super::WorkStats,
}

impl Validator {
    pub(crate) fn new(conduct: Box<dyn ValidatorConduct>) -> Self {
        Self {
            conduct,
            held_out: None,
            rounds: BTreeMap::new(),
            failed: BTreeSet::new(),
            audits: Audits::default(),
            work: super::WorkStats::default(),
        }
    }

    pub(crate) fn step(
        &mut self,
        step: &Step<'_>,
        round: &Round,
    ) -> Result<Vec<Intent>, AgentError> {
        let mut intents = self.attestation_step(step, round)?;
        intents.extend(self.audit(step, round)?);
        Ok(intents)
    }

    fn attestation_step(
        &mut self,
        step: &Step<'_>,
        round: &Round,
    ) -> Result<Vec<Intent>, AgentError> {
        let number = round.number;
        prune(&mut self.rounds, number);
        self.failed.retain(|r| r.saturating_add(1) >= number);
        let spec = &step.task.spec;
        match Phase::at(spec, round.opened_at, step.height + 1) {
            // Fetch each update as soon as it is revealed, so that a lost request costs a retry
            // within the reveal window rather than the update's place in this validator's
            // aggregate (and, if validators' sets differ, the round).
            Phase::Reveal => Ok(prefetch(step, round)),
            Phase::AttestCommit
                if !self.rounds.contains_key(&number) && !self.failed.contains(&number) =>
            {
                if round.attestations.contains_key(&step.address) {
                    return Ok(Vec::new());
                }
                let last_chance =
                    Phase::at(spec, round.opened_at, step.height + 2) != Phase::AttestCommit;
                self.attest(step, round, last_chance)
            }
            Phase::AttestReveal => Ok(self.reveal(step, round)),
            _ => Ok(Vec::new()),
        }
    }

    fn attest(
        &mut self,
        step: &Step<'_>,
        round: &Round,
        last_chance: bool,
    ) -> Result<Vec<Intent>, AgentError> {
        let number = round.number;
        let revealed: Vec<(Address, Hash)> = round
            .commits
            .iter()
            .filter_map(|(trainer, commit)| Some((*trainer, commit.update_hash?)))
            .collect();
        let previous = match number.checked_sub(1) {
            Some(r) => query::round(step.state, step.task.id, r)?,
            None => None,
        };
        // Blobs still missing: the input model, every revealed update, and the previous input
        // model (to recognise a replayed global step).
        let mut missing: Vec<Hash> = std::iter::once(round.model_hash)
            .chain(revealed.iter().map(|(_, hash)| *hash))
            .chain(previous.as_ref().map(|p| p.model_hash))
            .filter(|hash| step.blobs.blob(hash).is_none())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() && !last_chance {
            let holders: BTreeMap<Hash, Address> = revealed
                .iter()
                .map(|(trainer, hash)| (*hash, *trainer))
                .collect();
            return Ok(missing
                .into_iter()
                .map(|hash| Intent::Fetch {
                    hash,
                    holder: holders.get(&hash).copied(),
                })
                .collect());
        }
        let model = match model_params(step, &round.model_hash) {
            Needed::Have(values) => values,
            Needed::Missing(_) | Needed::Invalid(_) => {
                tracing::warn!(
                    round = number,
                    "input model unavailable or invalid; not attesting"
                );
                self.failed.insert(number);
                return Ok(Vec::new());
            }
        };
        let blobs: Vec<Option<Arc<[u8]>>> = revealed
            .iter()
            .map(|(_, hash)| step.blobs.blob(hash))
            .collect();
        let inputs: Vec<Revealed<'_>> = revealed
            .iter()
            .zip(&blobs)
            .map(|((trainer, hash), blob)| Revealed {
                trainer: *trainer,
                hash: *hash,
                blob: blob.as_deref(),
            })
            .collect();
        let aggregated = aggregate_round(step.plan, &model, &inputs);
        let scores = if self.conduct.scores() {
            let held_out = match self.held_out(step) {
                Ok(data) => data,
                Err(reason) => {
                    tracing::warn!(round = number, %reason, "no held-out data; not attesting");
                    self.failed.insert(number);
                    return Ok(Vec::new());
                }
            };
            let stale = stale_hashes(step, previous.as_ref(), &model);
            let evaluations = scoring::evaluations(&aggregated, &stale);
            self.work.evaluations += evaluations;
            self.work.samples_evaluated += evaluations * held_out.len() as u64;
            match score_updates(step.plan, &model, &aggregated, &held_out, &stale) {
                Ok(scores) => scores,
                Err(error) => {
                    tracing::warn!(round = number, %error, "scoring failed; not attesting");
                    self.failed.insert(number);
                    return Ok(Vec::new());
                }
            }
        } else {
            BTreeMap::new()
        };
        let honest = Attestation {
            model_hash: aggregated.model_hash,
            scores,
        };
        let input = AttestInput {
            task: step.task,
            round,
            state: step.state,
            revealed: &revealed,
        };
        let Some(Attestation { model_hash, scores }) = self.conduct.attest(&input, honest) else {
            self.failed.insert(number);
            return Ok(Vec::new());
        };
        let salt = salt(step.secret, "attestation", step.task.id, number);
        let scope = CommitmentScope {
            chain_id: step.chain_id,
            task: step.task.id,
            round: number,
            member: step.address,
        };
        let commitment = attestation_commitment(&scope, &model_hash, &scores, &salt);
        tracing::debug!(task = step.task.id, round = number, validator = %step.address, outcome = ?aggregated.outcome, excluded = aggregated.excluded.len(), "attestation committed");
        self.rounds.insert(
            number,
            Attested {
                model_hash,
                scores,
                salt,
                revealed: false,
            },
        );
        Ok(vec![
            Intent::Store {
                bytes: aggregated.next_blob.into(),
                public: true,
            },
            Intent::Submit(Payload::CommitAttestation {
                task: step.task.id,
                round: number,
                commitment,
            }),
        ])
    }

    fn reveal(&mut self, step: &Step<'_>, round: &Round) -> Vec<Intent> {
        let Some(attested) = self.rounds.get_mut(&round.number) else {
            return Vec::new();
        };
        let on_ledger = round
            .attestations
            .get(&step.address)
            .is_some_and(|attestation| attestation.reveal.is_none());
        if attested.revealed || !on_ledger {
            return Vec::new();
        }
        attested.revealed = true;
        tracing::debug!(task = step.task.id, round = round.number, validator = %step.address, height = step.height, "attestation revealed");
        vec![Intent::Submit(Payload::RevealAttestation {
            task: step.task.id,
            round: round.number,
            model_hash: attested.model_hash,
            scores: attested.scores.clone(),
            salt: attested.salt,
        })]
    }

    fn held_out(&mut self, step: &Step<'_>) -> Result<Arc<Dataset>, String> {
        if let Some(data) = &self.held_out {
            return Ok(data.clone());
        }
        let data = scoring::held_out(step.plan).map_err(|error| error.to_string())?;
        let data = Arc::new(data);
        self.held_out = Some(data.clone());
        Ok(data)
    }
}

/// Hashes a free rider could replay: updates revealed in the previous round and the previous
/// global step `M_r − M_{r−1}` (when both models are held).
fn stale_hashes(step: &Step<'_>, previous: Option<&Round>, model: &[f32]) -> BTreeSet<Hash> {
    let Some(previous) = previous else {
        return BTreeSet::new();
    };
    let mut stale: BTreeSet<Hash> = previous
        .commits
        .values()
        .filter_map(|commit| commit.update_hash)
        .collect();
    if let Needed::Have(old) = model_params(step, &previous.model_hash) {
        stale.insert(scoring::global_step_hash(model, &old));
    }
    stale
}

/// Asks for every revealed update and the round's input model not yet held, naming each update's
/// trainer as the peer to ask first. Repeated at every block (a fetch already in flight is not
/// started twice), so a request lost on the network is asked again.
fn prefetch(step: &Step<'_>, round: &Round) -> Vec<Intent> {
    let updates = round
        .commits
        .iter()
        .filter_map(|(trainer, commit)| Some((commit.update_hash?, Some(*trainer))));
    std::iter::once((round.model_hash, None))
        .chain(updates)
        .filter(|(hash, _)| step.blobs.blob(hash).is_none())
        .map(|(hash, holder)| Intent::Fetch { hash, holder })
        .collect()
}
