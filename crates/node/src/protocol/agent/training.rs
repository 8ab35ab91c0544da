//! A trainer's rounds: train and commit in the commit window, publish and reveal in the reveal
//! window, each once per round; keep the work while it can still be disputed.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_ledger::round::Round;
use cairn_ledger::transaction::{update_commitment, CommitmentScope, LastCheckpoint};
use cairn_ledger::{Address, Hash, Payload, Phase};
use cairn_round::params;
use cairn_round::training::{shard_of, Shard};

use super::jobs::{Job, JobKey, JobKind, Output};
use super::{carried_params, model_holder, model_params, salt, AgentError, Intent, Needed, Step};
use crate::protocol::conduct::{Decision, RoundInput, Submission, TrainerConduct};

/// What the trainer did in one round.
#[derive(Debug)]
pub(crate) struct RoundWork {
    pub(crate) submission: Submission,
    update_hash: Hash,
    salt: Hash,
    revealed: bool,
}

/// A trainer's state across rounds.
#[derive(Debug)]
pub(crate) struct Trainer {
    pub(crate) conduct: Box<dyn TrainerConduct>,
    shard: Option<Arc<Shard>>,
    /// Work per round, kept while the round's update can still be disputed.
    pub(crate) rounds: BTreeMap<u32, RoundWork>,
    failed: BTreeMap<u32, String>,
    /// Dispute moves already sent: (dispute, move count or witness offset).
    pub(crate) sent: std::collections::BTreeSet<(u64, u64)>,
    /// What its commits cost.
    pub(crate) work: super::WorkStats,
    /// Rounds whose training is out on the worker pool.
    training: std::collections::BTreeSet<u32>,
    /// Jobs decided and not yet taken by the node.
    pub(crate) jobs: Vec<Job>,
}

impl Trainer {
    pub(crate) fn new(conduct: Box<dyn TrainerConduct>) -> Self {
        Self {
            conduct,
            shard: None,
            rounds: BTreeMap::new(),
            failed: BTreeMap::new(),
            sent: Default::default(),
            work: super::WorkStats::default(),
            training: Default::default(),
            jobs: Vec::new(),
        }
    }

    pub(crate) fn step(
        &mut self,
        step: &Step<'_>,
        round: &Round,
    ) -> Result<Vec<Intent>, AgentError> {
        let number = round.number;
        self.failed.retain(|r, _| r.saturating_add(1) >= number);
        let spec = &step.task.spec;
        match Phase::at(spec, round.opened_at, step.height + 1) {
            Phase::Commit
                if !self.rounds.contains_key(&number)
                    && !self.failed.contains_key(&number)
                    && !self.training.contains(&number) =>
            {
                if round.commits.contains_key(&step.address)
                    || step.task.expelled.contains(&step.address)
                {
                    return Ok(Vec::new());
                }
                let last_chance =
                    Phase::at(spec, round.opened_at, step.height + 2) != Phase::Commit;
                self.commit(step, round, last_chance)
            }
            Phase::Reveal => Ok(self.reveal(step, round)),
            _ => Ok(Vec::new()),
        }
    }

    fn commit(
        &mut self,
        step: &Step<'_>,
        round: &Round,
        last_chance: bool,
    ) -> Result<Vec<Intent>, AgentError> {
        let number = round.number;
        let model = match model_params(step, &round.model_hash) {
            Needed::Have(values) => values,
            Needed::Missing(hash) => {
                let holder = model_holder(step.task, round);
                return Ok(vec![Intent::Fetch { hash, holder }]);
            }
            Needed::Invalid(reason) => {
                return Ok(self.give_up(number, format!("input model is invalid: {reason}")))
            }
        };
        let carried: Option<Arc<[f32]>> = match carried_params(step, number, &step.address)? {
            None => None,
            Some(Needed::Have(values)) => Some(values.into()),
            Some(Needed::Missing(hash)) => {
                // Its own update of the round before: a validator that counted it holds it too.
                return Ok(vec![Intent::Fetch { hash, holder: None }]);
            }
            Some(Needed::Invalid(reason)) => {
                return Ok(self.give_up(
                    number,
                    format!("the update carried from the previous round is invalid: {reason}"),
                ))
            }
        };
        let shard = match self.shard(step) {
            Ok(shard) => shard,
            Err(reason) => return Ok(self.give_up(number, reason)),
        };
        let input = RoundInput {
            task: step.task,
            round,
            plan: step.plan,
            address: step.address,
            model: model.into(),
            carried,
            shard,
            state: step.state,
            blobs: step.blobs,
            last_chance,
        };
        let submission = match self.conduct.work(&input) {
            Decision::Ready(submission) => submission,
            Decision::Compute(compute) => {
                let key = JobKey {
                    task: step.task.id,
                    round: number,
                    kind: JobKind::Train,
                };
                self.training.insert(number);
                self.jobs.push(Job::new(key, step.address, move || {
                    Output::Trained(compute.run())
                }));
                return Ok(Vec::new());
            }
            Decision::Wait(intents) => return Ok(intents),
            Decision::Skip(reason) => return Ok(self.give_up(number, reason)),
        };
        Ok(self.committed(step, number, submission))
    }

    /// Takes back a training job: `true` if it was in flight. A `refused` one (the pool was
    /// full) is decided again at the next block.
    pub(crate) fn release(&mut self, round: u32) -> bool {
        self.training.remove(&round)
    }

    /// Acts on a finished training job: commits it if the commit window is still open.
    pub(crate) fn on_trained(
        &mut self,
        step: &Step<'_>,
        round: &Round,
        result: Result<Submission, String>,
    ) -> Vec<Intent> {
        let number = round.number;
        let submission = match result {
            Ok(submission) => submission,
            Err(reason) => return self.give_up(number, reason),
        };
        let open = Phase::at(&step.task.spec, round.opened_at, step.height + 1) == Phase::Commit;
        if !open || round.commits.contains_key(&step.address) {
            return self.give_up(
                number,
                format!(
                    "training finished at height {}, after the commit window",
                    step.height
                ),
            );
        }
        self.committed(step, number, submission)
    }

    /// Stores the update privately and commits to it.
    fn committed(&mut self, step: &Step<'_>, number: u32, submission: Submission) -> Vec<Intent> {
        let blob = params::encode(&submission.update);
        let update_hash = params::blob_hash(&blob);
        let salt = salt(step.secret, "update", step.task.id, number);
        let scope = CommitmentScope {
            chain_id: step.chain_id,
            task: step.task.id,
            round: number,
            member: step.address,
        };
        let commitment = update_commitment(&scope, &update_hash, &salt);
        let trace_root = submission.trace_root();
        self.work.commits += 1;
        self.work.steps_trained += u64::from(submission.steps_trained);
        tracing::debug!(task = step.task.id, round = number, trainer = %step.address, loss = submission.mean_loss, "update committed");
        self.rounds.insert(
            number,
            RoundWork {
                submission,
                update_hash,
                salt,
                revealed: false,
            },
        );
        vec![
            Intent::Store {
                bytes: blob.into(),
                public: false,
            },
            Intent::Submit(Payload::CommitUpdate {
                task: step.task.id,
                round: number,
                commitment,
                trace_root,
            }),
        ]
    }

    fn reveal(&mut self, step: &Step<'_>, round: &Round) -> Vec<Intent> {
        if !self.conduct.reveals(round.number) {
            return Vec::new();
        }
        let Some(work) = self.rounds.get_mut(&round.number) else {
            return Vec::new();
        };
        let on_ledger = round
            .commits
            .get(&step.address)
            .is_some_and(|commit| commit.update_hash.is_none());
        if work.revealed || !on_ledger {
            return Vec::new();
        }
        work.revealed = true;
        let publish = self
            .conduct
            .publishes(round.number)
            .then_some(Intent::Publish(work.update_hash));
        let last = &work.submission.last;
        publish
            .into_iter()
            .chain([Intent::Submit(Payload::RevealUpdate {
                task: step.task.id,
                round: round.number,
                update_hash: work.update_hash,
                salt: work.salt,
                last: LastCheckpoint {
                    weights: last.weights,
                    optimizer: last.optimizer,
                    batch: last.batch,
                },
                proof: work.submission.leaves_proof(),
            })])
            .collect()
    }

    pub(crate) fn give_up(&mut self, round: u32, reason: String) -> Vec<Intent> {
        tracing::warn!(round, %reason, "trainer skips this round");
        self.failed.insert(round, reason);
        Vec::new()
    }

    fn shard(&mut self, step: &Step<'_>) -> Result<Arc<Shard>, String> {
        if let Some(shard) = &self.shard {
            return Ok(shard.clone());
        }
        let trainers: Vec<Address> = step.task.trainers.keys().copied().collect();
        let shard = shard_of(step.plan, step.task.id, &trainers, &step.address)
            .map_err(|error| error.to_string())?;
        let shard = Arc::new(shard);
        self.shard = Some(shard.clone());
        Ok(shard)
    }
}
