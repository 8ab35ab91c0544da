//! Cost of a block's state-root update as the state grows: 1000 changed accounts per block over
//! states of 1e4, 1e5 and 1e6 accounts (cap with `CAIRN_BENCH_MAX_ACCOUNTS`).
//!
//! `root_with` measures the tree work alone (node reads and hashing, nothing written);
//! `commit` adds the redb write transaction with its fsync; `memory_root_with` is the same tree
//! work over the in-memory store, the floor without database reads.

use std::time::Instant;

use cairn_ledger::store::synthetic::account_key;
use cairn_ledger::store::{ChangeSet, MemoryStore, Store};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Changed accounts per measured block.
const CHANGES_PER_BLOCK: usize = 1000;
/// Accounts per block while building the initial state.
const BUILD_CHUNK: u64 = 250_000;

fn sizes() -> Vec<u64> {
    let max: u64 = std::env::var("CAIRN_BENCH_MAX_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    [10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|&n| n <= max)
        .collect()
}

/// A block updating `CHANGES_PER_BLOCK` random existing accounts to fresh 32-byte values.
fn update_block(rng: &mut ChaCha8Rng, accounts: u64) -> ChangeSet {
    let mut changes = ChangeSet::new();
    while changes.len() < CHANGES_PER_BLOCK {
        let mut value = vec![0u8; 32];
        rng.fill_bytes(&mut value);
        changes.insert(account_key(rng.next_u64() % accounts), Some(value));
    }
    changes
}

/// The initial state's blocks: accounts `0..accounts` with 32-byte values.
fn build_blocks(accounts: u64) -> impl Iterator<Item = ChangeSet> {
    (0..accounts)
        .step_by(BUILD_CHUNK as usize)
        .map(move |start| {
            (start..(start + BUILD_CHUNK).min(accounts))
                .map(|i| {
                    (
                        account_key(i),
                        Some(blake3::hash(&i.to_be_bytes()).as_bytes().to_vec()),
                    )
                })
                .collect()
        })
}

fn state_root(c: &mut Criterion) {
    let mut group = c.benchmark_group("state_root_1000_changes");
    group.sample_size(10);
    for accounts in sizes() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(&dir.path().join("bench.redb")).expect("open store");
        let started = Instant::now();
        for block in build_blocks(accounts) {
            let height = store.next_height();
            store.commit(height, &block, b"").expect("build commit");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(accounts);
        let depths: Vec<usize> = (0..1000)
            .map(|_| {
                let key = account_key(rng.next_u64() % accounts);
                store.prove(&key).expect("prove").siblings().len()
            })
            .collect();
        let file_bytes = std::fs::metadata(dir.path().join("bench.redb")).map_or(0, |m| m.len());
        eprintln!(
            "accounts {accounts}: built durable state in {:.1} s, file {:.1} MiB, mean proof depth {:.2}",
            started.elapsed().as_secs_f64(),
            file_bytes as f64 / (1 << 20) as f64,
            depths.iter().sum::<usize>() as f64 / depths.len() as f64,
        );

        let blocks: Vec<ChangeSet> = (0..16).map(|_| update_block(&mut rng, accounts)).collect();
        let mut next = 0usize;
        group.bench_function(BenchmarkId::new("root_with", accounts), |b| {
            b.iter(|| {
                next = (next + 1) % blocks.len();
                store.root_with(&blocks[next]).expect("root_with")
            })
        });
        group.bench_function(BenchmarkId::new("commit", accounts), |b| {
            b.iter(|| {
                next = (next + 1) % blocks.len();
                let height = store.next_height();
                store.commit(height, &blocks[next], b"").expect("commit")
            })
        });
        drop(store);

        let mut memory = MemoryStore::new();
        for block in build_blocks(accounts) {
            let height = memory.next_height();
            memory.commit(height, &block, b"").expect("build commit");
        }
        group.bench_function(BenchmarkId::new("memory_root_with", accounts), |b| {
            b.iter(|| {
                next = (next + 1) % blocks.len();
                memory.root_with(&blocks[next]).expect("root_with")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, state_root);
criterion_main!(benches);
