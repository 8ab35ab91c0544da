//! Verified work, end to end on the ledger-only harness: trainers that lie at a chosen step are
//! audited, disputed down to that step and slashed by the referee; a challenger that lies loses
//! its bond to the trainer; a side that stays silent loses; an honest trainer is never slashed,
//! however often it is audited; a copier is caught and its victim keeps its reward.

mod common;

use cairn_ledger::dispute::{Dispute, Party, Reason, Stage};
use cairn_ledger::round::{AuditStatus, Round};
use cairn_ledger::{query, Address, Verification};
use cairn_node::protocol::{HonestTrainer, HonestValidator, TrainerConduct, ValidatorConduct};
use cairn_sim::adversary::trainer::{Copying, Lying};
use cairn_sim::adversary::validator::FalseChallenger;
use common::{always_audited, simulate, spec, Run, Setup, BOND};

const STEPS: u32 = 20;

fn never_audited() -> Verification {
    Verification {
        audit_ppm: 0,
        ..always_audited()
    }
}

fn honest_validators(count: usize) -> Vec<Box<dyn ValidatorConduct>> {
    (0..count)
        .map(|_| Box::new(HonestValidator) as Box<dyn ValidatorConduct>)
        .collect()
}

/// 4 honest validators and 4 trainers, the last one `last`'s conduct, one round on `digits`.
fn with_last_trainer(
    seed: u64,
    verification: Verification,
    last: impl Fn(&[Address]) -> Box<dyn TrainerConduct> + 'static,
) -> Run {
    simulate(Setup {
        seed,
        delay: 0,
        spec: spec("digits", "logistic:64-10", "median", 1, verification),
        validators: honest_validators(4),
        trainers: Box::new(move |trainers: &[Address]| {
            let mut conducts: Vec<Box<dyn TrainerConduct>> = (0..3)
                .map(|_| Box::new(HonestTrainer) as Box<dyn TrainerConduct>)
                .collect();
            conducts.push(last(trainers));
            conducts
        }),
        trainer_count: 4,
    })
}

fn disputes(run: &Run) -> Vec<Dispute> {
    (0..64)
        .filter_map(|id| query::dispute(run.chain.store(), id).unwrap())
        .collect()
}

fn round(run: &Run) -> Round {
    query::round(run.chain.store(), 0, 0).unwrap().unwrap()
}

/// The honest trainers (the first three) lost nothing and earned their rewards.
fn assert_honest_trainers_untouched(run: &Run) {
    let store = run.chain.store();
    let task = query::task(store, 0).unwrap().unwrap();
    for trainer in &run.trainers[..3] {
        assert_eq!(
            task.trainers[trainer], BOND,
            "an honest trainer's bond moved"
        );
        assert!(!task.expelled.contains(trainer));
        assert!(!round(run).penalties.contains_key(trainer));
        assert!(
            query::rewards(store, trainer).unwrap() > 0,
            "an honest trainer was not paid"
        );
    }
}

#[test]
fn a_trainer_lying_at_the_first_a_middle_or_the_last_step_is_caught_and_slashed() {
    for at in [1, STEPS / 2, STEPS] {
        let run = with_last_trainer(40 + u64::from(at), always_audited(), move |_| {
            Box::new(Lying { at, silent: false })
        });
        let liar = run.trainers[3];
        let store = run.chain.store();
        let decided: Vec<Dispute> = disputes(&run)
            .into_iter()
            .filter(|d| d.trainer == liar)
            .collect();
        assert!(
            !decided.is_empty(),
            "step {at}: the liar was not challenged"
        );
        let refereed: Vec<&Dispute> = decided
            .iter()
            .filter(|d| matches!(d.stage, Stage::Resolved(r) if r.reason == Reason::Referee))
            .collect();
        assert_eq!(refereed.len(), 1, "step {at}: {decided:#?}");
        let dispute = refereed[0];
        let Stage::Resolved(resolution) = dispute.stage else {
            unreachable!()
        };
        assert_eq!(resolution.winner, Party::Challenger, "step {at}");
        assert_eq!(
            resolution.referee_steps, 1,
            "the referee ran exactly one step"
        );
        assert_eq!(
            (dispute.low.step, dispute.high.step),
            (at - 1, at),
            "the bisection ends at the lie"
        );
        // Any second dispute over the same update ended with the first.
        for other in decided.iter().filter(|d| d.id != dispute.id) {
            assert!(matches!(other.stage, Stage::Resolved(r) if r.reason == Reason::Moot));
        }
        let task = query::task(store, 0).unwrap().unwrap();
        assert_eq!(
            task.trainers[&liar], 0,
            "step {at}: the liar's bond is gone"
        );
        assert!(task.expelled.contains(&liar));
        assert_eq!(round(&run).penalties[&liar], BOND);
        assert_eq!(query::rewards(store, &liar).unwrap(), 0, "step {at}");
        assert_eq!(query::stake(store, &liar).unwrap().bonded, 0);
        assert_honest_trainers_untouched(&run);
        assert!(
            run.unexpected_rejections().is_empty(),
            "{:#?}",
            run.rejected
        );
    }
}

#[test]
fn an_honest_trainer_is_never_slashed_however_often_it_is_audited() {
    let run = simulate(Setup {
        seed: 5,
        delay: 0,
        spec: spec("digits", "logistic:64-10", "median", 2, always_audited()),
        validators: honest_validators(4),
        trainers: Box::new(|_: &[Address]| {
            (0..4)
                .map(|_| Box::new(HonestTrainer) as Box<dyn TrainerConduct>)
                .collect()
        }),
        trainer_count: 4,
    });
    assert!(disputes(&run).is_empty(), "{:#?}", disputes(&run));
    for number in 0..2 {
        let record = query::round(run.chain.store(), 0, number).unwrap().unwrap();
        assert_eq!(record.audits.len(), 4, "every update was drawn");
        for audit in record.audits.values() {
            assert_eq!(audit.auditors.len(), 2, "two auditors each");
            assert!(audit.auditors.values().all(|s| *s == AuditStatus::Passed));
        }
        assert!(record.penalties.is_empty());
    }
    let task = query::task(run.chain.store(), 0).unwrap().unwrap();
    assert!(task.trainers.values().all(|bond| *bond == BOND));
    assert!(run.rejected.is_empty(), "{:#?}", run.rejected);
}

#[test]
fn a_challenger_that_lies_loses_its_bond_to_the_trainer() {
    let mut validators = honest_validators(4);
    validators[0] = Box::new(FalseChallenger);
    let run = simulate(Setup {
        seed: 6,
        delay: 0,
        spec: spec("digits", "logistic:64-10", "median", 1, never_audited()),
        validators,
        trainers: Box::new(|_: &[Address]| {
            (0..4)
                .map(|_| Box::new(HonestTrainer) as Box<dyn TrainerConduct>)
                .collect()
        }),
        trainer_count: 4,
    });
    let store = run.chain.store();
    let all = disputes(&run);
    assert_eq!(all.len(), 1, "{all:#?}");
    let dispute = &all[0];
    let Stage::Resolved(resolution) = dispute.stage else {
        panic!("unresolved: {dispute:#?}")
    };
    assert_eq!(resolution.winner, Party::Trainer);
    assert_eq!(resolution.reason, Reason::Referee);
    assert_eq!(resolution.referee_steps, 1);
    let bond = dispute.bond;
    assert_eq!(round(&run).penalties[&dispute.challenger], bond);
    // The trainer keeps its bond, gets the challenger's, and is paid its reward.
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.trainers[&dispute.trainer], BOND);
    let reward = query::rewards(store, &dispute.trainer).unwrap();
    assert!(reward > 0);
    assert_eq!(
        query::balance(store, &dispute.trainer).unwrap(),
        10_000 - BOND + reward + bond,
        "balance = genesis - bond + reward + the challenger's bond"
    );
    assert!(task.expelled.is_empty());
}

#[test]
fn a_trainer_that_stays_silent_in_its_dispute_loses_by_its_deadline() {
    let run = with_last_trainer(7, always_audited(), |_| {
        Box::new(Lying {
            at: 5,
            silent: true,
        })
    });
    let liar = run.trainers[3];
    let all = disputes(&run);
    assert!(all.iter().any(|d| d.trainer == liar
        && matches!(d.stage, Stage::Resolved(r)
            if r.reason == Reason::Silence && r.winner == Party::Challenger && r.referee_steps == 0)));
    let task = query::task(run.chain.store(), 0).unwrap().unwrap();
    assert!(task.expelled.contains(&liar));
    assert_honest_trainers_untouched(&run);
}

#[test]
fn a_copier_is_caught_and_the_trainer_it_copied_keeps_its_reward() {
    let run = with_last_trainer(8, never_audited(), |trainers: &[Address]| {
        Box::new(Copying {
            victim: trainers[0],
        })
    });
    let (victim, copier) = (run.trainers[0], run.trainers[3]);
    let record = round(&run);
    assert_eq!(
        record.commits[&victim].update_hash, record.commits[&copier].update_hash,
        "the copy is exact"
    );
    // Duplicates are always audited, even at an audit rate of 0.
    assert!(record.audits.contains_key(&victim) && record.audits.contains_key(&copier));
    assert!(record.audits[&victim]
        .auditors
        .values()
        .all(|s| *s == AuditStatus::Passed));
    let store = run.chain.store();
    let task = query::task(store, 0).unwrap().unwrap();
    assert!(task.expelled.contains(&copier));
    assert_eq!(query::rewards(store, &copier).unwrap(), 0);
    assert_honest_trainers_untouched(&run);
    // The victim is scored like any honest trainer: copying it did not zero it.
    let scores = query::scores(store, 0, 0).unwrap();
    assert!(scores[&victim] > 0, "{scores:?}");
}
