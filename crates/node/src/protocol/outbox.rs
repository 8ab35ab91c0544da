//! Signs a node's payloads with consecutive nonces and keeps them until the ledger includes
//! them: re-broadcasts the pending ones every few blocks, and drops one the ledger would refuse
//! (or that the chain never takes) so that it cannot wedge the nonces after it.

use std::collections::BTreeMap;

use cairn_ledger::state::StateError;
use cairn_ledger::store::StateRead;
use cairn_ledger::{query, Address, Payload, SignedTransaction, TxError};
use ed25519_dalek::SigningKey;

/// Blocks between two broadcasts of a transaction still pending.
pub const DEFAULT_REBROADCAST_EVERY: u64 = 4;
/// Blocks after which the lowest pending transaction is presumed refused and dropped.
pub const DEFAULT_EXPIRE_AFTER: u64 = 16;
/// Most transactions pending at once; older payloads beyond it are refused.
pub const MAX_PENDING: usize = 256;

/// Why a payload could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The ledger state could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// Too many transactions are pending already.
    #[error("{MAX_PENDING} transactions are already pending; wait for blocks to include them")]
    Full,
}

#[derive(Clone, Debug)]
struct Pending {
    payload: Payload,
    transaction: SignedTransaction,
    first_sent: u64,
    /// The height of its last broadcast; `None` for a re-signed one not yet broadcast.
    last_sent: Option<u64>,
}

/// A node's outgoing transactions.
pub struct Outbox {
    key: SigningKey,
    address: Address,
    chain_id: u64,
    next_nonce: u64,
    pending: BTreeMap<u64, Pending>,
    rebroadcast_every: u64,
    expire_after: u64,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("address", &self.address)
            .field("next_nonce", &self.next_nonce)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Outbox {
    /// An outbox signing with `key` for chain `chain_id`.
    pub fn new(key: SigningKey, chain_id: u64) -> Self {
        let address = Address::from_public_key(&key.verifying_key());
        Self {
            key,
            address,
            chain_id,
            next_nonce: 0,
            pending: BTreeMap::new(),
            rebroadcast_every: DEFAULT_REBROADCAST_EVERY,
            expire_after: DEFAULT_EXPIRE_AFTER,
        }
    }

    /// Changes the re-broadcast period and the expiry (both at least 1 block).
    pub fn with_timing(mut self, rebroadcast_every: u64, expire_after: u64) -> Self {
        self.rebroadcast_every = rebroadcast_every.max(1);
        self.expire_after = expire_after.max(1);
        self
    }

    /// The signer's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Transactions signed and not yet included.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Reconciles with the finalized state at `height`: drops what the chain included (nonces
    /// below the account's), drops every pending transaction `stale` says can no longer execute
    /// ([`Outbox::discard`]), drops the lowest pending transaction while `refused` says the next
    /// block would refuse it (for a reason other than its nonce), drops it too when it has waited
    /// `expire_after` blocks, re-signing the later ones one nonce lower each time, and returns
    /// the pending transactions due for a re-broadcast.
    ///
    /// Dropping a refused head at once matters: every block it waits, the transactions behind it
    /// wait too, and a transaction bound to a phase of a round (an attestation, an audit report)
    /// is refused for good once that phase has passed, which would wedge the next one in turn.
    pub fn on_block(
        &mut self,
        height: u64,
        state: &dyn StateRead,
        stale: impl Fn(&Payload) -> bool,
        refused: impl Fn(&SignedTransaction) -> Option<TxError>,
    ) -> Result<Vec<SignedTransaction>, OutboxError> {
        let nonce = query::account(state, &self.address)?.nonce;
        self.pending.retain(|n, _| *n >= nonce);
        self.next_nonce = self.next_nonce.max(nonce);
        self.discard(height, stale);
        while let Some(head) = self.pending.get(&nonce) {
            match refused(&head.transaction) {
                Some(TxError::NonceReused { .. } | TxError::NonceSkipped { .. }) | None => break,
                Some(error) => {
                    tracing::info!(
                        nonce,
                        payload = head.payload.kind(),
                        %error,
                        "the ledger would refuse a pending transaction; dropping it"
                    );
                    self.renumber_from(nonce, height);
                }
            }
        }
        if let Some(head) = self.pending.get(&nonce) {
            if height.saturating_sub(head.first_sent) >= self.expire_after {
                tracing::warn!(
                    nonce,
                    payload = head.payload.kind(),
                    "pending transaction never included; dropping it"
                );
                self.renumber_from(nonce, height);
            }
        }
        let mut due = Vec::new();
        for pending in self.pending.values_mut() {
            let due_now = pending
                .last_sent
                .is_none_or(|last| height.saturating_sub(last) >= self.rebroadcast_every);
            if due_now {
                pending.last_sent = Some(height);
                due.push(pending.transaction.clone());
            }
        }
        Ok(due)
    }

    /// Drops every pending transaction whose payload `stale` says can no longer execute (a move
    /// in a dispute that has moved on or ended), re-signing the later ones lower, so that it does
    /// not hold back the nonces after it; returns how many were dropped. Call it only after
    /// dropping what the chain included ([`Outbox::on_block`] does both).
    fn discard(&mut self, height: u64, stale: impl Fn(&Payload) -> bool) -> usize {
        let mut dropped = 0;
        while let Some(nonce) = self
            .pending
            .iter()
            .find(|(_, pending)| stale(&pending.payload))
            .map(|(nonce, _)| *nonce)
        {
            if let Some(pending) = self.pending.get(&nonce) {
                tracing::debug!(
                    nonce,
                    payload = pending.payload.kind(),
                    "pending transaction is stale; dropping it"
                );
            }
            self.renumber_from(nonce, height);
            dropped += 1;
        }
        dropped
    }

    /// Signs `payload` with the next nonce, keeps it pending, and returns it for broadcast.
    pub fn submit(
        &mut self,
        payload: Payload,
        height: u64,
    ) -> Result<SignedTransaction, OutboxError> {
        if self.pending.len() >= MAX_PENDING {
            return Err(OutboxError::Full);
        }
        let nonce = self.next_nonce;
        let transaction = SignedTransaction::new(&self.key, self.chain_id, nonce, payload.clone());
        self.pending.insert(
            nonce,
            Pending {
                payload,
                transaction: transaction.clone(),
                first_sent: height,
                last_sent: Some(height),
            },
        );
        self.next_nonce += 1;
        Ok(transaction)
    }

    /// Drops the transaction at `nonce` and re-signs every later one a nonce lower.
    fn renumber_from(&mut self, nonce: u64, height: u64) {
        let later: Vec<Pending> = self
            .pending
            .split_off(&nonce)
            .into_values()
            .skip(1)
            .collect();
        self.next_nonce = nonce;
        for item in later {
            let transaction = SignedTransaction::new(
                &self.key,
                self.chain_id,
                self.next_nonce,
                item.payload.clone(),
            );
            self.pending.insert(
                self.next_nonce,
                Pending {
                    payload: item.payload,
                    transaction,
                    first_sent: height,
                    last_sent: None,
                },
            );
            self.next_nonce += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cairn_ledger::store::MemoryStore;
    use cairn_ledger::{Chain, Genesis, Params};

    use super::*;

    fn chain(key: &SigningKey) -> Chain<MemoryStore> {
        let genesis = Genesis {
            chain_id: 9,
            params: Params::default(),
            balances: BTreeMap::from([(Address::from_public_key(&key.verifying_key()), 1_000)]),
            validators: BTreeMap::from([(Address([9; 20]), 100)]),
            datasets: Default::default(),
        };
        Chain::create(MemoryStore::new(), &genesis, Default::default()).expect("genesis")
    }

    #[test]
    fn included_transactions_leave_and_later_nonces_follow() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let mut chain = chain(&key);
        let mut outbox = Outbox::new(key, 9);
        let first = outbox.submit(Payload::Bond { amount: 5 }, 0).unwrap();
        let second = outbox.submit(Payload::Bond { amount: 6 }, 0).unwrap();
        assert_eq!((first.transaction.nonce, second.transaction.nonce), (0, 1));
        let (_, rejected) = chain.propose_and_apply(vec![first]).unwrap();
        assert!(rejected.is_empty());
        assert!(outbox
            .on_block(1, chain.store(), |_| false, |_| None)
            .unwrap()
            .is_empty());
        assert_eq!(outbox.pending(), 1);
        let again = outbox
            .on_block(4, chain.store(), |_| false, |_| None)
            .unwrap();
        assert_eq!(again, vec![second], "the pending one is re-broadcast");
    }

    #[test]
    fn a_transaction_never_included_is_dropped_and_the_next_takes_its_nonce() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let mut chain = chain(&key);
        let mut outbox = Outbox::new(key, 9).with_timing(2, 5);
        // Bonding more than the balance is refused by every proposer.
        outbox.submit(Payload::Bond { amount: 5_000 }, 0).unwrap();
        outbox.submit(Payload::Bond { amount: 7 }, 0).unwrap();
        let due = outbox
            .on_block(5, chain.store(), |_| false, |_| None)
            .unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].transaction.nonce, 0);
        assert_eq!(due[0].transaction.payload, Payload::Bond { amount: 7 });
        let (_, rejected) = chain.propose_and_apply(due).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(
            query::stake(chain.store(), &outbox.address())
                .unwrap()
                .bonded,
            7
        );
    }

    #[test]
    fn a_stale_transaction_is_dropped_at_once_and_the_next_takes_its_nonce() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let mut chain = chain(&key);
        let mut outbox = Outbox::new(key, 9);
        let stale = Payload::DisputeAnswer {
            dispute: 3,
            agree: true,
        };
        outbox.submit(stale.clone(), 0).unwrap();
        outbox.submit(Payload::Bond { amount: 9 }, 0).unwrap();
        // One block later, long before the expiry, the dispute moved on: the next transaction
        // takes the stale one's nonce and goes out at once.
        let due = outbox
            .on_block(1, chain.store(), |p| *p == stale, |_| None)
            .unwrap();
        assert_eq!(outbox.pending(), 1);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].transaction.nonce, 0);
        let (_, rejected) = chain.propose_and_apply(due).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(
            query::stake(chain.store(), &outbox.address())
                .unwrap()
                .bonded,
            9
        );
    }

    #[test]
    fn a_transaction_the_next_block_would_refuse_is_dropped_at_once_with_the_ledgers_check() {
        let key = SigningKey::from_bytes(&[6; 32]);
        let mut chain = chain(&key);
        let mut outbox = Outbox::new(key, 9);
        // Bonding more than the balance (1 000) is refused; a challenge of a task that does not
        // exist is refused; the bond after them is fine.
        outbox.submit(Payload::Bond { amount: 5_000 }, 0).unwrap();
        outbox
            .submit(
                Payload::Challenge {
                    task: 4,
                    round: 0,
                    trainer: Address([1; 20]),
                    trace_root: [2; 32],
                },
                0,
            )
            .unwrap();
        outbox.submit(Payload::Bond { amount: 11 }, 0).unwrap();
        let datasets = chain.datasets().clone();
        let tip = chain.tip().clone();
        let store = chain.store();
        let refused = |transaction: &SignedTransaction| {
            cairn_ledger::execute::check_next(store, &tip, transaction, &datasets)
                .expect("the state reads")
        };
        let due = outbox.on_block(1, store, |_| false, refused).unwrap();
        assert_eq!(outbox.pending(), 1, "both refused ones are gone");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].transaction.nonce, 0);
        assert_eq!(due[0].transaction.payload, Payload::Bond { amount: 11 });
        let (_, rejected) = chain.propose_and_apply(due).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(
            query::stake(chain.store(), &outbox.address())
                .unwrap()
                .bonded,
            11
        );
    }
}
