//! Durable, authenticated ledger state: a key-value store with a Merkle state root per block.
//!
//! The state machine reads through [`StateRead`] and hands each block's changes to
//! [`Store::commit`] as a [`ChangeSet`]; the commit writes values, tree nodes, the new root and the
//! block record in one redb transaction, so a crash leaves either the whole block or none of it.
//! [`MemoryStore`] has the same semantics in memory and gives the same roots bit for bit.
//!
//! A block whose header carries the expected root goes through [`Store::commit_expecting`], which
//! computes the tree once and writes nothing unless the root matches.
//!
//! Light clients check single facts against a block's root with a [`Proof`]:
//!
//! ```
//! use cairn_ledger::store::{ChangeSet, MemoryStore, Proof};
//!
//! let mut store = MemoryStore::new();
//! let mut changes = ChangeSet::new();
//! changes.insert(b"task/7/round/3/model".to_vec(), Some(b"model-hash".to_vec()));
//! let root = store.commit(0, &changes, b"block 0")?;
//!
//! // The full node sends proof bytes; the light client needs only the trusted root.
//! let bytes = store.prove(b"task/7/round/3/model")?.to_bytes();
//! let proof = Proof::from_bytes(&bytes)?;
//! proof.verify(&root, b"task/7/round/3/model", Some(b"model-hash"))?;
//! assert!(proof.verify(&root, b"task/7/round/3/model", Some(b"forged")).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Design notes (tree shape, hashing, proof format, what is kept and why): `docs/ledger-store.md`.

mod durable;
mod error;
mod memory;
mod node;
mod page;
mod proof;
mod readonly;
mod seal;
pub mod synthetic;
mod tree;
mod verify;

pub use durable::Store;
pub use error::{containing_panics, ProofError, StoreError};
pub use memory::MemoryStore;
pub use node::{key_hash, value_hash, Digest, EMPTY_HASH};
pub use proof::{verify_proof_bytes, Proof, Terminal, MAX_PROOF_BYTES};
pub use verify::{Damage, VerifyReport};

/// A state key (the state machine's own encoding, e.g. `b"acct/" ++ public key`).
pub type Key = Vec<u8>;
/// A state value (the state machine's canonical encoding of the record).
pub type Value = Vec<u8>;

/// Changes made by one block: key -> `Some(new value)` or `None` (delete; deleting an absent key
/// does nothing). A `BTreeMap`, so iteration is sorted and deterministic.
pub type ChangeSet = std::collections::BTreeMap<Key, Option<Value>>;

/// Height of the first block a store accepts: the genesis block is committed at height 0.
pub const GENESIS_HEIGHT: u64 = 0;

/// Read access to ledger state: what the state machine needs while executing a block.
pub trait StateRead {
    /// The value stored under `key`, or `None` if absent.
    fn get(&self, key: &[u8]) -> Result<Option<Value>, StoreError>;
}

impl<S: StateRead + ?Sized> StateRead for &S {
    fn get(&self, key: &[u8]) -> Result<Option<Value>, StoreError> {
        (**self).get(key)
    }
}

/// The height a store expects next, given its last committed height.
pub(crate) fn next_height(height: Option<u64>) -> u64 {
    height.map_or(GENESIS_HEIGHT, |h| h.saturating_add(1))
}

/// Checks that `height` is the one a store at `current` expects next.
pub(crate) fn check_next_height(current: Option<u64>, height: u64) -> Result<(), StoreError> {
    let expected = next_height(current);
    if height != expected || current == Some(u64::MAX) {
        return Err(StoreError::HeightGap {
            expected,
            got: height,
        });
    }
    Ok(())
}

/// The common interface of [`Store`] and [`MemoryStore`], for code generic over both.
pub trait StateStore: StateRead {
    /// Last committed block height, `None` before the genesis block.
    fn height(&self) -> Option<u64>;
    /// The height the next [`StateStore::commit`] must use.
    fn next_height(&self) -> u64 {
        next_height(self.height())
    }
    /// State root after the last committed block ([`EMPTY_HASH`] if none).
    fn root(&self) -> Digest;
    /// Applies one block's changes atomically and returns the new root.
    fn commit(
        &mut self,
        height: u64,
        changes: &ChangeSet,
        block_record: &[u8],
    ) -> Result<Digest, StoreError>;
    /// Applies one block's changes atomically if, and only if, they give `expected` as the new
    /// root; returns that root.
    ///
    /// The tree is computed once, inside the commit, so checking a block header's root costs no
    /// second tree update (as [`StateStore::root_with`] followed by [`StateStore::commit`] would).
    /// If the computed root differs, the commit is abandoned before anything is written and the
    /// error is [`StoreError::RootMismatch`]; on that or any other error the store is unchanged.
    fn commit_expecting(
        &mut self,
        height: u64,
        changes: &ChangeSet,
        block_record: &[u8],
        expected: &Digest,
    ) -> Result<Digest, StoreError>;
    /// The record stored with block `height`, if committed.
    fn block_record(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// The state root after block `height`, if committed.
    fn root_at(&self, height: u64) -> Result<Option<Digest>, StoreError>;
    /// Inclusion or exclusion proof for `key` against [`StateStore::root`].
    fn prove(&self, key: &[u8]) -> Result<Proof, StoreError>;
    /// All pairs whose key starts with `prefix`, sorted by key.
    fn iter_prefix(&self, prefix: &[u8]) -> Result<Vec<(Key, Value)>, StoreError>;
    /// The root `changes` would give on top of the current state, without committing them.
    fn root_with(&self, changes: &ChangeSet) -> Result<Digest, StoreError>;
}

// Stores, proofs and their errors cross threads (a node serves queries while it commits) and
// convert into `anyhow::Error` in the binary: keep them `Send + Sync + 'static`.
const _: () = {
    const fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Store>();
    send_sync::<MemoryStore>();
    send_sync::<StoreError>();
    send_sync::<Proof>();
    send_sync::<ProofError>();
};

/// Implements [`StateStore`] by forwarding to the type's inherent methods of the same names.
macro_rules! forward_state_store {
    ($store:ty) => {
        impl $crate::store::StateStore for $store {
            fn height(&self) -> Option<u64> {
                <$store>::height(self)
            }
            fn root(&self) -> $crate::store::Digest {
                <$store>::root(self)
            }
            fn commit(
                &mut self,
                height: u64,
                changes: &$crate::store::ChangeSet,
                block_record: &[u8],
            ) -> Result<$crate::store::Digest, $crate::store::StoreError> {
                <$store>::commit(self, height, changes, block_record)
            }
            fn commit_expecting(
                &mut self,
                height: u64,
                changes: &$crate::store::ChangeSet,
                block_record: &[u8],
                expected: &$crate::store::Digest,
            ) -> Result<$crate::store::Digest, $crate::store::StoreError> {
                <$store>::commit_expecting(self, height, changes, block_record, expected)
            }
            fn block_record(
                &self,
                height: u64,
            ) -> Result<Option<Vec<u8>>, $crate::store::StoreError> {
                <$store>::block_record(self, height)
            }
            fn root_at(
                &self,
                height: u64,
            ) -> Result<Option<$crate::store::Digest>, $crate::store::StoreError> {
                <$store>::root_at(self, height)
            }
            fn prove(&self, key: &[u8]) -> Result<$crate::store::Proof, $crate::store::StoreError> {
                <$store>::prove(self, key)
            }
            fn iter_prefix(
                &self,
                prefix: &[u8],
            ) -> Result<Vec<($crate::store::Key, $crate::store::Value)>, $crate::store::StoreError>
            {
                <$store>::iter_prefix(self, prefix)
            }
            fn root_with(
                &self,
                changes: &$crate::store::ChangeSet,
            ) -> Result<$crate::store::Digest, $crate::store::StoreError> {
                <$store>::root_with(self, changes)
            }
        }
    };
}
pub(crate) use forward_state_store;
