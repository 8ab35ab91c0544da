//! Fixtures shared by the consensus tests: a fixed test mempool, transfer traffic from a few
//! funded senders, the default link, and a seeded deterministic runner.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::Duration;

use cairn_ledger::encoding::Hash;
use cairn_ledger::transaction::{Payload, SignedTransaction};
use cairn_node::consensus::TxSource;
use cairn_node::keys::NodeKey;
use commonware_p2p::simulated::Link;
use commonware_runtime::{deterministic, Quota};
use commonware_utils::{probability, NZU32};

/// The chain id of every consensus test.
pub const CHAIN: u64 = 7;
/// Funded accounts that send transfers.
pub const SENDERS: u64 = 4;
/// Messages per second per peer and channel: far above what the tests send.
pub const QUOTA: Quota = Quota::per_second(NZU32!(100_000));

/// A test mempool: a fixed list of transactions, handed out in order.
#[derive(Default)]
pub struct Pool(pub Mutex<Vec<SignedTransaction>>);

impl TxSource for Pool {
    fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        self.0.lock().unwrap().iter().take(max).cloned().collect()
    }
    fn remove_included(&self, txs: &[SignedTransaction]) {
        let included: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
        self.0
            .lock()
            .unwrap()
            .retain(|tx| !included.contains(&tx.hash()));
    }
}

/// The key of sender `index`.
pub fn sender_key(index: u64) -> NodeKey {
    NodeKey::derive(99, 1000 + index)
}

/// Transfers from every sender, nonce-major so that senders interleave.
pub fn transfers(per_sender: u64) -> Vec<SignedTransaction> {
    let mut txs = Vec::new();
    for nonce in 0..per_sender {
        for s in 0..SENDERS {
            let to = sender_key((s + 1) % SENDERS).address();
            txs.push(SignedTransaction::new(
                &sender_key(s).ledger_key(),
                CHAIN,
                nonce,
                Payload::Transfer { to, amount: 1 },
            ));
        }
    }
    txs
}

/// 50 ms latency, 10 ms jitter, no loss.
pub fn link() -> Link {
    Link {
        latency: Duration::from_millis(50),
        jitter: Duration::from_millis(10),
        success_rate: probability!(1.0),
    }
}

/// A deterministic runner with `seed` that fails a test stuck for `timeout` of simulated time.
pub fn runner(seed: u64, timeout: Duration) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(timeout)),
    )
}
