//! A full check of a durable store that names every damaged record instead of stopping at the
//! first: what `cairn ledger verify` prints.

use redb::{ReadableTable, ReadableTableMetadata};

use super::durable::{
    decode_root, open_block, open_value, BLOCKS, BLOCKS_NAME, NODES, ROOTS, ROOTS_NAME, VALUES,
    VALUES_NAME,
};
use super::error::{contain, db_err, StoreError};
use super::node::{key_hash, value_hash, Digest, NodePath};
use super::page::{self, PagedNodes};
use super::proof::Terminal;
use super::seal::describe_key;
use super::{tree, ChangeSet, MemoryStore, Store};

/// Most damaged records a report lists; past that it counts them.
pub const MAX_LISTED_DAMAGE: usize = 1000;

/// One damaged record or structure found by [`Store::verify`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Damage {
    /// Table holding it (`state_values`, `tree_nodes`, `roots`, `block_records`).
    pub table: &'static str,
    /// Which record: a state key (escaped), a height, or a tree path.
    pub record: String,
    /// What is wrong.
    pub problem: String,
}

/// What [`Store::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Last committed height.
    pub height: Option<u64>,
    /// The root stored for that height (the one the tree hashes to).
    pub root: Digest,
    /// The root recomputed from the stored values alone, leaving out damaged ones.
    pub recomputed_root: Digest,
    /// State values read.
    pub values: u64,
    /// Roots (one per committed height) read.
    pub roots: u64,
    /// Block records read.
    pub blocks: u64,
    /// Every damaged record found (at most [`MAX_LISTED_DAMAGE`]).
    pub damage: Vec<Damage>,
    /// Damaged records found beyond those listed.
    pub unlisted_damage: u64,
}

impl VerifyReport {
    /// Whether the store is intact: no damage, and the values give the stored root.
    pub fn is_intact(&self) -> bool {
        self.damage.is_empty() && self.unlisted_damage == 0 && self.recomputed_root == self.root
    }

    fn record(&mut self, table: &'static str, record: String, problem: String) {
        if self.damage.len() < MAX_LISTED_DAMAGE {
            self.damage.push(Damage {
                table,
                record,
                problem,
            });
        } else {
            self.unlisted_damage += 1;
        }
    }
}

/// The damage a failed record check describes.
fn problem(error: &StoreError) -> String {
    match error {
        StoreError::DamagedRecord { reason, .. } => reason.clone(),
        StoreError::CorruptRecord { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

impl Store {
    /// Checks every record of the store and recomputes the state root from the stored values.
    ///
    /// Unlike a read, which fails at the first damaged record it meets, this goes on and lists
    /// every record that fails its checksum, every value that differs from what the tree commits
    /// to, the first damaged tree node, and gaps in the root and block history. O(size of the
    /// state); for tools, not per block. An `Err` means the database itself could not be read;
    /// damage found is in the report ([`VerifyReport::is_intact`]).
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        contain("verifying the store", || {
            let read = self.read()?;
            let mut report = VerifyReport {
                height: self.height(),
                root: self.root(),
                recomputed_root: self.root(),
                values: 0,
                roots: 0,
                blocks: 0,
                damage: Vec::new(),
                unlisted_damage: 0,
            };

            // Values: each checked on its own, then all together against the root.
            let values = read
                .open_table(VALUES)
                .map_err(db_err("opening the values table"))?;
            let mut intact = ChangeSet::new();
            for entry in values.iter().map_err(db_err("scanning state values"))? {
                let (key, stored) = entry.map_err(db_err("scanning state values"))?;
                report.values += 1;
                match open_value(key.value(), stored.value()) {
                    Ok(payload) => {
                        intact.insert(key.value().to_vec(), Some(payload.to_vec()));
                    }
                    Err(error) => {
                        report.record(VALUES_NAME, describe_key(key.value()), problem(&error))
                    }
                }
            }
            report.recomputed_root = MemoryStore::new().root_with(&intact)?;

            // The tree: its shape and hashes from the stored root down.
            let nodes = read
                .open_table(NODES)
                .map_err(db_err("opening the nodes table"))?;
            let source = PagedNodes::new(&nodes);
            match tree::audit(&source, NodePath::ROOT, &self.root()) {
                Ok(count) => {
                    if count.leaves != report.values {
                        report.record(
                            "tree_nodes",
                            "root".to_owned(),
                            format!(
                                "the tree holds {} leaves but {} values are stored",
                                count.leaves, report.values
                            ),
                        );
                    }
                    let mut stored = 0u64;
                    for entry in nodes.iter().map_err(db_err("scanning tree pages"))? {
                        let (key, bytes) = entry.map_err(db_err("scanning tree pages"))?;
                        match page::stored_nodes(key.value(), bytes.value()) {
                            Ok(n) => stored += n,
                            Err(error) => report.record(
                                "tree_nodes",
                                describe_key(key.value()),
                                problem(&error),
                            ),
                        }
                    }
                    if stored != count.nodes {
                        report.record(
                            "tree_nodes",
                            "root".to_owned(),
                            format!(
                                "{stored} nodes stored but {} reachable from the root",
                                count.nodes
                            ),
                        );
                    }
                }
                Err(StoreError::CorruptNode { path, reason }) => {
                    report.record("tree_nodes", path, reason)
                }
                Err(other) => return Err(other),
            }

            // Which intact-looking values disagree with the tree (possible only if both a value
            // and its checksum were rewritten, or the tree is damaged).
            if report.recomputed_root != report.root {
                for (key, value) in &intact {
                    let Some(value) = value else { continue };
                    let expected = Terminal::Leaf {
                        key_hash: key_hash(key),
                        value_hash: value_hash(value),
                    };
                    match tree::prove(&source, key) {
                        Ok(proof) if proof.terminal() == &expected => {}
                        Ok(_) => report.record(
                            VALUES_NAME,
                            describe_key(key),
                            "differs from the value the state tree commits to".to_owned(),
                        ),
                        // A damaged path is already reported as a tree node.
                        Err(_) => {}
                    }
                }
            }

            // History: one root and one block record per height, 0 to the last, each intact.
            let roots = read
                .open_table(ROOTS)
                .map_err(db_err("opening the roots table"))?;
            let blocks = read
                .open_table(BLOCKS)
                .map_err(db_err("opening the block table"))?;
            report.roots = roots.len().map_err(db_err("counting roots"))?;
            report.blocks = blocks.len().map_err(db_err("counting block records"))?;
            let expected = self.height().map_or(0, |h| h.saturating_add(1));
            for (name, count) in [(ROOTS_NAME, report.roots), (BLOCKS_NAME, report.blocks)] {
                if count != expected {
                    report.record(
                        name,
                        "history".to_owned(),
                        format!("{count} records for {expected} committed heights"),
                    );
                }
            }
            for entry in roots.iter().map_err(db_err("scanning roots"))? {
                let (height, stored) = entry.map_err(db_err("scanning roots"))?;
                let height = height.value();
                if let Err(error) = decode_root(stored.value(), height) {
                    report.record(ROOTS_NAME, format!("height {height}"), problem(&error));
                }
            }
            for entry in blocks.iter().map_err(db_err("scanning block records"))? {
                let (height, stored) = entry.map_err(db_err("scanning block records"))?;
                let height = height.value();
                if let Err(error) = open_block(height, stored.value()) {
                    report.record(BLOCKS_NAME, format!("height {height}"), problem(&error));
                }
            }
            Ok(report)
        })
    }
}
