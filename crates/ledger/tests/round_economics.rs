//! Random round behaviours (who commits, who reveals, which updates each validator votes it
//! holds, which model each validator attests, what scores, how much each bonds) never create or
//! lose tokens: supply falls by exactly the slashed amount, the payout never exceeds the round's
//! reward and goes only to available updates and to validators that voted and were not provably
//! wrong, an update counts exactly when validators holding at least 2/3 of validator bond hold
//! it, a round finalizes exactly when attestations holding at least 2/3 of validator bond agree,
//! and exactly the unrevealed commitments and the provably wrong attestations (another model
//! hash, or a score other than the one more than half of the bond gave) are slashed. Checked once
//! the round's rewards have vested and the task has settled.

mod common;

use std::collections::{BTreeMap, BTreeSet};

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
    /// Whether it votes on availability at all, and which trainers' updates it holds (of those
    /// that revealed).
    votes: bool,
    holds: Vec<bool>,
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
        prop_oneof![3 => Just(true), 1 => Just(false)],
        proptest::collection::vec(prop_oneof![3 => Just(true), 1 => Just(false)], TRAINERS),
        // Mostly model 0, so that rounds finalize often and some attest the other model.
        prop_oneof![3 => Just(0u8), 1 => Just(1)],
        prop_oneof![3 => Just(true), 1 => Just(false)],
        // Often one of two common values, so that validators holding more than half of the
        // stake regularly agree on a score (and others regularly differ from it).
        proptest::collection::vec(
            prop_oneof![2 => Just(600_000u32), 1 => Just(400_000), 1 => 0u32..=1_000_000],
            TRAINERS,
        ),
    )
        .prop_map(|(bond, votes, holds, model, reveals, scores)| Validator {
            bond,
            votes,
            holds,
            model,
            reveals,
            scores,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

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
        // Each voting validator holds some of the revealed updates; an update counts when the
        // validators holding it hold at least 2/3 of validator bond.
        let total: u128 = validators.iter().map(|v| v.bond).sum();
        let trainer_addresses: Vec<Address> = users[1..=TRAINERS].iter().map(|u| u.address).collect();
        let held = |v: &Validator| -> BTreeSet<Address> {
            trainers.iter().enumerate()
                .filter(|(i, t)| t.reveals && v.holds[*i])
                .map(|(i, _)| trainer_addresses[i])
                .collect()
        };
        let available: BTreeSet<Address> = trainers.iter().enumerate()
            .filter(|(i, t)| {
                let holding: u128 = validators.iter()
                    .filter(|v| v.votes && v.holds[*i])
                    .map(|v| v.bond)
                    .sum();
                t.reveals && 3 * holding >= 2 * total
            })
            .map(|(i, _)| trainer_addresses[i])
            .collect();
        let votes = validators.iter().enumerate().filter(|(_, v)| v.votes).map(|(i, v)| {
            users[1 + TRAINERS + i].sign(vote_availability(0, 0, held(v)))
        }).collect();
        commit(&mut chain, votes);
        // Validators score only the updates that count (the ledger refuses scores for others).
        let attestations: Vec<([u8; 32], BTreeMap<Address, u32>)> = validators.iter().map(|v| {
            let scores = available.iter().zip(&v.scores).map(|(a, s)| (*a, *s)).collect();
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
        // The round closes at `opened + 6`; its rewards vest and the task settles (refund, bonds
        // unlocked) once its 2-block audit window is over, at `opened + 9`.
        let closes = opened + 6;
        let settles = closes + 2 + 1;
        advance_to(&mut chain, closes);
        let task = query::task(chain.store(), 0).unwrap().unwrap();
        prop_assert_eq!(task.status, TaskStatus::Finished);
        advance_to(&mut chain, settles);

        let store = chain.store();
        let round = query::round(store, 0, 0).unwrap().unwrap();
        prop_assert_eq!(round.available.as_ref(), Some(&available));
        let validator_addresses: Vec<Address> = users[1 + TRAINERS..].iter().map(|u| u.address).collect();
        // The model that finalizes: the one revealed by at least 2/3 of validator bond, if any.
        let backing = |m: u8| validators.iter().filter(|v| v.reveals && v.model == m).map(|v| v.bond).sum::<u128>();
        let winner: Option<u8> = (0..2u8).find(|m| 3 * backing(*m) >= 2 * total);
        // Once a model finalizes, the `j`-th available trainer's settled score is the one given
        // by validators revealing that model and holding more than half of all validator bond.
        let agreeing: Vec<&Validator> = validators.iter().filter(|v| v.reveals && Some(v.model) == winner).collect();
        let settled: Vec<Option<u32>> = (0..available.len()).map(|j| {
            agreeing.iter().map(|v| v.scores[j]).find(|score| {
                let behind: u128 = agreeing.iter().filter(|v| v.scores[j] == *score).map(|v| v.bond).sum();
                2 * behind > total
            })
        }).collect();
        // Provably wrong: a revealed attestation of another model, or of the finalized one with
        // a score other than a settled one. A timed-out round proves nobody wrong.
        let wrong: BTreeSet<Address> = validators.iter().enumerate()
            .filter(|(_, v)| winner.is_some() && v.reveals && (Some(v.model) != winner
                || settled.iter().zip(&v.scores).any(|(s, score)| s.is_some_and(|s| s != *score))))
            .map(|(i, _)| validator_addresses[i])
            .collect();
        // Paid (at most) the validators that voted, attested the finalized model and are not
        // provably wrong.
        let eligible: BTreeSet<Address> = validators.iter().enumerate()
            .filter(|(_, v)| v.votes && v.reveals && Some(v.model) == winner)
            .map(|(i, _)| validator_addresses[i])
            .filter(|v| !wrong.contains(v))
            .collect();
        let (slashed, paid) = match round.outcome.clone().unwrap() {
            Outcome::Finalized { model_hash, scores, slashed, trainer_rewards, validator_rewards } => {
                prop_assert_eq!(Some(model_hash[0]), winner);
                prop_assert!(trainer_rewards.keys().all(|t| available.contains(t)));
                let rewarded: BTreeSet<Address> = validator_rewards.keys().copied().collect();
                prop_assert!(rewarded.is_subset(&eligible), "rewarded {:?}, eligible {:?}", rewarded, eligible);
                if settled.iter().all(Option::is_some) {
                    // Every eligible validator gave exactly the settled scores: full agreement.
                    prop_assert_eq!(&rewarded, &eligible);
                }
                if !eligible.is_empty() {
                    // Only validators that gave the settled scores are counted: the consensus
                    // is exactly the settled score.
                    for (trainer, s) in available.iter().zip(&settled) {
                        if let Some(s) = s {
                            prop_assert_eq!(scores[trainer], *s);
                        }
                    }
                }
                (slashed, trainer_rewards.values().chain(validator_rewards.values()).sum::<u128>())
            }
            Outcome::TimedOut { slashed } => {
                prop_assert_eq!(winner, None);
                (slashed, 0)
            }
        };
        prop_assert!(paid <= REWARD);
        // A tenth of the bond, rounded up, of every commitment never revealed (trainers' updates
        // and validators' attestations alike) and of every provably wrong attestation. (An
        // update that did not count costs nothing more in a task's first round.)
        let expected_slashed: BTreeMap<Address, u128> = trainers.iter().enumerate()
            .filter(|(_, t)| t.commits && !t.reveals)
            .map(|(i, t)| (users[1 + i].address, t.bond.div_ceil(10)))
            .chain(validators.iter().enumerate()
                .filter(|(i, v)| !v.reveals || wrong.contains(&validator_addresses[*i]))
                .map(|(i, v)| (validator_addresses[i], v.bond.div_ceil(10))))
            .collect();
        prop_assert_eq!(&slashed, &expected_slashed);
        prop_assert!(round.penalties.is_empty());

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
