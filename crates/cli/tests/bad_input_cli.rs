//! Bad input and bad output paths given to `cairn train`, `aggregate` and `attack` (and a damaged
//! ledger): each is refused at once with a message naming the flag and the file, without a panic
//! report, and without changing any file the command was given.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cairn_ml::npy::{self, NpyArray};

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        // With backtraces off, Rust's panic hook prints its RUST_BACKTRACE hint: a panic report
        // that slips through cannot go unnoticed.
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .expect("the cairn binary runs")
}

/// Runs `cairn` expecting a clean refusal; returns its stderr.
fn refused(args: &[&str]) -> String {
    let output = cairn(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "cairn {args:?} should fail; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "a clean error, not a crash: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{args:?}: {stderr}");
    stderr
}

/// Asserts that `stderr` contains every one of `needles`.
fn assert_mentions(stderr: &str, needles: &[&str]) {
    for needle in needles {
        assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    }
}

fn text(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn hash(path: &Path) -> blake3::Hash {
    blake3::hash(&std::fs::read(path).expect("the file is readable"))
}

/// Six honest updates of dimension 3.
fn write_updates(dir: &Path, name: &str) -> PathBuf {
    let data = (0..18).map(|i| 1.0 + 0.1 * i as f32).collect();
    let path = dir.join(name);
    npy::write(&path, &NpyArray::matrix(6, 3, data).unwrap()).unwrap();
    path
}

/// A version 1.0 `.npy` file of `header` followed by `data`.
fn handmade(header: &str, data: &[u8]) -> Vec<u8> {
    let header = format!("{header}\n");
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// The shipped digits dataset, copied into `dir` (which can then be passed as `--data-dir`).
fn copy_digits(dir: &Path) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits.csv.gz");
    let copy = dir.join("digits.csv.gz");
    std::fs::copy(shipped, &copy).expect("data/digits.csv.gz ships with the repository");
    copy
}

#[test]
fn aggregate_and_attack_refuse_an_output_that_is_one_of_their_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_updates(dir.path(), "updates.npy");
    let stale = dir.path().join("stale.npy");
    npy::write(&stale, &NpyArray::vector(vec![0.5; 3])).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let hard_link = dir.path().join("hard.npy");
    std::fs::hard_link(&input, &hard_link).unwrap();
    let before = (hash(&input), hash(&stale));
    let spelled = dir.path().join("sub/../updates.npy");
    for output in [&input, &spelled, &hard_link] {
        let stderr = refused(&[
            "aggregate",
            "--input",
            text(&input),
            "--output",
            text(output),
        ]);
        assert_mentions(&stderr, &["--output", text(output), "same file as --input"]);
    }
    let stderr = refused(&[
        "attack",
        "--kind",
        "stale",
        "--f",
        "1",
        "--input",
        text(&input),
        "--stale",
        text(&stale),
        "--output",
        text(&stale),
    ]);
    assert_mentions(&stderr, &["--output", "same file as --stale", "stale.npy"]);
    assert_eq!((hash(&input), hash(&stale)), before, "no input changed");
}

#[test]
fn train_refuses_to_save_over_its_dataset_or_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = copy_digits(dir.path());
    let config = dir.path().join("run.toml");
    std::fs::write(&config, "epochs = 1\nhidden = [8]\n").unwrap();
    let before = (hash(&dataset), hash(&config));
    let data_dir = text(dir.path());
    let stderr = refused(&["train", "--data-dir", data_dir, "--save", text(&dataset)]);
    assert_mentions(
        &stderr,
        &["--save", "same file as --data-dir", "digits.csv.gz"],
    );
    let stderr = refused(&[
        "train",
        "--config",
        text(&config),
        "--data-dir",
        data_dir,
        "--json",
        text(&config),
    ]);
    assert_mentions(&stderr, &["--json", "same file as --config", "run.toml"]);
    let report = dir.path().join("run.json");
    let stderr = refused(&[
        "train",
        "--data-dir",
        data_dir,
        "--json",
        text(&report),
        "--save",
        text(&report),
    ]);
    assert_mentions(&stderr, &["--save", "same file as --json"]);
    assert_eq!((hash(&dataset), hash(&config)), before, "no input changed");
    assert!(!report.exists());
}

#[cfg(unix)]
#[test]
fn outputs_that_are_symbolic_links_are_refused_and_their_targets_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_updates(dir.path(), "updates.npy");
    let precious = dir.path().join("precious.bin");
    std::fs::write(&precious, b"not to be overwritten").unwrap();
    let link = dir.path().join("link.npy");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    let before = (hash(&input), hash(&precious));
    let aggregate = refused(&[
        "aggregate",
        "--input",
        text(&input),
        "--output",
        text(&link),
    ]);
    let attack = refused(&[
        "attack",
        "--kind",
        "ipm",
        "--f",
        "1",
        "--input",
        text(&input),
        "--output",
        text(&link),
    ]);
    let train = refused(&["train", "--epochs", "1", "--save", text(&link)]);
    for (stderr, flag) in [
        (aggregate, "--output"),
        (attack, "--output"),
        (train, "--save"),
    ] {
        assert_mentions(&stderr, &[flag, text(&link), "symbolic link"]);
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!((hash(&input), hash(&precious)), before, "no file changed");
}

#[cfg(unix)]
#[test]
fn train_refuses_to_save_over_a_fifo_or_a_directory() {
    use std::os::unix::fs::FileTypeExt as _;

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.fifo");
    let name = std::ffi::CString::new(text(&fifo)).unwrap();
    // SAFETY: a valid NUL-terminated path and a plain mode.
    let made = unsafe { libc::mkfifo(name.as_ptr(), 0o600) };
    if made == 0 {
        let stderr = refused(&["train", "--epochs", "1", "--save", text(&fifo)]);
        assert_mentions(&stderr, &["--save", text(&fifo), "FIFO"]);
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "the FIFO is still a FIFO");
    } else {
        eprintln!("mkfifo not permitted here; only the directory case runs");
    }
    let stderr = refused(&["train", "--epochs", "1", "--json", text(dir.path())]);
    assert_mentions(&stderr, &["--json", "is a directory"]);
}

#[test]
fn outputs_in_a_missing_folder_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_updates(dir.path(), "updates.npy");
    let missing = dir.path().join("no/such/folder");
    let out = missing.join("out.npy");
    let stderr = refused(&["aggregate", "--input", text(&input), "--output", text(&out)]);
    assert_mentions(
        &stderr,
        &["--output", text(&out), "does not exist", "mkdir -p"],
    );
    let stderr = refused(&[
        "attack",
        "--kind",
        "ipm",
        "--f",
        "1",
        "--input",
        text(&input),
        "--output",
        text(&out),
    ]);
    assert_mentions(&stderr, &["--output", text(&out), "does not exist"]);
    // `train` refuses before loading its dataset: nothing of the run is printed.
    for (flag, name) in [("--json", "run.json"), ("--save", "model.safetensors")] {
        let path = missing.join(name);
        let output = cairn(&["train", "--epochs", "1", flag, text(&path)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag}: {stderr}");
        assert_mentions(&stderr, &[flag, text(&path), "does not exist"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !stdout.contains("training"),
            "{flag} was refused after the work: {stdout}"
        );
    }
}

#[test]
fn npy_read_errors_name_the_flag_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_updates(dir.path(), "updates.npy");
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"PK\x03\x04 a zip, not numpy").unwrap();
    let truncated = dir.path().join("truncated.npy");
    let bytes = std::fs::read(&input).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 5]).unwrap();
    let out = dir.path().join("out.npy");
    let stderr = refused(&[
        "aggregate",
        "--rule",
        "centered_clipping",
        "--input",
        text(&input),
        "--previous",
        text(&garbage),
        "--output",
        text(&out),
    ]);
    assert_mentions(&stderr, &["--previous", text(&garbage), "not a .npy file"]);
    let stderr = refused(&[
        "attack",
        "--kind",
        "stale",
        "--f",
        "1",
        "--input",
        text(&input),
        "--stale",
        text(&garbage),
        "--output",
        text(&out),
    ]);
    assert_mentions(&stderr, &["--stale", text(&garbage), "not a .npy file"]);
    let stderr = refused(&[
        "aggregate",
        "--input",
        text(&truncated),
        "--output",
        text(&out),
    ]);
    assert_mentions(&stderr, &["--input", text(&truncated), "data is"]);
    assert!(!out.exists(), "nothing is written on failure");
}

#[test]
fn a_contained_panic_in_the_ledger_store_shows_only_the_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("chain");
    let created = cairn(&["ledger", "genesis", "--data-dir", text(&data)]);
    assert!(created.status.success(), "{created:?}");
    // One byte of the database's allocator state: its library (redb) panics on it, and the
    // store contains that panic as a typed "damaged" error.
    let store = data.join("ledger.redb");
    let mut bytes = std::fs::read(&store).unwrap();
    bytes[4124] = 0x2e;
    std::fs::write(&store, &bytes).unwrap();
    let stderr = refused(&["ledger", "inspect", "--data-dir", text(&data)]);
    assert_mentions(&stderr, &["state database is damaged", "ledger.redb"]);
}

#[test]
fn a_non_finite_update_error_names_the_non_finite_flag() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("updates.npy");
    let mut data = vec![1.0f32; 12];
    data[7] = f32::NAN;
    npy::write(&input, &NpyArray::matrix(4, 3, data).unwrap()).unwrap();
    let out = dir.path().join("out.npy");
    let stderr = refused(&["aggregate", "--input", text(&input), "--output", text(&out)]);
    assert_mentions(
        &stderr,
        &["--non-finite drop", "update 2", "coordinate 1", "--input"],
    );
    assert!(!stderr.contains("NonFinitePolicy"), "{stderr}");
}

#[test]
fn float64_beyond_the_float32_range_is_out_of_range_not_non_finite() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("wide.npy");
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
    let data: Vec<u8> = [1.0f64, 2.0, 3.0, -1e39]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(&input, handmade(header, &data)).unwrap();
    let out = dir.path().join("out.npy");
    let stderr = refused(&["aggregate", "--input", text(&input), "--output", text(&out)]);
    assert_mentions(
        &stderr,
        &["--input", text(&input), "float32 range", "index 3"],
    );
    assert!(!stderr.contains("non-finite"), "{stderr}");
}

#[test]
fn a_huge_input_is_refused_from_its_first_bytes_and_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.npy");
    // Sparse 1 TiB files: reading either whole would exhaust memory long before it ended.
    let not_npy = dir.path().join("huge.bin");
    std::fs::File::create(&not_npy)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let stderr = refused(&[
        "aggregate",
        "--input",
        text(&not_npy),
        "--output",
        text(&out),
    ]);
    assert_mentions(&stderr, &["--input", text(&not_npy), "not a .npy file"]);
    let oversized = dir.path().join("oversized.npy");
    let preamble = handmade(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
        &[],
    );
    std::fs::write(&oversized, &preamble).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&oversized)
        .unwrap()
        .set_len(preamble.len() as u64 + (1 << 40))
        .unwrap();
    let stderr = refused(&[
        "aggregate",
        "--input",
        text(&oversized),
        "--output",
        text(&out),
    ]);
    assert_mentions(&stderr, &["--input", text(&oversized), "needs 16"]);
}

#[test]
fn side_inputs_of_the_wrong_length_name_their_flag_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_updates(dir.path(), "updates.npy");
    let short = dir.path().join("short.npy");
    npy::write(&short, &NpyArray::vector(vec![0.5; 4])).unwrap();
    let out = dir.path().join("out.npy");
    let stderr = refused(&[
        "aggregate",
        "--rule",
        "centered_clipping",
        "--input",
        text(&input),
        "--previous",
        text(&short),
        "--output",
        text(&out),
    ]);
    assert_mentions(
        &stderr,
        &["--previous", text(&short), "has 4 values", "dimension 3"],
    );
    let stderr = refused(&[
        "attack",
        "--kind",
        "stale",
        "--f",
        "1",
        "--input",
        text(&input),
        "--stale",
        text(&short),
        "--output",
        text(&out),
    ]);
    assert_mentions(
        &stderr,
        &["--stale", text(&short), "has 4 values", "dimension 3"],
    );
    assert!(!out.exists());
}
