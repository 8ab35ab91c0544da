//! Slow work off the block callback, on the ledger-only harness: an agent decides its training,
//! aggregation and audits at a block and acts on each result when it comes back. A result a
//! block late still lands in its window; one that comes after the window is given up and never
//! sent; a job the pool refuses is decided again at the next block; a job that panics costs its
//! node that step of the round and nothing else.

mod common;

use cairn_ledger::round::{AuditStatus, Round};
use cairn_ledger::{query, Address, TaskStatus};
use cairn_node::protocol::{
    Compute, Decision, HonestTrainer, HonestValidator, RoundInput, Submission, TrainerConduct,
    ValidatorConduct,
};
use common::{always_audited, simulate_with, spec, Jobs, Run, Setup};

const TRAINERS: usize = 4;

fn setup(rounds: u32, last: impl Fn() -> Box<dyn TrainerConduct> + 'static) -> Setup {
    Setup {
        seed: 11,
        delay: 0,
        spec: spec(
            "digits",
            "logistic:64-10",
            "median",
            rounds,
            always_audited(),
        ),
        validators: (0..4)
            .map(|_| Box::new(HonestValidator) as Box<dyn ValidatorConduct>)
            .collect(),
        trainers: Box::new(move |_: &[Address]| {
            let mut conducts: Vec<Box<dyn TrainerConduct>> = (0..TRAINERS - 1)
                .map(|_| Box::new(HonestTrainer) as Box<dyn TrainerConduct>)
                .collect();
            conducts.push(last());
            conducts
        }),
        trainer_count: TRAINERS,
    }
}

fn honest() -> Box<dyn TrainerConduct> {
    Box::new(HonestTrainer)
}

fn round(run: &Run, number: u32) -> Round {
    query::round(run.chain.store(), 0, number)
        .unwrap()
        .expect("round recorded")
}

fn settled(run: &Run) -> bool {
    query::task(run.chain.store(), 0)
        .unwrap()
        .is_some_and(|task| task.status == TaskStatus::Settled)
}

#[test]
fn results_a_block_late_still_land_in_their_windows() {
    let run = simulate_with(
        setup(2, honest),
        Jobs {
            delay: 1,
            ..Jobs::default()
        },
    );
    assert!(settled(&run), "the task settles");
    assert!(run.unexpected_rejections().is_empty(), "{:?}", run.rejected);
    for number in 0..2 {
        let round = round(&run, number);
        assert_eq!(round.commits.len(), TRAINERS, "every trainer committed");
        let available = round.available.clone().expect("availability fixed");
        assert_eq!(available.len(), TRAINERS, "every update counted");
        assert_eq!(round.attestations.len(), 4, "every validator attested");
        for audit in round.audits.values() {
            assert!(
                audit
                    .auditors
                    .values()
                    .all(|status| *status != AuditStatus::Assigned),
                "every drawn audit was run and reported: {audit:?}"
            );
        }
    }
}

#[test]
fn results_after_their_window_are_given_up_and_never_sent() {
    // The commit window is two blocks: training results three blocks late always miss it.
    let run = simulate_with(
        setup(1, honest),
        Jobs {
            delay: 3,
            ..Jobs::default()
        },
    );
    let round = round(&run, 0);
    assert!(
        round.commits.is_empty(),
        "no commit landed: {:?}",
        round.commits
    );
    assert!(
        run.rejected
            .iter()
            .all(|(_, kind, _)| *kind != "commit_update"),
        "a late result is not sent: {:?}",
        run.rejected
    );
}

#[test]
fn a_refused_job_is_decided_again_at_the_next_block() {
    let reference = simulate_with(setup(1, honest), Jobs::default());
    let opened = round(&reference, 0).opened_at;
    assert_eq!(reference.refused, 0);
    // Refuse every job decided at the round's opening block: the trainers' first chance.
    let run = simulate_with(
        setup(1, honest),
        Jobs {
            refuse_below: opened + 1,
            ..Jobs::default()
        },
    );
    assert_eq!(round(&run, 0).opened_at, opened);
    assert_eq!(
        run.refused, TRAINERS,
        "each trainer's first job was refused"
    );
    assert!(settled(&run), "the task settles");
    assert_eq!(round(&run, 0).commits.len(), TRAINERS, "and each committed");
    assert!(run.unexpected_rejections().is_empty(), "{:?}", run.rejected);
}

/// Training that panics (a bug in the computation, or a poisoned input).
#[derive(Debug)]
struct Panicking;

impl TrainerConduct for Panicking {
    fn work(&mut self, _input: &RoundInput<'_>) -> Decision<Submission> {
        Decision::Compute(Compute::new(|| panic!("training blew up")))
    }
}

#[test]
fn a_panicking_job_costs_its_trainer_the_round_and_nothing_else() {
    let run = simulate_with(setup(1, || Box::new(Panicking)), Jobs::default());
    assert!(settled(&run), "the task settles");
    let round = round(&run, 0);
    let panicked = run.trainers[TRAINERS - 1];
    assert!(!round.commits.contains_key(&panicked));
    assert_eq!(round.commits.len(), TRAINERS - 1, "the others committed");
    assert!(run.unexpected_rejections().is_empty(), "{:?}", run.rejected);
}

#[test]
fn disputes_computed_on_the_pool_still_catch_a_liar_with_results_a_block_late() {
    use cairn_ledger::dispute::{Party, Reason, Stage};
    use cairn_sim::adversary::trainer::Lying;
    // Every move (the trainer's claims and witness, the challenger's answers) replays training
    // steps in a job whose result comes a block after its decision; three-block move windows
    // leave room for that.
    let mut setup = setup(1, || {
        Box::new(Lying {
            at: 10,
            silent: false,
        })
    });
    setup.spec.verification.move_window = 3;
    let run = simulate_with(
        setup,
        Jobs {
            delay: 1,
            ..Jobs::default()
        },
    );
    let liar = run.trainers[TRAINERS - 1];
    let store = run.chain.store();
    let refereed: Vec<_> = (0..16)
        .filter_map(|id| query::dispute(store, id).unwrap())
        .filter(|d| d.trainer == liar)
        .filter(|d| matches!(d.stage, Stage::Resolved(r) if r.reason == Reason::Referee))
        .collect();
    assert_eq!(refereed.len(), 1, "the bisection reached the referee");
    let Stage::Resolved(resolution) = refereed[0].stage else {
        unreachable!()
    };
    assert_eq!(resolution.winner, Party::Challenger);
    assert_eq!((refereed[0].low.step, refereed[0].high.step), (9, 10));
    let task = query::task(store, 0).unwrap().unwrap();
    assert!(task.expelled.contains(&liar), "the liar is expelled");
    for honest in &run.trainers[..TRAINERS - 1] {
        assert_eq!(task.trainers[honest], common::BOND, "an honest bond moved");
    }
    assert!(run.unexpected_rejections().is_empty(), "{:?}", run.rejected);
}
