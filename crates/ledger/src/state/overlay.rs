//! A write buffer over read-only state: reads fall through to the base, writes stay in a
//! [`ChangeSet`] until the owner merges or commits them.

use commonware_codec::{Decode, Encode, Read};

use crate::encoding::to_hex;
use crate::store::{ChangeSet, StateRead, StoreError, Value};

/// Why the state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record does not decode: the database is damaged or from another version.
    #[error(
        "stored record under key {key} does not decode: {reason}; restore the store from a peer"
    )]
    Corrupt {
        /// Hex of the key.
        key: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// Amounts read from the store sum past `u128::MAX`, which no valid state can hold.
    #[error("the {what} in the store sum past u128::MAX: the state is inconsistent; restore the store from a peer")]
    Overflow {
        /// What was being summed.
        what: &'static str,
    },
}

/// Pending changes layered over a base state.
pub struct Overlay<'a> {
    base: &'a dyn StateRead,
    changes: ChangeSet,
}

impl<'a> Overlay<'a> {
    /// An empty overlay over `base`.
    pub fn new(base: &'a dyn StateRead) -> Self {
        Self {
            base,
            changes: ChangeSet::new(),
        }
    }

    /// Reads and decodes a record; `None` when absent.
    pub fn read<T: Read<Cfg = ()>>(&self, key: &[u8]) -> Result<Option<T>, StateError> {
        self.read_cfg(key, &())
    }

    /// Reads and decodes a record whose decoder takes a configuration (bounds).
    pub fn read_cfg<T: Read>(&self, key: &[u8], cfg: &T::Cfg) -> Result<Option<T>, StateError> {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => {
                T::decode_cfg(bytes, cfg)
                    .map(Some)
                    .map_err(|error| StateError::Corrupt {
                        key: to_hex(key),
                        reason: error.to_string(),
                    })
            }
        }
    }

    /// Encodes and writes a record.
    pub fn write<T: Encode>(&mut self, key: Vec<u8>, value: &T) {
        self.changes.insert(key, Some(value.encode().to_vec()));
    }

    /// Deletes a record.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.changes.insert(key, None);
    }

    /// Applies changes made on top of this overlay (by a nested one that succeeded).
    pub fn merge(&mut self, changes: ChangeSet) {
        self.changes.extend(changes);
    }

    /// The pending changes.
    pub fn changes(&self) -> &ChangeSet {
        &self.changes
    }

    /// Gives up the pending changes.
    pub fn into_changes(self) -> ChangeSet {
        self.changes
    }
}

impl StateRead for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Value>, StoreError> {
        match self.changes.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.base.get(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn nested_overlay_writes_reach_the_parent_only_when_merged() {
        let mut store = MemoryStore::new();
        let mut base = ChangeSet::new();
        base.insert(b"k".to_vec(), Some(5u64.encode().to_vec()));
        store.commit(0, &base, b"").unwrap();

        let mut block = Overlay::new(&store);
        let mut failed = Overlay::new(&block);
        failed.write(b"k".to_vec(), &6u64);
        assert_eq!(failed.read::<u64>(b"k").unwrap(), Some(6));
        drop(failed);
        assert_eq!(block.read::<u64>(b"k").unwrap(), Some(5));

        let mut ok = Overlay::new(&block);
        ok.delete(b"k".to_vec());
        let changes = ok.into_changes();
        block.merge(changes);
        assert_eq!(block.read::<u64>(b"k").unwrap(), None);
        assert_eq!(store.get(b"k").unwrap(), Some(5u64.encode().to_vec()));
    }

    #[test]
    fn undecodable_record_is_a_typed_error() {
        let mut store = MemoryStore::new();
        let mut base = ChangeSet::new();
        base.insert(b"k".to_vec(), Some(vec![1, 2, 3]));
        store.commit(0, &base, b"").unwrap();
        let overlay = Overlay::new(&store);
        assert!(matches!(
            overlay.read::<u64>(b"k"),
            Err(StateError::Corrupt { .. })
        ));
    }
}
