//! A trainer's side of disputes over its work: each move, its checkpoint at the step the ledger
//! asks for (with a Merkle proof at a trace leaf); when one step is left, the witness of the
//! agreed state in chunks. Answers come from the submission's trajectory, so an honest trainer
//! answers with its replayed training; the replays run on the worker pool and each move is sent
//! when its result comes back, if the dispute still waits for it.

use std::collections::BTreeSet;

use cairn_ledger::dispute::{next_claim, Dispute, Stage};
use cairn_ledger::encoding::MAX_WITNESS_CHUNK;
use cairn_ledger::{query, Payload, TaskStatus};

use cairn_ledger::Hash;

use super::jobs::{Job, JobKey, JobKind, Output};
use super::training::Trainer;
use super::{AgentError, Intent, Step};

/// How a sent witness chunk is marked in `Trainer::sent` (moves are small; offsets are marked
/// from the top of the range).
fn witness_mark(offset: u64) -> u64 {
    u64::MAX - offset
}

impl Trainer {
    /// The moves due in disputes over this trainer's work, and forgetting work that can no
    /// longer be disputed.
    pub(crate) fn defend(&mut self, step: &Step<'_>) -> Result<Vec<Intent>, AgentError> {
        let mut intents = Vec::new();
        let mut mine: Vec<Dispute> = Vec::new();
        for id in &step.task.open_disputes {
            if let Some(dispute) = query::dispute(step.state, *id)? {
                if dispute.trainer == step.address && dispute.is_open() {
                    mine.push(dispute);
                }
            }
        }
        let open: BTreeSet<u64> = mine.iter().map(|d| d.id).collect();
        self.sent.retain(|(id, _)| open.contains(id));
        for dispute in &mine {
            // A move must land in a block at or before the deadline.
            if step.height >= dispute.deadline || !self.conduct.defends(dispute) {
                continue;
            }
            intents.extend(self.respond(step, dispute));
        }
        self.forget(step, &mine)?;
        Ok(intents)
    }

    fn respond(&mut self, step: &Step<'_>, dispute: &Dispute) -> Vec<Intent> {
        let Some(work) = self.rounds.get(&dispute.round) else {
            tracing::warn!(
                dispute = dispute.id,
                round = dispute.round,
                "no record of the disputed work; cannot defend it"
            );
            return Vec::new();
        };
        let trajectory = work.submission.trajectory.clone();
        let leaves = work.submission.leaves.clone();
        match dispute.stage {
            Stage::Claim { step: at } => {
                if !self.sent.insert((dispute.id, u64::from(dispute.moves))) {
                    return Vec::new();
                }
                let steps = step.task.spec.local_steps;
                let every = step.task.spec.verification.trace_every;
                let leaf = next_claim(dispute.low.step, dispute.high.step, steps, every)
                    .and_then(|(_, leaf)| leaf);
                let proof = leaf
                    .and_then(|index| cairn_round::trace::proof(&leaves, index))
                    .unwrap_or_default();
                let key = JobKey {
                    task: step.task.id,
                    round: dispute.round,
                    kind: JobKind::Claim {
                        dispute: dispute.id,
                        moves: dispute.moves,
                    },
                };
                // The checkpoint replays training steps: on the pool.
                self.jobs
                    .push(Job::new(key, step.address, move || Output::Claimed {
                        checkpoint: trajectory
                            .checkpoint(at)
                            .map(|checkpoint| checkpoint.hash())
                            .map_err(|error| error.to_string()),
                        proof,
                    }));
                Vec::new()
            }
            Stage::Witness {
                received, expected, ..
            } => {
                let offsets: Vec<u64> = (received..expected)
                    .step_by(MAX_WITNESS_CHUNK)
                    .filter(|offset| !self.sent.contains(&(dispute.id, witness_mark(*offset))))
                    .collect();
                if offsets.is_empty() {
                    return Vec::new();
                }
                for offset in &offsets {
                    self.sent.insert((dispute.id, witness_mark(*offset)));
                }
                let key = JobKey {
                    task: step.task.id,
                    round: dispute.round,
                    kind: JobKind::Witness {
                        dispute: dispute.id,
                    },
                };
                let low = dispute.low.step;
                self.jobs
                    .push(Job::new(key, step.address, move || Output::Witnessed {
                        bytes: trajectory
                            .witness(low)
                            .map(|witness| witness.encode())
                            .map_err(|error| error.to_string()),
                        offsets,
                        expected,
                    }));
                Vec::new()
            }
            Stage::Answer { .. } | Stage::Resolved(_) => Vec::new(),
        }
    }

    /// Takes back a dispute job: `true` if its move was still marked as sent. A `refused` one
    /// is unmarked and decided again at the next block.
    pub(crate) fn release_move(&mut self, kind: JobKind, refused: bool) -> bool {
        match kind {
            JobKind::Claim { dispute, moves } => {
                let mark = (dispute, u64::from(moves));
                let held = self.sent.contains(&mark);
                if refused {
                    self.sent.remove(&mark);
                }
                held
            }
            JobKind::Witness { dispute } => {
                if refused {
                    self.unmark_witness(dispute);
                }
                true
            }
            _ => false,
        }
    }

    fn unmark_witness(&mut self, dispute: u64) {
        self.sent
            .retain(|(id, mark)| *id != dispute || *mark <= u64::from(u32::MAX));
    }

    /// Sends a computed claim if the dispute still waits for it.
    pub(crate) fn on_claimed(
        &mut self,
        step: &Step<'_>,
        (id, moves): (u64, u32),
        checkpoint: Result<Hash, String>,
        proof: Vec<Hash>,
    ) -> Result<Vec<Intent>, AgentError> {
        let checkpoint = match checkpoint {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                tracing::warn!(dispute = id, %error, "cannot compute the claimed checkpoint");
                return Ok(Vec::new());
            }
        };
        let Some(dispute) = query::dispute(step.state, id)? else {
            return Ok(Vec::new());
        };
        let waiting = matches!(dispute.stage, Stage::Claim { .. }) && dispute.moves == moves;
        if !waiting || step.height >= dispute.deadline {
            tracing::warn!(
                dispute = id,
                height = step.height,
                "claim computed after its move; not sent"
            );
            return Ok(Vec::new());
        }
        Ok(vec![Intent::Submit(Payload::DisputeClaim {
            dispute: id,
            checkpoint,
            proof,
        })])
    }

    /// Sends a computed witness's chunks if the dispute still waits for them.
    pub(crate) fn on_witnessed(
        &mut self,
        step: &Step<'_>,
        id: u64,
        (bytes, offsets, expected): (Result<Vec<u8>, String>, Vec<u64>, u64),
    ) -> Result<Vec<Intent>, AgentError> {
        let bytes = match bytes {
            Ok(bytes) if bytes.len() as u64 == expected => bytes,
            Ok(bytes) => {
                tracing::warn!(
                    dispute = id,
                    len = bytes.len(),
                    expected,
                    "witness has the wrong size; not sending it"
                );
                return Ok(Vec::new());
            }
            Err(error) => {
                tracing::warn!(dispute = id, %error, "cannot build the witness");
                self.unmark_witness(id);
                return Ok(Vec::new());
            }
        };
        let Some(dispute) = query::dispute(step.state, id)? else {
            return Ok(Vec::new());
        };
        if !matches!(dispute.stage, Stage::Witness { .. }) || step.height >= dispute.deadline {
            return Ok(Vec::new());
        }
        Ok(offsets
            .into_iter()
            .map(|offset| {
                let end = (offset as usize + MAX_WITNESS_CHUNK).min(bytes.len());
                Intent::Submit(Payload::DisputeWitness {
                    dispute: id,
                    offset,
                    bytes: bytes[offset as usize..end].to_vec(),
                })
            })
            .collect())
    }

    /// Drops the work of rounds past their challenge window with no open dispute.
    fn forget(&mut self, step: &Step<'_>, open: &[Dispute]) -> Result<(), AgentError> {
        let current = match step.task.status {
            TaskStatus::Running { round } => round,
            _ => u32::MAX,
        };
        let rounds: Vec<u32> = self.rounds.keys().copied().collect();
        for number in rounds {
            if number >= current || open.iter().any(|d| d.round == number) {
                continue;
            }
            let Some(record) = query::round(step.state, step.task.id, number)? else {
                continue;
            };
            if step.height > record.challenge_deadline(&step.task.spec) {
                self.rounds.remove(&number);
            }
        }
        Ok(())
    }
}
