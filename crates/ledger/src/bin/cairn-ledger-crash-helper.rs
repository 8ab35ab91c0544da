//! Crash-test helper for the ledger's state store: commits synthetic blocks until killed.
//!
//! `cairn-ledger-crash-helper <store path> <seed> [changes per block] [max height]` opens (or
//! creates) the store, then commits block after block of the deterministic synthetic workload
//! (`cairn_ledger::store::synthetic`), printing each height on its own line once its commit has
//! returned. `tests/crash_safety.rs` kills it with SIGKILL at varied points and checks that the
//! reopened store lost nothing it reported. Not meant for anything else.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use cairn_ledger::store::synthetic::Workload;
use cairn_ledger::store::Store;

/// Keys the crash workload draws from: small enough that blocks update and delete existing keys.
const KEY_SPACE: u64 = 4096;
/// Out of 256, the share of changes that delete.
const DELETE_WEIGHT: u8 = 48;

fn parse<T: std::str::FromStr>(
    arg: Option<String>,
    name: &str,
    default: Option<T>,
) -> Result<T, String> {
    match (arg, default) {
        (Some(text), _) => text
            .parse()
            .map_err(|_| format!("{name}: cannot parse `{text}`")),
        (None, Some(value)) => Ok(value),
        (None, None) => Err(format!("missing argument <{name}>")),
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path: PathBuf = parse(args.next(), "store path", None)?;
    let seed: u64 = parse(args.next(), "seed", None)?;
    let changes_per_block: usize = parse(args.next(), "changes per block", Some(64))?;
    let max_height: u64 = parse(args.next(), "max height", Some(u64::MAX - 1))?;
    let workload = Workload {
        seed,
        changes_per_block,
        key_space: KEY_SPACE,
        delete_weight: DELETE_WEIGHT,
    };
    let mut store = Store::open(&path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let stdout = std::io::stdout();
    loop {
        let height = store.next_height();
        if height > max_height {
            return Ok(());
        }
        let changes = workload.block(height);
        store
            .commit(height, &changes, &workload.record(height, &changes))
            .map_err(|e| format!("committing height {height}: {e}"))?;
        let mut out = stdout.lock();
        writeln!(out, "{height}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("reporting height {height}: {e}"))?;
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cairn-ledger-crash-helper: {message}");
            ExitCode::FAILURE
        }
    }
}
