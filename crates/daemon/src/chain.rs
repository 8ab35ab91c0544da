//! A chain file: everything a node needs to start a chain at block 0 and to find its peers.
//!
//! `cairn genesis` writes it as `genesis.json` from a TOML description (or flags); every node of
//! the chain holds the same file. Beyond the ledger's [`Genesis`] it names the members' public
//! keys (consensus needs the validators' keys, the data plane every peer's) and, optionally, the
//! address at which each validator listens, which makes the validators the bootstrappers.
//!
//! ```toml
//! chain_id = 7
//! datasets = ["digits"]
//!
//! [params]              # optional; any field left out takes its default
//! unbond_delay = 100
//!
//! [[validators]]
//! name = "validator-0"
//! public_key = "<64 hex>"
//! stake = 1000000
//! balance = 1000000
//! p2p = "10.0.0.1:30300"
//!
//! [[accounts]]          # trainers and task creators
//! name = "trainer-0"
//! public_key = "<64 hex>"
//! balance = 1000000
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use cairn_ledger::encoding::{from_hex, to_hex, Hash};
use cairn_ledger::genesis::{Genesis, Params};
use cairn_ledger::store::MemoryStore;
use cairn_ledger::{Address, DatasetRegistry};
use cairn_ml::data::BuiltinDataset;
use cairn_node::consensus;
use cairn_node::keys::address_of;
use commonware_codec::DecodeExt;
use commonware_cryptography::ed25519;
use commonware_utils::ordered::Set;
use serde::{Deserialize, Serialize};

use crate::DaemonError;

/// One member of the chain at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// A name for logs and tables (unique in the file).
    pub name: String,
    /// Its ed25519 public key, hex (`cairn keys show`).
    pub public_key: String,
    /// Bonded stake (validators: at least `params.min_bond`; others: 0).
    #[serde(default)]
    pub stake: u128,
    /// Spendable balance.
    #[serde(default)]
    pub balance: u128,
    /// Where it listens for p2p connections (validators; makes it a bootstrapper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p: Option<String>,
}

/// A chain file; see the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainFile {
    /// The chain id every transaction and vote names.
    pub chain_id: u64,
    /// The ledger's parameters.
    #[serde(default)]
    pub params: Params,
    /// Built-in datasets the chain serves (`digits`, `mnist_5k`, `fashion_mnist`).
    pub datasets: Vec<String>,
    /// Validators, with stake.
    pub validators: Vec<Member>,
    /// Every other member (trainers, creators), with a balance.
    #[serde(default)]
    pub accounts: Vec<Member>,
}

/// A bootstrapper: a validator's key and dialable address.
pub type Bootstrapper = (ed25519::PublicKey, SocketAddr);

fn public_key(member: &Member) -> Result<ed25519::PublicKey, DaemonError> {
    let bytes: [u8; 32] = from_hex(&member.public_key).ok_or_else(|| {
        DaemonError::Chain(format!(
            "{}: public_key is not 32 bytes of hex",
            member.name
        ))
    })?;
    ed25519::PublicKey::decode(bytes::Bytes::copy_from_slice(&bytes)).map_err(|error| {
        DaemonError::Chain(format!(
            "{}: public_key is not an ed25519 key: {error}",
            member.name
        ))
    })
}

impl ChainFile {
    /// Reads a chain file: JSON if the name ends in `.json`, TOML otherwise; checks it.
    pub fn read(path: &Path) -> Result<Self, DaemonError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| DaemonError::Io(format!("chain file {}: {error}", path.display())))?;
        let json = path.extension().is_some_and(|e| e == "json");
        Self::parse(&text, json)
            .map_err(|error| DaemonError::Chain(format!("{}: {error}", path.display())))
    }

    /// Parses a chain file's text (JSON, or TOML when `json` is false) and checks it.
    pub fn parse(text: &str, json: bool) -> Result<Self, DaemonError> {
        let file: ChainFile = if json {
            serde_json::from_str(text).map_err(|error| DaemonError::Chain(error.to_string()))?
        } else {
            // The toml crate reads no u128: read TOML's own values, then the fields through
            // JSON's, which widen integers to u128.
            let value: toml::Value =
                toml::from_str(text).map_err(|error| DaemonError::Chain(error.to_string()))?;
            let value = serde_json::to_value(value)
                .map_err(|error| DaemonError::Chain(error.to_string()))?;
            serde_json::from_value(value).map_err(|error| DaemonError::Chain(error.to_string()))?
        };
        file.check()?;
        Ok(file)
    }

    /// Writes it as pretty JSON (amounts are `u128`, beyond TOML's integers).
    pub fn write_json(&self, path: &Path) -> Result<(), DaemonError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|error| DaemonError::Chain(error.to_string()))?;
        std::fs::write(path, text + "\n")
            .map_err(|error| DaemonError::Io(format!("{}: {error}", path.display())))
    }

    /// Every member, validators first.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.validators.iter().chain(&self.accounts)
    }

    /// Checks keys, names, stakes, addresses and datasets, and the ledger's own genesis rules.
    pub fn check(&self) -> Result<(), DaemonError> {
        if self.validators.is_empty() {
            return Err(DaemonError::Chain("no validators".into()));
        }
        let mut names = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for member in self.members() {
            if member.name.is_empty()
                || !member
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(DaemonError::Chain(format!(
                    "member name {:?} must be non-empty [A-Za-z0-9_-]",
                    member.name
                )));
            }
            if !names.insert(member.name.as_str()) {
                return Err(DaemonError::Chain(format!(
                    "two members named {}",
                    member.name
                )));
            }
            if !keys.insert(public_key(member)?) {
                return Err(DaemonError::Chain(format!(
                    "{} shares its public key with another member",
                    member.name
                )));
            }
            if let Some(p2p) = &member.p2p {
                p2p.parse::<SocketAddr>().map_err(|error| {
                    DaemonError::Chain(format!("{}: p2p {p2p:?}: {error}", member.name))
                })?;
            }
        }
        for member in &self.accounts {
            if member.stake > 0 {
                return Err(DaemonError::Chain(format!(
                    "account {} has stake; list it under validators",
                    member.name
                )));
            }
        }
        for name in &self.datasets {
            name.parse::<BuiltinDataset>()
                .map_err(|error| DaemonError::Chain(error.to_string()))?;
        }
        self.genesis_without_datasets()
            .validate()
            .map_err(|error| DaemonError::Chain(error.to_string()))?;
        Ok(())
    }

    fn genesis_without_datasets(&self) -> Genesis {
        let mut balances = BTreeMap::new();
        let mut validators = BTreeMap::new();
        for member in self.members() {
            let Ok(key) = public_key(member) else {
                continue;
            };
            let address = address_of(&key);
            if member.balance > 0 {
                balances.insert(address, member.balance);
            }
            if member.stake > 0 {
                validators.insert(address, member.stake);
            }
        }
        Genesis {
            chain_id: self.chain_id,
            params: self.params.clone(),
            balances,
            validators,
            datasets: BTreeSet::new(),
        }
    }

    /// Loads the chain's datasets from `data_dir`.
    pub fn registry(&self, data_dir: &Path) -> Result<Arc<DatasetRegistry>, DaemonError> {
        let mut registry = DatasetRegistry::new();
        for name in &self.datasets {
            let builtin: BuiltinDataset =
                name.parse()
                    .map_err(|error: cairn_ml::data::UnknownDataset| {
                        DaemonError::Chain(error.to_string())
                    })?;
            registry
                .load_builtin(builtin, data_dir)
                .map_err(|error| DaemonError::Data(format!("{name}: {error}")))?;
        }
        Ok(Arc::new(registry))
    }

    /// The ledger's genesis, with the datasets' content hashes from `registry`.
    pub fn genesis(&self, registry: &DatasetRegistry) -> Result<Genesis, DaemonError> {
        let mut genesis = self.genesis_without_datasets();
        for name in &self.datasets {
            let hash = registry
                .hash_of(name)
                .ok_or_else(|| DaemonError::Data(format!("dataset {name} is not loaded")))?;
            genesis.datasets.insert(hash);
        }
        Ok(genesis)
    }

    /// The hash of block 0: two nodes with the same chain hash start from the same state.
    pub fn chain_hash(&self, registry: &Arc<DatasetRegistry>) -> Result<Hash, DaemonError> {
        let genesis = self.genesis(registry)?;
        let (_, block) = consensus::init_store(MemoryStore::new(), &genesis, registry.clone())
            .map_err(|error| DaemonError::Chain(error.to_string()))?;
        Ok(block.hash())
    }

    /// The consensus validator set (the validators' keys).
    pub fn validator_set(&self) -> Result<Set<ed25519::PublicKey>, DaemonError> {
        let keys = self
            .validators
            .iter()
            .map(public_key)
            .collect::<Result<Vec<_>, _>>()?;
        Set::try_from(keys).map_err(|_| DaemonError::Chain("duplicate validator key".into()))
    }

    /// Every member's public key, validators first.
    pub fn public_keys(&self) -> Result<Vec<ed25519::PublicKey>, DaemonError> {
        self.members().map(public_key).collect()
    }

    /// The validators that name a p2p address.
    pub fn bootstrappers(&self) -> Result<Vec<Bootstrapper>, DaemonError> {
        let mut out = Vec::new();
        for member in &self.validators {
            if let Some(p2p) = &member.p2p {
                let address = p2p.parse().map_err(|error| {
                    DaemonError::Chain(format!("{}: p2p {p2p:?}: {error}", member.name))
                })?;
                out.push((public_key(member)?, address));
            }
        }
        Ok(out)
    }

    /// The member with this public key.
    pub fn member(&self, key: &ed25519::PublicKey) -> Option<&Member> {
        let hex = to_hex(key.as_ref());
        self.members()
            .find(|m| m.public_key.trim_start_matches("0x") == hex)
    }

    /// The member with this ledger address.
    pub fn member_by_address(&self, address: &Address) -> Option<&Member> {
        self.members()
            .find(|m| public_key(m).is_ok_and(|key| address_of(&key) == *address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_node::keys::NodeKey;

    fn member(seed: u8, name: &str, stake: u128) -> Member {
        Member {
            name: name.into(),
            public_key: to_hex(NodeKey::from_seed([seed; 32]).public_key().as_ref()),
            stake,
            balance: 1_000_000,
            p2p: (stake > 0).then(|| format!("127.0.0.1:{}", 30_000 + u16::from(seed))),
        }
    }

    fn chain() -> ChainFile {
        ChainFile {
            chain_id: 9,
            params: Params::default(),
            datasets: vec!["digits".into()],
            validators: vec![member(1, "v0", 1000), member(2, "v1", 1000)],
            accounts: vec![member(3, "t0", 0)],
        }
    }

    #[test]
    fn toml_and_json_read_the_same_chain() {
        let dir = tempfile::tempdir().unwrap();
        let chain = chain();
        let json = dir.path().join("genesis.json");
        chain.write_json(&json).unwrap();
        assert_eq!(ChainFile::read(&json).unwrap(), chain);
        // TOML as a person writes it (the toml crate writes no u128, but reads one that fits).
        let mut text =
            "chain_id = 9\ndatasets = [\"digits\"]\n[params]\nmin_bond = 100\n".to_string();
        for (table, members) in [
            ("validators", &chain.validators),
            ("accounts", &chain.accounts),
        ] {
            for m in members.iter() {
                text.push_str(&format!(
                    "[[{table}]]\nname = \"{}\"\npublic_key = \"{}\"\nstake = {}\nbalance = {}\n",
                    m.name, m.public_key, m.stake, m.balance
                ));
                if let Some(p2p) = &m.p2p {
                    text.push_str(&format!("p2p = \"{p2p}\"\n"));
                }
            }
        }
        let toml_path = dir.path().join("chain.toml");
        std::fs::write(&toml_path, text).unwrap();
        assert_eq!(ChainFile::read(&toml_path).unwrap(), chain);
        assert_eq!(chain.bootstrappers().unwrap().len(), 2);
        assert_eq!(chain.validator_set().unwrap().len(), 2);
    }

    #[test]
    fn bad_chain_files_are_refused_with_the_reason() {
        let mut twice = chain();
        twice.accounts.push(member(1, "again", 0));
        assert!(twice
            .check()
            .unwrap_err()
            .to_string()
            .contains("shares its public key"));
        let mut staked = chain();
        staked.accounts[0].stake = 5;
        assert!(staked
            .check()
            .unwrap_err()
            .to_string()
            .contains("list it under validators"));
        let mut bad_key = chain();
        bad_key.validators[0].public_key = "zz".into();
        assert!(bad_key.check().unwrap_err().to_string().contains("hex"));
        let mut none = chain();
        none.validators.clear();
        assert!(none.check().is_err());
        let mut unknown = chain();
        unknown.datasets.push("cifar".into());
        assert!(unknown
            .check()
            .unwrap_err()
            .to_string()
            .contains("unknown dataset"));
        let mut low = chain();
        low.validators[1].stake = 1;
        assert!(low
            .check()
            .unwrap_err()
            .to_string()
            .contains("minimum bond"));
    }
}
