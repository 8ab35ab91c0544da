//! Every kind of bad transaction is rejected with its typed error, and the state root (and
//! height) stay exactly where they were: a block with a bad transaction is rejected whole.

mod common;

use cairn_ledger::lifecycle::TaskError;
use cairn_ledger::participation::RoundError;
use cairn_ledger::staking::StakingError;
use cairn_ledger::store::MemoryStore;
use cairn_ledger::transaction::{update_commitment, CommitmentScope};
use cairn_ledger::{query, Chain, Params, Payload, Phase, Role, SignedTransaction, TxError};
use common::*;

fn fresh() -> (Chain<MemoryStore>, Vec<User>) {
    let users = users(4);
    let chain = chain(&genesis(&users, Params::default()));
    (chain, users)
}

/// Creator (0), trainer (1) and validator (2) with a started one-round task 0 whose round opens
/// at height 3 with windows of 3 blocks each.
fn running_task() -> (Chain<MemoryStore>, Vec<User>) {
    let (mut chain, mut users) = fresh();
    let block1 = vec![
        users[1].sign(Payload::Bond { amount: 500 }),
        users[2].sign(Payload::Bond { amount: 500 }),
        users[0].sign(Payload::CreateTask {
            spec: spec(1, (3, 3, 3), 10_000),
        }),
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
            bond: 200,
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
    let commitment = update_commitment(&round_zero_scope(&users[1]), &[3; 32], &[4; 32]);
    let payload = Payload::CommitUpdate {
        task: 0,
        round: 0,
        commitment,
        trace_root: [2; 32],
    };
    commit(&mut chain, vec![users[1].sign(payload)]);
    advance_to(&mut chain, 6);
    let reveal = users[1].sign(Payload::RevealUpdate {
        task: 0,
        round: 0,
        update_hash: [3; 32],
        salt: [9; 32],
    });
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
    let commitment = update_commitment(&round_zero_scope(&users[1]), &update_hash, &salt);
    let commit_payload = Payload::CommitUpdate {
        task: 0,
        round: 0,
        commitment,
        trace_root: [2; 32],
    };
    let honest = users[1].sign(commit_payload.clone());
    let copied = users[3].sign(commit_payload);
    commit(&mut chain, vec![honest, copied]);
    advance_to(&mut chain, 6);
    let reveal = Payload::RevealUpdate {
        task: 0,
        round: 0,
        update_hash,
        salt,
    };
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
    let mut chain = chain(&genesis(&users, Params::default()));
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
