//! `cairn genesis`: a chain file (genesis.json) from a TOML description or flags.

use std::path::PathBuf;

use anyhow::{bail, Context};
use cairn_daemon::chain::{ChainFile, Member};
use cairn_daemon::keyfile;
use cairn_ledger::genesis::Params;

const HELP: &str = "\
Examples:
  cairn genesis --from chain.toml --out genesis.json
  cairn genesis --chain-id 7 --dataset digits \\
      --validator v0=node0/key.json@10.0.0.1:30300 --validator v1=node1/key.json@10.0.0.2:30300 \\
      --account t0=node2/key.json --stake 10000 --balance 10000000 --out genesis.json

A validator or account is NAME=KEY[@HOST:PORT], KEY being a key file or a 64-hex public key.
Validators get --stake bonded and --balance spendable; accounts (trainers, creators) get
--balance. A validator's HOST:PORT makes it a bootstrapper. Copy the one genesis.json into every
node's home: nodes whose chain files differ refuse each other.";

const LONG_HELP: &str = "\
THE TOML DESCRIPTION (--from)
  chain_id = 7
  datasets = [\"digits\"]           # digits, mnist_5k, fashion_mnist (every node must hold them)
  [params]                         # optional; any field left out takes its default
  min_bond = 100
  [[validators]]
  name = \"v0\"
  public_key = \"<64 hex>\"          # cairn keys show
  stake = 10000
  balance = 10000000
  p2p = \"10.0.0.1:30300\"
  [[accounts]]
  name = \"t0\"
  public_key = \"<64 hex>\"
  balance = 10000000";

/// Arguments of `cairn genesis`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP, after_long_help = LONG_HELP)]
pub struct GenesisArgs {
    /// Chain description (TOML, or a genesis.json to check and rewrite).
    #[arg(long, env = "CAIRN_GENESIS_FROM", conflicts_with_all = ["validators", "accounts"])]
    from: Option<PathBuf>,
    /// Chain id (with flags).
    #[arg(long, default_value_t = 1, env = "CAIRN_CHAIN_ID")]
    chain_id: u64,
    /// Dataset the chain serves (repeat; with flags).
    #[arg(
        long = "dataset",
        default_value = "digits",
        env = "CAIRN_DATASETS",
        value_delimiter = ','
    )]
    datasets: Vec<String>,
    /// A validator: NAME=KEY[@HOST:PORT] (repeat).
    #[arg(long = "validator")]
    validators: Vec<String>,
    /// An account (trainer, creator): NAME=KEY (repeat).
    #[arg(long = "account")]
    accounts: Vec<String>,
    /// Each validator's bonded stake (with flags).
    #[arg(long, default_value_t = 10_000)]
    stake: u128,
    /// Each member's spendable balance (with flags).
    #[arg(long, default_value_t = 10_000_000)]
    balance: u128,
    /// Where to write the chain file (JSON).
    #[arg(long, default_value = "genesis.json", env = "CAIRN_GENESIS_OUT")]
    out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
}

fn member(spec: &str, stake: u128, balance: u128, validator: bool) -> anyhow::Result<Member> {
    let (name, rest) = spec
        .split_once('=')
        .with_context(|| format!("{spec:?} is not NAME=KEY[@HOST:PORT]"))?;
    let (key, p2p) = match rest.rsplit_once('@') {
        Some((key, address)) => (key, Some(address.to_string())),
        None => (rest, None),
    };
    if p2p.is_some() && !validator {
        bail!("{spec:?}: only validators name a p2p address");
    }
    let public_key = if key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()) {
        key.to_lowercase()
    } else {
        keyfile::public_parts(&keyfile::read(std::path::Path::new(key))?).public_key
    };
    Ok(Member {
        name: name.to_string(),
        public_key,
        stake: if validator { stake } else { 0 },
        balance,
        p2p,
    })
}

/// Runs `cairn genesis`.
pub fn run(args: GenesisArgs) -> anyhow::Result<()> {
    let chain = match &args.from {
        Some(path) => ChainFile::read(path)?,
        None => {
            if args.validators.is_empty() {
                bail!("give --from chain.toml, or at least one --validator NAME=KEY[@HOST:PORT]");
            }
            let chain = ChainFile {
                chain_id: args.chain_id,
                params: Params::default(),
                datasets: args.datasets.clone(),
                validators: args
                    .validators
                    .iter()
                    .map(|v| member(v, args.stake, args.balance, true))
                    .collect::<anyhow::Result<_>>()?,
                accounts: args
                    .accounts
                    .iter()
                    .map(|a| member(a, 0, args.balance, false))
                    .collect::<anyhow::Result<_>>()?,
            };
            chain.check()?;
            chain
        }
    };
    if args.out.exists() && !args.force {
        bail!("{} exists; pass --force to replace it", args.out.display());
    }
    chain.write_json(&args.out)?;
    println!(
        "wrote {}: chain {}, {} validators, {} accounts, datasets {}",
        args.out.display(),
        chain.chain_id,
        chain.validators.len(),
        chain.accounts.len(),
        chain.datasets.join(",")
    );
    Ok(())
}
