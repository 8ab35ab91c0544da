//! Damaged records are never served, reads never write, and an unfinished store is not a ledger.
//!
//! Each test damages or probes a real redb file the way disk faults, killed writers and careless
//! tools do, then checks that every read answers the original bytes or a typed error.

use std::path::Path;

use cairn_ledger::store::synthetic::Workload;
use cairn_ledger::store::{MemoryStore, StateRead, Store, StoreError};
use proptest::prelude::*;
use redb::{ReadableTable, ReadableTableMetadata};

const VALUES: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("state_values");
const NODES: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("tree_nodes");
const ROOTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("roots");
const BLOCKS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("block_records");

/// Blocks written by [`populate`].
const BLOCKS_WRITTEN: u64 = 4;

fn workload() -> Workload {
    Workload {
        seed: 29,
        changes_per_block: 60,
        key_space: 150,
        delete_weight: 30,
    }
}

/// Writes [`BLOCKS_WRITTEN`] blocks to a store at `path` and the same blocks to a memory store,
/// which then holds the original of every record.
fn populate(path: &Path) -> MemoryStore {
    let workload = workload();
    let mut store = Store::open(path).unwrap();
    let mut memory = MemoryStore::new();
    for height in 0..BLOCKS_WRITTEN {
        let changes = workload.block(height);
        let record = workload.record(height, &changes);
        store.commit(height, &changes, &record).unwrap();
        memory.commit(height, &changes, &record).unwrap();
    }
    assert_eq!(store.root(), memory.root());
    memory
}

fn file_hash(path: &Path) -> blake3::Hash {
    blake3::hash(&std::fs::read(path).unwrap())
}

/// Edits the raw redb tables behind the store's back.
fn tamper(path: &Path, edit: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    edit(&txn);
    txn.commit().unwrap();
}

/// Whether an error is one of the store's "your data is damaged" answers.
fn is_damage(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::DamagedRecord { .. }
            | StoreError::CorruptNode { .. }
            | StoreError::CorruptRecord { .. }
            | StoreError::Damaged { .. }
    )
}

/// Every read of `store` gives what `original` holds, or a damage error; returns how many reads
/// were refused.
fn check_every_read(store: &Store, original: &MemoryStore) -> usize {
    let mut refused = 0;
    let mut outcome = |label: &str, result: Result<bool, StoreError>| match result {
        Ok(true) => {}
        Ok(false) => panic!("{label}: a read served a value that differs from what was written"),
        Err(error) => {
            assert!(is_damage(&error), "{label}: unexpected error {error}");
            refused += 1;
        }
    };
    let pairs = original.iter_prefix(b"").unwrap();
    for (key, value) in &pairs {
        outcome("get", store.get(key).map(|got| got.as_ref() == Some(value)));
        outcome(
            "prove",
            store.prove(key).map(|proof| {
                proof
                    .verify(&original.root(), key, Some(value.as_slice()))
                    .is_ok()
            }),
        );
    }
    outcome(
        "iter_prefix",
        store.iter_prefix(b"").map(|scan| scan == pairs),
    );
    for height in 0..BLOCKS_WRITTEN {
        outcome(
            "root_at",
            store
                .root_at(height)
                .map(|root| root == original.root_at(height).unwrap()),
        );
        outcome(
            "block_record",
            store
                .block_record(height)
                .map(|record| record == original.block_record(height).unwrap()),
        );
    }
    refused
}

#[test]
fn a_changed_byte_in_a_value_is_a_typed_error_and_verify_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let original = populate(&path);
    let (key, value) = original.iter_prefix(b"").unwrap().swap_remove(3);
    tamper(&path, |txn| {
        let mut values = txn.open_table(VALUES).unwrap();
        let mut stored = values
            .get(key.as_slice())
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        assert!(stored.starts_with(&value));
        stored[0] ^= 0x01;
        values.insert(key.as_slice(), stored.as_slice()).unwrap();
    });
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(store.root(), original.root(), "the root record is intact");
    let error = store.get(&key).unwrap_err();
    assert!(
        matches!(
            &error,
            StoreError::DamagedRecord {
                table: "state_values",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("state damaged"), "{error}");
    assert!(store.iter_prefix(b"").is_err(), "a scan through it fails");
    assert_eq!(check_every_read(&store, &original), 2);

    let report = store.verify().unwrap();
    assert!(!report.is_intact());
    assert_eq!(report.damage.len(), 1, "{:?}", report.damage);
    assert_eq!(report.damage[0].table, "state_values");
    assert_eq!(report.damage[0].record, key.escape_ascii().to_string());
    assert_ne!(
        report.recomputed_root, report.root,
        "without the damaged value the values give another root"
    );
}

#[test]
fn an_intact_store_verifies_and_its_values_recompute_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let original = populate(&path);
    let store = Store::open_read_only(&path).unwrap();
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.recomputed_root, original.root());
    assert_eq!(report.values, original.len() as u64);
    assert_eq!(
        (report.roots, report.blocks),
        (BLOCKS_WRITTEN, BLOCKS_WRITTEN)
    );
    assert_eq!(check_every_read(&store, &original), 0);
}

#[test]
fn reading_never_changes_the_file_even_after_an_unclean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let original = populate(&path);
    let before = file_hash(&path);
    for _ in 0..3 {
        let store = Store::open_read_only(&path).unwrap();
        check_every_read(&store, &original);
        assert!(store.verify().unwrap().is_intact());
        drop(store);
        assert_eq!(
            file_hash(&path),
            before,
            "a read-only open wrote to the file"
        );
    }

    // A copy taken while a writer holds the store open looks like a crashed writer's file: redb
    // must recover it, and does so in memory.
    let writer = Store::open(&path).unwrap();
    let crashed = dir.path().join("crashed.redb");
    std::fs::copy(&path, &crashed).unwrap();
    drop(writer);
    let crashed_before = file_hash(&crashed);
    let store = Store::open_read_only(&crashed).unwrap();
    assert_eq!(store.root(), original.root());
    assert_eq!(check_every_read(&store, &original), 0);
    drop(store);
    assert_eq!(file_hash(&crashed), crashed_before);
}

#[test]
fn a_read_only_store_refuses_to_commit_and_stays_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    populate(&path);
    let before = file_hash(&path);
    let mut store = Store::open_read_only(&path).unwrap();
    assert!(store.is_read_only());
    let changes = workload().block(BLOCKS_WRITTEN);
    assert!(matches!(
        store.commit(BLOCKS_WRITTEN, &changes, b"record"),
        Err(StoreError::ReadOnly)
    ));
    assert_eq!(store.height(), Some(BLOCKS_WRITTEN - 1));
    drop(store);
    assert_eq!(file_hash(&path), before);
}

#[test]
fn missing_empty_foreign_and_unfinished_files_are_not_ledgers() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.redb");
    assert!(matches!(
        Store::open_read_only(&missing),
        Err(StoreError::Missing { .. })
    ));
    assert!(!missing.exists(), "a read-only open created a file");

    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    let error = Store::open_read_only(&empty).unwrap_err();
    assert!(matches!(error, StoreError::NotAStore { .. }), "{error}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "still empty");

    assert!(matches!(
        Store::open_read_only(dir.path()),
        Err(StoreError::NotAStore { .. })
    ));

    let foreign = dir.path().join("foreign.redb");
    std::fs::write(&foreign, vec![0x5Au8; 10_000]).unwrap();
    assert!(Store::open_read_only(&foreign).is_err());

    // A redb database of another program: valid, but without the store's tables.
    let other = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&other).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<u64, u64>::new("x"))
            .unwrap()
            .insert(1, 2)
            .unwrap();
        txn.commit().unwrap();
    }
    let error = Store::open_read_only(&other).unwrap_err();
    assert!(matches!(error, StoreError::NotAStore { .. }), "{error}");

    // A store whose creator stopped before the genesis block: set up, never committed.
    let unfinished = dir.path().join("unfinished.redb");
    drop(Store::open(&unfinished).unwrap());
    let before = file_hash(&unfinished);
    let error = Store::open_read_only(&unfinished).unwrap_err();
    assert!(
        matches!(error, StoreError::NoCommittedBlock { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("no committed block"), "{error}");
    assert_eq!(file_hash(&unfinished), before);
}

/// The raw tables a damage case can pick from.
#[derive(Clone, Copy, Debug)]
enum Table {
    Values,
    Nodes,
    Roots,
    Blocks,
}

/// Flips `mask` into byte `at` (modulo its length) of record `index` (modulo the count) of
/// `table`; returns a description of the record for the verify check.
fn flip(path: &Path, table: Table, index: usize, at: usize, mask: u8) -> (Table, String) {
    let mut label = String::new();
    tamper(path, |txn| match table {
        Table::Values | Table::Nodes => {
            let definition = if matches!(table, Table::Values) {
                VALUES
            } else {
                NODES
            };
            let mut t = txn.open_table(definition).unwrap();
            let count = t.len().unwrap() as usize;
            let (key, mut bytes) = t
                .iter()
                .unwrap()
                .nth(index % count)
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.value().to_vec(), v.value().to_vec())
                })
                .unwrap();
            let at = at % bytes.len();
            bytes[at] ^= mask;
            t.insert(key.as_slice(), bytes.as_slice()).unwrap();
            label = key.escape_ascii().to_string();
        }
        Table::Roots | Table::Blocks => {
            let definition = if matches!(table, Table::Roots) {
                ROOTS
            } else {
                BLOCKS
            };
            let mut t = txn.open_table(definition).unwrap();
            let height = (index as u64) % BLOCKS_WRITTEN;
            let mut bytes = t.get(height).unwrap().unwrap().value().to_vec();
            let at = at % bytes.len();
            bytes[at] ^= mask;
            t.insert(height, bytes.as_slice()).unwrap();
            label = format!("height {height}");
        }
    });
    (table, label)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Flip one byte of one stored record anywhere: every read gives the original or a typed
    /// damage error, at least one read is refused, and `verify` names the damaged record.
    #[test]
    fn a_flipped_byte_in_any_record_is_refused_and_named(
        table in prop_oneof![
            Just(Table::Values), Just(Table::Nodes), Just(Table::Roots), Just(Table::Blocks)
        ],
        index in 0usize..10_000,
        at in 0usize..10_000,
        mask in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let original = populate(&path);
        let (table, label) = flip(&path, table, index, at, mask);
        let store = match Store::open_read_only(&path) {
            Ok(store) => store,
            Err(error) => {
                // Only damage on the open path (the last root, the tree's top) stops the open.
                prop_assert!(is_damage(&error), "open failed with {error}");
                return Ok(());
            }
        };
        let refused = check_every_read(&store, &original);
        let report = store.verify().unwrap();
        prop_assert!(!report.is_intact(), "{table:?} {label}: verify missed the damage");
        prop_assert!(refused > 0, "{table:?} {label}: no read noticed the damage");
        match table {
            Table::Values | Table::Roots | Table::Blocks => {
                let expected = match table {
                    Table::Values => "state_values",
                    Table::Roots => "roots",
                    _ => "block_records",
                };
                prop_assert!(
                    report.damage.iter().any(|d| d.table == expected && d.record == label),
                    "{table:?} {label}: not named in {:?}", report.damage
                );
            }
            Table::Nodes => {
                prop_assert!(
                    report.damage.iter().any(|d| d.table == "tree_nodes"),
                    "{label}: tree damage not named in {:?}", report.damage
                );
            }
        }
    }
}
