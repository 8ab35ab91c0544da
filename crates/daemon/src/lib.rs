//! Cairn for real: what turns the node library into processes an operator runs.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`keyfile`] | key files (`cairn keys`): a secret seed, mode 0600, never overwritten |
//! | [`chain`] | chain files (`cairn genesis`): genesis, members' keys, bootstrappers |
//! | [`home`] | a node's home directory, its settings, and the key and chain it is bound to |
//! | [`run`] | `cairn node`: the node on commonware's tokio runtime, authenticated p2p over TCP |
//! | [`api`] | the node's HTTP API: `/healthz`, `/metrics`, chain, tasks, rounds, blobs |
//! | [`client`] | the blocking client of that API (`cairn task`, `cairn replay`, the devnet) |
//! | [`replay`] | `cairn replay`: re-aggregates a round from its blobs and checks the ledger's hash |
//! | [`devnet`] | `cairn devnet`: a local chain of one OS process per node |
//!
//! The node itself is `cairn_node::node::run_node`, the code `cairn simulate` runs on the
//! deterministic runtime; only the runtime, the network and the stores differ.
#![warn(missing_docs)]

use std::net::SocketAddr;

pub mod api;
pub mod chain;
pub mod client;
pub mod devnet;
pub mod home;
pub mod keyfile;
pub mod replay;
pub mod run;

/// Why a daemon command failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// A file that must not be overwritten exists.
    #[error("{0} exists; refusing to overwrite it")]
    Exists(String),
    /// A key file is malformed or inconsistent.
    #[error("key file {path}: {reason}")]
    BadKey {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A chain file is malformed or invalid.
    #[error("chain file: {0}")]
    Chain(String),
    /// A home directory is missing something or corrupt.
    #[error("home: {0}")]
    Home(String),
    /// The key, the chain file and the home's state do not belong together.
    #[error("mismatch: {0}")]
    Mismatch(String),
    /// Settings are invalid.
    #[error("settings: {0}")]
    Settings(String),
    /// A port cannot be bound.
    #[error("{what} address {address} cannot be bound: {reason}")]
    Port {
        /// Which service.
        what: String,
        /// The address.
        address: SocketAddr,
        /// The operating system's reason (e.g. address in use).
        reason: String,
    },
    /// Datasets could not be loaded.
    #[error("datasets: {0}")]
    Data(String),
    /// The ledger store could not be opened or initialised.
    #[error("ledger: {0}")]
    Ledger(String),
    /// The node stopped with an error.
    #[error("node: {0}")]
    Node(String),
    /// A node's API could not be reached or answered an error.
    #[error("api: {0}")]
    Api(String),
    /// A replayed round does not reproduce the ledger's model hash.
    #[error("replay: {0}")]
    Replay(String),
}
