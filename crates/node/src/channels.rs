//! The p2p channels every Cairn node registers, with the same ids on every node.
//!
//! | id | carries |
//! | --- | --- |
//! | 0 | simplex votes |
//! | 1 | simplex certificates |
//! | 2 | simplex certificate resolver |
//! | 3 | marshal backfill (finalized blocks by height or digest) |
//! | 4 | marshal block broadcast (full blocks) |
//! | 5 | Cairn mempool (signed transactions, [`crate::wire`]) |
//! | 6 | Cairn blobs (requests and chunks, [`crate::wire`]) |
//! | 7 | Cairn finality feed for trainers, which follow the chain without voting |

/// simplex votes.
pub const VOTES: u64 = 0;
/// simplex certificates.
pub const CERTIFICATES: u64 = 1;
/// simplex certificate resolver.
pub const RESOLVER: u64 = 2;
/// marshal backfill.
pub const BACKFILL: u64 = 3;
/// marshal full-block broadcast.
pub const BROADCAST: u64 = 4;
/// Cairn mempool.
pub const MEMPOOL: u64 = 5;
/// Cairn blobs.
pub const BLOBS: u64 = 6;
/// Cairn finality feed.
pub const FEED: u64 = 7;
