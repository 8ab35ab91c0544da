//! A trainer's rounds: train and commit in the commit window, publish and reveal in the reveal
//! window, each once per round.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_ledger::round::Round;
use cairn_ledger::transaction::{update_commitment, CommitmentScope};
use cairn_ledger::{query, Address, Hash, Payload, Phase};
use cairn_ml::data::Dataset;
use cairn_robust::attack::flip_labels;

use super::{model_params, prune, AgentError, Cached, Intent, Needed, Step};
use crate::protocol::behaviour::{FreeRide, TrainerBehaviour};
use crate::protocol::params;
use crate::protocol::trainer::{self, TrainedUpdate};

/// What the trainer did in one round.
#[derive(Debug)]
struct RoundWork {
    update_hash: Hash,
    salt: Hash,
    revealed: bool,
}

/// A trainer's state across rounds.
#[derive(Debug)]
pub(crate) struct Trainer {
    behaviour: TrainerBehaviour,
    shard: Cached,
    rounds: BTreeMap<u32, RoundWork>,
    /// An attacker's honest update, kept while the coalition waits for its other members.
    honest: BTreeMap<u32, TrainedUpdate>,
    failed: BTreeMap<u32, String>,
}

impl Trainer {
    pub(crate) fn new(behaviour: TrainerBehaviour) -> Self {
        Self {
            behaviour,
            shard: None,
            rounds: BTreeMap::new(),
            honest: BTreeMap::new(),
            failed: BTreeMap::new(),
        }
    }

    pub(crate) fn step(
        &mut self,
        step: &Step<'_>,
        round: &Round,
    ) -> Result<Vec<Intent>, AgentError> {
        let number = round.number;
        prune(&mut self.rounds, number);
        prune(&mut self.honest, number);
        prune(&mut self.failed, number);
        let spec = &step.task.spec;
        match Phase::at(spec, round.opened_at, step.height + 1) {
            Phase::Commit
                if !self.rounds.contains_key(&number) && !self.failed.contains_key(&number) =>
            {
                if round.commits.contains_key(&step.address) {
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
            Needed::Missing(hash) => return Ok(vec![Intent::Fetch { hash, holder: None }]),
            Needed::Invalid(reason) => {
                return Ok(self.give_up(number, format!("input model is invalid: {reason}")))
            }
        };
        let produced = match self.produce(step, round, &model, last_chance)? {
            Produced::Ready(update) => update,
            Produced::Waiting(intents) => return Ok(intents),
            Produced::Failed(reason) => return Ok(self.give_up(number, reason)),
        };
        let mut blob = params::encode(&produced.update);
        if matches!(self.behaviour, TrainerBehaviour::MalformedBlob)
            && blob.len() >= params::HEADER_LEN + 4
        {
            blob[params::HEADER_LEN..params::HEADER_LEN + 4]
                .copy_from_slice(&f32::NAN.to_le_bytes());
        }
        let update_hash = params::blob_hash(&blob);
        let salt = trainer::salt(step.secret, "update", step.task.id, number);
        let scope = CommitmentScope {
            chain_id: step.chain_id,
            task: step.task.id,
            round: number,
            member: step.address,
        };
        let commitment = update_commitment(&scope, &update_hash, &salt);
        self.rounds.insert(
            number,
            RoundWork {
                update_hash,
                salt,
                revealed: false,
            },
        );
        tracing::debug!(task = step.task.id, round = number, trainer = %step.address, loss = produced.mean_loss, "update committed");
        Ok(vec![
            Intent::Store {
                bytes: blob.into(),
                public: false,
            },
            Intent::Submit(Payload::CommitUpdate {
                task: step.task.id,
                round: number,
                commitment,
                trace_root: produced.trace_root,
            }),
        ])
    }

    fn reveal(&mut self, step: &Step<'_>, round: &Round) -> Vec<Intent> {
        if matches!(self.behaviour, TrainerBehaviour::NonRevealer) {
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
        vec![
            Intent::Publish(work.update_hash),
            Intent::Submit(Payload::RevealUpdate {
                task: step.task.id,
                round: round.number,
                update_hash: work.update_hash,
                salt: work.salt,
            }),
        ]
    }

    fn give_up(&mut self, round: u32, reason: String) -> Vec<Intent> {
        tracing::warn!(round, %reason, "trainer skips this round");
        self.failed.insert(round, reason);
        Vec::new()
    }

    fn shard(&mut self, step: &Step<'_>) -> Result<Arc<Dataset>, String> {
        if let Some(shard) = &self.shard {
            return Ok(shard.clone());
        }
        let trainers: Vec<Address> = step.task.trainers.keys().copied().collect();
        let mut shard = trainer::shard_of(step.plan, step.task.id, &trainers, &step.address)
            .map_err(|error| error.to_string())?;
        if matches!(self.behaviour, TrainerBehaviour::LabelFlip) {
            let mut labels = shard.labels().to_vec();
            flip_labels(&mut labels, shard.classes() as u32).map_err(|error| error.to_string())?;
            shard = Dataset::new(
                shard.features().to_vec(),
                labels,
                shard.classes(),
                shard.shape(),
            )
            .map_err(|error| error.to_string())?;
        }
        let shard = Arc::new(shard);
        self.shard = Some(shard.clone());
        Ok(shard)
    }

    fn train(
        &mut self,
        step: &Step<'_>,
        round: &Round,
        model: &[f32],
    ) -> Result<TrainedUpdate, String> {
        let shard = self.shard(step)?;
        trainer::train_round(step.plan, &shard, model, &round.seed, &step.address)
            .map_err(|error| error.to_string())
    }

    fn produce(
        &mut self,
        step: &Step<'_>,
        round: &Round,
        model: &[f32],
        last_chance: bool,
    ) -> Result<Produced, AgentError> {
        let zero = || TrainedUpdate {
            update: vec![0.0; model.len()],
            trace_root: trainer::trace_root(&[]),
            mean_loss: 0.0,
        };
        let behaviour = self.behaviour.clone();
        Ok(match behaviour {
            TrainerBehaviour::FreeRider(FreeRide::Zero) => Produced::Ready(zero()),
            TrainerBehaviour::FreeRider(FreeRide::Stale) => {
                let previous = match round.number.checked_sub(1) {
                    None => return Ok(Produced::Ready(zero())),
                    Some(r) => query::round(step.state, step.task.id, r)?.map(|p| p.model_hash),
                };
                match previous {
                    None => Produced::Ready(zero()),
                    Some(hash) => match model_params(step, &hash) {
                        Needed::Have(old) => Produced::Ready(TrainedUpdate {
                            update: model.iter().zip(&old).map(|(m, o)| m - o).collect(),
                            ..zero()
                        }),
                        Needed::Missing(hash) if !last_chance => {
                            Produced::Waiting(vec![Intent::Fetch { hash, holder: None }])
                        }
                        _ => Produced::Ready(zero()),
                    },
                }
            }
            TrainerBehaviour::Attack { attack, coalition } => {
                let honest = match self.honest.get(&round.number) {
                    Some(update) => update.clone(),
                    None => match self.train(step, round, model) {
                        Ok(update) => {
                            self.honest.insert(round.number, update.clone());
                            update
                        }
                        Err(reason) => return Ok(Produced::Failed(reason)),
                    },
                };
                let exchanged = match coalition.lock() {
                    Ok(mut pool) => pool.exchange(
                        (step.task.id, round.number),
                        step.address,
                        &honest.update,
                        step.plan,
                        &attack,
                        (step.task.trainers.len(), &round.seed),
                    ),
                    Err(_) => Some(Ok(honest.update.clone())),
                };
                match exchanged {
                    Some(Ok(crafted)) => Produced::Ready(TrainedUpdate {
                        update: crafted,
                        ..honest
                    }),
                    Some(Err(error)) => {
                        tracing::warn!(%error, "attack could not be crafted; submitting the honest update");
                        Produced::Ready(honest)
                    }
                    None if last_chance => Produced::Ready(honest),
                    None => Produced::Waiting(Vec::new()),
                }
            }
            TrainerBehaviour::Honest
            | TrainerBehaviour::LabelFlip
            | TrainerBehaviour::NonRevealer
            | TrainerBehaviour::MalformedBlob => match self.train(step, round, model) {
                Ok(update) => Produced::Ready(update),
                Err(reason) => Produced::Failed(reason),
            },
        })
    }
}

/// The outcome of producing an update.
enum Produced {
    Ready(TrainedUpdate),
    Waiting(Vec<Intent>),
    Failed(String),
}
