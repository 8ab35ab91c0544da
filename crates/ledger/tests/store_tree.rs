//! The state root is a pure function of the key/value set, whichever store computes it and
//! however the changes were ordered or split into blocks.

use std::collections::BTreeMap;

use cairn_ledger::store::synthetic::Workload;
use cairn_ledger::store::{
    ChangeSet, MemoryStore, StateRead, StateStore, Store, StoreError, EMPTY_HASH, GENESIS_HEIGHT,
};
use proptest::prelude::*;

/// The tree's definition, written independently of the store: a compacted binary Merkle tree
/// over blake3(key), leaf = H(0 || key hash || H(value)), internal = H(1 || left || right).
fn reference_root(state: &BTreeMap<Vec<u8>, Vec<u8>>) -> [u8; 32] {
    let mut leaves: Vec<([u8; 32], [u8; 32])> = state
        .iter()
        .map(|(k, v)| (*blake3::hash(k).as_bytes(), *blake3::hash(v).as_bytes()))
        .collect();
    leaves.sort();
    subtree(&leaves, 0)
}

fn subtree(leaves: &[([u8; 32], [u8; 32])], depth: usize) -> [u8; 32] {
    match leaves {
        [] => [0u8; 32],
        [(k, v)] => {
            let mut h = blake3::Hasher::new();
            h.update(&[0]).update(k).update(v);
            *h.finalize().as_bytes()
        }
        _ => {
            let bit = |k: &[u8; 32]| (k[depth / 8] >> (7 - depth % 8)) & 1 == 1;
            let split = leaves.partition_point(|(k, _)| !bit(k));
            let mut h = blake3::Hasher::new();
            h.update(&[1])
                .update(&subtree(&leaves[..split], depth + 1))
                .update(&subtree(&leaves[split..], depth + 1));
            *h.finalize().as_bytes()
        }
    }
}

/// Applies a change set to a plain map, the way the stores must.
fn apply(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, changes: &ChangeSet) {
    for (k, v) in changes {
        match v {
            Some(v) => state.insert(k.clone(), v.clone()),
            None => state.remove(k),
        };
    }
}

/// Random blocks over a small key space, so keys get overwritten and deleted.
fn blocks() -> impl Strategy<Value = Vec<ChangeSet>> {
    let change = (
        0u16..48,
        proptest::option::weighted(0.75, proptest::collection::vec(any::<u8>(), 0..6)),
    );
    let block = proptest::collection::vec(change, 0..24).prop_map(|changes| {
        changes
            .into_iter()
            .map(|(k, v)| (k.to_be_bytes().to_vec(), v))
            .collect::<ChangeSet>()
    });
    proptest::collection::vec(block, 1..8)
}

#[test]
fn empty_store_root_is_the_all_zero_constant() {
    let store = MemoryStore::new();
    assert_eq!(store.root(), EMPTY_HASH);
    assert_eq!(EMPTY_HASH, [0u8; 32]);
    assert_eq!(store.height(), None);
    assert_eq!(store.next_height(), GENESIS_HEIGHT);
    let dir = tempfile::tempdir().unwrap();
    let durable = Store::open(&dir.path().join("s.redb")).unwrap();
    assert_eq!(durable.root(), EMPTY_HASH);
    assert_eq!(durable.height(), None);
}

#[test]
fn deleting_keys_returns_to_the_previous_root() {
    let mut store = MemoryStore::new();
    let base: ChangeSet = (0u32..200)
        .map(|i| (i.to_be_bytes().to_vec(), Some(vec![1; 3])))
        .collect();
    let before = store.commit(0, &base, b"").unwrap();
    let added: ChangeSet = (1000u32..1050)
        .map(|i| (i.to_be_bytes().to_vec(), Some(vec![2])))
        .collect();
    let after = store.commit(1, &added, b"").unwrap();
    assert_ne!(before, after);
    let removed: ChangeSet = added.keys().map(|k| (k.clone(), None)).collect();
    assert_eq!(store.commit(2, &removed, b"").unwrap(), before);
    store.audit().unwrap();
    let all_gone: ChangeSet = base.keys().map(|k| (k.clone(), None)).collect();
    assert_eq!(store.commit(3, &all_gone, b"").unwrap(), EMPTY_HASH);
    assert_eq!(store.node_count(), 0, "no stale nodes left behind");
}

#[test]
fn deleting_an_absent_key_changes_nothing() {
    let mut store = MemoryStore::new();
    let root = store
        .commit(
            0,
            &ChangeSet::from([(b"a".to_vec(), Some(b"1".to_vec()))]),
            b"",
        )
        .unwrap();
    let root2 = store
        .commit(1, &ChangeSet::from([(b"zzz".to_vec(), None)]), b"")
        .unwrap();
    assert_eq!(root, root2);
    assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn commit_rejects_height_gaps_and_keeps_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.redb")).unwrap();
    let changes = ChangeSet::from([(b"k".to_vec(), Some(b"v".to_vec()))]);
    let gap = store.commit(1, &changes, b"");
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
    assert_eq!(store.get(b"k").unwrap(), None);
    store.commit(0, &changes, b"genesis").unwrap();
    assert!(matches!(
        store.commit(0, &changes, b""),
        Err(StoreError::HeightGap {
            expected: 1,
            got: 0
        })
    ));
    assert_eq!(store.block_record(0).unwrap(), Some(b"genesis".to_vec()));
    assert_eq!(store.block_record(1).unwrap(), None);
}

#[test]
fn reopening_restores_height_root_history_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let mut roots = Vec::new();
    {
        let mut store = Store::open(&path).unwrap();
        for h in 0..5u64 {
            let changes = ChangeSet::from([(h.to_be_bytes().to_vec(), Some(vec![h as u8; 4]))]);
            roots.push(store.commit(h, &changes, &h.to_le_bytes()).unwrap());
        }
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.height(), Some(4));
    assert_eq!(store.root(), roots[4]);
    for (h, root) in roots.iter().enumerate() {
        assert_eq!(store.root_at(h as u64).unwrap(), Some(*root));
        assert_eq!(
            store.block_record(h as u64).unwrap(),
            Some((h as u64).to_le_bytes().to_vec())
        );
    }
    assert_eq!(store.get(&3u64.to_be_bytes()).unwrap(), Some(vec![3; 4]));
    store.audit().unwrap();
}

#[test]
fn iter_prefix_returns_exactly_the_matching_pairs_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut durable = Store::open(&dir.path().join("s.redb")).unwrap();
    let mut memory = MemoryStore::new();
    let changes: ChangeSet = [
        &b"acct/b"[..],
        b"acct/a",
        b"acct",
        b"acct0",
        b"task/1",
        b"acct/\xff",
    ]
    .iter()
    .map(|k| (k.to_vec(), Some(k.to_vec())))
    .collect();
    durable.commit(0, &changes, b"").unwrap();
    memory.commit(0, &changes, b"").unwrap();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = [&b"acct/a"[..], b"acct/b", b"acct/\xff"]
        .iter()
        .map(|k| (k.to_vec(), k.to_vec()))
        .collect();
    assert_eq!(durable.iter_prefix(b"acct/").unwrap(), expected);
    assert_eq!(memory.iter_prefix(b"acct/").unwrap(), expected);
    assert_eq!(durable.iter_prefix(b"").unwrap().len(), 6);
    assert!(memory.iter_prefix(b"zz").unwrap().is_empty());
}

#[test]
fn thousands_of_keys_over_many_blocks_match_the_reference_root() {
    let workload = Workload {
        seed: 99,
        changes_per_block: 400,
        key_space: 3000,
        delete_weight: 60,
    };
    let mut store = MemoryStore::new();
    let mut state = BTreeMap::new();
    for height in 0..25 {
        let changes = workload.block(height);
        let root = store.commit(height, &changes, b"").unwrap();
        apply(&mut state, &changes);
        assert_eq!(root, reference_root(&state), "height {height}");
    }
    assert!(state.len() > 1500, "the workload built a sizeable state");
    store.audit().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the history, the root equals the reference root of the resulting map, so it is
    /// independent of insertion order and of how changes were batched into blocks.
    #[test]
    fn root_depends_only_on_the_resulting_key_value_set(blocks in blocks()) {
        let mut store = MemoryStore::new();
        let mut state = BTreeMap::new();
        for (height, changes) in blocks.iter().enumerate() {
            let predicted = store.root_with(changes).unwrap();
            let root = store.commit(height as u64, changes, b"").unwrap();
            prop_assert_eq!(predicted, root);
            apply(&mut state, changes);
            prop_assert_eq!(root, reference_root(&state));
            store.audit().unwrap();
        }
        // The same final state in a single block, inserted in one go.
        let single: ChangeSet = state.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        let mut fresh = MemoryStore::new();
        prop_assert_eq!(fresh.commit(0, &single, b"").unwrap(), store.root());
    }

    /// Splitting one change set into blocks at any points gives the same final root.
    #[test]
    fn batching_changes_into_blocks_does_not_change_the_root(
        blocks in blocks(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let mut merged = ChangeSet::new();
        for block in &blocks {
            merged.extend(block.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let entries: Vec<_> = merged.into_iter().collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(entries.len() + 1)).collect();
        points.push(0);
        points.push(entries.len());
        points.sort_unstable();
        let mut store = MemoryStore::new();
        for (height, window) in points.windows(2).enumerate() {
            let block: ChangeSet = entries[window[0]..window[1]].iter().cloned().collect();
            store.commit(height as u64, &block, b"").unwrap();
        }
        let mut once = MemoryStore::new();
        let all: ChangeSet = entries.into_iter().collect();
        prop_assert_eq!(once.commit(0, &all, b"").unwrap(), store.root());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The durable store and the in-memory store agree on every root, value and proof.
    #[test]
    fn durable_and_memory_stores_give_identical_roots(blocks in blocks()) {
        let dir = tempfile::tempdir().unwrap();
        let mut durable = Store::open(&dir.path().join("s.redb")).unwrap();
        let mut memory = MemoryStore::new();
        for (height, changes) in blocks.iter().enumerate() {
            prop_assert_eq!(durable.root_with(changes).unwrap(), memory.root_with(changes).unwrap());
            let a = durable.commit(height as u64, changes, b"r").unwrap();
            let b = StateStore::commit(&mut memory, height as u64, changes, b"r").unwrap();
            prop_assert_eq!(a, b);
        }
        for k in 0u16..48 {
            let key = k.to_be_bytes();
            prop_assert_eq!(durable.get(&key).unwrap(), memory.get(&key).unwrap());
            prop_assert_eq!(durable.prove(&key).unwrap(), memory.prove(&key).unwrap());
        }
        durable.audit().unwrap();
    }
}
