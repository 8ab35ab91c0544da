//! A scenario that could not train is refused before any node starts, with the reason, instead
//! of running to "rounds finalized" while nothing trains.

use cairn_sim::runner::{self, SimError};
use cairn_sim::{NoProgress, Scenario};

/// The check's verdict on the default scenario with one thing changed.
fn verdict(change: impl FnOnce(&mut Scenario)) -> Result<(), SimError> {
    let mut scenario = Scenario::default();
    change(&mut scenario);
    runner::check(&scenario)
}

/// The error's text, which must name what is wrong.
fn refused(change: impl FnOnce(&mut Scenario) + Clone) -> String {
    let error = verdict(change.clone()).expect_err("the scenario must be refused");
    // The run refuses it too, before simulating anything.
    let mut scenario = Scenario::default();
    change(&mut scenario);
    let run = runner::run(&scenario, &mut NoProgress).expect_err("the run must be refused");
    assert_eq!(run.to_string(), error.to_string());
    error.to_string()
}

#[test]
fn the_default_scenario_passes_the_check() {
    verdict(|_| {}).unwrap();
}

#[test]
fn a_rule_that_needs_more_updates_than_there_are_trainers_is_refused() {
    let error = refused(|s| s.rule = "krum:100".into());
    assert!(error.contains("krum:100"), "{error}");
    assert!(error.contains("203"), "{error}");
    assert!(error.contains("10 trainers"), "{error}");
}

#[test]
fn impossible_partitions_are_refused() {
    for (partition, words) in [
        ("dirichlet:0", "must be greater than 0"),
        ("dirichlet:-1", "must be greater than 0"),
        ("shards:100000", "cannot be cut for 10 trainers"),
        ("dirichlet:0.5:100000", "cannot be cut"),
    ] {
        let error = refused(|s| s.partition = partition.into());
        assert!(error.contains(words), "{partition}: {error}");
    }
}

#[test]
fn a_nan_learning_rate_and_an_unknown_model_are_refused() {
    let error = refused(|s| s.optimizer = "sgd:lr=nan".into());
    assert!(error.contains("lr is NaN"), "{error}");
    let error = refused(|s| s.model = Some("mlp:3-3".into()));
    assert!(error.contains("invalid model"), "{error}");
}

#[test]
fn a_dataset_no_task_can_use_is_refused_by_the_scenario_check() {
    let error = refused(|s| s.dataset = cairn_ml::data::BuiltinDataset::FashionMnist);
    assert!(error.contains("not shipped"), "{error}");
}

#[test]
fn network_times_that_would_make_the_run_endless_are_refused() {
    use cairn_sim::scenario::{MAX_EVENT_MS, MAX_LATENCY_MS};
    let error = verdict(|s| s.network.latency_ms = MAX_LATENCY_MS + 1).unwrap_err();
    assert!(error.to_string().contains("network.latency_ms"), "{error}");
    let error = verdict(|s| s.network.latency_ms = 1 << 62).unwrap_err();
    assert!(error.to_string().contains("the most allowed is"), "{error}");
    verdict(|s| s.network.latency_ms = MAX_LATENCY_MS).unwrap();
    let toml = format!(
        "[[network.partitions]]\nat_ms = 0\nheal_ms = {}\ngroups = [[\"v0\", \"v1\"], [\"v2\", \"v3\"]]\n",
        MAX_EVENT_MS + 1
    );
    let scenario = Scenario::from_toml_str(&toml).unwrap();
    let error = runner::check(&scenario).unwrap_err();
    assert!(error.to_string().contains("heal_ms"), "{error}");
}
