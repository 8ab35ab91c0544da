//! Deterministic synthetic blocks of state changes, for crash tests, benchmarks and simulation.
//!
//! Block `h` of workload `seed` is a pure function of `(seed, h)`, so a test can replay exactly
//! the blocks a killed process committed.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::ChangeSet;

/// Shape of a synthetic workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Seed of the whole workload.
    pub seed: u64,
    /// Changed keys per block (before de-duplication of repeated keys).
    pub changes_per_block: usize,
    /// Keys are drawn from `0..key_space` accounts.
    pub key_space: u64,
    /// Out of 256, how many changes delete their key rather than set it.
    pub delete_weight: u8,
}

/// The state key of synthetic account `index`: `b"acct/"` followed by the big-endian index.
pub fn account_key(index: u64) -> Vec<u8> {
    let mut key = b"acct/".to_vec();
    key.extend_from_slice(&index.to_be_bytes());
    key
}

impl Workload {
    /// A seeded generator for block `height`, independent of every other block's.
    fn rng(&self, height: u64) -> ChaCha8Rng {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"cairn.ledger.store.synthetic");
        hasher.update(&self.seed.to_be_bytes());
        hasher.update(&height.to_be_bytes());
        ChaCha8Rng::from_seed(*hasher.finalize().as_bytes())
    }

    /// The changes of block `height`: random accounts set to random 8..=72-byte values or deleted.
    pub fn block(&self, height: u64) -> ChangeSet {
        let mut rng = self.rng(height);
        let mut changes = ChangeSet::new();
        for _ in 0..self.changes_per_block {
            let index = rng.next_u64() % self.key_space.max(1);
            let roll = rng.next_u32();
            let value = if (roll & 0xff) < u32::from(self.delete_weight) {
                None
            } else {
                let len = 8 + (roll >> 8) as usize % 65;
                let mut value = vec![0u8; len];
                rng.fill_bytes(&mut value);
                Some(value)
            };
            changes.insert(account_key(index), value);
        }
        changes
    }

    /// The record stored with block `height`: its height and a digest of its changes.
    pub fn record(&self, height: u64, changes: &ChangeSet) -> Vec<u8> {
        let mut hasher = blake3::Hasher::new();
        for (key, value) in changes {
            hasher.update(&(key.len() as u64).to_be_bytes());
            hasher.update(key);
            match value {
                Some(value) => {
                    hasher.update(&[1]);
                    hasher.update(&(value.len() as u64).to_be_bytes());
                    hasher.update(value);
                }
                None => {
                    hasher.update(&[0]);
                }
            }
        }
        let mut record = height.to_be_bytes().to_vec();
        record.extend_from_slice(hasher.finalize().as_bytes());
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_pure_functions_of_seed_and_height() {
        let workload = Workload {
            seed: 7,
            changes_per_block: 50,
            key_space: 1000,
            delete_weight: 64,
        };
        assert_eq!(workload.block(3), workload.block(3));
        assert_ne!(workload.block(3), workload.block(4));
        let other = Workload {
            seed: 8,
            ..workload
        };
        assert_ne!(workload.block(3), other.block(3));
        let block = workload.block(3);
        assert!(block.values().any(Option::is_none));
        assert!(block.values().any(Option::is_some));
    }
}
