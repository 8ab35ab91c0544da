//! A small separable task shared by this crate's unit tests (and, with the `fixtures` feature,
//! other crates' tests): 4 features, 2 classes (the class is whether feature 0 exceeds 0.5), 200
//! samples.

use std::sync::Arc;

use cairn_ml::data::Dataset;

use crate::address::Address;
use crate::dataset::DatasetRegistry;
use crate::encoding::Hash;
use crate::plan::{seal_initial_model, TaskPlan};
use crate::spec::{TaskSpec, Verification};
use crate::training::{shard_of, Assignment};

/// The toy dataset: 200 samples of 4 features in 2 classes (the class is whether feature 0
/// exceeds 0.5).
pub fn separable() -> Dataset {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for i in 0..200u32 {
        let x = (i % 20) as f32 / 19.0;
        features.extend([x, 1.0 - x, (i % 7) as f32 / 7.0, 0.5]);
        labels.push(u32::from(x > 0.5));
    }
    Dataset::new(features, labels, 2, (1, 1, 4)).expect("dataset")
}

/// The toy dataset registered on its own, with its hash.
pub fn registry() -> (DatasetRegistry, Hash) {
    let mut registry = DatasetRegistry::new();
    let hash = registry.insert("toy", &separable()).expect("insert");
    (registry, hash)
}

/// A spec for the toy dataset with this model, optimizer, steps and trace interval.
pub fn spec(dataset: Hash, model: &str, optimizer: &str, steps: u32, every: u32) -> TaskSpec {
    TaskSpec {
        model: model.into(),
        initial_model: [0; 32],
        dataset,
        partition: "iid".into(),
        rounds: 1,
        local_steps: steps,
        optimizer: optimizer.into(),
        robust_rule: "mean".into(),
        commit_window: 1,
        reveal_window: 1,
        availability_window: 1,
        attest_window: 1,
        min_stake: 1,
        reward_per_round: 1,
        verification: Verification {
            trace_every: every,
            ..Verification::with_audit_ppm(100_000, 10)
        },
    }
}

/// The plan of a logistic-regression toy task.
pub fn toy_plan(optimizer: &str, steps: u32, every: u32) -> Arc<TaskPlan> {
    plan_for("logistic:4-2", optimizer, steps, every)
}

/// The plan of a toy task with the given model.
pub fn plan_for(model: &str, optimizer: &str, steps: u32, every: u32) -> Arc<TaskPlan> {
    let (registry, hash) = registry();
    let mut spec = spec(hash, model, optimizer, steps, every);
    seal_initial_model(&mut spec, &registry).expect("initial model");
    Arc::new(TaskPlan::from_spec(&spec, &registry).expect("plan"))
}

/// Starting weights for a toy plan (any fixed weights serve as a round's `M_r` in tests).
pub fn initial(plan: &TaskPlan) -> Vec<f32> {
    cairn_ml::model::Model::init(plan.model.clone(), 7)
        .expect("model")
        .into_params()
}

/// The trainers of the toy task: addresses `[1; 20]` to `[4; 20]`.
pub fn trainers() -> Vec<Address> {
    (1..=4u8).map(|i| Address([i; 20])).collect()
}

/// Trainer `[i; 20]`'s assignment (task 0, the toy trainers) in the round seeded `seed`, from `M_0`.
pub fn assignment(plan: &Arc<TaskPlan>, i: u8, seed: Hash) -> Assignment {
    let trainer = Address([i; 20]);
    let shard = shard_of(plan, 0, &trainers(), &trainer).expect("shard");
    Assignment::new(
        plan.clone(),
        Arc::new(shard),
        &seed,
        &trainer,
        initial(plan).into(),
    )
}
