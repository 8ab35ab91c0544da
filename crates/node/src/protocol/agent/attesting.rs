//! A validator's rounds: fetch each update as it is revealed; in the availability window vote
//! which revealed updates it holds; once the updates that count are known (held by 2/3 of
//! validator stake), fetch any of them it still lacks from the validators that voted for them,
//! aggregate, store `M_{r+1}`, score and commit the attestation, and run the audits it was drawn
//! for (`super::auditing`); then reveal the attestation. Each once per round.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cairn_ledger::round::Round;
use cairn_ledger::transaction::{attestation_commitment, CommitmentScope};
use cairn_ledger::{query, Address, Hash, Payload, Phase};
use cairn_ml::data::Dataset;

use cairn_round::aggregation::{aggregate_round, Revealed};
use cairn_round::scoring::{self, score_updates};

use super::auditing::Audits;
use super::jobs::{Attested, Job, JobKey, JobKind, Output};
use super::{model_holder, model_params, prune, salt, AgentError, Cached, Intent, Needed, Step};
use crate::protocol::conduct::{AttestInput, Attestation, ValidatorConduct, VoteInput};

/// A validator's attestation for one round.
#[derive(Debug)]
struct Committed {
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
    rounds: BTreeMap<u32, Committed>,
    /// Rounds whose availability vote it sent.
    voted: BTreeSet<u32>,
    failed: BTreeSet<u32>,
    pub(crate) audits: Audits,
    /// What its scoring cost.
    pub(crate) work: super::WorkStats,
    /// Rounds whose attestation is out on the worker pool.
    attesting: BTreeSet<u32>,
    /// Jobs decided and not yet taken by the node.
    pub(crate) jobs: Vec<Job>,
}

impl Validator {
    pub(crate) fn new(conduct: Box<dyn ValidatorConduct>) -> Self {
        Self {
            conduct,
            held_out: None,
            rounds: BTreeMap::new(),
            voted: BTreeSet::new(),
            failed: BTreeSet::new(),
            audits: Audits::default(),
            work: super::WorkStats::default(),
            attesting: BTreeSet::new(),
            jobs: Vec::new(),
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
        self.voted.retain(|r| r.saturating_add(1) >= number);
        let spec = &step.task.spec;
        match Phase::at(spec, round.opened_at, step.height + 1) {
            // Fetch each update as soon as it is revealed, so that a lost request costs a retry
            // within the reveal window rather than the update's place in this round.
            Phase::Reveal => Ok(prefetch(step, round)),
            Phase::Availability => {
                let last_chance =
                    Phase::at(spec, round.opened_at, step.height + 2) != Phase::Availability;
                Ok(self.vote(step, round, last_chance))
            }
            Phase::AttestCommit
                if !self.rounds.contains_key(&number)
                    && !self.failed.contains(&number)
                    && !self.attesting.contains(&number) =>
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

    /// Votes which revealed updates it holds: as soon as it holds every one, or at the last block
    /// at which a vote can still land with what it holds by then. Until then it keeps fetching.
    fn vote(&mut self, step: &Step<'_>, round: &Round, last_chance: bool) -> Vec<Intent> {
        let number = round.number;
        if self.voted.contains(&number) || round.votes.contains_key(&step.address) {
            return Vec::new();
        }
        let revealed: Vec<(Address, Hash)> = round
            .revealed()
            .map(|(trainer, hash)| (*trainer, *hash))
            .collect();
        let held: BTreeSet<Address> = revealed
            .iter()
            .filter(|(_, hash)| step.blobs.blob(hash).is_some())
            .map(|(trainer, _)| *trainer)
            .collect();
        if held.len() < revealed.len() && !last_chance {
            return prefetch(step, round);
        }
        self.voted.insert(number);
        let input = VoteInput {
            task: step.task,
            round,
            revealed: &revealed,
        };
        let Some(held) = self.conduct.vote(&input, held) else {
            return Vec::new();
        };
        tracing::debug!(task = step.task.id, round = number, validator = %step.address, held = held.len(), revealed = revealed.len(), "availability voted");
        vec![Intent::Submit(Payload::VoteAvailability {
            task: step.task.id,
            round: number,
            held,
        })]
    }

    fn attest(
        &mut self,
        step: &Step<'_>,
        round: &Round,
        last_chance: bool,
    ) -> Result<Vec<Intent>, AgentError> {
        let number = round.number;
        // Every vote is on the ledger once the availability window is over: the set the ledger
        // fixes at the next block is this one.
        let available = match &round.available {
            Some(available) => available.clone(),
            None => round.tally_available(&step.task.validators),
        };
        let counted: Vec<(Address, Hash)> = round
            .revealed()
            .filter(|(trainer, _)| available.contains(*trainer))
            .map(|(trainer, hash)| (*trainer, *hash))
            .collect();
        let previous = match number.checked_sub(1) {
            Some(r) => query::round(step.state, step.task.id, r)?,
            None => None,
        };
        // Blobs still missing: the input model, every counted update, and the previous input
        // model (to recognise a replayed global step).
        let mut missing: Vec<Hash> = std::iter::once(round.model_hash)
            .chain(counted.iter().map(|(_, hash)| *hash))
            .chain(previous.as_ref().map(|p| p.model_hash))
            .filter(|hash| step.blobs.blob(hash).is_none())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() && !last_chance {
            return Ok(missing
                .into_iter()
                .map(|hash| Intent::Fetch {
                    hash,
                    holder: holder(step, (round, previous.as_ref()), &counted, &hash),
                })
                .collect());
        }
        // Attesting without every counted update would attest a model the others did not
        // compute, and scoring without the previous input model could score a replayed step
        // differently: both are provably wrong and slashed (`cairn_ledger::accountability`).
        // An honest validator that lacks one attests nothing.
        if let Some(hash) = missing.iter().find(|hash| step.blobs.blob(hash).is_none()) {
            tracing::warn!(round = number, blob = %cairn_ledger::encoding::to_hex(hash), "a blob the attestation depends on could not be fetched in time; not attesting");
            self.failed.insert(number);
            return Ok(Vec::new());
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
        // `M_{r−1}`: the task's server step starts centered clipping from `M_r − M_{r−1}` and
        // adds it with server momentum.
        let previous_model = match previous.as_ref().map(|p| model_params(step, &p.model_hash)) {
            None => None,
            Some(Needed::Have(values)) => Some(values),
            Some(Needed::Missing(_) | Needed::Invalid(_)) => {
                tracing::warn!(
                    round = number,
                    "previous input model unavailable or invalid; not attesting"
                );
                self.failed.insert(number);
                return Ok(Vec::new());
            }
        };
        let blobs: Vec<Option<Arc<[u8]>>> = counted
            .iter()
            .map(|(_, hash)| step.blobs.blob(hash))
            .collect();
        let held_out = if self.conduct.scores() {
            match self.held_out(step) {
                Ok(data) => Some(data),
                Err(reason) => {
                    tracing::warn!(round = number, %reason, "no held-out data; not attesting");
                    self.failed.insert(number);
                    return Ok(Vec::new());
                }
            }
        } else {
            None
        };
        // Hashes a free rider could replay: the previous round's revealed updates (the global
        // step `M_r − M_{r−1}` is added in the job, from the two models).
        let replayable: BTreeSet<Hash> = previous
            .iter()
            .flat_map(|p| p.commits.values().filter_map(|commit| commit.update_hash))
            .collect();
        let key = JobKey {
            task: step.task.id,
            round: number,
            kind: JobKind::Attest,
        };
        let plan = step.plan.clone();
        self.attesting.insert(number);
        self.jobs.push(Job::new(key, step.address, move || {
            let inputs: Vec<Revealed<'_>> = counted
                .iter()
                .zip(&blobs)
                .map(|((trainer, hash), blob)| Revealed {
                    trainer: *trainer,
                    hash: *hash,
                    blob: blob.as_deref(),
                })
                .collect();
            let aggregated = aggregate_round(&plan, &model, previous_model.as_deref(), &inputs);
            let (scores, evaluations) = match held_out {
                None => (Ok(BTreeMap::new()), (0, 0)),
                Some(held_out) => {
                    let mut stale = replayable;
                    if let Some(old) = &previous_model {
                        stale.insert(scoring::global_step_hash(&model, old));
                    }
                    let evaluations = scoring::evaluations(&aggregated, &stale);
                    let scores = score_updates(&plan, &model, &aggregated, &held_out, &stale)
                        .map_err(|error| error.to_string());
                    (scores, (evaluations, evaluations * held_out.len() as u64))
                }
            };
            Output::Attested(Box::new(Attested {
                counted,
                aggregated,
                scores,
                evaluations,
            }))
        }));
        Ok(Vec::new())
    }

    /// Takes back an attestation job: `true` if it was in flight.
    pub(crate) fn release_attestation(&mut self, round: u32) -> bool {
        self.attesting.remove(&round)
    }

    /// Gives the round's attestation up (its job failed).
    pub(crate) fn abandon_attestation(&mut self, round: u32) {
        self.failed.insert(round);
    }

    /// Acts on a finished attestation job: commits the attestation (and stores `M_{r+1}`) if
    /// the attestation window is still open. `round` is the round's record now.
    pub(crate) fn on_attested(
        &mut self,
        step: &Step<'_>,
        round: &Round,
        attested: Attested,
    ) -> Vec<Intent> {
        let number = round.number;
        let Attested {
            counted,
            aggregated,
            scores,
            evaluations: (evaluations, samples),
        } = attested;
        self.work.evaluations += evaluations;
        self.work.samples_evaluated += samples;
        let scores = match scores {
            Ok(scores) => scores,
            Err(error) => {
                tracing::warn!(round = number, %error, "scoring failed; not attesting");
                self.failed.insert(number);
                return Vec::new();
            }
        };
        let open =
            Phase::at(&step.task.spec, round.opened_at, step.height + 1) == Phase::AttestCommit;
        if !open || round.attestations.contains_key(&step.address) {
            tracing::warn!(
                round = number,
                height = step.height,
                "aggregation finished after the attestation window; not attesting"
            );
            self.failed.insert(number);
            return Vec::new();
        }
        let honest = Attestation {
            model_hash: aggregated.model_hash,
            scores,
        };
        let input = AttestInput {
            task: step.task,
            round,
            state: step.state,
            counted: &counted,
        };
        let Some(Attestation { model_hash, scores }) = self.conduct.attest(&input, honest) else {
            self.failed.insert(number);
            return Vec::new();
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
            Committed {
                model_hash,
                scores,
                salt,
                revealed: false,
            },
        );
        vec![
            Intent::Store {
                bytes: aggregated.next_blob.into(),
                public: true,
            },
            Intent::Submit(Payload::CommitAttestation {
                task: step.task.id,
                round: number,
                commitment,
            }),
        ]
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

/// Whom to ask first for a missing blob: for a counted update, one of the validators that voted
/// they hold it (a different one at each block, so a slow or lying voter costs one block), or
/// its trainer when no other voter is known.
fn holder(
    step: &Step<'_>,
    (round, previous): (&Round, Option<&Round>),
    counted: &[(Address, Hash)],
    hash: &Hash,
) -> Option<Address> {
    if let Some(model) = std::iter::once(round)
        .chain(previous)
        .find(|r| r.model_hash == *hash)
    {
        return model_holder(step.task, model);
    }
    let trainer = counted
        .iter()
        .find(|(_, update)| update == hash)
        .map(|(trainer, _)| *trainer)?;
    let voters: Vec<Address> = round
        .votes
        .iter()
        .filter(|(voter, held)| **voter != step.address && held.contains(&trainer))
        .map(|(voter, _)| *voter)
        .collect();
    if voters.is_empty() {
        return Some(trainer);
    }
    Some(voters[(step.height % voters.len() as u64) as usize])
}

/// Asks for every revealed update and the round's input model not yet held, naming each update's
/// trainer as the peer to ask first. Repeated at every block (a fetch already in flight is not
/// started twice), so a request lost on the network is asked again.
fn prefetch(step: &Step<'_>, round: &Round) -> Vec<Intent> {
    let updates = round
        .commits
        .iter()
        .filter_map(|(trainer, commit)| Some((commit.update_hash?, Some(*trainer))));
    std::iter::once((round.model_hash, model_holder(step.task, round)))
        .chain(updates)
        .filter(|(hash, _)| step.blobs.blob(hash).is_none())
        .map(|(hash, holder)| Intent::Fetch { hash, holder })
        .collect()
}
