//! Availability votes: after the reveal window each task validator votes which revealed updates
//! it holds, and only the updates held by validators with at least 2/3 of validator stake count
//! (they alone are scored, audited and rewarded). A trainer that reveals an update it serves to
//! too few validators earns nothing; one that provably served nobody (2/3 of stake voted, less
//! than 1/3 holds it) two rounds in a row is slashed; a validator that skips its vote earns no
//! validator reward. Bad votes are refused whole.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use cairn_ledger::participation::RoundError;
use cairn_ledger::query;
use cairn_ledger::store::MemoryStore;
use cairn_ledger::transaction::attestation_commitment;
use cairn_ledger::{Address, Chain, Outcome, Params, Payload, Phase, TxError};
use common::*;

const REWARD: u128 = 10_000;
/// Each trainer's task bond: a tenth of it is 20.5, so a slash rounds up to 21.
const TRAINER_BOND: u128 = 205;
/// Validators 4..=7 and their weights (= task bonds), of 6 000 in all: 4 000 (validators 6 and
/// 7, or 4, 5 and 6) is exactly 2/3, 3 000 (4 and 6) exactly half.
const VALIDATORS: [(usize, u128); 4] = [(4, 1_000), (5, 1_000), (6, 2_000), (7, 2_000)];
/// The model every attesting validator agrees on.
const MODEL: [u8; 32] = [0xaa; 32];
const SALT: [u8; 32] = [0x5a; 32];

/// Users: 0 creator, 1..=3 trainers, 4..=7 validators (see [`VALIDATORS`]). Task 0 of `rounds`
/// rounds with 2-block windows is started at height 3, so round r opens at 3 + 11r: commits at
/// +1..=+2, reveals at +3..=+4, availability votes at +5..=+6, audits drawn and availability
/// fixed at +7 (attestation commits +7..=+8), attestation reveals +9..=+10, closed at +11.
fn started(rounds: u32) -> (Chain<MemoryStore>, Vec<User>) {
    started_task(spec(rounds, (2, 2, 2), REWARD), &VALIDATORS, TRAINER_BOND)
}

/// The height round `round` opened at (every round before it ran its full length).
fn opened(round: u32) -> u64 {
    3 + 11 * u64::from(round)
}

fn update_hash(trainer: usize, round: u32) -> [u8; 32] {
    let mut hash = [trainer as u8; 32];
    hash[31] = round as u8;
    hash
}

/// Trainers 1..=3 commit in round `round`, the trainers in `revealing` reveal; the tip is left
/// at the reveal block, one before the last of the reveal window.
fn commit_and_reveal(
    chain: &mut Chain<MemoryStore>,
    users: &mut [User],
    round: u32,
    revealing: &[usize],
) {
    let start = opened(round);
    assert_eq!(chain.tip().height, start);
    let commits = (1..=3)
        .map(|t| {
            let payload = commit_update(&users[t], 0, round, &update_hash(t, round), &SALT);
            users[t].sign(payload)
        })
        .collect();
    commit(chain, commits);
    advance_to(chain, start + 2);
    let reveals = revealing
        .iter()
        .map(|t| users[*t].sign(reveal_update(0, round, &update_hash(*t, round), &SALT)))
        .collect();
    commit(chain, reveals);
    assert_eq!(chain.tip().height, start + 3);
}

/// In the availability window of round `round`, each `(validator, trainers)` votes that it holds
/// those trainers' updates; the tip is left at the window's last block.
fn vote(
    chain: &mut Chain<MemoryStore>,
    users: &mut [User],
    round: u32,
    votes: &[(usize, &[usize])],
) {
    let start = opened(round);
    advance_to(chain, start + 4);
    let addresses: Vec<Address> = users.iter().map(|u| u.address).collect();
    let transactions = votes
        .iter()
        .map(|(validator, held)| {
            let held = held.iter().map(|t| addresses[*t]);
            users[*validator].sign(vote_availability(0, round, held))
        })
        .collect();
    commit(chain, transactions);
    advance_to(chain, start + 6);
}

/// Scores of 500 000 for each of `trainers`.
fn even_scores(users: &[User], trainers: &[usize]) -> BTreeMap<Address, u32> {
    trainers
        .iter()
        .map(|t| (users[*t].address, 500_000))
        .collect()
}

/// Each `(validator, scores)` commits (by the second block of the attestation-commit window)
/// and reveals an attestation of [`MODEL`] in round `round`, then the round closes (the tip is
/// left at its closing height).
fn attest(
    chain: &mut Chain<MemoryStore>,
    users: &mut [User],
    round: u32,
    attestations: &[(usize, BTreeMap<Address, u32>)],
) {
    let start = opened(round);
    advance_to(chain, start + 6);
    let commits = attestations
        .iter()
        .map(|(v, scores)| {
            let commitment =
                attestation_commitment(&users[*v].scope(0, round), &MODEL, scores, &SALT);
            users[*v].sign(Payload::CommitAttestation {
                task: 0,
                round,
                commitment,
            })
        })
        .collect();
    commit(chain, commits);
    advance_to(chain, start + 8);
    let reveals = attestations
        .iter()
        .map(|(v, scores)| {
            users[*v].sign(Payload::RevealAttestation {
                task: 0,
                round,
                model_hash: MODEL,
                scores: scores.clone(),
                salt: SALT,
            })
        })
        .collect();
    commit(chain, reveals);
    advance_to(chain, start + 11);
}

/// Every validator attests [`MODEL`] scoring `trainers` evenly.
fn all_attest(users: &[User], trainers: &[usize]) -> Vec<(usize, BTreeMap<Address, u32>)> {
    VALIDATORS
        .iter()
        .map(|(v, _)| (*v, even_scores(users, trainers)))
        .collect()
}

fn round(chain: &Chain<MemoryStore>, number: u32) -> cairn_ledger::Round {
    query::round(chain.store(), 0, number).unwrap().unwrap()
}

/// The trainer and validator rewards of a finalized round.
fn rewards(
    chain: &Chain<MemoryStore>,
    number: u32,
) -> (
    BTreeMap<Address, u128>,
    BTreeMap<Address, u128>,
    BTreeMap<Address, u32>,
) {
    match round(chain, number).outcome {
        Some(Outcome::Finalized {
            model_hash,
            trainer_rewards,
            validator_rewards,
            scores,
            ..
        }) => {
            assert_eq!(model_hash, MODEL);
            (trainer_rewards, validator_rewards, scores)
        }
        other => panic!("round {number} did not finalize: {other:?}"),
    }
}

fn is_round_error(error: &TxError, expected: RoundError) -> bool {
    matches!(error, TxError::Round(e) if *e == expected)
}

/// A vote signed with `user`'s current nonce (which a rejection does not advance).
fn vote_by(user: &User, round: u32, held: &[Address]) -> cairn_ledger::SignedTransaction {
    user.sign_with_nonce(
        user.nonce,
        vote_availability(0, round, held.iter().copied()),
    )
}

#[test]
fn an_availability_vote_by_anyone_but_a_task_validator_is_rejected() {
    let (mut chain, mut users) = started(1);
    commit_and_reveal(&mut chain, &mut users, 0, &[1, 2]);
    let held = [users[1].address];
    // The creator, a trainer of the task (even voting for itself), in the availability window.
    for who in [0, 1, 2] {
        let error = expect_rejected(&mut chain, vec![vote_by(&users[who], 0, &held)]);
        assert!(
            is_round_error(&error, RoundError::NotValidator(users[who].address)),
            "{error:?}"
        );
    }
    assert!(round(&chain, 0).votes.is_empty());
}

#[test]
fn an_availability_vote_outside_the_availability_window_is_rejected() {
    let (mut chain, mut users) = started(1);
    commit_and_reveal(&mut chain, &mut users, 0, &[1, 2]);
    let held = [users[1].address, users[2].address];
    // The last block of the reveal window, and the first of the attestation-commit window (where
    // the availability is fixed).
    for (height, actual) in [
        (opened(0) + 4, Phase::Reveal),
        (opened(0) + 7, Phase::AttestCommit),
    ] {
        advance_to(&mut chain, height - 1);
        let error = expect_rejected(&mut chain, vec![vote_by(&users[4], 0, &held)]);
        assert!(
            is_round_error(
                &error,
                RoundError::WrongPhase {
                    needed: Phase::Availability,
                    actual
                }
            ),
            "{error:?}"
        );
    }
    // The refused block moved nothing, not even the scheduled draw; the next one fixes the
    // availability, and nobody voted in time: nothing counts.
    assert_eq!(round(&chain, 0).available, None);
    commit(&mut chain, Vec::new());
    let round = round(&chain, 0);
    assert!(round.votes.is_empty());
    assert_eq!(round.available, Some(BTreeSet::new()));
}

#[test]
fn a_second_availability_vote_by_the_same_validator_is_rejected() {
    let (mut chain, mut users) = started(1);
    commit_and_reveal(&mut chain, &mut users, 0, &[1, 2]);
    let (first, second) = (users[1].address, users[2].address);
    advance_to(&mut chain, opened(0) + 4);
    commit(
        &mut chain,
        vec![users[4].sign(vote_availability(0, 0, [first]))],
    );
    // The last block of the window: neither a changed mind nor the same vote again.
    for held in [vec![first, second], vec![first]] {
        let error = expect_rejected(&mut chain, vec![vote_by(&users[4], 0, &held)]);
        assert!(
            is_round_error(&error, RoundError::AlreadyVoted(users[4].address)),
            "{error:?}"
        );
    }
    let votes = round(&chain, 0).votes;
    assert_eq!(
        votes,
        BTreeMap::from([(users[4].address, BTreeSet::from([first]))])
    );
}

#[test]
fn an_availability_vote_naming_a_trainer_that_did_not_reveal_is_rejected() {
    let (mut chain, mut users) = started(1);
    // Trainer 3 commits and never reveals; the creator never joined.
    commit_and_reveal(&mut chain, &mut users, 0, &[1, 2]);
    advance_to(&mut chain, opened(0) + 4);
    for silent in [3, 0] {
        let held = [users[1].address, users[silent].address];
        let error = expect_rejected(&mut chain, vec![vote_by(&users[4], 0, &held)]);
        assert!(
            is_round_error(
                &error,
                RoundError::HeldNonParticipant(users[silent].address)
            ),
            "{error:?}"
        );
    }
    assert!(round(&chain, 0).votes.is_empty());
    // The refused votes did not use up the validator's one vote.
    let held = [users[1].address, users[2].address];
    commit(
        &mut chain,
        vec![users[4].sign(vote_availability(0, 0, held))],
    );
    assert_eq!(round(&chain, 0).votes.len(), 1);
}

/// Round 0 of a one-round task in which all three trainers reveal, but trainer 3 serves its
/// update only to validators 4 and 6 (3 000 of 6 000, exactly half) and trainer 2 only to 6 and
/// 7 (4 000, exactly 2/3). Left at the last block of the availability window.
fn selective_withholding() -> (Chain<MemoryStore>, Vec<User>) {
    let (mut chain, mut users) = started(1);
    commit_and_reveal(&mut chain, &mut users, 0, &[1, 2, 3]);
    vote(
        &mut chain,
        &mut users,
        0,
        &[(4, &[1, 3]), (5, &[1]), (6, &[1, 2, 3]), (7, &[1, 2])],
    );
    (chain, users)
}

#[test]
fn an_update_held_by_two_thirds_of_validator_stake_counts_and_one_served_to_half_earns_nothing() {
    let (mut chain, mut users) = selective_withholding();
    let supply = query::supply(chain.store()).unwrap();
    let (first, second, withholder) = (users[1].address, users[2].address, users[3].address);
    assert_eq!(round(&chain, 0).available, None);
    commit(&mut chain, Vec::new());
    assert_eq!(
        round(&chain, 0).available,
        Some(BTreeSet::from([first, second]))
    );

    // Every validator attests the model aggregated over the two updates that count.
    let attestations = all_attest(&users, &[1, 2]);
    attest(&mut chain, &mut users, 0, &attestations);
    let (trainer_rewards, validator_rewards, scores) = rewards(&chain, 0);
    assert!(trainer_rewards[&first] > 0);
    assert_eq!(trainer_rewards[&first], trainer_rewards[&second]);
    assert!(!trainer_rewards.contains_key(&withholder));
    assert!(!scores.contains_key(&withholder));
    for (validator, _) in VALIDATORS {
        assert!(validator_rewards[&users[validator].address] > 0);
    }
    // A first withholding costs the round's reward and nothing else.
    let round = round(&chain, 0);
    assert!(round.penalties.is_empty());
    let Some(Outcome::Finalized { slashed, .. }) = round.outcome else {
        unreachable!("finalized above")
    };
    assert!(slashed.is_empty());
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.trainers[&withholder], TRAINER_BOND);
    assert_conserved(&chain, supply);
}

#[test]
fn an_attestation_scoring_an_update_that_did_not_count_is_rejected() {
    let (mut chain, mut users) = selective_withholding();
    let withholder = users[3].address;
    // Validator 4 holds the withholder's update and scores it anyway; the others score the two
    // that count.
    let mut attestations = all_attest(&users, &[1, 2]);
    attestations[0] = (4, even_scores(&users, &[1, 2, 3]));
    let commits = attestations
        .iter()
        .map(|(v, scores)| {
            let commitment = attestation_commitment(&users[*v].scope(0, 0), &MODEL, scores, &SALT);
            users[*v].sign(Payload::CommitAttestation {
                task: 0,
                round: 0,
                commitment,
            })
        })
        .collect();
    commit(&mut chain, commits);
    advance_to(&mut chain, opened(0) + 8);
    let reveal = |user: &User, scores: &BTreeMap<Address, u32>| {
        user.sign_with_nonce(
            user.nonce,
            Payload::RevealAttestation {
                task: 0,
                round: 0,
                model_hash: MODEL,
                scores: scores.clone(),
                salt: SALT,
            },
        )
    };
    let error = expect_rejected(&mut chain, vec![reveal(&users[4], &attestations[0].1)]);
    assert!(
        is_round_error(&error, RoundError::ScoredUnavailable(withholder)),
        "{error:?}"
    );
    let attestation = &round(&chain, 0).attestations[&users[4].address];
    assert!(attestation.reveal.is_none());

    // The other three (5 000 of 6 000) finalize without it.
    let reveals = attestations[1..]
        .iter()
        .map(|(v, scores)| reveal(&users[*v], scores))
        .collect();
    commit(&mut chain, reveals);
    advance_to(&mut chain, opened(0) + 11);
    let (trainer_rewards, validator_rewards, _) = rewards(&chain, 0);
    assert!(!trainer_rewards.contains_key(&withholder));
    assert!(!validator_rewards.contains_key(&users[4].address));
}

/// The slash for withholding a second round in a row: a tenth of the trainer bond, rounded up.
fn withholding_slash() -> u128 {
    let fraction = u128::from(Params::default().slash_fraction_ppm);
    let slash = (TRAINER_BOND * fraction).div_ceil(1_000_000);
    assert_eq!(slash, 21, "20.5 rounds up");
    slash
}

/// Plays round `round` in which trainers 1..=3 reveal and validators hold only 1 and 2, or all
/// three when `served`; every validator attests over the updates that count.
fn play_round(chain: &mut Chain<MemoryStore>, users: &mut [User], round: u32, served: bool) {
    commit_and_reveal(chain, users, round, &[1, 2, 3]);
    let held: &[usize] = if served { &[1, 2, 3] } else { &[1, 2] };
    let votes: Vec<(usize, &[usize])> = VALIDATORS.iter().map(|(v, _)| (*v, held)).collect();
    vote(chain, users, round, &votes);
    let attestations = all_attest(users, held);
    attest(chain, users, round, &attestations);
    rewards(chain, round);
}

#[test]
fn a_trainer_withholding_one_round_is_not_slashed_and_a_second_round_in_a_row_is() {
    let (mut chain, mut users) = started(2);
    let supply = query::supply(chain.store()).unwrap();
    let withholder = users[3].address;
    let stake = |chain: &Chain<MemoryStore>| query::stake(chain.store(), &withholder).unwrap();
    let bond = |chain: &Chain<MemoryStore>| {
        query::task(chain.store(), 0).unwrap().unwrap().trainers[&withholder]
    };

    // Round 0: its update does not count; no slash.
    play_round(&mut chain, &mut users, 0, false);
    assert!(!rewards(&chain, 0).0.contains_key(&withholder));
    assert!(round(&chain, 0).penalties.is_empty());
    assert_eq!((stake(&chain).bonded, bond(&chain)), (1_000, TRAINER_BOND));
    assert_conserved(&chain, supply);

    // Round 1: withheld again. Nothing happens until the availability is fixed, at the first
    // block of the attestation-commit window; then a tenth of its bond (rounded up) is burned.
    commit_and_reveal(&mut chain, &mut users, 1, &[1, 2, 3]);
    let votes: Vec<(usize, &[usize])> = VALIDATORS.iter().map(|(v, _)| (*v, &[1, 2][..])).collect();
    vote(&mut chain, &mut users, 1, &votes);
    assert_eq!((stake(&chain).bonded, bond(&chain)), (1_000, TRAINER_BOND));
    commit(&mut chain, Vec::new());
    let slash = withholding_slash();
    let round_one = round(&chain, 1);
    assert_eq!(round_one.penalties, BTreeMap::from([(withholder, slash)]));
    assert_eq!(bond(&chain), TRAINER_BOND - slash);
    let after = stake(&chain);
    assert_eq!(
        (after.bonded, after.locked),
        (1_000 - slash, TRAINER_BOND - slash)
    );
    assert_conserved(&chain, supply - slash);

    // The round still finalizes without it; the slash is not an unrevealed commitment's.
    let attestations = all_attest(&users, &[1, 2]);
    attest(&mut chain, &mut users, 1, &attestations);
    assert!(!rewards(&chain, 1).0.contains_key(&withholder));
    let Some(Outcome::Finalized { slashed, .. }) = round(&chain, 1).outcome else {
        unreachable!("finalized above")
    };
    assert!(slashed.is_empty());
    assert_eq!(
        round(&chain, 1).penalties,
        BTreeMap::from([(withholder, slash)])
    );
    assert_conserved(&chain, supply - slash);

    // Settled: the bond left unlocks, every token accounted for.
    advance_to(&mut chain, opened(1) + 11 + 3);
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.status, cairn_ledger::TaskStatus::Settled);
    let settled = stake(&chain);
    assert_eq!((settled.bonded, settled.locked), (1_000 - slash, 0));
    assert_conserved(&chain, supply - slash);
}

#[test]
fn a_trainer_withholding_in_rounds_that_are_not_consecutive_is_never_slashed() {
    let (mut chain, mut users) = started(3);
    let supply = query::supply(chain.store()).unwrap();
    let withholder = users[3].address;
    for (number, served) in [(0, false), (1, true), (2, false)] {
        play_round(&mut chain, &mut users, number, served);
        assert_eq!(rewards(&chain, number).0.contains_key(&withholder), served);
        assert!(round(&chain, number).penalties.is_empty());
    }
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.trainers[&withholder], TRAINER_BOND);
    assert_conserved(&chain, supply);
}

#[test]
fn a_validator_that_did_not_vote_availability_earns_no_validator_reward_for_a_correct_attestation()
{
    let (mut chain, mut users) = started(1);
    commit_and_reveal(&mut chain, &mut users, 0, &[1, 2]);
    // Validators 4, 5 and 6 (4 000 of 6 000) vote; validator 7 does not.
    let both: &[usize] = &[1, 2];
    vote(
        &mut chain,
        &mut users,
        0,
        &[(4, both), (5, both), (6, both)],
    );
    let (first, second) = (users[1].address, users[2].address);
    assert_eq!(round(&chain, 0).votes.len(), 3);
    // All four attest the same model and the same scores.
    let attestations = all_attest(&users, both);
    attest(&mut chain, &mut users, 0, &attestations);
    let (trainer_rewards, validator_rewards, scores) = rewards(&chain, 0);
    assert!(!validator_rewards.contains_key(&users[7].address));
    for validator in [4, 5, 6] {
        assert!(validator_rewards[&users[validator].address] > 0);
    }
    assert_eq!(scores[&first], 500_000);
    assert_eq!(scores[&second], 500_000);
    assert_eq!(trainer_rewards[&first], trainer_rewards[&second]);
    // It loses the reward, not stake (only trainer 3, which never revealed, is slashed).
    let Some(Outcome::Finalized { slashed, .. }) = round(&chain, 0).outcome else {
        unreachable!("finalized above")
    };
    assert_eq!(slashed.keys().collect::<Vec<_>>(), [&users[3].address]);
}

/// What the ledger cannot tell from a fault is never slashed: an update served to only half of
/// the stake (at least 1/3 holds it), or a round in which validators with less than 2/3 of stake
/// voted (the missing votes may be crashed validators), earns nothing but costs no bond, however
/// many rounds in a row it happens.
#[test]
fn a_trainer_is_not_slashed_when_a_third_holds_its_update_or_too_few_validators_voted() {
    let (mut chain, mut users) = started(4);
    let supply = query::supply(chain.store()).unwrap();
    let withholder = users[3].address;
    // Rounds 0 and 1: validators 4 and 6 (3 000 of 6 000) hold trainer 3's update.
    // Rounds 2 and 3: only validators 4 and 5 (2 000) vote, holding nothing from trainer 3.
    let half: Vec<(usize, &[usize])> =
        vec![(4, &[1, 2, 3]), (5, &[1, 2]), (6, &[1, 2, 3]), (7, &[1, 2])];
    let few: Vec<(usize, &[usize])> = vec![(4, &[1, 2]), (5, &[1, 2])];
    for (number, votes, counted) in [
        (0, &half, &[1usize, 2][..]),
        (1, &half, &[1, 2]),
        (2, &few, &[]),
        (3, &few, &[]),
    ] {
        commit_and_reveal(&mut chain, &mut users, number, &[1, 2, 3]);
        vote(&mut chain, &mut users, number, votes);
        let attestations = all_attest(&users, counted);
        attest(&mut chain, &mut users, number, &attestations);
        let record = round(&chain, number);
        assert!(record.unserved.is_empty(), "round {number}");
        assert!(record.penalties.is_empty(), "round {number}");
        assert!(!record.counts(&withholder), "round {number}");
        assert!(!rewards(&chain, number).0.contains_key(&withholder));
    }
    let task = query::task(chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.trainers[&withholder], TRAINER_BOND);
    assert_conserved(&chain, supply);
}
