//! The referee's cost: one disputed step re-executed from a witness (decode, check against the
//! agreed checkpoint, one training step, the next checkpoint's hashes) for each built-in model on
//! `mnist_5k`, with SGD-momentum and Adam, at a middle step and at the last step (which also
//! carries `M_r` and computes the update), next to the whole round of 20 steps a trainer runs
//! and an auditor re-runs. Prints each witness's size once.
//!
//! `cargo bench -p cairn-round --bench referee`

use std::sync::Arc;

use cairn_ml::data::{default_data_dir, BuiltinDataset};
use cairn_round::encoding::Hash;
use cairn_round::plan::seal_initial_model;
use cairn_round::referee::judge;
use cairn_round::spec::{TaskSpec, Verification};
use cairn_round::training::{shard_of, Assignment, Trajectory};
use cairn_round::{params, Address, DatasetRegistry, TaskPlan};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const STEPS: u32 = 20;

fn registry() -> (DatasetRegistry, Hash) {
    let dir = default_data_dir().expect("data/ with mnist_5k.csv.gz");
    let mut registry = DatasetRegistry::new();
    let hash = registry
        .load_builtin(BuiltinDataset::Mnist5k, &dir)
        .expect("mnist_5k");
    (registry, hash)
}

fn assignment(
    registry: &DatasetRegistry,
    dataset: Hash,
    model: &str,
    optimizer: &str,
) -> Assignment {
    let mut spec = TaskSpec {
        model: model.into(),
        initial_model: [0; 32],
        dataset,
        partition: "iid".into(),
        rounds: 1,
        local_steps: STEPS,
        optimizer: optimizer.into(),
        robust_rule: "median".into(),
        commit_window: 1,
        reveal_window: 1,
        availability_window: 1,
        attest_window: 1,
        min_stake: 1,
        reward_per_round: 1,
        verification: Verification::with_audit_ppm(50_000, 1),
    };
    seal_initial_model(&mut spec, registry).expect("initial model");
    let plan = Arc::new(TaskPlan::from_spec(&spec, registry).expect("plan"));
    let trainers: Vec<Address> = (1..=10u8).map(|i| Address([i; 20])).collect();
    let shard = shard_of(&plan, 0, &trainers, &trainers[0]).expect("shard");
    let start = plan.initial_params(&spec).expect("M_0");
    Assignment::new(plan, Arc::new(shard), &[7; 32], &trainers[0], start.into())
}

fn referee(c: &mut Criterion) {
    let (registry, dataset) = registry();
    let mut group = c.benchmark_group("referee_one_step_mnist_5k");
    group.sample_size(20);
    let models = [
        ("logistic", "logistic:784-10"),
        ("mlp", "mlp:784-64-10"),
        ("cnn", "cnn"),
    ];
    let optimizers = [
        ("sgd", "sgd:lr=0.1,momentum=0.9,batch=32"),
        ("adam", "adam:lr=0.001,batch=64"),
    ];
    for (model_name, model) in models {
        for (optimizer_name, optimizer) in optimizers {
            let assignment = assignment(&registry, dataset, model, optimizer);
            let model_hash = params::hash(&assignment.start);
            // What the referee's one step is weighed against: the trainer's whole round (and
            // an auditor's re-run of it), every step with its trace.
            group.bench_function(
                BenchmarkId::new(format!("{model_name}_{optimizer_name}"), "round"),
                |bench| bench.iter(|| assignment.train().expect("round")),
            );
            for (label, step) in [("middle", STEPS / 2), ("last", STEPS - 1)] {
                let agreed = assignment.checkpoint(step).expect("checkpoint").hash();
                let witness = assignment.witness(step).expect("witness").encode();
                println!(
                    "witness {model_name}/{optimizer_name}/{label}: {} bytes",
                    witness.len()
                );
                group.bench_function(
                    BenchmarkId::new(format!("{model_name}_{optimizer_name}"), label),
                    |bench| {
                        bench.iter(|| {
                            judge(&assignment.run, &model_hash, None, step, &agreed, &witness)
                                .expect("judgement")
                        })
                    },
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, referee);
criterion_main!(benches);
