//! In-memory state store with the durable store's semantics and roots, for tests and simulation.

use std::collections::BTreeMap;

use super::error::StoreError;
use super::node::{Digest, Node, NodePath, EMPTY_HASH};
use super::proof::Proof;
use super::tree::{self, NodeSource};
use super::{check_next_height, forward_state_store, ChangeSet, Key, StateRead, Value};

/// In-memory ledger state: same tree, same roots bit for bit, same height rules as [`super::Store`].
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    values: BTreeMap<Key, Value>,
    nodes: BTreeMap<NodePath, Node>,
    /// Root after each committed block, indexed by height.
    roots: Vec<Digest>,
    /// Record of each committed block, indexed by height.
    records: Vec<Vec<u8>>,
}

/// The node map read as the tree's source.
struct Nodes<'a>(&'a BTreeMap<NodePath, Node>);

impl NodeSource for Nodes<'_> {
    fn node(&self, path: &NodePath) -> Result<Option<Node>, StoreError> {
        Ok(self.0.get(path).copied())
    }

    fn untrusted(&self) -> bool {
        false
    }
}

impl MemoryStore {
    /// An empty store: no block committed, root [`EMPTY_HASH`].
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Last committed block height, `None` before the genesis block.
    pub fn height(&self) -> Option<u64> {
        (self.roots.len() as u64).checked_sub(1)
    }

    /// The height the next [`MemoryStore::commit`] must use.
    pub fn next_height(&self) -> u64 {
        super::next_height(self.height())
    }

    /// State root after the last committed block ([`EMPTY_HASH`] if none).
    pub fn root(&self) -> Digest {
        self.roots.last().copied().unwrap_or(EMPTY_HASH)
    }

    /// Applies one block's changes; `height` must be the next height. Returns the new root.
    pub fn commit(
        &mut self,
        height: u64,
        changes: &ChangeSet,
        block_record: &[u8],
    ) -> Result<Digest, StoreError> {
        self.commit_with_check(height, changes, block_record, None)
    }

    /// Applies one block's changes only if they give `expected` as the new root, computing the
    /// tree once; otherwise fails with [`StoreError::RootMismatch`] and leaves the store untouched.
    pub fn commit_expecting(
        &mut self,
        height: u64,
        changes: &ChangeSet,
        block_record: &[u8],
        expected: &Digest,
    ) -> Result<Digest, StoreError> {
        self.commit_with_check(height, changes, block_record, Some(expected))
    }

    /// The commit behind [`MemoryStore::commit`] and [`MemoryStore::commit_expecting`]: every
    /// check (height, keys, expected root) runs before the first mutation.
    fn commit_with_check(
        &mut self,
        height: u64,
        changes: &ChangeSet,
        block_record: &[u8],
        expected: Option<&Digest>,
    ) -> Result<Digest, StoreError> {
        check_next_height(self.height(), height)?;
        let leaf_changes = tree::leaf_changes(changes)?;
        let update = tree::update(&Nodes(&self.nodes), &leaf_changes)?;
        if let Some(expected) = expected {
            if update.root != *expected {
                return Err(StoreError::RootMismatch {
                    expected: *expected,
                    computed: update.root,
                });
            }
        }
        for (path, node) in update.writes {
            match node {
                Some(node) => self.nodes.insert(path, node),
                None => self.nodes.remove(&path),
            };
        }
        for (key, value) in changes {
            match value {
                Some(value) => self.values.insert(key.clone(), value.clone()),
                None => self.values.remove(key),
            };
        }
        self.roots.push(update.root);
        self.records.push(block_record.to_vec());
        Ok(update.root)
    }

    /// The record stored with block `height`, if committed.
    pub fn block_record(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(usize::try_from(height)
            .ok()
            .and_then(|h| self.records.get(h))
            .cloned())
    }

    /// The state root after block `height`, if committed.
    pub fn root_at(&self, height: u64) -> Result<Option<Digest>, StoreError> {
        Ok(usize::try_from(height)
            .ok()
            .and_then(|h| self.roots.get(h))
            .copied())
    }

    /// Inclusion or exclusion proof for `key` against [`MemoryStore::root`].
    pub fn prove(&self, key: &[u8]) -> Result<Proof, StoreError> {
        tree::prove(&Nodes(&self.nodes), key)
    }

    /// All pairs whose key starts with `prefix`, sorted by key.
    pub fn iter_prefix(&self, prefix: &[u8]) -> Result<Vec<(Key, Value)>, StoreError> {
        Ok(self
            .values
            .range::<[u8], _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    /// The root `changes` would give on top of the current state, without committing them.
    pub fn root_with(&self, changes: &ChangeSet) -> Result<Digest, StoreError> {
        let leaf_changes = tree::leaf_changes(changes)?;
        Ok(tree::update(&Nodes(&self.nodes), &leaf_changes)?.root)
    }

    /// Number of key/value pairs in the current state.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the current state holds no pairs.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Checks the whole tree against the root and the value map (for tests and audits).
    pub fn audit(&self) -> Result<(), StoreError> {
        let count = tree::audit(&Nodes(&self.nodes), NodePath::ROOT, &self.root())?;
        if count.nodes != self.nodes.len() as u64 {
            return Err(StoreError::CorruptRecord {
                table: "memory",
                reason: format!(
                    "{} nodes stored but only {} reachable from the root",
                    self.nodes.len(),
                    count.nodes
                ),
            });
        }
        if count.leaves != self.values.len() as u64 {
            return Err(StoreError::CorruptRecord {
                table: "memory",
                reason: format!(
                    "tree holds {} leaves but the state holds {} values",
                    count.leaves,
                    self.values.len()
                ),
            });
        }
        Ok(())
    }

    /// Number of tree nodes stored (leaves plus internal nodes).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

impl StateRead for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Value>, StoreError> {
        Ok(self.values.get(key).cloned())
    }
}

forward_state_store!(MemoryStore);
