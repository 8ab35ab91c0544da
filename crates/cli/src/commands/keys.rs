//! `cairn keys generate|show`: a node's key file.

use std::path::PathBuf;

use anyhow::Context;
use cairn_daemon::home::Home;
use cairn_daemon::keyfile;

const HELP: &str = "\
Examples:
  cairn keys generate --home node0          # writes node0/key.json (mode 0600)
  cairn keys show --home node0              # prints its public key and address
  cairn keys show --file node0/key.json --json

A key file holds a 32-byte secret seed: it signs the node's ledger transactions, its consensus
votes, and authenticates it on the p2p network. Back it up; anyone holding it is the node.
`generate` never overwrites a file. The public key goes into the chain file (cairn genesis).";

/// Arguments of `cairn keys`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Generate a fresh key from the OS's random generator (refuses to overwrite).
    Generate(KeyLocation),
    /// Print a key file's public key and ledger address.
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
struct KeyLocation {
    /// Node home: the key goes to HOME/key.json (the directory is created).
    #[arg(
        long,
        env = "CAIRN_HOME",
        conflicts_with = "file",
        required_unless_present = "file"
    )]
    home: Option<PathBuf>,
    /// Key file path instead of a home.
    #[arg(long, env = "CAIRN_KEY_FILE")]
    file: Option<PathBuf>,
}

impl KeyLocation {
    fn path(&self) -> PathBuf {
        match (&self.file, &self.home) {
            (Some(file), _) => file.clone(),
            (None, Some(home)) => Home::new(home).key(),
            (None, None) => unreachable!("clap requires --home or --file"),
        }
    }
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    #[command(flatten)]
    location: KeyLocation,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `cairn keys`.
pub fn run(args: KeysArgs) -> anyhow::Result<()> {
    match args.command {
        KeysCommand::Generate(location) => {
            let path = location.path();
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let key = keyfile::generate_into(&path)?;
            let parts = keyfile::public_parts(&key);
            println!("wrote {} (mode 0600)", path.display());
            println!("public_key {}", parts.public_key);
            println!("address    {}", parts.address);
        }
        KeysCommand::Show(show) => {
            let key = keyfile::read(&show.location.path())?;
            let parts = keyfile::public_parts(&key);
            if show.json {
                println!("{}", serde_json::to_string_pretty(&parts)?);
            } else {
                println!("public_key {}", parts.public_key);
                println!("address    {}", parts.address);
            }
        }
    }
    Ok(())
}
