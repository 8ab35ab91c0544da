//! The deployment commands refuse what cannot work with an error that says what to do, and never
//! overwrite a key: `cairn keys`, `cairn genesis`, `cairn node` on a bad home or a busy port.

use std::net::TcpListener;
use std::process::{Command, Output};

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LOG")
        .env_remove("CAIRN_HOME")
        .output()
        .expect("the cairn binary runs")
}

fn refused(args: &[&str]) -> String {
    let output = cairn(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "`{}` succeeded", args.join(" "));
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn ok(args: &[&str]) -> String {
    let output = cairn(args);
    assert!(
        output.status.success(),
        "`{}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn keys_are_generated_once_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("node");
    let home = home.to_str().unwrap();
    let made = ok(&["keys", "generate", "--home", home]);
    assert!(made.contains("mode 0600"));
    let before = std::fs::read(dir.path().join("node/key.json")).unwrap();
    assert!(refused(&["keys", "generate", "--home", home]).contains("refusing to overwrite"));
    assert_eq!(
        std::fs::read(dir.path().join("node/key.json")).unwrap(),
        before
    );
    let shown = ok(&["keys", "show", "--home", home, "--json"]);
    let parts: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert!(made.contains(parts["public_key"].as_str().unwrap()));
    std::fs::write(
        dir.path().join("node/key.json"),
        &before[..before.len() / 2],
    )
    .unwrap();
    assert!(refused(&["keys", "show", "--home", home]).contains("key file"));
}

#[test]
fn a_node_says_what_its_home_lacks_and_which_port_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("v0");
    let home_str = home.to_str().unwrap();
    assert!(refused(&["node", "--home", home_str]).contains("not a directory"));
    std::fs::create_dir_all(&home).unwrap();
    assert!(refused(&["node", "--home", home_str]).contains("cairn keys generate"));
    ok(&["keys", "generate", "--home", home_str]);
    assert!(refused(&["node", "--home", home_str]).contains("cairn genesis"));

    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let key = home.join("key.json");
    let genesis = home.join("genesis.json");
    let validator = format!("v0={}@127.0.0.1:{port}", key.display());
    ok(&[
        "genesis",
        "--chain-id",
        "3",
        "--dataset",
        "digits",
        "--validator",
        &validator,
        "--out",
        genesis.to_str().unwrap(),
    ]);
    assert!(refused(&[
        "genesis",
        "--validator",
        &validator,
        "--out",
        genesis.to_str().unwrap()
    ])
    .contains("--force"));
    let listen = format!("127.0.0.1:{port}");
    // A validator's key run as a trainer would leave consensus a vote short.
    assert!(
        refused(&["node", "--home", home_str, "--role", "trainer", "--listen", &listen])
            .contains("--role validator")
    );
    let stderr = refused(&[
        "node",
        "--home",
        home_str,
        "--role",
        "validator",
        "--listen",
        &listen,
        "--network",
        "local",
    ]);
    assert!(stderr.contains("cannot be bound"), "{stderr}");
    assert!(stderr.contains(&listen), "{stderr}");
    drop(busy);
}

#[test]
fn genesis_refuses_bad_members() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("genesis.json");
    let out = out.to_str().unwrap();
    assert!(refused(&["genesis", "--out", out]).contains("--validator"));
    assert!(refused(&["genesis", "--validator", "v0", "--out", out]).contains("NAME=KEY"));
    let key = "ab".repeat(32);
    let stderr = refused(&[
        "genesis",
        "--validator",
        &format!("v0={key}"),
        "--account",
        &format!("t0={key}"),
        "--out",
        out,
    ]);
    assert!(
        stderr.contains("shares its public key") || stderr.contains("ed25519"),
        "{stderr}"
    );
}
