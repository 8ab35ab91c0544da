//! Task capture fails: only consensus validators validate tasks, each with exactly its consensus
//! weight as bond; a task starts only once validators holding 2/3 of consensus weight joined; so
//! a coalition below 1/3 of consensus weight can neither join alone, nor buy weight, nor
//! finalize its own model hash, nor pay its friends, and each attempt (another model hash, or
//! scores other than the honest majority's) costs it a tenth of its bond. Bonds below the
//! chain's minimum are refused, slashes round up, and a validator that commits an attestation and
//! never reveals it is slashed like a trainer that hides its update.

mod common;

use std::collections::BTreeMap;

use cairn_ledger::lifecycle::TaskError;
use cairn_ledger::store::MemoryStore;
use cairn_ledger::transaction::attestation_commitment;
use cairn_ledger::{query, Address, Chain, Outcome, Params, Payload, Role, TxError};
use common::*;

/// Users: 0 creator, 1..=2 trainers (2 is the coalition's friend), 3..=5 honest validators of
/// weight 1 000 each, 6 the coalition's validator of weight 1 400 (just under 1/3 of 4 400), 7
/// an outsider with a large balance and no consensus weight.
const HONEST_WEIGHT: u128 = 1_000;
const COALITION_WEIGHT: u128 = 1_400;
const REWARD: u128 = 100_000;

fn network() -> (Chain<MemoryStore>, Vec<User>) {
    let mut users = users(8);
    let weights = [
        (3, HONEST_WEIGHT),
        (4, HONEST_WEIGHT),
        (5, HONEST_WEIGHT),
        (6, COALITION_WEIGHT),
    ];
    let mut chain = chain(&genesis_with_validators(
        &users,
        &weights,
        Params::default(),
    ));
    let mut block = vec![users[0].sign(Payload::CreateTask {
        spec: spec(1, (2, 2, 2), REWARD),
    })];
    for user in users.iter_mut().skip(1) {
        block.push(user.sign(Payload::Bond { amount: 50_000 }));
    }
    commit(&mut chain, block);
    (chain, users)
}

fn join(user: &mut User, role: Role, bond: u128) -> cairn_ledger::SignedTransaction {
    user.sign(Payload::JoinTask {
        task: 0,
        role,
        bond,
    })
}

fn task_error(error: &TxError) -> &TaskError {
    match error {
        TxError::Task(error) => error,
        other => panic!("expected a task error, got {other:?}"),
    }
}

#[test]
fn an_outsider_cannot_buy_its_way_into_validating_a_task() {
    let (mut chain, mut users) = network();
    // 50 000 bonded, 35x an honest validator's weight: not consensus weight, so no place.
    let bid = join(&mut users[7], Role::Validator, 50_000);
    let error = expect_rejected(&mut chain, vec![bid]);
    assert_eq!(
        task_error(&error),
        &TaskError::NotConsensusValidator(users[7].address)
    );
    // A consensus validator cannot add bought stake to its weight, nor understate its bond.
    for bond in [COALITION_WEIGHT + 40_000, COALITION_WEIGHT - 1] {
        let tx = users[6].sign_with_nonce(
            users[6].nonce,
            Payload::JoinTask {
                task: 0,
                role: Role::Validator,
                bond,
            },
        );
        let error = expect_rejected(&mut chain, vec![tx]);
        assert_eq!(
            task_error(&error),
            &TaskError::BondNotConsensusWeight {
                bond,
                weight: COALITION_WEIGHT
            }
        );
    }
}

#[test]
fn a_task_starts_only_once_two_thirds_of_consensus_weight_joined() {
    let (mut chain, mut users) = network();
    let joins = vec![
        join(&mut users[1], Role::Trainer, 1_000),
        join(&mut users[2], Role::Trainer, 1_000),
        join(&mut users[6], Role::Validator, COALITION_WEIGHT),
        join(&mut users[3], Role::Validator, HONEST_WEIGHT),
    ];
    commit(&mut chain, joins);
    // The coalition and one honest validator: 2 400 of 4 400, not 2/3.
    let start = users[0].sign_with_nonce(users[0].nonce, Payload::StartTask { task: 0 });
    let error = expect_rejected(&mut chain, vec![start]);
    assert_eq!(
        task_error(&error),
        &TaskError::ValidatorQuorum {
            task: 0,
            joined: 2_400,
            total: 4_400
        }
    );
    commit(
        &mut chain,
        vec![join(&mut users[4], Role::Validator, HONEST_WEIGHT)],
    );
    commit(
        &mut chain,
        vec![users[0].sign(Payload::StartTask { task: 0 })],
    );
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.validator_stake(), 3_400);
}

#[test]
fn bonds_below_the_chain_minimum_are_refused_whatever_the_task_allows() {
    let mut users = users(2);
    let params = Params {
        min_bond: 500,
        ..Params::default()
    };
    let mut chain = chain(&genesis(&users, params));
    // The fixture task asks trainers for 200: the chain's 500 wins.
    let block = vec![
        users[0].sign(Payload::CreateTask {
            spec: spec(1, (2, 2, 2), REWARD),
        }),
        users[1].sign(Payload::Bond { amount: 5_000 }),
    ];
    commit(&mut chain, block);
    let error = expect_rejected(&mut chain, vec![join(&mut users[1], Role::Trainer, 499)]);
    assert_eq!(
        task_error(&error),
        &TaskError::BondTooSmall {
            bond: 499,
            minimum: 500
        }
    );
    // A genesis validator below the minimum is refused too.
    let mut genesis = genesis(&users, params_with_min(500));
    genesis.validators.insert(Address([0xab; 20]), 499);
    assert!(genesis.validate().is_err());
}

fn params_with_min(min_bond: u128) -> Params {
    Params {
        min_bond,
        ..Params::default()
    }
}

/// Runs one round with the coalition validating: both trainers commit, trainer 1 reveals, and
/// trainer 2 reveals only if `friend_reveals`; every validator, the coalition's too, votes that
/// it holds every revealed update (so the coalition is refused rewards for what it attests, not
/// for skipping its vote); honest validators attest `[0xaa; 32]` scoring
/// trainer 1 at 800 000 and the friend at 0; the coalition attests `coalition_model` scoring its
/// friend 1 000 000, or commits and never reveals when `coalition_reveals` is false.
fn captured_round(
    friend_reveals: bool,
    coalition_model: [u8; 32],
    coalition_reveals: bool,
) -> (Chain<MemoryStore>, Vec<User>) {
    let (mut chain, mut users) = network();
    let joins = vec![
        join(&mut users[1], Role::Trainer, 1_000),
        join(&mut users[2], Role::Trainer, 1_001),
        join(&mut users[3], Role::Validator, HONEST_WEIGHT),
        join(&mut users[4], Role::Validator, HONEST_WEIGHT),
        join(&mut users[5], Role::Validator, HONEST_WEIGHT),
        join(&mut users[6], Role::Validator, COALITION_WEIGHT),
    ];
    commit(&mut chain, joins);
    commit(
        &mut chain,
        vec![users[0].sign(Payload::StartTask { task: 0 })],
    );
    let opened = chain.tip().height;
    let salt = [7; 32];
    let commits = (1..=2)
        .map(|t| {
            let payload = commit_update(&users[t], 0, 0, &[t as u8; 32], &salt);
            users[t].sign(payload)
        })
        .collect();
    commit(&mut chain, commits);
    advance_to(&mut chain, opened + 2);
    let revealing = if friend_reveals { 2 } else { 1 };
    let reveals = (1..=revealing)
        .map(|t| users[t].sign(reveal_update(0, 0, &[t as u8; 32], &salt)))
        .collect();
    commit(&mut chain, reveals);
    advance_to(&mut chain, opened + 4);
    let (trainer, friend) = (users[1].address, users[2].address);
    let held: Vec<Address> = [trainer, friend][..revealing].to_vec();
    let votes = (3..=6)
        .map(|v| users[v].sign(vote_availability(0, 0, held.iter().copied())))
        .collect();
    commit(&mut chain, votes);
    advance_to(&mut chain, opened + 6);
    let mut honest = BTreeMap::from([(trainer, 800_000)]);
    let mut friendly = BTreeMap::from([(trainer, 0)]);
    if friend_reveals {
        honest.insert(friend, 0);
        friendly.insert(friend, 1_000_000);
    }
    let attestations: Vec<(usize, [u8; 32], &BTreeMap<Address, u32>)> = vec![
        (3, [0xaa; 32], &honest),
        (4, [0xaa; 32], &honest),
        (5, [0xaa; 32], &honest),
        (6, coalition_model, &friendly),
    ];
    let attest_commits = attestations
        .iter()
        .map(|(v, model, scores)| {
            let commitment = attestation_commitment(&users[*v].scope(0, 0), model, scores, &salt);
            users[*v].sign(Payload::CommitAttestation {
                task: 0,
                round: 0,
                commitment,
            })
        })
        .collect();
    commit(&mut chain, attest_commits);
    advance_to(&mut chain, opened + 8);
    let attest_reveals = attestations
        .iter()
        .filter(|(v, _, _)| *v != 6 || coalition_reveals)
        .map(|(v, model, scores)| {
            users[*v].sign(Payload::RevealAttestation {
                task: 0,
                round: 0,
                model_hash: *model,
                scores: (*scores).clone(),
                salt,
            })
        })
        .collect();
    commit(&mut chain, attest_reveals);
    advance_to(&mut chain, opened + 11);
    (chain, users)
}

fn outcome(chain: &Chain<MemoryStore>) -> Outcome {
    query::round(chain.store(), 0, 0)
        .unwrap()
        .unwrap()
        .outcome
        .expect("the round closed")
}

#[test]
fn a_coalition_below_a_third_cannot_finalize_its_model_or_pay_its_friend() {
    let (chain, users) = captured_round(true, [0xcc; 32], true);
    let Outcome::Finalized {
        model_hash,
        scores,
        trainer_rewards,
        validator_rewards,
        slashed,
    } = outcome(&chain)
    else {
        panic!("the honest 3 000 of 4 400 finalize");
    };
    assert_eq!(model_hash, [0xaa; 32]);
    assert_eq!(scores[&users[2].address], 0);
    assert!(!trainer_rewards.contains_key(&users[2].address));
    assert!(!validator_rewards.contains_key(&users[6].address));
    // Its model hash is not the finalized one: provably wrong, a tenth of its bond burned. The
    // honest validators keep theirs.
    assert_eq!(
        slashed,
        BTreeMap::from([(users[6].address, COALITION_SLASH)])
    );
    assert_coalition_slashed(&chain, &users);

    // Attesting the honest model, its scores are clipped to within 10% of the median and weigh
    // 1 400 of 4 400: the friend still gets nothing.
    let (chain, users) = captured_round(true, [0xaa; 32], true);
    let Outcome::Finalized {
        scores,
        trainer_rewards,
        validator_rewards,
        slashed,
        ..
    } = outcome(&chain)
    else {
        panic!("finalizes");
    };
    assert_eq!(scores[&users[2].address], 0);
    assert_eq!(scores[&users[1].address], 800_000);
    assert!(!trainer_rewards.contains_key(&users[2].address));
    // Its scores differ from those the honest 3 000 of 4 400 (more than half) gave: it earns
    // nothing, the honest validators all of the validator pool, and it is slashed as for a
    // wrong model hash.
    assert!(!validator_rewards.contains_key(&users[6].address));
    for honest in 3..=5 {
        assert!(validator_rewards[&users[honest].address] > 0);
    }
    assert_eq!(
        slashed,
        BTreeMap::from([(users[6].address, COALITION_SLASH)])
    );
    assert_coalition_slashed(&chain, &users);
}

/// A tenth of the coalition's bond (1 400).
const COALITION_SLASH: u128 = 140;

/// Asserts that only the coalition lost bond (its task bond and its stake), and that the slash
/// left the supply.
fn assert_coalition_slashed(chain: &Chain<MemoryStore>, users: &[User]) {
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(
        task.validators[&users[6].address],
        COALITION_WEIGHT - COALITION_SLASH
    );
    for honest in &users[3..=5] {
        assert_eq!(task.validators[&honest.address], HONEST_WEIGHT);
    }
    // Genesis weight plus the 50 000 bonded in `network`.
    let stake = query::stake(chain.store(), &users[6].address).unwrap();
    assert_eq!(stake.bonded, COALITION_WEIGHT + 50_000 - COALITION_SLASH);
    let snapshot = query::Snapshot::read(chain.store()).unwrap();
    assert_eq!(snapshot.holdings(), Some(snapshot.supply));
    let genesis_supply = 8 * BALANCE + 3 * HONEST_WEIGHT + COALITION_WEIGHT;
    assert_eq!(snapshot.supply, genesis_supply - COALITION_SLASH);
}

#[test]
fn a_validator_that_hides_its_attestation_is_slashed_a_rounded_up_tenth() {
    let (chain, users) = captured_round(false, [0xaa; 32], false);
    let Outcome::Finalized { slashed, .. } = outcome(&chain) else {
        panic!("the honest validators finalize");
    };
    // The friend's hidden update (bond 1 001) and the validator's hidden attestation (1 400):
    // a tenth each, rounded up.
    assert_eq!(
        slashed,
        BTreeMap::from([(users[2].address, 101), (users[6].address, 140)])
    );
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.validators[&users[6].address], COALITION_WEIGHT - 140);
}
