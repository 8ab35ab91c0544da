//! Validators finalize ledger blocks over simplex on the deterministic runtime and simulated
//! network; followers track them through the finality feed.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_ledger::block::Block;
use cairn_ledger::encoding::Hash;
use cairn_ledger::genesis::{Genesis, Params};
use cairn_ledger::store::{MemoryStore, StateRead};
use cairn_node::channels;
use cairn_node::consensus::feed_wire::{FeedMessage, FeedWireError};
use cairn_node::consensus::{
    init_store, max_message_size, namespace, run_validator, start_follower, BlockObserver,
    CairnBlock, FeedError, FeedOutcome, Follower, FollowerConfig, LedgerState, Scheme,
    ValidatorChannels, ValidatorConfig,
};
use cairn_node::keys::NodeKey;
use common::{link, sender_key, transfers, Pool, CHAIN, QUOTA, SENDERS};
use commonware_consensus::simplex::types::{Finalization, Finalize, Proposal};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::ed25519;
use commonware_cryptography::Digestible;
use commonware_p2p::simulated::{self, Network, Oracle};
use commonware_parallel::Sequential;
use commonware_runtime::{deterministic, Clock, Handle, Runner, Spawner, Supervisor as _};
use commonware_utils::ordered::Set;
use commonware_utils::{non_empty, test_rng, NZUsize};

const VALIDATORS: usize = 4;

/// Records what the observer was told: height, state root, transactions, and whether the
/// state it was given has that root's supply key.
#[derive(Default)]
struct Recorder {
    blocks: Vec<(u64, Hash, usize)>,
    state_readable: bool,
}

impl BlockObserver for Recorder {
    fn on_finalized(&mut self, block: &Block, state: &dyn StateRead) {
        self.state_readable = state
            .get(cairn_ledger::state::keys::SUPPLY)
            .map(|v| v.is_some())
            .unwrap_or(false);
        self.blocks.push((
            block.header.height,
            block.header.state_root,
            block.transactions.len(),
        ));
    }
}

struct Cluster {
    oracle: Oracle<ed25519::PublicKey, deterministic::Context>,
    keys: Vec<NodeKey>,
    set: Set<ed25519::PublicKey>,
    genesis: Genesis,
    genesis_block: Block,
    stores: Vec<Arc<Mutex<MemoryStore>>>,
    pools: Vec<Arc<Pool>>,
    observers: Vec<Arc<Mutex<Recorder>>>,
    handles: Vec<Option<Handle<Result<(), cairn_node::consensus::ConsensusError>>>>,
}

impl Cluster {
    async fn new(
        context: &deterministic::Context,
        followers: &[ed25519::PublicKey],
        txs: u64,
    ) -> Self {
        let keys: Vec<NodeKey> = (0..VALIDATORS as u64)
            .map(|i| NodeKey::derive(1, i))
            .collect();
        let publics: Vec<ed25519::PublicKey> = keys.iter().map(NodeKey::public_key).collect();
        let set = Set::try_from(publics.clone()).expect("distinct keys");
        let (network, oracle) = Network::new_with_split_peers(
            context.child("network"),
            simulated::Config {
                max_size: max_message_size(VALIDATORS as u32),
                max_peers_per_set: NZUsize!(VALIDATORS + followers.len()),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(2),
            },
            publics.clone(),
            followers.to_vec(),
        )
        .await;
        network.start();
        let everyone: Vec<_> = publics.iter().chain(followers).cloned().collect();
        for a in &everyone {
            for b in &everyone {
                if a != b {
                    oracle.add_link(a.clone(), b.clone(), link()).await.unwrap();
                }
            }
        }
        let mut balances = BTreeMap::new();
        for s in 0..SENDERS {
            balances.insert(sender_key(s).address(), 1_000_000u128);
        }
        let mut validators = BTreeMap::new();
        for key in &keys {
            validators.insert(key.address(), 1_000u128);
        }
        let genesis = Genesis {
            chain_id: CHAIN,
            params: Params::default(),
            balances,
            validators,
            datasets: Default::default(),
        };
        let mut stores = Vec::new();
        let mut genesis_block = None;
        for _ in 0..VALIDATORS {
            let (store, block) =
                init_store(MemoryStore::new(), &genesis, Default::default()).unwrap();
            genesis_block = Some(block);
            stores.push(Arc::new(Mutex::new(store)));
        }
        let pools = (0..VALIDATORS)
            .map(|_| Arc::new(Pool(Mutex::new(transfers(txs)))))
            .collect();
        Self {
            oracle,
            keys,
            set,
            genesis,
            genesis_block: genesis_block.unwrap(),
            stores,
            pools,
            observers: (0..VALIDATORS).map(|_| Arc::default()).collect(),
            handles: (0..VALIDATORS).map(|_| None).collect(),
        }
    }

    async fn start(&mut self, context: &deterministic::Context, index: usize) {
        let public = self.keys[index].public_key();
        let control = self.oracle.control(public.clone());
        let mut register = Vec::new();
        for channel in [
            channels::VOTES,
            channels::CERTIFICATES,
            channels::RESOLVER,
            channels::BACKFILL,
            channels::BROADCAST,
            channels::FEED,
        ] {
            register.push(control.register(channel, QUOTA).await.unwrap());
        }
        let mut register = register.into_iter();
        let network = ValidatorChannels {
            votes: register.next().unwrap(),
            certificates: register.next().unwrap(),
            resolver: register.next().unwrap(),
            backfill: register.next().unwrap(),
            broadcast: register.next().unwrap(),
            feed: register.next().unwrap(),
        };
        let mut config = ValidatorConfig::new(
            CHAIN,
            self.set.clone(),
            self.keys[index].consensus_key(),
            format!("validator-{index}"),
            self.genesis_block.clone(),
        );
        config.max_candidates = 4;
        let store = self.stores[index].clone();
        let pool = self.pools[index].clone();
        let observer = self.observers[index].clone();
        let manager = self.oracle.manager();
        let handle = context
            .child("validator")
            .with_attribute("index", index)
            .spawn(move |context| {
                run_validator(
                    context, config, store, pool, observer, network, manager, control,
                )
            });
        self.handles[index] = Some(handle);
    }

    async fn crash(&mut self, index: usize) {
        if let Some(handle) = self.handles[index].take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    fn height(&self, index: usize) -> u64 {
        self.stores[index].lock().unwrap().height().unwrap()
    }

    fn root_at(&self, index: usize, height: u64) -> Option<Hash> {
        self.stores[index].lock().unwrap().root_at(height).unwrap()
    }

    /// Waits (in simulated time) until every listed validator's store reaches `height`.
    async fn wait_for(&self, context: &deterministic::Context, nodes: &[usize], height: u64) {
        while nodes.iter().any(|&i| self.height(i) < height) {
            context.sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asserts every validator's store has the same root at every height they share.
    fn assert_agree(&self) {
        let common = (0..VALIDATORS).map(|i| self.height(i)).min().unwrap();
        for height in 0..=common {
            let root = self.root_at(0, height);
            for i in 1..VALIDATORS {
                assert_eq!(
                    self.root_at(i, height),
                    root,
                    "validator {i} forks at {height}"
                );
            }
        }
    }
}

fn runner(seed: u64) -> deterministic::Runner {
    common::runner(seed, Duration::from_secs(600))
}

fn all() -> Vec<usize> {
    (0..VALIDATORS).collect()
}

/// Runs four validators to height 30; returns the root at 30, the auditor state and how many
/// transactions the observer saw.
fn finalize_thirty(seed: u64) -> (Hash, String, usize) {
    runner(seed).start(|context| async move {
        let mut cluster = Cluster::new(&context, &[], 20).await;
        for i in 0..VALIDATORS {
            cluster.start(&context, i).await;
        }
        cluster.wait_for(&context, &all(), 30).await;
        cluster.assert_agree();
        let transactions = {
            let seen = cluster.observers[0].lock().unwrap();
            assert!(
                seen.state_readable,
                "the observer gets the state at the block"
            );
            for (offset, block) in seen.blocks.iter().enumerate() {
                assert_eq!(block.0, offset as u64 + 1, "observer sees heights in order");
                assert_eq!(Some(block.1), cluster.root_at(0, block.0));
            }
            seen.blocks.iter().take(30).map(|b| b.2).sum::<usize>()
        };
        let root = cluster.root_at(0, 30).unwrap();
        assert!(cluster.oracle.blocked().await.unwrap().is_empty());
        (root, context.auditor().state(), transactions)
    })
}

#[test]
fn four_validators_finalize_thirty_blocks_of_transfers_with_equal_roots() {
    let (_, _, transactions) = finalize_thirty(7);
    assert!(
        transactions >= 30,
        "only {transactions} transfers finalized"
    );
}

#[test]
fn same_seed_gives_same_root_and_same_execution_trace() {
    let first = finalize_thirty(11);
    let second = finalize_thirty(11);
    assert_eq!(first.0, second.0);
    assert_eq!(first.1, second.1);
}

#[test]
fn crashed_validator_restarts_on_its_storage_and_catches_up() {
    runner(3).start(|context| async move {
        let mut cluster = Cluster::new(&context, &[], 20).await;
        for i in 0..VALIDATORS {
            cluster.start(&context, i).await;
        }
        cluster.wait_for(&context, &all(), 8).await;
        cluster.crash(3).await;
        let crashed_at = cluster.height(3);
        cluster
            .wait_for(&context, &[0, 1, 2], crashed_at + 12)
            .await;
        assert_eq!(
            cluster.height(3),
            crashed_at,
            "a crashed validator commits nothing"
        );
        cluster.start(&context, 3).await;
        let target = cluster.height(0) + 5;
        cluster.wait_for(&context, &all(), target).await;
        cluster.assert_agree();
    });
}

#[test]
fn partition_halts_finality_and_healing_resumes_it_without_a_fork() {
    runner(5).start(|context| async move {
        let mut cluster = Cluster::new(&context, &[], 20).await;
        for i in 0..VALIDATORS {
            cluster.start(&context, i).await;
        }
        cluster.wait_for(&context, &all(), 5).await;
        let publics: Vec<_> = cluster.keys.iter().map(NodeKey::public_key).collect();
        let split = |a: usize, b: usize| (a < 2) != (b < 2);
        for a in 0..VALIDATORS {
            for b in 0..VALIDATORS {
                if split(a, b) {
                    cluster
                        .oracle
                        .remove_link(publics[a].clone(), publics[b].clone())
                        .await
                        .unwrap();
                }
            }
        }
        // Let blocks already in flight land, then expect no progress for a while.
        context.sleep(Duration::from_secs(5)).await;
        let stalled: Vec<u64> = all().iter().map(|&i| cluster.height(i)).collect();
        context.sleep(Duration::from_secs(20)).await;
        let after: Vec<u64> = all().iter().map(|&i| cluster.height(i)).collect();
        assert_eq!(stalled, after, "two of four validators cannot finalize");
        for a in 0..VALIDATORS {
            for b in 0..VALIDATORS {
                if split(a, b) {
                    cluster
                        .oracle
                        .add_link(publics[a].clone(), publics[b].clone(), link())
                        .await
                        .unwrap();
                }
            }
        }
        let target = after.iter().max().unwrap() + 5;
        cluster.wait_for(&context, &all(), target).await;
        cluster.assert_agree();
    });
}

#[test]
fn follower_tracks_the_chain_through_the_finality_feed() {
    runner(9).start(|context| async move {
        let trainer = NodeKey::derive(2, 0);
        let mut cluster = Cluster::new(&context, &[trainer.public_key()], 20).await;
        let (store, _) =
            init_store(MemoryStore::new(), &cluster.genesis, Default::default()).unwrap();
        let store = Arc::new(Mutex::new(store));
        let observer: Arc<Mutex<Recorder>> = Arc::default();
        let feed = cluster
            .oracle
            .control(trainer.public_key())
            .register(channels::FEED, QUOTA)
            .await
            .unwrap();
        let _follower = start_follower(
            context.child("follower"),
            FollowerConfig::new(CHAIN, cluster.set.clone()),
            store.clone(),
            observer.clone(),
            feed,
        );
        for i in 0..VALIDATORS {
            cluster.start(&context, i).await;
        }
        cluster.wait_for(&context, &all(), 15).await;
        while store.lock().unwrap().height().unwrap() < 15 {
            context.sleep(Duration::from_millis(100)).await;
        }
        for height in 0..=15 {
            assert_eq!(
                store.lock().unwrap().root_at(height).unwrap(),
                cluster.root_at(0, height)
            );
        }
        let seen = observer.lock().unwrap();
        assert_eq!(seen.blocks.first().map(|b| b.0), Some(1));
        assert!(seen.blocks.windows(2).all(|w| w[1].0 == w[0].0 + 1));
    });
}

/// Signs a finalization of `block` at view `view` with the first three validators of `keys`
/// (a quorum of four), as members of `set`.
fn finalize(
    keys: &[NodeKey],
    set: &Set<ed25519::PublicKey>,
    block: &CairnBlock,
    view: u64,
) -> cairn_node::consensus::Finalization {
    let proposal = Proposal::new(
        Round::new(Epoch::zero(), View::new(view)),
        View::new(view - 1),
        block.digest(),
    );
    let schemes: Vec<Scheme> = keys
        .iter()
        .map(|key| Scheme::signer(&namespace(CHAIN), set.clone(), key.consensus_key()).unwrap())
        .collect();
    let votes: Vec<_> = schemes
        .iter()
        .take(3)
        .map(|scheme| Finalize::sign(scheme, proposal.clone()).unwrap())
        .collect();
    Finalization::from_finalizes(&schemes[0], non_empty![@&votes], &Sequential).unwrap()
}

#[test]
fn follower_rejects_forged_and_garbled_feed_messages_without_moving_its_store() {
    let keys: Vec<NodeKey> = (0..VALIDATORS as u64)
        .map(|i| NodeKey::derive(1, i))
        .collect();
    let set = Set::try_from(keys.iter().map(NodeKey::public_key).collect::<Vec<_>>()).unwrap();
    let mut balances = BTreeMap::new();
    balances.insert(sender_key(0).address(), 1_000u128);
    // The ledger's set is what certificates are checked against: all four keys.
    let validators: BTreeMap<_, _> = keys.iter().map(|key| (key.address(), 1_000u128)).collect();
    let genesis = Genesis {
        chain_id: CHAIN,
        params: Params::default(),
        balances,
        validators,
        datasets: Default::default(),
    };

    // An honest block 1, built by a proposer's ledger state.
    let (proposer_store, genesis_block) =
        init_store(MemoryStore::new(), &genesis, Default::default()).unwrap();
    let proposer =
        LedgerState::open(Arc::new(Mutex::new(proposer_store)), Default::default()).unwrap();
    let honest = proposer
        .build(&genesis_block.hash(), transfers(1)[..1].to_vec())
        .unwrap()
        .unwrap();
    assert_eq!(honest.transactions.len(), 1);
    let honest = CairnBlock::new(honest);
    let message = |block: &CairnBlock, finalization| {
        FeedMessage::Finalized {
            block: block.clone(),
            finalization,
        }
        .to_bytes()
    };
    let good = message(&honest, finalize(&keys, &set, &honest, 1));

    let (store, _) = init_store(MemoryStore::new(), &genesis, Default::default()).unwrap();
    let store = Arc::new(Mutex::new(store));
    let observer: Arc<Mutex<Recorder>> = Arc::default();
    let mut follower = Follower::new(
        &FollowerConfig::new(CHAIN, set.clone()),
        store.clone(),
        observer.clone(),
    )
    .unwrap();
    let genesis_root = store.lock().unwrap().root();
    let mut rng = test_rng();
    let unmoved = |store: &Arc<Mutex<MemoryStore>>| {
        let store = store.lock().unwrap();
        store.height() == Some(0) && store.root() == genesis_root
    };

    // Garbled: truncated, wrong version, random bytes.
    let cut = follower.handle(&mut rng, &good[..good.len() - 7]);
    assert!(matches!(cut, Err(FeedError::Wire(_))), "{cut:?}");
    let mut versioned = good.clone();
    versioned[0] = 9;
    let version = follower.handle(&mut rng, &versioned);
    assert!(
        matches!(version, Err(FeedError::Wire(FeedWireError::Version(9)))),
        "{version:?}"
    );
    assert!(follower.handle(&mut rng, &[1, 0, 1, 2, 3]).is_err());
    assert!(follower.handle(&mut rng, &[]).is_err());

    // A certificate from keys outside the validator set.
    let outsiders: Vec<NodeKey> = (0..VALIDATORS as u64)
        .map(|i| NodeKey::derive(66, i))
        .collect();
    let outsider_set = Set::try_from(
        outsiders
            .iter()
            .map(NodeKey::public_key)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let forged = message(&honest, finalize(&outsiders, &outsider_set, &honest, 1));
    let outcome = follower.handle(&mut rng, &forged);
    assert!(
        matches!(outcome, Err(FeedError::BadCertificate { height: 1 })),
        "{outcome:?}"
    );

    // A real certificate attached to another block.
    let mut altered = honest.block().clone();
    altered.header.state_root = [0xAA; 32];
    let altered = CairnBlock::new(altered);
    let swapped = message(&altered, finalize(&keys, &set, &honest, 1));
    let outcome = follower.handle(&mut rng, &swapped);
    assert!(
        matches!(outcome, Err(FeedError::DigestMismatch { height: 1 })),
        "{outcome:?}"
    );

    // A quorum-signed block whose header lies about the state root is still not applied.
    let lying = message(&altered, finalize(&keys, &set, &altered, 1));
    let outcome = follower.handle(&mut rng, &lying);
    assert!(
        matches!(outcome, Err(FeedError::Apply { height: 1, .. })),
        "{outcome:?}"
    );

    // Followers do not serve requests.
    let request = FeedMessage::Request { from: 1, count: 1 }.to_bytes();
    assert!(matches!(
        follower.handle(&mut rng, &request),
        Err(FeedError::NotServing)
    ));

    assert!(unmoved(&store), "no refused message moved the store");
    assert!(observer.lock().unwrap().blocks.is_empty());

    // The honest message applies.
    assert_eq!(
        follower.handle(&mut rng, &good).unwrap(),
        FeedOutcome::Applied(1)
    );
    assert_eq!(
        store.lock().unwrap().root(),
        honest.block().header.state_root
    );
    assert_eq!(observer.lock().unwrap().blocks.len(), 1);
    // Redelivery is ignored.
    assert_eq!(
        follower.handle(&mut rng, &good).unwrap(),
        FeedOutcome::Ignored
    );
}
