//! Every kind of bad transaction is rejected with its typed error, and the state root (and
//! height) stay exactly where they were: a block with a bad transaction is rejected whole.

mod common;

use cairn_ledger::audit::AuditError;
use cairn_ledger::dispute::{DisputeError, Stage};
use cairn_ledger::encoding::{to_hex, Hash};
use cairn_ledger::lifecycle::TaskError;
use cairn_ledger::participation::RoundError;
use cairn_ledger::staking::StakingError;
use cairn_ledger::store::MemoryStore;
use cairn_ledger::transaction::{update_commitment, CommitmentScope};
use cairn_ledger::{
    query, Chain, Params, Payload, Phase, Role, SignedTransaction, TaskSpec, TxError,
};
use common::*;

/// Four users; user 2 is the consensus validator, of weight 200.
fn fresh() -> (Chain<MemoryStore>, Vec<User>) {
    fresh_with(200)
}

/// Like [`fresh`] with user 2's consensus weight (the bond it validates a task with) given.
fn fresh_with(validator_weight: u128) -> (Chain<MemoryStore>, Vec<User>) {
    let users = users(4);
    let chain = chain(&genesis_with_validators(
        &users,
        &[(2, validator_weight)],
        Params::default(),
    ));
    (chain, users)
}

/// Creator (0), trainer (1) and validator (2) with a started one-round task 0 whose round opens
/// at height 3 with windows of 3 blocks each.
fn running_task() -> (Chain<MemoryStore>, Vec<User>) {
    running_task_with(spec(1, (3, 3, 3), 10_000), 200)
}

/// Like [`running_task`] with another spec, the validator's weight (and bond) `validator_bond`.
/// With 3-block windows round 0 opens at 3, takes commits at 4..=6, reveals at 7..=9 and
/// availability votes at 10..=12, draws its audits at 13, closes at 19 and takes challenges at
/// 13..=21.
fn running_task_with(spec: TaskSpec, validator_bond: u128) -> (Chain<MemoryStore>, Vec<User>) {
    let (mut chain, mut users) = fresh_with(validator_bond);
    let block1 = vec![
        users[1].sign(Payload::Bond { amount: 500 }),
        users[2].sign(Payload::Bond { amount: 500 }),
        users[0].sign(Payload::CreateTask { spec }),
    ];
    commit(&mut chain, block1);
    let block2 = vec![
        users[1].sign(Payload::JoinTask {
            task: 0,
            role: Role::Trainer,
            bond: 200,
        }),
        users[2].sign(Payload::JoinTask {
            task: 0,
            role: Role::Validator,
            bond: validator_bond,
        }),
    ];
    commit(&mut chain, block2);
    let start = users[0].sign(Payload::StartTask { task: 0 });
    commit(&mut chain, vec![start]);
    assert_eq!(chain.tip().height, 3);
    (chain, users)
}

/// The scope of `user`'s commitments in round 0 of task 0.
fn round_zero_scope(user: &User) -> CommitmentScope {
    CommitmentScope {
        chain_id: CHAIN_ID,
        task: 0,
        round: 0,
        member: user.address,
    }
}

fn transfer(to: &User, amount: u128) -> Payload {
    Payload::Transfer {
        to: to.address,
        amount,
    }
}

#[test]
fn bad_signature_is_rejected() {
    let (mut chain, users) = fresh();
    let mut tx = users[0].sign_with_nonce(0, transfer(&users[1], 5));
    tx.signature[10] ^= 1;
    let error = expect_rejected(&mut chain, vec![tx]);
    assert!(matches!(error, TxError::BadSignature), "{error:?}");
}

#[test]
fn signature_by_another_key_is_rejected() {
    let (mut chain, users) = fresh();
    let mut tx = users[0].sign_with_nonce(0, transfer(&users[1], 5));
    tx.signature = users[1]
        .sign_with_nonce(0, transfer(&users[1], 5))
        .signature;
    let error = expect_rejected(&mut chain, vec![tx]);
    assert!(matches!(error, TxError::BadSignature), "{error:?}");
}

#[test]
fn forged_signature_under_a_small_order_key_is_rejected() {
    // Public key = the identity point, R = identity, s = 0: the cofactorless equation holds for
    // every message, so only the weak-key check stops it.
    let (mut chain, users) = fresh();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&identity);
    let forged = SignedTransaction {
        transaction: cairn_ledger::Transaction {
            chain_id: CHAIN_ID,
            signer: identity,
            nonce: 0,
            payload: transfer(&users[1], 5),
        },
        signature,
    };
    let error = expect_rejected(&mut chain, vec![forged]);
    assert!(matches!(error, TxError::BadSignature), "{error:?}");
}

#[test]
fn wrong_chain_id_is_rejected() {
    let (mut chain, users) = fresh();
    let tx = SignedTransaction::new(&users[0].key, CHAIN_ID + 1, 0, transfer(&users[1], 5));
    let error = expect_rejected(&mut chain, vec![tx]);
    assert!(
        matches!(error, TxError::WrongChainId { expected: CHAIN_ID, got } if got == CHAIN_ID + 1),
        "{error:?}"
    );
}

#[test]
fn reused_nonce_is_rejected() {
    let (mut chain, mut users) = fresh();
    let payload = transfer(&users[1], 5);
    let first = users[0].sign(payload);
    commit(&mut chain, vec![first]);
    let replay = users[0].sign_with_nonce(0, transfer(&users[1], 5));
    let error = expect_rejected(&mut chain, vec![replay]);
    assert!(
        matches!(
            error,
            TxError::NonceReused {
                expected: 1,
                got: 0
            }
        ),
        "{error:?}"
    );
}

#[test]
fn skipped_nonce_is_rejected() {
    let (mut chain, users) = fresh();
    let tx = users[0].sign_with_nonce(3, transfer(&users[1], 5));
    let error = expect_rejected(&mut chain, vec![tx]);
    assert!(
        matches!(
            error,
            TxError::NonceSkipped {
                expected: 0,
                got: 3
            }
        ),
        "{error:?}"
    );
}

#[test]
fn insufficient_balance_is_rejected() {
    let (mut chain, users) = fresh();
    let tx = users[0].sign_with_nonce(0, transfer(&users[1], BALANCE + 1));
    let error = expect_rejected(&mut chain, vec![tx]);
    assert!(
        matches!(error, TxError::InsufficientBalance { needed, available: BALANCE } if needed == BALANCE + 1),
        "{error:?}"
    );
}

#[test]
fn overflowing_task_budget_is_rejected() {
    let (mut chain, users) = fresh();
    let spec = spec(3, (1, 1, 1), u128::MAX / 2);
    let tx = users[0].sign_with_nonce(0, Payload::CreateTask { spec });
    let error = expect_rejected(&mut chain, vec![tx]);
    assert!(
        matches!(error, TxError::Overflow("task budget")),
        "{error:?}"
    );
}

#[test]
fn unknown_task_is_rejected() {
    let (mut chain, users) = fresh();
    let join = Payload::JoinTask {
        task: 99,
        role: Role::Trainer,
        bond: 100,
    };
    let error = expect_rejected(&mut chain, vec![users[0].sign_with_nonce(0, join)]);
    assert!(
        matches!(error, TxError::Task(TaskError::UnknownTask(99))),
        "{error:?}"
    );
}

#[test]
fn attestation_in_the_commit_phase_is_rejected_as_wrong_phase() {
    let (mut chain, mut users) = running_task();
    let tx = users[2].sign(Payload::CommitAttestation {
        task: 0,
        round: 0,
        commitment: [1; 32],
    });
    let error = expect_rejected(&mut chain, vec![tx]);
    assert!(
        matches!(
            error,
            TxError::Round(RoundError::WrongPhase {
                needed: Phase::AttestCommit,
                actual: Phase::Commit
            })
        ),
        "{error:?}"
    );
}

#[test]
fn joining_a_running_task_is_rejected_as_wrong_phase() {
    let (mut chain, mut users) = running_task();
    commit(
        &mut chain,
        vec![users[3].sign(Payload::Bond { amount: 500 })],
    );
    let join = users[3].sign(Payload::JoinTask {
        task: 0,
        role: Role::Trainer,
        bond: 200,
    });
    let error = expect_rejected(&mut chain, vec![join]);
    assert!(
        matches!(error, TxError::Task(TaskError::WrongStatus { task: 0, .. })),
        "{error:?}"
    );
}

#[test]
fn commit_after_the_window_is_rejected() {
    let (mut chain, mut users) = running_task();
    // The round opened at height 3 with a 3-block commit window: heights 4, 5 and 6.
    advance_to(&mut chain, 6);
    let tx = users[1].sign(Payload::CommitUpdate {
        task: 0,
        round: 0,
        commitment: [1; 32],
        trace_root: [2; 32],
    });
    let error = expect_rejected(&mut chain, vec![tx]);
    assert!(
        matches!(
            error,
            TxError::Round(RoundError::CommitWindowClosed {
                closed_at: 7,
                height: 7
            })
        ),
        "{error:?}"
    );
}

#[test]
fn commit_in_the_block_that_opens_the_round_is_rejected() {
    let (mut chain, mut users) = fresh();
    let setup = vec![
        users[1].sign(Payload::Bond { amount: 500 }),
        users[2].sign(Payload::Bond { amount: 500 }),
        users[0].sign(Payload::CreateTask {
            spec: spec(1, (3, 3, 3), 10_000),
        }),
    ];
    commit(&mut chain, setup);
    let joins = vec![
        users[1].sign(Payload::JoinTask {
            task: 0,
            role: Role::Trainer,
            bond: 200,
        }),
        users[2].sign(Payload::JoinTask {
            task: 0,
            role: Role::Validator,
            bond: 200,
        }),
    ];
    commit(&mut chain, joins);
    let start = users[0].sign(Payload::StartTask { task: 0 });
    let early = users[1].sign(Payload::CommitUpdate {
        task: 0,
        round: 0,
        commitment: [1; 32],
        trace_root: [2; 32],
    });
    let error = expect_rejected(&mut chain, vec![start, early]);
    assert!(
        matches!(
            error,
            TxError::Round(RoundError::WrongPhase {
                needed: Phase::Commit,
                actual: Phase::Opening
            })
        ),
        "{error:?}"
    );
}

#[test]
fn second_commit_in_a_round_is_rejected() {
    let (mut chain, mut users) = running_task();
    let payload = Payload::CommitUpdate {
        task: 0,
        round: 0,
        commitment: update_commitment(&round_zero_scope(&users[1]), &[3; 32], &[4; 32]),
        trace_root: [2; 32],
    };
    commit(&mut chain, vec![users[1].sign(payload.clone())]);
    let error = expect_rejected(&mut chain, vec![users[1].sign(payload)]);
    assert!(
        matches!(error, TxError::Round(RoundError::AlreadyCommitted(a)) if a == users[1].address),
        "{error:?}"
    );
}

#[test]
fn reveal_that_does_not_open_the_commitment_is_rejected() {
    let (mut chain, mut users) = running_task();
    let payload = commit_update(&users[1], 0, 0, &[3; 32], &[4; 32]);
    commit(&mut chain, vec![users[1].sign(payload)]);
    advance_to(&mut chain, 6);
    // The right update and a trace that opens, but the wrong salt.
    let reveal = users[1].sign(reveal_update(0, 0, &[3; 32], &[9; 32]));
    let error = expect_rejected(&mut chain, vec![reveal]);
    assert!(
        matches!(error, TxError::Round(RoundError::CommitmentMismatch)),
        "{error:?}"
    );
}

#[test]
fn commitment_copied_from_another_trainer_cannot_be_revealed_by_the_copier() {
    // Trainers 1 and 3 in task 0; trainer 3 copies trainer 1's commitment during the commit
    // window and, after trainer 1 reveals, replays trainer 1's opening.
    let (mut chain, mut users) = fresh();
    let block1 = vec![
        users[1].sign(Payload::Bond { amount: 500 }),
        users[2].sign(Payload::Bond { amount: 500 }),
        users[3].sign(Payload::Bond { amount: 500 }),
        users[0].sign(Payload::CreateTask {
            spec: spec(1, (3, 3, 3), 10_000),
        }),
    ];
    commit(&mut chain, block1);
    let mut joins = Vec::new();
    for (member, role) in [(1, Role::Trainer), (2, Role::Validator), (3, Role::Trainer)] {
        joins.push(users[member].sign(Payload::JoinTask {
            task: 0,
            role,
            bond: 200,
        }));
    }
    commit(&mut chain, joins);
    let start = users[0].sign(Payload::StartTask { task: 0 });
    commit(&mut chain, vec![start]);
    let (update_hash, salt) = ([3; 32], [4; 32]);
    let commit_payload = commit_update(&users[1], 0, 0, &update_hash, &salt);
    let honest = users[1].sign(commit_payload.clone());
    let copied = users[3].sign(commit_payload);
    commit(&mut chain, vec![honest, copied]);
    advance_to(&mut chain, 6);
    let reveal = reveal_update(0, 0, &update_hash, &salt);
    let honest_reveal = users[1].sign(reveal.clone());
    commit(&mut chain, vec![honest_reveal]);
    let copied_reveal = users[3].sign(reveal);
    let error = expect_rejected(&mut chain, vec![copied_reveal]);
    assert!(
        matches!(error, TxError::Round(RoundError::CommitmentMismatch)),
        "{error:?}"
    );
}

#[test]
fn unbonding_stake_locked_by_a_task_is_rejected() {
    let (mut chain, mut users) = running_task();
    // Trainer bonded 500 and locked 200 in the task: only 300 are free.
    let tx = users[1].sign(Payload::Unbond { amount: 301 });
    let error = expect_rejected(&mut chain, vec![tx]);
    assert!(
        matches!(
            error,
            TxError::Staking(StakingError::InsufficientFreeStake {
                needed: 301,
                available: 300
            })
        ),
        "{error:?}"
    );
}

#[test]
fn zero_transfer_is_rejected() {
    let (mut chain, users) = fresh();
    let tx = users[0].sign_with_nonce(0, transfer(&users[1], 0));
    let error = expect_rejected(&mut chain, vec![tx]);
    assert!(matches!(error, TxError::ZeroAmount), "{error:?}");
}

#[test]
fn block_with_one_bad_transaction_is_rejected_whole() {
    let (mut chain, mut users) = fresh();
    let payload = transfer(&users[1], 5);
    let good = users[0].sign(payload);
    let bad = users[2].sign_with_nonce(7, transfer(&users[1], 5));
    let error = expect_rejected(&mut chain, vec![good, bad]);
    assert!(matches!(error, TxError::NonceSkipped { .. }), "{error:?}");
    assert_eq!(
        query::balance(chain.store(), &users[1].address).unwrap(),
        BALANCE
    );
}

#[test]
fn proposer_leaves_bad_candidates_out_and_keeps_good_ones() {
    let (mut chain, mut users) = fresh();
    let payload = transfer(&users[1], 5);
    let good = users[0].sign(payload);
    let bad = users[2].sign_with_nonce(7, transfer(&users[1], 5));
    let (block, rejected) = chain.propose_and_apply(vec![bad, good]).unwrap();
    assert_eq!(block.transactions.len(), 1);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].0, 0);
    assert_eq!(
        query::balance(chain.store(), &users[1].address).unwrap(),
        BALANCE + 5
    );
}

#[test]
fn a_task_takes_at_most_1024_members_of_which_64_validators() {
    use cairn_ledger::encoding::{MAX_TASK_MEMBERS, MAX_TASK_VALIDATORS};
    assert_eq!((MAX_TASK_MEMBERS, MAX_TASK_VALIDATORS), (1024, 64));
    // users[0] creates the task; users[1..=1025] bond and try to join.
    let count = u16::try_from(MAX_TASK_MEMBERS + 2).unwrap();
    let mut users: Vec<User> = (0..count).map(User::numbered).collect();
    let weights: Vec<(usize, u128)> = (1..=MAX_TASK_VALIDATORS + 1).map(|u| (u, 200)).collect();
    let mut chain = chain(&genesis_with_validators(
        &users,
        &weights,
        Params::default(),
    ));
    let mut block = vec![users[0].sign(Payload::CreateTask {
        spec: spec(1, (3, 3, 3), 10_000),
    })];
    block.extend(
        users[1..]
            .iter_mut()
            .map(|u| u.sign(Payload::Bond { amount: 500 })),
    );
    commit(&mut chain, block);
    let join = |role| Payload::JoinTask {
        task: 0,
        role,
        bond: 200,
    };

    let validators: Vec<_> = users[1..=MAX_TASK_VALIDATORS]
        .iter_mut()
        .map(|u| u.sign(join(Role::Validator)))
        .collect();
    commit(&mut chain, validators);
    // A refused join (signed with the user's current nonce, which it does not advance) is `Full`.
    let refused = |chain: &mut Chain<MemoryStore>, user: &User, role| {
        let error = expect_rejected(chain, vec![user.sign_with_nonce(user.nonce, join(role))]);
        assert!(
            matches!(error, TxError::Task(TaskError::Full(0))),
            "{error:?}"
        );
    };
    refused(&mut chain, &users[MAX_TASK_VALIDATORS + 1], Role::Validator);

    // The remaining places go to trainers, up to 1024 members in all.
    let trainers: Vec<_> = users[MAX_TASK_VALIDATORS + 1..=MAX_TASK_MEMBERS]
        .iter_mut()
        .map(|u| u.sign(join(Role::Trainer)))
        .collect();
    commit(&mut chain, trainers);
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.members(), MAX_TASK_MEMBERS);
    refused(&mut chain, &users[MAX_TASK_MEMBERS + 1], Role::Trainer);
}

/// The update trainer 1 commits and reveals in the verification tests, and its salt.
const UPDATE: Hash = [3; 32];
const SALT: Hash = [4; 32];

/// In a task from [`running_task_with`], trainer 1 commits at height 4 and reveals at height 7,
/// with the synthetic trace of [`UPDATE`].
fn commit_and_reveal(chain: &mut Chain<MemoryStore>, users: &mut [User]) {
    let payload = commit_update(&users[1], 0, 0, &UPDATE, &SALT);
    commit(chain, vec![users[1].sign(payload)]);
    advance_to(chain, 6);
    commit(
        chain,
        vec![users[1].sign(reveal_update(0, 0, &UPDATE, &SALT))],
    );
    assert_eq!(chain.tip().height, 7);
}

/// A challenge of `trainer`'s round-0 update in task 0 claiming `trace_root`, signed by
/// `challenger` with its current nonce (which a rejection does not advance).
fn challenge(challenger: &User, trainer: &User, trace_root: Hash) -> SignedTransaction {
    challenger.sign_with_nonce(
        challenger.nonce,
        Payload::Challenge {
            task: 0,
            round: 0,
            trainer: trainer.address,
            trace_root,
        },
    )
}

/// A running task (see [`running_task`]) in which validator 2 opened dispute 0 over trainer 1's
/// revealed update at height 13.
fn open_dispute() -> (Chain<MemoryStore>, Vec<User>) {
    let (mut chain, mut users) = running_task();
    commit_and_reveal(&mut chain, &mut users);
    advance_to(&mut chain, 12);
    let payload = Payload::Challenge {
        task: 0,
        round: 0,
        trainer: users[1].address,
        trace_root: [0xcc; 32],
    };
    let opened = users[2].sign(payload);
    commit(&mut chain, vec![opened]);
    assert_eq!(chain.tip().height, 13);
    (chain, users)
}

fn is_round_error(error: &TxError, expected: RoundError) -> bool {
    matches!(error, TxError::Round(e) if *e == expected)
}

fn is_dispute_error(error: &TxError, expected: DisputeError) -> bool {
    matches!(error, TxError::Dispute(e) if *e == expected)
}

fn is_audit_error(error: &TxError, expected: AuditError) -> bool {
    matches!(error, TxError::Audit(e) if *e == expected)
}

fn is_task_error(error: &TxError, expected: TaskError) -> bool {
    matches!(error, TxError::Task(e) if *e == expected)
}

#[test]
fn reveal_whose_proof_does_not_open_the_committed_trace_is_rejected() {
    let (mut chain, mut users) = running_task();
    let payload = commit_update(&users[1], 0, 0, &UPDATE, &SALT);
    commit(&mut chain, vec![users[1].sign(payload)]);
    advance_to(&mut chain, 6);
    let trace = synthetic_trace(&UPDATE);

    // The commitment opens, but the last checkpoint is not the committed trace's last leaf ...
    let mut last = trace.last;
    last.weights[0] ^= 1;
    let wrong_checkpoint = Payload::RevealUpdate {
        task: 0,
        round: 0,
        update_hash: UPDATE,
        salt: SALT,
        last,
        proof: trace.proof.clone(),
    };
    // ... or the proof does not lead from it to the committed root.
    let mut proof = trace.proof.clone();
    proof[0][0] ^= 1;
    let wrong_proof = Payload::RevealUpdate {
        task: 0,
        round: 0,
        update_hash: UPDATE,
        salt: SALT,
        last: trace.last,
        proof,
    };
    let short_proof = Payload::RevealUpdate {
        task: 0,
        round: 0,
        update_hash: UPDATE,
        salt: SALT,
        last: trace.last,
        proof: trace.proof[1..].to_vec(),
    };
    for reveal in [wrong_checkpoint, wrong_proof, short_proof] {
        let tx = users[1].sign_with_nonce(users[1].nonce, reveal);
        let error = expect_rejected(&mut chain, vec![tx]);
        assert!(
            is_round_error(&error, RoundError::BadTraceProof),
            "{error:?}"
        );
    }
    // The genuine opening is accepted.
    commit(
        &mut chain,
        vec![users[1].sign(reveal_update(0, 0, &UPDATE, &SALT))],
    );
}

#[test]
fn audit_report_by_anyone_not_drawn_to_audit_is_rejected() {
    // Every available update is audited; the task's only validator (2) holds trainer 1's update
    // and is its auditor.
    let mut spec = spec(1, (3, 3, 3), 10_000);
    spec.verification.audit_ppm = 1_000_000;
    let (mut chain, mut users) = running_task_with(spec, 200);
    commit_and_reveal(&mut chain, &mut users);
    advance_to(&mut chain, 9);
    let trainer = users[1].address;
    let vote = users[2].sign(vote_availability(0, 0, [trainer]));
    commit(&mut chain, vec![vote]);
    advance_to(&mut chain, 12);
    let report = Payload::ReportAudit {
        task: 0,
        round: 0,
        trainer: users[1].address,
    };
    // The draw runs at the start of block 13, before its transactions.
    for outsider in [0, 1, 3] {
        let user = &users[outsider];
        let error = expect_rejected(
            &mut chain,
            vec![user.sign_with_nonce(user.nonce, report.clone())],
        );
        let expected = AuditError::NotAuditor {
            auditor: user.address,
            trainer: users[1].address,
        };
        assert!(is_audit_error(&error, expected), "{error:?}");
    }
    commit(&mut chain, vec![users[2].sign(report)]);
}

#[test]
fn audit_report_before_the_audits_are_drawn_is_rejected() {
    let mut spec = spec(1, (3, 3, 3), 10_000);
    spec.verification.audit_ppm = 1_000_000;
    let (mut chain, mut users) = running_task_with(spec, 200);
    commit_and_reveal(&mut chain, &mut users);
    // Height 8: the reveal window is still open, so no audit seed exists yet.
    let trainer = users[1].address;
    let report = users[2].sign(Payload::ReportAudit {
        task: 0,
        round: 0,
        trainer,
    });
    let error = expect_rejected(&mut chain, vec![report]);
    assert!(is_audit_error(&error, AuditError::NotDrawn), "{error:?}");
}

#[test]
fn challenge_by_a_member_who_is_not_a_validator_of_the_task_is_rejected() {
    let (mut chain, mut users) = running_task();
    commit_and_reveal(&mut chain, &mut users);
    commit(
        &mut chain,
        vec![users[3].sign(Payload::Bond { amount: 500 })],
    );
    advance_to(&mut chain, 12);
    // Neither an outsider with stake, nor the task's creator, nor the trainer itself.
    for who in [3, 0, 1] {
        let error = expect_rejected(&mut chain, vec![challenge(&users[who], &users[1], [9; 32])]);
        assert!(
            is_dispute_error(&error, DisputeError::NotValidator(users[who].address)),
            "{error:?}"
        );
    }
}

#[test]
fn challenge_of_a_trainer_that_did_not_reveal_is_rejected() {
    let (mut chain, mut users) = running_task();
    // Trainer 1 commits and never reveals; user 3 never even joined.
    let payload = commit_update(&users[1], 0, 0, &UPDATE, &SALT);
    commit(&mut chain, vec![users[1].sign(payload)]);
    advance_to(&mut chain, 12);
    for trainer in [1, 3] {
        let error = expect_rejected(
            &mut chain,
            vec![challenge(&users[2], &users[trainer], [9; 32])],
        );
        assert!(
            is_dispute_error(&error, DisputeError::NotRevealed(users[trainer].address)),
            "{error:?}"
        );
    }
}

#[test]
fn challenge_outside_the_window_is_rejected() {
    // Two rounds, so the task still runs after round 0's window: round 0 takes challenges from
    // its audit draw (height 13) to the end of its audit window (19 + 2 = 21).
    let (mut chain, mut users) = running_task_with(spec(2, (3, 3, 3), 10_000), 200);
    commit_and_reveal(&mut chain, &mut users);
    let window = || DisputeError::Window {
        opens: 13,
        closes: 21,
    };
    // The last block of the availability window, and the first after the audit window.
    advance_to(&mut chain, 11);
    let error = expect_rejected(&mut chain, vec![challenge(&users[2], &users[1], [9; 32])]);
    assert!(is_dispute_error(&error, window()), "{error:?}");
    advance_to(&mut chain, 21);
    let error = expect_rejected(&mut chain, vec![challenge(&users[2], &users[1], [9; 32])]);
    assert!(is_dispute_error(&error, window()), "{error:?}");
    assert_eq!(
        query::task(chain.store(), 0).unwrap().unwrap().status,
        cairn_ledger::TaskStatus::Running { round: 1 }
    );
}

#[test]
fn challenge_with_the_trainers_own_trace_root_is_rejected() {
    let (mut chain, mut users) = running_task();
    commit_and_reveal(&mut chain, &mut users);
    advance_to(&mut chain, 12);
    let own = synthetic_trace(&UPDATE).root;
    let error = expect_rejected(&mut chain, vec![challenge(&users[2], &users[1], own)]);
    assert!(
        is_dispute_error(&error, DisputeError::SameTrace),
        "{error:?}"
    );
}

#[test]
fn second_challenge_of_an_update_by_the_same_validator_is_rejected() {
    let (mut chain, users) = open_dispute();
    let dispute = query::dispute(chain.store(), 0).unwrap().unwrap();
    assert_eq!(
        (dispute.trainer, dispute.challenger),
        (users[1].address, users[2].address)
    );
    let error = expect_rejected(
        &mut chain,
        vec![challenge(&users[2], &users[1], [0xdd; 32])],
    );
    assert!(
        is_dispute_error(&error, DisputeError::AlreadyChallenged(users[2].address)),
        "{error:?}"
    );
    // The refusal did not depend on the root: the same one is refused as well.
    let error = expect_rejected(
        &mut chain,
        vec![challenge(&users[2], &users[1], [0xcc; 32])],
    );
    assert!(
        is_dispute_error(&error, DisputeError::AlreadyChallenged(users[2].address)),
        "{error:?}"
    );
}

#[test]
fn challenge_without_free_stake_for_the_bond_is_rejected() {
    // The validator locks its weight of 500 in the task and unbonds the 500 it bonded besides:
    // nothing is free for the bond of 50.
    let (mut chain, mut users) = running_task_with(spec(1, (3, 3, 3), 10_000), 500);
    commit_and_reveal(&mut chain, &mut users);
    let unbond = users[2].sign(Payload::Unbond { amount: 500 });
    commit(&mut chain, vec![unbond]);
    advance_to(&mut chain, 12);
    let error = expect_rejected(&mut chain, vec![challenge(&users[2], &users[1], [9; 32])]);
    assert!(
        matches!(
            error,
            TxError::Staking(StakingError::InsufficientFreeStake {
                needed: CHALLENGE_BOND,
                available: 0
            })
        ),
        "{error:?}"
    );
}

#[test]
fn dispute_moves_on_an_unknown_dispute_are_rejected() {
    let (mut chain, users) = open_dispute();
    let moves = [
        Payload::DisputeClaim {
            dispute: 7,
            checkpoint: [1; 32],
            proof: Vec::new(),
        },
        Payload::DisputeAnswer {
            dispute: 7,
            agree: true,
        },
        Payload::DisputeWitness {
            dispute: 7,
            offset: 0,
            bytes: vec![1, 2, 3],
        },
    ];
    for payload in moves {
        for who in [1, 2] {
            let user = &users[who];
            let tx = user.sign_with_nonce(user.nonce, payload.clone());
            let error = expect_rejected(&mut chain, vec![tx]);
            assert!(
                is_dispute_error(&error, DisputeError::Unknown(7)),
                "{error:?}"
            );
        }
    }
}

#[test]
fn dispute_moves_by_the_wrong_party_are_rejected() {
    let (mut chain, users) = open_dispute();
    // Trace leaves every 5 of 20 steps: the trainer must first claim its checkpoint at step 10.
    let dispute = query::dispute(chain.store(), 0).unwrap().unwrap();
    assert_eq!(dispute.stage, Stage::Claim { step: 10 });
    let claim = Payload::DisputeClaim {
        dispute: 0,
        checkpoint: [1; 32],
        proof: Vec::new(),
    };
    let answer = Payload::DisputeAnswer {
        dispute: 0,
        agree: false,
    };
    let witness = Payload::DisputeWitness {
        dispute: 0,
        offset: 0,
        bytes: vec![1],
    };
    // The challenger cannot claim or post the witness; the trainer cannot answer (nor can it
    // answer its own claim later); an outsider cannot move at all.
    let wrong = [
        (2, claim.clone()),
        (2, witness.clone()),
        (1, answer.clone()),
        (3, claim),
        (3, answer),
        (0, witness),
    ];
    for (who, payload) in wrong {
        let user = &users[who];
        let tx = user.sign_with_nonce(user.nonce, payload);
        let error = expect_rejected(&mut chain, vec![tx]);
        assert!(
            is_dispute_error(&error, DisputeError::NotYourMove(user.address)),
            "{error:?}"
        );
    }
    assert_eq!(query::dispute(chain.store(), 0).unwrap().unwrap(), dispute);
}

#[test]
fn task_on_a_dataset_the_chain_does_not_serve_is_rejected() {
    // The node holds the dataset, but the chain's genesis does not list it.
    let users = users(1);
    let mut genesis = genesis(&users, Params::default());
    genesis.datasets.clear();
    let mut chain = chain(&genesis);
    let tx = users[0].sign_with_nonce(
        0,
        Payload::CreateTask {
            spec: spec(1, (3, 3, 3), 10_000),
        },
    );
    let error = expect_rejected(&mut chain, vec![tx]);
    assert!(
        is_task_error(&error, TaskError::DatasetNotServed(to_hex(&dataset()))),
        "{error:?}"
    );
}

#[test]
fn task_whose_model_does_not_parse_is_rejected() {
    let (mut chain, users) = fresh();
    let bad_specs = [
        TaskSpec {
            model: "transformer:9000".into(),
            ..spec(1, (3, 3, 3), 10_000)
        },
        // A model whose input does not fit the dataset's 4 features.
        TaskSpec {
            model: "logistic:5-2".into(),
            ..spec(1, (3, 3, 3), 10_000)
        },
        TaskSpec {
            optimizer: "sgd:lr=banana".into(),
            ..spec(1, (3, 3, 3), 10_000)
        },
    ];
    for spec in bad_specs {
        let tx = users[0].sign_with_nonce(0, Payload::CreateTask { spec });
        let error = expect_rejected(&mut chain, vec![tx]);
        assert!(
            matches!(error, TxError::Task(TaskError::InvalidPlan(_))),
            "{error:?}"
        );
    }
}

#[test]
fn task_with_a_wrong_initial_model_is_rejected() {
    let (mut chain, users) = fresh();
    let sealed = spec(1, (3, 3, 3), 10_000);
    let mut spec = sealed.clone();
    spec.initial_model[0] ^= 1;
    let tx = users[0].sign_with_nonce(0, Payload::CreateTask { spec: spec.clone() });
    let error = expect_rejected(&mut chain, vec![tx]);
    let expected = TaskError::InitialModelMismatch {
        expected: to_hex(&sealed.initial_model),
        got: to_hex(&spec.initial_model),
    };
    assert!(is_task_error(&error, expected), "{error:?}");
    // The sealed spec is accepted.
    commit(
        &mut chain,
        vec![users[0].sign_with_nonce(0, Payload::CreateTask { spec: sealed })],
    );
}

#[test]
fn a_trainer_bond_below_the_tasks_trainer_minimum_is_rejected_and_a_validator_may_lock_less() {
    let (mut chain, mut users) = fresh_with(MIN_TRAINER_BOND - 1);
    let block1 = vec![
        users[1].sign(Payload::Bond { amount: 500 }),
        users[2].sign(Payload::Bond { amount: 500 }),
        users[0].sign(Payload::CreateTask {
            spec: spec(1, (3, 3, 3), 10_000),
        }),
    ];
    commit(&mut chain, block1);
    // Above the task's min_stake (100), below its trainer minimum (200): the bond a Sybil
    // identity would like to lock.
    let join = users[1].sign(Payload::JoinTask {
        task: 0,
        role: Role::Trainer,
        bond: MIN_TRAINER_BOND - 1,
    });
    let error = expect_rejected(&mut chain, vec![join]);
    assert!(
        matches!(
            error,
            TxError::Task(TaskError::BondTooSmall { bond, minimum })
                if bond == MIN_TRAINER_BOND - 1 && minimum == MIN_TRAINER_BOND
        ),
        "{error:?}"
    );
    let validator = users[2].sign(Payload::JoinTask {
        task: 0,
        role: Role::Validator,
        bond: MIN_TRAINER_BOND - 1,
    });
    commit(&mut chain, vec![validator]);
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.validators[&users[2].address], MIN_TRAINER_BOND - 1);
    assert!(task.trainers.is_empty());
}
