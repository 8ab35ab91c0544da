//! Lost messages cost a retry, not a round: on the partition example's bad network (slow,
//! jittery links, a 3/2 split of the validators, a validator crash and restart, a trainer gone
//! for good), with 5% and with 10% of messages lost, every round finalizes once the partition
//! heals, and no honest node that stayed up is slashed. (A node that crashes between a commit
//! and its reveal loses the slash for a hidden commitment: the ledger cannot tell a crash from a
//! withheld reveal, and a free withheld reveal would be an option to grind seeds with.)

use std::path::PathBuf;

use cairn_sim::runner::run;
use cairn_sim::{NoProgress, Scenario};

fn partition_example() -> Scenario {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/simulate-partition.toml");
    Scenario::from_file(&path).expect("the example parses")
}

fn assert_live(scenario: &Scenario) {
    let result = run(scenario, &mut NoProgress).expect("the scenario runs");
    let missed: Vec<u32> = result
        .rounds
        .iter()
        .filter(|r| !r.finalized)
        .map(|r| r.round)
        .collect();
    assert!(
        missed.is_empty(),
        "seed {} at success rate {}: rounds {missed:?} did not finalize",
        scenario.seed,
        scenario.network.success_rate
    );
    let crashed: Vec<&str> = scenario
        .network
        .crashes
        .iter()
        .map(|c| c.node.as_str())
        .collect();
    for node in &result.nodes {
        if node.behaviour == "honest" && !crashed.contains(&node.name.as_str()) {
            assert_eq!(
                node.slashed_total, 0,
                "seed {}: honest {}, never down, was slashed",
                scenario.seed, node.name
            );
        }
    }
}

#[test]
fn every_round_finalizes_on_the_partition_example_with_five_percent_loss() {
    let scenario = partition_example();
    assert_eq!(scenario.network.success_rate, 0.95);
    assert_live(&scenario);
}

#[test]
fn every_round_finalizes_with_ten_percent_loss_at_several_seeds() {
    for seed in [1, 9, 11] {
        let mut scenario = partition_example();
        scenario.seed = seed;
        scenario.network.success_rate = 0.9;
        assert_live(&scenario);
    }
}
