//! A commit that expects a root (`commit_expecting`) writes nothing when the changes give another
//! root, on both stores; a chain block whose header root is wrong is rejected the same way.

mod common;

use cairn_ledger::encoding::to_hex;
use cairn_ledger::store::{ChangeSet, Digest, MemoryStore, StateStore, Store, StoreError};
use cairn_ledger::{BlockError, Chain, ChainError, Params, Payload};
use common::*;

/// Everything a failed commit must leave alone: height, root, every value, the next height's
/// root and record slots.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    height: Option<u64>,
    root: Digest,
    values: Vec<(Vec<u8>, Vec<u8>)>,
    next_root: Option<Digest>,
    next_record: Option<Vec<u8>>,
}

fn snapshot<S: StateStore>(store: &S) -> Snapshot {
    let next = store.next_height();
    Snapshot {
        height: store.height(),
        root: store.root(),
        values: store.iter_prefix(b"").unwrap(),
        next_root: store.root_at(next).unwrap(),
        next_record: store.block_record(next).unwrap(),
    }
}

fn base_changes() -> ChangeSet {
    (0u8..32)
        .map(|i| (vec![b'k', i], Some(vec![i; 8])))
        .collect()
}

/// A block that updates, deletes and adds keys.
fn block_changes() -> ChangeSet {
    let mut changes = ChangeSet::new();
    changes.insert(vec![b'k', 3], Some(b"updated".to_vec()));
    changes.insert(vec![b'k', 4], None);
    changes.insert(b"new".to_vec(), Some(b"value".to_vec()));
    changes
}

/// Commits a base block, offers the next block with a wrong expected root and checks that the
/// error names both roots and that nothing moved; then commits it with the right root.
fn mismatched_root_changes_nothing<S: StateStore>(store: &mut S) {
    store.commit(0, &base_changes(), b"genesis").unwrap();
    let changes = block_changes();
    let right = store.root_with(&changes).unwrap();
    let mut wrong = right;
    wrong[0] ^= 1;
    let before = snapshot(store);

    let error = store
        .commit_expecting(1, &changes, b"block 1", &wrong)
        .unwrap_err();
    match error {
        StoreError::RootMismatch { expected, computed } => {
            assert_eq!(expected, wrong);
            assert_eq!(computed, right);
        }
        other => panic!("expected a root mismatch, got {other:?}"),
    }
    assert_eq!(snapshot(store), before);
    assert_eq!(store.get(&[b'k', 3]).unwrap(), Some(vec![3; 8]));
    assert_eq!(store.get(b"new").unwrap(), None);

    let root = store
        .commit_expecting(1, &changes, b"block 1", &right)
        .unwrap();
    assert_eq!(root, right);
    assert_eq!(store.root(), right);
    assert_eq!(store.height(), Some(1));
    assert_eq!(store.get(&[b'k', 3]).unwrap(), Some(b"updated".to_vec()));
    assert_eq!(store.get(&[b'k', 4]).unwrap(), None);
    assert_eq!(store.block_record(1).unwrap(), Some(b"block 1".to_vec()));
}

#[test]
fn mismatched_expected_root_leaves_the_memory_store_unchanged() {
    let mut store = MemoryStore::new();
    mismatched_root_changes_nothing(&mut store);
    store.audit().unwrap();
}

#[test]
fn mismatched_expected_root_leaves_the_durable_store_unchanged_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let mut store = Store::open(&path).unwrap();
    mismatched_root_changes_nothing(&mut store);
    store.audit().unwrap();

    // A rejected block after a reopen: the aborted transaction left nothing on disk either.
    let mut changes = ChangeSet::new();
    changes.insert(b"late".to_vec(), Some(b"x".to_vec()));
    let before = snapshot(&store);
    let rejected = store.commit_expecting(2, &changes, b"block 2", &[7; 32]);
    assert!(
        matches!(rejected, Err(StoreError::RootMismatch { .. })),
        "{rejected:?}"
    );
    drop(store);
    let reopened = Store::open(&path).unwrap();
    assert_eq!(snapshot(&reopened), before);
    reopened.audit().unwrap();
}

#[test]
fn height_gap_is_reported_before_the_root_check() {
    let mut store = MemoryStore::new();
    let gap = store.commit_expecting(1, &base_changes(), b"", &[0; 32]);
    assert!(
        matches!(
            gap,
            Err(StoreError::HeightGap {
                expected: 0,
                got: 1
            })
        ),
        "{gap:?}"
    );
    assert_eq!(store.height(), None);
}

/// Proposes a block of two transfers, corrupts its header root, and checks that `apply` answers
/// the same `StateRootMismatch` as before the store check existed and leaves everything alone;
/// then the genuine block applies.
fn wrong_header_root_is_rejected<S: StateStore>(mut chain: Chain<S>) {
    let mut users = users(2);
    let to = users[1].address;
    let transactions = vec![
        users[0].sign(Payload::Transfer { to, amount: 5 }),
        users[0].sign(Payload::Transfer { to, amount: 7 }),
    ];
    let (block, rejected) = chain.propose(transactions).unwrap();
    assert!(rejected.is_empty());
    let mut forged = block.clone();
    forged.header.state_root[31] ^= 0xff;
    let tip = chain.tip().clone();
    let before = snapshot(chain.store());

    match chain.apply(&forged) {
        Err(ChainError::Block(BlockError::StateRootMismatch { expected, computed })) => {
            assert_eq!(expected, to_hex(&forged.header.state_root));
            assert_eq!(computed, to_hex(&block.header.state_root));
        }
        other => panic!("expected a state root mismatch, got {other:?}"),
    }
    assert_eq!(chain.tip(), &tip);
    assert_eq!(snapshot(chain.store()), before);

    let root = chain.apply(&block).unwrap();
    assert_eq!(root, block.header.state_root);
    assert_eq!(chain.store().height(), Some(1));
    assert_eq!(chain.tip(), &block.header);
}

#[test]
fn block_with_a_wrong_state_root_leaves_a_memory_chain_unchanged() {
    let genesis = genesis(&users(2), Params::default());
    wrong_header_root_is_rejected(Chain::create(MemoryStore::new(), &genesis, datasets()).unwrap());
}

#[test]
fn block_with_a_wrong_state_root_leaves_a_durable_chain_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("chain.redb")).unwrap();
    let genesis = genesis(&users(2), Params::default());
    wrong_header_root_is_rejected(Chain::create(store, &genesis, datasets()).unwrap());
}
