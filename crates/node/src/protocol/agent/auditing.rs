//! A validator's audits and its side of the disputes it opens.
//!
//! Once a round's audits are drawn, the validator re-runs the round of every trainer it was
//! drawn to audit (the same function the trainer ran, on the trainer's public shard, seed and
//! `M_r`) and compares trace roots exactly: equal, it reports the audit passed; different, it
//! challenges. In a dispute it opened it answers each of the trainer's claims by comparing it
//! with its own checkpoint at that step. Audits run in the agent, never in the ledger's block
//! execution; their cost is counted in [`AuditStats`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cairn_ledger::dispute::{Dispute, Stage};
use cairn_ledger::encoding::domain_hash;
use cairn_ledger::round::{AuditStatus, Round};
use cairn_ledger::{query, Address, Hash, Payload};
use cairn_round::training::{shard_of, Assignment, Trajectory};

use super::attesting::Validator;
use super::jobs::{Audited, Job, JobKey, JobKind, Output};
use super::{carried_params, model_holder, model_params, AgentError, Intent, Needed, Step};

/// What a validator's audits cost: a measurement for reports, never an input to the protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Trainer rounds re-run in audits.
    pub audits: u64,
    /// Training steps re-executed in those audits.
    pub steps: u64,
    /// Training steps replayed to answer disputes.
    pub dispute_steps: u64,
    /// Wall-clock time spent auditing and answering disputes.
    pub time: Duration,
}

/// A validator's audits across rounds.
#[derive(Debug, Default)]
pub(crate) struct Audits {
    /// Rounds whose audits were handled.
    done: BTreeSet<u32>,
    /// Honest re-runs of challenged trainers, to answer their claims.
    runs: BTreeMap<(u32, Address), Arc<Assignment>>,
    /// Answers sent: (dispute, move count).
    answered: BTreeSet<(u64, u32)>,
    /// Rounds whose audit re-runs are out on the worker pool.
    running: BTreeSet<u32>,
    pub(crate) stats: AuditStats,
}

impl Validator {
    /// Runs the round's audits once they are drawn (once per round).
    pub(crate) fn audit(
        &mut self,
        step: &Step<'_>,
        round: &Round,
    ) -> Result<Vec<Intent>, AgentError> {
        let number = round.number;
        if round.audit_seed.is_none() || self.audits.done.contains(&number) {
            return Ok(Vec::new());
        }
        if step.height >= round.challenge_deadline(&step.task.spec) {
            self.audits.done.insert(number);
            return Ok(Vec::new());
        }
        let model: Arc<[f32]> = match model_params(step, &round.model_hash) {
            Needed::Have(values) => values.into(),
            Needed::Missing(hash) => {
                let holder = model_holder(step.task, round);
                return Ok(vec![Intent::Fetch { hash, holder }]);
            }
            Needed::Invalid(reason) => {
                tracing::warn!(round = number, %reason, "input model invalid; cannot audit");
                self.audits.done.insert(number);
                return Ok(Vec::new());
            }
        };
        let drawn: Vec<Address> = round
            .audits
            .iter()
            .filter(|(_, audit)| audit.auditors.get(&step.address) == Some(&AuditStatus::Assigned))
            .map(|(trainer, _)| *trainer)
            .collect();
        let drawn = if self.conduct.audits() {
            drawn
        } else {
            Vec::new()
        };
        let unfounded: BTreeSet<Address> = self
            .conduct
            .unfounded_challenges(step.task, round)
            .into_iter()
            .collect();
        // With worker momentum, each trainer's update carries what it sent the round before:
        // fetch those first (a validator that voted for them holds them already).
        let mut carried: BTreeMap<Address, Option<Arc<[f32]>>> = BTreeMap::new();
        let mut fetch = Vec::new();
        let mut missing = BTreeSet::new();
        for trainer in drawn.iter().chain(unfounded.iter()) {
            let values = match carried_params(step, number, trainer)? {
                None => None,
                Some(Needed::Have(values)) => Some(values.into()),
                Some(Needed::Missing(hash)) => {
                    fetch.push(Intent::Fetch {
                        hash,
                        holder: Some(*trainer),
                    });
                    missing.insert(*trainer);
                    None
                }
                // An undecodable carried update: no honest work can follow from it, so the
                // re-run carries nothing and the trace it committed is challenged.
                Some(Needed::Invalid(_)) => None,
            };
            carried.insert(*trainer, values);
        }
        let deadline_near =
            step.height.saturating_add(2) >= round.challenge_deadline(&step.task.spec);
        if !fetch.is_empty() && !deadline_near {
            return Ok(fetch);
        }
        self.audits.done.insert(number);
        let targets: BTreeSet<Address> = drawn
            .iter()
            .copied()
            .chain(unfounded.iter().copied())
            .collect();
        let mut runs = Vec::new();
        for trainer in targets {
            let Some(commit) = round.commits.get(&trainer) else {
                continue;
            };
            // Still without the carried update at the deadline: re-running without it would
            // challenge honest work, so this audit is left undone.
            if commit.last_checkpoint.is_none()
                || step.task.expelled.contains(&trainer)
                || missing.contains(&trainer)
            {
                continue;
            }
            let Some(assignment) = assignment(step, round, &trainer, model.clone()) else {
                continue;
            };
            let assignment = assignment.carrying(carried.get(&trainer).cloned().flatten());
            runs.push((
                trainer,
                assignment,
                commit.trace_root,
                unfounded.contains(&trainer),
            ));
        }
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let key = JobKey {
            task: step.task.id,
            round: number,
            kind: JobKind::Audit,
        };
        self.audits.running.insert(number);
        self.jobs.push(Job::new(key, step.address, move || {
            Output::Audited(
                runs.into_iter()
                    .map(|(trainer, assignment, committed, unfounded)| Audited {
                        trainer,
                        root: assignment
                            .train()
                            .map(|work| work.trace_root())
                            .map_err(|error| error.to_string()),
                        assignment,
                        committed,
                        unfounded,
                    })
                    .collect(),
            )
        }));
        Ok(Vec::new())
    }

    /// Takes back an audit job: `true` if it was in flight. A `refused` one (the pool was
    /// full) is decided again at the next block.
    pub(crate) fn release_audits(&mut self, round: u32, refused: bool) -> bool {
        if refused {
            self.audits.done.remove(&round);
        }
        self.audits.running.remove(&round)
    }

    /// Acts on finished audit re-runs: reports each that matches, challenges each that does
    /// not (bonding more stake when the reserve is spent), while the challenge window is open.
    /// `round` is the round's record now.
    pub(crate) fn on_audited(
        &mut self,
        step: &Step<'_>,
        round: &Round,
        audited: Vec<Audited>,
        elapsed: Duration,
    ) -> Result<Vec<Intent>, AgentError> {
        let number = round.number;
        self.audits.stats.time += elapsed;
        if step.height >= round.challenge_deadline(&step.task.spec) {
            tracing::warn!(
                round = number,
                height = step.height,
                "audits finished after the challenge deadline; not reported"
            );
            return Ok(Vec::new());
        }
        let mut intents = Vec::new();
        // Stake free for challenge bonds, and liquid tokens to bond more when it runs out.
        let mut free = query::stake(step.state, &step.address)?.free();
        let mut balance = query::account(step.state, &step.address)?.balance;
        let bond = step.task.spec.verification.challenge_bond;
        for run in audited {
            let trainer = run.trainer;
            let root = match run.root {
                Ok(root) => root,
                Err(error) => {
                    tracing::warn!(round = number, trainer = %trainer, %error, "audit re-run failed");
                    continue;
                }
            };
            self.audits.stats.audits += 1;
            self.audits.stats.steps += u64::from(step.task.spec.local_steps);
            let challenge_with = if run.unfounded {
                Some(if root == run.committed {
                    domain_hash(b"cairn/unfounded-challenge", &[&root])
                } else {
                    root
                })
            } else if root != run.committed {
                Some(root)
            } else {
                None
            };
            match challenge_with {
                Some(trace_root) => {
                    // Every open dispute locks a bond; bond more from the balance when the
                    // reserve is spent, or leave the challenge to the trainer's other auditor.
                    if free < bond {
                        let top_up = bond - free;
                        if balance < top_up {
                            tracing::warn!(round = number, trainer = %trainer, free, balance, bond, "audit failed, but too little stake to bond a challenge");
                            continue;
                        }
                        intents.push(Intent::Submit(Payload::Bond { amount: top_up }));
                        balance -= top_up;
                        free += top_up;
                    }
                    free -= bond;
                    tracing::info!(round = number, trainer = %trainer, "audit failed; challenging");
                    self.audits
                        .runs
                        .insert((number, trainer), Arc::new(run.assignment));
                    intents.push(Intent::Submit(Payload::Challenge {
                        task: step.task.id,
                        round: number,
                        trainer,
                        trace_root,
                    }));
                }
                None => intents.push(Intent::Submit(Payload::ReportAudit {
                    task: step.task.id,
                    round: number,
                    trainer,
                })),
            }
        }
        Ok(intents)
    }

    /// This validator's answers in the disputes it opened: for each claim waiting for its
    /// answer, a job that computes its own checkpoint at the claimed step.
    pub(crate) fn pursue(&mut self, step: &Step<'_>) -> Result<Vec<Intent>, AgentError> {
        let mut open: BTreeSet<(u32, Address)> = BTreeSet::new();
        for id in &step.task.open_disputes {
            let Some(dispute) = query::dispute(step.state, *id)? else {
                continue;
            };
            if dispute.challenger != step.address || !dispute.is_open() {
                continue;
            }
            open.insert((dispute.round, dispute.trainer));
            let Stage::Answer { claim } = dispute.stage else {
                continue;
            };
            if step.height >= dispute.deadline
                || self.audits.answered.contains(&(dispute.id, dispute.moves))
            {
                continue;
            }
            let Some(run) = self.own_run(step, &dispute)? else {
                continue;
            };
            self.audits.answered.insert((dispute.id, dispute.moves));
            let key = JobKey {
                task: step.task.id,
                round: dispute.round,
                kind: JobKind::Answer {
                    dispute: dispute.id,
                    moves: dispute.moves,
                },
            };
            self.jobs.push(Job::new(key, step.address, move || {
                let before = run.replayed_steps();
                let mine = run
                    .checkpoint(claim.step)
                    .map(|checkpoint| checkpoint.hash())
                    .map_err(|error| error.to_string());
                Output::Answered {
                    claimed: claim.checkpoint,
                    mine,
                    replayed: run.replayed_steps() - before,
                }
            }));
        }
        self.audits.runs.retain(|key, _| open.contains(key));
        let live: BTreeSet<u64> = step.task.open_disputes.iter().copied().collect();
        self.audits.answered.retain(|(id, _)| live.contains(id));
        Ok(Vec::new())
    }

    /// Takes back an answer job: `true` if its move was still marked as answered. A `refused`
    /// one is unmarked and decided again at the next block.
    pub(crate) fn release_answer(&mut self, dispute: u64, moves: u32, refused: bool) -> bool {
        let held = self.audits.answered.contains(&(dispute, moves));
        if refused {
            self.audits.answered.remove(&(dispute, moves));
        }
        held
    }

    /// Sends the answer to a claim once its own checkpoint is computed, if the dispute still
    /// waits for it.
    pub(crate) fn on_answered(
        &mut self,
        step: &Step<'_>,
        (id, moves): (u64, u32),
        (claimed, mine, replayed): (Hash, Result<Hash, String>, u64),
        elapsed: Duration,
    ) -> Result<Vec<Intent>, AgentError> {
        self.audits.stats.dispute_steps += replayed;
        self.audits.stats.time += elapsed;
        let mine = match mine {
            Ok(mine) => mine,
            Err(error) => {
                tracing::warn!(dispute = id, %error, "cannot compute own checkpoint");
                self.audits.answered.remove(&(id, moves));
                return Ok(Vec::new());
            }
        };
        let Some(dispute) = query::dispute(step.state, id)? else {
            return Ok(Vec::new());
        };
        let waiting = matches!(dispute.stage, Stage::Answer { .. }) && dispute.moves == moves;
        if !waiting || step.height >= dispute.deadline {
            tracing::warn!(
                dispute = id,
                height = step.height,
                "answer computed after its move; not sent"
            );
            return Ok(Vec::new());
        }
        let agree = self.conduct.answer(&dispute, mine == claimed);
        Ok(vec![Intent::Submit(Payload::DisputeAnswer {
            dispute: id,
            agree,
        })])
    }

    /// This validator's honest run of the disputed trainer's round (rebuilt if the audit's run
    /// is gone, e.g. after a restart); `None` while `M_r` or the carried update is missing.
    fn own_run(
        &mut self,
        step: &Step<'_>,
        dispute: &Dispute,
    ) -> Result<Option<Arc<Assignment>>, AgentError> {
        let key = (dispute.round, dispute.trainer);
        if let Some(run) = self.audits.runs.get(&key) {
            return Ok(Some(run.clone()));
        }
        let Some(round) = query::round(step.state, dispute.task, dispute.round)? else {
            return Ok(None);
        };
        let Needed::Have(model) = model_params(step, &round.model_hash) else {
            return Ok(None);
        };
        let Some(assignment) = assignment(step, &round, &dispute.trainer, model.into()) else {
            return Ok(None);
        };
        let carried = match carried_params(step, dispute.round, &dispute.trainer)? {
            None | Some(Needed::Invalid(_)) => None,
            Some(Needed::Have(values)) => Some(values.into()),
            Some(Needed::Missing(_)) => return Ok(None),
        };
        let run = Arc::new(assignment.carrying(carried));
        self.audits.runs.insert(key, run.clone());
        Ok(Some(run))
    }
}

/// The honest assignment of `trainer` in `round`, from public data.
fn assignment(
    step: &Step<'_>,
    round: &Round,
    trainer: &Address,
    model: Arc<[f32]>,
) -> Option<Assignment> {
    let trainers: Vec<Address> = step.task.trainers.keys().copied().collect();
    match shard_of(step.plan, step.task.id, &trainers, trainer) {
        Ok(shard) => Some(Assignment::new(
            step.plan.clone(),
            Arc::new(shard),
            &round.seed,
            trainer,
            model,
        )),
        Err(error) => {
            tracing::warn!(trainer = %trainer, %error, "cannot rebuild the trainer's shard");
            None
        }
    }
}
