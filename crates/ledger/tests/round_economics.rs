//! Random round behaviours (who commits, who reveals, which model each validator attests, what
//! scores, how much each bonds) never create or lose tokens: supply falls by exactly the slashed
//! amount, the payout never exceeds the round's reward, and a round finalizes exactly when
//! attestations holding at least 2/3 of validator bond agree. Checked once the round's rewards
//! have vested and the task has settled.

mod common;

use std::collections::BTreeMap;

use cairn_ledger::query::{self, Snapshot};
use cairn_ledger::transaction::attestation_commitment;
use cairn_ledger::{Address, Outcome, Params, Payload, Role, TaskStatus};
use common::*;
use proptest::prelude::*;

const TRAINERS: usize = 4;
const VALIDATORS: usize = 4;
const REWARD: u128 = 100_000;

#[derive(Clone, Debug)]
struct Trainer {
    bond: u128,
    commits: bool,
    reveals: bool,
}

#[derive(Clone, Debug)]
struct Validator {
    bond: u128,
    model: u8,
    reveals: bool,
    scores: Vec<u32>,
}

fn trainer() -> impl Strategy<Value = Trainer> {
    (MIN_TRAINER_BOND..5_000, any::<bool>(), any::<bool>()).prop_map(|(bond, commits, reveals)| {
        Trainer {
            bond,
            commits,
            reveals: commits && reveals,
        }
    })
}

fn validator() -> impl Strategy<Value = Validator> {
    (
        100u128..5_000,
        0u8..2,
        prop_oneof![3 => Just(true), 1 => Just(false)],
        proptest::collection::vec(0u32..=1_000_000, TRAINERS),
    )
        .prop_map(|(bond, model, reveals, scores)| Validator {
            bond,
            model,
            reveals,
            scores,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn round_settlement_conserves_tokens(
        trainers in proptest::collection::vec(trainer(), TRAINERS),
        validators in proptest::collection::vec(validator(), VALIDATORS),
    ) {
        let mut users = users((1 + TRAINERS + VALIDATORS) as u8);
        let weights: Vec<(usize, u128)> = validators.iter().enumerate().map(|(i, v)| (1 + TRAINERS + i, v.bond)).collect();
        let mut chain = chain(&genesis_with_validators(&users, &weights, Params::default()));
        let supply_before = query::supply(chain.store()).unwrap();

        let mut setup = vec![users[0].sign(Payload::CreateTask { spec: spec(1, (1, 1, 1), REWARD) })];
        for user in users.iter_mut().skip(1) {
            setup.push(user.sign(Payload::Bond { amount: 10_000 }));
        }
        commit(&mut chain, setup);
        let mut joins = Vec::new();
        for (i, t) in trainers.iter().enumerate() {
            joins.push(users[1 + i].sign(Payload::JoinTask { task: 0, role: Role::Trainer, bond: t.bond }));
        }
        for (i, v) in validators.iter().enumerate() {
            joins.push(users[1 + TRAINERS + i].sign(Payload::JoinTask { task: 0, role: Role::Validator, bond: v.bond }));
        }
        commit(&mut chain, joins);
        let start = users[0].sign(Payload::StartTask { task: 0 });
        commit(&mut chain, vec![start]);
        let opened = chain.tip().height;

        let salt = [3; 32];
        let commits = trainers.iter().enumerate().filter(|(_, t)| t.commits).map(|(i, _)| {
            let payload = commit_update(&users[1 + i], 0, 0, &[i as u8; 32], &salt);
            users[1 + i].sign(payload)
        }).collect();
        commit(&mut chain, commits);
        let reveals = trainers.iter().enumerate().filter(|(_, t)| t.reveals).map(|(i, _)| {
            users[1 + i].sign(reveal_update(0, 0, &[i as u8; 32], &salt))
        }).collect();
        commit(&mut chain, reveals);
        let revealed: Vec<Address> = trainers.iter().enumerate().filter(|(_, t)| t.reveals).map(|(i, _)| users[1 + i].address).collect();
        let attestations: Vec<([u8; 32], BTreeMap<Address, u32>)> = validators.iter().map(|v| {
            let scores = revealed.iter().zip(&v.scores).map(|(a, s)| (*a, *s)).collect();
            ([v.model; 32], scores)
        }).collect();
        let attest_commits = attestations.iter().enumerate().map(|(i, (model, scores))| {
            let scope = users[1 + TRAINERS + i].scope(0, 0);
            users[1 + TRAINERS + i].sign(Payload::CommitAttestation {
                task: 0, round: 0, commitment: attestation_commitment(&scope, model, scores, &salt),
            })
        }).collect();
        commit(&mut chain, attest_commits);
        let attest_reveals = attestations.iter().enumerate().filter(|(i, _)| validators[*i].reveals).map(|(i, (model, scores))| {
            users[1 + TRAINERS + i].sign(Payload::RevealAttestation {
                task: 0, round: 0, model_hash: *model, scores: scores.clone(), salt,
            })
        }).collect();
        commit(&mut chain, attest_reveals);
        // The round closes at `opened + 5`; its rewards vest and the task settles (refund, bonds
        // unlocked) once its 2-block audit window is over, at `opened + 8`.
        let closes = opened + 5;
        let settles = closes + 2 + 1;
        advance_to(&mut chain, closes);
        let task = query::task(chain.store(), 0).unwrap().unwrap();
        prop_assert_eq!(task.status, TaskStatus::Finished);
        advance_to(&mut chain, settles);

        let store = chain.store();
        let round = query::round(store, 0, 0).unwrap().unwrap();
        let total: u128 = validators.iter().map(|v| v.bond).sum();
        let best: u128 = (0..2u8).map(|m| validators.iter().filter(|v| v.reveals && v.model == m).map(|v| v.bond).sum::<u128>()).max().unwrap();
        let (slashed, paid) = match round.outcome.clone().unwrap() {
            Outcome::Finalized { slashed, trainer_rewards, validator_rewards, .. } => {
                prop_assert!(3 * best >= 2 * total);
                (slashed, trainer_rewards.values().chain(validator_rewards.values()).sum::<u128>())
            }
            Outcome::TimedOut { slashed } => {
                prop_assert!(3 * best < 2 * total);
                (slashed, 0)
            }
        };
        prop_assert!(paid <= REWARD);
        // A tenth of the bond, rounded up, of every commitment never revealed: trainers' updates
        // and validators' attestations alike.
        let expected_slashed: BTreeMap<Address, u128> = trainers.iter().enumerate()
            .filter(|(_, t)| t.commits && !t.reveals)
            .map(|(i, t)| (users[1 + i].address, t.bond.div_ceil(10)))
            .chain(validators.iter().enumerate()
                .filter(|(_, v)| !v.reveals)
                .map(|(i, v)| (users[1 + TRAINERS + i].address, v.bond.div_ceil(10))))
            .collect();
        prop_assert_eq!(&slashed, &expected_slashed);

        let snapshot = Snapshot::read(store).unwrap();
        let burned: u128 = slashed.values().sum();
        prop_assert_eq!(snapshot.supply, supply_before - burned);
        prop_assert_eq!(snapshot.holdings(), Some(snapshot.supply));
        let task = query::task(store, 0).unwrap().unwrap();
        prop_assert_eq!(task.status, TaskStatus::Settled);
        prop_assert_eq!(task.escrow, 0);
        prop_assert_eq!(query::balance(store, &users[0].address).unwrap(), BALANCE - paid);
        for stake in snapshot.stakes.values() {
            prop_assert_eq!(stake.locked, 0);
        }
    }
}
