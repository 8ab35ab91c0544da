//! The durable state store: values, tree nodes, roots and block records in one redb file.
//!
//! Every block is one redb write transaction, so after a crash the file holds exactly the blocks
//! whose commit returned (redb's commit is atomic and, by default, fsynced before it returns).
//! Only the current tree is kept (nodes are keyed by position, grouped in 4-level pages, and
//! overwritten); the root of every height and every block record are kept, so old roots stay
//! checkable but not provable.
//!
//! Every value, root and block record is stored with a checksum (`seal.rs`) and checked on every
//! read: damaged state is a [`StoreError::DamagedRecord`], never a value. [`Store::open_read_only`]
//! reads a store without changing a byte of its file, for tools that only inspect.

use std::path::Path;

use redb::{
    Database, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableError,
};

use super::error::{contain, db_err, StoreError};
use super::node::{key_hash, value_hash, Digest, NodePath, EMPTY_HASH};
use super::page::{self, PagedNodes};
use super::proof::{Proof, Terminal};
use super::readonly::ReadOnlyFile;
use super::seal::{self, height_key};
use super::tree::{self, NodeSource};
use super::{check_next_height, forward_state_store, ChangeSet, Key, StateRead, Value};

/// Name of [`VALUES`], also the table name its checksums are bound to.
pub(super) const VALUES_NAME: &str = "state_values";
/// Name of [`ROOTS`].
pub(super) const ROOTS_NAME: &str = "roots";
/// Name of [`BLOCKS`].
pub(super) const BLOCKS_NAME: &str = "block_records";
/// Current value of every state key, sealed with its checksum.
pub(super) const VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new(VALUES_NAME);
/// Current tree nodes in 4-level pages, keyed by the page root's [`NodePath::storage_key`].
pub(super) const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tree_nodes");
/// State root after each committed height, sealed with its checksum.
pub(super) const ROOTS: TableDefinition<u64, &[u8]> = TableDefinition::new(ROOTS_NAME);
/// The record the state machine stored with each height, sealed with its checksum.
pub(super) const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new(BLOCKS_NAME);
/// Store metadata (format version).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Key in [`META`] holding the on-disk format version.
const FORMAT_KEY: &str = "format_version";
/// On-disk format this build reads and writes (2: records carry checksums).
const FORMAT_VERSION: u64 = 2;

/// Durable ledger state backed by a single redb file; see the module documentation.
pub struct Store {
    /// Always `Some` except while dropping (see `Drop`).
    db: Option<Database>,
    height: Option<u64>,
    root: Digest,
    /// Opened by [`Store::open_read_only`]: commits are refused, the file is never written.
    read_only: bool,
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

/// Checks and decodes a stored 32-byte root.
pub(super) fn decode_root(stored: &[u8], height: u64) -> Result<Digest, StoreError> {
    let bytes = seal::open(ROOTS_NAME, &height_key(height), stored).map_err(name_height(height))?;
    bytes.try_into().map_err(|_| StoreError::CorruptRecord {
        table: ROOTS_NAME,
        reason: format!(
            "root of height {height} has {} bytes, expected 32",
            bytes.len()
        ),
    })
}

/// Checks a stored state value and returns its payload.
pub(super) fn open_value<'a>(key: &[u8], stored: &'a [u8]) -> Result<&'a [u8], StoreError> {
    seal::open(VALUES_NAME, key, stored)
}

/// Checks a stored block record and returns its payload.
pub(super) fn open_block(height: u64, stored: &[u8]) -> Result<&[u8], StoreError> {
    seal::open(BLOCKS_NAME, &height_key(height), stored).map_err(name_height(height))
}

/// Names a height-indexed record by its height rather than its key bytes.
fn name_height(height: u64) -> impl FnOnce(StoreError) -> StoreError {
    move |error| match error {
        StoreError::DamagedRecord { table, reason, .. } => StoreError::DamagedRecord {
            table,
            key: format!("height {height}"),
            reason,
        },
        other => other,
    }
}

/// Reads the last committed height and root, and checks that the stored tree hashes to it.
fn load(db: &Database) -> Result<(Option<u64>, Digest), StoreError> {
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
    Ok((height, root))
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
            let (height, root) = load(&db)?;
            tracing::debug!(height = ?height, path = %path.display(), "opened state store");
            Ok(Store {
                db: Some(db),
                height,
                root,
                read_only: false,
            })
        })
    }

    /// Opens an existing store for reading only; the file is left exactly as it was.
    ///
    /// Unlike [`Store::open`] this never creates anything: a missing path is
    /// [`StoreError::Missing`], an empty file or one without the store's tables is
    /// [`StoreError::NotAStore`], and a store with no committed block (its creation was
    /// interrupted) is [`StoreError::NoCommittedBlock`]. Every commit is refused with
    /// [`StoreError::ReadOnly`]. Whatever redb writes while opening and closing (its "in use"
    /// flag, a repair after an unclean shutdown) stays in memory.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let not_a_store = |reason: &str| StoreError::NotAStore {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing {
                    path: path.to_owned(),
                })
            }
            Err(error) => {
                return Err(StoreError::Database {
                    context: "reading the state database's metadata",
                    source: Box::new(redb::Error::Io(error)),
                })
            }
        };
        if !metadata.is_file() {
            return Err(not_a_store("it is not a regular file"));
        }
        if metadata.len() == 0 {
            return Err(not_a_store("the file is empty (0 bytes)"));
        }
        contain("opening the state database read-only", || {
            let backend = ReadOnlyFile::open(path).map_err(|error| StoreError::Database {
                context: "opening the state database read-only",
                source: Box::new(redb::Error::Io(error)),
            })?;
            let db = Database::builder()
                .create_with_backend(backend)
                .map_err(db_err("opening the state database"))?;
            {
                let read = db
                    .begin_read()
                    .map_err(db_err("starting a read transaction"))?;
                let meta = match read.open_table(META) {
                    Ok(meta) => meta,
                    Err(TableError::TableDoesNotExist(_)) => {
                        return Err(not_a_store("it has no `meta` table"))
                    }
                    Err(error) => return Err(db_err("opening the meta table")(error)),
                };
                match meta
                    .get(FORMAT_KEY)
                    .map_err(db_err("reading the format version"))?
                    .map(|guard| guard.value())
                {
                    Some(FORMAT_VERSION) => {}
                    Some(found) => {
                        return Err(StoreError::UnsupportedFormat {
                            found,
                            supported: FORMAT_VERSION,
                        })
                    }
                    None => return Err(not_a_store("it records no format version")),
                }
                for name in [VALUES_NAME, "tree_nodes", ROOTS_NAME, BLOCKS_NAME] {
                    let exists = read
                        .list_tables()
                        .map_err(db_err("listing tables"))?
                        .any(|table| redb::TableHandle::name(&table) == name);
                    if !exists {
                        return Err(not_a_store(&format!("it has no `{name}` table")));
                    }
                }
            }
            let (height, root) = load(&db)?;
            if height.is_none() {
                return Err(StoreError::NoCommittedBlock {
                    path: path.to_owned(),
                });
            }
            tracing::debug!(height = ?height, path = %path.display(), "opened state store read-only");
            Ok(Store {
                db: Some(db),
                height,
                root,
                read_only: true,
            })
        })
    }

    /// Whether this store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
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
            if self.read_only {
                return Err(StoreError::ReadOnly);
            }
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
                        Some(value) => values
                            .insert(
                                key.as_slice(),
                                seal::seal(VALUES_NAME, key, value).as_slice(),
                            )
                            .map(drop),
                        None => values.remove(key.as_slice()).map(drop),
                    }
                    .map_err(db_err("writing a state value"))?;
                }
                let mut roots = txn
                    .open_table(ROOTS)
                    .map_err(db_err("opening the roots table"))?;
                let sealed_root = seal::seal(ROOTS_NAME, &height_key(height), &update.root);
                roots
                    .insert(height, sealed_root.as_slice())
                    .map_err(db_err("writing the block root"))?;
                let mut blocks = txn
                    .open_table(BLOCKS)
                    .map_err(db_err("opening the block table"))?;
                let sealed_record = seal::seal(BLOCKS_NAME, &height_key(height), block_record);
                blocks
                    .insert(height, sealed_record.as_slice())
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

    pub(super) fn read(&self) -> Result<ReadTransaction, StoreError> {
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
            record
                .map(|guard| open_block(height, guard.value()).map(<[u8]>::to_vec))
                .transpose()
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
                let payload = open_value(key.value(), value.value())?;
                out.push((key.value().to_vec(), payload.to_vec()));
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
                    value_hash: value_hash(open_value(key.value(), value.value())?),
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
            value
                .map(|guard| open_value(key, guard.value()).map(<[u8]>::to_vec))
                .transpose()
        })
    }
}

forward_state_store!(Store);
