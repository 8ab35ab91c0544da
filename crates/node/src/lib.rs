//! A Cairn node: the trainer and validator roles, the round protocol, commonware simplex
//! consensus, the p2p data plane and blob storage.
//!
//! The node is written once against commonware's runtime traits (`Spawner`, `Clock`, `Storage`,
//! `Metrics`), so the same code runs on the deterministic runtime with the simulated network
//! (tests, `cairn simulate`) and on tokio (deployment).
//!
//! | module | what it does |
//! | --- | --- |
//! | [`keys`] | one 32-byte seed per node backs its ledger key and its consensus/p2p identity |
//! | [`channels`] | the p2p channel ids and the message-size budget shared by every node |
//! | [`wire`] | Cairn's own versioned, canonical, bounded messages (mempool, blobs, finality feed) |
//! | [`penalty`] | marks against peers that send bad data; past a limit the peer is blocked |
//! | [`blobs`] | models and updates stored by blake3 hash, fetched from peers in checked chunks |
//! | [`mempool`] | the bounded pool proposers fill blocks from |
//! | [`consensus`] | the ledger as a commonware `Application`, finalization, the finality feed |
//! | [`protocol`] | the round protocol: what a trainer or validator does at each finalized block |
//! | [`workers`] | the bounded pool that runs agents' slow work off the block callback |
//! | [`node`] | assembles one node from the parts above |
#![warn(missing_docs)]

pub mod blobs;
pub mod channels;
pub mod cluster;
pub mod consensus;
pub mod keys;
pub mod mempool;
pub mod node;
pub mod penalty;
pub mod protocol;
pub mod wire;
pub mod workers;
