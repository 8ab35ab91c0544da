//! Typed failures of the state store and of proof verification.

use super::node::Digest;
use crate::encoding::to_hex;

/// Why a store operation failed. The store never panics on a damaged database: it answers one of
/// these instead, and the caller decides (typically: stop the node and restore from peers).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The underlying redb database failed (I/O, corruption it detected, a held lock).
    #[error("state database failed while {context}: {source}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// The database's own error.
        #[source]
        source: Box<redb::Error>,
    },
    /// The database library panicked on damaged data; the panic was contained at the store's
    /// boundary (redb 2 still asserts on some malformed files, e.g. one truncated below its
    /// recorded length) and the operation had no effect.
    #[error("state database is damaged: {context} failed with `{message}`; restore the store from a peer or a backup")]
    Damaged {
        /// What the store was doing.
        context: &'static str,
        /// The contained panic's message.
        message: String,
    },
    /// A stored tree node is malformed or does not hash to what its parent records.
    #[error(
        "corrupt state tree node at {path}: {reason}; restore the store from a peer or a backup"
    )]
    CorruptNode {
        /// Position of the node in the tree.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another stored record (root history, metadata) is malformed or inconsistent.
    #[error("corrupt state store record in `{table}`: {reason}; restore the store from a peer or a backup")]
    CorruptRecord {
        /// Table holding the bad record.
        table: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored record fails its checksum: the bytes on disk are not what the store wrote. The
    /// value is never served; the caller should stop and restore the store.
    #[error("state damaged: the record `{key}` in `{table}` fails its check ({reason}), so it is not served; `cairn ledger verify` lists all damage; restore the store from a peer or a backup")]
    DamagedRecord {
        /// Table holding the record.
        table: &'static str,
        /// The record's key, escaped for printing (a height for roots and block records).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A store opened for reading does not exist.
    #[error("no state database at {}", .path.display())]
    Missing {
        /// Where it was looked for.
        path: std::path::PathBuf,
    },
    /// A file opened as a store for reading is not one (empty, or without the store's tables).
    #[error("{} is not a Cairn state database: {reason}", .path.display())]
    NotAStore {
        /// The file.
        path: std::path::PathBuf,
        /// Why not.
        reason: String,
    },
    /// A store opened for reading holds no committed block: whatever created it stopped before
    /// its genesis block was committed, so it is not a ledger, not even an empty one.
    #[error("{} holds no committed block: its creation stopped before the genesis block was committed; delete it and create the ledger again", .path.display())]
    NoCommittedBlock {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A write was attempted on a store opened read-only.
    #[error("the state store is open read-only and cannot commit blocks")]
    ReadOnly,
    /// A block was committed out of order: heights must follow each other without gaps.
    #[error("block height {got} cannot be committed: the next height is {expected}")]
    HeightGap {
        /// The height the store expects next.
        expected: u64,
        /// The height that was offered.
        got: u64,
    },
    /// A block's changes give a different state root from the one the caller expected (for a
    /// chain: the root in the block's header). Nothing was committed; the store is unchanged.
    #[error(
        "state root mismatch: expected {}, the changes give {}; nothing was committed",
        to_hex(.expected),
        to_hex(.computed)
    )]
    RootMismatch {
        /// The root the caller expected.
        expected: Digest,
        /// The root the changes actually give on top of the current state.
        computed: Digest,
    },
    /// Two distinct keys share a blake3 hash: cryptographically impossible, checked anyway.
    #[error("two distinct state keys have the same blake3 hash")]
    KeyHashCollision,
    /// The database was written by an incompatible version of this store.
    #[error("state store format {found} is not supported (this build reads format {supported})")]
    UnsupportedFormat {
        /// Format version found on disk.
        found: u64,
        /// Format version this build reads and writes.
        supported: u64,
    },
}

impl StoreError {
    /// Wraps a redb error with what the store was doing when it happened.
    pub(crate) fn database(context: &'static str) -> impl FnOnce(redb::Error) -> StoreError {
        move |source| StoreError::Database {
            context,
            source: Box::new(source),
        }
    }
}

thread_local! {
    /// How many [`contain`] calls are running on this thread.
    static CONTAINING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether the current thread is inside a store operation that contains panics: a panic raised
/// now becomes a [`StoreError::Damaged`], so a process-wide panic hook need not report it.
///
/// Binaries that install their own hook use this to keep raw panic text off stderr for failures
/// the store handles (`cairn`'s `main` does).
pub fn containing_panics() -> bool {
    CONTAINING.with(|depth| depth.get() > 0)
}

/// Runs `operation`, turning a panic inside the database library into [`StoreError::Damaged`].
///
/// `AssertUnwindSafe` is sound here: after a contained panic the store only ever reads redb's
/// state through redb itself, which reports poisoned internals as typed errors.
pub(crate) fn contain<T>(
    context: &'static str,
    operation: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    /// Marks the thread as containing until dropped, also when the operation unwinds.
    struct Containing;
    impl Drop for Containing {
        fn drop(&mut self) {
            CONTAINING.with(|depth| depth.set(depth.get().saturating_sub(1)));
        }
    }
    CONTAINING.with(|depth| depth.set(depth.get() + 1));
    let guard = Containing;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(operation));
    drop(guard);
    result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-text panic payload".to_owned());
        // The caller gets the error and decides how loud to be.
        tracing::debug!(context, %message, "contained a panic in the state database");
        Err(StoreError::Damaged { context, message })
    })
}

/// Wraps any redb error type (they all convert into [`redb::Error`]) with context.
pub(crate) fn db_err<E: Into<redb::Error>>(context: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::database(context)(e.into())
}

/// Why a proof was rejected, or why proof bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The bytes end before the proof does.
    #[error("proof truncated: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// Offset where more bytes were needed.
        offset: usize,
        /// How many more bytes.
        needed: usize,
    },
    /// Bytes remain after a complete proof.
    #[error("{0} unexpected bytes after the end of the proof")]
    TrailingBytes(usize),
    /// The proof encoding's version byte is unknown.
    #[error("unknown proof format version {0}")]
    UnknownVersion(u8),
    /// The terminal-kind byte is neither empty (0) nor leaf (1).
    #[error("unknown proof terminal kind {0}")]
    UnknownTerminal(u8),
    /// More siblings than a 256-bit key hash has levels.
    #[error("proof has {0} siblings; at most 256 are possible")]
    TooDeep(usize),
    /// The encoding is not canonical (an explicit empty sibling, or stray bits in the bitmap).
    #[error("proof encoding is not canonical: {0}")]
    NonCanonical(&'static str),
    /// An inclusion was asked for but the proof shows the key absent.
    #[error("proof shows the key absent, but a value was expected")]
    KeyAbsent,
    /// An exclusion was asked for but the proof shows the key present.
    #[error("proof shows the key present, but it was expected absent")]
    KeyPresent,
    /// The proven value differs from the expected one.
    #[error("proof commits to a different value for this key")]
    ValueMismatch,
    /// The leaf shown to exclude the key does not lie on the key's path.
    #[error("the proof's leaf does not lie on the key's path")]
    LeafOffPath,
    /// Recomputing up the path does not give the trusted root.
    #[error("proof does not match the state root")]
    RootMismatch,
}
