//! A node's home directory and its settings.
//!
//! ```text
//! HOME/
//!   key.json        the node's secret (cairn keys generate --home HOME), mode 0600
//!   genesis.json    the chain file (cairn genesis), the same on every node
//!   config.toml     optional settings; flags and CAIRN_* environment variables override them
//!   identity.json   written at first start: the key and chain this home belongs to
//!   ledger.redb     the ledger (redb, a Merkle state root per block)
//!   storage/        consensus journals and blobs (commonware storage)
//! ```
//!
//! A home is bound to one key and one chain at its first start; a later start with another key
//! or chain file is refused instead of mixing two nodes' state.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cairn_ledger::encoding::{from_hex, to_hex, Hash};
use cairn_node::keys::NodeKey;
use serde::{Deserialize, Serialize};

use crate::chain::ChainFile;
use crate::{keyfile, DaemonError};

/// What a node does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// Votes in consensus and validates (scores, aggregates, audits) the tasks it joins.
    Validator,
    /// Follows the chain and trains in the tasks it joins.
    Trainer,
    /// Follows the chain and posts the tasks asked of it through its API; joins none.
    Creator,
}

impl std::str::FromStr for NodeRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "validator" => Ok(Self::Validator),
            "trainer" => Ok(Self::Trainer),
            "creator" => Ok(Self::Creator),
            other => Err(format!(
                "unknown role {other:?}; expected validator, trainer or creator"
            )),
        }
    }
}

/// Which commonware p2p settings to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkProfile {
    /// commonware's `recommended()`: refuses private and loopback addresses, rate-limits
    /// handshakes per IP and waits before redialing. For nodes on the internet.
    #[default]
    Recommended,
    /// commonware's `local()`: loopback and private addresses allowed, fast redials. For a devnet.
    Local,
}

impl std::str::FromStr for NetworkProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "recommended" => Ok(Self::Recommended),
            "local" => Ok(Self::Local),
            other => Err(format!(
                "unknown network profile {other:?}; expected recommended or local"
            )),
        }
    }
}

/// A node's settings (`HOME/config.toml`; every field optional).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSettings {
    /// Validator, trainer or creator.
    pub role: NodeRole,
    /// Address to listen on for p2p.
    pub listen: SocketAddr,
    /// Address peers dial (default: `listen`, which must then not be unspecified).
    pub external: Option<SocketAddr>,
    /// Address of the HTTP API, `/metrics` and `/healthz` (none: not served).
    pub http: Option<SocketAddr>,
    /// Bootstrappers as `PUBLIC_KEY@HOST:PORT` (default: the chain file's validators).
    pub bootstrappers: Vec<String>,
    /// p2p settings profile.
    pub network: NetworkProfile,
    /// Pause before each proposal, in milliseconds (validators).
    pub block_interval_ms: u64,
    /// Runtime worker threads (default: the number of cores).
    pub worker_threads: Option<usize>,
    /// Threads for the protocol's slow work: training, aggregation, scoring, audits (default:
    /// the number of cores less one, at least one).
    pub compute_workers: Option<usize>,
    /// Slow jobs that may wait for a compute worker; more are refused and decided again at the
    /// next block.
    pub job_queue: usize,
    /// Where the built-in datasets are (default: `CAIRN_DATA_DIR` or the shipped `data/`).
    pub data_dir: Option<PathBuf>,
    /// Open tasks paying less per round are not joined.
    pub min_reward_per_round: u64,
    /// The largest bond this node locks as a trainer for one task (none: any it can afford).
    pub max_trainer_bond: Option<u64>,
    /// Most tasks it works on at once.
    pub max_tasks: usize,
}

impl Default for NodeSettings {
    fn default() -> Self {
        Self {
            role: NodeRole::Trainer,
            listen: SocketAddr::from(([0, 0, 0, 0], 30300)),
            external: None,
            http: Some(SocketAddr::from(([127, 0, 0, 1], 30301))),
            bootstrappers: Vec::new(),
            network: NetworkProfile::Recommended,
            block_interval_ms: 400,
            worker_threads: None,
            compute_workers: None,
            job_queue: 16,
            data_dir: None,
            min_reward_per_round: 1_000,
            max_trainer_bond: None,
            max_tasks: 4,
        }
    }
}

impl NodeSettings {
    /// The volunteer policy these settings describe.
    pub fn policy(&self) -> cairn_node::protocol::volunteer::Policy {
        cairn_node::protocol::volunteer::Policy {
            min_reward_per_round: u128::from(self.min_reward_per_round),
            max_trainer_bond: self.max_trainer_bond.map(u128::from),
            max_active: self.max_tasks,
        }
    }

    /// The worker pool these settings describe.
    pub fn workers(&self) -> cairn_node::workers::WorkerConfig {
        let mut config = cairn_node::workers::WorkerConfig::for_this_machine();
        if let Some(workers) = self.compute_workers {
            config.workers = workers.max(1);
        }
        config.queue = self.job_queue.max(1);
        config
    }

    /// Parses `config.toml`'s text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    /// The address peers dial.
    pub fn dialable(&self) -> Result<SocketAddr, DaemonError> {
        match self.external {
            Some(address) => Ok(address),
            None if self.listen.ip().is_unspecified() => Err(DaemonError::Settings(format!(
                "listen {} is unspecified: give --external, the address peers dial",
                self.listen
            ))),
            None => Ok(self.listen),
        }
    }
}

/// What a home was bound to at its first start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The node's public key, hex.
    pub public_key: String,
    /// The chain's block 0 hash, hex.
    pub chain_hash: String,
}

impl Identity {
    /// Parses `identity.json`'s text; both fields must be 32 bytes of hex.
    pub fn parse(text: &str) -> Result<Self, String> {
        let identity: Identity = serde_json::from_str(text).map_err(|error| error.to_string())?;
        if from_hex::<32>(&identity.public_key).is_none()
            || from_hex::<32>(&identity.chain_hash).is_none()
        {
            return Err("public_key and chain_hash must be 32 bytes of hex".into());
        }
        Ok(identity)
    }
}

/// Paths in a home.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home at `root` (nothing is read yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The home directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `key.json`.
    pub fn key(&self) -> PathBuf {
        self.root.join("key.json")
    }

    /// `genesis.json`.
    pub fn genesis(&self) -> PathBuf {
        self.root.join("genesis.json")
    }

    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `identity.json`.
    pub fn identity(&self) -> PathBuf {
        self.root.join("identity.json")
    }

    /// `ledger.redb`.
    pub fn ledger(&self) -> PathBuf {
        self.root.join("ledger.redb")
    }

    /// `storage/`.
    pub fn storage(&self) -> PathBuf {
        self.root.join("storage")
    }

    /// Reads `config.toml`, or the defaults when there is none.
    pub fn settings(&self) -> Result<NodeSettings, DaemonError> {
        let path = self.config();
        match std::fs::read_to_string(&path) {
            Ok(text) => NodeSettings::parse(&text)
                .map_err(|error| DaemonError::Settings(format!("{}: {error}", path.display()))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Ok(NodeSettings::default())
            }
            Err(error) => Err(DaemonError::Io(format!("{}: {error}", path.display()))),
        }
    }

    /// Writes `config.toml`.
    pub fn write_settings(&self, settings: &NodeSettings) -> Result<(), DaemonError> {
        let text =
            toml::to_string(settings).map_err(|error| DaemonError::Settings(error.to_string()))?;
        std::fs::write(self.config(), text)
            .map_err(|error| DaemonError::Io(format!("{}: {error}", self.config().display())))
    }

    /// Reads the key and the chain file, with errors that say what to run when one is missing.
    pub fn load(&self) -> Result<(NodeKey, ChainFile), DaemonError> {
        if !self.root.is_dir() {
            return Err(DaemonError::Home(format!(
                "{} is not a directory; create it and put key.json (cairn keys generate --home \
                 {0}) and genesis.json (cairn genesis) in it",
                self.root.display()
            )));
        }
        if !self.key().exists() {
            return Err(DaemonError::Home(format!(
                "{} has no key.json; run: cairn keys generate --home {}",
                self.root.display(),
                self.root.display()
            )));
        }
        if !self.genesis().exists() {
            return Err(DaemonError::Home(format!(
                "{} has no genesis.json; copy the chain's genesis.json there (cairn genesis \
                 writes one)",
                self.root.display()
            )));
        }
        let key = keyfile::read(&self.key())?;
        let chain = ChainFile::read(&self.genesis())?;
        Ok((key, chain))
    }

    /// Binds the home to `key` and `chain_hash` at its first start; refuses a home bound to
    /// another key or chain.
    pub fn bind(&self, key: &NodeKey, chain_hash: &Hash) -> Result<(), DaemonError> {
        let want = Identity {
            public_key: to_hex(key.public_key().as_ref()),
            chain_hash: to_hex(chain_hash),
        };
        let path = self.identity();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let have = Identity::parse(&text).map_err(|error| {
                    DaemonError::Home(format!("{} is corrupt: {error}", path.display()))
                })?;
                if have.public_key != want.public_key {
                    return Err(DaemonError::Mismatch(format!(
                        "this home belongs to key {} but key.json is {}",
                        have.public_key, want.public_key
                    )));
                }
                if have.chain_hash != want.chain_hash {
                    return Err(DaemonError::Mismatch(format!(
                        "this home belongs to chain {} but genesis.json makes chain {}",
                        have.chain_hash, want.chain_hash
                    )));
                }
                Ok(())
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let text = serde_json::to_string_pretty(&want)
                    .map_err(|error| DaemonError::Home(error.to_string()))?;
                std::fs::write(&path, text + "\n")
                    .map_err(|error| DaemonError::Io(format!("{}: {error}", path.display())))
            }
            Err(error) => Err(DaemonError::Io(format!("{}: {error}", path.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        assert_eq!(home.settings().unwrap(), NodeSettings::default());
        let settings = NodeSettings {
            role: NodeRole::Validator,
            network: NetworkProfile::Local,
            bootstrappers: vec!["ab@127.0.0.1:1".into()],
            ..NodeSettings::default()
        };
        home.write_settings(&settings).unwrap();
        assert_eq!(home.settings().unwrap(), settings);
        std::fs::write(home.config(), "role = \"miner\"\n").unwrap();
        assert!(home.settings().is_err());
        std::fs::write(home.config(), "colour = 1\n").unwrap();
        assert!(home.settings().unwrap_err().to_string().contains("colour"));
    }

    #[test]
    fn a_home_refuses_another_key_or_chain() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let key = NodeKey::from_seed([1; 32]);
        home.bind(&key, &[5; 32]).unwrap();
        home.bind(&key, &[5; 32]).unwrap();
        let other = NodeKey::from_seed([2; 32]);
        assert!(matches!(
            home.bind(&other, &[5; 32]),
            Err(DaemonError::Mismatch(_))
        ));
        assert!(matches!(
            home.bind(&key, &[6; 32]),
            Err(DaemonError::Mismatch(_))
        ));
        std::fs::write(home.identity(), "{\"public_key\":").unwrap();
        assert!(matches!(
            home.bind(&key, &[5; 32]),
            Err(DaemonError::Home(_))
        ));
    }

    #[test]
    fn a_missing_key_or_chain_says_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        assert!(home
            .load()
            .unwrap_err()
            .to_string()
            .contains("cairn keys generate"));
        keyfile::generate_into(&home.key()).unwrap();
        assert!(home
            .load()
            .unwrap_err()
            .to_string()
            .contains("cairn genesis"));
        let missing = Home::new(dir.path().join("nope"));
        assert!(missing
            .load()
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
    }
}
