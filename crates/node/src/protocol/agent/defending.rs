//! A trainer's side of disputes over its work: each move, its checkpoint at the step the ledger
//! asks for (with a Merkle proof at a trace leaf); when one step is left, the witness of the
//! agreed state in chunks. Answers come from the submission's trajectory, so an honest trainer
//! answers with its replayed training.

use std::collections::BTreeSet;

use cairn_ledger::dispute::{next_claim, Dispute, Stage};
use cairn_ledger::encoding::MAX_WITNESS_CHUNK;
use cairn_ledger::{query, Payload, TaskStatus};

use super::training::Trainer;
use super::{AgentError, Intent, Step};

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
        match dispute.stage {
            Stage::Claim { step: at } => {
                if !self.sent.insert((dispute.id, u64::from(dispute.moves))) {
                    return Vec::new();
                }
                let steps = step.task.spec.local_steps;
                let every = step.task.spec.verification.trace_every;
                let leaf = next_claim(dispute.low.step, dispute.high.step, steps, every)
                    .and_then(|(_, leaf)| leaf);
                let checkpoint = match trajectory.checkpoint(at) {
                    Ok(checkpoint) => checkpoint.hash(),
                    Err(error) => {
                        tracing::warn!(dispute = dispute.id, %error, "cannot compute the claimed checkpoint");
                        return Vec::new();
                    }
                };
                let proof = leaf
                    .and_then(|index| cairn_round::trace::proof(&work.submission.leaves, index))
                    .unwrap_or_default();
                vec![Intent::Submit(Payload::DisputeClaim {
                    dispute: dispute.id,
                    checkpoint,
                    proof,
                })]
            }
            Stage::Witness {
                received, expected, ..
            } => {
                let offsets: Vec<u64> = (received..expected)
                    .step_by(MAX_WITNESS_CHUNK)
                    .filter(|offset| !self.sent.contains(&(dispute.id, u64::MAX - offset)))
                    .collect();
                if offsets.is_empty() {
                    return Vec::new();
                }
                let bytes = match trajectory.witness(dispute.low.step) {
                    Ok(witness) => witness.encode(),
                    Err(error) => {
                        tracing::warn!(dispute = dispute.id, %error, "cannot build the witness");
                        return Vec::new();
                    }
                };
                if bytes.len() as u64 != expected {
                    tracing::warn!(
                        dispute = dispute.id,
                        len = bytes.len(),
                        expected,
                        "witness has the wrong size; not sending it"
                    );
                    return Vec::new();
                }
                offsets
                    .into_iter()
                    .map(|offset| {
                        self.sent.insert((dispute.id, u64::MAX - offset));
                        let end = (offset as usize + MAX_WITNESS_CHUNK).min(bytes.len());
                        Intent::Submit(Payload::DisputeWitness {
                            dispute: dispute.id,
                            offset,
                            bytes: bytes[offset as usize..end].to_vec(),
                        })
                    })
                    .collect()
            }
            Stage::Answer { .. } | Stage::Resolved(_) => Vec::new(),
        }
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
