//! A task's spec strings parsed into what `cairn-ml` and `cairn-robust` run: the model, the
//! optimizer and batch size, the partition of the training data, and the robust rule with its
//! pre-aggregation chain. The syntax is in `docs/protocol.md`.

use std::sync::Arc;

use cairn_ml::data::Partition;
use cairn_ml::model::{Model, ModelSpec};
use cairn_ml::optim::OptimizerSpec;
use cairn_robust::{PreAggregation, Rule};

use cairn_ml::optim::Optimizer;

use crate::dataset::{DatasetRegistry, RegisteredDataset};
use crate::encoding::{to_hex, Hash};
use crate::spec::TaskSpec;
use crate::syntax::{parse_model, parse_optimizer, parse_partition, parse_rule};
use crate::trace::Checkpoint;
use crate::trace::{leaf_count, MAX_TRACE_LEAVES};
use crate::witness;
use crate::{optimizer, params};

/// Samples per local step when the optimizer string names no `batch`.
pub const DEFAULT_BATCH_SIZE: usize = 32;
/// Most local steps a task may ask for (bounds a trainer's work per round).
pub const MAX_LOCAL_STEPS: u32 = 100_000;

/// Why a spec cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The dataset hash is not in this node's registry.
    #[error("unknown dataset {0}; register it (e.g. load data/mnist_5k.csv.gz) before joining")]
    UnknownDataset(String),
    /// The model string does not parse or does not fit the dataset.
    #[error("invalid model {text:?}: {reason} (expected logistic:IN-OUT, mlp:IN-H1-...-OUT or cnn[:DROPOUT])")]
    Model {
        /// The string.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// The optimizer string does not parse.
    #[error("invalid optimizer {text:?}: {reason} (expected sgd:lr=X[,momentum=M][,weight_decay=W][,batch=B] or adam:lr=X[,beta1=..][,beta2=..][,eps=..][,weight_decay=..][,batch=B])")]
    Optimizer {
        /// The string.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// The partition string does not parse.
    #[error("invalid partition {text:?}: {reason} (expected iid, dirichlet:ALPHA[:MIN], shards:K, quantity_dirichlet:ALPHA[:MIN] or quantity_power_law:EXP[:MIN])")]
    Partition {
        /// The string.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// The robust rule or its pre-aggregation chain does not parse.
    #[error("invalid robust rule {text:?}: {source} (expected [STEP,STEP,...>]RULE, e.g. nnm:2>trimmed_mean:2)")]
    Rule {
        /// The string.
        text: String,
        /// What `cairn-robust` said.
        source: cairn_robust::RobustError,
    },
    /// The model is too large for a dispute: the witness of one step (weights, optimizer state
    /// and, at the last step, the input model) would exceed what the ledger's referee accepts.
    #[error(
        "the model has {params} parameters; with this optimizer one step's dispute witness would \
         be {bytes} bytes, over the {max_bytes}-byte limit (use a smaller model or plain SGD)"
    )]
    ModelTooLarge {
        /// Parameters of the model.
        params: usize,
        /// Bytes of the largest witness.
        bytes: u64,
        /// The witness limit in bytes.
        max_bytes: u64,
    },
    /// The trace setting cannot be used.
    #[error("invalid trace_every {trace_every} for {steps} local steps: {reason}")]
    Trace {
        /// The setting.
        trace_every: u32,
        /// Local steps of the task.
        steps: u32,
        /// What is wrong.
        reason: String,
    },
    /// Local steps are out of range.
    #[error("local_steps is {0}; it must be between 1 and {MAX_LOCAL_STEPS}")]
    LocalSteps(u32),
}

/// Everything a node needs to train or validate a task, parsed from its [`TaskSpec`].
#[derive(Clone, Debug)]
pub struct TaskPlan {
    /// The model architecture.
    pub model: ModelSpec,
    /// The local optimizer (fresh at the start of every round).
    pub optimizer: OptimizerSpec,
    /// Samples per local step.
    pub batch_size: usize,
    /// How the train split is divided among trainers.
    pub partition: Partition,
    /// The robust aggregation rule.
    pub rule: Rule,
    /// Pre-aggregation steps, applied in order before the rule.
    pub pre: Vec<PreAggregation>,
    /// Server heavy-ball momentum `β` (the rule's `+sm:β`; 0: none), see
    /// [`crate::aggregation::server_step`].
    pub server_momentum: f32,
    /// The most updates the validators' held-out guard may leave out of the rule (the rule's
    /// `+screen:K`; 0: no guard), see [`crate::aggregation::screen`].
    pub screen: usize,
    /// Worker momentum `β` across rounds (the rule's `+wm:β`; 0: none): what a trainer sends
    /// and its trace commits, see [`crate::training::LocalRun::checkpoint`].
    pub worker_momentum: f32,
    /// Local steps per round (`T`).
    pub local_steps: u32,
    /// A trace checkpoint every this many steps (`k`); step 0 and step `T` always are.
    pub trace_every: u32,
    /// The dataset.
    pub dataset: Arc<RegisteredDataset>,
}

impl TaskPlan {
    /// Parses `spec` against the datasets in `registry`.
    pub fn from_spec(spec: &TaskSpec, registry: &DatasetRegistry) -> Result<TaskPlan, PlanError> {
        let dataset = registry
            .get(&spec.dataset)
            .ok_or_else(|| PlanError::UnknownDataset(to_hex(&spec.dataset)))?;
        if spec.local_steps == 0 || spec.local_steps > MAX_LOCAL_STEPS {
            return Err(PlanError::LocalSteps(spec.local_steps));
        }
        let model = parse_model(&spec.model, &dataset)?;
        let (optimizer, batch_size) = parse_optimizer(&spec.optimizer)?;
        let (pre, rule, remedies) = parse_rule(&spec.robust_rule)?;
        let witness_bytes = witness::max_len(&model, &optimizer, remedies.worker_momentum != 0.0);
        if witness_bytes > witness::MAX_WITNESS_BYTES {
            return Err(PlanError::ModelTooLarge {
                params: model.param_count(),
                bytes: witness_bytes,
                max_bytes: witness::MAX_WITNESS_BYTES,
            });
        }
        let partition = parse_partition(&spec.partition)?;
        let trace_every = spec.verification.trace_every;
        let trace_error = |reason: String| PlanError::Trace {
            trace_every,
            steps: spec.local_steps,
            reason,
        };
        if trace_every == 0 {
            return Err(trace_error("it must be at least 1".into()));
        }
        let leaves = leaf_count(spec.local_steps, trace_every);
        if leaves > MAX_TRACE_LEAVES {
            return Err(trace_error(format!(
                "the trace would have {leaves} checkpoints, over the limit of {MAX_TRACE_LEAVES}; \
                 use trace_every >= {}",
                spec.local_steps.div_ceil(MAX_TRACE_LEAVES as u32 - 1)
            )));
        }
        Ok(TaskPlan {
            model,
            optimizer,
            batch_size,
            partition,
            rule,
            pre,
            server_momentum: remedies.server_momentum,
            screen: remedies.screen,
            worker_momentum: remedies.worker_momentum,
            local_steps: spec.local_steps,
            trace_every,
            dataset,
        })
    }

    /// Length of every parameter vector of this task.
    pub fn param_count(&self) -> usize {
        self.model.param_count()
    }

    /// The initial model `M_0`'s parameters: [`Model::init`] seeded by [`initial_seed`].
    pub fn initial_params(&self, spec: &TaskSpec) -> Result<Vec<f32>, PlanError> {
        Model::init(self.model.clone(), initial_seed(spec))
            .map(Model::into_params)
            .map_err(|error| PlanError::Model {
                text: spec.model.clone(),
                reason: error.to_string(),
            })
    }

    /// The checkpoint before the first step of a round whose input model is `model_hash`: the
    /// weights and a fresh optimizer. Both sides of a dispute start from it; the ledger
    /// computes it itself.
    pub fn start_checkpoint(&self, model_hash: Hash) -> Result<Checkpoint, PlanError> {
        let fresh = Optimizer::new(&self.optimizer, self.param_count()).map_err(|error| {
            PlanError::Optimizer {
                text: format!("{:?}", self.optimizer),
                reason: error.to_string(),
            }
        })?;
        Ok(Checkpoint::start(model_hash, optimizer::hash(&fresh)))
    }

    /// The initial model blob (what the creator stores and names in `initial_model`).
    pub fn initial_blob(&self, spec: &TaskSpec) -> Result<Vec<u8>, PlanError> {
        Ok(params::encode(&self.initial_params(spec)?))
    }
}

/// Seed of the initial weights: the first 8 bytes (little-endian) of
/// `blake3("cairn/initial-model/v1" || len(model) || model || dataset hash)`. It covers every
/// spec field that shapes `M_0` and none that depends on it, so anyone recomputes `M_0`.
pub fn initial_seed(spec: &TaskSpec) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cairn/initial-model/v1");
    hasher.update(&(spec.model.len() as u64).to_be_bytes());
    hasher.update(spec.model.as_bytes());
    hasher.update(&spec.dataset);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    u64::from_le_bytes(bytes)
}

/// Fills `spec.initial_model` with the hash of the derived `M_0` and returns its blob.
pub fn seal_initial_model(
    spec: &mut TaskSpec,
    registry: &DatasetRegistry,
) -> Result<Vec<u8>, PlanError> {
    let plan = TaskPlan::from_spec(spec, registry)?;
    let blob = plan.initial_blob(spec)?;
    spec.initial_model = params::blob_hash(&blob);
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    /// A toy task with `model`: Adam, 40 steps, a leaf every 3.
    fn toy_spec(dataset: Hash, model: &str) -> TaskSpec {
        fixtures::spec(dataset, model, "adam:lr=0.01", 40, 3)
    }

    #[test]
    fn model_syntax_must_fit_the_dataset() {
        let (registry, hash) = fixtures::registry();
        let plan = TaskPlan::from_spec(&toy_spec(hash, "mlp:4-8-2"), &registry).unwrap();
        assert_eq!(
            plan.model,
            ModelSpec::Mlp {
                inputs: 4,
                hidden: vec![8],
                classes: 2
            }
        );
        assert_eq!((plan.batch_size, plan.trace_every), (DEFAULT_BATCH_SIZE, 3));
        assert!(TaskPlan::from_spec(&toy_spec(hash, "logistic:4-2"), &registry).is_ok());
        // The toy samples are 1x4 images; the CNN needs at least 4x4.
        for bad in [
            "mlp:5-8-2",
            "mlp:4-2",
            "logistic:4-x",
            "transformer",
            "cnn:2.0",
        ] {
            let error = TaskPlan::from_spec(&toy_spec(hash, bad), &registry).unwrap_err();
            assert!(matches!(error, PlanError::Model { .. }), "{bad}: {error}");
        }
        let unknown = TaskPlan::from_spec(&toy_spec([5; 32], "mlp:4-8-2"), &registry).unwrap_err();
        assert!(matches!(unknown, PlanError::UnknownDataset(_)));
    }

    #[test]
    fn trace_settings_and_witness_size_are_bounded() {
        let (registry, hash) = fixtures::registry();
        let mut spec = toy_spec(hash, "mlp:4-8-2");
        spec.verification.trace_every = 0;
        assert!(matches!(
            TaskPlan::from_spec(&spec, &registry),
            Err(PlanError::Trace { .. })
        ));
        spec.local_steps = MAX_LOCAL_STEPS;
        spec.verification.trace_every = 1;
        let error = TaskPlan::from_spec(&spec, &registry).unwrap_err();
        assert!(error.to_string().contains("trace_every >= 25"), "{error}");
        spec.verification.trace_every = 25;
        assert!(TaskPlan::from_spec(&spec, &registry).is_ok());
        // 600 000 parameters with Adam: weights, two moments and M_r are 9.6 MB, over 8 MiB.
        let mut large = toy_spec(hash, "mlp:4-1000-596-2");
        assert!(matches!(
            TaskPlan::from_spec(&large, &registry),
            Err(PlanError::ModelTooLarge { .. })
        ));
        large.optimizer = "sgd:lr=0.1".into();
        assert!(TaskPlan::from_spec(&large, &registry).is_ok());
    }

    #[test]
    fn the_initial_model_is_recomputable_from_the_spec() {
        let (registry, hash) = fixtures::registry();
        let mut first = toy_spec(hash, "mlp:4-8-2");
        let mut second = first.clone();
        let blob = seal_initial_model(&mut first, &registry).unwrap();
        assert_eq!(seal_initial_model(&mut second, &registry).unwrap(), blob);
        assert_eq!(first.initial_model, params::blob_hash(&blob));
        let mut other = toy_spec(hash, "mlp:4-9-2");
        seal_initial_model(&mut other, &registry).unwrap();
        assert_ne!(other.initial_model, first.initial_model);
    }
}
