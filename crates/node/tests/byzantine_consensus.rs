//! Byzantine peers against Cairn consensus on the deterministic runtime and simulated network:
//! a validator that double-votes or equivocates as leader (commonware's simplex mocks) cannot
//! fork or stall the three honest validators, and a follower blocks a peer that keeps sending
//! garbage on the finality feed.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_ledger::block::Block;
use cairn_ledger::encoding::Hash;
use cairn_ledger::genesis::{Genesis, Params};
use cairn_ledger::store::{MemoryStore, StateRead};
use cairn_node::channels;
use cairn_node::consensus::feed::start_follower_with_penalties;
use cairn_node::consensus::feed_wire::FeedMessage;
use cairn_node::consensus::{
    init_store, max_message_size, namespace, run_validator, BlockObserver, Scheme,
    ValidatorChannels, ValidatorConfig,
};
use cairn_node::keys::NodeKey;
use cairn_node::penalty::PenaltyConfig;
use common::{link, sender_key, transfers, Pool, CHAIN, QUOTA, SENDERS};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::mocks::{conflicter, equivocator, relay::Relay};
use commonware_consensus::types::Epoch;
use commonware_cryptography::blake3::Blake3;
use commonware_cryptography::{ed25519, Sha256};
use commonware_p2p::simulated::{self, Network, Oracle};
use commonware_p2p::utils::mux::Muxer;
use commonware_p2p::{Recipients, Sender as _};
use commonware_runtime::{deterministic, Clock, Metrics as _, Runner, Spawner, Supervisor as _};
use commonware_utils::ordered::Set;
use commonware_utils::NZUsize;

/// Validators in the set: indexes 0..3 are honest, 3 is Byzantine.
const VALIDATORS: usize = 4;
const HONEST: [usize; 3] = [0, 1, 2];
const BYZANTINE: usize = 3;
const TARGET: u64 = 20;

/// Counts the transactions of every finalized block the observer was told about.
#[derive(Default)]
struct Recorder {
    transactions: usize,
}

impl BlockObserver for Recorder {
    fn on_finalized(&mut self, block: &Block, _state: &dyn StateRead) {
        self.transactions += block.transactions.len();
    }
}

fn runner(seed: u64) -> deterministic::Runner {
    common::runner(seed, Duration::from_secs(900))
}

fn validator_keys() -> Vec<NodeKey> {
    (0..VALIDATORS as u64)
        .map(|i| NodeKey::derive(1, i))
        .collect()
}

fn genesis(keys: &[NodeKey]) -> Genesis {
    let mut balances = BTreeMap::new();
    for s in 0..SENDERS {
        balances.insert(sender_key(s).address(), 1_000_000u128);
    }
    let mut validators = BTreeMap::new();
    for key in keys {
        validators.insert(key.address(), 1_000u128);
    }
    Genesis {
        chain_id: CHAIN,
        params: Params::default(),
        balances,
        validators,
        datasets: Default::default(),
    }
}

/// A started simulated network where everyone in `peers` links to everyone else.
async fn network(
    context: &deterministic::Context,
    validators: &[ed25519::PublicKey],
    others: &[ed25519::PublicKey],
) -> Oracle<ed25519::PublicKey, deterministic::Context> {
    let (network, oracle) = Network::new_with_split_peers(
        context.child("network"),
        simulated::Config {
            max_size: max_message_size(VALIDATORS as u32),
            max_peers_per_set: NZUsize!(validators.len() + others.len()),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(2),
        },
        validators.to_vec(),
        others.to_vec(),
    )
    .await;
    network.start();
    let everyone: Vec<_> = validators.iter().chain(others).cloned().collect();
    for a in &everyone {
        for b in &everyone {
            if a != b {
                oracle.add_link(a.clone(), b.clone(), link()).await.unwrap();
            }
        }
    }
    oracle
}

/// How the Byzantine validator misbehaves (commonware's simplex mocks).
#[derive(Clone, Copy)]
enum Attack {
    /// For every notarize/finalize it receives, signs both that proposal and a random one.
    Conflicter,
    /// When it leads, notarizes one proposal to a random honest validator and another to the
    /// rest; otherwise silent.
    Equivocator,
}

/// What an honest run produced: the honest validators' stores and observers, and the
/// `(blocker, blocked)` pairs the network recorded.
struct Outcome {
    heights: Vec<u64>,
    roots: Vec<Vec<Option<Hash>>>,
    transactions: Vec<usize>,
    blocked: Vec<(ed25519::PublicKey, ed25519::PublicKey)>,
    byzantine: ed25519::PublicKey,
    /// Fewest votes the Byzantine validator delivered to any one honest validator.
    votes_to_honest: u64,
}

/// How many messages `from` sent `to` on the VOTES channel, from the simulated network's
/// `messages_sent` counter.
fn votes_sent(
    context: &deterministic::Context,
    from: &ed25519::PublicKey,
    to: &ed25519::PublicKey,
) -> u64 {
    let labels = format!(
        "{{origin=\"{from}\",recipient=\"{to}\",channel=\"{}\"}}",
        channels::VOTES
    );
    context
        .encode()
        .lines()
        .filter_map(|line| line.strip_prefix("network_messages_sent_total"))
        .filter_map(|line| line.strip_prefix(labels.as_str()))
        .filter_map(|count| count.trim().parse::<u64>().ok())
        .sum()
}

/// Runs three honest validators and one Byzantine one until every honest store holds
/// [`TARGET`] blocks, then reads their roots at every height up to the lowest honest tip.
fn run_with(seed: u64, attack: Attack) -> Outcome {
    runner(seed).start(|context| async move {
        let keys = validator_keys();
        let publics: Vec<ed25519::PublicKey> = keys.iter().map(NodeKey::public_key).collect();
        let set = Set::try_from(publics.clone()).expect("distinct keys");
        let oracle = network(&context, &publics, &[]).await;
        let genesis = genesis(&keys);

        let mut stores = Vec::new();
        let mut observers = Vec::new();
        for &index in &HONEST {
            let (store, genesis_block) =
                init_store(MemoryStore::new(), &genesis, Default::default()).unwrap();
            let store = Arc::new(Mutex::new(store));
            let observer: Arc<Mutex<Recorder>> = Arc::default();
            let control = oracle.control(publics[index].clone());
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
                set.clone(),
                keys[index].consensus_key(),
                format!("validator-{index}"),
                genesis_block,
            );
            config.max_candidates = 4;
            let pool = Arc::new(Pool(Mutex::new(transfers(40))));
            let manager = oracle.manager();
            let (task_store, task_observer) = (store.clone(), observer.clone());
            context
                .child("validator")
                .with_attribute("index", index)
                .spawn(move |context| {
                    run_validator(
                        context,
                        config,
                        task_store,
                        pool,
                        task_observer,
                        network,
                        manager,
                        control,
                    )
                });
            stores.push(store);
            observers.push(observer);
        }

        let byzantine = publics[BYZANTINE].clone();
        let scheme = Scheme::signer(
            &namespace(CHAIN),
            set.clone(),
            keys[BYZANTINE].consensus_key(),
        )
        .expect("the Byzantine key is in the set");
        let control = oracle.control(byzantine.clone());
        // Validators multiplex each consensus channel by epoch; the attacker speaks epoch 0's
        // subchannel, as an honest validator of that epoch does.
        let epoch_zero = |(sender, receiver), name: &'static str| {
            let (mux, mut handle) = Muxer::new(context.child(name), sender, receiver);
            mux.start();
            async move { handle.register(0).await.unwrap() }
        };
        let votes = epoch_zero(
            control.register(channels::VOTES, QUOTA).await.unwrap(),
            "byzantine_votes",
        )
        .await;
        let certificates = epoch_zero(
            control
                .register(channels::CERTIFICATES, QUOTA)
                .await
                .unwrap(),
            "byzantine_certificates",
        )
        .await;
        let byzantine_context = context.child("byzantine");
        let _attacker = match attack {
            Attack::Conflicter => {
                let engine: conflicter::Conflicter<_, _, Blake3> =
                    conflicter::Conflicter::new(byzantine_context, conflicter::Config { scheme });
                engine.start(votes)
            }
            Attack::Equivocator => {
                let engine: equivocator::Equivocator<_, _, RoundRobin<Sha256>, Blake3> =
                    equivocator::Equivocator::new(
                        byzantine_context,
                        equivocator::Config {
                            scheme,
                            elector: RoundRobin::<Sha256>::default(),
                            epoch: Epoch::zero(),
                            relay: Arc::new(Relay::new()),
                        },
                    );
                engine.start(votes, certificates)
            }
        };

        let height = |store: &Arc<Mutex<MemoryStore>>| store.lock().unwrap().height().unwrap();
        while stores.iter().any(|store| height(store) < TARGET) {
            context.sleep(Duration::from_millis(100)).await;
        }
        let votes_to_honest = HONEST
            .iter()
            .map(|&i| votes_sent(&context, &byzantine, &publics[i]))
            .min()
            .unwrap_or(0);
        let heights: Vec<u64> = stores.iter().map(height).collect();
        let common = *heights.iter().min().unwrap();
        let roots = stores
            .iter()
            .map(|store| {
                let store = store.lock().unwrap();
                (0..=common).map(|h| store.root_at(h).unwrap()).collect()
            })
            .collect();
        let transactions = observers
            .iter()
            .map(|observer| observer.lock().unwrap().transactions)
            .collect();
        Outcome {
            heights,
            roots,
            transactions,
            blocked: oracle.blocked().await.unwrap(),
            byzantine,
            votes_to_honest,
        }
    })
}

/// Asserts the honest validators reached the target with transfers in their blocks, agree on
/// the root at every shared height, and blocked nobody but the Byzantine validator.
fn assert_honest_progress_without_fork(outcome: &Outcome) {
    assert!(outcome.heights.iter().all(|&h| h >= TARGET));
    for (i, roots) in outcome.roots.iter().enumerate() {
        assert!(roots.iter().all(Option::is_some), "validator {i} has gaps");
        assert_eq!(roots, &outcome.roots[0], "validator {i} forks");
    }
    for &transactions in &outcome.transactions {
        assert!(
            transactions >= TARGET as usize,
            "only {transactions} transfers finalized"
        );
    }
    for (blocker, blocked) in &outcome.blocked {
        assert_ne!(blocker, &outcome.byzantine, "only honest validators block");
        assert_eq!(
            blocked, &outcome.byzantine,
            "only the Byzantine one is blocked"
        );
    }
}

#[test]
fn double_voting_validator_is_blocked_and_honest_three_finalize_without_a_fork() {
    let outcome = run_with(21, Attack::Conflicter);
    assert_honest_progress_without_fork(&outcome);
    assert!(
        outcome.votes_to_honest > 0,
        "the conflicting votes reached every honest validator"
    );
    // simplex blocks a peer whose votes conflict (ConflictingNotarize / ConflictingFinalize):
    // every honest validator caught the double votes and blocked their sender.
    let blockers: std::collections::BTreeSet<_> =
        outcome.blocked.iter().map(|(blocker, _)| blocker).collect();
    assert_eq!(blockers.len(), HONEST.len(), "{:?}", outcome.blocked);
}

#[test]
fn equivocating_leader_cannot_fork_or_stall_the_honest_three() {
    let outcome = run_with(22, Attack::Equivocator);
    assert_honest_progress_without_fork(&outcome);
    // One vote per honest validator for each view the equivocator led: proposal A to its victim,
    // proposal B to the other two. No quorum can form on either (no such block exists), so the
    // honest validators nullify those views; a conflict is only provable from a certificate
    // holding the other vote, which never forms, so nobody need be blocked.
    assert!(
        outcome.votes_to_honest > 0,
        "the equivocator never led a view"
    );
}

#[test]
fn follower_blocks_a_peer_that_keeps_sending_garbage_on_the_feed() {
    runner(23).start(|context| async move {
        let keys = validator_keys();
        let publics: Vec<ed25519::PublicKey> = keys.iter().map(NodeKey::public_key).collect();
        let set = Set::try_from(publics.clone()).expect("distinct keys");
        let follower = NodeKey::derive(2, 0).public_key();
        let attacker = NodeKey::derive(3, 0).public_key();
        let noisy = NodeKey::derive(3, 1).public_key();
        let oracle = network(
            &context,
            &publics,
            &[follower.clone(), attacker.clone(), noisy.clone()],
        )
        .await;
        let (store, _) =
            init_store(MemoryStore::new(), &genesis(&keys), Default::default()).unwrap();
        let store = Arc::new(Mutex::new(store));
        let genesis_root = store.lock().unwrap().root();
        let control = oracle.control(follower.clone());
        let feed = control.register(channels::FEED, QUOTA).await.unwrap();
        let penalties = PenaltyConfig::default();
        let _follower = start_follower_with_penalties(
            context.child("follower"),
            cairn_node::consensus::FollowerConfig::new(CHAIN, set),
            store.clone(),
            Arc::new(Mutex::new(Recorder::default())),
            feed,
            control,
            penalties,
        );

        // The attacker sends undecodable bytes and requests (followers serve none) until its
        // score reaches the limit; the noisy peer stays one malformed message below it.
        let (mut attacker_feed, _attacker_rx) = oracle
            .control(attacker.clone())
            .register(channels::FEED, QUOTA)
            .await
            .unwrap();
        let (mut noisy_feed, _noisy_rx) = oracle
            .control(noisy.clone())
            .register(channels::FEED, QUOTA)
            .await
            .unwrap();
        let request = FeedMessage::Request { from: 1, count: 1 }.to_bytes();
        let below = penalties.limit / penalties.malformed - 1;
        for i in 0..below {
            let garbage = bytes::Bytes::from(vec![1, 0xEE, i as u8]);
            attacker_feed.send(Recipients::One(follower.clone()), garbage.clone(), false);
            noisy_feed.send(Recipients::One(follower.clone()), garbage, false);
        }
        attacker_feed.send(
            Recipients::One(follower.clone()),
            bytes::Bytes::from(request.clone()),
            false,
        );
        context.sleep(Duration::from_secs(2)).await;
        assert!(
            oracle.blocked().await.unwrap().is_empty(),
            "a score below the limit blocks nobody"
        );
        attacker_feed.send(
            Recipients::One(follower.clone()),
            bytes::Bytes::from_static(&[9, 9, 9]),
            false,
        );
        context.sleep(Duration::from_secs(2)).await;

        let blocked = oracle.blocked().await.unwrap();
        assert_eq!(blocked, vec![(follower.clone(), attacker.clone())]);
        let store = store.lock().unwrap();
        assert_eq!(store.height(), Some(0));
        assert_eq!(store.root(), genesis_root);
    });
}

/// A block a validator finalized only as the ancestor of a later one travels without a
/// certificate ([`FeedMessage::Ancestor`]); a follower must never apply such a block on its
/// own word. A peer that sends made-up ancestors for the next heights moves the follower nowhere.
#[test]
fn a_follower_never_applies_an_uncertified_ancestor_on_its_own() {
    runner(29).start(|context| async move {
        let keys = validator_keys();
        let publics: Vec<ed25519::PublicKey> = keys.iter().map(NodeKey::public_key).collect();
        let set = Set::try_from(publics.clone()).expect("distinct keys");
        let follower = NodeKey::derive(2, 0).public_key();
        let attacker = NodeKey::derive(3, 0).public_key();
        let oracle = network(&context, &publics, &[follower.clone(), attacker.clone()]).await;
        let (store, genesis_block) =
            init_store(MemoryStore::new(), &genesis(&keys), Default::default()).unwrap();
        let store = Arc::new(Mutex::new(store));
        let genesis_root = store.lock().unwrap().root();
        let control = oracle.control(follower.clone());
        let feed = control.register(channels::FEED, QUOTA).await.unwrap();
        let _follower = start_follower_with_penalties(
            context.child("follower"),
            cairn_node::consensus::FollowerConfig::new(CHAIN, set),
            store.clone(),
            Arc::new(Mutex::new(Recorder::default())),
            feed,
            control,
            PenaltyConfig::default(),
        );
        let (mut attacker_feed, _attacker_rx) = oracle
            .control(attacker.clone())
            .register(channels::FEED, QUOTA)
            .await
            .unwrap();
        // A chain of made-up blocks on top of the real genesis, each the parent of the next:
        // consistent among themselves, certified by nobody.
        let mut parent = genesis_block.header.hash();
        for height in 1..=3 {
            let mut block: Block = genesis_block.clone();
            block.header.height = height;
            block.header.parent = parent;
            block.header.state_root = [height as u8; 32];
            parent = block.header.hash();
            let message = FeedMessage::Ancestor {
                block: cairn_node::consensus::CairnBlock::new(block),
            };
            attacker_feed.send(
                Recipients::One(follower.clone()),
                bytes::Bytes::from(message.to_bytes()),
                false,
            );
        }
        context.sleep(Duration::from_secs(3)).await;
        let store = store.lock().unwrap();
        assert_eq!(store.height(), Some(0));
        assert_eq!(store.root(), genesis_root);
    });
}
