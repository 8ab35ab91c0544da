//! The round protocol end to end, with no network: a creator, 4 validators and 8 trainers run as
//! `Agent`s over a `cairn_ledger::Chain` on a `MemoryStore`. Every block includes every
//! transaction submitted after the previous one; blobs live in one shared map in which a private
//! blob is visible only to its owner until it is published.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use cairn_ledger::encoding::to_hex;
use cairn_ledger::round::Outcome;
use cairn_ledger::store::MemoryStore;
use cairn_ledger::{
    query, Address, Chain, Genesis, Hash, Params, SignedTransaction, TaskSpec, TaskStatus,
};
use cairn_ml::data::{default_data_dir, BuiltinDataset};
use cairn_ml::model::Model;
use cairn_node::keys::NodeKey;
use cairn_node::protocol::params;
use cairn_node::protocol::{
    Agent, BlobView, Coalition, DatasetRegistry, FreeRide, Intent, Outbox, TaskPlan,
    TrainerBehaviour, ValidatorBehaviour,
};
use cairn_robust::attack::Attack;

const CHAIN_ID: u64 = 7;
const SEED: u64 = 2026;
const BOND: u128 = 1_000;
const ROUNDS: u32 = 3;
const MAX_HEIGHT: u64 = 80;

/// Golden outputs of the scenario with seed [`SEED`]: any change to training, aggregation,
/// scoring, the ledger or the blob format shows up here.
const GOLDEN_STATE_ROOT: &str = "0a2bac78af6a9d9dd12878f8aa7f32137e4380a07258d63351bbed16778425d4";
const GOLDEN_MODEL_HASH: &str = "f1c5cbba8d1b724b57bca4cea3222f98beff8cfdb2ca9fdb248600002ae8e8bb";

/// A blob as the shared map holds it.
struct Stored {
    bytes: Arc<[u8]>,
    /// The height it became public, if it did.
    public_since: Option<u64>,
    owner: Address,
}

/// Blobs by hash.
#[derive(Default)]
struct BlobMap {
    blobs: BTreeMap<Hash, Stored>,
    /// Blocks a public blob takes to reach other nodes.
    delay: u64,
    fetches: usize,
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

struct Node {
    agent: Agent,
    outbox: Outbox,
}

/// What a finished run leaves behind.
struct Run {
    chain: Chain<MemoryStore>,
    blobs: BlobMap,
    plan: TaskPlan,
    spec: TaskSpec,
    trainers: Vec<Address>,
    validators: Vec<Address>,
    rejected: Vec<String>,
}

fn registry() -> Arc<DatasetRegistry> {
    let dir = default_data_dir().expect("data/ folder with mnist_5k.csv.gz");
    let mut registry = DatasetRegistry::new();
    registry
        .load_builtin(BuiltinDataset::Mnist5k, &dir)
        .expect("mnist_5k loads");
    Arc::new(registry)
}

fn spec(registry: &DatasetRegistry, robust_rule: &str) -> TaskSpec {
    TaskSpec {
        model: "mlp:784-32-10".into(),
        initial_model: [0; 32],
        dataset: registry.hash_of("mnist_5k").expect("registered"),
        partition: "iid".into(),
        rounds: ROUNDS,
        local_steps: 20,
        optimizer: "sgd:lr=0.1,momentum=0.9,batch=32".into(),
        robust_rule: robust_rule.into(),
        commit_window: 2,
        reveal_window: 2,
        attest_window: 2,
        min_stake: 100,
        reward_per_round: 100_000,
    }
}

/// Who does what: the robust rule, the 4 validators' behaviours, and the 8 trainers'
/// behaviours given the trainers' addresses (so a coalition can name its members).
struct Scenario {
    seed: u64,
    /// Blocks a published blob takes to reach the other nodes.
    delay: u64,
    rule: &'static str,
    validators: [ValidatorBehaviour; 4],
    trainers: fn(&[Address]) -> Vec<TrainerBehaviour>,
}

/// 5 honest trainers, a zero free rider, a non-revealer and a malformed blob; 3 honest
/// validators and one that attests a wrong model hash.
fn faults(_: &[Address]) -> Vec<TrainerBehaviour> {
    let mut trainers = vec![TrainerBehaviour::Honest; 5];
    trainers.push(TrainerBehaviour::FreeRider(FreeRide::Zero));
    trainers.push(TrainerBehaviour::NonRevealer);
    trainers.push(TrainerBehaviour::MalformedBlob);
    trainers
}

const FAULTS: Scenario = Scenario {
    seed: SEED,
    delay: 0,
    rule: "trimmed_mean:1",
    validators: [
        ValidatorBehaviour::Honest,
        ValidatorBehaviour::Honest,
        ValidatorBehaviour::Honest,
        ValidatorBehaviour::WrongModelHash,
    ],
    trainers: faults,
};

fn simulate(scenario: &Scenario) -> Run {
    let registry = registry();
    let keys: Vec<_> = (0..13)
        .map(|i| NodeKey::derive(scenario.seed, i).ledger_key())
        .collect();
    let address = |i: usize| Address::from_public_key(&keys[i].verifying_key());
    let trainer_addresses: Vec<Address> = (5..13).map(address).collect();
    let creator = Agent::creator(
        &keys[0],
        spec(&registry, scenario.rule),
        registry.clone(),
        8,
        4,
    )
    .expect("spec parses");
    let spec = creator.spec().expect("creator has a spec").clone();
    let mut agents = vec![creator];
    for (v, behaviour) in scenario.validators.iter().enumerate() {
        agents.push(Agent::validator(
            &keys[1 + v],
            0,
            BOND,
            *behaviour,
            registry.clone(),
        ));
    }
    for (t, behaviour) in (scenario.trainers)(&trainer_addresses)
        .into_iter()
        .enumerate()
    {
        agents.push(Agent::trainer(
            &keys[5 + t],
            0,
            BOND,
            behaviour,
            registry.clone(),
        ));
    }
    let genesis = Genesis {
        chain_id: CHAIN_ID,
        params: Params::default(),
        balances: (0..13)
            .map(|i| (address(i), if i == 0 { 1_000_000 } else { 10_000 }))
            .collect(),
        // The validators start with bonded stake; the trainers bond through their agents.
        validators: (1..5).map(|i| (address(i), BOND)).collect(),
    };
    let mut chain = Chain::create(MemoryStore::new(), &genesis).expect("genesis");
    let mut nodes: Vec<Node> = agents
        .into_iter()
        .zip(&keys)
        .map(|(agent, key)| Node {
            agent,
            outbox: Outbox::new(key.clone(), CHAIN_ID),
        })
        .collect();
    let mut blobs = BlobMap {
        delay: scenario.delay,
        ..BlobMap::default()
    };
    let mut rejected = Vec::new();
    for height in 0..MAX_HEIGHT {
        let mut candidates: Vec<SignedTransaction> = Vec::new();
        for node in &mut nodes {
            let me = node.agent.address();
            candidates.extend(
                node.outbox
                    .on_block(height, chain.store())
                    .expect("state reads"),
            );
            let intents = node.agent.on_block(
                height,
                chain.store(),
                &View {
                    map: &blobs,
                    me,
                    height,
                },
            );
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
                    Intent::Fetch { .. } => blobs.fetches += 1,
                }
            }
        }
        let (_, dropped) = chain.propose_and_apply(candidates).expect("block applies");
        rejected.extend(
            dropped
                .into_iter()
                .map(|(i, e)| format!("height {height} #{i}: {e}")),
        );
        let task = query::task(chain.store(), 0).expect("state reads");
        if task.is_some_and(|t| t.status == TaskStatus::Finished) {
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
        validators: (1..5).map(address).collect(),
        rejected,
    }
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| simulate(&FAULTS))
}

fn outcome(run: &Run, round: u32) -> Outcome {
    query::round(run.chain.store(), 0, round)
        .expect("state reads")
        .and_then(|r| r.outcome)
        .unwrap_or_else(|| panic!("round {round} closed"))
}

fn accuracy(run: &Run, hash: &Hash) -> f32 {
    let stored = run.blobs.blobs.get(hash).expect("model blob stored");
    let values = params::decode(&stored.bytes, run.plan.param_count()).expect("model blob decodes");
    let model = Model::new(run.plan.model.clone(), values).expect("model");
    model
        .evaluate(&run.plan.dataset.split.test, 500)
        .expect("evaluates")
        .accuracy
}

#[test]
fn every_round_finalizes_and_the_task_finishes() {
    let run = run();
    let task = query::task(run.chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Finished);
    for round in 0..ROUNDS {
        let Outcome::Finalized { model_hash, .. } = outcome(run, round) else {
            panic!("round {round} timed out");
        };
        assert_eq!(
            query::model_hash(run.chain.store(), 0, round).unwrap(),
            Some(model_hash)
        );
    }
}

#[test]
fn every_submitted_transaction_is_valid() {
    assert!(run().rejected.is_empty(), "{:#?}", run().rejected);
}

#[test]
fn the_models_test_accuracy_rises() {
    let run = run();
    let initial = accuracy(run, &run.spec.initial_model);
    let mut previous = initial;
    for round in 0..ROUNDS {
        let Outcome::Finalized { model_hash, .. } = outcome(run, round) else {
            panic!("round {round} timed out");
        };
        let now = accuracy(run, &model_hash);
        eprintln!("round {round}: test accuracy {now:.4} (initial {initial:.4})");
        assert!(now > previous, "round {round}: {now} after {previous}");
        previous = now;
    }
    assert!(previous > 0.7, "final accuracy {previous}");
}

#[test]
fn a_commit_never_revealed_is_slashed() {
    let run = run();
    let non_revealer = run.trainers[6];
    for round in 0..ROUNDS {
        let Outcome::Finalized { slashed, .. } = outcome(run, round) else {
            panic!("round {round} timed out");
        };
        assert_eq!(
            slashed.keys().collect::<Vec<_>>(),
            vec![&non_revealer],
            "round {round}"
        );
    }
    let task = query::task(run.chain.store(), 0).unwrap().unwrap();
    // 10% of the remaining bond each round: 1000 -> 900 -> 810 -> 729.
    assert_eq!(task.trainers[&non_revealer], 729);
    assert_eq!(query::rewards(run.chain.store(), &non_revealer).unwrap(), 0);
}

#[test]
fn a_free_rider_earns_less_than_every_honest_trainer_of_equal_stake() {
    let run = run();
    let store = run.chain.store();
    let free_rider = query::rewards(store, &run.trainers[5]).unwrap();
    for honest in &run.trainers[..5] {
        let earned = query::rewards(store, honest).unwrap();
        assert!(
            earned > free_rider,
            "honest {earned} vs free rider {free_rider}"
        );
    }
    for round in 0..ROUNDS {
        assert_eq!(query::scores(store, 0, round).unwrap()[&run.trainers[5]], 0);
    }
}

#[test]
fn a_malformed_update_blob_is_excluded_and_scored_zero() {
    let run = run();
    let malformed = run.trainers[7];
    for round in 0..ROUNDS {
        let record = query::round(run.chain.store(), 0, round).unwrap().unwrap();
        let update = record.commits[&malformed].update_hash.expect("it revealed");
        let stored = &run.blobs.blobs[&update];
        assert!(
            stored.public_since.is_some(),
            "the malformed blob was published"
        );
        assert!(matches!(
            params::decode(&stored.bytes, run.plan.param_count()),
            Err(params::ParamsError::NonFinite { .. })
        ));
        for validator in &run.validators {
            let reveal = record.attestations[validator]
                .reveal
                .as_ref()
                .expect("revealed");
            assert_eq!(reveal.scores.get(&malformed), Some(&0), "round {round}");
        }
        assert_eq!(
            query::scores(run.chain.store(), 0, round).unwrap()[&malformed],
            0
        );
    }
    assert_eq!(query::rewards(run.chain.store(), &malformed).unwrap(), 0);
}

#[test]
fn a_wrong_model_hash_validator_cannot_finalize_it_and_earns_less() {
    let run = run();
    let store = run.chain.store();
    let wrong = run.validators[3];
    for round in 0..ROUNDS {
        let record = query::round(store, 0, round).unwrap().unwrap();
        let Some(Outcome::Finalized { model_hash, .. }) = record.outcome else {
            panic!("round {round} timed out");
        };
        let attested = |v: &Address| record.attestations[v].reveal.as_ref().unwrap().model_hash;
        for honest in &run.validators[..3] {
            assert_eq!(attested(honest), model_hash);
        }
        assert_ne!(attested(&wrong), model_hash);
        assert!(
            run.blobs.blobs.contains_key(&model_hash),
            "the finalized model is stored"
        );
    }
    let wrong_earned = query::rewards(store, &wrong).unwrap();
    for honest in &run.validators[..3] {
        assert!(query::rewards(store, honest).unwrap() > wrong_earned);
    }
}

#[test]
fn the_same_seed_gives_the_golden_state_root_and_model_hash() {
    let run = run();
    let root = to_hex(&run.chain.store().root());
    let task = query::task(run.chain.store(), 0).unwrap().unwrap();
    let model = to_hex(&task.model_hash);
    eprintln!("state root {root}\nmodel hash {model}");
    assert_eq!(root, GOLDEN_STATE_ROOT);
    assert_eq!(model, GOLDEN_MODEL_HASH);
    let again = simulate(&FAULTS);
    assert_eq!(
        to_hex(&again.chain.store().root()),
        root,
        "a second run replays the first"
    );
}

/// 4 honest trainers, a coalition of 2 sign-flippers, a label flipper and a stale free rider;
/// 2 honest validators, one that copies last round's scores and one that never attests.
fn adversaries(trainers: &[Address]) -> Vec<TrainerBehaviour> {
    let coalition = Arc::new(Mutex::new(Coalition::new([trainers[4], trainers[5]])));
    let attacker = TrainerBehaviour::Attack {
        attack: Attack::SignFlip { scale: 4.0 },
        coalition,
    };
    let mut behaviours = vec![TrainerBehaviour::Honest; 4];
    behaviours.extend([
        attacker.clone(),
        attacker,
        TrainerBehaviour::LabelFlip,
        TrainerBehaviour::FreeRider(FreeRide::Stale),
    ]);
    behaviours
}

const ADVERSARIES: Scenario = Scenario {
    seed: SEED + 1,
    delay: 0,
    rule: "trimmed_mean:3",
    validators: [
        ValidatorBehaviour::Honest,
        ValidatorBehaviour::Honest,
        ValidatorBehaviour::CopyScores,
        ValidatorBehaviour::Silent,
    ],
    trainers: adversaries,
};

fn adversarial_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| simulate(&ADVERSARIES))
}

#[test]
fn attackers_label_flippers_and_stale_free_riders_earn_less_than_honest_trainers() {
    let run = adversarial_run();
    assert!(run.rejected.is_empty(), "{:#?}", run.rejected);
    let store = run.chain.store();
    let earned = |t: &Address| query::rewards(store, t).unwrap();
    let honest_least = run.trainers[..4].iter().map(earned).min().unwrap();
    for (name, trainer) in [
        "sign flipper",
        "sign flipper",
        "label flipper",
        "stale free rider",
    ]
    .iter()
    .zip(&run.trainers[4..])
    {
        let got = earned(trainer);
        eprintln!("{name}: {got} (least honest {honest_least})");
        assert!(
            got < honest_least,
            "{name} earned {got}, an honest trainer {honest_least}"
        );
    }
}

#[test]
fn a_sign_flipping_coalition_does_not_stop_learning_under_trimmed_mean() {
    let run = adversarial_run();
    let initial = accuracy(run, &run.spec.initial_model);
    let mut last = initial;
    for round in 0..ROUNDS {
        let Outcome::Finalized { model_hash, .. } = outcome(run, round) else {
            panic!("round {round} timed out");
        };
        last = accuracy(run, &model_hash);
        eprintln!("round {round}: test accuracy {last:.4}");
    }
    assert!(last > initial + 0.4, "final {last}, initial {initial}");
}

#[test]
fn copied_scores_and_silence_earn_validators_less_than_honest_work() {
    let run = adversarial_run();
    let store = run.chain.store();
    let earned = |v: &Address| query::rewards(store, v).unwrap();
    let honest_least = earned(&run.validators[0]).min(earned(&run.validators[1]));
    eprintln!(
        "validators earned {:?}",
        run.validators.iter().map(earned).collect::<Vec<_>>()
    );
    assert_eq!(
        earned(&run.validators[3]),
        0,
        "a silent validator earns nothing"
    );
    assert!(
        earned(&run.validators[2]) < honest_least,
        "the copier earns less"
    );
}

#[test]
fn blobs_arriving_late_are_fetched_and_change_nothing_in_the_round() {
    let late = simulate(&Scenario { delay: 3, ..FAULTS });
    assert!(late.rejected.is_empty(), "{:#?}", late.rejected);
    assert!(
        late.blobs.fetches > 0 && run().blobs.fetches == 0,
        "validators asked for the late updates"
    );
    for round in 0..ROUNDS {
        assert!(
            matches!(outcome(&late, round), Outcome::Finalized { .. }),
            "round {round}"
        );
    }
    // Round 0 starts from the same seed and model, so it ends with the same model; later rounds
    // differ because their seeds come from block hashes, which the late attestations change.
    let (
        Outcome::Finalized {
            model_hash: on_time,
            ..
        },
        Outcome::Finalized {
            model_hash: delayed,
            ..
        },
    ) = (outcome(run(), 0), outcome(&late, 0))
    else {
        panic!("round 0 finalized in both runs");
    };
    assert_eq!(on_time, delayed);
}
