//! `cairn simulate` refuses what cannot run before it runs, and its help says what it does.

use std::process::{Command, Output};

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LOG")
        .output()
        .expect("the cairn binary runs")
}

fn refused(args: &[&str]) -> String {
    let output = cairn(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "`{}` succeeded", args.join(" "));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "no scenario is printed for a refused plan"
    );
    stderr
}

#[test]
fn print_scenario_refuses_a_plan_that_cannot_train() {
    for (flags, words) in [
        (
            &["--rule", "krum:100"][..],
            "krum needs at least 203 updates",
        ),
        (
            &["--partition", "dirichlet:0"],
            "alpha 0 must be greater than 0",
        ),
        (&["--partition", "dirichlet:-1"], "must be greater than 0"),
        (
            &["--partition", "shards:100000"],
            "cannot be cut for 10 trainers",
        ),
        (&["--model", "mlp:3-3"], "invalid model"),
    ] {
        let mut args = vec!["simulate", "--print-scenario"];
        args.extend_from_slice(flags);
        let stderr = refused(&args);
        assert!(stderr.contains(words), "{flags:?}: {stderr}");
    }
    let stderr = refused(&["simulate", "--print-scenario", "--dataset", "fashion_mnist"]);
    assert!(stderr.contains("expected mnist_5k or digits"), "{stderr}");
}

#[test]
fn a_nan_learning_rate_in_a_scenario_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nan.toml");
    std::fs::write(&file, "optimizer = \"sgd:lr=nan\"\n").unwrap();
    let stderr = refused(&[
        "simulate",
        "--print-scenario",
        "--scenario",
        file.to_str().unwrap(),
    ]);
    assert!(stderr.contains("lr is NaN"), "{stderr}");
}

/// The value `--print-scenario` gives for a top-level key.
fn scenario_value(toml: &str, key: &str) -> String {
    toml.lines()
        .find_map(|line| line.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no `{key}` in the printed scenario"))
        .trim_matches('"')
        .to_owned()
}

/// The `[default: X]` that `--help` gives for `flag`.
fn help_default(help: &str, flag: &str) -> String {
    let at = help
        .find(&format!("--{flag} "))
        .unwrap_or_else(|| panic!("no --{flag} in the help"));
    let rest = &help[at..];
    let start = rest.find("[default: ").expect("a default") + "[default: ".len();
    rest[start..start + rest[start..].find(']').unwrap()].to_owned()
}

#[test]
fn the_help_states_the_defaults_the_run_uses() {
    let help = String::from_utf8(cairn(&["simulate", "--help"]).stdout).unwrap();
    let printed = cairn(&["simulate", "--print-scenario"]);
    assert!(printed.status.success());
    let toml = String::from_utf8(printed.stdout).unwrap();
    for (flag, key) in [
        ("seed", "seed"),
        ("rounds", "rounds"),
        ("local-steps", "local_steps"),
        ("rule", "rule"),
        ("dataset", "dataset"),
        ("partition", "partition"),
    ] {
        assert_eq!(
            help_default(&help, flag),
            scenario_value(&toml, key),
            "--{flag}: the help and the run disagree"
        );
    }
}

#[test]
fn logs_are_not_coloured_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["ledger", "demo", "--data-dir"])
        .arg(dir.path().join("chain"))
        .env("RUST_LOG", "cairn_ledger=debug")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("committed block"), "debug logs are written");
    assert!(!stderr.contains('\u{1b}'), "escape codes in a piped log");
}

#[test]
fn bad_output_paths_are_refused_before_the_simulation_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    // A timing file in a missing folder: refused at once, not after the run.
    let missing = dir.path().join("no/such/folder/timing.json");
    let started = std::time::Instant::now();
    let stderr = refused(&[
        "simulate",
        "--out",
        out,
        "--timing",
        missing.to_str().unwrap(),
    ]);
    assert!(stderr.contains("--timing"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the refusal came after a run"
    );
    assert!(
        !dir.path().join("out").exists(),
        "a refused run left its report folder behind"
    );

    // A report folder that holds the scenario being read: its scenario.toml would be replaced.
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(&scenario, "rounds = 1\n").unwrap();
    let before = std::fs::read(&scenario).unwrap();
    let stderr = refused(&[
        "simulate",
        "--scenario",
        scenario.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("is the same file as --scenario"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&scenario).unwrap(), before);

    // --out naming a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "keep me").unwrap();
    let stderr = refused(&["simulate", "--out", file.to_str().unwrap()]);
    assert!(stderr.contains("is not a folder"), "{stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn many_seeds_write_a_summary_per_node_group_and_bad_ranges_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seeds");
    let output = cairn(&[
        "simulate",
        "--seeds",
        "1..2",
        "--dataset",
        "digits",
        "--model",
        "logistic:64-10",
        "--rounds",
        "1",
        "--local-steps",
        "5",
        "--trainers",
        "5",
        "--attackers",
        "1",
        "--rule",
        "median",
        "--threads",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("2 seeds (1..2)"), "{stdout}");
    assert!(stdout.contains("profit per node [95% CI]"), "{stdout}");
    for name in ["seeds.json", "scenario.toml", "groups.csv", "seeds.csv"] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let groups = std::fs::read_to_string(out.join("groups.csv")).unwrap();
    assert!(
        groups.starts_with("role,behaviour,nodes,seeds,"),
        "{groups}"
    );
    assert!(groups.contains("trainer,honest,4,2,"), "{groups}");

    for (range, words) in [
        ("9..3", "is empty"),
        ("1-5", "not a seed range"),
        ("x..4", "is not a whole number"),
    ] {
        let stderr = refused(&["simulate", "--seeds", range]);
        assert!(stderr.contains(words), "{range}: {stderr}");
    }
    let stderr = refused(&["simulate", "--seeds", "1..3", "--seed", "4"]);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn economics_sweeps_a_parameter_writes_its_report_and_refuses_bad_axes() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(
        &scenario,
        "dataset = \"digits\"\nmodel = \"logistic:64-10\"\nrounds = 2\nlocal_steps = 5\n\
         rule = \"median\"\n[[trainers]]\ncount = 4\n[[trainers]]\ncount = 1\n\
         behaviour = \"free_rider\"\nfree_ride = \"zero\"\n[[validators]]\ncount = 4\n",
    )
    .unwrap();
    let out = dir.path().join("sweep");
    let output = cairn(&[
        "economics",
        "--scenario",
        scenario.to_str().unwrap(),
        "--vary",
        "slash_fraction=0,0.5",
        "--seeds",
        "1..2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("4 runs"), "{stdout}");
    assert!(
        stdout.contains("trainer free_rider:zero: never profitable"),
        "{stdout}"
    );
    for name in [
        "sweep.json",
        "sweep.csv",
        "frontier.csv",
        "scenario.toml",
        "profit-trainer-free-rider-zero.png",
        "profit-trainer-honest.svg",
    ] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(csv.starts_with("slash_fraction,role,behaviour,"), "{csv}");

    for (axis, words) in [
        ("speed=1,2", "not a parameter a sweep can vary"),
        ("audit_rate=", "gives audit_rate no value"),
        ("attackers=1.5", "takes whole numbers"),
        ("slash_fraction=0.5,2", "slash_fraction"),
    ] {
        let stderr = refused(&["economics", "--vary", axis, "--out", out.to_str().unwrap()]);
        assert!(stderr.contains(words), "{axis}: {stderr}");
    }
    let stderr = refused(&[
        "economics",
        "--vary",
        "audit_rate=0.1",
        "--vary",
        "audit_rate=0.2",
    ]);
    assert!(stderr.contains("given twice"), "{stderr}");
}

#[test]
fn robustness_runs_a_small_grid_writes_its_report_and_refuses_bad_defences() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid");
    let output = cairn(&[
        "robustness",
        "--dataset",
        "digits",
        "--model",
        "logistic:64-10",
        "--rounds",
        "2",
        "--local-steps",
        "5",
        "--trainers",
        "6",
        "--byzantine",
        "1",
        "--partitions",
        "iid,shards:2",
        "--defences",
        "arc:1,nnm:1>centered_clipping:1:3;bucketing:2>centered_clipping:1:3+wm:0.5+sm:0.5",
        "--attacks",
        "none,ipm:0.5,label_flip",
        "--seeds",
        "1..2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("(24 runs"), "{stdout}");
    assert!(stdout.contains("### `shards:2`"), "{stdout}");
    for name in [
        "runs.csv",
        "summary.csv",
        "robustness.json",
        "robustness.md",
    ] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + 24);
    assert!(
        runs.contains("\"arc:1,nnm:1>centered_clipping:1:3\""),
        "{runs}"
    );
    for (defence, words) in [
        ("median+wm:1.5", "not in [0, 1)"),
        ("median+xx:0.5", "unknown remedy"),
        ("no_such_rule", "unknown rule"),
    ] {
        let stderr = refused(&[
            "robustness",
            "--defences",
            defence,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(stderr.contains(words), "{defence}: {stderr}");
    }
}
