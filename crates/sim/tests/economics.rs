//! The economics as a researcher reads them: every node's costs come from the work it actually
//! did (a free rider pays no training, a score copier no scoring), profit is rewards − slashes −
//! costs, a Sybil selling one run under several identities earns less than the one honest node
//! it could have been, a withholder and shirking validators lose money, and a sweep finds where
//! an attack turns profitable.

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
fn a_withholder_earns_nothing_and_pays_for_every_round_it_repeats_while_rounds_finalize() {
    let scenario = digits(
        4,
        r#"
[[trainers]]
count = 6
[[trainers]]
count = 1
behaviour = "withholder"
[[validators]]
count = 4
"#,
    );
    // The run checks the invariants itself (no fork, honest hashes, supply, no honest slash).
    let result = run(&scenario, &mut NoProgress).expect("runs");
    assert!(
        result.rounds.iter().all(|r| r.finalized),
        "every round finalizes"
    );
    let withholder = result
        .nodes
        .iter()
        .find(|n| n.behaviour == "withholder")
        .unwrap();
    assert_eq!(withholder.revealed, 4, "it revealed every round");
    assert_eq!(withholder.rewards_total, 0);
    // Unserved in all 4 rounds: slashed in rounds 1, 2 and 3, a tenth of its bond each time.
    let bond = withholder.stake_initial;
    let after = (0..3).fold(bond, |b, _| b - (b * 100_000).div_ceil(1_000_000));
    assert_eq!(withholder.slashed_total, bond - after);
    assert!(withholder.profit() < 0);
    for honest in result.nodes.iter().filter(|n| n.is_honest()) {
        assert_eq!(honest.slashed_total, 0, "{}", honest.name);
        assert!(honest.profit() > 0, "{}", honest.name);
    }
}

#[test]
fn validators_that_attest_a_wrong_hash_copy_scores_or_skip_audits_lose_money() {
    let scenario = digits(
        4,
        r#"
[verification]
audit_rate = 0.5
[[trainers]]
count = 6
[[validators]]
count = 7
[[validators]]
count = 1
behaviour = "wrong_model_hash"
[[validators]]
count = 1
behaviour = "copy_scores"
[[validators]]
count = 1
behaviour = "lazy_auditor"
"#,
    );
    let result = run(&scenario, &mut NoProgress).expect("runs");
    assert!(
        result.rounds.iter().all(|r| r.finalized),
        "every round finalizes"
    );
    for honest in result.nodes.iter().filter(|n| n.is_honest()) {
        assert_eq!(honest.slashed_total, 0, "{}", honest.name);
        assert!(honest.profit() > 0, "{}", honest.name);
    }
    let least_honest = result
        .nodes
        .iter()
        .filter(|n| n.is_honest() && n.name.starts_with('v'))
        .map(|n| n.profit())
        .min()
        .unwrap();
    let node = |behaviour: &str| {
        result
            .nodes
            .iter()
            .find(|n| n.behaviour == behaviour)
            .unwrap_or_else(|| panic!("no {behaviour} node"))
    };
    // Lying about the model or the scores is slashed every round: a loss outright.
    for behaviour in ["wrong_model_hash", "copy_scores"] {
        assert!(
            node(behaviour).slashed_total > 0,
            "{behaviour} was never slashed"
        );
        assert!(
            node(behaviour).profit() < 0,
            "{behaviour} made {}",
            node(behaviour).profit()
        );
    }
    // Skipping audits is slashed in the rounds it was drawn: it does the rest of the work, so it
    // keeps the other rounds' pay, but skipping costs it more than the audits it saved.
    let lazy = node("lazy_auditor");
    assert!(lazy.slashed_total > 0, "the lazy auditor was never slashed");
    assert!(
        lazy.profit() < least_honest,
        "lazy auditor {} against honest {least_honest}",
        lazy.profit()
    );
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
