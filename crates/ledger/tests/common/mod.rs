//! Shared fixtures for the ledger's scenario tests: keys, a genesis, a chain, signed transactions.
#![allow(dead_code)]

use std::collections::BTreeMap;

use cairn_ledger::block::transactions_root;
use cairn_ledger::store::{MemoryStore, StateStore};
use cairn_ledger::{
    Address, Block, BlockError, Chain, ChainError, Genesis, Header, Params, Payload,
    SignedTransaction, TaskSpec, TxError,
};
use ed25519_dalek::SigningKey;

/// The chain id every fixture uses.
pub const CHAIN_ID: u64 = 42;

/// Initial balance of every user.
pub const BALANCE: u128 = 1_000_000;

/// A user: signing key, address, and the nonce of its next transaction.
pub struct User {
    pub key: SigningKey,
    pub address: Address,
    pub nonce: u64,
}

impl User {
    /// The scope that binds this user's commitments to `round` of `task` on the fixture chain.
    pub fn scope(&self, task: u64, round: u32) -> cairn_ledger::transaction::CommitmentScope {
        cairn_ledger::transaction::CommitmentScope {
            chain_id: CHAIN_ID,
            task,
            round,
            member: self.address,
        }
    }

    /// The user with the given seed byte.
    pub fn new(seed: u8) -> Self {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let address = Address::from_public_key(&key.verifying_key());
        Self {
            key,
            address,
            nonce: 0,
        }
    }

    /// The user number `index` of a large population (its key's first two bytes are the index,
    /// the rest `0xcc`: distinct from every [`User::new`] key).
    pub fn numbered(index: u16) -> Self {
        let mut seed = [0xcc; 32];
        seed[..2].copy_from_slice(&index.to_be_bytes());
        let key = SigningKey::from_bytes(&seed);
        let address = Address::from_public_key(&key.verifying_key());
        Self {
            key,
            address,
            nonce: 0,
        }
    }

    /// Signs `payload` with the next nonce (and advances it).
    pub fn sign(&mut self, payload: Payload) -> SignedTransaction {
        let tx = SignedTransaction::new(&self.key, CHAIN_ID, self.nonce, payload);
        self.nonce += 1;
        tx
    }

    /// Signs `payload` with an explicit nonce, leaving the counter alone.
    pub fn sign_with_nonce(&self, nonce: u64, payload: Payload) -> SignedTransaction {
        SignedTransaction::new(&self.key, CHAIN_ID, nonce, payload)
    }
}

/// `count` users with seeds 1..=count.
pub fn users(count: u8) -> Vec<User> {
    (1..=count).map(User::new).collect()
}

/// A genesis giving every user [`BALANCE`] and one outside validator some stake.
pub fn genesis(users: &[User], params: Params) -> Genesis {
    Genesis {
        chain_id: CHAIN_ID,
        params,
        balances: users.iter().map(|u| (u.address, BALANCE)).collect(),
        validators: BTreeMap::from([(Address([0xee; 20]), 1_000)]),
    }
}

/// A fresh in-memory chain over `genesis`.
pub fn chain(genesis: &Genesis) -> Chain<MemoryStore> {
    Chain::create(MemoryStore::new(), genesis).expect("valid genesis")
}

/// A block on top of the chain's tip carrying `transactions` exactly (nothing filtered), with a
/// state root of zeros (execution errors come before the root check).
pub fn raw_block<S: StateStore>(chain: &Chain<S>, transactions: Vec<SignedTransaction>) -> Block {
    let tip = chain.tip();
    Block {
        header: Header {
            chain_id: tip.chain_id,
            height: tip.height + 1,
            parent: tip.hash(),
            transactions_root: transactions_root(&transactions),
            state_root: [0; 32],
        },
        transactions,
    }
}

/// Applies a block of exactly `transactions`, expecting its first-failing transaction's error;
/// asserts the store's root and height did not move. Returns the error.
pub fn expect_rejected(
    chain: &mut Chain<MemoryStore>,
    transactions: Vec<SignedTransaction>,
) -> TxError {
    let root = chain.store().root();
    let height = chain.store().height();
    let block = raw_block(chain, transactions);
    let error = match chain.apply(&block) {
        Err(ChainError::Block(BlockError::Transaction { error, .. })) => error,
        other => panic!("expected a rejected transaction, got {other:?}"),
    };
    assert_eq!(chain.store().root(), root, "state root moved");
    assert_eq!(chain.store().height(), height, "height moved");
    error
}

/// Proposes and applies a block, asserting every candidate was accepted.
pub fn commit(chain: &mut Chain<MemoryStore>, transactions: Vec<SignedTransaction>) -> Block {
    let (block, rejected) = chain
        .propose_and_apply(transactions)
        .expect("block applies");
    assert!(rejected.is_empty(), "rejected: {rejected:?}");
    block
}

/// Applies empty blocks until the tip is at `height`.
pub fn advance_to(chain: &mut Chain<MemoryStore>, height: u64) {
    while chain.tip().height < height {
        commit(chain, Vec::new());
    }
}

/// A small task spec with the given windows.
pub fn spec(rounds: u32, windows: (u64, u64, u64), reward_per_round: u128) -> TaskSpec {
    TaskSpec {
        model: "mlp-784-32-10".into(),
        initial_model: [7; 32],
        dataset: [8; 32],
        partition: "iid".into(),
        rounds,
        local_steps: 20,
        optimizer: "sgd:lr=0.05".into(),
        robust_rule: "trimmed-mean:0.2".into(),
        commit_window: windows.0,
        reveal_window: windows.1,
        attest_window: windows.2,
        min_stake: 100,
        reward_per_round,
    }
}
