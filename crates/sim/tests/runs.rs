//! Whole-network runs on the deterministic runtime: what `cairn simulate` must show.
//!
//! Every run here is the real node code (simplex consensus, the finality feed, blobs fetched by
//! hash, the round protocol, the ledger) on `mnist_5k`, with a small MLP and short windows so the
//! whole file stays within a few minutes on two cores.

use cairn_sim::runner::run;
use cairn_sim::{write_report, NoProgress, RunResult, Scenario};

/// A small, fast network: 10 trainers, 4 validators, 10 ms links.
fn base(rounds: u32, rule: &str, trainers: &str) -> Scenario {
    let text = format!(
        r#"
seed = 3
rounds = {rounds}
local_steps = 20
model = "mlp:784-32-10"
optimizer = "sgd:lr=0.1,momentum=0.9"
rule = "{rule}"
[windows]
commit = 4
reveal = 4
attest = 4
{trainers}
[[validators]]
count = 4
behaviour = "honest"
[network]
latency_ms = 10
jitter_ms = 2
"#
    );
    Scenario::from_toml_str(&text).expect("scenario parses")
}

const HONEST_10: &str = r#"
[[trainers]]
count = 10
behaviour = "honest"
"#;

fn with_attack(attack: &str) -> String {
    format!(
        r#"
[[trainers]]
count = 8
behaviour = "honest"
[[trainers]]
count = 2
behaviour = "attack"
attack = "{attack}"
"#
    )
}

const ROBUST: &str = "nnm:2>trimmed_mean:2";

fn simulate(scenario: &Scenario) -> RunResult {
    let result = run(scenario, &mut NoProgress).expect("the scenario runs");
    assert_eq!(
        result.finalized_rounds(),
        scenario.rounds as usize,
        "every round finalizes"
    );
    result
}

fn honest_min_reward(result: &RunResult) -> u128 {
    result
        .nodes
        .iter()
        .filter(|n| n.name.starts_with('t') && n.is_honest())
        .map(|n| n.rewards_total)
        .min()
        .expect("honest trainers")
}

#[test]
fn results_json_is_byte_identical_run_to_run_and_on_one_or_two_threads() {
    let one = Scenario {
        seed: 11,
        rounds: 3,
        threads: 1,
        ..Scenario::default()
    };
    let mut two = one.clone();
    two.threads = 2;
    let dirs = [
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    ];
    for (scenario, dir) in [&one, &one, &two].into_iter().zip(&dirs) {
        let result = simulate(scenario);
        write_report(&result, dir.path()).expect("report");
    }
    let json = |i: usize| std::fs::read(dirs[i].path().join("results.json")).unwrap();
    assert_eq!(json(0), json(1), "same seed, same bytes");
    assert_eq!(json(0), json(2), "one and two threads, same bytes");
}

#[test]
fn without_attackers_iid_training_lands_within_three_points_of_centralized_training() {
    let mut scenario = base(20, ROBUST, HONEST_10);
    scenario.model = None;
    let result = simulate(&scenario);
    let centralized = result.centralized_accuracy.expect("baseline");
    eprintln!(
        "federated {:.4}, centralized on the same sample budget {centralized:.4}",
        result.final_accuracy
    );
    // 92.4% against 94.9% at seed 3: the last rounds wander by about a point around 93%.
    assert!(
        result.final_accuracy >= centralized - 0.03,
        "federated {} vs centralized {centralized}",
        result.final_accuracy
    );
}

#[test]
fn label_sorted_shards_still_converge() {
    let mut scenario = base(12, ROBUST, HONEST_10);
    scenario.partition = "shards:2".into();
    let result = simulate(&scenario);
    let curve: Vec<String> = result
        .rounds
        .iter()
        .map(|r| format!("{:.3}", r.accuracy))
        .collect();
    eprintln!("label-sorted shards (2 labels per trainer): accuracy per round {curve:?}");
    // With two labels per trainer the model swings by about five points from round to round
    // (each round's batches follow the chain's seed), so the test reads the mean of the second
    // half of the run rather than its last round: 0.46 to 0.49 across node changes that only
    // reshuffle the simulated schedule, from about 0.2 after round 0.
    let first = result.rounds.first().unwrap().accuracy;
    let late = &result.rounds[result.rounds.len() / 2..];
    let settled = late.iter().map(|r| r.accuracy).sum::<f64>() / late.len() as f64;
    assert!(
        settled > 0.45 && settled > first + 0.1,
        "mean accuracy {settled} over the second half, after {first}"
    );
}

/// Every attack `cairn-robust` crafts, as the scenario's `attack` key spells it. The two the
/// plain mean must fail against are given strengths that break it.
const ATTACKS: &[&str] = &[
    "sign_flip:10",
    "gaussian:10",
    "nan",
    "ipm:0.5",
    "alie:100",
    "alie",
    "optimized_ipm",
    "optimized_alie",
    "mimic",
    "min_max:std",
    "min_sum:std",
    "free_rider",
    "stale",
    "sybil:ipm:0.5",
];

#[test]
fn twenty_percent_attackers_of_every_kind_stay_within_five_points_under_a_robust_rule() {
    let clean = simulate(&base(6, ROBUST, HONEST_10)).final_accuracy;
    for attack in ATTACKS {
        let result = simulate(&base(6, ROBUST, &with_attack(attack)));
        eprintln!(
            "{attack:>16}: {:.4} (no attack {clean:.4})",
            result.final_accuracy
        );
        assert!(
            result.final_accuracy >= clean - 0.05,
            "{attack}: {} vs {clean}",
            result.final_accuracy
        );
        // An attacker whose revealed update was not its own work is caught by the audits and
        // earns less than any honest trainer. Only one that revealed its own honest update (as
        // the member whose update `mimic` copies does) passes its audits and earns like one.
        let honest = honest_min_reward(&result);
        for node in result
            .nodes
            .iter()
            .filter(|n| n.behaviour.starts_with("attack"))
        {
            let own_work = node.audited > 0 && node.disputes_lost == 0;
            assert!(
                node.rewards_total < honest || own_work,
                "{attack}: {} earned {} (honest {honest}) and was never caught",
                node.name,
                node.rewards_total
            );
        }
    }
}

/// Audits expel colluders whose vectors coincide after the round they strike, but the plain
/// mean has already taken their step: a model a sign flip pushed back learns again, one ALIE at
/// z = 100 blew up does not. Verification is no substitute for a robust rule.
#[test]
fn the_plain_mean_breaks_under_sign_flip_and_alie_and_audits_expel_the_attackers() {
    let clean = simulate(&base(6, "mean", HONEST_10));
    for attack in ["sign_flip:10", "alie:100"] {
        let result = simulate(&base(6, "mean", &with_attack(attack)));
        let accuracy: Vec<f64> = result.rounds.iter().map(|r| r.accuracy).collect();
        eprintln!("mean under {attack}: {accuracy:.3?}");
        // The colluders' identical vectors break the mean in the round they strike...
        assert!(
            accuracy[0] < 0.5 && accuracy[0] < clean.rounds[0].accuracy - 0.3,
            "{attack} did not break the mean: {accuracy:?}"
        );
        // ...are audited because they coincide, lose their disputes, and are expelled: the
        // mean learns again from the honest updates alone.
        for node in result
            .nodes
            .iter()
            .filter(|n| n.behaviour.starts_with("attack"))
        {
            assert_eq!(
                node.disputes_lost, 1,
                "{attack}: {} was not caught",
                node.name
            );
            assert_eq!(
                node.stake_final, 0,
                "{attack}: {} kept its stake",
                node.name
            );
        }
        if attack.starts_with("sign_flip") {
            assert!(
                result.final_accuracy > accuracy[0] + 0.3,
                "{attack}: the mean did not learn again: {accuracy:?}"
            );
        } else {
            assert!(
                result.final_accuracy < 0.5,
                "{attack}: the mean recovered: {accuracy:?}"
            );
        }
    }
}

#[test]
fn attackers_free_riders_and_sybils_earn_less_than_honest_trainers_of_equal_total_stake() {
    let trainers = r#"
[[trainers]]
count = 6
behaviour = "honest"
[[trainers]]
count = 1
behaviour = "free_rider"
free_ride = "zero"
[[trainers]]
count = 1
behaviour = "free_rider"
free_ride = "stale"
[[trainers]]
count = 1
behaviour = "label_flip"
[[trainers]]
count = 1
behaviour = "sybil"
attack = "ipm:0.5"
identities = 3
"#;
    let result = simulate(&base(5, ROBUST, trainers));
    let honest = honest_min_reward(&result);
    for node in result.nodes.iter().filter(|n| n.name.starts_with('t')) {
        eprintln!(
            "{} {} stake {} reward {}",
            node.name, node.behaviour, node.stake_initial, node.rewards_total
        );
    }
    // The Sybil's identities share one stake: compare their sum with one honest trainer.
    let sybil: u128 = result
        .nodes
        .iter()
        .filter(|n| n.behaviour.starts_with("sybil"))
        .map(|n| n.rewards_total)
        .sum();
    assert!(
        sybil < honest,
        "Sybil identities earned {sybil} together, honest {honest}"
    );
    for node in result
        .nodes
        .iter()
        .filter(|n| n.name.starts_with('t') && !n.is_honest() && !n.behaviour.starts_with("sybil"))
    {
        assert!(
            node.rewards_total < honest,
            "{} ({}) earned {} vs honest {honest}",
            node.name,
            node.behaviour,
            node.rewards_total
        );
    }
}

/// Every update audited and ten copiers of one victim: twenty challenges in the first round
/// among four validators, more than the four bonds each keeps in reserve. The validators bond
/// more from their balance; every copier loses, no honest node is slashed or misses a reward,
/// and no validator's transactions wedge (a refused one is dropped at once, not after 16 blocks).
#[test]
fn validators_bond_more_when_their_challenges_outrun_the_reserve_and_honest_nodes_never_lose() {
    let scenario = Scenario::from_toml_str(
        r#"
seed = 5
rounds = 2
local_steps = 10
dataset = "digits"
[windows]
commit = 3
reveal = 3
attest = 3
[verification]
audit_rate = 1.0
[[trainers]]
count = 4
[[trainers]]
count = 10
behaviour = "copier"
victim = "t0"
[[validators]]
count = 4
[network]
latency_ms = 10
jitter_ms = 2
"#,
    )
    .expect("scenario parses");
    let result = simulate(&scenario);
    for node in &result.nodes {
        if node.is_honest() {
            assert_eq!(node.slashed_total, 0, "{} slashed", node.name);
            assert_eq!(node.disputes_lost, 0, "{} lost a dispute", node.name);
            assert!(node.rewards_total > 0, "{} earned nothing", node.name);
        } else {
            assert_eq!(node.disputes_lost, 1, "{} was not caught", node.name);
            assert_eq!(node.stake_final, 0, "{} kept stake", node.name);
        }
    }
    let validators: Vec<_> = result
        .nodes
        .iter()
        .filter(|n| n.name.starts_with('v'))
        .collect();
    let won: u32 = validators.iter().map(|v| v.disputes_won).sum();
    assert_eq!(u64::from(won), result.verification.challenger_won);
    assert!(
        validators.iter().any(|v| v.stake_final > v.stake_initial),
        "some validator bonded beyond its reserve: {validators:?}"
    );
}
