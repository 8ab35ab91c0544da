//! A damaged state database gives a typed error, never a panic and never silently wrong state.

use std::path::Path;

use cairn_ledger::store::synthetic::Workload;
use cairn_ledger::store::{StateRead, Store, StoreError};
use redb::ReadableTable;

const NODES: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("tree_nodes");
const VALUES: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("state_values");
const ROOTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("roots");

/// Writes a store of a few hundred keys over 8 blocks and returns its final root.
fn populate(path: &Path) -> [u8; 32] {
    let workload = Workload {
        seed: 11,
        changes_per_block: 200,
        key_space: 600,
        delete_weight: 30,
    };
    let mut store = Store::open(path).unwrap();
    for height in 0..8 {
        let changes = workload.block(height);
        store
            .commit(height, &changes, &workload.record(height, &changes))
            .unwrap();
    }
    store.root()
}

/// Edits the raw redb tables behind the store's back, as disk corruption or a bad tool might.
fn tamper(path: &Path, edit: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    edit(&txn);
    txn.commit().unwrap();
}

/// Opens the store and, if that works, exercises every read path; returns the first error.
fn open_and_read_everything(path: &Path) -> Result<(), StoreError> {
    let store = Store::open(path)?;
    store.audit()?;
    store.get(b"acct/anything")?;
    store.prove(b"acct/anything")?;
    store.iter_prefix(b"acct/")?;
    store.root_at(0)?;
    store.block_record(0)?;
    Ok(())
}

#[test]
fn truncated_database_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    populate(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    for keep in [0u64, 100, 512, 4096, len / 2, len - 1] {
        let copy = dir.path().join(format!("truncated-{keep}.redb"));
        std::fs::copy(&path, &copy).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .unwrap()
            .set_len(keep)
            .unwrap();
        match open_and_read_everything(&copy) {
            // An empty file is a fresh database; any other cut must be detected.
            Ok(()) => assert_eq!(
                keep, 0,
                "a file cut to {keep} of {len} bytes opened cleanly"
            ),
            Err(
                StoreError::Database { .. }
                | StoreError::Damaged { .. }
                | StoreError::CorruptNode { .. }
                | StoreError::CorruptRecord { .. },
            ) => {}
            Err(other) => panic!("unexpected error kind for a truncated file: {other}"),
        }
    }
}

#[test]
fn overwritten_file_header_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    populate(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..64].fill(0xAB);
    std::fs::write(&path, &bytes).unwrap();
    let error = Store::open(&path).expect_err("a garbage header must not open");
    assert!(matches!(error, StoreError::Database { .. }), "{error}");
    assert!(
        error.to_string().contains("opening the state database"),
        "{error}"
    );
}

#[test]
fn a_tampered_tree_node_is_reported_as_a_corrupt_node() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    populate(&path);
    // Change a hash that the depth-1 node on the right side (slot 2 of the root page: the page
    // is a u16 bitmap then 65-byte nodes in slot order) records for one of its children.
    tamper(&path, |txn| {
        let mut nodes = txn.open_table(NODES).unwrap();
        let key = [0u8, 0];
        let mut page = nodes.get(&key[..]).unwrap().unwrap().value().to_vec();
        assert_eq!(page[..2], [0x7f, 0xff], "600 keys fill the top four levels");
        page[2 + 2 * 65 + 40] ^= 1;
        nodes.insert(&key[..], page.as_slice()).unwrap();
    });
    // The root node is intact and matches the root record: open succeeds, but every path
    // through the damaged node is refused.
    let mut store = Store::open(&path).unwrap();
    assert!(matches!(store.audit(), Err(StoreError::CorruptNode { .. })));
    let right_side_key = (0u32..)
        .map(|i| format!("probe{i}").into_bytes())
        .find(|k| blake3::hash(k).as_bytes()[0] & 0x80 != 0)
        .unwrap();
    assert!(matches!(
        store.prove(&right_side_key),
        Err(StoreError::CorruptNode { .. })
    ));
    let changes = [(right_side_key, Some(b"v".to_vec()))]
        .into_iter()
        .collect();
    assert!(matches!(
        store.root_with(&changes),
        Err(StoreError::CorruptNode { .. })
    ));
    let height = store.height().unwrap();
    assert!(matches!(
        store.commit(height + 1, &changes, b""),
        Err(StoreError::CorruptNode { .. })
    ));
    assert_eq!(
        store.height(),
        Some(height),
        "a refused block is not committed"
    );
}

#[test]
fn a_malformed_root_node_or_root_record_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    populate(&path);
    let pristine = std::fs::read(&path).unwrap();
    tamper(&path, |txn| {
        let mut nodes = txn.open_table(NODES).unwrap();
        nodes.insert(&[0u8, 0][..], &[7u8; 10][..]).unwrap();
    });
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::CorruptNode { .. })
    ));

    std::fs::write(&path, &pristine).unwrap();
    tamper(&path, |txn| {
        let mut roots = txn.open_table(ROOTS).unwrap();
        roots.insert(7, &[1u8; 5][..]).unwrap();
    });
    let error = Store::open(&path).unwrap_err();
    assert!(
        matches!(&error, StoreError::DamagedRecord { table: "roots", key, .. } if key == "height 7"),
        "{error}"
    );

    std::fs::write(&path, &pristine).unwrap();
    tamper(&path, |txn| {
        let mut roots = txn.open_table(ROOTS).unwrap();
        roots.insert(7, &[1u8; 48][..]).unwrap();
    });
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::DamagedRecord { table: "roots", .. })
    ));
}

#[test]
fn a_value_changed_behind_the_trees_back_fails_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    populate(&path);
    tamper(&path, |txn| {
        let mut values = txn.open_table(VALUES).unwrap();
        let key = values.first().unwrap().unwrap().0.value().to_vec();
        values.insert(key.as_slice(), &b"forged"[..]).unwrap();
    });
    let store = Store::open(&path).unwrap();
    assert!(matches!(
        store.audit(),
        Err(StoreError::DamagedRecord {
            table: "state_values",
            ..
        })
    ));
}

#[test]
fn flipped_bytes_anywhere_in_the_file_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let root = populate(&path);
    let pristine = std::fs::read(&path).unwrap();
    let mut outcomes = [0usize; 2];
    for i in 0..60usize {
        let mut bytes = pristine.clone();
        // Spread the damage over the file, several bytes at a time.
        let at = (i * 7919 * 613) % bytes.len();
        for b in &mut bytes[at..(at + 16).min(pristine.len())] {
            *b ^= 0x5A;
        }
        let copy = dir.path().join(format!("flipped-{i}.redb"));
        std::fs::write(&copy, &bytes).unwrap();
        match open_and_read_everything(&copy) {
            Ok(()) => {
                // Damage to unused pages is harmless; damage to live data must not pass the audit.
                assert_eq!(Store::open(&copy).unwrap().root(), root);
                outcomes[0] += 1;
            }
            Err(_) => outcomes[1] += 1,
        }
    }
    assert!(
        outcomes[1] > 0,
        "no corruption was ever detected: {outcomes:?}"
    );
}
