//! A trainer's work in one round: its shard of the train split, its batch order, bit-exact local
//! training one step at a time, the trace of checkpoints, and the update `Δ = W_T − M_r`.
//!
//! Everything here is a function of public inputs (the task plan, the sorted trainer set, the
//! round seed, the trainer's address and `M_r`), so an auditor re-runs a trainer's round exactly
//! and the referee re-runs any single step of it ([`crate::referee`]) with the same code.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cairn_ml::data::{partition, Dataset, DatasetError, PartitionError};
use cairn_ml::model::{Model, ModelError};
use cairn_ml::optim::{Optimizer, OptimizerError};
use cairn_ml::train::{
    apply_batch, step_batch, step_dropout_seed, LocalTrainConfig, StepBuffers, TrainError,
};

use crate::address::Address;
use crate::encoding::{first_u64, Hash, ZERO_HASH};
use crate::plan::TaskPlan;
use crate::trace::{self, batch_hash, Checkpoint};
use crate::witness::Witness;
use crate::{optimizer, params};

/// Why a trainer's work could not be produced or replayed.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// The partition of the train split failed (e.g. more trainers than samples).
    #[error("cannot partition the train split: {0}")]
    Partition(#[from] PartitionError),
    /// This address is not among the task's trainers.
    #[error("{0} is not a trainer of this task")]
    NotMember(Address),
    /// The trainer's shard holds no sample.
    #[error("trainer {0}'s shard is empty")]
    EmptyShard(Address),
    /// Building the shard failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The model parameters do not fit the task's model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The optimizer does not fit.
    #[error(transparent)]
    Optimizer(#[from] OptimizerError),
    /// Local training failed (e.g. diverged).
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A step outside the run was asked for.
    #[error("step {step} is outside a run of {steps} steps")]
    StepOutOfRange {
        /// The step asked for.
        step: u32,
        /// Steps of the run.
        steps: u32,
    },
}

/// A trainer's shard: positions in the dataset's train split and the samples at them.
#[derive(Debug)]
pub struct Shard {
    /// Positions in the train split, in the order the shard's samples are numbered.
    pub indices: Vec<usize>,
    /// The samples.
    pub data: Dataset,
}

/// Seed of a task's partition: `blake3("cairn/shard-seed/v1" || task || count || trainers...)`
/// (big-endian, trainers in ascending address order), first 8 bytes little-endian.
pub fn shard_seed<'a>(task: u64, trainers: impl ExactSizeIterator<Item = &'a Address>) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cairn/shard-seed/v1");
    hasher.update(&task.to_be_bytes());
    hasher.update(&(trainers.len() as u64).to_be_bytes());
    for trainer in trainers {
        hasher.update(trainer.as_bytes());
    }
    first_u64(hasher.finalize().as_bytes())
}

/// Every trainer's shard of the train split: index lists in ascending trainer-address order.
/// `trainers` must be sorted (a ledger `BTreeMap`'s keys are).
pub fn shards(
    plan: &TaskPlan,
    task: u64,
    trainers: &[Address],
) -> Result<Vec<Vec<usize>>, TrainerError> {
    debug_assert!(trainers.windows(2).all(|w| w[0] < w[1]));
    let train = &plan.dataset.split.train;
    let seed = shard_seed(task, trainers.iter());
    Ok(partition(
        train.labels(),
        train.classes(),
        trainers.len(),
        &plan.partition,
        seed,
    )?)
}

/// The shard of `trainer` (its position among the sorted `trainers`).
pub fn shard_of(
    plan: &TaskPlan,
    task: u64,
    trainers: &[Address],
    trainer: &Address,
) -> Result<Shard, TrainerError> {
    let index = trainers
        .binary_search(trainer)
        .map_err(|_| TrainerError::NotMember(*trainer))?;
    let mut parts = shards(plan, task, trainers)?;
    let indices = std::mem::take(&mut parts[index]);
    let data = plan.dataset.split.train.subset(&indices)?;
    if data.is_empty() {
        return Err(TrainerError::EmptyShard(*trainer));
    }
    Ok(Shard { indices, data })
}

/// Seed of a trainer's batch order and dropout in a round:
/// `blake3("cairn/batch-seed/v1" || round seed || address)`, first 8 bytes little-endian.
/// The round seed is unknown before the round opens, so nobody can pre-train.
pub fn batch_seed(round_seed: &Hash, trainer: &Address) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cairn/batch-seed/v1");
    hasher.update(round_seed);
    hasher.update(trainer.as_bytes());
    first_u64(hasher.finalize().as_bytes())
}

/// The state of a local run after some steps.
#[derive(Clone, Debug)]
pub struct TrainState {
    /// Steps taken.
    pub step: u32,
    /// The model with its weights.
    pub model: Model,
    /// The optimizer with its state.
    pub optimizer: Optimizer,
    /// [`batch_hash`] of the batch of the step that produced this state (zero at step 0).
    pub batch: Hash,
}

/// The rule of one trainer's local run in one round, without its starting weights: which
/// samples each step trains on and how. The trainer, an auditor and the referee share it.
#[derive(Clone, Debug)]
pub struct LocalRun {
    /// The task's plan.
    pub plan: Arc<TaskPlan>,
    /// The trainer's shard.
    pub shard: Arc<Shard>,
    /// [`batch_seed`] of the trainer in this round.
    pub seed: u64,
}

impl LocalRun {
    /// The batch order and dropout settings of this run.
    pub fn config(&self) -> LocalTrainConfig {
        LocalTrainConfig {
            steps: u64::from(self.plan.local_steps),
            batch_size: self.plan.batch_size,
            seed: self.seed,
            trace_every: u64::from(self.plan.trace_every.max(1)),
        }
    }

    /// Steps of the run (`T`).
    pub fn steps(&self) -> u32 {
        self.plan.local_steps
    }

    /// The positions in the shard that step `step` (0-based) trains on.
    fn local_batch(&self, step: u32) -> Result<Vec<usize>, TrainerError> {
        Ok(step_batch(
            self.shard.data.len(),
            &self.config(),
            u64::from(step),
        )?)
    }

    /// [`batch_hash`] of the batch step `step` (0-based) trains on, as train-split positions.
    pub fn batch_hash(&self, step: u32) -> Result<Hash, TrainerError> {
        let local = self.local_batch(step)?;
        Ok(batch_hash(local.iter().map(|&i| self.shard.indices[i])))
    }

    /// The hash of a fresh optimizer's state for this task.
    pub fn fresh_optimizer_hash(&self) -> Result<Hash, TrainerError> {
        let fresh = Optimizer::new(&self.plan.optimizer, self.plan.param_count())?;
        Ok(optimizer::hash(&fresh))
    }

    /// The state before the first step: `params` and a fresh optimizer.
    pub fn initial_state(&self, params: Vec<f32>) -> Result<TrainState, TrainerError> {
        let model = Model::new(self.plan.model.clone(), params)?;
        let optimizer = Optimizer::new(&self.plan.optimizer, self.plan.param_count())?;
        Ok(TrainState {
            step: 0,
            model,
            optimizer,
            batch: ZERO_HASH,
        })
    }

    /// Takes the next step from `state`: exactly what `cairn_ml::train::train_step` does at
    /// that step. Returns the batch's mean loss.
    pub fn advance(
        &self,
        state: &mut TrainState,
        buffers: &mut StepBuffers,
    ) -> Result<f32, TrainerError> {
        let steps = self.steps();
        if state.step >= steps {
            return Err(TrainerError::StepOutOfRange {
                step: state.step + 1,
                steps,
            });
        }
        let step = u64::from(state.step);
        let local = self.local_batch(state.step)?;
        let loss = apply_batch(
            &mut state.model,
            &mut state.optimizer,
            &self.shard.data,
            &local,
            step_dropout_seed(self.seed, step),
            step,
            buffers,
        )?;
        state.batch = batch_hash(local.iter().map(|&i| self.shard.indices[i]));
        state.step += 1;
        Ok(loss)
    }

    /// The checkpoint of `state`; at the last step it carries the update the trainer sends,
    /// which `start` (the round's input weights) must then be given for: `W_T − start`, or
    /// with the task's worker momentum `β` the carried vector
    /// [`carry_momentum`]`(carried, W_T − start, β)`, `carried` being what the trainer sent in
    /// its previous round (`None`: its first, or after a round it was not counted in).
    pub fn checkpoint(
        &self,
        state: &TrainState,
        start: Option<&[f32]>,
        carried: Option<&[f32]>,
    ) -> Result<(Checkpoint, Option<Vec<f32>>), TrainerError> {
        let weights = state.model.params();
        let mut checkpoint = Checkpoint {
            step: state.step,
            weights: params::hash(weights),
            optimizer: optimizer::hash(&state.optimizer),
            batch: state.batch,
            update: ZERO_HASH,
        };
        if state.step != self.steps() {
            return Ok((checkpoint, None));
        }
        let Some(start) = start else {
            return Err(TrainerError::StepOutOfRange {
                step: state.step,
                steps: self.steps(),
            });
        };
        let diverged = || {
            TrainerError::Train(TrainError::Diverged {
                step: u64::from(state.step),
            })
        };
        let update = delta(weights, start).ok_or_else(diverged)?;
        let update = if self.plan.worker_momentum == 0.0 {
            update
        } else {
            let carried = carried.filter(|c| c.len() == update.len());
            let sent = carry_momentum(carried, &update, self.plan.worker_momentum);
            if !sent.iter().all(|v| v.is_finite()) {
                return Err(diverged());
            }
            sent
        };
        checkpoint.update = params::hash(&update);
        Ok((checkpoint, Some(update)))
    }
}

/// `new − old`, element by element; `None` when a difference is not finite.
pub fn delta(new: &[f32], old: &[f32]) -> Option<Vec<f32>> {
    let update: Vec<f32> = new.iter().zip(old).map(|(n, o)| n - o).collect();
    update.iter().all(|v| v.is_finite()).then_some(update)
}

/// Worker momentum carried across rounds (Karimireddy, He and Jaggi 2021): the vector a
/// trainer sends is `m_r = β m_{r−1} + (1 − β) Δ_r`, element by element, where `m_{r−1}` is what
/// it sent in its previous round. A trainer's first round sends `Δ` itself (`previous` is
/// `None`), so the first rounds are not shrunk towards zero. Honest trainers' vectors then vary
/// less from round to round and from each other, which is what robust rules need.
pub fn carry_momentum(previous: Option<&[f32]>, delta: &[f32], beta: f32) -> Vec<f32> {
    match previous {
        Some(previous) if beta != 0.0 && previous.len() == delta.len() => previous
            .iter()
            .zip(delta)
            .map(|(m, d)| beta * m + (1.0 - beta) * d)
            .collect(),
        _ => delta.to_vec(),
    }
}

/// What a trainer commits for a round: the update and the trace behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct Work {
    /// `Δ = W_T − M_r`, element by element.
    pub update: Vec<f32>,
    /// Checkpoint hashes at the leaf steps, in step order.
    pub leaves: Vec<Hash>,
    /// The last checkpoint (its `update` is the hash of [`Work::update`]'s blob).
    pub last: Checkpoint,
    /// Mean training loss of the local steps (0 when no step was trained).
    pub mean_loss: f32,
}

impl Work {
    /// The Merkle root of the trace ([`trace::root`]).
    pub fn trace_root(&self) -> Hash {
        trace::root(&self.leaves)
    }

    /// The proof that opens the last leaf against the trace root (revealed with the update).
    pub fn last_proof(&self) -> Vec<Hash> {
        trace::proof(&self.leaves, self.leaves.len().saturating_sub(1)).unwrap_or_default()
    }

    /// The proof of leaf `index`, if it exists.
    pub fn proof(&self, index: usize) -> Option<Vec<Hash>> {
        trace::proof(&self.leaves, index)
    }
}

/// Most states an [`Assignment`] keeps to start later replays from (least recently used go).
pub const REPLAY_MEMO: usize = 8;

/// A trainer's assignment in one round: its local run and the input weights `M_r`.
///
/// Replays ([`Assignment::state_at`], and so a dispute's claims and witness) start from the
/// latest state it already reached at or before the step asked for: a bisection's claims then
/// cost about `T` steps in all instead of up to `T` each. `run` and `start` must not change
/// after construction (the remembered states are theirs); a clone remembers nothing.
#[derive(Debug)]
pub struct Assignment {
    /// The run.
    pub run: LocalRun,
    /// `M_r`.
    pub start: Arc<[f32]>,
    /// With worker momentum, what the trainer sent in its previous round when it was counted
    /// there (`crate::training::carry_momentum`); `None` otherwise.
    pub carried: Option<Arc<[f32]>>,
    /// States reached by replays, most recently used last.
    replays: Mutex<Vec<TrainState>>,
    /// Steps taken by replays so far.
    replayed: AtomicU64,
}

impl Clone for Assignment {
    fn clone(&self) -> Self {
        Self {
            run: self.run.clone(),
            start: self.start.clone(),
            carried: self.carried.clone(),
            replays: Mutex::default(),
            replayed: AtomicU64::new(0),
        }
    }
}

impl Assignment {
    /// The assignment of `trainer` among the task's sorted `trainers` in the round with
    /// `round_seed`, starting from `start`.
    pub fn new(
        plan: Arc<TaskPlan>,
        shard: Arc<Shard>,
        round_seed: &Hash,
        trainer: &Address,
        start: Arc<[f32]>,
    ) -> Self {
        Self {
            run: LocalRun {
                plan,
                shard,
                seed: batch_seed(round_seed, trainer),
            },
            start,
            carried: None,
            replays: Mutex::default(),
            replayed: AtomicU64::new(0),
        }
    }

    /// The assignment carrying `carried` into this round's update (worker momentum; see
    /// [`LocalRun::checkpoint`]). Ignored by tasks without worker momentum.
    pub fn carrying(mut self, carried: Option<Arc<[f32]>>) -> Self {
        self.carried = carried;
        self
    }

    /// Training steps replays have taken so far (what answering a dispute cost).
    pub fn replayed_steps(&self) -> u64 {
        self.replayed.load(Ordering::Relaxed)
    }

    /// Runs every step, recording a checkpoint at each leaf step: the honest work.
    pub fn train(&self) -> Result<Work, TrainerError> {
        let steps = self.run.steps();
        let every = self.run.plan.trace_every;
        let mut state = self.run.initial_state(self.start.to_vec())?;
        let mut buffers = StepBuffers::new(&state.model);
        let mut leaves = Vec::with_capacity(trace::leaf_count(steps, every));
        leaves.push(self.run.checkpoint(&state, None, None)?.0.hash());
        let mut total = 0.0f64;
        while state.step < steps {
            total += f64::from(self.run.advance(&mut state, &mut buffers)?);
            if state.step < steps && trace::leaf_index(state.step, steps, every).is_some() {
                leaves.push(self.run.checkpoint(&state, None, None)?.0.hash());
            }
        }
        let (last, update) =
            self.run
                .checkpoint(&state, Some(&self.start), self.carried.as_deref())?;
        leaves.push(last.hash());
        debug_assert_eq!(leaves.len(), trace::leaf_count(steps, every));
        tracing::debug!(steps, leaves = leaves.len(), "local training done");
        Ok(Work {
            update: update.unwrap_or_default(),
            leaves,
            last,
            mean_loss: (total / f64::from(steps.max(1))) as f32,
        })
    }

    /// The state after `step` steps, replayed from `M_r` or from the latest remembered state
    /// at or before `step`.
    pub fn state_at(&self, step: u32) -> Result<TrainState, TrainerError> {
        let steps = self.run.steps();
        if step > steps {
            return Err(TrainerError::StepOutOfRange { step, steps });
        }
        // The state it starts from becomes the most recently used: a bisection keeps
        // starting from its agreed point.
        let remembered = self.replays.lock().ok().and_then(|mut memo| {
            let best = memo
                .iter()
                .enumerate()
                .filter(|(_, state)| state.step <= step)
                .max_by_key(|(_, state)| state.step)
                .map(|(index, _)| index)?;
            let state = memo.remove(best);
            memo.push(state.clone());
            Some(state)
        });
        let mut state = match remembered {
            Some(state) => state,
            None => self.run.initial_state(self.start.to_vec())?,
        };
        let mut buffers = StepBuffers::new(&state.model);
        while state.step < step {
            self.run.advance(&mut state, &mut buffers)?;
            self.replayed.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut memo) = self.replays.lock() {
            memo.retain(|kept| kept.step != state.step);
            memo.push(state.clone());
            if memo.len() > REPLAY_MEMO {
                memo.remove(0);
            }
        }
        Ok(state)
    }
}

/// How a trainer answers for its committed work in a dispute: its checkpoint at any step, and
/// the state behind a checkpoint as a witness the referee re-executes from. The honest answer
/// is an [`Assignment`] replayed; simulations wrap it to model trainers that lied.
pub trait Trajectory: Send + Sync + std::fmt::Debug {
    /// The checkpoint this trainer claims after `step` steps.
    fn checkpoint(&self, step: u32) -> Result<Checkpoint, TrainerError>;
    /// The state after `step` steps (`step < T`), as a witness.
    fn witness(&self, step: u32) -> Result<Witness, TrainerError>;
}

impl Trajectory for Assignment {
    fn checkpoint(&self, step: u32) -> Result<Checkpoint, TrainerError> {
        let state = self.state_at(step)?;
        Ok(self
            .run
            .checkpoint(&state, Some(&self.start), self.carried.as_deref())?
            .0)
    }

    fn witness(&self, step: u32) -> Result<Witness, TrainerError> {
        let steps = self.run.steps();
        if step >= steps {
            return Err(TrainerError::StepOutOfRange { step, steps });
        }
        let state = self.state_at(step)?;
        Ok(Witness {
            step,
            params: state.model.into_params(),
            optimizer: state.optimizer,
            model: (step + 1 == steps).then(|| self.start.to_vec()),
            momentum: self.run.plan.worker_momentum != 0.0,
            carried: (step + 1 == steps && self.run.plan.worker_momentum != 0.0)
                .then(|| self.carried.as_deref().map(<[f32]>::to_vec))
                .flatten(),
        })
    }
}

#[cfg(test)]
mod tests;
