//! Tasks end to end: a round that finalizes and pays, a round that times out, slashing of
//! unrevealed commits and of attestations of another model, cancellation refunds, unbonding
//! delay, dataset escrow, durable replay.

mod common;

use std::collections::BTreeMap;

use cairn_ledger::query::{self, Snapshot};
use cairn_ledger::state::keys;
use cairn_ledger::store::{MemoryStore, Store};
use cairn_ledger::transaction::attestation_commitment;
use cairn_ledger::{Address, Chain, Outcome, Params, Payload, Role, TaskStatus};
use common::*;

const REWARD: u128 = 10_000;
const BOND: u128 = 300;

/// Users: 0 creator, 1..=3 trainers, 4..=6 validators. Task 0 of `rounds` rounds with 2-block
/// windows is started at height 3, so round r opens at 3 + 11r.
fn started(rounds: u32) -> (Chain<MemoryStore>, Vec<User>) {
    let mut users = users(7);
    let mut chain = chain(&genesis_with_validators(
        &users,
        &[(4, BOND), (5, BOND), (6, BOND)],
        Params::default(),
    ));
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
/// commits; every validator votes that it holds both revealed updates; validators reveal the
/// given model hashes and scores.
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
            let payload = commit_update(&users[t], 0, round, &update_hash(t), &salt);
            users[t].sign(payload)
        })
        .collect();
    commit(chain, commits);
    advance_to(chain, opened + 2);
    let reveals = (1..=2)
        .map(|t| users[t].sign(reveal_update(0, round, &update_hash(t), &salt)))
        .collect();
    commit(chain, reveals);
    advance_to(chain, opened + 4);
    let votes = (4..=6)
        .map(|v| {
            users[v].sign(vote_availability(
                0,
                round,
                [users[1].address, users[2].address],
            ))
        })
        .collect();
    commit(chain, votes);
    advance_to(chain, opened + 6);
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
    advance_to(chain, opened + 8);
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
    advance_to(chain, opened + 11);
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
    }) = round.outcome.clone()
    else {
        panic!("round did not finalize: {:?}", round.outcome);
    };
    assert_eq!(model_hash, agreed);
    assert!(trainer_rewards[&users[1].address] > trainer_rewards[&users[2].address]);
    assert!(!trainer_rewards.contains_key(&users[3].address));
    assert!(validator_rewards.contains_key(&users[4].address));
    assert!(validator_rewards.contains_key(&users[5].address));
    assert!(!validator_rewards.contains_key(&users[6].address));
    // Trainer 3 hid its update; validator 6 revealed a model hash other than the finalized one,
    // which the round proves wrong: a tenth of the bond each. The agreeing validators keep theirs.
    let slash = BOND / 10;
    assert_eq!(
        slashed,
        BTreeMap::from([(users[3].address, slash), (users[6].address, slash)])
    );
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.validators[&users[4].address], BOND);
    assert_eq!(task.validators[&users[5].address], BOND);
    assert_eq!(task.validators[&users[6].address], BOND - slash);

    // The slashes were burned; everything else is accounted for.
    let burned = 2 * slash;
    let snapshot = Snapshot::read(store).unwrap();
    assert_eq!(snapshot.supply, supply_before - burned);
    assert_eq!(snapshot.holdings(), Some(snapshot.supply));

    // The round closed at height 14: the rewards are awarded and the task finished, but nothing
    // is paid or refunded until the 2-block audit window is over.
    let paid: u128 = trainer_rewards
        .values()
        .chain(validator_rewards.values())
        .sum();
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Finished);
    assert_eq!((task.escrow, task.pending), (REWARD, paid));
    assert_eq!(
        round.closes_at(&task.spec) + task.spec.verification.audit_window + 1,
        17
    );
    advance_to(&mut chain, 17);
    let store = chain.store();

    // Task settled: rewards paid, unspent escrow back to the creator, bonds unlocked.
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Settled);
    assert_eq!((task.escrow, task.pending), (0, 0));
    let snapshot = Snapshot::read(store).unwrap();
    assert_eq!(snapshot.supply, supply_before - burned);
    assert_eq!(snapshot.holdings(), Some(snapshot.supply));
    assert_eq!(
        query::balance(store, &users[0].address).unwrap(),
        BALANCE - paid
    );
    assert_eq!(query::stake(store, &users[1].address).unwrap().locked, 0);
    assert_eq!(
        query::stake(store, &users[3].address).unwrap().bonded,
        1_000 - slash
    );
    // Validators also hold their genesis weight (their bond); validator 6 was paid nothing.
    let wrong = query::stake(store, &users[6].address).unwrap();
    assert_eq!((wrong.bonded, wrong.locked), (BOND + 1_000 - slash, 0));
    assert_eq!(query::rewards(store, &users[6].address).unwrap(), 0);
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
    let Some(Outcome::TimedOut { slashed }) = &round.outcome else {
        panic!("round did not time out: {:?}", round.outcome);
    };
    // No model finalized, so no attestation is provably wrong: only the hidden update is slashed.
    assert_eq!(slashed, &BTreeMap::from([(users[3].address, BOND / 10)]));
    assert_eq!(query::rewards(store, &users[1].address).unwrap(), 0);
    assert_eq!(query::model_hash(store, 0, 0).unwrap(), None);
    // Round 1 opened from the unchanged initial model; escrow untouched.
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Running { round: 1 });
    assert_eq!(task.escrow, 2 * REWARD);
    let next = query::round(store, 0, 1).unwrap().unwrap();
    assert_eq!(next.model_hash, task.spec.initial_model);
    assert_ne!(next.seed, round.seed);

    // Round 1 also times out (closing at height 25): the task finishes, and the whole budget
    // returns when it settles after the last audit window, at height 28.
    play_round(&mut chain, &mut users, 1, 14, &attestations);
    let store = chain.store();
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Finished);
    assert_eq!(
        query::balance(store, &users[0].address).unwrap(),
        BALANCE - 2 * REWARD
    );
    advance_to(&mut chain, 28);
    let store = chain.store();
    let task = query::task(store, 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Settled);
    assert_eq!(query::balance(store, &users[0].address).unwrap(), BALANCE);
}

#[test]
fn cancelled_task_refunds_escrow_and_unlocks_bonds() {
    let mut users = users(2);
    let mut chain = chain(&genesis_with_validators(
        &users,
        &[(1, 200)],
        Params::default(),
    ));
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
    let mut durable = Chain::create(Store::open(&path).unwrap(), &genesis, datasets()).unwrap();
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

    let reopened = Chain::open(Store::open(&path).unwrap(), datasets()).unwrap();
    assert_eq!(reopened.tip(), &tip);
    assert_eq!(reopened.store().root(), root);

    let mut replay = chain(&genesis);
    for block in &blocks {
        replay.apply(block).unwrap();
    }
    assert_eq!(replay.store().root(), root);
}

/// Asserts that every token of the supply is held somewhere (balances, stakes, escrows).
fn assert_conserved(chain: &Chain<MemoryStore>) {
    let snapshot = Snapshot::read(chain.store()).unwrap();
    assert_eq!(
        snapshot.holdings(),
        Some(snapshot.supply),
        "holdings differ from the supply at height {}",
        chain.tip().height
    );
}

/// Applies one empty block and checks conservation.
fn step(chain: &mut Chain<MemoryStore>) {
    commit(chain, Vec::new());
    assert_conserved(chain);
}

/// Balance and rewards earned so far of every user.
fn earnings(chain: &Chain<MemoryStore>, users: &[User]) -> Vec<(u128, u128)> {
    users
        .iter()
        .map(|u| {
            (
                query::balance(chain.store(), &u.address).unwrap(),
                query::rewards(chain.store(), &u.address).unwrap(),
            )
        })
        .collect()
}

/// What round `round` of task 0 awarded to each member (it must have finalized).
fn awards(chain: &Chain<MemoryStore>, round: u32) -> BTreeMap<Address, u128> {
    let record = query::round(chain.store(), 0, round).unwrap().unwrap();
    let Some(Outcome::Finalized {
        trainer_rewards,
        validator_rewards,
        ..
    }) = record.outcome
    else {
        panic!("round {round} did not finalize: {:?}", record.outcome);
    };
    trainer_rewards
        .into_iter()
        .chain(validator_rewards)
        .collect()
}

#[test]
fn a_finalized_round_pays_nothing_until_its_vesting_height_then_exactly_what_it_awarded() {
    let (mut chain, mut users) = started(2);
    let agreed = [0xaa; 32];
    let attestations = [
        (agreed, scores(&users, 700_000, 300_000)),
        (agreed, scores(&users, 650_000, 350_000)),
        (agreed, scores(&users, 600_000, 400_000)),
    ];
    play_round(&mut chain, &mut users, 0, 3, &attestations);
    assert_conserved(&chain);

    // Round 0 closed at height 14 (round 1 opened); it vests after its 2-block audit window.
    assert_eq!(chain.tip().height, 14);
    let round = query::round(chain.store(), 0, 0).unwrap().unwrap();
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    let vest_at = round.challenge_deadline(&task.spec) + 1;
    assert_eq!(vest_at, 17);
    let vesting = round.vesting.clone().expect("a finalized round vests");
    assert_eq!((vesting.at, vesting.done), (vest_at, false));
    let awarded = awards(&chain, 0);
    let total: u128 = awarded.values().sum();
    assert!(total > 0 && total <= REWARD);
    // Trainers 1 and 2 revealed, trainer 3 did not; all three validators agreed.
    assert!(!awarded.contains_key(&users[3].address));
    for member in [1, 2, 4, 5, 6] {
        assert!(
            awarded.get(&users[member].address).is_some_and(|a| *a > 0),
            "member {member} was awarded nothing"
        );
    }
    assert_eq!((task.escrow, task.pending), (2 * REWARD, total));

    // Nothing moves before the vesting height.
    let before = earnings(&chain, &users);
    assert!(before.iter().all(|(_, earned)| *earned == 0));
    while chain.tip().height < vest_at - 1 {
        step(&mut chain);
        assert_eq!(
            earnings(&chain, &users),
            before,
            "paid early at height {}",
            chain.tip().height
        );
    }

    // At the vesting height each member is paid exactly its award, out of the escrow.
    step(&mut chain);
    assert_eq!(chain.tip().height, vest_at);
    let after = earnings(&chain, &users);
    for (user, ((balance, earned), (old_balance, _))) in users.iter().zip(after.iter().zip(&before))
    {
        let award = awarded.get(&user.address).copied().unwrap_or(0);
        assert_eq!(*balance, old_balance + award);
        assert_eq!(*earned, award);
    }
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!((task.escrow, task.pending), (2 * REWARD - total, 0));
    assert_eq!(task.status, TaskStatus::Running { round: 1 });
    let vesting = query::round(chain.store(), 0, 0)
        .unwrap()
        .unwrap()
        .vesting
        .unwrap();
    assert!(vesting.done && vesting.withheld.is_empty() && vesting.forfeited.is_empty());

    // And never again.
    step(&mut chain);
    assert_eq!(earnings(&chain, &users), after);
}

#[test]
fn a_finished_task_refunds_its_unspent_escrow_and_unlocks_bonds_only_at_settlement() {
    // Round 0 finalizes (part of the budget is paid), round 1 times out (its share is unspent).
    let (mut chain, mut users) = started(2);
    let agreed = [0xaa; 32];
    let agreeing = [
        (agreed, scores(&users, 600_000, 400_000)),
        (agreed, scores(&users, 600_000, 400_000)),
        (agreed, scores(&users, 600_000, 400_000)),
    ];
    play_round(&mut chain, &mut users, 0, 3, &agreeing);
    let paid: u128 = awards(&chain, 0).values().sum();
    let split = [
        ([1; 32], scores(&users, 500_000, 500_000)),
        ([2; 32], scores(&users, 500_000, 500_000)),
        ([3; 32], scores(&users, 500_000, 500_000)),
    ];
    play_round(&mut chain, &mut users, 1, 14, &split);
    assert_conserved(&chain);

    // The last round closed at height 25: finished, settling after its audit window.
    assert_eq!(chain.tip().height, 25);
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    let last = query::round(chain.store(), 0, 1).unwrap().unwrap();
    assert!(matches!(last.outcome, Some(Outcome::TimedOut { .. })));
    let settle_at = last.challenge_deadline(&task.spec) + 1;
    assert_eq!(settle_at, 28);
    let bonds: BTreeMap<Address, u128> = task
        .trainers
        .iter()
        .chain(&task.validators)
        .map(|(a, b)| (*a, *b))
        .collect();
    assert_eq!(bonds.len(), 6);
    let validators: Vec<Address> = task.validators.keys().copied().collect();
    // Trainer 3 never revealed: slashed 10% (rounded up) in each round.
    assert_eq!(
        bonds[&users[3].address],
        BOND - BOND.div_ceil(10) - (BOND - BOND.div_ceil(10)).div_ceil(10)
    );
    let creator = users[0].address;
    while chain.tip().height < settle_at {
        let task = query::task(chain.store(), 0).unwrap().unwrap();
        assert_eq!(task.status, TaskStatus::Finished);
        assert_eq!((task.escrow, task.pending), (2 * REWARD - paid, 0));
        assert_eq!(
            query::balance(chain.store(), &creator).unwrap(),
            BALANCE - 2 * REWARD
        );
        for (member, bond) in &bonds {
            let stake = query::stake(chain.store(), member).unwrap();
            assert_eq!(stake.locked, *bond, "bond unlocked early");
        }
        step(&mut chain);
    }

    // Settlement: the unspent budget (round 1's share and round 0's remainder) goes back to the
    // creator, every bond unlocks.
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Settled);
    assert_eq!((task.escrow, task.pending), (0, 0));
    assert_eq!(
        query::balance(chain.store(), &creator).unwrap(),
        BALANCE - paid
    );
    for (member, bond) in &bonds {
        let stake = query::stake(chain.store(), member).unwrap();
        assert_eq!(stake.locked, 0);
        assert_eq!(stake.free(), stake.bonded);
        // Validators also hold their genesis weight (their bond).
        let weight = if validators.contains(member) { BOND } else { 0 };
        assert_eq!(stake.bonded, weight + 1_000 - (BOND - bond));
    }
    step(&mut chain);
    assert_eq!(
        query::balance(chain.store(), &creator).unwrap(),
        BALANCE - paid
    );
}

#[test]
fn an_open_dispute_withholds_the_trainers_reward_and_delays_settlement_until_it_ends() {
    // Validator 4 challenges trainer 1 right after round 0 closes (height 15); trainer 1 never
    // answers, so it loses when its 2-block move window is over (at 18): bond slashed, reward
    // forfeited to the creator's refund. The task settles once the dispute is over.
    let (mut chain, mut users) = started(1);
    let supply_before = query::supply(chain.store()).unwrap();
    let agreed = [0xaa; 32];
    let attestations = [
        (agreed, scores(&users, 600_000, 400_000)),
        (agreed, scores(&users, 600_000, 400_000)),
        (agreed, scores(&users, 600_000, 400_000)),
    ];
    play_round(&mut chain, &mut users, 0, 3, &attestations);
    let awarded = awards(&chain, 0);
    let total: u128 = awarded.values().sum();
    let (trainer, challenger) = (users[1].address, users[4].address);
    let challenge = users[4].sign(Payload::Challenge {
        task: 0,
        round: 0,
        trainer,
        trace_root: [0xcc; 32],
    });
    commit(&mut chain, vec![challenge]);
    assert_conserved(&chain);
    let dispute = query::dispute(chain.store(), 0).unwrap().unwrap();
    assert!(dispute.is_open());
    assert_eq!((dispute.opened_at, dispute.deadline), (15, 17));
    assert_eq!(
        query::stake(chain.store(), &challenger).unwrap().locked,
        BOND + CHALLENGE_BOND
    );
    let before = earnings(&chain, &users);

    // Height 17: the round vests, but trainer 1's reward waits for the dispute; the task does
    // not settle while it is open.
    step(&mut chain);
    step(&mut chain);
    assert_eq!(chain.tip().height, 17);
    let after = earnings(&chain, &users);
    assert_eq!(after[1], before[1], "the disputed trainer was paid");
    for member in [2, 4, 5, 6] {
        let award = awarded.get(&users[member].address).copied().unwrap_or(0);
        assert_eq!(after[member].0, before[member].0 + award);
    }
    let vesting = query::round(chain.store(), 0, 0)
        .unwrap()
        .unwrap()
        .vesting
        .unwrap();
    assert!(vesting.done && vesting.withheld.contains(&trainer));
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Finished);
    assert_eq!(task.pending, awarded[&trainer]);

    // Height 18: the trainer let its deadline pass and loses.
    step(&mut chain);
    let dispute = query::dispute(chain.store(), 0).unwrap().unwrap();
    assert!(!dispute.is_open(), "{:?}", dispute.stage);
    let stake = query::stake(chain.store(), &trainer).unwrap();
    assert_eq!((stake.bonded, stake.locked), (1_000 - BOND, 0));
    assert_eq!(
        query::stake(chain.store(), &challenger).unwrap().locked,
        BOND
    );
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert!(task.expelled.contains(&trainer));
    assert_eq!(task.pending, 0);
    assert_eq!(earnings(&chain, &users)[1], before[1]);
    let slash = BOND / 10;
    assert_eq!(
        query::supply(chain.store()).unwrap(),
        supply_before - slash - BOND
    );

    // The task settles after the dispute (no later than its last deadline + 2): the forfeited
    // reward returns to the creator with the rest of the unspent budget.
    while query::task(chain.store(), 0).unwrap().unwrap().status == TaskStatus::Finished {
        assert!(chain.tip().height < dispute.deadline + 2);
        step(&mut chain);
    }
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Settled);
    assert_eq!(task.escrow, 0);
    let forfeited = awarded[&trainer];
    assert_eq!(
        query::balance(chain.store(), &users[0].address).unwrap(),
        BALANCE - total + forfeited
    );
    for user in &users[1..] {
        assert_eq!(
            query::stake(chain.store(), &user.address).unwrap().locked,
            0
        );
    }
}
