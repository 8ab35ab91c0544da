//! Fuzzes the durable store's read path on damaged files: the input is a list of edits
//! (4-byte offset, 1-byte mask) applied to a valid store file of a few blocks. Opening the
//! damaged file read-only and reading every key, root and block record must give the original
//! bytes or a typed error: never a wrong value, never an uncontained panic, never a write to the
//! file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use cairn_ledger::store::synthetic::Workload;
use cairn_ledger::store::{containing_panics, MemoryStore, StateRead, Store};
use libfuzzer_sys::fuzz_target;

/// Blocks in the pristine file.
const BLOCKS: u64 = 3;

/// The pristine file's bytes and the same blocks in memory.
fn pristine() -> &'static (Vec<u8>, MemoryStore) {
    static PRISTINE: OnceLock<(Vec<u8>, MemoryStore)> = OnceLock::new();
    PRISTINE.get_or_init(|| {
        let workload = Workload {
            seed: 5,
            changes_per_block: 40,
            key_space: 100,
            delete_weight: 30,
        };
        let path = scratch("pristine");
        let _ = std::fs::remove_file(&path);
        let mut store = Store::open(&path).expect("creating the pristine store");
        let mut memory = MemoryStore::new();
        for height in 0..BLOCKS {
            let changes = workload.block(height);
            let record = workload.record(height, &changes);
            store.commit(height, &changes, &record).expect("commit");
            memory.commit(height, &changes, &record).expect("commit");
        }
        drop(store);
        let bytes = std::fs::read(&path).expect("reading the pristine store");
        let _ = std::fs::remove_file(&path);
        (bytes, memory)
    })
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cairn-fuzz-store-{}-{name}.redb", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    // Panics the store contains (redb asserting on a damaged file) are its typed errors; any
    // other panic is a finding.
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            if !containing_panics() {
                eprintln!("{info}");
                std::process::abort();
            }
        }))
    });
    let (bytes, original) = pristine();
    let mut damaged = bytes.clone();
    for edit in data.chunks_exact(5) {
        let offset = u32::from_le_bytes([edit[0], edit[1], edit[2], edit[3]]) as usize;
        damaged[offset % bytes.len()] ^= edit[4].max(1);
    }
    let path = scratch("case");
    std::fs::write(&path, &damaged).expect("writing the case");
    if let Ok(store) = Store::open_read_only(&path) {
        for (key, value) in original.iter_prefix(b"").expect("memory scan") {
            if let Ok(got) = store.get(&key) {
                assert_eq!(got.as_ref(), Some(&value), "a damaged store served a wrong value");
            }
            if let Ok(proof) = store.prove(&key) {
                assert!(proof.verify(&original.root(), &key, Some(&value)).is_ok());
            }
        }
        for height in 0..BLOCKS {
            if let Ok(record) = store.block_record(height) {
                assert_eq!(record, original.block_record(height).expect("memory record"));
            }
            if let Ok(root) = store.root_at(height) {
                assert_eq!(root, original.root_at(height).expect("memory root"));
            }
        }
        if let Ok(scan) = store.iter_prefix(b"") {
            assert_eq!(scan, original.iter_prefix(b"").expect("memory scan"));
        }
        let _ = store.verify();
    }
    assert_eq!(
        std::fs::read(&path).expect("reading the case back"),
        damaged,
        "a read-only open changed the file"
    );
    let _ = std::fs::remove_file(&path);
});
