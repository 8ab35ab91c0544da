//! The dispute game on the ledger with real training: trainers commit the trace of their round
//! (`cairn_round`), a challenger disputes one, and the two sides bisect down to one step that
//! the ledger's referee re-executes. Covers the referee's verdicts both ways, silence on either
//! side, a witness that is not the agreed state, claims with bad proofs, and the number of moves.

mod common;

use std::sync::Arc;

use cairn_ledger::dispute::{next_claim, Dispute, DisputeError, Party, Reason, Stage};
use cairn_ledger::encoding::{Hash, MAX_WITNESS_CHUNK};
use cairn_ledger::store::MemoryStore;
use cairn_ledger::transaction::{update_commitment, LastCheckpoint};
use cairn_ledger::{query, Chain, Params, Payload, Role, TaskStatus, TxError};
use cairn_round::training::{shard_of, Assignment, Trajectory};
use cairn_round::{params, trace, Checkpoint, TaskPlan, Witness};
use common::*;

const BOND: u128 = 400;

/// A trainer's committed work: its leaves, its last checkpoint, and its answers in a dispute.
struct Work {
    leaves: Vec<Hash>,
    last: Checkpoint,
    update: Vec<f32>,
    /// The honest run behind it.
    honest: Assignment,
    /// When set, the update it reveals is its honest update times this (a lie at the last step).
    scale: Option<f32>,
}

impl Work {
    fn checkpoint(&self, step: u32) -> Hash {
        let mut checkpoint = self.honest.checkpoint(step).expect("checkpoint");
        if step == STEPS {
            checkpoint.update = params::hash(&self.update);
        }
        checkpoint.hash()
    }

    fn witness(&self, step: u32) -> Witness {
        self.honest.witness(step).expect("witness")
    }
}

struct Fixture {
    chain: Chain<MemoryStore>,
    users: Vec<User>,
    plan: Arc<TaskPlan>,
    /// Trainers 1 and 2: 1 honest, 2 revealing its update doubled.
    work: Vec<Work>,
}

/// Users: 0 creator, 1..=2 trainers, 3..=4 validators. One round; both trainers commit and
/// reveal; the height is moved to the first block after the reveal window (audits drawn).
fn fixture() -> Fixture {
    let mut users = users(5);
    let mut chain = chain(&genesis_with_validators(
        &users,
        &[(3, BOND), (4, BOND)],
        Params::default(),
    ));
    let spec = spec(1, (2, 2, 2), 10_000);
    let mut block = vec![users[0].sign(Payload::CreateTask { spec: spec.clone() })];
    for user in users.iter_mut().skip(1) {
        block.push(user.sign(Payload::Bond { amount: 5_000 }));
    }
    commit(&mut chain, block);
    let joins = (1..=4)
        .map(|i| {
            let role = if i <= 2 {
                Role::Trainer
            } else {
                Role::Validator
            };
            users[i].sign(Payload::JoinTask {
                task: 0,
                role,
                bond: BOND,
            })
        })
        .collect();
    commit(&mut chain, joins);
    commit(
        &mut chain,
        vec![users[0].sign(Payload::StartTask { task: 0 })],
    );
    let opened = chain.tip().height;
    let round = query::round(chain.store(), 0, 0).unwrap().unwrap();
    let plan = Arc::new(TaskPlan::from_spec(&spec, &datasets()).unwrap());
    let model: Arc<[f32]> = plan.initial_params(&spec).unwrap().into();
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    let trainers: Vec<_> = task.trainers.keys().copied().collect();
    let mut work = Vec::new();
    for (i, scale) in [(1, None), (2, Some(2.0f32))] {
        let address = users[i].address;
        let shard = shard_of(&plan, 0, &trainers, &address).unwrap();
        let honest = Assignment::new(
            plan.clone(),
            Arc::new(shard),
            &round.seed,
            &address,
            model.clone(),
        );
        let done = honest.train().unwrap();
        let update: Vec<f32> = match scale {
            Some(scale) => done.update.iter().map(|v| v * scale).collect(),
            None => done.update.clone(),
        };
        let mut last = done.last;
        last.update = params::hash(&update);
        let mut leaves = done.leaves.clone();
        *leaves.last_mut().unwrap() = last.hash();
        work.push(Work {
            leaves,
            last,
            update,
            honest,
            scale,
        });
    }
    let salt = [9u8; 32];
    let commits = (0..2)
        .map(|w| {
            let user = &users[w + 1];
            let payload = Payload::CommitUpdate {
                task: 0,
                round: 0,
                commitment: update_commitment(
                    &user.scope(0, 0),
                    &params::hash(&work[w].update),
                    &salt,
                ),
                trace_root: trace::root(&work[w].leaves),
            };
            users[w + 1].sign(payload)
        })
        .collect();
    commit(&mut chain, commits);
    advance_to(&mut chain, opened + 2);
    let reveals = (0..2)
        .map(|w| {
            let work = &work[w];
            users[w + 1].sign(Payload::RevealUpdate {
                task: 0,
                round: 0,
                update_hash: params::hash(&work.update),
                salt,
                last: LastCheckpoint {
                    weights: work.last.weights,
                    optimizer: work.last.optimizer,
                    batch: work.last.batch,
                },
                proof: trace::proof(&work.leaves, work.leaves.len() - 1).unwrap(),
            })
        })
        .collect();
    commit(&mut chain, reveals);
    advance_to(&mut chain, opened + 4);
    Fixture {
        chain,
        users,
        plan,
        work,
    }
}

/// Who stays silent in a played dispute.
#[derive(Clone, Copy, PartialEq)]
enum Silent {
    Nobody,
    Trainer,
    Challenger,
}

/// Validator 3 challenges trainer `trainer` (1 or 2) with the honest trace root; then both sides
/// play honestly from their own runs (the trainer answers from its committed work), one move per
/// block, until the dispute ends. Returns the dispute and the trainer's claims.
fn play(fixture: &mut Fixture, trainer: usize, silent: Silent) -> (Dispute, u32) {
    let honest_root = trace::root(&fixture.work[trainer - 1].honest.train().unwrap().leaves);
    let address = fixture.users[trainer].address;
    let challenge = fixture.users[3].sign(Payload::Challenge {
        task: 0,
        round: 0,
        trainer: address,
        trace_root: honest_root,
    });
    commit(&mut fixture.chain, vec![challenge]);
    let id = query::task(fixture.chain.store(), 0)
        .unwrap()
        .unwrap()
        .open_disputes
        .into_iter()
        .next()
        .expect("open");
    let mut claims = 0;
    for _ in 0..200 {
        let dispute = query::dispute(fixture.chain.store(), id).unwrap().unwrap();
        let work = &fixture.work[trainer - 1];
        let moves: Vec<(usize, Payload)> = match dispute.stage {
            Stage::Resolved(_) => return (dispute, claims),
            Stage::Claim { .. } if silent == Silent::Trainer => Vec::new(),
            Stage::Witness { .. } if silent == Silent::Trainer => Vec::new(),
            Stage::Answer { .. } if silent == Silent::Challenger => Vec::new(),
            Stage::Claim { step } => {
                claims += 1;
                let leaf = next_claim(dispute.low.step, dispute.high.step, STEPS, TRACE_EVERY)
                    .and_then(|(_, leaf)| leaf);
                vec![(
                    trainer,
                    Payload::DisputeClaim {
                        dispute: id,
                        checkpoint: work.checkpoint(step),
                        proof: leaf
                            .map(|i| trace::proof(&work.leaves, i).unwrap())
                            .unwrap_or_default(),
                    },
                )]
            }
            Stage::Answer { claim } => {
                let mine = work.honest.checkpoint(claim.step).unwrap().hash();
                vec![(
                    3,
                    Payload::DisputeAnswer {
                        dispute: id,
                        agree: mine == claim.checkpoint,
                    },
                )]
            }
            Stage::Witness { received, .. } => {
                let bytes = work.witness(dispute.low.step).encode();
                vec![(
                    trainer,
                    Payload::DisputeWitness {
                        dispute: id,
                        offset: received,
                        bytes: bytes[received as usize..]
                            .iter()
                            .take(MAX_WITNESS_CHUNK)
                            .copied()
                            .collect(),
                    },
                )]
            }
        };
        let transactions = moves
            .into_iter()
            .map(|(user, payload)| fixture.users[user].sign(payload))
            .collect();
        commit(&mut fixture.chain, transactions);
    }
    panic!("the dispute did not end");
}

fn resolution(dispute: &Dispute) -> cairn_ledger::dispute::Resolution {
    match dispute.stage {
        Stage::Resolved(resolution) => resolution,
        other => panic!("unresolved: {other:?}"),
    }
}

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
    assert_eq!(round.penalties[&liar], BOND);
    // The challenger's bond is back and no witness chunk is left in the state.
    let challenger = query::stake(store, &fixture.users[3].address).unwrap();
    assert_eq!(challenger.locked, BOND);
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
    // Its genesis weight and the 5 000 it bonded, less the bond it lost.
    assert_eq!(challenger.bonded, BOND + 5_000 - CHALLENGE_BOND);
    let task = query::task(store, 0).unwrap().unwrap();
    assert!(task.expelled.is_empty());
    assert_eq!(task.trainers[&trainer], BOND);
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
