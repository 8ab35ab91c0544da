//! A standby validator that enters the consensus set before a task opens volunteers for the task
//! like every other validator: five task validators (four needed for availability), and every
//! round of the task must still count the trainers' updates.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cairn_ledger::genesis::{Genesis, Params};
use cairn_ledger::query;
use cairn_ledger::task::{TaskSpec, TaskStatus, Verification};
use cairn_ledger::transaction::{Payload, SignedTransaction};
use cairn_ml::data::{default_data_dir, BuiltinDataset};
use cairn_node::cluster::{Cluster, ClusterConfig, ClusterNode};
use cairn_node::consensus::Timeouts;
use cairn_node::keys::NodeKey;
use cairn_node::node::Role;
use cairn_node::protocol::{Agent, DatasetRegistry};
use commonware_p2p::simulated::Link;
use commonware_runtime::{deterministic, Quota, Runner};
use commonware_utils::{probability, NZU32};

const CHAIN: u64 = 31;
const GENESIS_VALIDATORS: usize = 4;
const STANDBY: usize = GENESIS_VALIDATORS;
const TRAINERS: usize = 4;
const EPOCH: u64 = 10;
const WEIGHT: u128 = 1_000;
const ROUNDS: u32 = 3;

fn registry() -> Arc<DatasetRegistry> {
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
        dataset: registry().hash_of("digits").expect("registered"),
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

fn key(index: usize) -> NodeKey {
    NodeKey::derive(CHAIN, index as u64)
}

fn config() -> ClusterConfig {
    let mut nodes = Vec::new();
    let mut validators = BTreeMap::new();
    let mut balances = BTreeMap::new();
    for index in 0..=STANDBY + TRAINERS {
        let key = key(index);
        if index < GENESIS_VALIDATORS {
            validators.insert(key.address(), WEIGHT);
        }
        balances.insert(key.address(), 1_000_000u128);
        nodes.push(ClusterNode {
            name: if index <= STANDBY {
                format!("v{index}")
            } else {
                format!("t{}", index - STANDBY - 1)
            },
            key,
            role: if index <= STANDBY {
                Role::Validator
            } else {
                Role::Trainer
            },
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
            datasets: [spec().dataset].into(),
        },
        nodes,
        link: Link {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            success_rate: probability!(1.0),
        },
        timeouts: Timeouts::default(),
        quota: Quota::per_second(NZU32!(1_000)),
        datasets: registry(),
        volunteers: true,
    }
}

fn submit(cluster: &Cluster, transaction: &SignedTransaction) {
    for index in 0..cluster.len() {
        if let Some(state) = cluster.state(index) {
            if let Some(pool) = &state.mempool {
                pool.insert(transaction.clone());
            }
        }
    }
}

fn run(seed: u64) -> Vec<(u32, usize, usize)> {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(3_600))),
    );
    runner.start(|context| async move {
        let mut cluster = Cluster::new(&context, config()).await.expect("cluster");
        cluster.start_all(&context).await.expect("nodes start");
        assert!(
            cluster
                .wait_until(&context, Duration::from_secs(120), |c| c.height(0) >= 3)
                .await
        );
        let ledger = key(STANDBY).ledger_key();
        submit(
            &cluster,
            &SignedTransaction::new(&ledger, CHAIN, 0, Payload::Bond { amount: 2 * WEIGHT }),
        );
        submit(
            &cluster,
            &SignedTransaction::new(&ledger, CHAIN, 1, Payload::Candidacy { stake: WEIGHT }),
        );
        let entered = cluster
            .wait_until(&context, Duration::from_secs(300), |c| {
                c.state(STANDBY)
                    .is_some_and(|s| s.consensus.member() && s.consensus.epoch() >= 1)
            })
            .await;
        assert!(entered, "the standby never entered the set");
        let creator = Agent::creator(
            &key(0).ledger_key(),
            spec(),
            registry(),
            TRAINERS,
            GENESIS_VALIDATORS,
        )
        .expect("spec");
        cluster
            .state(0)
            .expect("v0 runs")
            .observer
            .lock()
            .unwrap()
            .add_agent(creator);
        let settled = cluster
            .wait_until(&context, Duration::from_secs(1_200), |c| {
                let store = c.store(0);
                let store = store.lock().unwrap();
                query::task(&*store, 0)
                    .ok()
                    .flatten()
                    .is_some_and(|t| matches!(t.status, TaskStatus::Finished | TaskStatus::Settled))
            })
            .await;
        let store = cluster.store(0);
        let store = store.lock().unwrap();
        let task = query::task(&*store, 0).unwrap().expect("task");
        assert!(settled, "the task did not finish: {:?}", task.status);
        eprintln!(
            "seed {seed}: task validators {}, started at {:?}",
            task.validators.len(),
            query::round(&*store, 0, 0).unwrap().map(|r| r.opened_at)
        );
        (0..ROUNDS)
            .map(|number| {
                let round = query::round(&*store, 0, number).unwrap().expect("round");
                let revealed = round.revealed().count();
                let counted = round.available.as_ref().map_or(0, |a| a.len());
                eprintln!(
                    "seed {seed} round {number}: opened {} revealed {revealed} votes {:?} counted {counted}",
                    round.opened_at,
                    round.votes.values().map(|v| v.len()).collect::<Vec<_>>()
                );
                (number, revealed, counted)
            })
            .collect()
    })
}

#[test]
fn a_standby_that_joined_before_the_task_validates_it_and_every_round_counts() {
    for seed in 1..=3 {
        for (number, revealed, counted) in run(seed) {
            assert_eq!(revealed, TRAINERS, "seed {seed} round {number}");
            assert_eq!(counted, TRAINERS, "seed {seed} round {number}");
        }
    }
}
