//! The bounded pool of signed transactions that proposers fill blocks from.
//!
//! The pool checks what it can without ledger state (chain id, signature, size, duplicates)
//! and bounds everything: transaction count, encoded bytes, and transactions per sender, so one
//! noisy sender cannot crowd out the rest. Nonce validity needs ledger state: proposers call
//! [`Mempool::prune_stale`] with the state's next nonces, and the finalizer calls
//! [`Mempool::remove_included`] for every finalized block.
//!
//! The network side ([`start`]) receives transactions on the mempool channel, inserts them, and
//! marks senders of undecodable or invalid transactions ([`crate::penalty`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use cairn_ledger::address::Address;
use cairn_ledger::encoding::{to_hex, Hash};
use cairn_ledger::transaction::SignedTransaction;
use commonware_codec::EncodeSize;

use crate::wire::MAX_TRANSACTION_BYTES;

mod network;

pub use network::{broadcast, start};

/// Bounds and chain of a [`Mempool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Only transactions for this chain are accepted.
    pub chain_id: u64,
    /// Most transactions held.
    pub max_transactions: usize,
    /// Most encoded bytes held.
    pub max_bytes: usize,
    /// Most transactions held per sender.
    pub max_per_sender: usize,
}

impl MempoolConfig {
    /// Defaults for `chain_id`: 10 000 transactions, 16 MiB, 64 per sender.
    pub fn new(chain_id: u64) -> Self {
        Self {
            chain_id,
            max_transactions: 10_000,
            max_bytes: 16 << 20,
            max_per_sender: 64,
        }
    }
}

/// Why a transaction was not admitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// Signed for another chain.
    #[error("transaction is for chain {got}, this pool serves chain {expected}")]
    WrongChain {
        /// This pool's chain.
        expected: u64,
        /// The transaction's chain.
        got: u64,
    },
    /// The signature does not verify against the signer key.
    #[error("transaction signature does not verify")]
    BadSignature,
    /// Larger than any transaction accepted from the network.
    #[error("transaction of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Encoded size.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Already in the pool.
    #[error("transaction {0} is already pending")]
    Duplicate(String),
    /// The sender holds its maximum of pending transactions.
    #[error("sender {sender} already has {limit} pending transactions")]
    SenderFull {
        /// Sender address (hex).
        sender: String,
        /// The per-sender cap.
        limit: usize,
    },
    /// The pool is at its transaction or byte bound.
    #[error("mempool is full ({transactions} transactions, {bytes} bytes)")]
    Full {
        /// Transactions held.
        transactions: usize,
        /// Bytes held.
        bytes: usize,
    },
}

impl MempoolError {
    /// Whether the transaction itself is invalid (as opposed to the pool lacking room or
    /// already holding it): only invalid transactions count against the peer that sent them.
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            Self::WrongChain { .. } | Self::BadSignature | Self::TooLarge { .. }
        )
    }
}

#[derive(Clone, Debug)]
struct Pending {
    transaction: SignedTransaction,
    hash: Hash,
    size: usize,
    arrival: u64,
}

/// A bounded pool of verified, pending transactions.
#[derive(Clone, Debug)]
pub struct Mempool {
    config: MempoolConfig,
    by_hash: BTreeMap<Hash, (Address, u64)>,
    by_sender: BTreeMap<Address, BTreeMap<u64, Pending>>,
    bytes: usize,
    arrivals: u64,
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Self {
        Self {
            config,
            by_hash: BTreeMap::new(),
            by_sender: BTreeMap::new(),
            bytes: 0,
            arrivals: 0,
        }
    }

    /// Admits a transaction after checking its chain, size, signature, uniqueness and the
    /// pool's bounds; returns its hash.
    pub fn insert(&mut self, transaction: SignedTransaction) -> Result<Hash, MempoolError> {
        let inner = &transaction.transaction;
        if inner.chain_id != self.config.chain_id {
            return Err(MempoolError::WrongChain {
                expected: self.config.chain_id,
                got: inner.chain_id,
            });
        }
        let size = transaction.encode_size();
        if size > MAX_TRANSACTION_BYTES {
            return Err(MempoolError::TooLarge {
                len: size,
                max: MAX_TRANSACTION_BYTES,
            });
        }
        let hash = transaction.hash();
        if self.by_hash.contains_key(&hash) {
            return Err(MempoolError::Duplicate(to_hex(&hash)));
        }
        let sender = inner.sender();
        let nonce = inner.nonce;
        let held = self.by_sender.get(&sender);
        // A transaction of the same sender and nonce replaces the pending one: only the sender
        // can sign it, and it does so when the pending one can no longer execute (its outbox
        // dropped it and re-signed what came after), which would otherwise wedge the sender.
        let replaced = held
            .and_then(|pending| pending.get(&nonce))
            .map(|entry| (entry.hash, entry.size));
        let held_count = held.map_or(0, BTreeMap::len) - usize::from(replaced.is_some());
        if held_count >= self.config.max_per_sender {
            return Err(MempoolError::SenderFull {
                sender: to_hex(sender.as_bytes()),
                limit: self.config.max_per_sender,
            });
        }
        let (freed_count, freed_bytes) = replaced.map_or((0, 0), |(_, size)| (1, size));
        if self.by_hash.len() - freed_count >= self.config.max_transactions
            || (self.bytes - freed_bytes).saturating_add(size) > self.config.max_bytes
        {
            return Err(MempoolError::Full {
                transactions: self.by_hash.len(),
                bytes: self.bytes,
            });
        }
        // Last, because it is the expensive check.
        if !transaction.verify() {
            return Err(MempoolError::BadSignature);
        }
        if let Some((old, old_size)) = replaced {
            self.by_hash.remove(&old);
            self.bytes -= old_size;
        }
        let arrival = self.arrivals;
        self.arrivals += 1;
        self.bytes += size;
        self.by_hash.insert(hash, (sender, nonce));
        self.by_sender.entry(sender).or_default().insert(
            nonce,
            Pending {
                transaction,
                hash,
                size,
                arrival,
            },
        );
        Ok(hash)
    }

    /// Up to `max` transactions to propose: each sender's run of consecutive nonces from its
    /// lowest pending one (a gap stops that sender), senders interleaved by the arrival of
    /// their next transaction. The same pool always gives the same list.
    pub fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        let mut heads: BinaryHeap<Reverse<(u64, Address, u64)>> = self
            .by_sender
            .iter()
            .filter_map(|(sender, pending)| {
                let (nonce, first) = pending.first_key_value()?;
                Some(Reverse((first.arrival, *sender, *nonce)))
            })
            .collect();
        let mut out = Vec::with_capacity(max.min(self.by_hash.len()));
        while out.len() < max {
            let Some(Reverse((_, sender, nonce))) = heads.pop() else {
                break;
            };
            let Some(pending) = self.by_sender.get(&sender) else {
                continue;
            };
            let Some(entry) = pending.get(&nonce) else {
                continue;
            };
            out.push(entry.transaction.clone());
            if let Some(next_nonce) = nonce.checked_add(1) {
                if let Some(next) = pending.get(&next_nonce) {
                    heads.push(Reverse((next.arrival, sender, next_nonce)));
                }
            }
        }
        out
    }

    /// Removes transactions a finalized block included, and any pending transaction of the same
    /// sender with a nonce at or below an included one (it can no longer execute).
    pub fn remove_included(&mut self, included: &[SignedTransaction]) {
        for transaction in included {
            let sender = transaction.transaction.sender();
            self.drop_sender_below(&sender, transaction.transaction.nonce.saturating_add(1));
        }
    }

    /// Drops every transaction whose nonce is below its sender's next nonce on the ledger;
    /// returns how many were dropped.
    pub fn prune_stale(&mut self, next_nonce_of: impl Fn(&Address) -> u64) -> usize {
        let before = self.by_hash.len();
        let senders: Vec<Address> = self.by_sender.keys().copied().collect();
        for sender in senders {
            let next = next_nonce_of(&sender);
            self.drop_sender_below(&sender, next);
        }
        before - self.by_hash.len()
    }

    fn drop_sender_below(&mut self, sender: &Address, bound: u64) {
        let Some(pending) = self.by_sender.get_mut(sender) else {
            return;
        };
        let keep = pending.split_off(&bound);
        let dropped = std::mem::replace(pending, keep);
        for (_, entry) in dropped {
            self.bytes -= entry.size;
            self.by_hash.remove(&entry.hash);
        }
        if pending.is_empty() {
            self.by_sender.remove(sender);
        }
    }

    /// Whether a transaction with this hash is pending.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Encoded bytes of all pending transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The pool's bounds.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_ledger::transaction::Payload;
    use ed25519_dalek::SigningKey;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn burn(seed: u8, nonce: u64) -> SignedTransaction {
        SignedTransaction::new(&key(seed), 1, nonce, Payload::Burn { amount: 1 })
    }

    fn sender(seed: u8) -> Address {
        Address::from_public_key(&key(seed).verifying_key())
    }

    #[test]
    fn candidates_keep_each_senders_nonces_ascending_and_stop_at_gaps() {
        let mut pool = Mempool::new(MempoolConfig::new(1));
        for (seed, nonce) in [(1, 2), (2, 0), (1, 0), (1, 1), (2, 2), (3, 5)] {
            pool.insert(burn(seed, nonce)).unwrap();
        }
        let order: Vec<(Address, u64)> = pool
            .candidates(100)
            .iter()
            .map(|tx| (tx.transaction.sender(), tx.transaction.nonce))
            .collect();
        // Sender 2 stops at its gap (nonce 1 missing); sender 1's head (nonce 0) arrived after
        // sender 2's but sender 1's nonce 2 waits for 0 and 1.
        assert_eq!(
            order,
            vec![
                (sender(2), 0),
                (sender(1), 0),
                (sender(1), 1),
                (sender(1), 2),
                (sender(3), 5),
            ]
        );
        assert_eq!(pool.candidates(2).len(), 2);
        assert_eq!(pool.candidates(100), pool.clone().candidates(100));
    }

    #[test]
    fn duplicates_wrong_chains_and_bad_signatures_are_refused_and_a_nonce_is_replaced() {
        let mut pool = Mempool::new(MempoolConfig::new(1));
        let tx = burn(1, 0);
        let hash = pool.insert(tx.clone()).unwrap();
        assert!(pool.contains(&hash));
        assert_eq!(
            pool.insert(tx.clone()),
            Err(MempoolError::Duplicate(to_hex(&hash)))
        );
        // The sender's new transaction at the same nonce replaces the pending one.
        let other = SignedTransaction::new(&key(1), 1, 0, Payload::Burn { amount: 2 });
        let replacement = pool.insert(other.clone()).unwrap();
        assert!(pool.contains(&replacement) && !pool.contains(&hash));
        assert_eq!((pool.len(), pool.bytes()), (1, other.encode_size()));
        assert_eq!(pool.candidates(10), vec![other]);
        let foreign = SignedTransaction::new(&key(1), 2, 1, Payload::Burn { amount: 1 });
        assert_eq!(
            pool.insert(foreign),
            Err(MempoolError::WrongChain {
                expected: 1,
                got: 2
            })
        );
        let mut forged = burn(1, 1);
        forged.signature[0] ^= 1;
        assert_eq!(pool.insert(forged), Err(MempoolError::BadSignature));
        assert!(MempoolError::BadSignature.is_invalid());
        assert!(!MempoolError::Duplicate(String::new()).is_invalid());
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn bounds_on_count_bytes_and_per_sender_hold() {
        let config = MempoolConfig {
            chain_id: 1,
            max_transactions: 3,
            max_bytes: 1 << 20,
            max_per_sender: 2,
        };
        let mut pool = Mempool::new(config);
        pool.insert(burn(1, 0)).unwrap();
        pool.insert(burn(1, 1)).unwrap();
        assert!(matches!(
            pool.insert(burn(1, 2)),
            Err(MempoolError::SenderFull { limit: 2, .. })
        ));
        pool.insert(burn(2, 0)).unwrap();
        assert!(matches!(
            pool.insert(burn(3, 0)),
            Err(MempoolError::Full {
                transactions: 3,
                ..
            })
        ));
        let size = burn(1, 0).encode_size();
        assert_eq!(pool.bytes(), 3 * size);
        let mut small = Mempool::new(MempoolConfig {
            max_bytes: size + size / 2,
            ..config
        });
        small.insert(burn(1, 0)).unwrap();
        assert!(matches!(
            small.insert(burn(2, 0)),
            Err(MempoolError::Full { .. })
        ));
    }

    #[test]
    fn included_and_stale_transactions_leave_the_pool() {
        let mut pool = Mempool::new(MempoolConfig::new(1));
        for nonce in 0..4 {
            pool.insert(burn(1, nonce)).unwrap();
        }
        pool.insert(burn(2, 3)).unwrap();
        pool.remove_included(&[burn(1, 1)]);
        let left: Vec<u64> = pool
            .candidates(10)
            .iter()
            .map(|tx| tx.transaction.nonce)
            .collect();
        assert_eq!(left, vec![2, 3, 3]);
        let dropped = pool.prune_stale(|address| if *address == sender(2) { 4 } else { 3 });
        assert_eq!(dropped, 2);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.bytes(), burn(1, 3).encode_size());
        pool.remove_included(&[burn(1, 3)]);
        assert!(pool.is_empty());
        assert_eq!(pool.bytes(), 0);
    }
}
