//! The many-seed runner: every seed runs, results come back in seed order whatever the number
//! of workers, each seed's summary equals a single run at that seed, and an attack that is
//! caught every time shows an interval wholly below zero.

use cairn_sim::runner::run;
use cairn_sim::seeds::{run_seeds, summarize, SeedRange};
use cairn_sim::{NoProgress, Scenario};

/// A small network on `digits`: 4 honest trainers, 2 copying attackers (always audited), 4
/// validators, 2 rounds.
fn small() -> Scenario {
    Scenario::from_toml_str(
        r#"
dataset = "digits"
rounds = 2
local_steps = 5
model = "logistic:64-10"
rule = "median"
[windows]
commit = 3
reveal = 3
attest = 3
[[trainers]]
count = 4
[[trainers]]
count = 2
behaviour = "attack"
attack = "alie"
[[validators]]
count = 4
[network]
latency_ms = 10
jitter_ms = 2
"#,
    )
    .expect("scenario parses")
}

#[test]
fn many_seeds_give_the_same_summary_on_one_or_two_workers_and_match_single_runs() {
    let scenario = small();
    let range: SeedRange = "3..5".parse().unwrap();
    let counted = std::sync::atomic::AtomicUsize::new(0);
    let count = |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let one = run_seeds(&scenario, range, 1, &count).expect("runs");
    let two = run_seeds(&scenario, range, 2, &|_| {}).expect("runs");
    assert_eq!(counted.into_inner(), 3);
    assert_eq!(one, two);
    assert_eq!(one.groups_csv(), two.groups_csv());
    let seeds: Vec<u64> = one.seeds.iter().map(|s| s.seed).collect();
    assert_eq!(seeds, [3, 4, 5]);

    let mut single = scenario.clone();
    single.seed = 4;
    let result = run(&single, &mut NoProgress).expect("runs");
    assert_eq!(one.seeds[1], summarize(4, &result));

    // ALIE's colluders reveal one vector between them: always audited, always slashed.
    let attackers = one
        .groups
        .iter()
        .find(|g| g.behaviour.starts_with("attack"))
        .expect("an attacker group");
    assert!(attackers.net.surely_negative(), "{attackers:?}");
    let honest = one
        .groups
        .iter()
        .find(|g| g.role == "trainer" && g.behaviour == "honest")
        .expect("honest trainers");
    assert!(honest.net.surely_positive(), "{honest:?}");
}
