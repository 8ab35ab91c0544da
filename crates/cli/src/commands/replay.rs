//! `cairn replay`: recompute finalized rounds from public data and check the ledger's hashes.

use std::path::PathBuf;

use anyhow::{bail, Context};
use cairn_daemon::client::{closed_rounds, Client};
use cairn_daemon::replay::replay;
use cairn_ledger::DatasetRegistry;

const HELP: &str = "\
Examples:
  cairn replay --node 127.0.0.1:30301 --task 0 --round 2
  cairn replay --node 127.0.0.1:30301 --task 0           # every closed round
  cairn replay --node 127.0.0.1:30303 --node 127.0.0.1:30301 --task 0 --json

Fetches the task's and the round's ledger records from the first node and the round's blobs
(input model, previous input model, every update that counted) by hash from the first node that
serves each (a node that was down during a round never fetched its updates), runs the aggregation validators
ran, and compares M_{r+1}'s hash with the one the ledger recorded. Exit status 1 on a mismatch.
Ask several nodes: each must reproduce the same hashes.";

/// Arguments of `cairn replay`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct ReplayArgs {
    /// Node APIs (HOST:PORT or http://HOST:PORT; repeat or comma-separate): ledger records
    /// come from the first, each blob from the first node that serves it.
    #[arg(
        long = "node",
        env = "CAIRN_NODE",
        value_delimiter = ',',
        required = true
    )]
    nodes: Vec<String>,
    /// Task id.
    #[arg(long)]
    task: u64,
    /// Round (default: every round that closed).
    #[arg(long)]
    round: Option<u32>,
    /// Directory of the built-in datasets (default CAIRN_DATA_DIR or data/).
    #[arg(long, env = "CAIRN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `cairn replay`.
pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let nodes: Vec<Client> = args.nodes.iter().map(|n| Client::new(n)).collect();
    let client = &nodes[0];
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => cairn_ml::data::default_data_dir()?,
    };
    let registry = DatasetRegistry::with_builtins(&data_dir).context("loading the datasets")?;
    let rounds: Vec<u32> = match args.round {
        Some(round) => vec![round],
        None => {
            let task = client.get_json(&format!("/tasks/{}", args.task))?;
            let closed = closed_rounds(&task);
            (0..u32::try_from(closed).unwrap_or(0)).collect()
        }
    };
    if rounds.is_empty() {
        bail!("task {} has no closed round yet", args.task);
    }
    let mut reports = Vec::new();
    for round in rounds {
        reports.push(replay(&nodes, &registry, args.task, round)?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for report in &reports {
            println!(
                "task {} round {}: {} updates · recorded {} · recomputed {} · {}",
                report.task,
                report.round,
                report.updates,
                &report.recorded[..16],
                &report.recomputed[..16],
                if report.matches { "match" } else { "MISMATCH" }
            );
        }
    }
    if reports.iter().any(|r| !r.matches) {
        bail!("a replayed model hash differs from the ledger's");
    }
    Ok(())
}
