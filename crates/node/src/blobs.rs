//! Models and updates stored by blake3 hash, served to peers and fetched from them in checked
//! chunks.
//!
//! * [`BlobStore`] keeps blobs durably in the runtime's `Storage` (on disk under tokio, in memory
//!   on the deterministic runtime) with an in-memory index, so reads are synchronous
//!   ([`BlobView`]). A blob stored as private (an update before its reveal) is never served.
//! * [`start`] spawns the network service on the blob channel: it answers requests for public
//!   blobs chunk by chunk, and runs the fetches asked through its [`Fetcher`], which checks
//!   every chunk and the final hash and marks misbehaving peers ([`crate::penalty`]).

mod service;
mod store;

pub use service::{start, BlobConfig, FetchError, Fetcher};
pub use store::{BlobError, BlobStore, PARTITION};

use std::sync::Arc;

/// Read access to locally stored blobs by hash (what the round protocol reads models from).
pub trait BlobView {
    /// The blob's bytes, if this node holds it (public or private).
    fn blob(&self, hash: &[u8; 32]) -> Option<Arc<[u8]>>;
}

/// blake3 of a blob's bytes: its address.
pub fn blob_hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}
