//! The durable state store: values, tree nodes, roots and block records in one redb file.
//!
//! Every block is one redb write transaction, so after a crash the file holds exactly the blocks
//! whose commit returned (redb's commit is atomic and, by default, fsynced before it returns).
//! Only the current tree is kept (nodes are keyed by position, grouped in 4-level pages, and
//! overwritten); the root of every height and every block record are kept, so old roots stay
//! checkable but not provable.

use std::path::Path;

use redb::{Database, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::error::{contain, db_err, StoreError};
use super::node::{key_hash, value_hash, Digest, NodePath, EMPTY_HASH};
use super::page::{self, PagedNodes};
use super::proof::{Proof, Terminal};
use super::tree::{self, NodeSource};
use super::{check_next_height, forward_state_store, ChangeSet, Key, StateRead, Value};

/// Current value of every state key.
const VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state_values");
/// Current tree nodes in 4-level pages, keyed by the page root's [`NodePath::storage_key`].
const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tree_nodes");
/// State root after each committed height.
const ROOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("roots");
/// The record the state machine stored with each height.
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("block_records");
/// Store metadata (format version).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Key in [`META`] holding the on-disk format version.
const FORMAT_KEY: &str = "format_version";
/// On-disk format this build reads and writes.
const FORMAT_VERSION: u64 = 1;

/// Durable ledger state backed by a single redb file; see the module documentation.
pub struct Store {
    /// Always `Some` except while dropping (see `Drop`).
    db: Option<Database>,
    height: Option<u64>,
    root: Digest,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("height", &self.height)
            .field("root", &DisplayDigest(&self.root))
            .finish_non_exhaustive()
    }
}

/// Shows a digest as hex in logs and debug output.
struct DisplayDigest<'a>(&'a Digest);

impl std::fmt::Debug for DisplayDigest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Decodes a stored 32-byte root.
fn decode_root(bytes: &[u8], height: u64) -> Result<Digest, StoreError> {
    bytes.try_into().map_err(|_| StoreError::CorruptRecord {
        table: "roots",
        reason: format!(
            "root of height {height} has {} bytes, expected 32",
            bytes.len()
        ),
    })
}

impl Store {
    /// Opens the store at `path`, creating an empty one if the file does not exist.
    ///
    /// Checks the format version and that the stored tree hashes to the last stored root, so a
    /// damaged file is reported here rather than at the next block.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        contain("opening the state database", || {
            let db = Database::create(path).map_err(db_err("opening the state database"))?;
            let txn = db
                .begin_write()
                .map_err(db_err("starting the setup transaction"))?;
            {
                let mut meta = txn
                    .open_table(META)
                    .map_err(db_err("opening the meta table"))?;
                let format = meta
                    .get(FORMAT_KEY)
                    .map_err(db_err("reading the format version"))?
                    .map(|guard| guard.value());
                match format {
                    Some(FORMAT_VERSION) => {}
                    Some(found) => {
                        return Err(StoreError::UnsupportedFormat {
                            found,
                            supported: FORMAT_VERSION,
                        })
                    }
                    None => {
                        meta.insert(FORMAT_KEY, FORMAT_VERSION)
                            .map_err(db_err("writing the format version"))?;
                    }
                }
                txn.open_table(VALUES)
                    .map_err(db_err("creating the values table"))?;
                txn.open_table(NODES)
                    .map_err(db_err("creating the nodes table"))?;
                txn.open_table(ROOTS)
                    .map_err(db_err("creating the roots table"))?;
                txn.open_table(BLOCKS)
                    .map_err(db_err("creating the block table"))?;
            }
            txn.commit()
                .map_err(db_err("committing the setup transaction"))?;

            let read = db
                .begin_read()
                .map_err(db_err("starting a read transaction"))?;
            let roots = read
                .open_table(ROOTS)
                .map_err(db_err("opening the roots table"))?;
            let (height, root) = match roots.last().map_err(db_err("reading the last root"))? {
                None => (None, EMPTY_HASH),
                Some((height, root)) => {
                    let height = height.value();
                    (Some(height), decode_root(root.value(), height)?)
                }
            };
            let nodes = read
                .open_table(NODES)
                .map_err(db_err("opening the nodes table"))?;
            let top = PagedNodes::new(&nodes).node(&NodePath::ROOT)?;
            if super::node::subtree_hash(&top) != root {
                return Err(StoreError::CorruptNode {
                    path: NodePath::ROOT.to_string(),
                    reason: "stored tree does not hash to the last stored root".to_owned(),
                });
            }
            tracing::debug!(height = ?height, path = %path.display(), "opened state store");
            drop((roots, nodes, read));
            Ok(Store {
                db: Some(db),
                height,
                root,
            })
        })
    }

    /// Last committed block height, `None` before the genesis block.
    pub fn height(&self) -> Option<u64> {
        self.height
    }

    /// The height the next [`Store::commit`] must use.
    pub fn next_height(&self) -> u64 {
        super::next_height(self.height)
    }

    /// State root after the last committed block ([`EMPTY_HASH`] if none).
    pub fn root(&self) -> Digest {
        self.root
    }

    /// Applies one block atomically: values, tree nodes, root and record in one transaction.
    ///
    /// `height` must be [`Store::next_height`]. Returns the new root. On error nothing is
    /// written and the store stays at the previous height.
    pub fn commit(
        &mut self,
        height: u64,
        changes: &ChangeSet,
        block_record: &[u8],
    ) -> Result<Digest, StoreError> {
        self.commit_with_check(height, changes, block_record, None)
    }

    /// Applies one block atomically only if its changes give `expected` as the new root.
    ///
    /// The tree is computed once, inside the block's write transaction. If the root differs the
    /// transaction is dropped before anything is written (redb aborts it) and the error is
    /// [`StoreError::RootMismatch`]; the store stays at the previous height and root.
    pub fn commit_expecting(
        &mut self,
        height: u64,
        changes: &ChangeSet,
        block_record: &[u8],
        expected: &Digest,
    ) -> Result<Digest, StoreError> {
        self.commit_with_check(height, changes, block_record, Some(expected))
    }

    /// The commit behind [`Store::commit`] and [`Store::commit_expecting`]: one write
    /// transaction, in which the tree update (and the root check) comes before any write.
    fn commit_with_check(
        &mut self,
        height: u64,
        changes: &ChangeSet,
        block_record: &[u8],
        expected: Option<&Digest>,
    ) -> Result<Digest, StoreError> {
        contain("committing a block", || {
            check_next_height(self.height, height)?;
            let leaf_changes = tree::leaf_changes(changes)?;
            let txn = self
                .database()?
                .begin_write()
                .map_err(db_err("starting a block transaction"))?;
            let root = {
                let mut nodes = txn
                    .open_table(NODES)
                    .map_err(db_err("opening the nodes table"))?;
                let source = PagedNodes::new(&nodes);
                let update = tree::update(&source, &leaf_changes)?;
                if let Some(expected) = expected {
                    if update.root != *expected {
                        // Returning drops `txn` uncommitted: redb aborts it, nothing was written.
                        return Err(StoreError::RootMismatch {
                            expected: *expected,
                            computed: update.root,
                        });
                    }
                }
                let pages = source.into_pages();
                page::write_nodes(&mut nodes, pages, &update.writes)?;
                let mut values = txn
                    .open_table(VALUES)
                    .map_err(db_err("opening the values table"))?;
                for (key, value) in changes {
                    match value {
                        Some(value) => values.insert(key.as_slice(), value.as_slice()).map(drop),
                        None => values.remove(key.as_slice()).map(drop),
                    }
                    .map_err(db_err("writing a state value"))?;
                }
                let mut roots = txn
                    .open_table(ROOTS)
                    .map_err(db_err("opening the roots table"))?;
                roots
                    .insert(height, update.root.as_slice())
                    .map_err(db_err("writing the block root"))?;
                let mut blocks = txn
                    .open_table(BLOCKS)
                    .map_err(db_err("opening the block table"))?;
                blocks
                    .insert(height, block_record)
                    .map_err(db_err("writing the block record"))?;
                update.root
            };
            txn.commit().map_err(db_err("committing a block"))?;
            self.height = Some(height);
            self.root = root;
            tracing::debug!(height, changes = changes.len(), "committed block");
            Ok(root)
        })
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.database()?
            .begin_read()
            .map_err(db_err("starting a read transaction"))
    }

    /// The record stored with block `height`, if committed.
    pub fn block_record(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        contain("reading a block record", || {
            let read = self.read()?;
            let blocks = read
                .open_table(BLOCKS)
                .map_err(db_err("opening the block table"))?;
            let record = blocks
                .get(height)
                .map_err(db_err("reading a block record"))?;
            Ok(record.map(|guard| guard.value().to_vec()))
        })
    }

    /// The state root after block `height`, if committed.
    pub fn root_at(&self, height: u64) -> Result<Option<Digest>, StoreError> {
        contain("reading a block root", || {
            let read = self.read()?;
            let roots = read
                .open_table(ROOTS)
                .map_err(db_err("opening the roots table"))?;
            let root = roots.get(height).map_err(db_err("reading a block root"))?;
            root.map(|guard| decode_root(guard.value(), height))
                .transpose()
        })
    }

    /// Inclusion or exclusion proof for `key` against [`Store::root`].
    pub fn prove(&self, key: &[u8]) -> Result<Proof, StoreError> {
        contain("proving a key", || {
            let read = self.read()?;
            let nodes = read
                .open_table(NODES)
                .map_err(db_err("opening the nodes table"))?;
            tree::prove(&PagedNodes::new(&nodes), key)
        })
    }

    /// All pairs whose key starts with `prefix`, sorted by key.
    pub fn iter_prefix(&self, prefix: &[u8]) -> Result<Vec<(Key, Value)>, StoreError> {
        contain("scanning state values", || {
            let read = self.read()?;
            let values = read
                .open_table(VALUES)
                .map_err(db_err("opening the values table"))?;
            let mut out = Vec::new();
            for entry in values
                .range(prefix..)
                .map_err(db_err("scanning state values"))?
            {
                let (key, value) = entry.map_err(db_err("scanning state values"))?;
                if !key.value().starts_with(prefix) {
                    break;
                }
                out.push((key.value().to_vec(), value.value().to_vec()));
            }
            Ok(out)
        })
    }

    /// The root `changes` would give on top of the current state, without committing them.
    pub fn root_with(&self, changes: &ChangeSet) -> Result<Digest, StoreError> {
        contain("computing a prospective root", || {
            let leaf_changes = tree::leaf_changes(changes)?;
            let read = self.read()?;
            let nodes = read
                .open_table(NODES)
                .map_err(db_err("opening the nodes table"))?;
            Ok(tree::update(&PagedNodes::new(&nodes), &leaf_changes)?.root)
        })
    }

    /// Checks the whole store: tree shape and hashes against the root, no unreachable nodes,
    /// and every stored value proven by the tree. O(size); for tools and tests, not per block.
    pub fn audit(&self) -> Result<(), StoreError> {
        contain("auditing the store", || {
            let read = self.read()?;
            let nodes = read
                .open_table(NODES)
                .map_err(db_err("opening the nodes table"))?;
            let source = PagedNodes::new(&nodes);
            let count = tree::audit(&source, NodePath::ROOT, &self.root)?;
            let mut stored = 0u64;
            for entry in nodes.iter().map_err(db_err("scanning tree pages"))? {
                let (key, bytes) = entry.map_err(db_err("scanning tree pages"))?;
                stored += page::stored_nodes(key.value(), bytes.value())?;
            }
            let corrupt = |reason: String| StoreError::CorruptRecord {
                table: "tree_nodes",
                reason,
            };
            if stored != count.nodes {
                return Err(corrupt(format!(
                    "{stored} nodes stored but {} reachable from the root",
                    count.nodes
                )));
            }
            let values = read
                .open_table(VALUES)
                .map_err(db_err("opening the values table"))?;
            let value_count = values.len().map_err(db_err("counting state values"))?;
            if value_count != count.leaves {
                return Err(corrupt(format!(
                    "{value_count} values stored but the tree holds {} leaves",
                    count.leaves
                )));
            }
            for entry in values.iter().map_err(db_err("scanning state values"))? {
                let (key, value) = entry.map_err(db_err("scanning state values"))?;
                let proof = tree::prove(&source, key.value())?;
                let expected = Terminal::Leaf {
                    key_hash: key_hash(key.value()),
                    value_hash: value_hash(value.value()),
                };
                if proof.terminal() != &expected {
                    return Err(StoreError::CorruptRecord {
                        table: "state_values",
                        reason: "a stored value differs from the value the tree commits to"
                            .to_owned(),
                    });
                }
            }
            Ok(())
        })
    }
}

impl Store {
    /// The open database (absent only while the store is being dropped).
    fn database(&self) -> Result<&Database, StoreError> {
        self.db.as_ref().ok_or(StoreError::Damaged {
            context: "using the state database",
            message: "the database handle was already released".to_owned(),
        })
    }
}

impl Drop for Store {
    /// Closing flushes redb's allocator state, which can still assert on a damaged file: contain
    /// that too, so dropping a store never aborts the process mid-unwind.
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            let _ = contain("closing the state database", || {
                drop(db);
                Ok(())
            });
        }
    }
}

impl StateRead for Store {
    fn get(&self, key: &[u8]) -> Result<Option<Value>, StoreError> {
        contain("reading a state value", || {
            let read = self.read()?;
            let values = read
                .open_table(VALUES)
                .map_err(db_err("opening the values table"))?;
            let value = values.get(key).map_err(db_err("reading a state value"))?;
            Ok(value.map(|guard| guard.value().to_vec()))
        })
    }
}

forward_state_store!(Store);
