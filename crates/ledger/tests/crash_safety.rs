//! Crash safety of the durable store: a writer killed with SIGKILL at varied points never loses a
//! block it reported committed, and the reopened store equals a clean in-memory replay.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use cairn_ledger::store::synthetic::Workload;
use cairn_ledger::store::{MemoryStore, Store};

/// Kill-and-reopen rounds; together they stay well under a minute on a small machine.
const ROUNDS: u64 = 30;
/// Seed shared with the helper: the replay must generate the very blocks it committed.
const SEED: u64 = 0xC0FFEE;
/// Changes per block, as passed to the helper.
const CHANGES_PER_BLOCK: usize = 64;

/// Must match the helper's constants (`src/bin/cairn-ledger-crash-helper.rs`).
fn workload() -> Workload {
    Workload {
        seed: SEED,
        changes_per_block: CHANGES_PER_BLOCK,
        key_space: 4096,
        delete_weight: 48,
    }
}

/// Parses one reported height; anything else is a test failure worth seeing.
fn reported_height(line: std::io::Result<String>) -> u64 {
    let line = line.expect("reading the helper's output");
    line.trim()
        .parse()
        .unwrap_or_else(|_| panic!("helper printed `{line}`, expected a height"))
}

#[test]
fn sigkilled_writer_never_loses_a_reported_block_and_matches_replay() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("state.redb");
    let workload = workload();
    let mut replay = MemoryStore::new();
    let mut last_reported: Option<u64> = None;
    let mut mid_run_kills = 0;

    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn-ledger-crash-helper"))
            .arg(&path)
            .arg(SEED.to_string())
            .arg(CHANGES_PER_BLOCK.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning the crash helper");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();

        // Vary where the kill lands: after 1..=9 reported blocks, then 0..12 ms more, so some
        // kills hit the middle of a commit and some land between commits (or after several).
        let wait_for = 1 + (round * 7) % 9;
        for _ in 0..wait_for {
            let height = reported_height(lines.next().expect("helper exited early"));
            last_reported = Some(height);
        }
        std::thread::sleep(Duration::from_micros((round * 1733) % 12_000));
        child.kill().expect("sending SIGKILL");
        let status = child.wait().expect("reaping the helper");
        if !status.success() {
            mid_run_kills += 1;
        }
        // Heights printed before the kill but not read yet were committed too.
        for line in lines {
            last_reported = Some(reported_height(line));
        }

        let store = Store::open(&path).expect("reopening after SIGKILL");
        let height = store.height().expect("at least one block committed");
        let reported = last_reported.expect("at least one block reported");
        assert!(
            height >= reported,
            "round {round}: store at height {height} lost reported block {reported}"
        );
        while replay.height() != Some(height) {
            let next = replay.next_height();
            let changes = workload.block(next);
            let root = replay
                .commit(next, &changes, &workload.record(next, &changes))
                .expect("replaying a block in memory");
            assert_eq!(
                store.root_at(next).expect("reading a root"),
                Some(root),
                "round {round}: root of height {next} differs from the replay"
            );
            assert_eq!(
                store.block_record(next).expect("reading a block record"),
                replay.block_record(next).expect("replayed record"),
                "round {round}: record of height {next} differs from the replay"
            );
        }
        assert_eq!(store.root(), replay.root(), "round {round}: final root");
        assert_eq!(store.root_at(height + 1).expect("reading a root"), None);
        store
            .audit()
            .expect("the reopened store passes a full audit");
    }
    eprintln!(
        "crash rounds: {ROUNDS}, killed mid-run: {mid_run_kills}, final height: {:?}",
        replay.height()
    );
    assert!(mid_run_kills > 0, "no helper was actually killed");
    assert!(
        replay.height() >= Some(ROUNDS),
        "too few blocks committed to mean much"
    );
}
