//! Trainers that try to be paid for work they did not do, each a [`TrainerConduct`] that calls
//! the protocol's own computation where it needs it and changes one decision.

use std::sync::{Arc, Mutex};

use cairn_ledger::dispute::Dispute;
use cairn_ledger::query;
use cairn_ml::data::Dataset;
use cairn_node::protocol::{Decision, Intent, RoundInput, Submission, TrainerConduct};
use cairn_robust::attack::{flip_labels, Attack};
use cairn_round::encoding::{domain_hash, first_u64};
use cairn_round::training::{delta, shard_of, Assignment, Shard, TrainerError, Trajectory};
use cairn_round::{params, Address};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::coalition::{Coalition, SybilPool};
use super::trajectory::{Deviated, Deviation, Forged, Replaced};

fn ready(result: Result<Submission, TrainerError>) -> Decision<Submission> {
    match result {
        Ok(submission) => Decision::Ready(submission),
        Err(error) => Decision::Skip(error.to_string()),
    }
}

/// `inner`'s trajectory revealing `update` instead of its own, recording `trained` steps of
/// work done for it.
fn with_update(
    input: &RoundInput<'_>,
    inner: Arc<dyn Trajectory>,
    update: Vec<f32>,
    trained: u32,
) -> Result<Submission, TrainerError> {
    let replaced = Replaced::new(inner, input.plan.local_steps, &update);
    Submission::from_trajectory(input.plan, Arc::new(replaced), update)
        .map(|submission| submission.trained(trained))
}

/// A trajectory that never trained: the start state repeated (what a free rider answers with).
fn untrained(input: &RoundInput<'_>) -> Arc<dyn Trajectory> {
    Arc::new(Deviated::new(input.assignment(), Deviation::FreezeAfter(0)))
}

/// Uniform noise in `[-scale, scale]`, seeded by the trainer and the round.
fn noise(input: &RoundInput<'_>, len: usize, scale: f32) -> Vec<f32> {
    let seed = first_u64(&domain_hash(
        b"cairn/sim/noise",
        &[input.address.as_bytes(), &input.round.seed],
    ));
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| {
            let unit = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
            (2.0 * unit - 1.0) * scale
        })
        .collect()
}

/// The last global step `M_r − M_{r−1}` (zeros in round 0 or when `M_{r−1}` is not held).
fn last_global_step(input: &RoundInput<'_>) -> Result<Option<Vec<f32>>, String> {
    let Some(previous) = input.round.number.checked_sub(1) else {
        return Ok(Some(vec![0.0; input.model.len()]));
    };
    let record =
        query::round(input.state, input.task.id, previous).map_err(|error| error.to_string())?;
    let Some(record) = record else {
        return Ok(Some(vec![0.0; input.model.len()]));
    };
    let Some(blob) = input.blobs.blob(&record.model_hash) else {
        return Ok(None);
    };
    let old = params::decode(&blob, input.plan.param_count()).map_err(|e| e.to_string())?;
    Ok(delta(&input.model, &old))
}

/// The shard with every label `y` replaced by `C − 1 − y`.
pub(crate) fn flipped(shard: &Shard) -> Result<Shard, String> {
    let data = &shard.data;
    let mut labels = data.labels().to_vec();
    flip_labels(&mut labels, data.classes() as u32).map_err(|error| error.to_string())?;
    let data = Dataset::new(
        data.features().to_vec(),
        labels,
        data.classes(),
        data.shape(),
    )
    .map_err(|error| error.to_string())?;
    Ok(Shard {
        indices: shard.indices.clone(),
        data,
    })
}

/// Colludes: trains honestly, pools its update in the coalition and reveals its row of the
/// attack crafted from the pool (ALIE, IPM, min-max, ...; a classic Sybil is a coalition of
/// identities). A member still waiting at its last chance reveals its honest update.
#[derive(Debug)]
pub struct Crafting {
    attack: Attack,
    coalition: Arc<Mutex<Coalition>>,
    honest: Option<(u32, Submission)>,
}

impl Crafting {
    /// A member of `coalition` running `attack`.
    pub fn new(attack: Attack, coalition: Arc<Mutex<Coalition>>) -> Self {
        Self {
            attack,
            coalition,
            honest: None,
        }
    }
}

impl TrainerConduct for Crafting {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        let number = input.round.number;
        let honest = match &self.honest {
            Some((round, submission)) if *round == number => submission.clone(),
            _ => match input.train() {
                Ok(submission) => {
                    self.honest = Some((number, submission.clone()));
                    submission
                }
                Err(error) => return Decision::Skip(error.to_string()),
            },
        };
        let exchanged = match self.coalition.lock() {
            Ok(mut pool) => pool.exchange(
                (input.task.id, number),
                input.address,
                &honest.update,
                input.plan,
                &self.attack,
                (input.task.trainers.len(), &input.round.seed),
                &input.task.expelled,
            ),
            Err(_) => Some(Ok(honest.update.clone())),
        };
        match exchanged {
            Some(Ok(crafted)) => ready(with_update(
                input,
                honest.trajectory,
                crafted,
                honest.steps_trained,
            )),
            Some(Err(error)) => {
                tracing::warn!(%error, "attack could not be crafted; submitting the honest update");
                Decision::Ready(honest)
            }
            None if input.last_chance => Decision::Ready(honest),
            None => Decision::Wait(Vec::new()),
        }
    }
}

/// Trains on its shard with every label flipped (`y -> C − 1 − y`).
#[derive(Debug, Default)]
pub struct LabelFlipping;

impl TrainerConduct for LabelFlipping {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        match flipped(&input.shard) {
            Ok(shard) => ready(Submission::honest(input.assignment_on(Arc::new(shard)))),
            Err(reason) => Decision::Skip(reason),
        }
    }
}

/// What a free rider reveals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeRide {
    /// The zero update.
    Zero,
    /// The last global step `M_r − M_{r−1}` (zero in round 0).
    Stale,
}

/// Reveals an update without training; its trace repeats the start state.
#[derive(Debug)]
pub struct FreeRiding(pub FreeRide);

impl TrainerConduct for FreeRiding {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        let update = match self.0 {
            FreeRide::Zero => vec![0.0; input.model.len()],
            FreeRide::Stale => match last_global_step(input) {
                Ok(Some(step)) => step,
                Ok(None) if !input.last_chance => {
                    let record = query::round(input.state, input.task.id, input.round.number - 1);
                    return match record {
                        Ok(Some(record)) => Decision::Wait(vec![Intent::Fetch {
                            hash: record.model_hash,
                            holder: None,
                        }]),
                        _ => Decision::Skip("no previous round".into()),
                    };
                }
                Ok(None) => vec![0.0; input.model.len()],
                Err(reason) => return Decision::Skip(reason),
            },
        };
        ready(with_update(input, untrained(input), update, 0))
    }
}

/// Like [`FreeRiding::Stale`] with noise added, so the update is not a replayed hash.
#[derive(Debug)]
pub struct StaleReplay {
    /// Half-width of the uniform noise added to every value.
    pub noise: f32,
}

impl TrainerConduct for StaleReplay {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        let step = match last_global_step(input) {
            Ok(Some(step)) => step,
            Ok(None) | Err(_) => vec![0.0; input.model.len()],
        };
        let noise = noise(input, step.len(), self.noise);
        let update = step.iter().zip(&noise).map(|(s, n)| s + n).collect();
        ready(with_update(input, untrained(input), update, 0))
    }
}

/// Commits honestly and never reveals (the ledger slashes it).
#[derive(Debug, Default)]
pub struct Withholding;

impl TrainerConduct for Withholding {
    fn reveals(&mut self, _round: u32) -> bool {
        false
    }
}

/// Trains, commits and reveals honestly, but never lets a peer fetch its update: without
/// availability votes the validators that got it and those that did not would compute different
/// models. Its update does not count, and a second round in a row is slashed.
#[derive(Debug, Default)]
pub struct Hoarding;

impl TrainerConduct for Hoarding {
    fn publishes(&mut self, _round: u32) -> bool {
        false
    }
}

/// Trains honestly and then reveals an update that does not decode (a NaN among the values),
/// naming it in its trace's last checkpoint so that the reveal itself is accepted.
#[derive(Debug, Default)]
pub struct Malforming;

impl TrainerConduct for Malforming {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        match input.train() {
            Ok(honest) => {
                let mut update = honest.update.clone();
                if let Some(first) = update.first_mut() {
                    *first = f32::NAN;
                }
                ready(with_update(
                    input,
                    honest.trajectory,
                    update,
                    honest.steps_trained,
                ))
            }
            Err(error) => Decision::Skip(error.to_string()),
        }
    }
}

/// How a lazy trainer saves work.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Laziness {
    /// Trains only this fraction of its steps and claims the rest.
    Steps(f64),
    /// Trains every step on only this fraction of its shard.
    Shard(f64),
}

/// Does part of the work and claims all of it.
#[derive(Debug)]
pub struct Lazy(pub Laziness);

impl TrainerConduct for Lazy {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        match self.0 {
            Laziness::Steps(fraction) => {
                let steps = input.plan.local_steps;
                let done =
                    ((f64::from(steps) * fraction).floor() as u32).min(steps.saturating_sub(1));
                let trajectory = Deviated::new(input.assignment(), Deviation::FreezeAfter(done));
                match trajectory.update() {
                    Ok(update) => ready(
                        Submission::from_trajectory(input.plan, Arc::new(trajectory), update)
                            .map(|submission| submission.trained(done)),
                    ),
                    Err(error) => Decision::Skip(error.to_string()),
                }
            }
            Laziness::Shard(fraction) => {
                let shard = &input.shard;
                let keep = ((shard.indices.len() as f64 * fraction).ceil() as usize)
                    .clamp(1, shard.indices.len());
                let positions: Vec<usize> = (0..keep).collect();
                let part = match shard.data.subset(&positions) {
                    Ok(data) => Shard {
                        indices: shard.indices[..keep].to_vec(),
                        data,
                    },
                    Err(error) => return Decision::Skip(error.to_string()),
                };
                ready(Submission::honest(input.assignment_on(Arc::new(part))))
            }
        }
    }
}

/// Trains one step, reveals that step's change times the task's steps as if it were the whole
/// run (a shortcut that looks like work), and commits a made-up trace whose last checkpoint
/// names that update.
#[derive(Debug, Default)]
pub struct Forging;

impl TrainerConduct for Forging {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        let assignment = input.assignment();
        let steps = input.plan.local_steps as f32;
        let update = match Deviated::new(assignment.clone(), Deviation::FreezeAfter(1)).update() {
            Ok(one) => one.iter().map(|v| v * steps).collect::<Vec<f32>>(),
            Err(error) => return Decision::Skip(error.to_string()),
        };
        let seed = domain_hash(
            b"cairn/sim/forger",
            &[input.address.as_bytes(), &input.round.seed],
        );
        let forged = Forged::new(assignment, seed, &update);
        ready(
            Submission::from_trajectory(input.plan, Arc::new(forged), update)
                .map(|submission| submission.trained(1)),
        )
    }
}

/// Recomputes another trainer's update from public data (its shard and batch seed) and commits
/// it as its own.
#[derive(Debug)]
pub struct Copying {
    /// The trainer copied.
    pub victim: Address,
}

impl TrainerConduct for Copying {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        let trainers: Vec<Address> = input.task.trainers.keys().copied().collect();
        let shard = match shard_of(input.plan, input.task.id, &trainers, &self.victim) {
            Ok(shard) => shard,
            Err(error) => return Decision::Skip(error.to_string()),
        };
        let victim = Assignment::new(
            input.plan.clone(),
            Arc::new(shard),
            &input.round.seed,
            &self.victim,
            input.model.clone(),
        );
        ready(Submission::honest(victim))
    }
}

/// One training run sold under several identities: the primary trains, every other identity
/// reveals the primary's update with its own noise added and the primary's trace.
#[derive(Debug)]
pub struct NoiseSybil {
    pool: Arc<Mutex<SybilPool>>,
    primary: bool,
    noise: f32,
}

impl NoiseSybil {
    /// An identity of the Sybil sharing `pool`; `primary` trains.
    pub fn new(pool: Arc<Mutex<SybilPool>>, primary: bool, noise: f32) -> Self {
        Self {
            pool,
            primary,
            noise,
        }
    }
}

impl TrainerConduct for NoiseSybil {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        let (task, round) = (input.task.id, input.round.number);
        if self.primary {
            return match input.train() {
                Ok(submission) => {
                    if let Ok(mut pool) = self.pool.lock() {
                        pool.deposit(task, round, submission.clone());
                    }
                    Decision::Ready(submission)
                }
                Err(error) => Decision::Skip(error.to_string()),
            };
        }
        let primary = self
            .pool
            .lock()
            .ok()
            .and_then(|pool| pool.take(task, round));
        match primary {
            Some(run) => {
                let noise = noise(input, run.update.len(), self.noise);
                let update = run.update.iter().zip(&noise).map(|(u, n)| u + n).collect();
                ready(with_update(input, run.trajectory, update, 0))
            }
            None if input.last_chance => Decision::Skip("the Sybil's run is not ready".into()),
            None => Decision::Wait(Vec::new()),
        }
    }
}

/// Trains honestly and reveals its update multiplied by `factor`.
#[derive(Debug)]
pub struct Scaling {
    /// The multiplier.
    pub factor: f32,
}

impl TrainerConduct for Scaling {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        match input.train() {
            Ok(honest) => {
                let update = honest.update.iter().map(|v| v * self.factor).collect();
                ready(with_update(
                    input,
                    honest.trajectory,
                    update,
                    honest.steps_trained,
                ))
            }
            Err(error) => Decision::Skip(error.to_string()),
        }
    }
}

/// A trainer whose trace is wrong from step `at` on (its state is perturbed there and training
/// goes on from it), and that defends its trace in disputes unless `silent`.
#[derive(Debug)]
pub struct Lying {
    /// The first wrong step.
    pub at: u32,
    /// Whether it stays silent in disputes.
    pub silent: bool,
}

impl TrainerConduct for Lying {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        let deviation = Deviation::Perturb {
            at: self.at,
            amount: 1e-3,
        };
        let trajectory = Deviated::new(input.assignment(), deviation);
        match trajectory.update() {
            Ok(update) => ready(
                Submission::from_trajectory(input.plan, Arc::new(trajectory), update)
                    .map(|submission| submission.trained(input.plan.local_steps)),
            ),
            Err(error) => Decision::Skip(error.to_string()),
        }
    }

    fn defends(&mut self, _dispute: &Dispute) -> bool {
        !self.silent
    }
}
