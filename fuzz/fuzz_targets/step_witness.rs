//! Fuzzes the dispute witness decoder (a witness arrives in transactions from a disputing
//! trainer): arbitrary bytes must decode, for the step the first byte picks (and, by its top
//! bit, a task with or without worker momentum), to a typed error or to a witness that
//! re-encodes to exactly the same bytes.
#![no_main]

use std::sync::OnceLock;

use cairn_ml::data::Dataset;
use cairn_round::spec::{TaskSpec, Verification};
use cairn_round::{DatasetRegistry, TaskPlan, Witness};
use libfuzzer_sys::fuzz_target;

/// A logistic regression on 4 features with Adam (both moment buffers), 6 local steps; with
/// `momentum`, worker momentum 0.5 (a carried section at the last step).
fn plan(momentum: bool) -> &'static TaskPlan {
    static PLAIN: OnceLock<TaskPlan> = OnceLock::new();
    static CARRYING: OnceLock<TaskPlan> = OnceLock::new();
    let (cell, rule) = if momentum {
        (&CARRYING, "median+wm:0.5")
    } else {
        (&PLAIN, "median")
    };
    cell.get_or_init(|| {
        let features = (0..40 * 4).map(|i| (i % 7) as f32 / 7.0).collect();
        let labels = (0..40).map(|i| i % 2).collect();
        let data = Dataset::new(features, labels, 2, (1, 1, 4)).expect("dataset");
        let mut registry = DatasetRegistry::new();
        let dataset = registry.insert("fuzz", &data).expect("register");
        let spec = TaskSpec {
            model: "logistic:4-2".into(),
            initial_model: [0; 32],
            dataset,
            partition: "iid".into(),
            rounds: 1,
            local_steps: 6,
            optimizer: "adam:lr=0.01,batch=4".into(),
            robust_rule: rule.into(),
            commit_window: 1,
            reveal_window: 1,
            availability_window: 1,
            attest_window: 1,
            min_stake: 1,
            reward_per_round: 1,
            verification: Verification::with_audit_ppm(0, 1),
        };
        TaskPlan::from_spec(&spec, &registry).expect("plan")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let step = u32::from(first % 6);
    if let Ok(witness) = Witness::decode(rest, plan(first >= 128), step) {
        assert_eq!(witness.step, step);
        assert_eq!(witness.encode(), rest);
    }
});
