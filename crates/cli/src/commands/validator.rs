//! `cairn validator status|join|leave`: the validator set, which follows stake through epochs.

use std::time::{Duration, Instant};

use anyhow::bail;
use cairn_daemon::client::Client;
use serde_json::{json, Value};

const HELP: &str = "\
Examples:
  cairn validator status --node 127.0.0.1:30301
  cairn validator join   --node 127.0.0.1:30309 --stake 1000000 --wait
  cairn validator leave  --node 127.0.0.1:30309

On a chain with epochs (params.epoch_length > 0) the validator set is taken from stake at the
last block of every epoch. `join` asks YOUR node (started with --role validator; its API must
be yours: the request spends its tokens) to bond what its stake lacks and to stand with that
weight; it enters the set at the next boundary, votes from the epoch after it, and joins
tasks as a validator with that weight as its bond. `leave` withdraws the candidacy: the node
leaves the set at the next boundary and keeps following the chain. Its stake stays bonded:
unbond it with the ledger once it has left (unbond_delay blocks later it is spendable).";

/// Arguments of `cairn validator`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct ValidatorArgs {
    #[command(subcommand)]
    command: ValidatorCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ValidatorCommand {
    /// Show the epochs, the current validator set and the standing candidates.
    Status(StatusArgs),
    /// Stand for the validator set with a node's own key (bonding what its stake lacks).
    Join(JoinArgs),
    /// Withdraw a node's candidacy: it leaves the set at the next epoch boundary.
    Leave(LeaveArgs),
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// A node's API (HOST:PORT or http://HOST:PORT).
    #[arg(long, env = "CAIRN_NODE")]
    node: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The node that stands or leaves, and how long to wait for it.
#[derive(Debug, clap::Args)]
struct Target {
    /// The API of the node (it signs with its own key).
    #[arg(long, env = "CAIRN_NODE")]
    node: String,
    /// Wait until the change took effect (voting for `join`, out of the set for `leave`).
    #[arg(long)]
    wait: bool,
    /// Seconds to wait at most.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// The node's API token (needed unless the node is on loopback and has none).
    #[arg(long, env = "CAIRN_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
}

#[derive(Debug, clap::Args)]
struct JoinArgs {
    #[command(flatten)]
    target: Target,
    /// Weight to stand with, in base units (at least the chain's min_bond).
    #[arg(long)]
    stake: u128,
}

#[derive(Debug, clap::Args)]
struct LeaveArgs {
    #[command(flatten)]
    target: Target,
}

/// Posts the candidacy and, with `--wait`, polls the node's status until `done` holds.
fn stand(target: Target, stake: u128, done: impl Fn(&Value) -> bool) -> anyhow::Result<()> {
    let client = Client::new(&target.node).with_token(target.api_token);
    let body = json!({ "stake": stake.to_string() }).to_string();
    let answer = client.post_text("/validators", &body)?;
    let sent = answer["transactions"].as_array().map_or(0, Vec::len);
    let address = answer["address"].as_str().unwrap_or("?");
    if stake == 0 {
        println!(
            "{}: {address} withdraws its candidacy ({sent} transaction(s) sent)",
            client.base()
        );
    } else {
        println!(
            "{}: {address} stands with {stake} ({sent} transaction(s) sent)",
            client.base()
        );
    }
    let set = client.get_json("/validators")?;
    if let Some(boundary) = set["next_boundary"].as_u64() {
        println!(
            "the next set is taken at block {boundary} (epoch {} ends there)",
            set["epoch"]
        );
    }
    if !target.wait {
        return Ok(());
    }
    let limit = Duration::from_secs(target.timeout);
    let started = Instant::now();
    loop {
        let status = client.get_json("/status")?;
        let consensus = &status["consensus"];
        if done(consensus) {
            println!(
                "epoch {}: {} of {} validators",
                consensus["epoch"],
                if consensus["member"].as_bool() == Some(true) {
                    "member"
                } else {
                    "not a member"
                },
                consensus["validators"]
            );
            return Ok(());
        }
        if started.elapsed() >= limit {
            bail!(
                "still not there after {} s: epoch {}, member {}, at height {}",
                limit.as_secs(),
                consensus["epoch"],
                consensus["member"],
                status["height"]
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs `cairn validator`.
pub fn run(args: ValidatorArgs) -> anyhow::Result<()> {
    match args.command {
        ValidatorCommand::Status(status) => {
            let client = Client::new(&status.node);
            let set = client.get_json("/validators")?;
            if status.json {
                println!("{}", serde_json::to_string_pretty(&set)?);
                return Ok(());
            }
            match set["epoch_length"].as_u64() {
                Some(0) | None => println!(
                    "height {} · the genesis set validates for the chain's life (no epochs)",
                    set["height"]
                ),
                Some(length) => println!(
                    "height {} · epoch {} of {length} blocks · next set taken at block {}",
                    set["height"], set["epoch"], set["next_boundary"]
                ),
            }
            println!("{:<42} {:<14} {:>14}", "validator", "name", "weight");
            for line in set["validators"].as_array().into_iter().flatten() {
                println!(
                    "{:<42} {:<14} {:>14}",
                    line["address"].as_str().unwrap_or("?"),
                    line["name"].as_str().unwrap_or("-"),
                    line["weight"].as_str().unwrap_or("?")
                );
            }
            let roster = set["roster"].as_array().cloned().unwrap_or_default();
            if !roster.is_empty() {
                println!(
                    "{:<42} {:<14} {:>14} {:>14}",
                    "candidate", "name", "offered", "bonded"
                );
                for line in roster {
                    println!(
                        "{:<42} {:<14} {:>14} {:>14}",
                        line["address"].as_str().unwrap_or("?"),
                        line["name"].as_str().unwrap_or("-"),
                        line["stake"].as_str().unwrap_or("?"),
                        line["bonded"].as_str().unwrap_or("?")
                    );
                }
            }
        }
        ValidatorCommand::Join(join) => {
            if join.stake == 0 {
                bail!("--stake 0 withdraws: use `cairn validator leave`");
            }
            stand(join.target, join.stake, |consensus| {
                consensus["voting"].as_bool() == Some(true)
            })?;
        }
        ValidatorCommand::Leave(leave) => {
            stand(leave.target, 0, |consensus| {
                consensus["member"].as_bool() == Some(false)
            })?;
        }
    }
    Ok(())
}
