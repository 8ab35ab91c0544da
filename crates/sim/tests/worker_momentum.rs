//! Worker momentum in the protocol (`RULE+wm:β`): each trainer's update carries what it sent the
//! round before, its trace commits the carried vector, audits replay it from the ledger's
//! record, and a dispute over the last step is decided by the referee with the carried vector
//! the ledger names. Server momentum (`+sm:β`) moves the model by the heavy-ball step.

mod common;

use std::sync::Arc;

use cairn_ledger::dispute::{Dispute, Party, Reason, Stage};
use cairn_ledger::round::AuditStatus;
use cairn_ledger::round::Round;
use cairn_ledger::Task;
use cairn_ledger::{query, Address, Verification};
use cairn_node::protocol::{
    Decision, HonestTrainer, HonestValidator, RoundInput, Submission, TrainerConduct,
    ValidatorConduct,
};
use cairn_round::aggregation::server_step;
use cairn_round::params;
use cairn_round::training::{carry_momentum, shard_of, Assignment};
use cairn_sim::adversary::trainer::Lying;
use cairn_sim::adversary::validator::FalseChallenger;
use common::{always_audited, simulate, spec, Run, Setup, BOND};

const STEPS: u32 = 20;
const RULE: &str = "median+wm:0.5+sm:0.5";

fn honest_validators() -> Vec<Box<dyn ValidatorConduct>> {
    (0..4)
        .map(|_| Box::new(HonestValidator) as Box<dyn ValidatorConduct>)
        .collect()
}

fn disputes(run: &Run) -> Vec<Dispute> {
    (0..64)
        .filter_map(|id| query::dispute(run.chain.store(), id).unwrap())
        .collect()
}

fn blob(run: &Run, hash: &[u8; 32]) -> Vec<f32> {
    let stored = run.blobs.blobs.get(hash).expect("blob held");
    params::decode(&stored.bytes, run.plan.param_count()).unwrap()
}

#[test]
fn honest_updates_carry_their_momentum_and_pass_every_audit() {
    let run = simulate(Setup {
        seed: 11,
        delay: 0,
        spec: spec("digits", "logistic:64-10", RULE, 3, always_audited()),
        validators: honest_validators(),
        trainers: Box::new(|_: &[Address]| {
            (0..4)
                .map(|_| Box::new(HonestTrainer) as Box<dyn TrainerConduct>)
                .collect()
        }),
        trainer_count: 4,
    });
    assert_eq!(run.plan.worker_momentum, 0.5);
    assert_eq!(run.plan.server_momentum, 0.5);
    assert!(disputes(&run).is_empty(), "{:#?}", disputes(&run));
    let store = run.chain.store();
    let task = query::task(store, 0).unwrap().unwrap();
    let trainers: Vec<Address> = task.trainers.keys().copied().collect();
    let plan = Arc::new(run.plan.clone());
    let mut models = Vec::new();
    for number in 0..3u32 {
        let record = query::round(store, 0, number).unwrap().unwrap();
        assert_eq!(record.audits.len(), 4, "round {number}: every update drawn");
        for audit in record.audits.values() {
            assert!(
                audit.auditors.values().all(|s| *s == AuditStatus::Passed),
                "round {number}: {audit:?}"
            );
        }
        let model = blob(&run, &record.model_hash);
        // Each revealed update is the trainer's own Δ carried with what it sent last round,
        // bit for bit: replayed here from public data only.
        for trainer in &trainers {
            let revealed = record.commits[trainer].update_hash.expect("revealed");
            let shard = shard_of(&plan, 0, &trainers, trainer).unwrap();
            let delta = Assignment::new(
                plan.clone(),
                Arc::new(shard),
                &record.seed,
                trainer,
                model.clone().into(),
            )
            .train()
            .unwrap()
            .update;
            let carried = query::carried(store, 0, number, trainer).unwrap();
            assert_eq!(carried.is_some(), number > 0, "round {number}");
            let previous = carried.map(|hash| blob(&run, &hash));
            let expected = carry_momentum(previous.as_deref(), &delta, 0.5);
            assert_eq!(params::blob_hash(&params::encode(&expected)), revealed);
            if number > 0 {
                assert_ne!(expected, delta, "momentum changed the update");
            }
        }
        models.push(model);
    }
    // The finalized models follow the heavy-ball server step: M_2 − M_1 carries half of
    // M_1 − M_0 on top of the median (checked by recomputing the median of round 1).
    let record = query::round(store, 0, 1).unwrap().unwrap();
    let updates: Vec<f32> = record
        .revealed()
        .flat_map(|(_, hash)| blob(&run, hash))
        .collect();
    let matrix = cairn_robust::Updates::new(&updates, 4, plan.param_count()).unwrap();
    let median = cairn_robust::aggregate(
        &plan.rule,
        &plan.pre,
        &matrix,
        &cairn_robust::Context {
            previous: None,
            non_finite: cairn_robust::NonFinitePolicy::Reject,
        },
    )
    .unwrap();
    assert_eq!(
        server_step(&models[1], Some(&models[0]), &median, 0.5),
        models[2]
    );
    assert!(task.trainers.values().all(|bond| *bond == BOND));
    assert!(run.rejected.is_empty(), "{:#?}", run.rejected);
}

/// Honest in round 0 (so it carries a vector into round 1), then lies about its last step.
#[derive(Debug)]
struct LiesFromRoundOne(Lying);

impl TrainerConduct for LiesFromRoundOne {
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        if input.round.number == 0 {
            HonestTrainer.work(input)
        } else {
            self.0.work(input)
        }
    }
}

#[test]
fn a_lie_at_the_last_step_is_refereed_with_the_carried_update_the_ledger_names() {
    let run = simulate(Setup {
        seed: 12,
        delay: 0,
        spec: spec("digits", "logistic:64-10", RULE, 2, always_audited()),
        validators: honest_validators(),
        trainers: Box::new(|_: &[Address]| {
            let mut conducts: Vec<Box<dyn TrainerConduct>> = (0..3)
                .map(|_| Box::new(HonestTrainer) as Box<dyn TrainerConduct>)
                .collect();
            conducts.push(Box::new(LiesFromRoundOne(Lying {
                at: STEPS,
                silent: false,
            })));
            conducts
        }),
        trainer_count: 4,
    });
    let liar = run.trainers[3];
    let store = run.chain.store();
    // The liar carried its round-0 update into round 1.
    assert!(query::carried(store, 0, 1, &liar).unwrap().is_some());
    let refereed: Vec<Dispute> = disputes(&run)
        .into_iter()
        .filter(|d| d.trainer == liar)
        .filter(|d| matches!(d.stage, Stage::Resolved(r) if r.reason == Reason::Referee))
        .collect();
    assert_eq!(refereed.len(), 1, "{:#?}", disputes(&run));
    let dispute = &refereed[0];
    assert_eq!(dispute.round, 1);
    assert_eq!((dispute.low.step, dispute.high.step), (STEPS - 1, STEPS));
    let Stage::Resolved(resolution) = dispute.stage else {
        unreachable!()
    };
    assert_eq!(resolution.winner, Party::Challenger);
    assert_eq!(resolution.referee_steps, 1);
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.trainers[&liar], 0, "the liar's bond is gone");
    // The honest trainers, audited every round with their carried momentum, lost nothing.
    for trainer in &run.trainers[..3] {
        assert_eq!(task.trainers[trainer], BOND);
    }
    assert!(
        run.unexpected_rejections().is_empty(),
        "{:#?}",
        run.rejected
    );
}

/// Challenges an honest trainer in round 1 without cause, then agrees with every claim: the
/// bisection runs to the last step, where the trainer must hand the referee its carried update.
#[derive(Debug, Default)]
struct ChallengesThenAgrees(FalseChallenger);

impl ValidatorConduct for ChallengesThenAgrees {
    fn unfounded_challenges(&mut self, task: &Task, round: &Round) -> Vec<Address> {
        if round.number == 1 {
            self.0.unfounded_challenges(task, round)
        } else {
            Vec::new()
        }
    }

    fn answer(&mut self, _dispute: &Dispute, _honest: bool) -> bool {
        true
    }
}

#[test]
fn an_honest_trainer_wins_a_last_step_dispute_with_its_carried_update() {
    let mut validators = honest_validators();
    validators[0] = Box::new(ChallengesThenAgrees::default());
    let never = Verification {
        audit_ppm: 0,
        ..always_audited()
    };
    let run = simulate(Setup {
        seed: 13,
        delay: 0,
        spec: spec("digits", "logistic:64-10", RULE, 2, never),
        validators,
        trainers: Box::new(|_: &[Address]| {
            (0..4)
                .map(|_| Box::new(HonestTrainer) as Box<dyn TrainerConduct>)
                .collect()
        }),
        trainer_count: 4,
    });
    let all = disputes(&run);
    assert_eq!(all.len(), 1, "{all:#?}");
    let dispute = &all[0];
    assert_eq!(dispute.round, 1);
    let store = run.chain.store();
    assert!(query::carried(store, 0, 1, &dispute.trainer)
        .unwrap()
        .is_some());
    assert_eq!((dispute.low.step, dispute.high.step), (STEPS - 1, STEPS));
    let Stage::Resolved(resolution) = dispute.stage else {
        panic!("unresolved: {dispute:#?}")
    };
    assert_eq!(resolution.winner, Party::Trainer);
    assert_eq!(resolution.reason, Reason::Referee);
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.trainers[&dispute.trainer], BOND);
    assert!(task.expelled.is_empty());
}
