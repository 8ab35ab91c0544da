//! Random faults drawn per seed (`examples/simulate-faults.toml`): crashes and restarts,
//! partitions of the validators, up to 10% of messages lost, honest validators turned
//! Byzantine, always within what a BFT network survives. Each run checks the invariants itself
//! (no fork, no minted or lost tokens, every finalized model the honest validators' own, no
//! steady honest node slashed, rounds finalizing again within 3 rounds of the last heal); CI
//! runs a few seeds here, `bench/invariants.py` a thousand.

use std::path::PathBuf;

use cairn_sim::runner::run;
use cairn_sim::scenario::ValidatorBehaviour;
use cairn_sim::seeds::{run_seeds, SeedRange};
use cairn_sim::{NoProgress, Scenario};

fn faults_example() -> Scenario {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/simulate-faults.toml");
    Scenario::from_file(&path).expect("the example parses")
}

#[test]
fn faults_are_a_function_of_the_seed_and_stay_within_what_bft_survives() {
    let scenario = faults_example();
    let mut kinds = [0usize; 4];
    for seed in 1..=200 {
        let mut at = scenario.clone();
        at.seed = seed;
        let drawn = at.with_drawn_faults();
        assert_eq!(drawn, at.with_drawn_faults(), "seed {seed}");
        drawn
            .validate()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(drawn.faults.is_none());
        let validators = drawn.validator_nodes();
        let f = (validators.len() - 1) / 3;
        let byzantine = validators
            .iter()
            .filter(|v| v.behaviour != ValidatorBehaviour::Honest)
            .count();
        let validator_crashes: Vec<_> = drawn
            .network
            .crashes
            .iter()
            .filter(|c| c.node.starts_with('v'))
            .collect();
        assert!(byzantine + validator_crashes.len() <= f, "seed {seed}");
        // Every validator comes back; every fault heals within the horizon.
        assert!(validator_crashes.iter().all(|c| c.restart_ms.is_some()));
        assert!(drawn.faults_heal_ms() <= 40_000, "seed {seed}");
        assert!(drawn.network.success_rate >= 0.9 && drawn.network.success_rate <= 1.0);
        for partition in &drawn.network.partitions {
            // No side of a partition holds a quorum of validators.
            for group in &partition.groups {
                let side = group.iter().filter(|n| n.starts_with('v')).count();
                assert!(3 * side < 2 * validators.len(), "seed {seed}: {group:?}");
            }
        }
        kinds[0] += usize::from(byzantine > 0);
        kinds[1] += usize::from(!validator_crashes.is_empty());
        kinds[2] += usize::from(!drawn.network.partitions.is_empty());
        kinds[3] += usize::from(drawn.network.crashes.len() > validator_crashes.len());
    }
    // Over 200 seeds every kind of fault is drawn often.
    assert!(kinds.iter().all(|k| *k > 40), "{kinds:?}");
}

#[test]
fn a_few_seeds_of_random_faults_keep_every_invariant() {
    // Seeds 26, 28, 32 and 42 once broke invariants: a validator lagging behind lost blocks
    // missed its reveal, a creator waited for a trainer that crashed before joining, a trainer
    // catching up after a heal lost a dispute by silence, and followers stalled on a block
    // finalized only as an ancestor. Each run fails with its seed if an invariant breaks.
    let scenario = faults_example();
    for seed in [26, 28, 32, 42] {
        let mut at = scenario.clone();
        at.seed = seed;
        let result = run(&at, &mut NoProgress).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            result.finalized_rounds() >= 8,
            "seed {seed}: {} of 10 rounds finalized",
            result.finalized_rounds()
        );
        // The report holds the faults that were drawn, written out.
        assert!(result.scenario.faults.is_none());
    }
    let many = run_seeds(&scenario, SeedRange { first: 1, last: 4 }, 2, &|_| {})
        .unwrap_or_else(|(seed, e)| panic!("seed {seed}: {e}"));
    assert_eq!(many.seeds.len(), 4);
}
