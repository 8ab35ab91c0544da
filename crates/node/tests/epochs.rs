//! The validator set follows stake on a running network: a standby validator that bonds and
//! stands observes consensus, enters the set at the next epoch boundary and then carries
//! finality (the chain goes on only with its votes), a validator that withdraws stops voting
//! at the boundary after, and a certificate counts only when the set of its block's epoch
//! signed it (not a departed set, not under another epoch's label). A standby elected before a
//! task opens validates it, and every round counts the trainers' updates.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cairn_ledger::genesis::{Genesis, Params};
use cairn_ledger::store::MemoryStore;
use cairn_ledger::task::{TaskSpec, TaskStatus, Verification};
use cairn_ledger::transaction::{Payload, SignedTransaction};
use cairn_ledger::{query, validators};
use cairn_ml::data::{default_data_dir, BuiltinDataset};
use cairn_node::cluster::{Cluster, ClusterConfig, ClusterNode};
use cairn_node::consensus::feed_wire::FeedMessage;
use cairn_node::consensus::{
    init_store, namespace, CairnBlock, FeedError, FeedOutcome, Finalization, Follower,
    FollowerConfig, LedgerState, Scheme, Timeouts,
};
use cairn_node::keys::NodeKey;
use cairn_node::node::Role;
use cairn_node::protocol::{Agent, DatasetRegistry};
use commonware_consensus::simplex::types::{Finalize, Proposal};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::{ed25519, Digestible};
use commonware_p2p::simulated::Link;
use commonware_parallel::Sequential;
use commonware_runtime::{deterministic, Quota, Runner};
use commonware_utils::ordered::Set;
use commonware_utils::{non_empty, probability, test_rng, NZU32};

const CHAIN: u64 = 11;
const GENESIS_VALIDATORS: usize = 4;
const STANDBY: usize = GENESIS_VALIDATORS;
const EPOCH: u64 = 10;
const WEIGHT: u128 = 1_000;

fn key(index: usize) -> NodeKey {
    NodeKey::derive(CHAIN, index as u64)
}

fn config() -> ClusterConfig {
    let mut nodes = Vec::new();
    let mut validators = BTreeMap::new();
    let mut balances = BTreeMap::new();
    for index in 0..=STANDBY {
        let key = key(index);
        if index < GENESIS_VALIDATORS {
            validators.insert(key.address(), WEIGHT);
        }
        balances.insert(key.address(), 100_000u128);
        nodes.push(ClusterNode {
            name: format!("v{index}"),
            key,
            role: Role::Validator,
            agents: Arc::new(Vec::new),
        });
    }
    ClusterConfig {
        genesis: Genesis {
            chain_id: CHAIN,
            params: Params {
                epoch_length: EPOCH,
                unbond_delay: 2 * EPOCH,
                ..Params::default()
            },
            balances,
            validators,
            datasets: Default::default(),
        },
        nodes,
        link: Link {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            success_rate: probability!(1.0),
        },
        timeouts: Timeouts::default(),
        quota: Quota::per_second(NZU32!(100_000)),
        datasets: Default::default(),
        volunteers: false,
    }
}

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(1_800))),
    )
}

/// Puts `transaction` in every running validator's mempool (whichever leads next proposes it).
fn submit(cluster: &Cluster, transaction: &SignedTransaction) {
    for index in 0..cluster.len() {
        if let Some(state) = cluster.state(index) {
            if let Some(pool) = &state.mempool {
                pool.insert(transaction.clone());
            }
        }
    }
}

/// The standby bonds and stands with [`WEIGHT`].
fn stand(cluster: &Cluster) {
    let ledger = key(STANDBY).ledger_key();
    submit(
        cluster,
        &SignedTransaction::new(&ledger, CHAIN, 0, Payload::Bond { amount: 2 * WEIGHT }),
    );
    submit(
        cluster,
        &SignedTransaction::new(&ledger, CHAIN, 1, Payload::Candidacy { stake: WEIGHT }),
    );
}

/// The set of the newest epoch node `index` knows, and whether `member` is in it.
fn knows_member(cluster: &Cluster, index: usize, member: usize) -> Option<u64> {
    let state = cluster.state(index)?;
    let (epoch, set) = state.epochs.current();
    set.position(&key(member).public_key()).map(|_| epoch)
}

/// Whether node `index`'s consensus engine signs votes in epoch `epoch` or later.
fn voting(cluster: &Cluster, index: usize, epoch: u64) -> bool {
    cluster
        .state(index)
        .is_some_and(|s| s.consensus.member() && s.consensus.epoch() >= epoch)
}

#[test]
fn a_standby_validator_that_stands_enters_the_set_and_carries_finality() {
    runner(5).start(|context| async move {
        let mut cluster = Cluster::new(&context, config()).await.expect("cluster");
        cluster.start_all(&context).await.expect("nodes start");
        assert!(
            cluster
                .wait_until(&context, Duration::from_secs(120), |c| c.height(0) >= 3)
                .await,
            "the genesis set does not finalize"
        );
        // Outside the set, the standby follows the chain as an observer.
        let standby = cluster.state(STANDBY).expect("standby runs");
        assert!(!standby.consensus.member());
        stand(&cluster);
        let standing = cluster
            .wait_until(&context, Duration::from_secs(120), |c| {
                let store = c.store(0);
                let store = store.lock().unwrap();
                validators::roster(&*store)
                    .map(|roster| roster.contains_key(&key(STANDBY).address()))
                    .unwrap_or(false)
            })
            .await;
        assert!(standing, "the candidacy never reached the ledger");
        // The set changes only at a boundary, and every node reads the same set there.
        let entered = cluster
            .wait_until(&context, Duration::from_secs(300), |c| {
                (0..c.len()).all(|i| knows_member(c, i, STANDBY).is_some())
                    && voting(c, STANDBY, 1)
            })
            .await;
        assert!(entered, "the standby never entered the set");
        let joined_epoch = knows_member(&cluster, STANDBY, STANDBY).expect("member");
        assert!(joined_epoch >= 1);
        let boundary = joined_epoch * EPOCH - 1;
        {
            let store = cluster.store(0);
            let store = store.lock().unwrap();
            let set = query::consensus_validators(&*store).unwrap();
            assert_eq!(set.len(), GENESIS_VALIDATORS + 1);
            assert_eq!(set[&key(STANDBY).address()], WEIGHT);
        }
        // Five validators need four votes: with one genesis validator down, blocks finalize
        // only if the newcomer votes.
        cluster.crash(GENESIS_VALIDATORS - 1).await.expect("crash");
        let from = cluster.height(0).max(boundary + 1);
        let carried = cluster
            .wait_until(&context, Duration::from_secs(300), |c| {
                c.height(0) >= from + 2 * EPOCH && c.height(STANDBY) >= from + 2 * EPOCH
            })
            .await;
        eprintln!(
            "standby elected for epoch {joined_epoch}; with v3 down the chain went from {from} to {}",
            cluster.height(0)
        );
        assert!(
            carried,
            "without the newcomer's votes the chain stalled at {} (standby at {})",
            cluster.height(0),
            cluster.height(STANDBY)
        );
        assert_eq!(cluster.fork(), None, "nodes disagree on a root");

        // The crashed genesis validator restarts mid-epoch, reads the epochs from its store
        // and catches up across the boundaries it missed.
        cluster
            .start(&context, GENESIS_VALIDATORS - 1)
            .await
            .expect("restart");
        let target = cluster.height(0) + EPOCH;
        let caught_up = cluster
            .wait_until(&context, Duration::from_secs(300), |c| {
                c.height(GENESIS_VALIDATORS - 1) >= target
                    && voting(c, GENESIS_VALIDATORS - 1, joined_epoch)
            })
            .await;
        assert!(caught_up, "the restarted validator did not catch up");
        assert_eq!(cluster.fork(), None, "nodes disagree on a root");
    });
}

#[test]
fn a_validator_that_withdraws_leaves_at_the_next_boundary_and_the_rest_go_on() {
    runner(6).start(|context| async move {
        let mut cluster = Cluster::new(&context, config()).await.expect("cluster");
        cluster.start_all(&context).await.expect("nodes start");
        let leaver = 2;
        assert!(
            cluster
                .wait_until(&context, Duration::from_secs(120), |c| c.height(0) >= 3)
                .await
        );
        // Genesis validators stand without a roster entry: withdrawing is a candidacy of 0.
        submit(
            &cluster,
            &SignedTransaction::new(
                &key(leaver).ledger_key(),
                CHAIN,
                0,
                Payload::Candidacy { stake: 0 },
            ),
        );
        let left = cluster
            .wait_until(&context, Duration::from_secs(300), |c| {
                c.state(0).is_some_and(|s| {
                    let (epoch, set) = s.epochs.current();
                    epoch >= 1 && set.position(&key(leaver).public_key()).is_none()
                })
            })
            .await;
        assert!(
            left,
            "the withdrawal never took the validator out of the set"
        );
        let out = cluster
            .wait_until(&context, Duration::from_secs(60), |c| {
                c.state(leaver).is_some_and(|s| !s.consensus.member())
            })
            .await;
        assert!(out, "the leaver's engine still signs");
        // Three validators remain (quorum 3): all must vote, and the chain goes on, with the
        // leaver following as an observer.
        let from = cluster.height(0);
        let going = cluster
            .wait_until(&context, Duration::from_secs(300), |c| {
                c.height(0) >= from + 2 * EPOCH && c.height(leaver) >= from + 2 * EPOCH
            })
            .await;
        assert!(going, "the chain stalled after the set shrank");
        assert_eq!(cluster.fork(), None, "nodes disagree on a root");
    });
}

/// Observes nothing (the follower test reads the store).
struct Quiet;

impl cairn_node::consensus::BlockObserver for Quiet {
    fn on_finalized(
        &mut self,
        _: &cairn_ledger::block::Block,
        _: &dyn cairn_ledger::store::StateRead,
    ) {
    }
}

/// A finalization of `block` in `epoch`, signed by `signers` as members of `set`.
fn certify(
    signers: &[usize],
    set: &Set<ed25519::PublicKey>,
    block: &CairnBlock,
    epoch: u64,
) -> Vec<u8> {
    let height = block.block().header.height;
    let proposal = Proposal::new(
        Round::new(Epoch::new(epoch), View::new(height)),
        View::new(height - 1),
        block.digest(),
    );
    let schemes: Vec<Scheme> = signers
        .iter()
        .map(|&i| Scheme::signer(&namespace(CHAIN), set.clone(), key(i).consensus_key()).unwrap())
        .collect();
    let votes: Vec<_> = schemes
        .iter()
        .map(|scheme| Finalize::sign(scheme, proposal.clone()).unwrap())
        .collect();
    let finalization =
        Finalization::from_finalizes(&schemes[0], non_empty![@&votes], &Sequential).unwrap();
    FeedMessage::Finalized {
        block: block.clone(),
        finalization,
    }
    .to_bytes()
}

fn key_set(indices: &[usize]) -> Set<ed25519::PublicKey> {
    Set::try_from(
        indices
            .iter()
            .map(|&i| key(i).public_key())
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

#[test]
fn certificates_count_only_with_the_set_of_their_blocks_epoch() {
    // Epochs of 4 blocks: in block 1 validator 3 withdraws and the standby bonds and stands, so
    // epoch 1 (blocks 4..) is validated by {0, 1, 2, standby}.
    let mut genesis = config().genesis;
    genesis.params.epoch_length = 4;
    genesis.params.unbond_delay = 8;
    let (proposer_store, genesis_block) =
        init_store(MemoryStore::new(), &genesis, Default::default()).unwrap();
    let proposer =
        LedgerState::open(Arc::new(Mutex::new(proposer_store)), Default::default()).unwrap();
    let standby = key(STANDBY).ledger_key();
    let mut parent = genesis_block.hash();
    let mut blocks = Vec::new();
    for height in 1..=4u64 {
        let transactions = if height == 1 {
            vec![
                SignedTransaction::new(
                    &key(3).ledger_key(),
                    CHAIN,
                    0,
                    Payload::Candidacy { stake: 0 },
                ),
                SignedTransaction::new(&standby, CHAIN, 0, Payload::Bond { amount: WEIGHT }),
                SignedTransaction::new(&standby, CHAIN, 1, Payload::Candidacy { stake: WEIGHT }),
            ]
        } else {
            Vec::new()
        };
        let block = proposer.build(&parent, transactions).unwrap().unwrap();
        proposer.commit_finalized(&block).unwrap();
        parent = block.hash();
        blocks.push(CairnBlock::new(block));
    }
    assert_eq!(blocks[0].block().transactions.len(), 3);
    let old = key_set(&[0, 1, 2, 3]);
    let new = key_set(&[0, 1, 2, STANDBY]);

    let (store, _) = init_store(MemoryStore::new(), &genesis, Default::default()).unwrap();
    let store = Arc::new(Mutex::new(store));
    let mut follower = Follower::new(
        &FollowerConfig::new(CHAIN, old.clone()),
        store.clone(),
        Arc::new(Mutex::new(Quiet)),
    )
    .unwrap();
    let mut rng = test_rng();
    for block in &blocks[..3] {
        let message = certify(&[0, 1, 3], &old, block, 0);
        assert!(matches!(
            follower.handle(&mut rng, &message).unwrap(),
            FeedOutcome::Applied(1)
        ));
    }
    assert_eq!(follower.epochs().set(1), Some(new.clone()));

    let fourth = &blocks[3];
    // The old set, under its own epoch's label: the block is in epoch 1.
    let stale = follower.handle(&mut rng, &certify(&[0, 1, 3], &old, fourth, 0));
    assert!(
        matches!(stale, Err(FeedError::BadCertificate { height: 4 })),
        "{stale:?}"
    );
    // The old set (the one that left among them) claiming epoch 1.
    let departed = follower.handle(&mut rng, &certify(&[0, 1, 3], &old, fourth, 1));
    assert!(
        matches!(departed, Err(FeedError::BadCertificate { height: 4 })),
        "{departed:?}"
    );
    assert_eq!(store.lock().unwrap().height(), Some(3));
    // The new set, newcomer included, finalizes it.
    let applied = follower
        .handle(&mut rng, &certify(&[0, 1, STANDBY], &new, fourth, 1))
        .unwrap();
    assert_eq!(applied, FeedOutcome::Applied(1));
    assert_eq!(store.lock().unwrap().height(), Some(4));
}

// A standby elected before a task opens volunteers for it like every other validator: five task
// validators (four needed for availability), and every round must still count the updates.

const TRAINERS: usize = 4;
const ROUNDS: u32 = 3;

fn digits() -> Arc<DatasetRegistry> {
    static REGISTRY: OnceLock<Arc<DatasetRegistry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let dir = default_data_dir().expect("data/ holds the shipped datasets");
            let mut registry = DatasetRegistry::new();
            registry
                .load_builtin(BuiltinDataset::Digits, &dir)
                .expect("digits loads");
            Arc::new(registry)
        })
        .clone()
}

fn spec() -> TaskSpec {
    TaskSpec {
        model: "mlp:64-64-10".into(),
        initial_model: [0; 32],
        dataset: digits().hash_of("digits").expect("registered"),
        partition: "iid".into(),
        rounds: ROUNDS,
        local_steps: 20,
        optimizer: "sgd:lr=0.1,momentum=0.9,batch=32".into(),
        robust_rule: "trimmed_mean:1".into(),
        commit_window: 5,
        reveal_window: 5,
        availability_window: 3,
        attest_window: 5,
        min_stake: 100,
        reward_per_round: 100_000,
        verification: Verification::with_audit_ppm(200_000, 100),
    }
}

/// [`config`] with four trainers and every node volunteering for the tasks it can join.
fn config_with_trainers() -> ClusterConfig {
    let mut config = config();
    // The creator (validator 0) escrows the task's rewards.
    config.genesis.balances.insert(key(0).address(), 1_000_000);
    for t in 0..TRAINERS {
        let key = key(STANDBY + 1 + t);
        config.genesis.balances.insert(key.address(), 1_000_000);
        config.nodes.push(ClusterNode {
            name: format!("t{t}"),
            key,
            role: Role::Trainer,
            agents: Arc::new(Vec::new),
        });
    }
    config.genesis.datasets = [spec().dataset].into();
    config.datasets = digits();
    config.volunteers = true;
    config
}

/// Runs a task created once the standby votes; (revealed, counted) updates per round.
fn task_after_the_standby_entered(seed: u64) -> Vec<(usize, usize)> {
    runner(seed).start(|context| async move {
        let mut cluster = Cluster::new(&context, config_with_trainers())
            .await
            .expect("cluster");
        cluster.start_all(&context).await.expect("nodes start");
        assert!(
            cluster
                .wait_until(&context, Duration::from_secs(120), |c| c.height(0) >= 3)
                .await
        );
        stand(&cluster);
        let entered = cluster
            .wait_until(&context, Duration::from_secs(300), |c| {
                voting(c, STANDBY, 1)
            })
            .await;
        assert!(entered, "the standby never entered the set");
        let creator = Agent::creator(
            &key(0).ledger_key(),
            spec(),
            digits(),
            TRAINERS,
            GENESIS_VALIDATORS,
        )
        .expect("spec");
        let state = cluster.state(0).expect("v0 runs");
        state.observer.lock().unwrap().add_agent(creator);
        let finished = cluster
            .wait_until(&context, Duration::from_secs(1_200), |c| {
                let store = c.store(0);
                let store = store.lock().unwrap();
                query::task(&*store, 0)
                    .ok()
                    .flatten()
                    .is_some_and(|t| matches!(t.status, TaskStatus::Finished | TaskStatus::Settled))
            })
            .await;
        assert!(finished, "the task did not finish");
        let store = cluster.store(0);
        let store = store.lock().unwrap();
        (0..ROUNDS)
            .map(|number| {
                let round = query::round(&*store, 0, number).unwrap().expect("round");
                let counted = round.available.as_ref().map_or(0, |a| a.len());
                (round.revealed().count(), counted)
            })
            .collect()
    })
}

#[test]
fn a_standby_elected_before_a_task_validates_it_and_every_round_counts() {
    for seed in 1..=3 {
        let rounds = task_after_the_standby_entered(seed);
        assert_eq!(
            rounds,
            vec![(TRAINERS, TRAINERS); ROUNDS as usize],
            "seed {seed}"
        );
    }
}
