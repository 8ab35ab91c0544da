//! A real network: `cairn devnet` runs 4 validators, a standby validator and 4 trainers as
//! separate OS processes on loopback (tokio runtime, authenticated p2p over TCP, ledgers in
//! redb). The standby stands with its stake (`cairn validator join`) and votes from a later
//! epoch. A task on `digits` runs 3 rounds through a node's API; one validator is killed with
//! SIGKILL mid-task (the other four, the newcomer among them, are exactly the quorum of five)
//! and the devnet restarts it on its home; every node ends on the same state root; `cairn
//! replay` reproduces every round's model hash from the restarted node's data and from a
//! trainer's.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");

fn cairn(args: &[&str]) -> Output {
    Command::new(CAIRN)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LOG")
        .output()
        .expect("the cairn binary runs")
}

/// `GET path` as JSON, `None` unless 200 (a minimal HTTP/1.1 client; the API is plain HTTP).
fn get(address: &str, path: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}

struct Devnet {
    child: Child,
    dir: PathBuf,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        // SIGTERM: the devnet stops its nodes before it exits.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A base port with 18 free ports above it, below the kernel's ephemeral range.
fn free_base() -> u16 {
    cairn_daemon::devnet::free_base_port(18, std::process::id()).expect("18 free ports")
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

fn status_rows(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("status.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn log_tail(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let log = entry.path().join("node.log");
        if let Ok(text) = std::fs::read_to_string(&log) {
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(8)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn a_devnet_trains_survives_a_sigkill_and_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let base = free_base();
    let child = Command::new(CAIRN)
        .args([
            "devnet",
            "--validators",
            "4",
            "--standby",
            "1",
            "--epoch-length",
            "16",
            "--trainers",
            "4",
            "--dir",
            dir.to_str().unwrap(),
            "--base-port",
            &base.to_string(),
            "--datasets",
            "digits",
            "--quiet",
            "--restart",
            "--status-every",
            "1",
            "--for",
            "600",
        ])
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LOG", "warn,cairn_daemon=info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cairn devnet starts");
    let net = Devnet {
        child,
        dir: dir.clone(),
    };
    let api: Vec<String> = (0..9)
        .map(|i| format!("127.0.0.1:{}", base + 2 * i + 1))
        .collect();
    let validator = api[0].clone();
    let standby = api[4].clone();
    let trainer = api[5].clone();

    // Every node runs and follows the chain; the standby observes consensus.
    wait_for("9 nodes at height 2", Duration::from_secs(120), || {
        api.iter()
            .all(|a| get(a, "/status").is_some_and(|s| s["height"].as_u64().unwrap_or(0) >= 2))
    });
    let before = get(&standby, "/status").unwrap();
    assert_eq!(before["consensus"]["member"], false, "{before}");
    assert_eq!(before["consensus"]["validators"], 4, "{before}");

    // The standby stands with its stake and votes from the epoch after the next boundary; the
    // task is created after that, so the newcomer volunteers as one of its validators (up to
    // five, four of them needed for availability). Its first round must count the updates:
    // trainers reach a newly elected validator only once they dial it, and asking it for `M_0`
    // first used to cost round 0 (the replay below checks every round's updates).
    let joined = cairn(&[
        "validator",
        "join",
        "--node",
        &standby,
        "--stake",
        "10000",
        "--wait",
        "--timeout",
        "120",
    ]);
    assert!(
        joined.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&joined.stderr),
        log_tail(&net.dir)
    );
    let after = get(&standby, "/status").unwrap();
    assert_eq!(after["consensus"]["voting"], true, "{after}");
    assert_eq!(after["consensus"]["validators"], 5, "{after}");
    let entered = after["consensus"]["epoch"].as_u64().unwrap();
    assert!(entered >= 1, "{after}");
    let set = get(&validator, "/validators").unwrap();
    assert_eq!(set["validators"].as_array().unwrap().len(), 5, "{set}");
    assert!(
        set["validators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "standby-0"),
        "{set}"
    );

    let created = cairn(&[
        "task",
        "create",
        "--node",
        &validator,
        "--dataset",
        "digits",
        "--rounds",
        "3",
        "--trainers",
        "4",
        "--validators",
        "4",
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    wait_for("task 0 running", Duration::from_secs(180), || {
        get(&validator, "/tasks/0").is_some_and(|t| t["status"]["Running"].is_object())
    });

    // Mid-task: once round 1 runs, SIGKILL validator-1; the devnet restarts it on its home.
    wait_for("round 1 of task 0", Duration::from_secs(180), || {
        get(&validator, "/tasks/0").is_some_and(|t| {
            t["status"]["Running"]["round"].as_u64().unwrap_or(0) >= 1 || t["status"] == "Finished"
        })
    });
    let victim = status_rows(&net.dir)
        .into_iter()
        .find(|row| row["name"] == "validator-1")
        .and_then(|row| row["pid"].as_u64())
        .expect("validator-1 runs");
    assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGKILL) }, 0);
    wait_for("validator-1 restarted", Duration::from_secs(30), || {
        status_rows(&net.dir).iter().any(|row| {
            row["name"] == "validator-1"
                && row["restarts"].as_u64() == Some(1)
                && row["pid"].as_u64().is_some_and(|pid| pid != victim)
        })
    });

    // The task finishes its 3 rounds.
    let finished = cairn(&[
        "task",
        "status",
        "--node",
        &validator,
        "--task",
        "0",
        "--wait-round",
        "3",
        "--timeout",
        "300",
    ]);
    assert!(
        finished.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&finished.stderr),
        log_tail(&net.dir)
    );

    // Every node, the restarted validator included, reaches the same height with the same root.
    let target = get(&validator, "/status").unwrap()["height"]
        .as_u64()
        .unwrap();
    wait_for(
        "every node at the validator's height",
        Duration::from_secs(120),
        || {
            api.iter().all(|a| {
                get(a, "/status").is_some_and(|s| s["height"].as_u64().unwrap_or(0) >= target)
            })
        },
    );
    let roots: Vec<String> = api
        .iter()
        .map(|a| {
            get(a, &format!("/blocks/{target}")).unwrap()["state_root"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        roots.windows(2).all(|w| w[0] == w[1]),
        "state roots at {target} differ: {roots:?}"
    );

    // The chain went through later epochs with the newcomer in the set.
    let last = get(&standby, "/status").unwrap();
    assert!(
        last["consensus"]["epoch"].as_u64().unwrap() > entered,
        "{last}"
    );
    assert_eq!(last["consensus"]["voting"], true, "{last}");

    // The model changed, and every round replays to the ledger's hash from the restarted
    // validator's data and from a trainer's.
    let task = get(&validator, "/tasks/0").unwrap();
    assert_ne!(task["model_hash"], task["spec"]["initial_model"]);
    for node in [&api[1], &trainer] {
        let nodes = format!("{node},{}", api.join(","));
        let replayed = cairn(&["replay", "--node", &nodes, "--task", "0", "--json"]);
        assert!(
            replayed.status.success(),
            "{}",
            String::from_utf8_lossy(&replayed.stderr)
        );
        let reports: Value = serde_json::from_slice(&replayed.stdout).unwrap();
        let reports = reports.as_array().unwrap();
        assert_eq!(reports.len(), 3);
        assert!(reports.iter().all(|r| r["matches"] == true), "{reports:?}");
        assert!(
            reports.iter().all(|r| r["updates"].as_u64().unwrap() >= 3),
            "{reports:?}\n{}",
            log_tail(&net.dir)
        );
    }

    // Metrics and health answer like a scrape target.
    let metrics = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&validator).unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    };
    assert!(metrics.contains("cairn_finalized_height"));
    assert!(metrics.contains("cairn_consensus_epoch"));
    assert!(metrics.contains("cairn_consensus_voting 1"));
    assert!(metrics.contains("cairn_block_interval_seconds_count"));
    drop(net);
}
