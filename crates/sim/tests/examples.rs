//! The scenario files shipped in `examples/` stay valid and say what they claim.

use std::path::PathBuf;

use cairn_sim::scenario::{Scenario, TrainerBehaviour, ValidatorBehaviour};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example(name: &str) -> Scenario {
    let scenario = Scenario::from_file(&examples_dir().join(name)).unwrap();
    scenario.validate().unwrap();
    scenario
}

#[test]
fn every_simulate_example_parses_and_validates() {
    let mut names: Vec<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("simulate-") && name.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "only {names:?}");
    for name in &names {
        let scenario = Scenario::from_file(&examples_dir().join(name))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        scenario
            .validate()
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        scenario.trainer_nodes().unwrap();
    }
}

#[test]
fn the_default_example_is_exactly_the_default_scenario() {
    let mut expected = Scenario::default();
    expected.model = Some(expected.model());
    assert_eq!(example("simulate-default.toml"), expected);
}

#[test]
fn the_attacks_example_is_twenty_percent_byzantine() {
    let trainers = example("simulate-attacks.toml").trainer_nodes().unwrap();
    let attackers = trainers.iter().filter(|t| !t.behaviour.is_honest()).count();
    assert_eq!((attackers, trainers.len()), (4, 20));
}

#[test]
fn the_byzantine_validator_example_has_each_behaviour_below_a_third() {
    let validators = example("simulate-byzantine-validator.toml").validator_nodes();
    let byzantine: Vec<_> = validators
        .iter()
        .filter(|v| v.behaviour != ValidatorBehaviour::Honest)
        .map(|v| v.behaviour)
        .collect();
    assert_eq!(
        byzantine,
        [
            ValidatorBehaviour::WrongModelHash,
            ValidatorBehaviour::CopyScores,
            ValidatorBehaviour::Silent
        ]
    );
    assert!(byzantine.len() * 3 < validators.len());
}

#[test]
fn the_partition_example_cuts_the_validators_without_a_quorum_on_either_side() {
    let scenario = example("simulate-partition.toml");
    let partition = &scenario.network.partitions[0];
    let validators = scenario.validator_nodes();
    for group in 0..partition.groups.len() {
        let side = validators
            .iter()
            .filter(|v| partition.group_of(&v.name) == Some(group))
            .count();
        assert!(
            side * 3 < validators.len() * 2,
            "group {group} has a quorum"
        );
    }
    assert_eq!(scenario.network.crashes.len(), 2);
    assert!(scenario.network.success_rate < 1.0);
}

#[test]
fn the_free_rider_example_covers_every_non_honest_trainer_behaviour_but_attack() {
    let trainers = example("simulate-free-riders.toml")
        .trainer_nodes()
        .unwrap();
    let labels: Vec<String> = trainers[10..].iter().map(|t| t.behaviour.label()).collect();
    assert_eq!(
        labels[..4],
        [
            "free_rider:zero",
            "free_rider:stale",
            "non_revealer",
            "malformed_blob"
        ]
    );
    let sybils: Vec<_> = trainers
        .iter()
        .filter(|t| matches!(t.behaviour, TrainerBehaviour::Sybil(_)))
        .collect();
    assert_eq!(sybils.len(), 4);
    assert!(sybils
        .iter()
        .all(|t| t.stake == 40_000 && t.coalition_id == Some(0)));
}
