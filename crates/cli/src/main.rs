//! `cairn`: decentralized machine learning with robust aggregation and a verifiable ledger.

mod commands;
mod output;

use std::io::IsTerminal as _;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Cairn: untrusted nodes train a model together; every step is checked and recorded.
///
/// Each subcommand has its own --help with every option and its default. Logs go to stderr and
/// are filtered by RUST_LOG (for example RUST_LOG=cairn=debug); the default level is `warn`.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a whole network (trainers, validators, attackers) on one machine; write a report.
    Simulate(commands::simulate::SimulateArgs),
    /// Sweep a scenario's parameters over many seeds: each attack's profit and its frontier.
    Economics(commands::economics::EconomicsArgs),
    /// Measure robust rules against attacks on skewed data: partitions x defences x attacks x seeds.
    Robustness(commands::robustness::RobustnessArgs),
    /// Train a model centrally, bit-exactly (the baseline federated runs are compared with).
    Train(commands::train::TrainArgs),
    /// Combine an (n, d) .npy array of updates with a Byzantine-robust rule.
    Aggregate(commands::aggregate::AggregateArgs),
    /// Craft Byzantine updates from an (n, d) .npy array of honest ones.
    Attack(commands::attack::AttackArgs),
    /// Create, fill and read a ledger data directory (genesis, demo, inspect, prove).
    Ledger(commands::ledger::LedgerArgs),
    /// Generate or show a node's key file.
    Keys(commands::keys::KeysArgs),
    /// Write a chain file (genesis.json) from a TOML description or flags.
    Genesis(commands::genesis::GenesisArgs),
    /// Run one node of a real network (TCP, authenticated p2p, ledger on disk, HTTP API).
    Node(commands::node::NodeArgs),
    /// Run a whole chain on this machine, one process per node, on loopback.
    Devnet(commands::devnet::DevnetArgs),
    /// Create tasks on a running network and follow them, through a node's API.
    Task(commands::task::TaskArgs),
    /// Recompute finalized rounds from a node's public data and check the ledger's model hashes.
    Replay(commands::replay::ReplayArgs),
    /// Export a running network's models (safetensors, loads in PyTorch).
    Model(commands::model::ModelArgs),
    /// Show the validator set, or stand for it or leave it with a node's stake (epochs).
    Validator(commands::validator::ValidatorArgs),
}

fn main() -> anyhow::Result<()> {
    restore_default_sigpipe();
    quiet_contained_panics();
    let cli = Cli::parse();
    // A node and a devnet say what they do at `info`; one-shot commands only warn.
    let (level, json) = match &cli.command {
        Command::Node(args) => ("info", args.log_format == commands::node::LogFormat::Json),
        Command::Devnet(_) => ("info", false),
        _ => ("warn", false),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        // Colour codes only for a person at a terminal, never in a file or a pipe.
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    match cli.command {
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Economics(args) => commands::economics::run(args),
        Command::Robustness(args) => commands::robustness::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Aggregate(args) => commands::aggregate::run(args),
        Command::Attack(args) => commands::attack::run(args),
        Command::Ledger(args) => commands::ledger::run(args),
        Command::Keys(args) => commands::keys::run(args),
        Command::Genesis(args) => commands::genesis::run(args),
        Command::Node(args) => commands::node::run(args),
        Command::Devnet(args) => commands::devnet::run(args),
        Command::Task(args) => commands::task::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Model(args) => commands::model::run(args),
        Command::Validator(args) => commands::validator::run(args),
    }
}

/// Keeps the report of a panic that a library contains off stderr.
///
/// The ledger's state store runs its database library under `catch_unwind` and turns a panic on
/// a damaged file into "state database is damaged", which this binary prints. Rust's default
/// hook would first print "thread 'main' panicked at ..." and a RUST_BACKTRACE hint, raw text
/// for a failure that is handled. The store says when it is containing
/// (`cairn_ledger::store::containing_panics`); every other panic is a bug and is reported by the
/// default hook as before.
fn quiet_contained_panics() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !cairn_ledger::store::containing_panics() {
            default_hook(info);
        }
    }));
}

/// Lets a closed stdout end the process the way Unix tools do (`cairn ledger inspect | head`),
/// instead of Rust's default of ignoring SIGPIPE and panicking in `println!`.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
