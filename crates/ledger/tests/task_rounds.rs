//! Tasks end to end: a round that finalizes and pays, a round that times out, slashing of
//! unrevealed commits, cancellation refunds, unbonding delay, dataset escrow, durable replay.

mod common;

use std::collections::BTreeMap;

use cairn_ledger::query::{self, Snapshot};
use cairn_ledger::state::keys;
use cairn_ledger::store::{MemoryStore, Store};
use cairn_ledger::transaction::{attestation_commitment, update_commitment};
use cairn_ledger::{Address, Chain, Outcome, Params, Payload, Role, TaskStatus};
use common::*;

const REWARD: u128 = 10_000;
const BOND: u128 = 300;

/// Users: 0 creator, 1..=3 trainers, 4..=6 validators. Task 0 of `rounds` rounds with 2-block
/// windows is started at height 3, so round r opens at 3 + 9r.
fn started(rounds: u32) -> (Chain<MemoryStore>, Vec<User>) {
    let mut users = users(7);
    let mut chain = chain(&genesis(&users, Params::default()));
    let mut block = Vec::new();
    for user in users.iter_mut().skip(1) {
        block.push(user.sign(Payload::Bond { amount: 1_000 }));
    }
    block.push(users[0].sign(Payload::CreateTask {
        spec: spec(rounds, (2, 2, 2), REWARD),
    }));
    commit(&mut chain, block);
    let mut joins = Vec::new();
    for (index, user) in users.iter_mut().enumerate().skip(1) {
        let role = if index <= 3 {
            Role::Trainer
        } else {
            Role::Validator
        };
        joins.push(user.sign(Payload::JoinTask {
            task: 0,
            role,
            bond: BOND,
        }));
    }
    commit(&mut chain, joins);
    let start = users[0].sign(Payload::StartTask { task: 0 });
    commit(&mut chain, vec![start]);
    (chain, users)
}

fn update_hash(trainer: usize) -> [u8; 32] {
    [trainer as u8; 32]
}

/// Plays round `round` (opened at `opened`): trainers 1 and 2 commit and reveal, trainer 3 only
/// commits; validators reveal the given model hashes and scores.
fn play_round(
    chain: &mut Chain<MemoryStore>,
    users: &mut [User],
    round: u32,
    opened: u64,
    attestations: &[([u8; 32], BTreeMap<Address, u32>)],
) {
    let salt = [0x5a; 32];
    let commits = (1..=3)
        .map(|t| {
            users[t].sign(Payload::CommitUpdate {
                task: 0,
                round,
                commitment: update_commitment(&users[t].scope(0, round), &update_hash(t), &salt),
                trace_root: [t as u8 + 100; 32],
            })
        })
        .collect();
    commit(chain, commits);
    advance_to(chain, opened + 2);
    let reveals = (1..=2)
        .map(|t| {
            users[t].sign(Payload::RevealUpdate {
                task: 0,
                round,
                update_hash: update_hash(t),
                salt,
            })
        })
        .collect();
    commit(chain, reveals);
    advance_to(chain, opened + 4);
    let attest_commits = attestations
        .iter()
        .enumerate()
        .map(|(i, (model, scores))| {
            users[4 + i].sign(Payload::CommitAttestation {
                task: 0,
                round,
                commitment: attestation_commitment(
                    &users[4 + i].scope(0, round),
                    model,
                    scores,
                    &salt,
                ),
            })
        })
        .collect();
    commit(chain, attest_commits);
    advance_to(chain, opened + 6);
    let attest_reveals = attestations
        .iter()
        .enumerate()
        .map(|(i, (model, scores))| {
            users[4 + i].sign(Payload::RevealAttestation {
                task: 0,
                round,
                model_hash: *model,
                scores: scores.clone(),
                salt,
            })
        })
        .collect();
    commit(chain, attest_reveals);
    advance_to(chain, opened + 9);
}

fn scores(users: &[User], first: u32, second: u32) -> BTreeMap<Address, u32> {
    BTreeMap::from([(users[1].address, first), (users[2].address, second)])
}

#[test]
fn round_with_two_thirds_agreement_finalizes_pays_slashes_and_refunds() {
    let (mut chain, mut users) = started(1);
    let supply_before = query::supply(chain.store()).unwrap();
    let agreed = [0xaa; 32];
    let attestations = [
        (agreed, scores(&users, 600_000, 400_000)),
        (agreed, scores(&users, 600_000, 400_000)),
        ([0xbb; 32], scores(&users, 0, 1_000_000)),
    ];
    play_round(&mut chain, &mut users, 0, 3, &attestations);

    let store = chain.store();
    let round = query::round(store, 0, 0).unwrap().unwrap();
    let Some(Outcome::Finalized {
        model_hash,
        trainer_rewards,
        validator_rewards,
        slashed,
        ..
    }) = round.outcome
    else {
        panic!("round did not finalize: {:?}", round.outcome);
    };
    assert_eq!(model_hash, agreed);
    assert!(trainer_rewards[&users[1].address] > trainer_rewards[&users[2].address]);
    assert!(!trainer_rewards.contains_key(&users[3].address));
    assert!(validator_rewards.contains_key(&users[4].address));
    assert!(!validator_rewards.contains_key(&users[6].address));
    let slash = BOND / 10;
    assert_eq!(slashed, BTreeMap::from([(users[3].address, slash)]));

    // The slash was burned; everything else is accounted for.
    let snapshot = Snapshot::read(store).unwrap();
    assert_eq!(snapshot.supply, supply_before - slash);
    assert_eq!(snapshot.holdings(), Some(snapshot.supply));

    // Task finished: unspent escrow back to the creator, bonds unlocked.
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Finished);
    assert_eq!(task.escrow, 0);
    let paid: u128 = trainer_rewards
        .values()
        .chain(validator_rewards.values())
        .sum();
    assert_eq!(
        query::balance(store, &users[0].address).unwrap(),
        BALANCE - paid
    );
    assert_eq!(query::stake(store, &users[1].address).unwrap().locked, 0);
    assert_eq!(
        query::stake(store, &users[3].address).unwrap().bonded,
        1_000 - slash
    );
    assert_eq!(
        query::rewards(store, &users[1].address).unwrap(),
        trainer_rewards[&users[1].address]
    );

    // A light client can check the model hash against the state root.
    let key = keys::model(0, 0);
    let proof = store.prove(&key).unwrap();
    proof.verify(&store.root(), &key, Some(&agreed)).unwrap();
    assert!(proof
        .verify(&store.root(), &key, Some(&[0xbb; 32]))
        .is_err());
}

#[test]
fn round_without_agreement_times_out_and_pays_nobody() {
    let (mut chain, mut users) = started(2);
    let attestations = [
        ([1; 32], scores(&users, 500_000, 500_000)),
        ([2; 32], scores(&users, 500_000, 500_000)),
        ([3; 32], scores(&users, 500_000, 500_000)),
    ];
    play_round(&mut chain, &mut users, 0, 3, &attestations);
    let store = chain.store();
    let round = query::round(store, 0, 0).unwrap().unwrap();
    assert!(matches!(round.outcome, Some(Outcome::TimedOut { .. })));
    assert_eq!(query::rewards(store, &users[1].address).unwrap(), 0);
    assert_eq!(query::model_hash(store, 0, 0).unwrap(), None);
    // Round 1 opened from the unchanged initial model; escrow untouched.
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Running { round: 1 });
    assert_eq!(task.escrow, 2 * REWARD);
    let next = query::round(store, 0, 1).unwrap().unwrap();
    assert_eq!(next.model_hash, [7; 32]);
    assert_ne!(next.seed, round.seed);

    // Round 1 also times out: the task finishes and the whole budget returns.
    play_round(&mut chain, &mut users, 1, 12, &attestations);
    let store = chain.store();
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Finished);
    assert_eq!(query::balance(store, &users[0].address).unwrap(), BALANCE);
}

#[test]
fn cancelled_task_refunds_escrow_and_unlocks_bonds() {
    let mut users = users(2);
    let mut chain = chain(&genesis(&users, Params::default()));
    let block = vec![
        users[1].sign(Payload::Bond { amount: 500 }),
        users[0].sign(Payload::CreateTask {
            spec: spec(4, (1, 1, 1), 100),
        }),
    ];
    commit(&mut chain, block);
    assert_eq!(
        query::balance(chain.store(), &users[0].address).unwrap(),
        BALANCE - 400
    );
    let join = users[1].sign(Payload::JoinTask {
        task: 0,
        role: Role::Validator,
        bond: 200,
    });
    commit(&mut chain, vec![join]);
    assert_eq!(
        query::stake(chain.store(), &users[1].address)
            .unwrap()
            .locked,
        200
    );
    let cancel = users[0].sign(Payload::CancelTask { task: 0 });
    commit(&mut chain, vec![cancel]);
    let store = chain.store();
    assert_eq!(query::balance(store, &users[0].address).unwrap(), BALANCE);
    assert_eq!(query::stake(store, &users[1].address).unwrap().locked, 0);
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Cancelled);
}

#[test]
fn unbonded_stake_returns_only_after_the_delay() {
    let mut users = users(1);
    let params = Params {
        unbond_delay: 5,
        ..Params::default()
    };
    let mut chain = chain(&genesis(&users, params));
    let bond = users[0].sign(Payload::Bond { amount: 700 });
    commit(&mut chain, vec![bond]);
    let unbond = users[0].sign(Payload::Unbond { amount: 300 });
    commit(&mut chain, vec![unbond]); // height 2: due at 7
    let address = users[0].address;
    advance_to(&mut chain, 6);
    assert_eq!(
        query::balance(chain.store(), &address).unwrap(),
        BALANCE - 700
    );
    assert_eq!(
        query::stake(chain.store(), &address).unwrap().unbonding,
        300
    );
    advance_to(&mut chain, 7);
    assert_eq!(
        query::balance(chain.store(), &address).unwrap(),
        BALANCE - 400
    );
    let stake = query::stake(chain.store(), &address).unwrap();
    assert_eq!((stake.bonded, stake.unbonding), (400, 0));
}

#[test]
fn dataset_purchase_is_escrowed_then_paid_to_the_owner() {
    let mut users = users(2);
    let params = Params {
        access_escrow_blocks: 3,
        ..Params::default()
    };
    let mut chain = chain(&genesis(&users, params));
    let list = users[0].sign(Payload::ListDataset {
        content_hash: [4; 32],
        schema: "csv: 784 x u8 pixels, label u8".into(),
        licence: "CC-BY-4.0".into(),
        price: 250,
    });
    commit(&mut chain, vec![list]);
    let buy = users[1].sign(Payload::BuyAccess { dataset: [4; 32] });
    commit(&mut chain, vec![buy]); // height 2: released at 5
    let (owner, buyer) = (users[0].address, users[1].address);
    assert_eq!(
        query::balance(chain.store(), &buyer).unwrap(),
        BALANCE - 250
    );
    assert_eq!(query::balance(chain.store(), &owner).unwrap(), BALANCE);
    let snapshot = Snapshot::read(chain.store()).unwrap();
    assert_eq!(snapshot.access_escrow, 250);
    assert_eq!(snapshot.holdings(), Some(snapshot.supply));
    advance_to(&mut chain, 5);
    assert_eq!(
        query::balance(chain.store(), &owner).unwrap(),
        BALANCE + 250
    );
    let listing = query::dataset(chain.store(), &[4; 32]).unwrap().unwrap();
    assert_eq!(listing.sales, 1);
}

#[test]
fn durable_chain_reopens_at_its_tip_and_matches_an_in_memory_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let mut users = users(3);
    let genesis = genesis(&users, Params::default());
    let mut durable = Chain::create(Store::open(&path).unwrap(), &genesis).unwrap();
    let mut blocks = Vec::new();
    for step in 0..5u128 {
        let payload = Payload::Transfer {
            to: users[2].address,
            amount: step + 1,
        };
        let (block, rejected) = durable
            .propose_and_apply(vec![
                users[0].sign(payload),
                users[1].sign(Payload::Bond { amount: 10 }),
            ])
            .unwrap();
        assert!(rejected.is_empty());
        blocks.push(block);
    }
    let root = durable.store().root();
    let tip = durable.tip().clone();
    drop(durable);

    let reopened = Chain::open(Store::open(&path).unwrap()).unwrap();
    assert_eq!(reopened.tip(), &tip);
    assert_eq!(reopened.store().root(), root);

    let mut replay = chain(&genesis);
    for block in &blocks {
        replay.apply(block).unwrap();
    }
    assert_eq!(replay.store().root(), root);
}
