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
