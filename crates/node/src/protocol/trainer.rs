//! A trainer's work in one round: its shard of the train split, its batch order, bit-exact
//! local training, the update `Δ = new − old`, the trace root and the commitment salt.

use cairn_ledger::{Address, Hash};
use cairn_ml::data::{partition, Dataset, DatasetError, PartitionError};
use cairn_ml::model::{Model, ModelError};
use cairn_ml::optim::{Optimizer, OptimizerError};
use cairn_ml::train::{local_train, LocalTrainConfig, TrainError};

use super::plan::TaskPlan;

/// Why a trainer could not produce an update.
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
}

/// What one round of local training produced.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedUpdate {
    /// `new − old` parameters, element by element.
    pub update: Vec<f32>,
    /// [`trace_root`] of the weights hashes recorded during training.
    pub trace_root: Hash,
    /// Mean training loss of the local steps.
    pub mean_loss: f32,
}

fn first_u64(hash: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(bytes)
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

/// The shard of `trainer` (its position among the sorted `trainers`) as a dataset.
pub fn shard_of(
    plan: &TaskPlan,
    task: u64,
    trainers: &[Address],
    trainer: &Address,
) -> Result<Dataset, TrainerError> {
    let index = trainers
        .binary_search(trainer)
        .map_err(|_| TrainerError::NotMember(*trainer))?;
    let parts = shards(plan, task, trainers)?;
    let shard = plan.dataset.split.train.subset(&parts[index])?;
    if shard.is_empty() {
        return Err(TrainerError::EmptyShard(*trainer));
    }
    Ok(shard)
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

/// Merkle root of a training trace: leaves are the weights hashes, a parent is
/// `blake3(0x01 || left || right)`, an odd node is carried up unchanged; the root is
/// `blake3("cairn/trace-root/v1" || count u64 BE || tree root)` (tree root of no leaves: 32 zeros).
pub fn trace_root(trace: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = trace.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    let mut hasher = blake3::Hasher::new();
                    hasher.update(&[1]);
                    hasher.update(left);
                    hasher.update(right);
                    *hasher.finalize().as_bytes()
                }
                // `chunks(2)` yields one or two: an odd node is carried up unchanged.
                _ => pair[0],
            })
            .collect();
    }
    let top = level.first().copied().unwrap_or([0; 32]);
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cairn/trace-root/v1");
    hasher.update(&(trace.len() as u64).to_be_bytes());
    hasher.update(&top);
    *hasher.finalize().as_bytes()
}

/// A secret salt for a commitment: blake3 keyed by a key derived from the node's secret key
/// bytes (`derive_key("cairn 2026 commitment salt v1", secret)`), over `purpose || task ||
/// round`. Deterministic for the node (a restart reveals the same salt), unpredictable to others.
pub fn salt(secret: &[u8; 32], purpose: &str, task: u64, round: u32) -> Hash {
    let key = blake3::derive_key("cairn 2026 commitment salt v1", secret);
    let mut hasher = blake3::Hasher::new_keyed(&key);
    hasher.update(purpose.as_bytes());
    hasher.update(&task.to_be_bytes());
    hasher.update(&round.to_be_bytes());
    *hasher.finalize().as_bytes()
}

/// Runs the task's local steps from `params` on `shard` with the batch order of
/// (`round_seed`, `trainer`); returns `Δ`, the trace root and the mean loss.
pub fn train_round(
    plan: &TaskPlan,
    shard: &Dataset,
    params: &[f32],
    round_seed: &Hash,
    trainer: &Address,
) -> Result<TrainedUpdate, TrainerError> {
    let model = Model::new(plan.model.clone(), params.to_vec())?;
    let mut optimizer = Optimizer::new(&plan.optimizer, params.len())?;
    let config = LocalTrainConfig {
        steps: plan.local_steps,
        batch_size: plan.batch_size,
        seed: batch_seed(round_seed, trainer),
        trace_every: plan.trace_every,
    };
    let outcome = local_train(&model, &mut optimizer, shard, &config)?;
    let update = outcome
        .params
        .iter()
        .zip(params)
        .map(|(new, old)| new - old)
        .collect();
    Ok(TrainedUpdate {
        update,
        trace_root: trace_root(&outcome.trace),
        mean_loss: outcome.mean_loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_root_depends_on_order_and_count() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_ne!(trace_root(&[a, b]), trace_root(&[b, a]));
        assert_ne!(trace_root(&[a]), trace_root(&[a, a]));
        assert_ne!(trace_root(&[]), trace_root(&[[0; 32]]));
        assert_eq!(trace_root(&[a, b, a]), trace_root(&[a, b, a]));
    }

    #[test]
    fn salts_differ_by_key_round_and_purpose() {
        let s = salt(&[7; 32], "update", 1, 2);
        assert_ne!(s, salt(&[8; 32], "update", 1, 2));
        assert_ne!(s, salt(&[7; 32], "update", 1, 3));
        assert_ne!(s, salt(&[7; 32], "attestation", 1, 2));
        assert_eq!(s, salt(&[7; 32], "update", 1, 2));
    }

    #[test]
    fn batch_seeds_differ_between_trainers_and_rounds() {
        let one = Address([1; 20]);
        let two = Address([2; 20]);
        assert_ne!(batch_seed(&[0; 32], &one), batch_seed(&[0; 32], &two));
        assert_ne!(batch_seed(&[0; 32], &one), batch_seed(&[1; 32], &one));
    }
}
