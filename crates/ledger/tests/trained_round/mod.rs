//! A one-round task with real training (`cairn_round`) in which one trainer lies, and disputes
//! over it played move by move: shared by the dispute-game scenarios (`disputes.rs`) and the
//! auditors' accountability for what the referee decides (`false_passes.rs`).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_ledger::dispute::{next_claim, Dispute, Resolution, Stage};
use cairn_ledger::encoding::{Hash, MAX_WITNESS_CHUNK};
use cairn_ledger::store::MemoryStore;
use cairn_ledger::transaction::{update_commitment, LastCheckpoint};
use cairn_ledger::{query, Chain, Params, Payload, Role};
use cairn_round::training::{shard_of, Assignment, Trajectory};
use cairn_round::{params, trace, Checkpoint, TaskPlan, Witness};

use crate::common::*;

/// Each trainer's task bond.
pub const TRAINER_BOND: u128 = 400;
/// Each validator's consensus weight and task bond; not a multiple of ten, so a tenth of it
/// rounds up.
pub const VALIDATOR_BOND: u128 = 405;
/// What every trainer and validator bonds before joining (on top of a validator's genesis
/// weight).
pub const BONDED: u128 = 5_000;

/// A trainer's committed work: its leaves, its last checkpoint, and its answers in a dispute.
pub struct Work {
    pub leaves: Vec<Hash>,
    pub last: Checkpoint,
    pub update: Vec<f32>,
    /// The honest run behind it.
    pub honest: Assignment,
    /// The trace root of the honest run (what an auditor that re-runs it computes).
    pub honest_root: Hash,
    /// When set, the update it reveals is its honest update times this (a lie at the last step).
    pub scale: Option<f32>,
}

impl Work {
    pub fn checkpoint(&self, step: u32) -> Hash {
        let mut checkpoint = self.honest.checkpoint(step).expect("checkpoint");
        if step == STEPS {
            checkpoint.update = params::hash(&self.update);
        }
        checkpoint.hash()
    }

    pub fn witness(&self, step: u32) -> Witness {
        self.honest.witness(step).expect("witness")
    }
}

pub struct Fixture {
    pub chain: Chain<MemoryStore>,
    pub users: Vec<User>,
    pub plan: Arc<TaskPlan>,
    /// Trainers 1 and 2: 1 honest, 2 revealing its update doubled.
    pub work: Vec<Work>,
}

/// [`fixture_auditing`] with no audits.
pub fn fixture() -> Fixture {
    fixture_auditing(0)
}

/// Users: 0 creator, 1..=2 trainers, 3..=4 validators. One round, auditing each counted update
/// with probability `audit_ppm`; both trainers commit and reveal, both validators vote that they
/// hold both updates; the height is moved to the end of the availability window, so the next
/// block draws the audits and takes challenges.
pub fn fixture_auditing(audit_ppm: u32) -> Fixture {
    let mut users = users(5);
    let mut chain = chain(&genesis_with_validators(
        &users,
        &[(3, VALIDATOR_BOND), (4, VALIDATOR_BOND)],
        Params::default(),
    ));
    let mut spec = spec(1, (2, 2, 2), 10_000);
    spec.verification.audit_ppm = audit_ppm;
    let mut block = vec![users[0].sign(Payload::CreateTask { spec: spec.clone() })];
    for user in users.iter_mut().skip(1) {
        block.push(user.sign(Payload::Bond { amount: BONDED }));
    }
    commit(&mut chain, block);
    let joins = (1..=4)
        .map(|i| {
            let (role, bond) = if i <= 2 {
                (Role::Trainer, TRAINER_BOND)
            } else {
                (Role::Validator, VALIDATOR_BOND)
            };
            users[i].sign(Payload::JoinTask {
                task: 0,
                role,
                bond,
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
        let honest_root = trace::root(&done.leaves);
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
            honest_root,
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
    let held = [users[1].address, users[2].address];
    let votes = (3..=4)
        .map(|v| users[v].sign(vote_availability(0, 0, held)))
        .collect();
    commit(&mut chain, votes);
    advance_to(&mut chain, opened + 6);
    Fixture {
        chain,
        users,
        plan,
        work,
    }
}

impl Fixture {
    /// The index in `users` of the user with this address.
    pub fn index_of(&self, address: &cairn_ledger::Address) -> usize {
        self.users
            .iter()
            .position(|u| u.address == *address)
            .expect("a user")
    }
}

/// Who stays silent in a played dispute.
#[derive(Clone, Copy, PartialEq)]
pub enum Silent {
    Nobody,
    Trainer,
    Challenger,
}

/// Validator `challenger` (3 or 4) challenges trainer `trainer` (1 or 2) claiming the trace root
/// `root`, in a block of its own. Returns the new dispute's id.
pub fn challenge(fixture: &mut Fixture, challenger: usize, trainer: usize, root: Hash) -> u64 {
    let open = |fixture: &Fixture| -> BTreeSet<u64> {
        query::task(fixture.chain.store(), 0)
            .unwrap()
            .unwrap()
            .open_disputes
    };
    let before = open(fixture);
    let address = fixture.users[trainer].address;
    let challenge = fixture.users[challenger].sign(Payload::Challenge {
        task: 0,
        round: 0,
        trainer: address,
        trace_root: root,
    });
    commit(&mut fixture.chain, vec![challenge]);
    let opened: Vec<u64> = open(fixture).difference(&before).copied().collect();
    assert_eq!(opened.len(), 1, "one dispute opened");
    opened[0]
}

/// The move due in `dispute` from a side playing honestly from its own run (the trainer answers
/// from its committed work, the challenger from the trainer's honest run), as (user index,
/// payload); none when it is resolved or the side to move is `silent`.
pub fn next_move(fixture: &Fixture, dispute: &Dispute, silent: Silent) -> Option<(usize, Payload)> {
    let trainer = fixture.index_of(&dispute.trainer);
    let challenger = fixture.index_of(&dispute.challenger);
    let work = &fixture.work[trainer - 1];
    let id = dispute.id;
    match dispute.stage {
        Stage::Resolved(_) => None,
        Stage::Claim { .. } | Stage::Witness { .. } if silent == Silent::Trainer => None,
        Stage::Answer { .. } if silent == Silent::Challenger => None,
        Stage::Claim { step } => {
            let leaf = next_claim(dispute.low.step, dispute.high.step, STEPS, TRACE_EVERY)
                .and_then(|(_, leaf)| leaf);
            Some((
                trainer,
                Payload::DisputeClaim {
                    dispute: id,
                    checkpoint: work.checkpoint(step),
                    proof: leaf
                        .map(|i| trace::proof(&work.leaves, i).unwrap())
                        .unwrap_or_default(),
                },
            ))
        }
        Stage::Answer { claim } => {
            let mine = work.honest.checkpoint(claim.step).unwrap().hash();
            Some((
                challenger,
                Payload::DisputeAnswer {
                    dispute: id,
                    agree: mine == claim.checkpoint,
                },
            ))
        }
        Stage::Witness { received, .. } => {
            let bytes = work.witness(dispute.low.step).encode();
            Some((
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
            ))
        }
    }
}

/// Both sides of dispute `id` play it ([`next_move`]), one move per block, until it ends.
/// Returns the dispute and the trainer's claims.
pub fn play_out(fixture: &mut Fixture, id: u64, silent: Silent) -> (Dispute, u32) {
    let mut claims = 0;
    for _ in 0..200 {
        let dispute = query::dispute(fixture.chain.store(), id).unwrap().unwrap();
        if matches!(dispute.stage, Stage::Resolved(_)) {
            return (dispute, claims);
        }
        let transactions = match next_move(fixture, &dispute, silent) {
            Some((user, payload)) => {
                claims += u32::from(matches!(payload, Payload::DisputeClaim { .. }));
                vec![fixture.users[user].sign(payload)]
            }
            None => Vec::new(),
        };
        commit(&mut fixture.chain, transactions);
    }
    panic!("the dispute did not end");
}

/// Validator 3 challenges trainer `trainer` (1 or 2) with the honest trace root, and the dispute
/// is played out ([`play_out`]).
pub fn play(fixture: &mut Fixture, trainer: usize, silent: Silent) -> (Dispute, u32) {
    let root = fixture.work[trainer - 1].honest_root;
    let id = challenge(fixture, 3, trainer, root);
    play_out(fixture, id, silent)
}

/// How `dispute` ended; panics if it has not.
pub fn resolution(dispute: &Dispute) -> Resolution {
    match dispute.stage {
        Stage::Resolved(resolution) => resolution,
        other => panic!("unresolved: {other:?}"),
    }
}
