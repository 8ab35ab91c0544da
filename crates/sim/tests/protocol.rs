//! The round protocol end to end, with no network (the harness in `common`): a creator, 4
//! validators and 8 trainers run as `Agent`s over a `cairn_ledger::Chain` on a `MemoryStore`.

mod common;

use std::sync::{Arc, Mutex, OnceLock};

use cairn_ledger::encoding::to_hex;
use cairn_ledger::round::Outcome;
use cairn_ledger::{query, Address, Hash, TaskStatus, Verification};
use cairn_ml::model::Model;
use cairn_node::protocol::{HonestTrainer, HonestValidator, TrainerConduct, ValidatorConduct};
use cairn_robust::attack::Attack;
use cairn_round::params;
use cairn_sim::adversary::coalition::Coalition;
use cairn_sim::adversary::trainer::{
    Crafting, FreeRide, FreeRiding, LabelFlipping, Malforming, Withholding,
};
use cairn_sim::adversary::validator::{LazyAuditor, Mute, ScoreCopier, WrongHash};
use common::{simulate, spec, Run, Setup};

const SEED: u64 = 2026;
const ROUNDS: u32 = 3;

/// Golden outputs of the faults scenario with seed [`SEED`]: any change to training,
/// aggregation, scoring, audits, the ledger or the blob format shows up here. (Both moved when
/// genesis started recording `epoch_length` and the validator roster: block hashes commit to
/// the state root, and round 0's seed is the hash of the block before the task started.)
const GOLDEN_STATE_ROOT: &str = "172c3a1810e60b9973fe629177eed67c8e275144e3ec60774d28e1f5533977e6";
const GOLDEN_MODEL_HASH: &str = "e893e6eb61dba1bf27f5bf8a732a4d51ed9333378409e5d14979687cc941c9bd";

/// The verification settings of these runs: no random audits (forced ones still happen).
fn verification() -> Verification {
    Verification::with_audit_ppm(0, 100)
}

fn honest_validators() -> Vec<Box<dyn ValidatorConduct>> {
    (0..4)
        .map(|_| Box::new(HonestValidator) as Box<dyn ValidatorConduct>)
        .collect()
}

/// 5 honest trainers, a zero free rider, a non-revealer and a malformed blob; 3 honest
/// validators and one that attests a wrong model hash.
fn faults(seed: u64, delay: u64) -> Setup {
    let mut validators = honest_validators();
    validators[3] = Box::new(WrongHash);
    Setup {
        seed,
        delay,
        spec: spec(
            "mnist_5k",
            "mlp:784-32-10",
            "trimmed_mean:1",
            ROUNDS,
            verification(),
        ),
        validators,
        trainers: Box::new(|_: &[Address]| {
            let mut trainers: Vec<Box<dyn TrainerConduct>> = (0..5)
                .map(|_| Box::new(HonestTrainer) as Box<dyn TrainerConduct>)
                .collect();
            trainers.push(Box::new(FreeRiding(FreeRide::Zero)));
            trainers.push(Box::new(Withholding));
            trainers.push(Box::new(Malforming));
            trainers
        }),
        trainer_count: 8,
    }
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| simulate(faults(SEED, 0)))
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
fn every_round_finalizes_and_the_task_settles() {
    let run = run();
    let task = query::task(run.chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Settled);
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
fn every_submitted_transaction_is_valid_but_moves_in_disputes_decided_in_the_same_block() {
    let run = run();
    assert!(
        run.unexpected_rejections().is_empty(),
        "{:#?}",
        run.rejected
    );
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
fn a_commit_never_revealed_and_a_wrong_model_hash_are_slashed() {
    let run = run();
    let non_revealer = run.trainers[6];
    let wrong_hash = run.validators[3];
    for round in 0..ROUNDS {
        let Outcome::Finalized { slashed, .. } = outcome(run, round) else {
            panic!("round {round} timed out");
        };
        let mut expected = vec![non_revealer, wrong_hash];
        expected.sort();
        assert_eq!(
            slashed.keys().copied().collect::<Vec<_>>(),
            expected,
            "round {round}: only the non-revealer and the wrong hash"
        );
    }
    let task = query::task(run.chain.store(), 0).unwrap().unwrap();
    // The wrong hash is proven wrong against the finalized one (2/3 of stake, so at least one
    // honest validator, computed it): 10% of its bond each round, rounded up.
    let bond = 1_000u128;
    let after = (0..ROUNDS).fold(bond, |b, _| b - (b * 100_000).div_ceil(1_000_000));
    assert_eq!(task.validators[&wrong_hash], after);
    for honest in &run.validators[..3] {
        assert_eq!(
            task.validators[honest], bond,
            "an honest validator was slashed"
        );
    }
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
    // It scores 0 while it takes part; its replayed zero update is audited in round 1 and it is
    // expelled, so it has no score after.
    for round in 0..ROUNDS {
        let scores = query::scores(store, 0, round).unwrap();
        assert_eq!(scores.get(&run.trainers[5]).copied().unwrap_or(0), 0);
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
    let again = simulate(faults(SEED, 0));
    assert_eq!(
        to_hex(&again.chain.store().root()),
        root,
        "a second run replays the first"
    );
}

/// 4 honest trainers, a coalition of 2 sign-flippers, a label flipper and a stale free rider;
/// 2 honest validators, one that copies last round's scores and one that never attests.
fn adversaries() -> Setup {
    let mut validators = honest_validators();
    validators[2] = Box::new(ScoreCopier);
    validators[3] = Box::new(Mute);
    Setup {
        seed: SEED + 1,
        delay: 0,
        spec: spec(
            "mnist_5k",
            "mlp:784-32-10",
            "trimmed_mean:3",
            ROUNDS,
            verification(),
        ),
        validators,
        trainers: Box::new(|trainers: &[Address]| {
            let coalition = Arc::new(Mutex::new(Coalition::new([trainers[4], trainers[5]])));
            let attack = Attack::SignFlip { scale: 4.0 };
            let mut conducts: Vec<Box<dyn TrainerConduct>> = (0..4)
                .map(|_| Box::new(HonestTrainer) as Box<dyn TrainerConduct>)
                .collect();
            conducts.push(Box::new(Crafting::new(attack.clone(), coalition.clone())));
            conducts.push(Box::new(Crafting::new(attack, coalition)));
            conducts.push(Box::new(LabelFlipping));
            conducts.push(Box::new(FreeRiding(FreeRide::Stale)));
            conducts
        }),
        trainer_count: 8,
    }
}

fn adversarial_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| simulate(adversaries()))
}

#[test]
fn attackers_label_flippers_and_stale_free_riders_earn_less_than_honest_trainers() {
    let run = adversarial_run();
    assert!(
        run.unexpected_rejections().is_empty(),
        "{:#?}",
        run.rejected
    );
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
    let late = simulate(faults(SEED, 3));
    assert!(
        late.unexpected_rejections().is_empty(),
        "{:#?}",
        late.rejected
    );
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

/// Every update audited by two of four validators: the lazy auditor is drawn in every round,
/// never reports, and forfeits each such round's validator reward; the auditors that re-ran the
/// trainers' rounds are paid in full.
#[test]
fn a_validator_that_skips_its_audits_forfeits_the_rounds_it_was_drawn_for() {
    let mut validators = honest_validators();
    validators[3] = Box::new(LazyAuditor);
    let run = simulate(Setup {
        seed: SEED + 7,
        delay: 0,
        spec: spec(
            "digits",
            "mlp:64-16-10",
            "trimmed_mean:1",
            3,
            Verification::with_audit_ppm(1_000_000, 100),
        ),
        validators,
        trainers: Box::new(|_: &[Address]| {
            (0..4)
                .map(|_| Box::new(HonestTrainer) as Box<dyn TrainerConduct>)
                .collect()
        }),
        trainer_count: 4,
    });
    let store = run.chain.store();
    let lazy = run.validators[3];
    let mut forfeited_rounds = 0;
    for number in 0..3 {
        let round = query::round(store, 0, number)
            .unwrap()
            .expect("round exists");
        let drawn = round
            .audits
            .values()
            .any(|a| a.auditors.contains_key(&lazy));
        let forfeited = round
            .vesting
            .as_ref()
            .map(|v| v.forfeited.clone())
            .unwrap_or_default();
        assert_eq!(forfeited.contains_key(&lazy), drawn, "round {number}");
        for honest in &run.validators[..3] {
            assert!(!forfeited.contains_key(honest), "round {number}");
        }
        forfeited_rounds += usize::from(drawn);
    }
    assert!(forfeited_rounds > 0, "the lazy auditor was never drawn");
    let earned = |v: &Address| query::rewards(store, v).unwrap();
    let honest_least = run.validators[..3].iter().map(earned).min().unwrap();
    assert!(
        earned(&lazy) < honest_least,
        "the lazy auditor earned {}, an honest one {honest_least}",
        earned(&lazy)
    );
}

#[test]
fn the_initial_model_is_asked_first_from_the_task_creator() {
    // `M_0` reaches the others 30 blocks after the creator stores it, so the members ask for it
    // when round 0 opens. They name the creator, which stored it: asking validators first
    // costs a timeout for each one a trainer is not yet connected to (a validator elected just
    // before the task), and the commit window is short.
    let late = simulate(faults(SEED, 30));
    let store = late.chain.store();
    let task = query::task(store, 0).unwrap().unwrap();
    let initial = query::round(store, 0, 0).unwrap().unwrap().model_hash;
    // Requests in round 0 only: a round that counts nothing keeps the model, and `M_1` (held by
    // the validators) may then have `M_0`'s hash.
    let next = query::round(store, 0, 1)
        .unwrap()
        .map_or(u64::MAX, |r| r.opened_at);
    let asked: Vec<_> = late
        .blobs
        .asked
        .iter()
        .filter(|(_, height, hash, _)| *hash == initial && *height < next)
        .collect();
    assert!(asked.len() >= 2, "M_0 arrived late and was fetched");
    let elsewhere = asked
        .iter()
        .filter(|(_, _, _, holder)| *holder != Some(task.creator))
        .count();
    assert_eq!(elsewhere, 0, "of {} requests for M_0", asked.len());
}
