//! Shared fixtures for the ledger's scenario tests: keys, a genesis, a chain, signed transactions.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use cairn_ledger::block::transactions_root;
use cairn_ledger::encoding::{domain_hash, Hash};
use cairn_ledger::store::{MemoryStore, StateStore};
use cairn_ledger::transaction::LastCheckpoint;
use cairn_ledger::{
    Address, Block, BlockError, Chain, ChainError, DatasetRegistry, Genesis, Header, Params,
    Payload, SignedTransaction, TaskSpec, TxError, Verification,
};
use cairn_round::plan::seal_initial_model;
use cairn_round::trace::{self, Checkpoint};
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

/// The fixture chain's one dataset: 200 samples of 4 features in 2 classes (the class is whether
/// feature 0 exceeds 0.5), registered once per test binary.
pub fn datasets() -> Arc<DatasetRegistry> {
    static REGISTRY: OnceLock<Arc<DatasetRegistry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let mut registry = DatasetRegistry::new();
            registry
                .insert("separable", &cairn_round::fixtures::separable())
                .expect("register");
            Arc::new(registry)
        })
        .clone()
}

/// The content hash of the fixture dataset.
pub fn dataset() -> Hash {
    datasets().hash_of("separable").expect("registered")
}

/// A genesis giving every user [`BALANCE`] and one outside validator some stake, serving the
/// fixture dataset.
pub fn genesis(users: &[User], params: Params) -> Genesis {
    Genesis {
        chain_id: CHAIN_ID,
        params,
        balances: users.iter().map(|u| (u.address, BALANCE)).collect(),
        validators: BTreeMap::from([(Address([0xee; 20]), 1_000)]),
        datasets: BTreeSet::from([dataset()]),
    }
}

/// A genesis like [`genesis`] whose consensus validators are `validators` (user index, weight)
/// instead of the outside one: the users that validate tasks (they join with their weight).
pub fn genesis_with_validators(
    users: &[User],
    validators: &[(usize, u128)],
    params: Params,
) -> Genesis {
    Genesis {
        validators: validators
            .iter()
            .map(|(index, weight)| (users[*index].address, *weight))
            .collect(),
        ..genesis(users, params)
    }
}

/// A fresh in-memory chain over `genesis`.
pub fn chain(genesis: &Genesis) -> Chain<MemoryStore> {
    Chain::create(MemoryStore::new(), genesis, datasets()).expect("valid genesis")
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

/// Local steps of the fixture task.
pub const STEPS: u32 = 20;
/// Trace interval of the fixture task.
pub const TRACE_EVERY: u32 = 5;
/// Challenge bond of the fixture task.
pub const CHALLENGE_BOND: u128 = 50;
/// Smallest trainer bond of the fixture task (its `min_stake` is 100, for validators too).
pub const MIN_TRAINER_BOND: u128 = 200;

/// A small task spec on the fixture dataset with the given windows (audit window 2 blocks, 2
/// blocks per dispute move, no random audits), its initial model sealed.
pub fn spec(rounds: u32, windows: (u64, u64, u64), reward_per_round: u128) -> TaskSpec {
    let mut spec = TaskSpec {
        model: "logistic:4-2".into(),
        initial_model: [0; 32],
        dataset: dataset(),
        partition: "iid".into(),
        rounds,
        local_steps: STEPS,
        optimizer: "sgd:lr=0.5,momentum=0.9,batch=16".into(),
        robust_rule: "median".into(),
        commit_window: windows.0,
        reveal_window: windows.1,
        availability_window: windows.1,
        attest_window: windows.2,
        min_stake: 100,
        reward_per_round,
        verification: Verification {
            trace_every: TRACE_EVERY,
            audit_ppm: 0,
            audit_window: 2,
            move_window: 2,
            challenge_bond: CHALLENGE_BOND,
            min_trainer_bond: MIN_TRAINER_BOND,
        },
    };
    seal_initial_model(&mut spec, &datasets()).expect("the fixture spec parses");
    spec
}

/// A synthetic trace whose last checkpoint names `update_hash`: what the ledger checks at a
/// reveal (the leaves are not real training; disputes over them use real traces).
pub struct SyntheticTrace {
    /// The trace root to commit.
    pub root: Hash,
    /// The last checkpoint's parts a reveal opens.
    pub last: LastCheckpoint,
    /// Its Merkle proof.
    pub proof: Vec<Hash>,
}

/// The synthetic trace of an update with this hash in the fixture task.
pub fn synthetic_trace(update_hash: &Hash) -> SyntheticTrace {
    let count = trace::leaf_count(STEPS, TRACE_EVERY);
    let part = |tag: &[u8]| domain_hash(b"cairn/test-trace", &[tag, update_hash]);
    let last = LastCheckpoint {
        weights: part(b"weights"),
        optimizer: part(b"optimizer"),
        batch: part(b"batch"),
    };
    let mut leaves: Vec<Hash> = (0..count - 1)
        .map(|i| part(&(i as u64).to_be_bytes()))
        .collect();
    leaves.push(
        Checkpoint {
            step: STEPS,
            weights: last.weights,
            optimizer: last.optimizer,
            batch: last.batch,
            update: *update_hash,
        }
        .hash(),
    );
    SyntheticTrace {
        root: trace::root(&leaves),
        last,
        proof: trace::proof(&leaves, count - 1).expect("last leaf"),
    }
}

/// A commit of `update_hash` with `salt` by `user` in round `round` of task `task`, with the
/// synthetic trace.
pub fn commit_update(
    user: &User,
    task: u64,
    round: u32,
    update_hash: &Hash,
    salt: &Hash,
) -> Payload {
    Payload::CommitUpdate {
        task,
        round,
        commitment: cairn_ledger::transaction::update_commitment(
            &user.scope(task, round),
            update_hash,
            salt,
        ),
        trace_root: synthetic_trace(update_hash).root,
    }
}

/// The reveal matching [`commit_update`].
pub fn reveal_update(task: u64, round: u32, update_hash: &Hash, salt: &Hash) -> Payload {
    let trace = synthetic_trace(update_hash);
    Payload::RevealUpdate {
        task,
        round,
        update_hash: *update_hash,
        salt: *salt,
        last: trace.last,
        proof: trace.proof,
    }
}

/// A task validator's availability vote in round `round` of task `task`: it holds the revealed
/// updates of the trainers in `held`.
pub fn vote_availability(
    task: u64,
    round: u32,
    held: impl IntoIterator<Item = Address>,
) -> Payload {
    Payload::VoteAvailability {
        task,
        round,
        held: held.into_iter().collect(),
    }
}

/// A chain whose consensus validators are `validators` (user index, weight), with task 0 of
/// `spec` created by user 0, joined by users 1..=3 as trainers with `trainer_bond` and by the
/// validators with their weights, and started at height 3. Users: 0 creator, 1..=3 trainers,
/// then up to index 7 (every user bonds 1 000 first).
pub fn started_task(
    spec: TaskSpec,
    validators: &[(usize, u128)],
    trainer_bond: u128,
) -> (Chain<MemoryStore>, Vec<User>) {
    let mut users = users(8);
    let mut chain = chain(&genesis_with_validators(
        &users,
        validators,
        Params::default(),
    ));
    let mut block = vec![users[0].sign(Payload::CreateTask { spec })];
    for user in users.iter_mut().skip(1) {
        block.push(user.sign(Payload::Bond { amount: 1_000 }));
    }
    commit(&mut chain, block);
    let mut joins = Vec::new();
    for trainer in &mut users[1..=3] {
        joins.push(trainer.sign(Payload::JoinTask {
            task: 0,
            role: cairn_ledger::Role::Trainer,
            bond: trainer_bond,
        }));
    }
    for (validator, weight) in validators {
        joins.push(users[*validator].sign(Payload::JoinTask {
            task: 0,
            role: cairn_ledger::Role::Validator,
            bond: *weight,
        }));
    }
    commit(&mut chain, joins);
    commit(
        &mut chain,
        vec![users[0].sign(Payload::StartTask { task: 0 })],
    );
    assert_eq!(chain.tip().height, 3);
    (chain, users)
}

/// Asserts that every token of the supply is held somewhere and that the supply is `supply`.
pub fn assert_conserved(chain: &Chain<MemoryStore>, supply: u128) {
    let snapshot = cairn_ledger::query::Snapshot::read(chain.store()).unwrap();
    assert_eq!(
        snapshot.supply,
        supply,
        "supply at height {}",
        chain.tip().height
    );
    assert_eq!(
        snapshot.holdings(),
        Some(snapshot.supply),
        "holdings differ from the supply at height {}",
        chain.tip().height
    );
}
