//! The whole node on commonware's deterministic runtime and simulated network: 4 validators
//! running simplex and 8 trainers following the finality feed run a task of several rounds on
//! `mnist_5k`, with crashes, partitions and Byzantine members.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cairn_ledger::encoding::{to_hex, Hash};
use cairn_ledger::genesis::{Genesis, Params};
use cairn_ledger::query;
use cairn_ledger::round::Outcome;
use cairn_ledger::store::StateRead;
use cairn_ledger::task::{TaskSpec, TaskStatus, Verification};
use cairn_ledger::Address;
use cairn_ml::data::{default_data_dir, BuiltinDataset};
use cairn_node::blobs::BlobView;
use cairn_node::cluster::{Cluster, ClusterConfig, ClusterNode};
use cairn_node::consensus::Timeouts;
use cairn_node::keys::NodeKey;
use cairn_node::node::Role;
use cairn_node::protocol::{Agent, DatasetRegistry, HonestTrainer, HonestValidator, TaskPlan};
use cairn_round::evaluate::evaluate_model;
use commonware_p2p::simulated::Link;
use commonware_runtime::{deterministic, Quota, Runner as _, Supervisor as _};
use commonware_utils::{probability, NZU32};

const CHAIN_ID: u64 = 21;
const VALIDATORS: usize = 4;
const TRAINERS: usize = 8;
const ROUNDS: u32 = 3;
const TASK: u64 = 0;
const BOND: u128 = 1_000;

fn registry() -> Arc<DatasetRegistry> {
    static REGISTRY: OnceLock<Arc<DatasetRegistry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let dir = default_data_dir().expect("data/ holds mnist_5k.csv.gz");
            let mut registry = DatasetRegistry::new();
            registry
                .load_builtin(BuiltinDataset::Mnist5k, &dir)
                .expect("mnist_5k loads");
            Arc::new(registry)
        })
        .clone()
}

fn spec() -> TaskSpec {
    let registry = registry();
    TaskSpec {
        model: "mlp:784-32-10".into(),
        initial_model: [0; 32],
        dataset: registry.hash_of("mnist_5k").expect("registered"),
        partition: "iid".into(),
        rounds: ROUNDS,
        local_steps: 20,
        optimizer: "sgd:lr=0.1,momentum=0.9,batch=32".into(),
        robust_rule: "trimmed_mean:1".into(),
        commit_window: 6,
        reveal_window: 6,
        availability_window: 6,
        attest_window: 6,
        min_stake: 100,
        reward_per_round: 100_000,
        verification: Verification::with_audit_ppm(200_000, 100),
    }
}

/// One run's keys (every node honest: adversaries live in `cairn-sim`, whose tests run them).
#[derive(Clone)]
struct Setup {
    seed: u64,
    /// Nodes join the task on their own (`protocol::volunteer`), as deployed nodes do, instead
    /// of each being built with its agent for the task.
    volunteers: bool,
}

impl Setup {
    fn honest(seed: u64) -> Self {
        Self {
            seed,
            volunteers: false,
        }
    }

    fn volunteers(seed: u64) -> Self {
        Self {
            seed,
            volunteers: true,
        }
    }

    fn key(&self, index: usize) -> NodeKey {
        NodeKey::derive(self.seed, index as u64)
    }

    fn config(&self) -> ClusterConfig {
        let mut balances = BTreeMap::new();
        let mut validators = BTreeMap::new();
        for i in 0..VALIDATORS + TRAINERS {
            balances.insert(self.key(i).address(), 1_000_000u128);
        }
        for i in 0..VALIDATORS {
            // Each validator's consensus weight is the bond it validates the task with.
            validators.insert(self.key(i).address(), BOND);
        }
        let genesis = Genesis {
            chain_id: CHAIN_ID,
            params: Params::default(),
            balances,
            validators,
            datasets: [spec().dataset].into(),
        };
        let registry = registry();
        let mut nodes = Vec::new();
        for i in 0..VALIDATORS {
            let key = self.key(i);
            let registry = registry.clone();
            let ledger_key = key.ledger_key();
            let volunteers = self.volunteers;
            nodes.push(ClusterNode {
                name: format!("v{i}"),
                key,
                role: Role::Validator,
                agents: Arc::new(move || {
                    let mut agents = Vec::new();
                    if i == 0 {
                        agents.push(
                            Agent::creator(
                                &ledger_key,
                                spec(),
                                registry.clone(),
                                TRAINERS,
                                VALIDATORS,
                            )
                            .expect("the spec is valid"),
                        );
                    }
                    if !volunteers {
                        agents.push(Agent::validator(
                            &ledger_key,
                            TASK,
                            BOND,
                            Box::new(HonestValidator),
                            registry.clone(),
                        ));
                    }
                    agents
                }),
            });
        }
        for t in 0..TRAINERS {
            let key = self.key(VALIDATORS + t);
            let registry = registry.clone();
            let ledger_key = key.ledger_key();
            let volunteers = self.volunteers;
            nodes.push(ClusterNode {
                name: format!("t{t}"),
                key,
                role: Role::Trainer,
                agents: Arc::new(move || {
                    if volunteers {
                        return Vec::new();
                    }
                    vec![Agent::trainer(
                        &ledger_key,
                        TASK,
                        BOND,
                        Box::new(HonestTrainer),
                        registry.clone(),
                    )]
                }),
            });
        }
        ClusterConfig {
            genesis,
            nodes,
            link: Link {
                latency: Duration::from_millis(20),
                jitter: Duration::from_millis(5),
                success_rate: probability!(1.0),
            },
            timeouts: Timeouts::default(),
            quota: Quota::per_second(NZU32!(1_000)),
            datasets: registry,
            volunteers: self.volunteers,
        }
    }

    fn address(&self, index: usize) -> Address {
        self.key(index).address()
    }
}

/// What a finished run leaves behind, read from validator 0 (after checking every node agrees).
struct Run {
    root: Hash,
    model_hash: Hash,
    outcomes: Vec<Outcome>,
    accuracies: Vec<f32>,
    rewards: Vec<u128>,
    stakes: Vec<u128>,
    blocked: usize,
}

fn task_done(cluster: &Cluster, node: usize) -> bool {
    let store = cluster.store(node);
    let store = store.lock().unwrap();
    matches!(
        query::task(&*store as &dyn StateRead, TASK),
        Ok(Some(task)) if task.status == TaskStatus::Settled
    )
}

fn finalized_rounds(cluster: &Cluster, node: usize) -> u32 {
    let store = cluster.store(node);
    let store = store.lock().unwrap();
    (0..ROUNDS)
        .filter(|r| matches!(query::round(&*store as &dyn StateRead, TASK, *r), Ok(Some(round)) if round.outcome.is_some()))
        .count() as u32
}

/// Runs the task to its end; `during` may disturb the cluster while it runs (crash, partition).
fn run<F, Fut>(setup: &Setup, during: F) -> Run
where
    F: FnOnce(deterministic::Context, Cluster) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Cluster> + Send,
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let setup = setup.clone();
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(setup.seed)
            .with_timeout(Some(Duration::from_secs(3_600))),
    );
    runner.start(|context| async move {
        let mut cluster = Cluster::new(&context, setup.config())
            .await
            .expect("cluster");
        cluster.start_all(&context).await.expect("nodes start");
        let mut cluster = during(context.child("scenario"), cluster).await;
        cluster.start_all(&context).await.expect("nodes restart");
        let all: Vec<usize> = (0..cluster.len()).collect();
        let finished = cluster
            .wait_until(&context, Duration::from_secs(600), |c| {
                all.iter().all(|&i| task_done(c, i))
            })
            .await;
        assert!(finished, "the task did not finish on every node");
        // Let every node reach the same height, then compare.
        let tip = all.iter().map(|&i| cluster.height(i)).max().unwrap();
        cluster
            .wait_until(&context, Duration::from_secs(60), |c| {
                all.iter().all(|&i| c.height(i) >= tip)
            })
            .await;
        assert_eq!(cluster.fork(), None, "nodes disagree on a state root");
        for &i in &all {
            assert_eq!(
                cluster.root_at(i, tip),
                cluster.root_at(0, tip),
                "node {i} at height {tip}"
            );
        }
        let summary = {
            let store = cluster.store(0);
            let store = store.lock().unwrap();
            let state: &dyn StateRead = &*store;
            let outcomes: Vec<Outcome> = (0..ROUNDS)
                .map(|r| {
                    query::round(state, TASK, r)
                        .unwrap()
                        .unwrap()
                        .outcome
                        .expect("round closed")
                })
                .collect();
            let task = query::task(state, TASK).unwrap().unwrap();
            let model_hash = task.model_hash;
            let plan = TaskPlan::from_spec(&task.spec, &registry()).expect("plan");
            let blobs = cluster.state(0).expect("validator 0 runs").blobs;
            let mut hashes = vec![task.spec.initial_model];
            for outcome in &outcomes {
                if let Outcome::Finalized { model_hash, .. } = outcome {
                    hashes.push(*model_hash);
                }
            }
            let accuracies = hashes
                .iter()
                .map(|h| {
                    let blob = blobs.blob(h).expect("validators hold every model");
                    evaluate_model(&plan, &blob, 1_000)
                        .expect("model evaluates")
                        .accuracy
                })
                .collect();
            let count = VALIDATORS + TRAINERS;
            let rewards = (0..count)
                .map(|i| query::rewards(state, &setup.address(i)).unwrap())
                .collect();
            let stakes = (0..count)
                .map(|i| query::stake(state, &setup.address(i)).unwrap().bonded)
                .collect();
            let root = store.root_at(tip).unwrap().unwrap();
            drop(store);
            (root, model_hash, outcomes, accuracies, rewards, stakes)
        };
        let (root, model_hash, outcomes, accuracies, rewards, stakes) = summary;
        let blocked = cluster.oracle().blocked().await.unwrap().len();
        Run {
            root,
            model_hash,
            outcomes,
            accuracies,
            rewards,
            stakes,
            blocked,
        }
    })
}

fn pause(context: &deterministic::Context, ms: u64) -> impl std::future::Future<Output = ()> + '_ {
    use commonware_runtime::Clock as _;
    context.sleep(Duration::from_millis(ms))
}

#[test]
fn four_validators_and_eight_trainers_finish_a_task_with_rising_accuracy_and_equal_state() {
    let first = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| run(&Setup::honest(5), |_, cluster| async move { cluster }));
    for (round, outcome) in first.outcomes.iter().enumerate() {
        assert!(
            matches!(outcome, Outcome::Finalized { .. }),
            "round {round}: {outcome:?}"
        );
    }
    eprintln!("accuracy per model: {:?}", first.accuracies);
    let last = *first.accuracies.last().unwrap();
    assert!(
        last > first.accuracies[0] + 0.3,
        "accuracy {:?}",
        first.accuracies
    );
    assert_eq!(first.blocked, 0, "honest peers were blocked");
    // Every honest member is paid once the rounds vest, and no stake moved (audits at 20% found
    // nothing to dispute).
    assert!(
        first.rewards.iter().all(|r| *r > 0),
        "rewards {:?}",
        first.rewards
    );
    let stakes = first.stakes.clone();
    assert!(
        stakes[..VALIDATORS].iter().all(|s| *s >= BOND),
        "{stakes:?}"
    );
    assert!(
        stakes[VALIDATORS..].iter().all(|s| *s == BOND),
        "{stakes:?}"
    );
    // Same seed, two worker threads for the kernels: the same bytes.
    let second = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
        .install(|| run(&Setup::honest(5), |_, cluster| async move { cluster }));
    assert_eq!(to_hex(&first.root), to_hex(&second.root));
    assert_eq!(to_hex(&first.model_hash), to_hex(&second.model_hash));
}

#[test]
fn volunteers_join_the_task_on_their_own_and_resume_it_after_a_crash() {
    // No node is built with an agent for the task: each joins it from the ledger, as a deployed
    // node does. A trainer and a validator crash mid-task; restarted with no agent at all, they
    // find their task on the ledger again and keep working.
    let setup = Setup::volunteers(11);
    let crashed_trainer = setup.address(VALIDATORS + 1);
    let outcome = run(&setup, |context, mut cluster| async move {
        let ok = cluster
            .wait_until(&context, Duration::from_secs(300), |c| {
                finalized_rounds(c, 0) >= 1
            })
            .await;
        assert!(ok, "volunteers did not finish a round");
        cluster.crash(VALIDATORS + 1).await.expect("crash");
        cluster.crash(2).await.expect("crash");
        pause(&context, 2_000).await;
        cluster
            .start(&context, VALIDATORS + 1)
            .await
            .expect("restart");
        cluster.start(&context, 2).await.expect("restart");
        cluster
    });
    for (round, outcome) in outcome.outcomes.iter().enumerate() {
        assert!(
            matches!(outcome, Outcome::Finalized { .. }),
            "round {round}: {outcome:?}"
        );
    }
    // The restarted trainer is scored in the last round: it went back to work.
    let Outcome::Finalized { scores, .. } = outcome.outcomes.last().unwrap() else {
        unreachable!()
    };
    assert!(
        scores.contains_key(&crashed_trainer),
        "the restarted trainer did not take part again: {scores:?}"
    );
    assert!(
        outcome.rewards.iter().all(|r| *r > 0),
        "{:?}",
        outcome.rewards
    );
}

#[test]
fn a_crashed_validator_restarts_catches_up_and_rounds_keep_finalizing() {
    let setup = Setup::honest(9);
    let outcome = run(&setup, |context, mut cluster| async move {
        // Crash validator 2 during round 0, keep it down through round 1.
        let ok = cluster
            .wait_until(&context, Duration::from_secs(120), |c| c.height(0) >= 12)
            .await;
        assert!(ok, "no progress before the crash");
        cluster.crash(2).await.expect("crash");
        let ok = cluster
            .wait_until(&context, Duration::from_secs(300), |c| {
                finalized_rounds(c, 0) >= 2
            })
            .await;
        assert!(ok, "rounds stopped finalizing with one validator down");
        pause(&context, 1_000).await;
        cluster
    });
    for (round, outcome) in outcome.outcomes.iter().enumerate() {
        assert!(
            matches!(outcome, Outcome::Finalized { .. }),
            "round {round}: {outcome:?}"
        );
    }
}

#[test]
fn a_healed_partition_leaves_no_fork_and_rounds_resume() {
    let setup = Setup::honest(13);
    let outcome = run(&setup, |context, cluster| async move {
        let ok = cluster
            .wait_until(&context, Duration::from_secs(120), |c| c.height(0) >= 10)
            .await;
        assert!(ok, "no progress before the partition");
        let left: Vec<usize> = vec![0, 1, 4, 5, 6, 7];
        let right: Vec<usize> = vec![2, 3, 8, 9, 10, 11];
        cluster.partition(&[left, right]).await.expect("partition");
        let before = (0..4).map(|i| cluster.height(i)).max().unwrap();
        pause(&context, 10_000).await;
        let during = (0..4).map(|i| cluster.height(i)).max().unwrap();
        assert!(
            during <= before + 1,
            "a 2|2 split finalized blocks: {before} -> {during}"
        );
        assert_eq!(cluster.fork(), None);
        cluster.heal().await.expect("heal");
        cluster
    });
    assert!(
        outcome
            .outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Finalized { .. })),
        "no round finalized after the partition healed: {:?}",
        outcome.outcomes
    );
}

#[test]
fn a_node_with_no_account_on_the_ledger_is_dropped_from_the_peer_set() {
    let setup = Setup::honest(23);
    let mut config = setup.config();
    let stranger = VALIDATORS + TRAINERS;
    config.nodes.push(ClusterNode {
        name: "stranger".into(),
        key: NodeKey::derive(999, 0),
        role: Role::Trainer,
        agents: Arc::new(Vec::new),
    });
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(setup.seed)
            .with_timeout(Some(Duration::from_secs(3_600))),
    );
    runner.start(|context| async move {
        let mut cluster = Cluster::new(&context, config).await.expect("cluster");
        cluster.start_all(&context).await.expect("nodes start");
        let ok = cluster
            .wait_until(&context, Duration::from_secs(300), |c| c.height(0) >= 30)
            .await;
        assert!(ok, "the registered nodes stopped making progress");
        let trainer = cluster.height(VALIDATORS);
        let outsider = cluster.height(stranger);
        eprintln!("registered trainer at height {trainer}, stranger at {outsider}");
        assert!(trainer >= 25, "a registered trainer lags: {trainer}");
        assert!(
            outsider + 20 < trainer,
            "a key without tokens kept following the chain: {outsider} vs {trainer}"
        );
    });
}
