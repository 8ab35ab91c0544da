//! A ledger-only network for protocol tests: a creator, validators and trainers run as `Agent`s
//! over a `cairn_ledger::Chain` on a `MemoryStore`, with no consensus or p2p. Every block
//! includes every transaction submitted after the previous one; blobs live in one shared map in
//! which a private blob is visible only to its owner until it is published, and a published one
//! reaches the others `delay` blocks later.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use cairn_ledger::store::MemoryStore;
use cairn_ledger::{
    query, Address, Chain, Genesis, Hash, Params, SignedTransaction, TaskSpec, TaskStatus,
    Verification,
};
use cairn_ml::data::{default_data_dir, BuiltinDataset};
use cairn_node::keys::NodeKey;
use cairn_node::protocol::{
    Agent, BlobView, DatasetRegistry, Done, Intent, Outbox, TaskPlan, TrainerConduct,
    ValidatorConduct,
};
use cairn_round::params;

/// The chain id of harness chains.
pub const CHAIN_ID: u64 = 7;
/// Every member's task bond.
pub const BOND: u128 = 1_000;
/// Blocks after which a harness run gives up.
pub const MAX_HEIGHT: u64 = 200;

/// Both shipped datasets, loaded once per test binary.
pub fn registry() -> Arc<DatasetRegistry> {
    static REGISTRY: OnceLock<Arc<DatasetRegistry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let dir = default_data_dir().expect("data/ folder with the shipped datasets");
            let mut registry = DatasetRegistry::new();
            for builtin in [BuiltinDataset::Mnist5k, BuiltinDataset::Digits] {
                registry.load_builtin(builtin, &dir).expect("dataset loads");
            }
            Arc::new(registry)
        })
        .clone()
}

/// A blob as the shared map holds it.
pub struct Stored {
    pub bytes: Arc<[u8]>,
    /// The height it became public, if it did.
    pub public_since: Option<u64>,
    pub owner: Address,
}

/// Blobs by hash.
#[derive(Default)]
pub struct BlobMap {
    pub blobs: BTreeMap<Hash, Stored>,
    /// Blocks a public blob takes to reach other nodes.
    pub delay: u64,
    pub fetches: usize,
    /// Every fetch asked for: who asked, at which height, the blob, the holder it named first.
    pub asked: Vec<(Address, u64, Hash, Option<Address>)>,
}

struct View<'a> {
    map: &'a BlobMap,
    me: Address,
    height: u64,
}

impl BlobView for View<'_> {
    fn blob(&self, hash: &[u8; 32]) -> Option<Arc<[u8]>> {
        let stored = self.map.blobs.get(hash)?;
        let arrived = stored
            .public_since
            .is_some_and(|h| h + self.map.delay <= self.height);
        (arrived || stored.owner == self.me).then(|| stored.bytes.clone())
    }
}

/// Builds the trainers' conducts from their addresses (so that colluders can name each other).
pub type TrainerConducts = Box<dyn Fn(&[Address]) -> Vec<Box<dyn TrainerConduct>>>;

/// What a harness run is made of.
pub struct Setup {
    /// Seed of the node keys.
    pub seed: u64,
    /// Blocks a published blob takes to reach other nodes.
    pub delay: u64,
    /// The task (its initial model is sealed by the creator).
    pub spec: TaskSpec,
    /// The validators' conducts (one validator each).
    pub validators: Vec<Box<dyn ValidatorConduct>>,
    /// The trainers' conducts, given the trainers' addresses (one trainer each).
    pub trainers: TrainerConducts,
    /// Number of trainers.
    pub trainer_count: usize,
}

/// A task spec on a shipped dataset.
pub fn spec(
    dataset: &str,
    model: &str,
    rule: &str,
    rounds: u32,
    verification: Verification,
) -> TaskSpec {
    TaskSpec {
        model: model.into(),
        initial_model: [0; 32],
        dataset: registry().hash_of(dataset).expect("registered"),
        partition: "iid".into(),
        rounds,
        local_steps: 20,
        optimizer: "sgd:lr=0.1,momentum=0.9,batch=32".into(),
        robust_rule: rule.into(),
        commit_window: 2,
        reveal_window: 2,
        availability_window: 2,
        attest_window: 2,
        min_stake: 100,
        reward_per_round: 100_000,
        verification,
    }
}

/// What a finished run leaves behind.
pub struct Run {
    pub chain: Chain<MemoryStore>,
    pub blobs: BlobMap,
    pub plan: TaskPlan,
    pub spec: TaskSpec,
    pub trainers: Vec<Address>,
    pub validators: Vec<Address>,
    /// Transactions the proposer refused: height, payload kind and the error.
    pub rejected: Vec<(u64, &'static str, String)>,
    /// Jobs refused ([`Jobs::refuse_below`]).
    pub refused: usize,
}

impl Run {
    /// The refused transactions that are not moves in a dispute that ended in the same block
    /// (a side moving in the block where the dispute is decided, or made moot, is refused; that
    /// race is harmless: the move is dropped and nothing waits for it).
    pub fn unexpected_rejections(&self) -> Vec<&(u64, &'static str, String)> {
        self.rejected
            .iter()
            .filter(|(_, kind, error)| {
                !(kind.starts_with("dispute_") && error.ends_with("is already resolved"))
            })
            .collect()
    }
}

struct Node {
    agent: Agent,
    outbox: Outbox,
    /// Job results not yet acted on, with the height they are due at.
    results: Vec<(u64, Done)>,
}

/// How the harness runs the agents' jobs (a node runs them on its worker pool).
#[derive(Clone, Copy, Debug, Default)]
pub struct Jobs {
    /// Blocks after its decision a job's result is acted on (0: at the same height, as the
    /// deterministic runtime does).
    pub delay: u64,
    /// Every job decided below this height is refused (a full pool) and handed back.
    pub refuse_below: u64,
}

/// Runs `setup` until the task settles (or [`MAX_HEIGHT`]), every job at once.
pub fn simulate(setup: Setup) -> Run {
    simulate_with(setup, Jobs::default())
}

/// Runs `setup` with jobs run as `jobs` says.
pub fn simulate_with(setup: Setup, jobs: Jobs) -> Run {
    let registry = registry();
    let validator_count = setup.validators.len();
    let count = 1 + validator_count + setup.trainer_count;
    let keys: Vec<_> = (0..count as u64)
        .map(|i| NodeKey::derive(setup.seed, i).ledger_key())
        .collect();
    let address = |i: usize| Address::from_public_key(&keys[i].verifying_key());
    let trainer_addresses: Vec<Address> = (1 + validator_count..count).map(address).collect();
    let creator = Agent::creator(
        &keys[0],
        setup.spec.clone(),
        registry.clone(),
        setup.trainer_count,
        validator_count,
    )
    .expect("spec parses");
    let spec = creator.spec().expect("creator has a spec").clone();
    let mut agents = vec![creator];
    for (v, conduct) in setup.validators.into_iter().enumerate() {
        agents.push(Agent::validator(
            &keys[1 + v],
            0,
            BOND,
            conduct,
            registry.clone(),
        ));
    }
    for (t, conduct) in (setup.trainers)(&trainer_addresses).into_iter().enumerate() {
        agents.push(Agent::trainer(
            &keys[1 + validator_count + t],
            0,
            BOND,
            conduct,
            registry.clone(),
        ));
    }
    let genesis = Genesis {
        chain_id: CHAIN_ID,
        params: Params::default(),
        balances: (0..count)
            .map(|i| (address(i), if i == 0 { 1_000_000 } else { 10_000 }))
            .collect(),
        // The validators start with bonded stake; the trainers bond through their agents.
        validators: (1..1 + validator_count)
            .map(|i| (address(i), BOND))
            .collect(),
        datasets: BTreeSet::from([spec.dataset]),
    };
    let mut chain = Chain::create(MemoryStore::new(), &genesis, registry.clone()).expect("genesis");
    let mut nodes: Vec<Node> = agents
        .into_iter()
        .zip(&keys)
        .map(|(agent, key)| Node {
            agent,
            outbox: Outbox::new(key.clone(), CHAIN_ID),
            results: Vec::new(),
        })
        .collect();
    let mut blobs = BlobMap {
        delay: setup.delay,
        ..BlobMap::default()
    };
    let mut rejected = Vec::new();
    let mut refused_jobs = 0;
    for height in 0..MAX_HEIGHT {
        let mut candidates: Vec<SignedTransaction> = Vec::new();
        for node in &mut nodes {
            let me = node.agent.address();
            let agent = &node.agent;
            let store = chain.store();
            let tip = chain.tip();
            // As a node does: drop a pending transaction the next block would refuse.
            let refused = |transaction: &SignedTransaction| {
                cairn_ledger::execute::check_next(store, tip, transaction, &registry)
                    .expect("state reads")
            };
            candidates.extend(
                node.outbox
                    .on_block(
                        height,
                        store,
                        |payload| agent.is_stale(payload, store),
                        refused,
                    )
                    .expect("state reads"),
            );
            let view = View {
                map: &blobs,
                me,
                height,
            };
            let mut intents = Vec::new();
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut node.results)
                .into_iter()
                .partition(|(at, _)| *at <= height);
            node.results = later;
            for (_, done) in due {
                intents.extend(node.agent.on_done(height, chain.store(), &view, done));
            }
            intents.extend(node.agent.on_block(height, chain.store(), &view));
            for job in node.agent.take_jobs() {
                if height < jobs.refuse_below {
                    refused_jobs += 1;
                    node.agent.on_refused(job.key());
                    continue;
                }
                let done = job.run();
                if jobs.delay == 0 {
                    intents.extend(node.agent.on_done(height, chain.store(), &view, done));
                } else {
                    node.results.push((height + jobs.delay, done));
                }
            }
            for intent in intents {
                match intent {
                    Intent::Submit(payload) => candidates.push(
                        node.outbox
                            .submit(payload, height)
                            .expect("outbox has room"),
                    ),
                    Intent::Store { bytes, public } => {
                        let hash = params::blob_hash(&bytes);
                        let since = public.then_some(height);
                        let entry = blobs.blobs.entry(hash).or_insert(Stored {
                            bytes,
                            public_since: since,
                            owner: me,
                        });
                        entry.public_since = entry.public_since.or(since);
                    }
                    Intent::Publish(hash) => {
                        if let Some(entry) = blobs.blobs.get_mut(&hash) {
                            if entry.owner == me {
                                entry.public_since = entry.public_since.or(Some(height));
                            }
                        }
                    }
                    Intent::Fetch { hash, holder } => {
                        blobs.fetches += 1;
                        blobs.asked.push((me, height, hash, holder));
                    }
                }
            }
        }
        let kinds: Vec<&'static str> = candidates
            .iter()
            .map(|tx| tx.transaction.payload.kind())
            .collect();
        let (_, dropped) = chain.propose_and_apply(candidates).expect("block applies");
        rejected.extend(
            dropped
                .into_iter()
                .map(|(i, e)| (height, kinds[i], e.to_string())),
        );
        let task = query::task(chain.store(), 0).expect("state reads");
        if task.is_some_and(|t| t.status == TaskStatus::Settled) {
            break;
        }
    }
    let plan = TaskPlan::from_spec(&spec, &registry).expect("plan");
    Run {
        chain,
        blobs,
        plan,
        spec,
        trainers: trainer_addresses,
        validators: (1..1 + validator_count).map(address).collect(),
        rejected,
        refused: refused_jobs,
    }
}

/// Every update audited (rate 1), a leaf every 5 steps, short audit and move windows.
pub fn always_audited() -> Verification {
    Verification {
        trace_every: 5,
        audit_ppm: 1_000_000,
        audit_window: 4,
        move_window: 2,
        challenge_bond: 300,
        min_trainer_bond: BOND,
    }
}
