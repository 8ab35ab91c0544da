//! The economics as a researcher reads them: every node's costs come from the work it actually
//! did (a free rider pays no training, a score copier no scoring), profit is rewards − slashes −
//! costs, a Sybil selling one run under several identities earns less than the one honest node
//! it could have been, and a sweep finds where an attack turns profitable.

use cairn_sim::result::{NodeCosts, NodeWork};
use cairn_sim::runner::run;
use cairn_sim::seeds::{run_seeds, SeedRange};
use cairn_sim::sweep::{run_sweep, Axis, Crossing};
use cairn_sim::{NoProgress, Scenario};

fn digits(rounds: u32, groups: &str) -> Scenario {
    let text = format!(
        "seed = 3\nrounds = {rounds}\ndataset = \"digits\"\nrule = \"nnm:2>trimmed_mean:2\"\n{groups}"
    );
    Scenario::from_toml_str(&text).expect("scenario parses")
}

#[test]
fn costs_price_the_work_each_node_actually_did() {
    let scenario = digits(
        4,
        r#"
[[trainers]]
count = 6
[[trainers]]
count = 1
behaviour = "free_rider"
free_ride = "zero"
[[trainers]]
count = 1
behaviour = "lazy"
lazy = "steps"
fraction = 0.5
[[validators]]
count = 4
[[validators]]
count = 1
behaviour = "copy_scores"
"#,
    );
    let result = run(&scenario, &mut NoProgress).expect("runs");
    let node = |behaviour: &str| {
        result
            .nodes
            .iter()
            .find(|n| n.behaviour == behaviour)
            .unwrap_or_else(|| panic!("no {behaviour} node"))
    };
    let honest_trainer = result
        .nodes
        .iter()
        .find(|n| n.name.starts_with('t') && n.is_honest())
        .unwrap();
    let steps = u64::from(scenario.local_steps);
    // An honest trainer trains every step of every round it committed in.
    assert_eq!(
        honest_trainer.work.steps_trained,
        steps * u64::from(honest_trainer.revealed)
    );
    assert_eq!(node("free_rider:zero").work.steps_trained, 0);
    let lazy = node("lazy:steps:0.5");
    assert!(
        lazy.work.steps_trained > 0 && lazy.work.steps_trained < honest_trainer.work.steps_trained
    );
    // Validators score on the whole test split; the copier never evaluates a sample.
    let honest_validator = result.nodes.iter().find(|n| n.name == "v0").unwrap();
    assert!(honest_validator.work.samples_evaluated > 0);
    assert_eq!(node("copy_scores").work.samples_evaluated, 0);
    assert_eq!(honest_trainer.work.samples_evaluated, 0);
    // Costs are the prices times that work; profit is what is left.
    for n in &result.nodes {
        let expected = NodeCosts::of(
            &n.work,
            n.stake_initial,
            result.rounds.len() as u32,
            scenario.batch_size,
            &scenario.costs,
        );
        assert_eq!(n.costs, expected, "{}", n.name);
        assert_eq!(
            n.profit(),
            n.rewards_total as i128 - n.slashed_total as i128 - n.costs.total() as i128
        );
    }
    assert!(honest_trainer.costs.training > 0 && honest_trainer.costs.stake > 0);
    assert_eq!(node("free_rider:zero").costs.training, 0);
    assert!(honest_validator.costs.scoring > node("copy_scores").costs.scoring);
}

#[test]
fn prices_are_linear_in_the_work_and_round_to_whole_tokens() {
    let work = NodeWork {
        steps_trained: 100,
        samples_evaluated: 3_000,
        steps_audited: 10,
    };
    let prices = cairn_sim::scenario::CostModel {
        train_per_sample: 0.01,
        score_per_sample: 0.001,
        audit_per_sample: 0.02,
        stake_per_round: 0.0001,
    };
    let costs = NodeCosts::of(&work, 40_000, 10, 32, &prices);
    assert_eq!(costs.training, 32); // 100 x 32 x 0.01
    assert_eq!(costs.scoring, 3); // 3000 x 0.001
    assert_eq!(costs.auditing, 6); // 10 x 32 x 0.02 = 6.4
    assert_eq!(costs.stake, 40); // 40000 x 0.0001 x 10
    assert_eq!(costs.total(), 81);
}

#[test]
fn a_sybil_selling_one_run_under_four_identities_earns_less_than_one_honest_node() {
    let scenario = digits(
        6,
        r#"
[[trainers]]
count = 8
[[trainers]]
count = 1
behaviour = "noise_sybil"
identities = 4
stake = 40000
[[validators]]
count = 4
"#,
    );
    let many = run_seeds(&scenario, SeedRange { first: 1, last: 4 }, 2, &|_| {})
        .unwrap_or_else(|(seed, e)| panic!("seed {seed}: {e}"));
    let group = |behaviour: &str| {
        many.groups
            .iter()
            .find(|g| g.role == "trainer" && g.behaviour == behaviour)
            .unwrap_or_else(|| panic!("no {behaviour} group"))
    };
    let honest = group("honest").profit.mean;
    let sybil = group("noise_sybil");
    // The attacker's four identities together against the one node it could have run.
    let together = sybil.profit.mean * sybil.nodes as f64;
    assert!(
        together < honest,
        "the Sybil's identities made {together:.0} together, one honest node {honest:.0}"
    );
}

#[test]
fn a_sweep_reads_each_attacks_frontier_along_its_first_axis() {
    let scenario = digits(
        3,
        r#"
[[trainers]]
count = 6
[[trainers]]
count = 1
behaviour = "free_rider"
free_ride = "zero"
[[validators]]
count = 4
"#,
    );
    let axes: Vec<Axis> = vec!["slash_fraction=0,0.5".parse().unwrap()];
    let sweep = run_sweep(&scenario, axes, SeedRange { first: 1, last: 2 }, 2, &|_| {})
        .expect("sweep runs");
    assert_eq!(sweep.points.len(), 2);
    let csv = sweep.csv();
    assert!(csv.starts_with("slash_fraction,role,behaviour,"), "{csv}");
    // Two points, three groups each (honest trainers, the free rider, honest validators).
    assert_eq!(csv.lines().count(), 1 + 2 * 3, "{csv}");
    let frontier = sweep
        .frontiers
        .iter()
        .find(|f| f.group == "trainer free_rider:zero")
        .expect("a frontier for the free rider");
    // A free rider is paid nothing and pays for its locked stake: never profitable.
    assert_eq!(frontier.crossing, Crossing::NeverProfitable);
    assert!(sweep
        .frontier_csv()
        .contains("trainer free_rider:zero,never_profitable,"));
    let dir = tempfile::tempdir().unwrap();
    let files = cairn_sim::render_sweep(&sweep, dir.path()).expect("plots");
    assert_eq!(files.len(), 2 * 3);
    assert!(files.iter().all(|f| f.exists()));
}
