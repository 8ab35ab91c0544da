//! The dispute game on the ledger with real training: trainers commit the trace of their round
//! (`cairn_round`), a challenger disputes one, and the two sides bisect down to one step that
//! the ledger's referee re-executes. Covers the referee's verdicts both ways, silence on either
//! side, a witness that is not the agreed state, claims with bad proofs, and the number of moves.

mod common;
mod trained_round;

use cairn_ledger::dispute::{next_claim, DisputeError, Party, Reason, Stage};
use cairn_ledger::{query, Payload, TaskStatus, TxError};
use cairn_round::trace;
use cairn_round::training::Trajectory;
use common::*;
use trained_round::*;

#[test]
fn a_trainer_that_lied_at_the_last_step_loses_its_bond_after_one_refereed_step() {
    let mut fixture = fixture();
    assert!(fixture.work[1].scale.is_some());
    let (dispute, claims) = play(&mut fixture, 2, Silent::Nobody);
    let resolution = resolution(&dispute);
    assert_eq!(resolution.winner, Party::Challenger);
    assert_eq!(resolution.reason, Reason::Referee);
    assert_eq!(
        resolution.referee_steps, 1,
        "the referee re-executed exactly one step"
    );
    assert_eq!((dispute.low.step, dispute.high.step), (STEPS - 1, STEPS));
    assert_eq!(
        resolution.computed,
        Some(fixture.work[1].honest.checkpoint(STEPS).unwrap().hash()),
        "the referee computed the honest last checkpoint"
    );
    // ceil(log2(ceil(T / k))) claims over the leaves, then ceil(log2(k)) inside the interval.
    let leaf_intervals = STEPS.div_ceil(TRACE_EVERY);
    let bound = leaf_intervals.next_power_of_two().trailing_zeros()
        + TRACE_EVERY.next_power_of_two().trailing_zeros();
    assert!(claims <= bound, "{claims} claims, bound {bound}");
    let store = fixture.chain.store();
    let liar = fixture.users[2].address;
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.trainers[&liar], 0);
    assert!(task.expelled.contains(&liar));
    let round = query::round(store, 0, 0).unwrap().unwrap();
    assert_eq!(round.penalties[&liar], TRAINER_BOND);
    // The challenger's bond is back and no witness chunk is left in the state.
    let challenger = query::stake(store, &fixture.users[3].address).unwrap();
    assert_eq!(challenger.locked, VALIDATOR_BOND);
    assert!(query::dispute(store, dispute.id).unwrap().is_some());
}

#[test]
fn a_challenger_that_disputes_honest_work_loses_its_bond_to_the_trainer() {
    let mut fixture = fixture();
    let trainer = fixture.users[1].address;
    let before = query::balance(fixture.chain.store(), &trainer).unwrap();
    // The challenger claims another root for honest work: the bisection runs to a step on which
    // both agree, and the referee confirms the trainer.
    let honest_root = trace::root(&fixture.work[0].leaves);
    let challenge = fixture.users[3].sign(Payload::Challenge {
        task: 0,
        round: 0,
        trainer,
        trace_root: [0xcc; 32],
    });
    assert_ne!(honest_root, [0xcc; 32]);
    commit(&mut fixture.chain, vec![challenge]);
    let id = 0;
    for _ in 0..200 {
        let dispute = query::dispute(fixture.chain.store(), id).unwrap().unwrap();
        let work = &fixture.work[0];
        let payload = match dispute.stage {
            Stage::Resolved(_) => break,
            Stage::Claim { step } => {
                let leaf = next_claim(dispute.low.step, dispute.high.step, STEPS, TRACE_EVERY)
                    .and_then(|(_, leaf)| leaf);
                (
                    1,
                    Payload::DisputeClaim {
                        dispute: id,
                        checkpoint: work.checkpoint(step),
                        proof: leaf
                            .map(|i| trace::proof(&work.leaves, i).unwrap())
                            .unwrap_or_default(),
                    },
                )
            }
            // The lying challenger disagrees with everything.
            Stage::Answer { .. } => (
                3,
                Payload::DisputeAnswer {
                    dispute: id,
                    agree: false,
                },
            ),
            Stage::Witness { received, .. } => {
                let bytes = work.witness(dispute.low.step).encode();
                (
                    1,
                    Payload::DisputeWitness {
                        dispute: id,
                        offset: received,
                        bytes: bytes[received as usize..].to_vec(),
                    },
                )
            }
        };
        let tx = fixture.users[payload.0].sign(payload.1);
        commit(&mut fixture.chain, vec![tx]);
    }
    let dispute = query::dispute(fixture.chain.store(), id).unwrap().unwrap();
    let resolution = resolution(&dispute);
    assert_eq!(
        (resolution.winner, resolution.reason),
        (Party::Trainer, Reason::Referee)
    );
    assert_eq!(resolution.referee_steps, 1);
    assert_eq!(
        (dispute.low.step, dispute.high.step),
        (0, 1),
        "disagreeing all the way leads to step 1"
    );
    let store = fixture.chain.store();
    assert_eq!(
        query::balance(store, &trainer).unwrap(),
        before + CHALLENGE_BOND
    );
    let challenger = query::stake(store, &fixture.users[3].address).unwrap();
    // Its genesis weight and what it bonded, less the bond it lost.
    assert_eq!(challenger.bonded, VALIDATOR_BOND + BONDED - CHALLENGE_BOND);
    let task = query::task(store, 0).unwrap().unwrap();
    assert!(task.expelled.is_empty());
    assert_eq!(task.trainers[&trainer], TRAINER_BOND);
}

#[test]
fn a_silent_side_loses_at_its_deadline() {
    let mut silent_trainer = fixture();
    let (dispute, _) = play(&mut silent_trainer, 2, Silent::Trainer);
    let ended = resolution(&dispute);
    assert_eq!(
        (ended.winner, ended.reason),
        (Party::Challenger, Reason::Silence)
    );
    assert_eq!(ended.referee_steps, 0);

    let mut fixture = fixture();
    let trainer = fixture.users[2].address;
    let before = query::balance(fixture.chain.store(), &trainer).unwrap();
    let (dispute, _) = play(&mut fixture, 2, Silent::Challenger);
    let resolution = resolution(&dispute);
    // The trainer lied, but the challenger let its deadline pass: silence decides.
    assert_eq!(
        (resolution.winner, resolution.reason),
        (Party::Trainer, Reason::Silence)
    );
    assert_eq!(
        query::balance(fixture.chain.store(), &trainer).unwrap(),
        before + CHALLENGE_BOND
    );
}

#[test]
fn a_witness_that_is_not_the_agreed_state_loses_and_bad_proofs_are_refused() {
    let mut fixture = fixture();
    let trainer = fixture.users[2].address;
    let challenge = fixture.users[3].sign(Payload::Challenge {
        task: 0,
        round: 0,
        trainer,
        trace_root: [0xdd; 32],
    });
    commit(&mut fixture.chain, vec![challenge]);
    // The first claim is at a leaf: a proof that does not open the committed root is refused,
    // and so is a proof where none is due.
    let Stage::Claim { step } = query::dispute(fixture.chain.store(), 0)
        .unwrap()
        .unwrap()
        .stage
    else {
        panic!("a claim is due")
    };
    let work = &fixture.work[1];
    let bad = fixture.users[2].sign(Payload::DisputeClaim {
        dispute: 0,
        checkpoint: work.checkpoint(step),
        proof: vec![[1; 32]; 3],
    });
    let error = expect_rejected(&mut fixture.chain, vec![bad]);
    assert!(
        matches!(error, TxError::Dispute(DisputeError::BadProof(s)) if s == step),
        "{error}"
    );
    fixture.users[2].nonce -= 1;
    // Play to the witness stage with the challenger agreeing with everything (so the range ends
    // at the last step), then send a witness of another state.
    for _ in 0..100 {
        let dispute = query::dispute(fixture.chain.store(), 0).unwrap().unwrap();
        let work = &fixture.work[1];
        let (user, payload) = match dispute.stage {
            Stage::Claim { step } => {
                let leaf = next_claim(dispute.low.step, dispute.high.step, STEPS, TRACE_EVERY)
                    .and_then(|(_, leaf)| leaf);
                (
                    2,
                    Payload::DisputeClaim {
                        dispute: 0,
                        checkpoint: work.checkpoint(step),
                        proof: leaf
                            .map(|i| trace::proof(&work.leaves, i).unwrap())
                            .unwrap_or_default(),
                    },
                )
            }
            Stage::Answer { .. } => (
                3,
                Payload::DisputeAnswer {
                    dispute: 0,
                    agree: true,
                },
            ),
            Stage::Witness {
                received, expected, ..
            } => {
                let mut witness = work.witness(dispute.low.step);
                witness.params[0] += 0.5;
                let bytes = witness.encode();
                assert_eq!(bytes.len() as u64, expected);
                (
                    2,
                    Payload::DisputeWitness {
                        dispute: 0,
                        offset: received,
                        bytes: bytes[received as usize..].to_vec(),
                    },
                )
            }
            Stage::Resolved(_) => break,
        };
        let tx = fixture.users[user].sign(payload);
        commit(&mut fixture.chain, vec![tx]);
    }
    let dispute = query::dispute(fixture.chain.store(), 0).unwrap().unwrap();
    let resolution = resolution(&dispute);
    assert_eq!(
        (resolution.winner, resolution.reason),
        (Party::Challenger, Reason::BadWitness)
    );
    assert!(query::task(fixture.chain.store(), 0)
        .unwrap()
        .unwrap()
        .expelled
        .contains(&trainer));
}

#[test]
fn a_task_with_a_dispute_settles_once_it_ends_and_every_token_is_accounted_for() {
    let mut fixture = fixture();
    let (dispute, _) = play(&mut fixture, 2, Silent::Nobody);
    assert_eq!(resolution(&dispute).winner, Party::Challenger);
    let deadline = dispute.deadline + 20;
    advance_to(&mut fixture.chain, deadline);
    let task = query::task(fixture.chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Settled);
    assert!(task.open_disputes.is_empty());
    assert_eq!(task.pending, 0);
    let snapshot = cairn_ledger::query::Snapshot::read(fixture.chain.store()).unwrap();
    assert_eq!(snapshot.holdings(), Some(snapshot.supply));
    // The plan the fixture trained with is the ledger's.
    assert_eq!(fixture.plan.local_steps, STEPS);
}
