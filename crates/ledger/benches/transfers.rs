//! Signed transfers applied per second, with each signature checked by `verify_strict`.
//!
//! Each block carries 1000 transfers between 1000 funded accounts. Measured:
//! - `verify/block` (what blocks use: `verify_strict` per signature, in parallel with rayon),
//!   `verify/single` (the same, sequential) and `verify/batch` (ed25519 batch verification, the
//!   former block path, which over-accepts mixed-torsion signatures; kept as a reference);
//! - `execute`: signature checks + applying the transfers to an overlay (no root, no commit);
//! - `apply/memory` and `apply/redb`: the whole `Chain::apply` (verify, execute, state root,
//!   atomic commit) on the in-memory and the durable store.
//!
//! Run: `cargo bench -p cairn-ledger --bench transfers -- --warm-up-time 1 --measurement-time 3`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_ledger::execute::{execute_block, verify_signatures};
use cairn_ledger::store::{MemoryStore, Store};
use cairn_ledger::{
    Address, Block, Chain, DatasetRegistry, Genesis, Params, Payload, SignedTransaction,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

const ACCOUNTS: usize = 1000;
const PER_BLOCK: usize = 1000;
const CHAIN_ID: u64 = 7;

struct Fixture {
    keys: Vec<SigningKey>,
    addresses: Vec<Address>,
    genesis: Genesis,
}

fn fixture() -> Fixture {
    let keys: Vec<SigningKey> = (0..ACCOUNTS)
        .map(|i| {
            let seed = blake3::hash(&(i as u64).to_be_bytes());
            SigningKey::from_bytes(seed.as_bytes())
        })
        .collect();
    let addresses: Vec<Address> = keys
        .iter()
        .map(|k| Address::from_public_key(&k.verifying_key()))
        .collect();
    let genesis = Genesis {
        chain_id: CHAIN_ID,
        params: Params::default(),
        balances: addresses.iter().map(|a| (*a, 1_000_000_000)).collect(),
        validators: BTreeMap::from([(Address([0xee; 20]), 100)]),
        datasets: Default::default(),
    };
    Fixture {
        keys,
        addresses,
        genesis,
    }
}

/// Transfers of block number `block` (from 0): account i pays account i+1+block.
fn transfers(fixture: &Fixture, block: usize) -> Vec<SignedTransaction> {
    (0..PER_BLOCK)
        .map(|i| {
            let from = i % ACCOUNTS;
            let to = (i + 1 + block) % ACCOUNTS;
            let nonce = (block * PER_BLOCK / ACCOUNTS + i / ACCOUNTS) as u64;
            SignedTransaction::new(
                &fixture.keys[from],
                CHAIN_ID,
                nonce,
                Payload::Transfer {
                    to: fixture.addresses[to],
                    amount: 1 + (i as u128 % 7),
                },
            )
        })
        .collect()
}

/// `count` consecutive blocks, built on an in-memory chain.
fn blocks(fixture: &Fixture, count: usize) -> Vec<Block> {
    let mut chain =
        Chain::create(MemoryStore::new(), &fixture.genesis, Default::default()).expect("genesis");
    (0..count)
        .map(|b| {
            let (block, rejected) = chain
                .propose_and_apply(transfers(fixture, b))
                .expect("block");
            assert!(rejected.is_empty());
            block
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let fixture = fixture();
    let first = blocks(&fixture, 1).remove(0);

    let mut verify = c.benchmark_group("verify");
    verify.throughput(Throughput::Elements(PER_BLOCK as u64));
    verify.bench_function("block", |b| {
        b.iter(|| verify_signatures(&first.transactions).expect("valid"))
    });
    verify.bench_function("single", |b| {
        b.iter(|| assert!(first.transactions.iter().all(SignedTransaction::verify)))
    });
    let parts: Vec<(VerifyingKey, Signature)> = first
        .transactions
        .iter()
        .map(|tx| tx.parts().expect("valid key"))
        .collect();
    let keys: Vec<VerifyingKey> = parts.iter().map(|(key, _)| *key).collect();
    let signatures: Vec<Signature> = parts.iter().map(|(_, signature)| *signature).collect();
    let messages: Vec<Vec<u8>> = first
        .transactions
        .iter()
        .map(|tx| tx.transaction.signing_message())
        .collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    verify.bench_function("batch", |b| {
        b.iter(|| ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).expect("valid"))
    });
    verify.finish();

    let datasets: Arc<DatasetRegistry> = Default::default();
    let genesis_chain =
        Chain::create(MemoryStore::new(), &fixture.genesis, datasets.clone()).expect("genesis");
    let mut execute = c.benchmark_group("execute");
    execute.throughput(Throughput::Elements(PER_BLOCK as u64));
    execute.bench_function(BenchmarkId::new("transfers", PER_BLOCK), |b| {
        b.iter(|| {
            execute_block(
                genesis_chain.store(),
                genesis_chain.tip(),
                &first,
                &datasets,
            )
            .expect("valid")
        })
    });
    execute.finish();

    let mut apply = c.benchmark_group("apply");
    apply.throughput(Throughput::Elements(PER_BLOCK as u64));
    apply.sample_size(10);
    apply.bench_function("memory", |b| {
        b.iter_custom(|iters| {
            let blocks = blocks(&fixture, iters as usize);
            let mut chain = Chain::create(MemoryStore::new(), &fixture.genesis, Default::default())
                .expect("genesis");
            let start = Instant::now();
            for block in &blocks {
                chain.apply(block).expect("valid block");
            }
            start.elapsed()
        })
    });
    apply.bench_function("redb", |b| {
        b.iter_custom(|iters| {
            let blocks = blocks(&fixture, iters as usize);
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Store::open(&dir.path().join("bench.redb")).expect("store");
            let mut chain =
                Chain::create(store, &fixture.genesis, Default::default()).expect("genesis");
            let start = Instant::now();
            for block in &blocks {
                chain.apply(block).expect("valid block");
            }
            let elapsed: Duration = start.elapsed();
            elapsed
        })
    });
    apply.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
