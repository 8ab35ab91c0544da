//! Runs a [`Scenario`] on the real node code: a [`cairn_node::cluster::Cluster`] of validators
//! (commonware simplex) and trainers (finality-feed followers) on commonware's deterministic
//! runtime and simulated network, seeded by the scenario. Network events (partitions, crashes,
//! restarts) fire at their simulated times; each closed round is evaluated on the test split and
//! reported; the final ledger state gives every node's rewards, slashes and stake.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_ledger::encoding::to_hex;
use cairn_ledger::genesis::{Genesis, Params};
use cairn_ledger::round::Outcome;
use cairn_ledger::store::StateRead;
use cairn_ledger::task::{TaskSpec, TaskStatus};
use cairn_ledger::{query, Address};
use cairn_ml::model::Model;
use cairn_ml::optim::Optimizer;
use cairn_ml::train::{local_train, LocalTrainConfig};
use cairn_node::blobs::BlobView;
use cairn_node::cluster::{Cluster, ClusterConfig, ClusterError, ClusterNode};
use cairn_node::consensus::Timeouts;
use cairn_node::keys::NodeKey;
use cairn_node::node::Role;
use cairn_node::protocol::{self, Agent, DatasetRegistry, TaskPlan};
use cairn_round::evaluate::evaluate_model;
use cairn_round::spec::Verification;
use commonware_p2p::simulated::Link;
use commonware_runtime::{deterministic, Clock as _, Quota, Runner as _};
use commonware_utils::NZU32;

use crate::adversary::coalition::{Coalition, SybilPool};
use crate::adversary::{self, Accomplices};
use crate::progress::Progress;
use crate::result::{
    NodeCosts, NodeRecord, NodeRole, NodeWork, RoundRecord, RunResult, VerificationRecord,
};
use crate::scenario::{Scenario, ScenarioError, TrainerBehaviour, ValidatorBehaviour};
use crate::tally::{tally, Member as Tallied, Tally};

/// The task id every scenario runs (the first task on a fresh chain).
const TASK: u64 = 0;
/// Chain id of simulated networks.
const CHAIN_ID: u64 = 1;
/// Tokens every node holds beyond its stake (fees for bonding, the creator's escrow).
const SPENDING: u128 = 1_000_000;
/// How often the driver looks at the ledger and the event schedule (simulated time).
const TICK: Duration = Duration::from_millis(100);
/// Test samples per evaluation batch.
const EVAL_BATCH: usize = 500;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The dataset could not be loaded.
    #[error("dataset: {0}")]
    Data(String),
    /// The task spec the scenario gives is invalid (model, optimizer, partition or rule).
    #[error("task: {0}")]
    Task(String),
    /// The network could not be built.
    #[error("network: {0}")]
    Cluster(#[from] ClusterError),
    /// The thread pool could not be built.
    #[error("thread pool: {0}")]
    Threads(String),
    /// Two nodes committed different ledger states at the same height (a bug in the
    /// deterministic state machine or the referee).
    #[error("nodes {first} and {second} disagree on the state root at height {height}")]
    Diverged {
        /// The height compared.
        height: u64,
        /// One node.
        first: String,
        /// A node that disagrees with it.
        second: String,
    },
    /// An invariant every run must keep was broken (`crate::invariants`).
    #[error("invariant broken at seed {seed}: {violation}")]
    Invariant {
        /// The run's seed (rerun it to reproduce).
        seed: u64,
        /// What broke.
        violation: Box<crate::invariants::Violation>,
    },
    /// The task did not finish in the simulated time allowed.
    #[error("the task did not finish within {0} s of simulated time (rounds finished: {1})")]
    Stalled(u64, usize),
}

/// Runs `scenario` and returns what happened; `progress` hears about every closed round.
pub fn run(
    scenario: &Scenario,
    progress: &mut (dyn Progress + Send),
) -> Result<RunResult, SimError> {
    run_timed(scenario, progress).map(|(result, _)| result)
}

/// Where a run's wall-clock time went (machine-dependent, so kept out of [`RunResult`]).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunTiming {
    /// Whole run, setup included.
    pub wall_ms: u64,
    /// Trainers' agents: reading inputs, local training, update encoding.
    pub training_ms: u64,
    /// Validators' agents: aggregation, scoring, attestations.
    pub validation_ms: u64,
    /// Everything else: consensus, ledger execution, the simulated network, blob transfer.
    pub other_ms: u64,
    /// Blocks finalized (on the observing validator).
    pub blocks: u64,
    /// Validators' agents: audits and dispute answers (part of `validation_ms`).
    pub audit_ms: u64,
    /// Training steps trainers ran (local steps x trainers x finalized rounds).
    pub training_steps: u64,
    /// Training steps auditors re-executed.
    pub audit_steps: u64,
    /// Training steps validators replayed to answer dispute claims.
    pub dispute_steps: u64,
    /// Peak resident memory of the process, when the OS reports it (Linux `VmHWM`).
    pub peak_rss_bytes: Option<u64>,
}

/// [`run`], also returning where the wall-clock time went.
pub fn run_timed(
    scenario: &Scenario,
    progress: &mut (dyn Progress + Send),
) -> Result<(RunResult, RunTiming), SimError> {
    scenario.validate()?;
    // Random faults are drawn from the seed now; the run and its report see them written out.
    let drawn = scenario.with_drawn_faults();
    let scenario = &drawn;
    scenario.validate()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(scenario.threads.max(1))
        .build()
        .map_err(|error| SimError::Threads(error.to_string()))?;
    let started = std::time::Instant::now();
    let (result, mut timing) = pool.install(|| run_in_pool(scenario, progress))?;
    timing.wall_ms = started.elapsed().as_millis() as u64;
    timing.other_ms = timing
        .wall_ms
        .saturating_sub(timing.training_ms + timing.validation_ms);
    timing.peak_rss_bytes = peak_rss_bytes();
    Ok((result, timing))
}

/// The process's peak resident set size (Linux), for benchmark reports.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One node as the runner sees it.
struct Member {
    name: String,
    key: NodeKey,
    role: NodeRole,
    behaviour: String,
    stake: u128,
}

/// Checks, before any node starts, that `scenario` describes a run that can train: the scenario's
/// own rules ([`Scenario::validate`]), the task spec parsed by the parser the ledger uses at task
/// creation (model, optimizer, partition, rule, trace), and what only the trainer count decides:
/// every trainer gets a non-empty shard, and the rule can aggregate that many updates.
///
/// [`run`] does the same checks first; this is for callers that want the verdict without the run
/// (`cairn simulate --print-scenario`). Loads the scenario's dataset.
pub fn check(scenario: &Scenario) -> Result<(), SimError> {
    scenario.validate()?;
    let drawn = scenario.with_drawn_faults();
    let scenario = &drawn;
    scenario.validate()?;
    let (_, _, _, plan) = plan(scenario)?;
    let trainers: Vec<Address> = (0..scenario.trainer_count())
        .map(|i| NodeKey::derive(scenario.seed, scenario.validator_count() + i).address())
        .collect();
    check_runnable(&plan, &trainers, scenario)
}

/// The scenario's datasets, its task spec (as the creator submits it, and with the initial model
/// sealed) and the parsed plan.
fn plan(
    scenario: &Scenario,
) -> Result<(Arc<DatasetRegistry>, TaskSpec, TaskSpec, TaskPlan), SimError> {
    let data_dir = match &scenario.data_dir {
        Some(dir) => dir.clone(),
        None => cairn_ml::data::default_data_dir().map_err(|e| SimError::Data(e.to_string()))?,
    };
    let mut registry = DatasetRegistry::new();
    registry
        .load_builtin(scenario.dataset, &data_dir)
        .map_err(|e| SimError::Data(e.to_string()))?;
    let registry = Arc::new(registry);
    let spec = task_spec(scenario, &registry)?;
    let mut sealed = spec.clone();
    protocol::plan::seal_initial_model(&mut sealed, &registry)
        .map_err(|e| SimError::Task(e.to_string()))?;
    let plan =
        TaskPlan::from_spec(&sealed, &registry).map_err(|e| SimError::Task(e.to_string()))?;
    Ok((registry, spec, sealed, plan))
}

/// Refuses a plan that would run without training anything for these trainers: a partition that
/// cannot be cut for them (or leaves one with no sample), or a rule that cannot aggregate as many
/// updates as they can reveal. The ledger cannot check these at task creation, when the trainers
/// are not yet known; a simulation knows them, and a run that could only warn should not start.
fn check_runnable(
    plan: &TaskPlan,
    trainers: &[Address],
    scenario: &Scenario,
) -> Result<(), SimError> {
    let (partition, rule) = (&scenario.partition, &scenario.rule);
    let mut sorted = trainers.to_vec();
    sorted.sort();
    let count = sorted.len();
    let shards = cairn_round::training::shards(plan, TASK, &sorted).map_err(|error| {
        SimError::Task(format!(
            "partition {partition} cannot be cut for {count} trainers: {error}"
        ))
    })?;
    let empty = shards.iter().filter(|shard| shard.is_empty()).count();
    if empty > 0 {
        return Err(SimError::Task(format!(
            "partition {partition} leaves {empty} of {count} trainers without a sample; use \
             more samples per trainer (fewer trainers, a larger alpha, or a min_samples)"
        )));
    }
    let zeros = vec![0.0f32; count];
    let updates = cairn_robust::Updates::new(&zeros, count, 1)
        .map_err(|error| SimError::Task(error.to_string()))?;
    cairn_robust::aggregate(
        &plan.rule,
        &plan.pre,
        &updates,
        &cairn_robust::Context::default(),
    )
    .map_err(|error| {
        SimError::Task(format!(
            "rule {rule} cannot aggregate the updates of {count} trainers (at most {count} \
             reveal per round): {error}"
        ))
    })?;
    Ok(())
}

fn run_in_pool(
    scenario: &Scenario,
    progress: &mut (dyn Progress + Send),
) -> Result<(RunResult, RunTiming), SimError> {
    let (registry, spec, sealed, plan) = plan(scenario)?;

    let validators = scenario.validator_nodes();
    let trainers = scenario.trainer_nodes()?;
    let mut members = Vec::new();
    // A validator's consensus weight is its `stake` (what it validates the task with); the
    // challenge bonds it keeps free (`cairn_node::protocol::agent::CHALLENGE_RESERVE`) start as
    // balance that it bonds before joining. Its reported stake counts both.
    let reserve = u128::from(scenario.verification.challenge_bond)
        * cairn_node::protocol::agent::CHALLENGE_RESERVE;
    for v in &validators {
        members.push(Member {
            name: v.name.clone(),
            key: NodeKey::derive(scenario.seed, members.len() as u64),
            role: NodeRole::Validator,
            behaviour: v.behaviour.label().to_owned(),
            stake: u128::from(v.stake) + reserve,
        });
    }
    for t in &trainers {
        members.push(Member {
            name: t.name.clone(),
            key: NodeKey::derive(scenario.seed, members.len() as u64),
            role: NodeRole::Trainer,
            behaviour: t.behaviour.label(),
            stake: u128::from(t.stake),
        });
    }
    let trainer_addresses: Vec<Address> = members
        .iter()
        .filter(|m| m.role == NodeRole::Trainer)
        .map(|m| m.key.address())
        .collect();
    check_runnable(&plan, &trainer_addresses, scenario)?;
    let budget = u128::from(scenario.reward_per_round) * u128::from(scenario.rounds);
    let mut genesis = Genesis {
        chain_id: CHAIN_ID,
        params: Params {
            slash_fraction_ppm: scenario.slash_ppm(),
            ..Params::default()
        },
        balances: BTreeMap::new(),
        validators: BTreeMap::new(),
        datasets: std::collections::BTreeSet::from([sealed.dataset]),
    };
    for (i, member) in members.iter().enumerate() {
        let mut balance = SPENDING;
        match member.role {
            NodeRole::Trainer => balance += member.stake,
            NodeRole::Validator => balance += reserve,
        }
        if i == 0 {
            balance += budget;
        }
        genesis.balances.insert(member.key.address(), balance);
        if member.role == NodeRole::Validator {
            genesis
                .validators
                .insert(member.key.address(), member.stake - reserve);
        }
    }

    // Coalitions: one shared pool per coalition id, naming its members' addresses; a noise
    // Sybil's identities share one run, trained by the first of them.
    let address_of =
        |t: &crate::scenario::TrainerNode| members[validators.len() + t.index].key.address();
    let mut coalition_members: BTreeMap<usize, Vec<Address>> = BTreeMap::new();
    for t in &trainers {
        if let Some(id) = t.coalition_id {
            coalition_members.entry(id).or_default().push(address_of(t));
        }
    }
    let coalitions: BTreeMap<usize, Arc<Mutex<Coalition>>> = coalition_members
        .iter()
        .map(|(id, addresses)| (*id, Arc::new(Mutex::new(Coalition::new(addresses.clone())))))
        .collect();
    let sybil_pools: BTreeMap<usize, Arc<Mutex<SybilPool>>> = coalition_members
        .keys()
        .map(|id| (*id, Arc::default()))
        .collect();
    let first_honest = trainers
        .iter()
        .find(|t| t.behaviour.is_honest())
        .map(address_of);
    let accomplices = |t: &crate::scenario::TrainerNode| -> Accomplices {
        let coalition = t.coalition_id.and_then(|id| coalitions.get(&id).cloned());
        let sybil = match (&t.behaviour, t.coalition_id) {
            (TrainerBehaviour::NoiseSybil { .. }, Some(id)) => {
                let primary = coalition_members
                    .get(&id)
                    .and_then(|m| m.first())
                    .is_some_and(|first| *first == address_of(t));
                sybil_pools.get(&id).map(|pool| (pool.clone(), primary))
            }
            _ => None,
        };
        let victim = match &t.behaviour {
            TrainerBehaviour::Copier { victim: Some(name) } => trainers
                .iter()
                .find(|other| other.name == *name)
                .map(address_of),
            TrainerBehaviour::Copier { victim: None } => first_honest,
            _ => None,
        };
        Accomplices {
            coalition,
            sybil,
            victim,
        }
    };

    let mut nodes = Vec::new();
    for v in &validators {
        let member = &members[v.index];
        let ledger_key = member.key.ledger_key();
        let behaviour = v.behaviour;
        let registry = registry.clone();
        let spec = spec.clone();
        let (trainer_count, validator_count) = (trainers.len(), validators.len());
        let stake = u128::from(v.stake);
        let creator = v.index == 0;
        nodes.push(ClusterNode {
            name: member.name.clone(),
            key: member.key.clone(),
            role: Role::Validator,
            agents: Arc::new(move || {
                let mut agents = Vec::new();
                if creator {
                    match Agent::creator(
                        &ledger_key,
                        spec.clone(),
                        registry.clone(),
                        trainer_count,
                        validator_count,
                    ) {
                        Ok(agent) => agents.push(agent),
                        Err(error) => tracing::error!(%error, "task creator could not start"),
                    }
                }
                agents.push(Agent::validator(
                    &ledger_key,
                    TASK,
                    stake,
                    adversary::validator_conduct(behaviour),
                    registry.clone(),
                ));
                agents
            }),
        });
    }
    for t in &trainers {
        let member = &members[validators.len() + t.index];
        let ledger_key = member.key.ledger_key();
        let behaviour = t.behaviour.clone();
        let accomplices = accomplices(t);
        let registry = registry.clone();
        let stake = member.stake;
        nodes.push(ClusterNode {
            name: member.name.clone(),
            key: member.key.clone(),
            role: Role::Trainer,
            agents: Arc::new(move || {
                vec![Agent::trainer(
                    &ledger_key,
                    TASK,
                    stake,
                    adversary::trainer_conduct(&behaviour, &accomplices),
                    registry.clone(),
                )]
            }),
        });
    }
    let network = &scenario.network;
    let link = Link {
        latency: Duration::from_millis(network.latency_ms),
        jitter: Duration::from_millis(network.jitter_ms),
        success_rate: commonware_utils::Probability::try_from(network.success_rate).map_err(
            |_| {
                SimError::Scenario(ScenarioError::Probability {
                    field: "network.success_rate".to_owned(),
                    value: network.success_rate,
                })
            },
        )?,
    };
    let config = ClusterConfig {
        genesis,
        nodes,
        link,
        timeouts: Timeouts::default(),
        // The simulated network sizes receive buffers by peers x burst: keep the burst modest
        // (100 000/s made each validator reserve ~48 MB per node; see docs/benchmarks/node.md).
        quota: Quota::per_second(NZU32!(1_000)),
        datasets: registry.clone(),
        // The scenario builds every node's agents for its one task (with its behaviour).
        volunteers: false,
    };
    let centralized_accuracy = centralized_baseline(scenario, &plan, &sealed, trainers.len());

    let honest_validator = validators
        .iter()
        .find(|v| v.behaviour == ValidatorBehaviour::Honest)
        .map(|v| v.index)
        .unwrap_or(0);
    let runtime = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(scenario.seed)
            .with_timeout(None),
    );
    let limit = simulated_limit(scenario);
    let outcome = runtime.start(|context| async move {
        drive(
            context,
            config,
            scenario,
            &plan,
            &members,
            honest_validator,
            limit,
            progress,
        )
        .await
    })?;
    let (rounds, state, simulated_ms, final_accuracy, final_loss) = outcome;
    let timing = state.timing.clone();
    Ok((
        RunResult {
            scenario: scenario.clone(),
            final_accuracy,
            final_loss,
            final_model_hash: state.model_hash,
            final_state_root: state.root,
            simulated_ms,
            rounds,
            nodes: state.nodes,
            centralized_accuracy,
            verification: state.verification,
        },
        timing,
    ))
}

/// The final ledger view the result is built from.
struct FinalState {
    timing: RunTiming,
    model_hash: String,
    root: String,
    nodes: Vec<NodeRecord>,
    verification: VerificationRecord,
}

type DriveOutcome = (Vec<RoundRecord>, FinalState, u64, f64, f64);

#[allow(clippy::too_many_arguments)]
async fn drive(
    context: deterministic::Context,
    config: ClusterConfig,
    scenario: &Scenario,
    plan: &TaskPlan,
    members: &[Member],
    observer: usize,
    limit: Duration,
    progress: &mut (dyn Progress + Send),
) -> Result<DriveOutcome, SimError> {
    let genesis_supply = config.genesis.validate().unwrap_or(0);
    let index_of: BTreeMap<&str, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let mut cluster = Cluster::new(&context, config).await?;
    cluster.start_all(&context).await?;
    let start = context.current();
    let elapsed = |context: &deterministic::Context| {
        context.current().duration_since(start).unwrap_or_default()
    };
    let mut partitioned = vec![false; scenario.network.partitions.len()];
    let mut healed = vec![false; scenario.network.partitions.len()];
    let mut crashed = vec![false; scenario.network.crashes.len()];
    let mut restarted = vec![false; scenario.network.crashes.len()];
    let mut opened_at: BTreeMap<u32, u64> = BTreeMap::new();
    let mut records: Vec<RoundRecord> = Vec::new();
    let mut last_eval = (0.0f64, 0.0f64);
    loop {
        let now = elapsed(&context).as_millis() as u64;
        for (i, event) in scenario.network.partitions.iter().enumerate() {
            if !partitioned[i] && now >= event.at_ms {
                partitioned[i] = true;
                let groups: Vec<Vec<usize>> = event
                    .groups
                    .iter()
                    .map(|g| {
                        g.iter()
                            .filter_map(|n| index_of.get(n.as_str()).copied())
                            .collect()
                    })
                    .collect();
                tracing::info!(at_ms = now, ?groups, "partition");
                cluster.partition(&groups).await?;
            }
            if partitioned[i] && !healed[i] && now >= event.heal_ms {
                healed[i] = true;
                tracing::info!(at_ms = now, "partition healed");
                cluster.heal().await?;
            }
        }
        for (i, event) in scenario.network.crashes.iter().enumerate() {
            let Some(&node) = index_of.get(event.node.as_str()) else {
                continue;
            };
            if !crashed[i] && now >= event.at_ms {
                crashed[i] = true;
                tracing::info!(at_ms = now, node = %event.node, "crash");
                cluster.crash(node).await?;
            }
            if let Some(restart) = event.restart_ms {
                if crashed[i] && !restarted[i] && now >= restart {
                    restarted[i] = true;
                    tracing::info!(at_ms = now, node = %event.node, "restart");
                    cluster.start(&context, node).await?;
                }
            }
        }

        // Rounds: note when each opens, report each as it closes.
        let (finished, closed) = {
            let store = cluster.store(observer);
            let store = store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let state: &dyn StateRead = &*store;
            let task = query::task(state, TASK).ok().flatten();
            let mut closed = Vec::new();
            for r in records.len() as u32..scenario.rounds {
                match query::round(state, TASK, r).ok().flatten() {
                    Some(round) => {
                        opened_at.entry(r).or_insert(now);
                        match round.outcome {
                            Some(outcome) => closed.push((r, outcome)),
                            None => break,
                        }
                    }
                    None => break,
                }
            }
            // Rewards vest and bonds unlock after the last audit window: wait for settlement.
            (
                task.is_some_and(|t| {
                    matches!(t.status, TaskStatus::Settled | TaskStatus::Cancelled)
                }),
                closed,
            )
        };
        for (r, outcome) in closed {
            let latency = now.saturating_sub(opened_at.get(&r).copied().unwrap_or(now));
            let (finalized, model_hash, rewards_paid, slashed) = match &outcome {
                Outcome::Finalized {
                    model_hash,
                    trainer_rewards,
                    validator_rewards,
                    slashed,
                    ..
                } => (
                    true,
                    Some(*model_hash),
                    trainer_rewards
                        .values()
                        .chain(validator_rewards.values())
                        .sum::<u128>(),
                    slashed.values().sum::<u128>(),
                ),
                Outcome::TimedOut { slashed } => (false, None, 0, slashed.values().sum::<u128>()),
            };
            if let Some(hash) = model_hash {
                // The honest validators stored M_{r+1}; wait briefly if the blob is still in flight.
                let mut evaluation = None;
                for _ in 0..50 {
                    if let Some(blob) = cluster.state(observer).and_then(|s| s.blobs.blob(&hash)) {
                        evaluation = evaluate_model(plan, &blob, EVAL_BATCH).ok();
                        break;
                    }
                    context.sleep(TICK).await;
                }
                if let Some(e) = evaluation {
                    last_eval = (f64::from(e.accuracy), f64::from(e.loss));
                }
            }
            let record = RoundRecord {
                round: r,
                finalized,
                accuracy: last_eval.0,
                loss: last_eval.1,
                model_hash: model_hash.map(|h| to_hex(&h)).unwrap_or_default(),
                finalization_latency_ms: finalized.then_some(latency),
                rewards_paid,
                slashed,
                audited: 0,
                disputes: 0,
            };
            progress.round_finished(&record, scenario.rounds);
            records.push(record);
        }
        if finished {
            break;
        }
        if elapsed(&context) > limit {
            return Err(SimError::Stalled(limit.as_secs(), records.len()));
        }
        context.sleep(TICK).await;
    }
    let simulated_ms = elapsed(&context).as_millis() as u64;
    agree(&cluster, members)?;
    let mut timing = RunTiming {
        blocks: cluster.height(observer),
        ..RunTiming::default()
    };
    for (i, member) in members.iter().enumerate() {
        if let Some(state) = cluster.state(i) {
            let ms = state.agent_time.total().as_millis() as u64;
            match member.role {
                NodeRole::Trainer => timing.training_ms += ms,
                _ => timing.validation_ms += ms,
            }
        }
    }
    let mut work = vec![NodeWork::default(); members.len()];
    for (i, done) in work.iter_mut().enumerate() {
        let Some(node) = cluster.state(i) else {
            continue;
        };
        let observer = node
            .observer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for agent in observer.agents() {
            let stats = agent.audit_stats();
            timing.audit_ms += stats.time.as_millis() as u64;
            timing.audit_steps += stats.steps;
            timing.dispute_steps += stats.dispute_steps;
            let own = agent.work_stats();
            timing.training_steps += own.steps_trained;
            done.steps_trained += own.steps_trained;
            done.samples_evaluated += own.samples_evaluated;
            done.steps_audited += stats.steps + stats.dispute_steps;
        }
    }
    let store = cluster.store(observer);
    let store = store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let state: &dyn StateRead = &*store;
    let task = query::task(state, TASK).ok().flatten();
    let model_hash = task.map(|t| to_hex(&t.model_hash)).unwrap_or_default();
    let root = to_hex(&store.root());
    let tallied: Vec<Tallied<'_>> = members
        .iter()
        .map(|m| Tallied {
            name: &m.name,
            address: m.key.address(),
            role: m.role,
            behaviour: &m.behaviour,
            stake: m.stake,
        })
        .collect();
    let Tally {
        mut nodes,
        verification,
    } = tally(state, (TASK, plan), &tallied, &mut records);
    // The tally keeps the members' order, which is the cluster's.
    let rounds_run = records.len() as u32;
    for (node, done) in nodes.iter_mut().zip(&work) {
        node.work = *done;
        node.costs = NodeCosts::of(
            done,
            node.stake_initial,
            rounds_run,
            scenario.batch_size,
            &scenario.costs,
        );
    }
    let addressed: Vec<(Address, &NodeRecord)> = nodes
        .iter()
        .filter_map(|node| {
            let member = members.iter().find(|m| m.name == node.name)?;
            Some((member.key.address(), node))
        })
        .collect();
    let opened: Vec<(u64, bool)> = records
        .iter()
        .map(|record| {
            let at = opened_at.get(&record.round).copied().unwrap_or(u64::MAX);
            (at, record.finalized)
        })
        .collect();
    crate::invariants::check(&*store, TASK, scenario, genesis_supply, &addressed)
        .and_then(|()| crate::invariants::recovery(scenario.faults_heal_ms(), &opened))
        .map_err(|violation| SimError::Invariant {
            seed: scenario.seed,
            violation: Box::new(violation),
        })?;
    Ok((
        records,
        FinalState {
            timing,
            model_hash,
            root,
            nodes,
            verification,
        },
        simulated_ms,
        last_eval.0,
        last_eval.1,
    ))
}

/// Checks that every node committed the same ledger state: the state root at the highest height
/// all of them reached (a crashed node's store is a prefix of the chain).
fn agree(cluster: &Cluster, members: &[Member]) -> Result<(), SimError> {
    let mut roots = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let store = cluster.store(i);
        let store = store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        roots.push((member.name.clone(), store.height().unwrap_or(0)));
    }
    let Some(height) = roots.iter().map(|(_, h)| *h).min() else {
        return Ok(());
    };
    let mut first: Option<(String, [u8; 32])> = None;
    for (i, (name, _)) in roots.iter().enumerate() {
        let store = cluster.store(i);
        let store = store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let root = cairn_node::consensus::committed_header(&*store, height)
            .map(|header| header.state_root)
            .map_err(|error| SimError::Task(error.to_string()))?;
        match &first {
            None => first = Some((name.clone(), root)),
            Some((first_name, first_root)) if *first_root != root => {
                return Err(SimError::Diverged {
                    height,
                    first: first_name.clone(),
                    second: name.clone(),
                })
            }
            Some(_) => {}
        }
    }
    tracing::debug!(
        height,
        nodes = roots.len(),
        "every node agrees on the state root"
    );
    Ok(())
}

/// The ledger task the scenario describes (its `initial_model` is filled in by the creator).
/// `cairn node`'s API builds deployed tasks with it too.
pub fn task_spec(scenario: &Scenario, registry: &DatasetRegistry) -> Result<TaskSpec, SimError> {
    let dataset = registry
        .hash_of(scenario.dataset.name())
        .ok_or_else(|| SimError::Data(format!("{} is not loaded", scenario.dataset.name())))?;
    let optimizer = if scenario.optimizer.contains("batch=") {
        scenario.optimizer.clone()
    } else if scenario.optimizer.contains(':') {
        format!("{},batch={}", scenario.optimizer, scenario.batch_size)
    } else {
        format!("{}:batch={}", scenario.optimizer, scenario.batch_size)
    };
    Ok(TaskSpec {
        model: scenario.model(),
        initial_model: [0; 32],
        dataset,
        partition: scenario.partition.clone(),
        rounds: scenario.rounds,
        local_steps: scenario.local_steps,
        optimizer,
        robust_rule: scenario.rule.clone(),
        commit_window: scenario.windows.commit,
        reveal_window: scenario.windows.reveal,
        availability_window: scenario.windows.availability,
        attest_window: scenario.windows.attest,
        min_stake: 1,
        reward_per_round: u128::from(scenario.reward_per_round),
        verification: Verification {
            trace_every: scenario.verification.trace_every,
            audit_ppm: scenario.audit_ppm(Params::default().validator_reward_ppm),
            audit_window: scenario.verification.audit_window,
            move_window: scenario.verification.move_window,
            challenge_bond: u128::from(scenario.verification.challenge_bond),
            min_trainer_bond: u128::from(scenario.trainer_bond()),
        },
    })
}

/// Generous simulated time for the whole task: every round's blocks at a slow block time, plus
/// the setup, plus every scheduled event.
fn simulated_limit(scenario: &Scenario) -> Duration {
    let windows = &scenario.windows;
    // Saturating: the scenario's limits keep these small, and a limit of "forever" is still
    // better than a wrapped one.
    let round_blocks = 1u64
        .saturating_add(windows.commit)
        .saturating_add(windows.reveal)
        .saturating_add(windows.availability)
        .saturating_add(windows.attest.saturating_mul(2));
    let blocks = u64::from(scenario.rounds)
        .saturating_mul(round_blocks)
        .saturating_add(40);
    let per_block = scenario
        .network
        .latency_ms
        .saturating_mul(4)
        .saturating_add(2_000);
    let events = scenario
        .network
        .crashes
        .iter()
        .map(|c| c.restart_ms.unwrap_or(c.at_ms))
        .chain(scenario.network.partitions.iter().map(|p| p.heal_ms))
        .max()
        .unwrap_or(0);
    Duration::from_millis(blocks.saturating_mul(per_block).saturating_add(events))
}

/// Test accuracy of one model trained centrally from `M_0` on the whole train split with the
/// same optimizer and the same sample budget as all trainers together.
fn centralized_baseline(
    scenario: &Scenario,
    plan: &TaskPlan,
    spec: &TaskSpec,
    trainers: usize,
) -> Option<f64> {
    let initial = plan.initial_params(spec).ok()?;
    let model = Model::new(plan.model.clone(), initial).ok()?;
    let mut optimizer = Optimizer::new(&plan.optimizer, plan.param_count()).ok()?;
    let steps = u64::from(scenario.rounds) * u64::from(scenario.local_steps) * trainers as u64;
    let config = LocalTrainConfig {
        steps,
        batch_size: plan.batch_size,
        seed: scenario.seed,
        trace_every: steps.max(1),
    };
    let outcome = local_train(&model, &mut optimizer, &plan.dataset.split.train, &config).ok()?;
    let trained = Model::new(plan.model.clone(), outcome.params).ok()?;
    trained
        .evaluate(&plan.dataset.split.test, EVAL_BATCH)
        .ok()
        .map(|e| f64::from(e.accuracy))
}
