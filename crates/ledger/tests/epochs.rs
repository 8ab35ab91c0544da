//! The validator set follows stake through epochs: a candidate that bonds and stands enters the
//! set at the next epoch boundary (not before), withdrawing or losing stake takes it out there,
//! offers are checked against bonded stake, and a chain without epochs refuses candidacies.

mod common;

use std::collections::BTreeMap;

use cairn_ledger::genesis::GenesisError;
use cairn_ledger::store::MemoryStore;
use cairn_ledger::validators::{self, CandidacyError, Candidate};
use cairn_ledger::{query, Chain, Params, Payload, TxError};
use common::*;

const EPOCH: u64 = 8;
const WEIGHT: u128 = 1_000;

fn params() -> Params {
    Params {
        epoch_length: EPOCH,
        ..Params::default()
    }
}

/// Users 0..=2 are genesis validators of weight 1 000; user 3 and 4 are outsiders with a balance.
fn network() -> (Chain<MemoryStore>, Vec<User>) {
    let users = users(5);
    let chain = chain(&genesis_with_validators(
        &users,
        &[(0, WEIGHT), (1, WEIGHT), (2, WEIGHT)],
        params(),
    ));
    (chain, users)
}

fn set(chain: &Chain<MemoryStore>) -> BTreeMap<cairn_ledger::Address, u128> {
    query::consensus_validators(chain.store()).unwrap()
}

fn candidacy_error(error: TxError) -> CandidacyError {
    match error {
        TxError::Candidacy(error) => error,
        other => panic!("expected a candidacy error, got {other:?}"),
    }
}

#[test]
fn a_bonded_candidate_enters_at_the_next_boundary_and_not_before() {
    let (mut chain, mut users) = network();
    let genesis_set = set(&chain);
    assert_eq!(genesis_set.len(), 3);
    let joiner = users[3].address;
    let joiner_key = users[3].key.verifying_key().to_bytes();
    let bond = users[3].sign(Payload::Bond { amount: 2_000 });
    let stand = users[3].sign(Payload::Candidacy { stake: 1_500 });
    commit(&mut chain, vec![bond, stand]);
    assert_eq!(
        validators::roster(chain.store()).unwrap()[&joiner],
        Candidate {
            stake: 1_500,
            key: Some(joiner_key)
        }
    );
    // Blocks 1..=6 stay in epoch 0 with the genesis set.
    advance_to(&mut chain, EPOCH - 2);
    assert_eq!(set(&chain), genesis_set);
    // Block 7 is epoch 0's last: the next set is written after its transactions.
    advance_to(&mut chain, EPOCH - 1);
    let next = set(&chain);
    assert_eq!(next.len(), 4);
    assert_eq!(next[&joiner], 1_500);
    for (address, weight) in &genesis_set {
        assert_eq!(next[address], *weight);
    }
    assert_eq!(validators::epoch_of(&params(), EPOCH - 1), 0);
    assert_eq!(validators::epoch_of(&params(), EPOCH), 1);
    assert!(validators::is_epoch_end(&params(), EPOCH - 1));
    assert!(!validators::is_epoch_end(&params(), EPOCH));
    // The new validator joins tasks with its weight as bond, like a genesis one.
    advance_to(&mut chain, 2 * EPOCH - 1);
    assert_eq!(set(&chain), next, "nothing changed, the set stays");
}

#[test]
fn withdrawing_or_losing_stake_leaves_the_set_at_the_next_boundary() {
    let (mut chain, mut users) = network();
    let leaver = users[0].address;
    let withdraw = users[0].sign(Payload::Candidacy { stake: 0 });
    commit(&mut chain, vec![withdraw]);
    assert!(
        set(&chain).contains_key(&leaver),
        "still in until the epoch ends"
    );
    advance_to(&mut chain, EPOCH - 1);
    assert!(!set(&chain).contains_key(&leaver));
    assert_eq!(set(&chain).len(), 2);

    // A candidate whose bonded stake falls below its offer counts with what is bonded, and
    // leaves once that is below the minimum bond.
    let bond = users[3].sign(Payload::Bond { amount: 1_000 });
    let stand = users[3].sign(Payload::Candidacy { stake: 1_000 });
    commit(&mut chain, vec![bond, stand]);
    let unbond = users[3].sign(Payload::Unbond { amount: 600 });
    commit(&mut chain, vec![unbond]);
    advance_to(&mut chain, 2 * EPOCH - 1);
    assert_eq!(set(&chain)[&users[3].address], 400);
    let unbond = users[3].sign(Payload::Unbond { amount: 350 });
    commit(&mut chain, vec![unbond]);
    advance_to(&mut chain, 3 * EPOCH - 1);
    assert!(!set(&chain).contains_key(&users[3].address));
}

#[test]
fn offers_are_checked_against_bonded_stake_and_the_minimum() {
    let (mut chain, mut users) = network();
    let unbonded = users[3].sign(Payload::Candidacy { stake: 500 });
    assert_eq!(
        candidacy_error(expect_rejected(&mut chain, vec![unbonded])),
        CandidacyError::NotBonded {
            offered: 500,
            bonded: 0
        }
    );
    users[3].nonce -= 1;
    let bond = users[3].sign(Payload::Bond { amount: 500 });
    commit(&mut chain, vec![bond]);
    let tiny = users[3].sign(Payload::Candidacy { stake: 1 });
    assert_eq!(
        candidacy_error(expect_rejected(&mut chain, vec![tiny])),
        CandidacyError::StakeBelowMinimum {
            offered: 1,
            minimum: Params::default().min_bond
        }
    );
    users[3].nonce -= 1;
    let never_stood = users[4].sign(Payload::Candidacy { stake: 0 });
    assert_eq!(
        candidacy_error(expect_rejected(&mut chain, vec![never_stood])),
        CandidacyError::NotStanding(users[4].address)
    );
}

#[test]
fn a_chain_without_epochs_refuses_candidacies_and_never_rotates() {
    let mut users = users(4);
    let mut chain = chain(&genesis_with_validators(
        &users,
        &[(0, WEIGHT)],
        Params::default(),
    ));
    let bond = users[3].sign(Payload::Bond { amount: 2_000 });
    commit(&mut chain, vec![bond]);
    let stand = users[3].sign(Payload::Candidacy { stake: 1_000 });
    assert_eq!(
        candidacy_error(expect_rejected(&mut chain, vec![stand])),
        CandidacyError::NoEpochs
    );
    let before = set(&chain);
    advance_to(&mut chain, 40);
    assert_eq!(set(&chain), before);
}

#[test]
fn when_everyone_withdraws_the_set_stays() {
    let (mut chain, mut users) = network();
    let withdrawals = (0..3)
        .map(|i| users[i].sign(Payload::Candidacy { stake: 0 }))
        .collect();
    let before = set(&chain);
    commit(&mut chain, withdrawals);
    advance_to(&mut chain, EPOCH - 1);
    assert_eq!(
        set(&chain),
        before,
        "a chain never stops for want of validators"
    );
}

#[test]
fn genesis_refuses_short_epochs_and_unbonding_faster_than_an_epoch() {
    let users = users(2);
    let short = genesis_with_validators(
        &users,
        &[(0, WEIGHT)],
        Params {
            epoch_length: 1,
            ..Params::default()
        },
    );
    assert_eq!(short.validate(), Err(GenesisError::EpochTooShort(1)));
    let fast_exit = genesis_with_validators(
        &users,
        &[(0, WEIGHT)],
        Params {
            epoch_length: 50,
            unbond_delay: 49,
            ..Params::default()
        },
    );
    assert_eq!(
        fast_exit.validate(),
        Err(GenesisError::UnbondBeforeEpochEnds {
            unbond_delay: 49,
            epoch_length: 50
        })
    );
}
