use cairn_ml::data::BuiltinDataset;
use cairn_robust::attack::Attack;

use super::*;

fn parse(text: &str) -> Scenario {
    Scenario::from_toml_str(text).unwrap()
}

fn invalid(text: &str) -> ScenarioError {
    parse(text).validate().unwrap_err()
}

#[test]
fn empty_toml_is_the_default_scenario() {
    assert_eq!(parse(""), Scenario::default());
}

#[test]
fn default_scenario_is_mnist_with_ten_trainers_two_alie_and_four_validators() {
    let scenario = Scenario::default();
    scenario.validate().unwrap();
    assert_eq!(scenario.dataset, BuiltinDataset::Mnist5k);
    assert_eq!(scenario.model(), "mlp:784-64-10");
    let trainers = scenario.trainer_nodes().unwrap();
    assert_eq!(trainers.len(), 10);
    let alie: Vec<_> = trainers
        .iter()
        .filter(|t| t.behaviour == TrainerBehaviour::Attack(Attack::Alie { z: None }))
        .collect();
    assert_eq!(alie.len(), 2);
    assert!(alie.iter().all(|t| t.coalition_id == Some(0)));
    assert_eq!(alie[0].behaviour.label(), "attack:alie:auto");
    assert_eq!(trainers[0].behaviour.label(), "honest");
    assert_eq!(scenario.validator_nodes().len(), 4);
    assert_eq!(scenario.node_names()[..5], ["v0", "v1", "v2", "v3", "t0"]);
}

#[test]
fn toml_keys_override_defaults_and_leave_the_rest() {
    let scenario = parse(
        r#"
        seed = 99
        rounds = 3
        dataset = "digits"
        rule = "krum"
        [windows]
        commit = 5
        [[trainers]]
        count = 4
        [[trainers]]
        count = 1
        behaviour = "free_rider"
        free_ride = "stale"
        [network]
        latency_ms = 5
        "#,
    );
    scenario.validate().unwrap();
    assert_eq!((scenario.seed, scenario.rounds), (99, 3));
    assert_eq!(scenario.model(), "mlp:64-64-10");
    assert_eq!(scenario.rule, "krum");
    assert_eq!(scenario.windows.commit, 5);
    assert_eq!(scenario.windows.reveal, Windows::default().reveal);
    assert_eq!(scenario.network.latency_ms, 5);
    assert_eq!(scenario.network.jitter_ms, DEFAULT_JITTER_MS);
    assert_eq!(scenario.local_steps, DEFAULT_LOCAL_STEPS);
    let trainers = scenario.trainer_nodes().unwrap();
    assert_eq!(trainers.len(), 5);
    assert_eq!(trainers[4].behaviour.label(), "free_rider:stale");
    assert_eq!(trainers[4].name, "t4");
}

#[test]
fn unknown_keys_are_rejected_at_every_level() {
    for text in [
        "round = 3",
        "[[trainers]]\ncount = 1\nbehavior = \"honest\"",
        "[[validators]]\nweight = 3",
        "[network]\nlatency = 3",
        "[windows]\nvote = 1",
    ] {
        let error = Scenario::from_toml_str(text).unwrap_err();
        assert!(
            matches!(error, ScenarioError::Parse { .. }),
            "{text}: {error}"
        );
        assert!(
            error.to_string().contains("unknown field"),
            "{text}: {error}"
        );
    }
}

#[test]
fn unknown_behaviours_and_datasets_are_rejected() {
    assert!(Scenario::from_toml_str("[[trainers]]\nbehaviour = \"sleepy\"").is_err());
    assert!(Scenario::from_toml_str("[[validators]]\nbehaviour = \"lazy\"").is_err());
    assert!(Scenario::from_toml_str("dataset = \"cifar\"").is_err());
}

#[test]
fn byzantine_validators_must_be_fewer_than_a_third_by_count() {
    let base = "[[validators]]\ncount = 3\n[[validators]]\ncount = 1\nbehaviour = \"silent\"\n";
    parse(base).validate().unwrap();
    let error = invalid(
        "[[validators]]\ncount = 2\n[[validators]]\ncount = 1\nbehaviour = \"copy_scores\"\n",
    );
    assert!(matches!(
        error,
        ScenarioError::TooManyByzantineValidators {
            byzantine: 1,
            total: 3,
            unit: "nodes"
        }
    ));
}

#[test]
fn byzantine_validators_must_hold_less_than_a_third_of_the_stake() {
    let error = invalid(
        "[[validators]]\ncount = 3\n[[validators]]\ncount = 1\nstake = 1500\nbehaviour = \"wrong_model_hash\"\n",
    );
    assert!(matches!(
        error,
        ScenarioError::TooManyByzantineValidators {
            byzantine: 1500,
            total: 4500,
            ..
        }
    ));
}

#[test]
fn a_scenario_without_an_honest_trainer_is_rejected() {
    let error = invalid("[[trainers]]\ncount = 3\nbehaviour = \"label_flip\"\n");
    assert!(matches!(error, ScenarioError::NoHonestTrainer));
}

#[test]
fn zero_counts_and_sizes_are_rejected_with_their_key() {
    for (text, key) in [
        ("rounds = 0", "rounds"),
        ("local_steps = 0", "local_steps"),
        ("batch_size = 0", "batch_size"),
        ("threads = 0", "threads"),
        ("[windows]\nattest = 0", "windows.attest"),
        ("[[trainers]]\ncount = 0", "trainers[0].count"),
        ("[[validators]]\nstake = 0", "validators[0].stake"),
    ] {
        match invalid(text) {
            ScenarioError::Zero { field } => assert_eq!(field, key),
            other => panic!("{text}: {other}"),
        }
    }
    assert!(matches!(
        invalid("validators = []"),
        ScenarioError::NoValidators
    ));
}

#[test]
fn limits_and_empty_texts_are_rejected() {
    assert!(matches!(
        invalid("rounds = 10001"),
        ScenarioError::TooLarge { .. }
    ));
    assert!(matches!(
        invalid("rule = \"  \""),
        ScenarioError::Empty { .. }
    ));
    assert!(matches!(
        invalid("[[trainers]]\ncount = 1100"),
        ScenarioError::TooLarge { .. } | ScenarioError::TooManyNodes { .. }
    ));
    assert!(matches!(
        invalid("[[validators]]\ncount = 65"),
        ScenarioError::TooManyValidators {
            validators: 65,
            max: 64
        }
    ));
    // 40 validators and 200 trainers fit the node limit but not the simulated network's ports.
    assert!(matches!(
        invalid("[[trainers]]\ncount = 200\n[[validators]]\ncount = 40"),
        ScenarioError::TooManyLinks {
            validators: 40,
            trainers: 200,
            links: 17_560,
            ..
        }
    ));
}

#[test]
fn success_rate_outside_zero_one_is_rejected() {
    for rate in ["1.5", "-0.1", "nan"] {
        let error = invalid(&format!("[network]\nsuccess_rate = {rate}"));
        assert!(
            matches!(error, ScenarioError::Probability { .. }),
            "{rate}: {error}"
        );
    }
    parse("[network]\nsuccess_rate = 0.0").validate().unwrap();
}

#[test]
fn attack_groups_need_a_parsable_attack_and_other_groups_refuse_one() {
    let missing = invalid("[[trainers]]\ncount = 5\n[[trainers]]\nbehaviour = \"attack\"");
    assert!(matches!(missing, ScenarioError::MissingAttack { group: 1 }));
    let bad = invalid(
        "[[trainers]]\ncount = 5\n[[trainers]]\nbehaviour = \"attack\"\nattack = \"teleport\"",
    );
    assert!(matches!(bad, ScenarioError::BadAttack { group: 1, .. }));
    let unused = invalid("[[trainers]]\ncount = 5\nattack = \"alie\"");
    assert!(matches!(
        unused,
        ScenarioError::UnusedKey { key: "attack", .. }
    ));
    let unused = invalid("[[trainers]]\ncount = 5\nidentities = 2");
    assert!(matches!(
        unused,
        ScenarioError::UnusedKey {
            key: "identities",
            ..
        }
    ));
}

#[test]
fn sybil_attackers_expand_to_identities_sharing_stake_and_coalition() {
    let scenario = parse(
        r#"
        [[trainers]]
        count = 4
        [[trainers]]
        count = 2
        behaviour = "sybil"
        identities = 3
        stake = 1000
        attack = "ipm"
        "#,
    );
    scenario.validate().unwrap();
    let trainers = scenario.trainer_nodes().unwrap();
    assert_eq!(trainers.len(), 10);
    assert_eq!(scenario.trainer_count(), 10);
    let stakes: Vec<u64> = trainers[4..].iter().map(|t| t.stake).collect();
    assert_eq!(stakes, [334, 333, 333, 334, 333, 333]);
    let coalitions: Vec<_> = trainers[4..].iter().map(|t| t.coalition_id).collect();
    assert_eq!(
        coalitions,
        [Some(0), Some(0), Some(0), Some(1), Some(1), Some(1)]
    );
    assert!(trainers[4].behaviour.label().starts_with("sybil:ipm"));
    assert!(scenario.has_node("t9") && !scenario.has_node("t10"));
}

#[test]
fn sybil_stake_too_small_to_split_is_rejected() {
    let error =
        invalid("[[trainers]]\n[[trainers]]\nbehaviour = \"sybil\"\nidentities = 5\nstake = 400");
    assert!(matches!(
        error,
        ScenarioError::SybilStake {
            stake: 400,
            identities: 5,
            minimum: 100,
            group: 1,
        }
    ));
}

#[test]
fn stakes_below_the_minimum_bond_are_rejected() {
    for (toml, field) in [
        ("[[trainers]]\nstake = 99", "trainers[0].stake"),
        ("[[validators]]\nstake = 50", "validators[0].stake"),
    ] {
        let error = invalid(toml);
        assert!(
            matches!(&error, ScenarioError::BelowMinimumBond { field: f, minimum: 100, .. } if f == field),
            "{error:?}"
        );
    }
}

#[test]
fn node_names_have_exactly_one_spelling() {
    assert_eq!("v0".parse::<NodeName>(), Ok(NodeName::Validator(0)));
    assert_eq!("t12".parse::<NodeName>(), Ok(NodeName::Trainer(12)));
    for bad in ["", "v", "x1", "t01", "t-1", "T1", "t1 ", "vv1"] {
        assert!(bad.parse::<NodeName>().is_err(), "{bad:?}");
    }
}

#[test]
fn partitions_must_name_existing_disjoint_nodes_in_time_order() {
    let ok =
        "[[network.partitions]]\nat_ms = 10\nheal_ms = 20\ngroups = [[\"v0\", \"t0\"], [\"v1\"]]";
    parse(ok).validate().unwrap();
    let unknown =
        invalid("[[network.partitions]]\nat_ms = 10\nheal_ms = 20\ngroups = [[\"v9\"], [\"v1\"]]");
    assert!(matches!(unknown, ScenarioError::UnknownNode { ref name, .. } if name == "v9"));
    for bad in [
        "[[network.partitions]]\nat_ms = 10\nheal_ms = 10\ngroups = [[\"v0\"], [\"v1\"]]",
        "[[network.partitions]]\nat_ms = 1\nheal_ms = 9\ngroups = [[\"v0\"], [\"v0\"]]",
        "[[network.partitions]]\nat_ms = 1\nheal_ms = 9\ngroups = [[\"v0\", \"v1\"]]",
        "[[network.partitions]]\nat_ms = 1\nheal_ms = 9\ngroups = [[\"v0\"], []]",
        "[[network.partitions]]\nat_ms = 1\nheal_ms = 9\ngroups = [[\"v0\"], [\"v1\"]]\n\
         [[network.partitions]]\nat_ms = 5\nheal_ms = 12\ngroups = [[\"v0\"], [\"v1\"]]",
    ] {
        assert!(
            matches!(invalid(bad), ScenarioError::BadPartition { .. }),
            "{bad}"
        );
    }
}

#[test]
fn partitions_cut_only_links_between_named_groups() {
    let partition = PartitionEvent {
        at_ms: 5,
        heal_ms: 10,
        groups: vec![vec!["v0".into()], vec!["v1".into(), "t0".into()]],
    };
    assert!(partition.separates("v0", "t0"));
    assert!(!partition.separates("v1", "t0"));
    assert!(!partition.separates("v0", "t5"));
    assert!(partition.active_at(5) && partition.active_at(9) && !partition.active_at(10));
}

#[test]
fn crashes_must_name_existing_nodes_and_restart_after_they_stop() {
    parse("[[network.crashes]]\nnode = \"v3\"\nat_ms = 5\nrestart_ms = 9")
        .validate()
        .unwrap();
    let unknown = invalid("[[network.crashes]]\nnode = \"t10\"\nat_ms = 5");
    assert!(matches!(unknown, ScenarioError::UnknownNode { .. }));
    let early = invalid("[[network.crashes]]\nnode = \"v3\"\nat_ms = 5\nrestart_ms = 5");
    assert!(matches!(early, ScenarioError::BadCrash { index: 0, .. }));
    let overlap = invalid(
        "[[network.crashes]]\nnode = \"v3\"\nat_ms = 5\n[[network.crashes]]\nnode = \"v3\"\nat_ms = 50",
    );
    assert!(matches!(overlap, ScenarioError::BadCrash { index: 1, .. }));
    let crash = CrashEvent {
        node: "v0".into(),
        at_ms: 5,
        restart_ms: Some(9),
    };
    assert!(!crash.down_at(4) && crash.down_at(5) && !crash.down_at(9));
}

#[test]
fn scenario_written_as_toml_reads_back_equal() {
    let mut scenario = parse(
        "data_dir = \"/data\"\n[[trainers]]\ncount = 3\n[[trainers]]\nbehaviour = \"sybil\"\n\
         [[network.crashes]]\nnode = \"t1\"\nat_ms = 4\n\
         [[network.partitions]]\nat_ms = 1\nheal_ms = 2\ngroups = [[\"v0\"], [\"v1\"]]",
    );
    scenario.model = Some("mlp:784-32-10".into());
    let text = scenario.to_toml_string().unwrap();
    assert_eq!(Scenario::from_toml_str(&text).unwrap(), scenario);
    // `threads` changes no result, so it is read but never written.
    scenario.threads = 3;
    assert_eq!(scenario.to_toml_string().unwrap(), text);
    assert_eq!(parse("threads = 3").threads, 3);
}

#[test]
fn relative_data_dir_is_resolved_against_the_scenario_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, "data_dir = \"../data\"\n").unwrap();
    let scenario = Scenario::from_file(&path).unwrap();
    assert_eq!(scenario.data_dir, Some(dir.path().join("../data")));
    let missing = Scenario::from_file(&dir.path().join("none.toml")).unwrap_err();
    assert!(matches!(missing, ScenarioError::Read { .. }));
    std::fs::write(&path, "rounds = \"x\"\n").unwrap();
    let bad = Scenario::from_file(&path).unwrap_err();
    assert!(bad.to_string().contains("s.toml"), "{bad}");
}

#[test]
fn trainer_overrides_keep_the_total_and_resize_the_honest_group() {
    let mut scenario = Scenario::default();
    let overrides = ScenarioOverrides {
        attackers: Some(3),
        attack: Some("ipm:0.5".into()),
        rounds: Some(4),
        ..ScenarioOverrides::default()
    };
    overrides.apply(&mut scenario).unwrap();
    scenario.validate().unwrap();
    assert_eq!(scenario.rounds, 4);
    assert_eq!(
        scenario.trainers,
        [TrainerGroup::honest(7), TrainerGroup::attack(3, "ipm:0.5")]
    );

    let overrides = ScenarioOverrides {
        trainers: Some(20),
        ..ScenarioOverrides::default()
    };
    overrides.apply(&mut scenario).unwrap();
    assert_eq!(
        scenario.trainers,
        [TrainerGroup::honest(17), TrainerGroup::attack(3, "ipm:0.5")]
    );

    let overrides = ScenarioOverrides {
        attackers: Some(0),
        ..ScenarioOverrides::default()
    };
    overrides.apply(&mut scenario).unwrap();
    assert_eq!(scenario.trainers, [TrainerGroup::honest(20)]);
}

#[test]
fn count_overrides_that_leave_no_honest_node_are_rejected() {
    let mut scenario = Scenario::default();
    let overrides = ScenarioOverrides {
        trainers: Some(2),
        attackers: Some(2),
        ..ScenarioOverrides::default()
    };
    let error = overrides.apply(&mut scenario).unwrap_err();
    assert!(matches!(
        error,
        ScenarioError::NoRoomForHonest {
            flag: "trainers",
            given: 2,
            others: 2,
            ..
        }
    ));

    let mut scenario =
        parse("[[validators]]\ncount = 6\n[[validators]]\nbehaviour = \"silent\"\ncount = 2");
    let overrides = ScenarioOverrides {
        validators: Some(10),
        ..ScenarioOverrides::default()
    };
    overrides.apply(&mut scenario).unwrap();
    assert_eq!(scenario.validators[0].count, 8);
    assert_eq!(scenario.validators[1].behaviour, ValidatorBehaviour::Silent);
    let overrides = ScenarioOverrides {
        validators: Some(2),
        ..ScenarioOverrides::default()
    };
    assert!(overrides.apply(&mut scenario).is_err());
}

#[test]
fn split_stake_conserves_the_total() {
    for (total, parts) in [(10u64, 3u32), (7, 7), (1000, 1), (5, 2)] {
        let stakes = split_stake(total, parts);
        assert_eq!(stakes.len(), parts as usize);
        assert_eq!(stakes.iter().sum::<u64>(), total);
        assert!(stakes.iter().max().unwrap() - stakes.iter().min().unwrap() <= 1);
    }
    assert!(split_stake(5, 0).is_empty());
}

#[test]
fn values_too_large_for_toml_are_rejected_so_the_report_can_write_the_scenario() {
    let mut scenario = Scenario {
        seed: u64::MAX,
        ..Scenario::default()
    };
    let error = scenario.validate().unwrap_err();
    assert!(matches!(error, ScenarioError::TooLarge { ref field, .. } if field == "seed"));
    scenario.seed = MAX_TOML_INTEGER;
    scenario.validate().unwrap();
    scenario.to_toml_string().unwrap();
    scenario.validators[0].stake = u64::MAX;
    assert!(matches!(
        scenario.validate(),
        Err(ScenarioError::TooLarge { .. })
    ));
}

#[test]
fn node_names_read_back_from_their_display() {
    for name in [
        NodeName::Validator(0),
        NodeName::Trainer(7),
        NodeName::Validator(511),
    ] {
        assert_eq!(name.to_string().parse::<NodeName>(), Ok(name));
    }
}
