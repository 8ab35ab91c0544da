//! `cairn ledger demo`, `inspect` and `prove` end to end: the scripted history trains for real,
//! plays a dispute to the referee's verdict, and reads back the same way every time.

use std::process::{Command, Output};

use serde_json::Value;

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the cairn binary runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

#[test]
fn the_demo_plays_a_dispute_to_the_referee_and_inspect_and_prove_read_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("chain");
    let data = data.to_str().unwrap();
    stdout(&cairn(&["ledger", "demo", "--data-dir", data]));

    let text = stdout(&cairn(&["ledger", "inspect", "--data-dir", data]));
    assert!(text.contains("task 0  Settled"), "{text}");
    assert!(text.contains("(commit never revealed)"), "{text}");
    assert!(
        text.contains("won by the challenger (Referee, 1 referee step(s)"),
        "{text}"
    );
    assert!(text.contains("(forfeited)"), "{text}");
    assert!(text.contains("(lost a dispute)"), "{text}");

    let json: Value = serde_json::from_str(&stdout(&cairn(&[
        "ledger",
        "inspect",
        "--data-dir",
        data,
        "--json",
    ])))
    .unwrap();
    let disputes = json["disputes"].as_array().unwrap();
    assert_eq!(disputes.len(), 1);
    let resolved = &disputes[0]["stage"]["Resolved"];
    assert_eq!(resolved["winner"], "Challenger");
    assert_eq!(resolved["referee_steps"], 1);
    // Slashes, forfeits and the dispute lose no token: balances, stakes and escrows add up to
    // the supply.
    let supply_line = text.lines().find(|l| l.starts_with("supply ")).unwrap();
    let numbers: Vec<&str> = supply_line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(numbers.len(), 2, "{supply_line}");
    assert_eq!(numbers[0], numbers[1], "{supply_line}");

    let proof = stdout(&cairn(&[
        "ledger",
        "prove",
        "--data-dir",
        data,
        "--task",
        "0",
        "--round",
        "1",
    ]));
    assert!(
        proof.contains("verified: task 0 round 1 finalized model"),
        "{proof}"
    );

    // The same script gives the same chain.
    let again = dir.path().join("again");
    stdout(&cairn(&[
        "ledger",
        "demo",
        "--data-dir",
        again.to_str().unwrap(),
    ]));
    let root = |text: &str| {
        text.lines()
            .next()
            .and_then(|line| line.split("state root ").nth(1))
            .map(str::to_owned)
    };
    let second = stdout(&cairn(&[
        "ledger",
        "inspect",
        "--data-dir",
        again.to_str().unwrap(),
    ]));
    assert_eq!(root(&text), root(&second));
    assert!(root(&text).is_some());
}

fn file_hash(path: &std::path::Path) -> blake3::Hash {
    blake3::hash(&std::fs::read(path).unwrap())
}

fn failure(output: &Output) -> String {
    assert!(!output.status.success(), "the command succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn reading_commands_never_change_the_ledger_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("chain");
    let data = data.to_str().unwrap();
    stdout(&cairn(&["ledger", "demo", "--data-dir", data]));
    let file = dir.path().join("chain/ledger.redb");
    let before = file_hash(&file);
    for args in [
        &["ledger", "inspect", "--data-dir", data][..],
        &["ledger", "inspect", "--data-dir", data, "--json"],
        &[
            "ledger",
            "prove",
            "--data-dir",
            data,
            "--task",
            "0",
            "--round",
            "0",
        ],
        &["ledger", "verify", "--data-dir", data],
        &["ledger", "verify", "--data-dir", data, "--json"],
    ] {
        stdout(&cairn(args));
        assert_eq!(
            file_hash(&file),
            before,
            "`{}` changed the file",
            args.join(" ")
        );
    }
    let report = stdout(&cairn(&["ledger", "verify", "--data-dir", data]));
    assert!(report.contains("intact"), "{report}");
}

#[test]
fn an_empty_ledger_file_is_an_error_not_an_empty_ledger() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ledger.redb"), b"").unwrap();
    let data = dir.path().to_str().unwrap();
    for args in [
        &["ledger", "inspect", "--data-dir", data][..],
        &[
            "ledger",
            "prove",
            "--data-dir",
            data,
            "--task",
            "0",
            "--round",
            "0",
        ],
        &["ledger", "verify", "--data-dir", data],
    ] {
        let stderr = failure(&cairn(args));
        assert!(
            stderr.contains("is not a Cairn state database: the file is empty"),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::metadata(dir.path().join("ledger.redb"))
            .unwrap()
            .len(),
        0,
        "a read wrote a database into the empty file"
    );
    let missing = dir.path().join("nothing-here");
    let stderr = failure(&cairn(&[
        "ledger",
        "inspect",
        "--data-dir",
        missing.to_str().unwrap(),
    ]));
    assert!(stderr.contains("no ledger at"), "{stderr}");
    assert!(!missing.exists(), "inspect created the data directory");
}

#[test]
fn a_changed_balance_byte_is_refused_and_verify_names_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("chain");
    let data = data.to_str().unwrap();
    stdout(&cairn(&["ledger", "demo", "--data-dir", data]));
    let file = dir.path().join("chain/ledger.redb");
    let accounts = {
        let store = cairn_ledger::store::Store::open_read_only(&file).unwrap();
        store.iter_prefix(b"acct/").unwrap()
    };
    // Change the first byte of one account record wherever its bytes lie in the file (redb
    // copies pages on write, so older copies may exist too), as a disk fault would.
    let (_, value) = &accounts[0];
    let mut bytes = std::fs::read(&file).unwrap();
    let places: Vec<usize> = bytes
        .windows(value.len())
        .enumerate()
        .filter(|(_, window)| window == value)
        .map(|(at, _)| at)
        .collect();
    assert!(!places.is_empty(), "the account record is stored verbatim");
    for at in places {
        bytes[at] ^= 0x01;
    }
    std::fs::write(&file, &bytes).unwrap();
    let damaged = file_hash(&file);

    let stderr = failure(&cairn(&["ledger", "inspect", "--data-dir", data]));
    assert!(stderr.contains("state damaged"), "{stderr}");
    assert!(stderr.contains("acct/"), "{stderr}");
    let verify = cairn(&["ledger", "verify", "--data-dir", data]);
    let stderr = failure(&verify);
    assert!(stderr.contains("is damaged"), "{stderr}");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(report.contains("damaged  state_values  acct/"), "{report}");
    assert_eq!(file_hash(&file), damaged, "reads changed the damaged file");
}

#[test]
fn a_killed_demo_leaves_a_committed_prefix_or_no_ledger() {
    use cairn_ledger::store::Store;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    stdout(&cairn(&[
        "ledger",
        "demo",
        "--data-dir",
        reference.to_str().unwrap(),
    ]));
    let reference = Store::open_read_only(&reference.join("ledger.redb")).unwrap();
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    for attempt in 0..16u64 {
        let data = dir.path().join(format!("killed-{attempt}"));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["ledger", "demo", "--data-dir", data.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(attempt * 3_500));
        child.kill().unwrap();
        let killed = !child.wait().unwrap().success();
        let file = data.join("ledger.redb");
        let inspect = cairn(&["ledger", "inspect", "--data-dir", data.to_str().unwrap()]);
        if file.exists() {
            // Whatever is there is a committed prefix of the reference chain.
            let store = Store::open_read_only(&file)
                .unwrap_or_else(|e| panic!("attempt {attempt}: killed ledger unreadable: {e}"));
            let height = store.height().expect("a readable ledger has a block");
            assert_eq!(
                Some(store.root()),
                reference.root_at(height).unwrap(),
                "attempt {attempt}: height {height} is not the reference chain's"
            );
            stdout(&inspect);
            *outcomes
                .entry(if killed { "prefix" } else { "complete" })
                .or_default() += 1;
        } else {
            let stderr = failure(&inspect);
            assert!(stderr.contains("no ledger at"), "{stderr}");
            *outcomes.entry("no ledger").or_default() += 1;
        }
    }
    eprintln!("killed demo outcomes: {outcomes:?}");
    assert_eq!(outcomes.values().sum::<usize>(), 16);
}
