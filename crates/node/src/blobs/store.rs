//! Durable, content-addressed blob storage with a synchronous in-memory index.
//!
//! Layout: one runtime blob per stored blob in one partition (by default [`PARTITION`]; nodes
//! sharing one runtime, as in simulations, each take their own), named by the lower-case
//! hex of its blake3 hash. Its bytes are one visibility byte (`0` private, `1` public) followed
//! by the content. Every write is synced before it is acknowledged; on reopen, anything whose
//! content does not hash to its name (a write torn by a crash) is removed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cairn_ledger::encoding::{from_hex, to_hex};
use commonware_runtime::{Blob as _, ReadOptions, Storage, WriteOptions};
use tracing::{debug, warn};

use super::{blob_hash, BlobView};
use crate::wire::MAX_BLOB_BYTES;

/// The default storage partition holding blobs.
pub const PARTITION: &str = "cairn-blobs";

const PRIVATE: u8 = 0;
const PUBLIC: u8 = 1;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob is larger than this store accepts.
    #[error("blob of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Length offered.
        len: u64,
        /// The store's limit.
        max: u64,
    },
    /// No blob with this hash is stored.
    #[error("no blob {0} is stored here")]
    Unknown(String),
    /// The runtime's storage failed (disk full, permissions, I/O error).
    #[error("blob storage failed: {0}")]
    Storage(#[from] commonware_runtime::Error),
}

#[derive(Clone)]
struct Entry {
    bytes: Arc<[u8]>,
    public: bool,
}

struct Inner<E> {
    storage: E,
    partition: String,
    max_blob_bytes: u64,
    index: Mutex<BTreeMap<[u8; 32], Entry>>,
    /// Serializes storage writes, so one runtime blob is never opened twice at once.
    writes: futures::lock::Mutex<()>,
}

/// Blobs addressed by blake3 hash: durable in the runtime's storage, read from memory.
///
/// Cloning shares the same store (the network service, the fetcher and the node hold clones).
pub struct BlobStore<E> {
    inner: Arc<Inner<E>>,
}

impl<E> Clone for BlobStore<E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<E> std::fmt::Debug for BlobStore<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("blobs", &self.index().len())
            .finish()
    }
}

impl<E: Storage> BlobStore<E> {
    /// Opens the store in `partition` (`[A-Za-z0-9_-]`), loading every blob synced before
    /// (torn or corrupt ones are removed). Blobs above `max_blob_bytes` (capped at
    /// [`MAX_BLOB_BYTES`]) are refused by [`BlobStore::put`].
    pub async fn open(storage: E, partition: &str, max_blob_bytes: u64) -> Result<Self, BlobError> {
        let names = match storage.scan(partition).await {
            Ok(names) => names,
            Err(commonware_runtime::Error::PartitionMissing(_)) => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        let mut index = BTreeMap::new();
        for name in names {
            let parsed = std::str::from_utf8(&name)
                .ok()
                .and_then(from_hex::<32>)
                .filter(|hash| to_hex(hash).as_bytes() == name.as_slice());
            let Some(hash) = parsed else {
                warn!(name = %String::from_utf8_lossy(&name), "removing a stray blob");
                storage.remove(partition, Some(&name)).await?;
                continue;
            };
            match read_entry(&storage, partition, &name, &hash).await? {
                Some(entry) => {
                    index.insert(hash, entry);
                }
                None => {
                    warn!(hash = %to_hex(&hash), "removing a torn or corrupt blob");
                    storage.remove(partition, Some(&name)).await?;
                }
            }
        }
        debug!(blobs = index.len(), "blob store opened");
        Ok(Self {
            inner: Arc::new(Inner {
                storage,
                partition: partition.to_owned(),
                max_blob_bytes: max_blob_bytes.min(MAX_BLOB_BYTES),
                index: Mutex::new(index),
                writes: futures::lock::Mutex::new(()),
            }),
        })
    }

    /// Stores `bytes` durably (synced before returning) and returns its blake3 hash. A private
    /// blob is kept locally and not served until [`BlobStore::publish`]. Storing a blob that is
    /// already here only widens its visibility if `public`.
    pub async fn put(&self, bytes: &[u8], public: bool) -> Result<[u8; 32], BlobError> {
        let len = bytes.len() as u64;
        if len > self.inner.max_blob_bytes {
            return Err(BlobError::TooLarge {
                len,
                max: self.inner.max_blob_bytes,
            });
        }
        let hash = blob_hash(bytes);
        let _write = self.inner.writes.lock().await;
        let existing = self.index().get(&hash).map(|entry| entry.public);
        match existing {
            Some(true) => return Ok(hash),
            Some(false) if !public => return Ok(hash),
            Some(false) => {
                self.write_visibility(&hash).await?;
            }
            None => {
                let mut content = Vec::with_capacity(bytes.len() + 1);
                content.push(if public { PUBLIC } else { PRIVATE });
                content.extend_from_slice(bytes);
                let name = to_hex(&hash);
                let (blob, size) = self
                    .inner
                    .storage
                    .open(&self.inner.partition, name.as_bytes())
                    .await?;
                if size > content.len() as u64 {
                    blob.resize(content.len() as u64).await?;
                }
                blob.write_at(0, content, WriteOptions::default()).await?;
                blob.sync().await?;
            }
        }
        let mut index = self.index();
        let entry = index.entry(hash).or_insert_with(|| Entry {
            bytes: Arc::from(bytes),
            public,
        });
        entry.public |= public;
        Ok(hash)
    }

    /// Makes a stored private blob available to peers (durably).
    pub async fn publish(&self, hash: &[u8; 32]) -> Result<(), BlobError> {
        let _write = self.inner.writes.lock().await;
        let public = self
            .index()
            .get(hash)
            .map(|entry| entry.public)
            .ok_or_else(|| BlobError::Unknown(to_hex(hash)))?;
        if !public {
            self.write_visibility(hash).await?;
            if let Some(entry) = self.index().get_mut(hash) {
                entry.public = true;
            }
        }
        Ok(())
    }

    /// Removes every blob for which `keep` is false (from memory and durably from storage);
    /// returns how many were removed.
    pub async fn prune(&self, keep: impl Fn(&[u8; 32]) -> bool) -> Result<usize, BlobError> {
        let _write = self.inner.writes.lock().await;
        let doomed: Vec<[u8; 32]> = self
            .index()
            .keys()
            .filter(|hash| !keep(hash))
            .copied()
            .collect();
        for hash in &doomed {
            self.inner
                .storage
                .remove(&self.inner.partition, Some(to_hex(hash).as_bytes()))
                .await?;
            self.index().remove(hash);
        }
        Ok(doomed.len())
    }

    async fn write_visibility(&self, hash: &[u8; 32]) -> Result<(), BlobError> {
        let name = to_hex(hash);
        let (blob, _) = self
            .inner
            .storage
            .open(&self.inner.partition, name.as_bytes())
            .await?;
        blob.write_at(0, vec![PUBLIC], WriteOptions::default())
            .await?;
        blob.sync().await?;
        Ok(())
    }
}

impl<E> BlobStore<E> {
    fn index(&self) -> MutexGuard<'_, BTreeMap<[u8; 32], Entry>> {
        // A poisoned lock only means another thread panicked mid-update of a plain map whose
        // entries are each written whole; the map itself is still consistent.
        self.inner
            .index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The blob's bytes if it is stored and public (what may be served to peers).
    pub fn public_blob(&self, hash: &[u8; 32]) -> Option<Arc<[u8]>> {
        self.index()
            .get(hash)
            .filter(|entry| entry.public)
            .map(|entry| Arc::clone(&entry.bytes))
    }

    /// Whether a blob is stored (public or private).
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.index().contains_key(hash)
    }

    /// Whether a stored blob is public; `None` if it is not stored.
    pub fn is_public(&self, hash: &[u8; 32]) -> Option<bool> {
        self.index().get(hash).map(|entry| entry.public)
    }

    /// Hashes of every stored blob, ascending.
    pub fn hashes(&self) -> Vec<[u8; 32]> {
        self.index().keys().copied().collect()
    }

    /// The largest blob this store accepts.
    pub fn max_blob_bytes(&self) -> u64 {
        self.inner.max_blob_bytes
    }
}

impl<E> BlobView for BlobStore<E> {
    fn blob(&self, hash: &[u8; 32]) -> Option<Arc<[u8]>> {
        self.index().get(hash).map(|entry| Arc::clone(&entry.bytes))
    }
}

/// Reads one stored blob; `None` when its content is torn or does not match its hash.
async fn read_entry<E: Storage>(
    storage: &E,
    partition: &str,
    name: &[u8],
    hash: &[u8; 32],
) -> Result<Option<Entry>, BlobError> {
    let (blob, size) = storage.open(partition, name).await?;
    if size == 0 || size > MAX_BLOB_BYTES + 1 {
        return Ok(None);
    }
    let len = usize::try_from(size).map_err(|_| BlobError::TooLarge {
        len: size,
        max: MAX_BLOB_BYTES,
    })?;
    let content = blob
        .read_at(0, len, ReadOptions::default())
        .await?
        .coalesce();
    let content: &[u8] = content.as_ref();
    let (visibility, bytes) = (content[0], &content[1..]);
    if visibility > PUBLIC || blob_hash(bytes) != *hash {
        return Ok(None);
    }
    Ok(Some(Entry {
        bytes: Arc::from(bytes),
        public: visibility == PUBLIC,
    }))
}
