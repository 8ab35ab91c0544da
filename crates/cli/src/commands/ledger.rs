//! `cairn ledger`: create, fill and read a ledger data directory.
//!
//! `genesis` starts a chain of deterministic development accounts; `demo` also plays a scripted
//! history (transfers, staking, a dataset sale, a two-round training task with a dissenting
//! validator and a trainer that never reveals) so there is something to look at; `inspect`
//! prints balances, stakes, tasks, rounds, scores and rewards; `prove` shows and checks the
//! Merkle proof that a round finalized a given model hash; `verify` checks every stored record
//! and names what is damaged.
//!
//! The reading commands open the store read-only: they never change a byte of the file, and a
//! missing, empty or unfinished store is an error, never an empty ledger.

mod demo;
mod inspect;
mod prove;
mod verify;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cairn_ledger::encoding::to_hex;
use cairn_ledger::store::Store;

use demo::{address, create, dev_keys, play_demo};

/// File name of the state database inside a data directory.
const STORE_FILE: &str = "ledger.redb";

/// Arguments of `cairn ledger`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  cairn ledger demo --data-dir /tmp/ledger\n  \
                  cairn ledger inspect --data-dir /tmp/ledger\n  \
                  cairn ledger prove --data-dir /tmp/ledger --task 0 --round 0\n  \
                  cairn ledger verify --data-dir /tmp/ledger\n\n\
                  See docs/ledger.md."
)]
pub struct LedgerArgs {
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LedgerCommand {
    /// Start a chain of development accounts (deterministic keys) in a new data directory.
    Genesis(GenesisArgs),
    /// Start a chain and play a scripted history on it, to have something to inspect.
    Demo(GenesisArgs),
    /// Print the state: balances, stakes, tasks, rounds, scores, rewards, datasets.
    Inspect(InspectArgs),
    /// Print and verify the Merkle proof of a round's finalized model hash.
    Prove(ProveArgs),
    /// Check every stored record and recompute the state root; name what is damaged.
    ///
    /// Exits with status 1 if anything is damaged. Reads only: the file is left unchanged.
    Verify(InspectArgs),
}

#[derive(Debug, clap::Args)]
struct GenesisArgs {
    /// Directory to create the ledger in (it must not already hold one).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Chain id written into genesis; transactions for other chains are rejected.
    #[arg(long, default_value_t = 1)]
    chain_id: u64,
    /// Number of development accounts (keys derived from --seed and the account index).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(8..=10_000))]
    accounts: u32,
    /// Seed of the development keys.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Ledger data directory (made by `cairn ledger genesis` or `demo`, or by a node).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Print the whole state as JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ProveArgs {
    /// Ledger data directory.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Task id.
    #[arg(long)]
    task: u64,
    /// Round number.
    #[arg(long)]
    round: u32,
    /// Model hash (64 hex digits) to check the proof against [default: the stored one].
    #[arg(long, value_name = "HEX")]
    expect: Option<String>,
}

/// Runs `cairn ledger`.
pub fn run(args: LedgerArgs) -> anyhow::Result<()> {
    match args.command {
        LedgerCommand::Genesis(args) => {
            let chain = create(&args)?;
            println!(
                "created chain {} at {} (root {})",
                args.chain_id,
                store_path(&args.data_dir).display(),
                to_hex(&chain.store().root())
            );
            for (index, key) in dev_keys(args.seed, args.accounts).iter().enumerate() {
                println!("account {index:>4}  {}", address(key));
            }
            Ok(())
        }
        LedgerCommand::Demo(args) => {
            let mut chain = create(&args)?;
            play_demo(&mut chain, &args)?;
            println!(
                "demo chain at {}: height {}, root {}",
                store_path(&args.data_dir).display(),
                chain.tip().height,
                to_hex(&chain.store().root())
            );
            println!(
                "next: cairn ledger inspect --data-dir {}",
                args.data_dir.display()
            );
            Ok(())
        }
        LedgerCommand::Inspect(args) => inspect::inspect(&args),
        LedgerCommand::Prove(args) => prove::prove(&args),
        LedgerCommand::Verify(args) => verify::verify(&args),
    }
}

fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

/// Opens an existing ledger read-only: never creates one, never writes to its file.
fn open_existing(data_dir: &Path) -> anyhow::Result<Store> {
    let path = store_path(data_dir);
    if !path.exists() {
        bail!(
            "no ledger at {}; create one with `cairn ledger demo --data-dir {}`",
            path.display(),
            data_dir.display()
        );
    }
    Store::open_read_only(&path).with_context(|| format!("opening {}", path.display()))
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
fn emit(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
