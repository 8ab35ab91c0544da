//! `cairn devnet`: a local chain, one OS process per node.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use cairn_daemon::devnet::{self, DevnetConfig, Manifest, Supervisor};

const HELP: &str = "\
Examples:
  cairn devnet                                         # 4 validators + 8 trainers in cairn-devnet/
  cairn devnet --validators 4 --trainers 4 --dir /tmp/net --restart
  cairn devnet --dir /tmp/net --keep                   # run the same chain again, state kept
  cairn devnet --standby 1 --epoch-length 20           # then: cairn validator join --node <standby-0's API> --stake 10000
  cairn task create --node 127.0.0.1:30301 --dataset digits --rounds 3   # in another terminal

Ctrl-C stops every node (SIGTERM, then SIGKILL after 10 s).";

const LONG_HELP: &str = "\
WHAT IT DOES
  Writes a home per node under --dir (a fresh key, the shared genesis.json, a config.toml with
  loopback ports: node i listens for p2p on base-port + 2i and serves its API on the next port),
  checks every port is free, then starts `cairn node --home DIR/NAME` for each node as its own
  OS process. Each node's output goes to DIR/NAME/node.log, each line prefixed with [NAME], and
  to this terminal unless --quiet. Every --status-every seconds it prints a status table (pid,
  restarts, height, state root, exit) and writes it to DIR/status.json.

  Validators are validator-0.., standby validators standby-0.., trainers trainer-0..; every node
  gets --balance tokens and each validator --stake bonded. Nodes join every task they can
  (trainers train, validators validate). The validator set follows stake: at the last block of
  every epoch (--epoch-length blocks) the ledger takes the next set from the standing
  candidates, and a standby that stood (`cairn validator join`) votes from the epoch after.

OPTIONS WORTH KNOWING
  --keep      reuse the devnet in --dir (its keys, chain and state) instead of writing a new one
  --restart   start a node again when it exits (e.g. after `kill -9`): crash recovery, live
  --for S     stop everything after S seconds (scripts, CI)";

/// Arguments of `cairn devnet`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP, after_long_help = LONG_HELP)]
pub struct DevnetArgs {
    /// Validators.
    #[arg(long, default_value_t = 4, env = "CAIRN_DEVNET_VALIDATORS")]
    pub validators: usize,
    /// Standby validators (standby-0..): validator nodes with tokens but no stake, which
    /// observe consensus until `cairn validator join` makes them stand and an epoch elects them.
    #[arg(long, default_value_t = 0, env = "CAIRN_DEVNET_STANDBY")]
    pub standby: usize,
    /// Trainers.
    #[arg(long, default_value_t = 8, env = "CAIRN_DEVNET_TRAINERS")]
    pub trainers: usize,
    /// Blocks per consensus epoch; the validator set is taken from stake at each epoch's last
    /// block (0: the genesis set validates for the chain's life).
    #[arg(long, default_value_t = devnet::DEFAULT_EPOCH_LENGTH, env = "CAIRN_DEVNET_EPOCH_LENGTH")]
    pub epoch_length: u64,
    /// Directory holding the nodes' homes.
    #[arg(long, default_value = "cairn-devnet", env = "CAIRN_DEVNET_DIR")]
    pub dir: PathBuf,
    /// Reuse the devnet already in --dir.
    #[arg(long)]
    pub keep: bool,
    /// First port (p2p of validator-0; its API is the next one).
    #[arg(long, default_value_t = 30300, env = "CAIRN_DEVNET_BASE_PORT")]
    pub base_port: u16,
    /// Chain id.
    #[arg(long, default_value_t = 1)]
    pub chain_id: u64,
    /// Datasets the chain serves, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "digits,mnist_5k")]
    pub datasets: Vec<String>,
    /// Pause before each proposal, ms.
    #[arg(long, default_value_t = 400)]
    pub block_interval_ms: u64,
    /// Each validator's bonded stake.
    #[arg(long, default_value_t = 10_000)]
    pub stake: u128,
    /// Every member's balance.
    #[arg(long, default_value_t = 10_000_000)]
    pub balance: u128,
    /// Restart a node that exits.
    #[arg(long)]
    pub restart: bool,
    /// Do not echo the nodes' logs here (they still go to DIR/NAME/node.log).
    #[arg(long)]
    pub quiet: bool,
    /// Seconds between status tables.
    #[arg(long, default_value_t = 10)]
    pub status_every: u64,
    /// Stop after this many seconds.
    #[arg(long = "for", value_name = "SECONDS")]
    pub duration: Option<u64>,
}

/// Runs `cairn devnet`.
pub fn run(args: DevnetArgs) -> anyhow::Result<()> {
    let manifest = if args.keep && Manifest::path(&args.dir).exists() {
        let manifest = Manifest::read(&args.dir)?;
        devnet::check_ports(&manifest)?;
        manifest
    } else {
        devnet::write(&DevnetConfig {
            validators: args.validators,
            standby: args.standby,
            trainers: args.trainers,
            epoch_length: args.epoch_length,
            dir: args.dir.clone(),
            base_port: args.base_port,
            chain_id: args.chain_id,
            datasets: args.datasets.clone(),
            block_interval_ms: args.block_interval_ms,
            stake: args.stake,
            balance: args.balance,
        })?
    };
    let binary = std::env::current_exe().context("finding the cairn executable")?;
    let stop = devnet::install_stop_handler();
    let mut supervisor = Supervisor::new(binary, &manifest, !args.quiet, Vec::new());
    supervisor.start_all()?;
    println!(
        "devnet: {} nodes in {}; APIs:",
        manifest.nodes.len(),
        args.dir.display()
    );
    for node in &manifest.nodes {
        println!("  {:<14} http://{}", node.name, node.http);
    }
    let started = Instant::now();
    let mut last_table = Instant::now();
    let status_path = args.dir.join("status.json");
    loop {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            println!("devnet: stopping every node");
            break;
        }
        if args
            .duration
            .is_some_and(|seconds| started.elapsed() >= Duration::from_secs(seconds))
        {
            println!("devnet: --for elapsed; stopping every node");
            break;
        }
        for event in supervisor.poll(args.restart)? {
            println!("devnet: {event}");
        }
        if last_table.elapsed() >= Duration::from_secs(args.status_every.max(1)) {
            let rows = supervisor.status();
            print!("{}", devnet::table(&rows));
            std::fs::write(&status_path, serde_json::to_string_pretty(&rows)? + "\n")
                .with_context(|| format!("writing {}", status_path.display()))?;
            last_table = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    supervisor.stop_all(Duration::from_secs(10));
    let rows = supervisor.status();
    print!("{}", devnet::table(&rows));
    std::fs::write(&status_path, serde_json::to_string_pretty(&rows)? + "\n")?;
    Ok(())
}
