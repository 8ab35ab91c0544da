//! `cairn train` end to end: the JSON report, reproducibility across runs and thread counts,
//! the saved model file, `--config` files, and helpful failures.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the cairn binary runs")
}

/// Trains an MLP on digits for 2 epochs and returns the parsed `--json` report.
fn train_digits(dir: &Path, name: &str, seed: &str, threads: &str, extra: &[&str]) -> Value {
    let json = dir.join(format!("{name}.json"));
    let json_arg = json.to_str().unwrap();
    let mut args = vec![
        "train",
        "--dataset",
        "digits",
        "--model",
        "mlp",
        "--hidden",
        "64,32",
        "--epochs",
        "2",
        "--seed",
        seed,
        "--threads",
        threads,
        "--json",
        json_arg,
    ];
    args.extend_from_slice(extra);
    let output = cairn(&args);
    assert!(
        output.status.success(),
        "cairn train failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

#[test]
fn json_report_has_settings_per_epoch_figures_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let report = train_digits(dir.path(), "run", "7", "1", &[]);
    assert_eq!(report["dataset"], "digits");
    assert_eq!(report["model"]["kind"], "mlp");
    assert_eq!(report["model"]["inputs"], 64);
    assert_eq!(report["model"]["hidden"], serde_json::json!([64, 32]));
    assert_eq!(report["optimizer"]["kind"], "sgd");
    assert_eq!(report["epochs"], 2);
    assert_eq!(report["batch_size"], 64);
    assert_eq!(report["seed"], 7);
    assert_eq!(report["threads"], 1);
    let detail = report["epochs_detail"].as_array().unwrap();
    assert_eq!(detail.len(), 2);
    for (i, row) in detail.iter().enumerate() {
        assert_eq!(row["epoch"], i as u64 + 1);
        assert!(row["train_loss"].as_f64().unwrap() > 0.0);
        assert!(row["test_loss"].as_f64().unwrap() > 0.0);
        let accuracy = row["test_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy));
    }
    assert_eq!(report["final_test_accuracy"], detail[1]["test_accuracy"]);
    // Two epochs of the default SGD already learn digits well beyond chance (10%).
    assert!(report["final_test_accuracy"].as_f64().unwrap() > 0.6);
    assert!(report["samples_per_second"].as_f64().unwrap() > 0.0);
    let hash = report["weights_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn same_seed_gives_same_weights_on_one_or_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let first = train_digits(dir.path(), "first", "7", "1", &[]);
    let again = train_digits(dir.path(), "again", "7", "1", &[]);
    let two_threads = train_digits(dir.path(), "two", "7", "2", &[]);
    let other_seed = train_digits(dir.path(), "other", "8", "1", &[]);
    assert_eq!(first["weights_hash"], again["weights_hash"]);
    assert_eq!(first["weights_hash"], two_threads["weights_hash"]);
    assert_eq!(first["epochs_detail"], two_threads["epochs_detail"]);
    assert_ne!(first["weights_hash"], other_seed["weights_hash"]);
}

#[test]
fn saved_model_loads_with_the_reported_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("digits.safetensors");
    let report = train_digits(
        dir.path(),
        "saved",
        "7",
        "1",
        &["--save", path.to_str().unwrap()],
    );
    let model = cairn_ml::checkpoint::load(&path).unwrap();
    let hash = cairn_ml::checkpoint::hex(&cairn_ml::train::weights_hash(model.params()));
    assert_eq!(report["weights_hash"], hash.as_str());
    assert_eq!(report["model"], serde_json::to_value(model.spec()).unwrap());
}

#[test]
fn unknown_dataset_fails_listing_the_valid_names() {
    let output = cairn(&["train", "--dataset", "cifar"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cifar"), "{stderr}");
    assert!(
        stderr.contains("digits")
            && stderr.contains("mnist_5k")
            && stderr.contains("fashion_mnist"),
        "{stderr}"
    );
}

#[test]
fn missing_data_dir_fails_saying_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().to_str().unwrap();
    let output = cairn(&["train", "--data-dir", empty, "--epochs", "1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--data-dir") && stderr.contains("digits.csv.gz"),
        "{stderr}"
    );
}

#[test]
fn invalid_hyperparameters_fail_naming_the_option() {
    let output = cairn(&["train", "--lr", "-0.5", "--epochs", "1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--lr") && stderr.contains("-0.5"),
        "{stderr}"
    );

    let output = cairn(&["train", "--threads", "0"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--threads"));
}

/// A config file for a short digits run; its `json` key is relative to the file's folder.
const DIGITS_CONFIG: &str = "\
dataset = \"digits\"
hidden = [48, 24]
optimizer = \"adam\"
lr = 0.002
epochs = 1
batch_size = 32
seed = 3
json = \"from-config.json\"
";

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("run.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn config_file_values_are_used_and_match_the_same_flags() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), DIGITS_CONFIG);
    let output = cairn(&["train", "--config", &config]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_report(&dir.path().join("from-config.json"));
    assert_eq!(report["dataset"], "digits");
    assert_eq!(report["model"]["hidden"], serde_json::json!([48, 24]));
    assert_eq!(report["optimizer"]["kind"], "adam");
    assert!((report["optimizer"]["lr"].as_f64().unwrap() - 0.002).abs() < 1e-9);
    assert_eq!(report["epochs"], 1);
    assert_eq!(report["batch_size"], 32);
    assert_eq!(report["seed"], 3);
    assert_eq!(
        report["threads"], 1,
        "a key in neither place takes its default"
    );

    let flags_json = dir.path().join("flags.json");
    let output = cairn(&[
        "train",
        "--dataset",
        "digits",
        "--hidden",
        "48,24",
        "--optimizer",
        "adam",
        "--lr",
        "0.002",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--seed",
        "3",
        "--json",
        flags_json.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let flags = read_report(&flags_json);
    assert_eq!(report["weights_hash"], flags["weights_hash"]);
}

#[test]
fn flags_on_the_command_line_override_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), DIGITS_CONFIG);
    let json = dir.path().join("override.json");
    let output = cairn(&[
        "train",
        "--config",
        &config,
        "--seed",
        "5",
        "--optimizer",
        "sgd",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_report(&json);
    assert!(!dir.path().join("from-config.json").exists());
    assert_eq!(report["seed"], 5);
    assert_eq!(report["optimizer"]["kind"], "sgd");
    assert!(
        (report["optimizer"]["lr"].as_f64().unwrap() - 0.002).abs() < 1e-9,
        "the file's lr still applies"
    );
    assert_eq!(
        report["batch_size"], 32,
        "keys no flag overrides still apply"
    );
    assert_eq!(report["model"]["hidden"], serde_json::json!([48, 24]));
}

#[test]
fn unknown_config_key_is_rejected_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "epochs = 1\nlearning_rate = 0.1\n");
    let output = cairn(&["train", "--config", &config]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("run.toml") && stderr.contains("key `learning_rate` (line 2)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`lr`"),
        "the valid keys are listed: {stderr}"
    );
}

#[test]
fn config_value_of_the_wrong_type_or_bad_toml_fails_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "seed = 7\nepochs = \"twenty\"\n");
    let output = cairn(&["train", "--config", &config]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("run.toml") && stderr.contains("key `epochs` (line 2)"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid type"), "{stderr}");

    let config = write_config(dir.path(), "seed = 7\nepochs 20\n");
    let output = cairn(&["train", "--config", &config]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("run.toml") && stderr.contains("not valid TOML at line 2"),
        "{stderr}"
    );
}

#[test]
fn missing_config_file_fails_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.toml");
    let output = cairn(&["train", "--config", missing.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("absent.toml") && stderr.contains("--config"),
        "{stderr}"
    );
}

#[test]
fn example_mnist_config_runs() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("mnist.json");
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/train-mnist.toml"
    );
    let output = cairn(&[
        "train",
        "--config",
        example,
        "--epochs",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_report(&json);
    assert_eq!(report["dataset"], "mnist_5k");
    assert_eq!(report["train_samples"], 4000);
    assert_eq!(report["epochs"], 1);
    // One epoch of the 95% setting already learns mnist_5k far beyond chance (10%).
    assert!(report["final_test_accuracy"].as_f64().unwrap() > 0.8);
}

#[test]
fn help_shows_each_default() {
    let output = cairn(&["train", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for note in [
        "[default: digits]",
        "[default: 5]",
        "[default: 256,128]",
        "[default: 0.1 for sgd, 0.001 for adam]",
        "--config <FILE>",
    ] {
        assert!(help.contains(note), "--help lacks {note}:\n{help}");
    }
}
