//! Training loops: seeded epochs for centralized training and the federated primitive
//! [`local_train`], built on [`train_step`] so that any single step can be re-executed alone.
//!
//! Every random choice (batch order, dropout masks) is derived from a seed and a counter with
//! blake3, so step `s` of a run depends only on the seed, `s`, the data, the parameters and the
//! optimizer state before it.

use crate::data::{Dataset, DatasetError};
use crate::model::{Model, ModelError, Workspace};
use crate::optim::{Optimizer, OptimizerError};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use thiserror::Error;

/// Errors from a training run.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The model rejected the batch.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The optimizer does not fit the model.
    #[error(transparent)]
    Optimizer(#[from] OptimizerError),
    /// Gathering a batch failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The dataset's samples or labels do not fit the model.
    #[error("dataset of {dim} features and {classes} classes does not fit a model of {model_dim} inputs and {model_classes} classes")]
    DatasetMismatch {
        /// Features per dataset sample.
        dim: usize,
        /// Classes of the dataset.
        classes: usize,
        /// Inputs of the model.
        model_dim: usize,
        /// Classes of the model.
        model_classes: usize,
    },
    /// The training settings cannot run; the message says which.
    #[error("invalid training settings: {0}")]
    InvalidConfig(String),
    /// The loss or the updated weights stopped being finite; lower the learning rate.
    #[error("training diverged at step {step}: the loss or the weights are no longer finite (try a lower learning rate)")]
    Diverged {
        /// The step (or batch index within the epoch) that diverged.
        step: u64,
    },
}

/// blake3 of the parameters' little-endian bytes: the identity of a set of weights.
pub fn weights_hash(params: &[f32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    let mut buffer = [0u8; 4096];
    for chunk in params.chunks(buffer.len() / 4) {
        for (bytes, value) in buffer.chunks_exact_mut(4).zip(chunk) {
            bytes.copy_from_slice(&value.to_le_bytes());
        }
        hasher.update(&buffer[..chunk.len() * 4]);
    }
    *hasher.finalize().as_bytes()
}

/// A sub-seed for `purpose` number `index` of a run seeded with `seed`: the first 8 bytes of
/// blake3(`purpose` ‖ seed ‖ index), little-endian.
pub fn derive_seed(seed: u64, purpose: &str, index: u64) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(purpose.as_bytes());
    hasher.update(&seed.to_le_bytes());
    hasher.update(&index.to_le_bytes());
    let bytes = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// A uniformly random permutation of `0..samples` (Fisher–Yates over a ChaCha20 stream).
pub fn shuffled_order(samples: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..samples).collect();
    for i in (1..samples).rev() {
        let j = uniform_below(&mut rng, i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// Unbiased integer in `0..bound` by rejection sampling.
fn uniform_below(rng: &mut ChaCha20Rng, bound: u64) -> u64 {
    let zone = u64::MAX - (u64::MAX - bound + 1) % bound;
    loop {
        let value = rng.next_u64();
        if value <= zone {
            return value % bound;
        }
    }
}

/// Reported after every batch of [`train_epoch`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchProgress {
    /// Index of the batch just done.
    pub batch: usize,
    /// Batches in the epoch.
    pub batches: usize,
    /// Samples in this batch.
    pub samples: usize,
    /// Mean loss of this batch (before the update).
    pub loss: f32,
}

/// What one epoch did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// Sample-weighted mean of the batch losses.
    pub mean_loss: f32,
    /// Samples seen.
    pub samples: usize,
    /// Batches (optimizer steps) taken.
    pub batches: usize,
}

fn check_fit(
    model: &Model,
    optimizer: &Optimizer,
    data: &Dataset,
    batch_size: usize,
) -> Result<(), TrainError> {
    let spec = model.spec();
    if data.dim() != spec.input_dim() || data.classes() > spec.classes() {
        return Err(TrainError::DatasetMismatch {
            dim: data.dim(),
            classes: data.classes(),
            model_dim: spec.input_dim(),
            model_classes: spec.classes(),
        });
    }
    if data.is_empty() {
        return Err(TrainError::InvalidConfig("the dataset is empty".into()));
    }
    if batch_size == 0 {
        return Err(TrainError::InvalidConfig("batch size is 0".into()));
    }
    optimizer.check(model.params().len())?;
    Ok(())
}

/// Buffers reused across training steps so the loop does not allocate per step.
#[derive(Clone, Debug)]
pub struct StepBuffers {
    workspace: Workspace,
    grad: Vec<f32>,
    x: Vec<f32>,
    y: Vec<u32>,
    /// The shuffled order of the epoch last used by [`train_step`], keyed by the epoch index.
    epoch: Option<(u64, Vec<usize>)>,
}

impl StepBuffers {
    /// Buffers for training `model`.
    pub fn new(model: &Model) -> StepBuffers {
        StepBuffers {
            workspace: model.workspace(),
            grad: vec![0.0; model.params().len()],
            x: Vec::new(),
            y: Vec::new(),
            epoch: None,
        }
    }
}

/// One gradient step on the samples at `indices`: loss and gradient with dropout drawn from
/// `dropout_seed`, then the optimizer update. Returns the batch's mean loss.
///
/// `step` only labels a [`TrainError::Diverged`] error.
pub fn apply_batch(
    model: &mut Model,
    optimizer: &mut Optimizer,
    data: &Dataset,
    indices: &[usize],
    dropout_seed: u64,
    step: u64,
    buffers: &mut StepBuffers,
) -> Result<f32, TrainError> {
    data.gather(indices, &mut buffers.x, &mut buffers.y)?;
    if buffers.grad.len() != model.params().len() {
        buffers.grad = vec![0.0; model.params().len()];
    }
    let loss = model.loss_and_gradient_in(
        &mut buffers.workspace,
        &buffers.x,
        &buffers.y,
        indices.len(),
        dropout_seed,
        &mut buffers.grad,
    )?;
    if !loss.is_finite() {
        return Err(TrainError::Diverged { step });
    }
    optimizer.step(model.params_mut(), &buffers.grad);
    if model.params().iter().any(|v| !v.is_finite()) {
        return Err(TrainError::Diverged { step });
    }
    Ok(loss)
}

/// One pass over `data` in an order shuffled from `epoch_seed`, `batch_size` samples per step
/// (the last batch may be smaller); batch `b` draws dropout from
/// `derive_seed(epoch_seed, "cairn.ml.epoch.dropout", b)`. Calls `on_batch` after every step.
pub fn train_epoch(
    model: &mut Model,
    optimizer: &mut Optimizer,
    data: &Dataset,
    batch_size: usize,
    epoch_seed: u64,
    mut on_batch: impl FnMut(BatchProgress),
) -> Result<EpochStats, TrainError> {
    check_fit(model, optimizer, data, batch_size)?;
    let order = shuffled_order(
        data.len(),
        derive_seed(epoch_seed, "cairn.ml.epoch.order", 0),
    );
    let batches = order.len().div_ceil(batch_size);
    let mut buffers = StepBuffers::new(model);
    let mut total = 0.0f64;
    for (batch, indices) in order.chunks(batch_size).enumerate() {
        let dropout_seed = derive_seed(epoch_seed, "cairn.ml.epoch.dropout", batch as u64);
        let loss = apply_batch(
            model,
            optimizer,
            data,
            indices,
            dropout_seed,
            batch as u64,
            &mut buffers,
        )?;
        total += f64::from(loss) * indices.len() as f64;
        on_batch(BatchProgress {
            batch,
            batches,
            samples: indices.len(),
            loss,
        });
    }
    Ok(EpochStats {
        mean_loss: (total / order.len() as f64) as f32,
        samples: order.len(),
        batches,
    })
}

/// Settings of a federated trainer's local run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalTrainConfig {
    /// Optimizer steps to take (at least 1).
    pub steps: u64,
    /// Samples per step; a dataset smaller than this is used whole every step.
    pub batch_size: usize,
    /// Seed of the batch order and dropout masks.
    pub seed: u64,
    /// Record the weights hash after every `trace_every` steps (at least 1).
    pub trace_every: u64,
}

impl LocalTrainConfig {
    fn validate(&self) -> Result<(), TrainError> {
        if self.steps == 0 {
            return Err(TrainError::InvalidConfig(
                "local training needs at least 1 step".into(),
            ));
        }
        if self.trace_every == 0 {
            return Err(TrainError::InvalidConfig(
                "trace_every is 0; it must be at least 1".into(),
            ));
        }
        if self.batch_size == 0 {
            return Err(TrainError::InvalidConfig("batch size is 0".into()));
        }
        Ok(())
    }
}

/// The result of [`local_train`].
#[derive(Clone, Debug, PartialEq)]
pub struct LocalTrainOutcome {
    /// Parameters after the last step.
    pub params: Vec<f32>,
    /// [`weights_hash`] after steps `trace_every`, `2·trace_every`, … (1-based step counts).
    pub trace: Vec<[u8; 32]>,
    /// Mean of the step losses.
    pub mean_loss: f32,
}

/// The sample indices step `step` (0-based) of a local run trains on.
///
/// Steps walk through epochs of `max(1, samples / b)` full batches of `b = min(batch_size,
/// samples)`, each epoch in the order `shuffled_order(samples, derive_seed(seed,
/// "cairn.ml.local.epoch", epoch))`; leftover samples of an epoch are skipped. An invalid
/// config or `samples == 0` is an error, since a referee calls this on values from a dispute.
pub fn step_batch(
    samples: usize,
    config: &LocalTrainConfig,
    step: u64,
) -> Result<Vec<usize>, TrainError> {
    config.validate()?;
    if samples == 0 {
        return Err(TrainError::InvalidConfig("the dataset is empty".into()));
    }
    let (epoch, order) = epoch_for_step(samples, config, step);
    let batch = config.batch_size.min(samples);
    let index = (step - epoch * batches_per_epoch(samples, config)) as usize;
    Ok(order[index * batch..(index + 1) * batch].to_vec())
}

/// Dropout seed of step `step` of a local run seeded with `seed`.
pub fn step_dropout_seed(seed: u64, step: u64) -> u64 {
    derive_seed(seed, "cairn.ml.local.dropout", step)
}

fn batches_per_epoch(samples: usize, config: &LocalTrainConfig) -> u64 {
    (samples / config.batch_size.min(samples)).max(1) as u64
}

fn epoch_for_step(samples: usize, config: &LocalTrainConfig, step: u64) -> (u64, Vec<usize>) {
    let epoch = step / batches_per_epoch(samples, config);
    let order = shuffled_order(
        samples,
        derive_seed(config.seed, "cairn.ml.local.epoch", epoch),
    );
    (epoch, order)
}

/// Step `step` (0-based) of the local run `config` on `data`, from the given model and
/// optimizer state: exactly what [`local_train`] does at that step, so a referee can re-execute
/// one disputed step alone. Returns the batch's mean loss.
pub fn train_step(
    model: &mut Model,
    optimizer: &mut Optimizer,
    data: &Dataset,
    config: &LocalTrainConfig,
    step: u64,
    buffers: &mut StepBuffers,
) -> Result<f32, TrainError> {
    config.validate()?;
    check_fit(model, optimizer, data, config.batch_size)?;
    let samples = data.len();
    let epoch = step / batches_per_epoch(samples, config);
    if buffers
        .epoch
        .as_ref()
        .is_none_or(|(cached, _)| *cached != epoch)
    {
        buffers.epoch = Some(epoch_for_step(samples, config, step));
    }
    let batch = config.batch_size.min(samples);
    let index = (step - epoch * batches_per_epoch(samples, config)) as usize;
    let indices = match &buffers.epoch {
        Some((_, order)) => order[index * batch..(index + 1) * batch].to_vec(),
        None => unreachable!("epoch order filled above"),
    };
    apply_batch(
        model,
        optimizer,
        data,
        &indices,
        step_dropout_seed(config.seed, step),
        step,
        buffers,
    )
}

/// Runs `config.steps` steps of [`train_step`] from `model`, recording the weights trace.
pub fn local_train(
    model: &Model,
    optimizer: &mut Optimizer,
    data: &Dataset,
    config: &LocalTrainConfig,
) -> Result<LocalTrainOutcome, TrainError> {
    config.validate()?;
    check_fit(model, optimizer, data, config.batch_size)?;
    let mut model = model.clone();
    let mut buffers = StepBuffers::new(&model);
    let mut trace = Vec::new();
    let mut total = 0.0f64;
    for step in 0..config.steps {
        total += f64::from(train_step(
            &mut model,
            optimizer,
            data,
            config,
            step,
            &mut buffers,
        )?);
        if (step + 1) % config.trace_every == 0 {
            trace.push(weights_hash(model.params()));
        }
    }
    tracing::debug!(
        steps = config.steps,
        trace = trace.len(),
        "local training done"
    );
    Ok(LocalTrainOutcome {
        params: model.into_params(),
        trace,
        mean_loss: (total / config.steps as f64) as f32,
    })
}

#[cfg(test)]
mod tests;
