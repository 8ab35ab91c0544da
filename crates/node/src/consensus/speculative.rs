//! Ledger state after blocks that are notarized but not final yet, over the durable store.
//!
//! simplex builds on parents that are only notarized, and Cairn's header carries the state root
//! *after* the block, so proposers and verifiers execute unfinalized blocks. Each such block's
//! own changes are kept by digest; the state after a pending block is the store plus the changes
//! of every pending block on the path from the store's tip to it (a path that does not reach the
//! tip is a dead fork and counts as unknown). Finalized blocks are committed through
//! [`LedgerState::commit_finalized`], which reuses the pending changes when it has them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cairn_ledger::block::{transactions_root, Block, Header};
use cairn_ledger::encoding::{to_hex, Hash};
use cairn_ledger::execute::{build_block, execute_block, BlockError};
use cairn_ledger::state::StateError;
use cairn_ledger::store::{ChangeSet, StateRead, StateStore, StoreError, Value};
use cairn_ledger::transaction::SignedTransaction;
use cairn_ledger::DatasetRegistry;
use commonware_codec::{Decode, Encode, FixedSize};

/// Why consensus could not read, extend or commit the ledger.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// The ledger store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block was rejected by the ledger rules.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The store holds no block; commit the genesis block first.
    #[error("the ledger store is empty; create it with the chain's genesis first")]
    EmptyStore,
    /// A stored block record does not decode.
    #[error("the stored record of block {height} is damaged: {reason}")]
    BadRecord {
        /// Height of the record.
        height: u64,
        /// The decoder's complaint.
        reason: String,
    },
    /// A finalized block does not follow the store's tip.
    #[error("finalized block {got} does not follow the store's tip {tip}; the store and the consensus archives disagree (use the same store the node ran with)")]
    HeightGap {
        /// The store's last height.
        tip: u64,
        /// The block's height.
        got: u64,
    },
    /// A finalized block conflicts with what the store committed at its height.
    #[error("block {height} conflicts with the committed one: header root {header} but committed root {committed}")]
    Conflict {
        /// Height.
        height: u64,
        /// The block header's state root.
        header: String,
        /// What the store committed.
        committed: String,
    },
    /// The genesis is invalid.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// An epoch could not be entered.
    #[error("epochs: {0}")]
    Epoch(String),
    /// A consensus archive could not be opened.
    #[error("a consensus archive could not be opened: {0}")]
    Archive(String),
    /// A lock was poisoned by a panic elsewhere.
    #[error("a ledger lock was poisoned by a panic in another task")]
    Poisoned,
}

/// What the ledger can say about a block at this moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The block is valid on top of its parent; its state is known.
    Valid,
    /// The block can never be valid (bad execution, wrong root, or conflicts with finality).
    Invalid,
    /// The parent's state is not known (yet); ask again after executing its ancestors.
    Unknown,
}

/// Where a block stands relative to the state the ledger knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Its post-state is known: it is the store's tip or a pending block reaching it.
    Known,
    /// It is committed below the tip: valid, but its state is no longer available.
    Committed,
    /// It sits at or below the tip but is not the committed block there.
    Conflicting,
    /// Its parent's state is known, so it can be executed now.
    ParentKnown,
    /// Neither it nor its parent is known: its ancestors must be executed first.
    Unknown,
}

struct Pending {
    header: Header,
    changes: ChangeSet,
}

struct Speculative {
    tip: Header,
    tip_hash: Hash,
    pending: BTreeMap<Hash, Pending>,
}

/// The durable ledger store plus the pending (notarized, not final) blocks on top of it, and
/// the chain's datasets (which task creation and the dispute referee read).
///
/// Cloning shares both. Locks are always taken store first, then the pending map.
pub struct LedgerState<S> {
    store: Arc<Mutex<S>>,
    speculative: Arc<Mutex<Speculative>>,
    datasets: Arc<DatasetRegistry>,
}

impl<S> Clone for LedgerState<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            speculative: self.speculative.clone(),
            datasets: self.datasets.clone(),
        }
    }
}

/// Reads a set of changes first, then the store.
struct Layered<'a, S> {
    changes: &'a ChangeSet,
    store: &'a S,
}

impl<S: StateRead> StateRead for Layered<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Value>, StoreError> {
        match self.changes.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.store.get(key),
        }
    }
}

/// The header of the block committed at `height`.
pub fn committed_header<S: StateStore>(store: &S, height: u64) -> Result<Header, ConsensusError> {
    let record = store
        .block_record(height)?
        .ok_or_else(|| ConsensusError::BadRecord {
            height,
            reason: "missing".into(),
        })?;
    if record.len() < Header::SIZE {
        return Err(ConsensusError::BadRecord {
            height,
            reason: "shorter than a header".into(),
        });
    }
    Header::decode_cfg(commonware_codec::Copying(&record[..Header::SIZE]), &()).map_err(|error| {
        ConsensusError::BadRecord {
            height,
            reason: error.to_string(),
        }
    })
}

fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>, ConsensusError> {
    mutex.lock().map_err(|_| ConsensusError::Poisoned)
}

/// A block error that says nothing about the block (the store failed): not a verdict.
fn is_local_failure(error: &BlockError) -> bool {
    matches!(error, BlockError::State(StateError::Store(_)))
}

impl<S: StateStore + Send + 'static> LedgerState<S> {
    /// Opens over a store that holds at least the genesis block; `datasets` must hold every
    /// dataset the chain serves.
    pub fn open(
        store: Arc<Mutex<S>>,
        datasets: Arc<DatasetRegistry>,
    ) -> Result<Self, ConsensusError> {
        let tip = {
            let guard = lock(&store)?;
            let height = guard.height().ok_or(ConsensusError::EmptyStore)?;
            cairn_ledger::chain::check_datasets(&*guard, &datasets)
                .map_err(|error| ConsensusError::Genesis(error.to_string()))?;
            committed_header(&*guard, height)?
        };
        let tip_hash = tip.hash();
        Ok(Self {
            store,
            speculative: Arc::new(Mutex::new(Speculative {
                tip,
                tip_hash,
                pending: BTreeMap::new(),
            })),
            datasets,
        })
    }

    /// The shared durable store.
    pub fn store(&self) -> &Arc<Mutex<S>> {
        &self.store
    }

    /// The header of the store's last committed block.
    pub fn tip(&self) -> Result<Header, ConsensusError> {
        Ok(lock(&self.speculative)?.tip.clone())
    }

    /// Number of pending (executed, not yet final) blocks kept.
    pub fn pending_len(&self) -> Result<usize, ConsensusError> {
        Ok(lock(&self.speculative)?.pending.len())
    }

    /// Where the block `hash` (at `height`, child of `parent`) stands.
    pub fn standing(
        &self,
        hash: &Hash,
        height: u64,
        parent: &Hash,
    ) -> Result<Standing, ConsensusError> {
        let store = lock(&self.store)?;
        let speculative = lock(&self.speculative)?;
        if speculative.path(hash).is_some() {
            return Ok(Standing::Known);
        }
        if height <= speculative.tip.height {
            let committed = committed_header(&*store, height)?;
            return Ok(if committed.hash() == *hash {
                Standing::Committed
            } else {
                Standing::Conflicting
            });
        }
        if speculative.path(parent).is_some() {
            return Ok(Standing::ParentKnown);
        }
        Ok(Standing::Unknown)
    }

    /// Executes `block` on its parent's state and, if its header root matches, keeps its
    /// changes as pending. Idempotent for blocks already known.
    pub fn execute(&self, block: &Block) -> Result<Verdict, ConsensusError> {
        let hash = block.hash();
        let store = lock(&self.store)?;
        let mut speculative = lock(&self.speculative)?;
        if speculative.path(&hash).is_some() {
            return Ok(Verdict::Valid);
        }
        let Some((parent, cumulative)) = speculative.state_after(&block.header.parent) else {
            return Ok(Verdict::Unknown);
        };
        let layered = Layered {
            changes: &cumulative,
            store: &*store,
        };
        let changes = match execute_block(&layered, &parent, block, &self.datasets) {
            Ok(changes) => changes,
            Err(error) if is_local_failure(&error) => return Err(error.into()),
            Err(error) => {
                tracing::warn!(height = block.header.height, %error, "block rejected");
                return Ok(Verdict::Invalid);
            }
        };
        let mut merged = cumulative;
        merged.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        let root = store.root_with(&merged)?;
        if root != block.header.state_root {
            tracing::warn!(
                height = block.header.height,
                header = %to_hex(&block.header.state_root),
                computed = %to_hex(&root),
                "block rejected: state root mismatch"
            );
            return Ok(Verdict::Invalid);
        }
        speculative.pending.insert(
            hash,
            Pending {
                header: block.header.clone(),
                changes,
            },
        );
        Ok(Verdict::Valid)
    }

    /// Builds a block on the known state after `parent` from `candidates` (invalid ones are
    /// left out) and keeps it as pending. `None` when the parent's state is not known.
    pub fn build(
        &self,
        parent: &Hash,
        candidates: Vec<SignedTransaction>,
    ) -> Result<Option<Block>, ConsensusError> {
        let store = lock(&self.store)?;
        let mut speculative = lock(&self.speculative)?;
        let Some((parent, cumulative)) = speculative.state_after(parent) else {
            return Ok(None);
        };
        let layered = Layered {
            changes: &cumulative,
            store: &*store,
        };
        let proposal = build_block(&layered, &parent, candidates, &self.datasets)?;
        let mut merged = cumulative;
        merged.extend(proposal.changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        let state_root = store.root_with(&merged)?;
        let block = Block {
            header: Header {
                chain_id: parent.chain_id,
                height: parent.height + 1,
                parent: parent.hash(),
                transactions_root: transactions_root(&proposal.transactions),
                state_root,
            },
            transactions: proposal.transactions,
        };
        speculative.pending.insert(
            block.hash(),
            Pending {
                header: block.header.clone(),
                changes: proposal.changes,
            },
        );
        Ok(Some(block))
    }

    /// Commits a finalized block to the store (header root must match) and forgets pending
    /// blocks at or below its height. A block the store already holds is checked against the
    /// committed root and not applied again; returns whether it was newly committed.
    pub fn commit_finalized(&self, block: &Block) -> Result<bool, ConsensusError> {
        let height = block.header.height;
        let hash = block.hash();
        let mut store = lock(&self.store)?;
        let mut speculative = lock(&self.speculative)?;
        let tip = speculative.tip.height;
        if height <= tip {
            let committed = committed_header(&*store, height)?;
            if committed.hash() != hash {
                return Err(ConsensusError::Conflict {
                    height,
                    header: to_hex(&block.header.state_root),
                    committed: to_hex(&committed.state_root),
                });
            }
            return Ok(false);
        }
        if height != tip + 1 {
            return Err(ConsensusError::HeightGap { tip, got: height });
        }
        let changes = match speculative.pending.get(&hash) {
            Some(pending) if pending.header.parent == speculative.tip_hash => {
                pending.changes.clone()
            }
            _ => execute_block(&*store, &speculative.tip, block, &self.datasets)?,
        };
        store
            .commit_expecting(height, &changes, &block.encode(), &block.header.state_root)
            .map_err(|error| match error {
                StoreError::RootMismatch { expected, computed } => {
                    ConsensusError::Block(BlockError::StateRootMismatch {
                        expected: to_hex(&expected),
                        computed: to_hex(&computed),
                    })
                }
                other => ConsensusError::Store(other),
            })?;
        speculative.tip = block.header.clone();
        speculative.tip_hash = hash;
        speculative
            .pending
            .retain(|_, pending| pending.header.height > height);
        Ok(true)
    }
}

impl Speculative {
    /// The pending blocks from the tip (exclusive) to `hash` (inclusive), oldest first; empty
    /// for the tip itself; `None` if `hash` does not reach the tip through pending blocks.
    fn path(&self, hash: &Hash) -> Option<Vec<&Pending>> {
        let mut path = Vec::new();
        let mut current = *hash;
        loop {
            if current == self.tip_hash {
                path.reverse();
                return Some(path);
            }
            let pending = self.pending.get(&current)?;
            if pending.header.height <= self.tip.height {
                return None;
            }
            current = pending.header.parent;
            path.push(pending);
        }
    }

    /// The header of block `hash` and the changes from the store's tip to the state after it.
    fn state_after(&self, hash: &Hash) -> Option<(Header, ChangeSet)> {
        let path = self.path(hash)?;
        let header = path
            .last()
            .map_or_else(|| self.tip.clone(), |p| p.header.clone());
        let mut cumulative = ChangeSet::new();
        for pending in path {
            cumulative.extend(pending.changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Some((header, cumulative))
    }
}

#[cfg(test)]
#[path = "speculative_tests.rs"]
mod tests;
