//! Reward steering by a validator minority fails: with honest validators holding more than half
//! of the agreeing bond and scoring alike, a minority holding a fraction `p` moves no trainer's
//! consensus score by more than `p * tol` of it, pays a zero-work friend nothing, and cannot
//! zero a victim; a validator that scores nothing, or everyone 0, earns nothing, and one whose
//! scores stray from the honest ones loses agreement in proportion (`cairn_ledger::reward`).

use std::collections::BTreeMap;

use cairn_ledger::reward::{settle, Ballot};
use cairn_ledger::Address;
use proptest::prelude::*;

const PPM: u32 = 1_000_000;
const TOLERANCE: u32 = 100_000;
const POOL: u128 = 1_000_000_000;
const VALIDATOR_SHARE: u32 = 200_000;

fn address(byte: u8) -> Address {
    Address([byte; 20])
}

/// What the minority does with one trainer's score.
#[derive(Clone, Debug)]
enum Steer {
    Omit,
    Score(u32),
}

fn steer() -> impl Strategy<Value = Steer> {
    prop_oneof![
        1 => Just(Steer::Omit),
        1 => Just(Steer::Score(PPM)),
        1 => Just(Steer::Score(0)),
        2 => (0..=PPM).prop_map(Steer::Score),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_minority_moves_a_consensus_score_by_at_most_p_times_tol(
        honest_scores in proptest::collection::vec(0u32..=200_000, 2..8),
        honest_weights in proptest::collection::vec(1u128..10_000, 1..5),
        minority_share_ppm in 1u32..500_000,
        steering in proptest::collection::vec(steer(), 8),
    ) {
        let trainers: Vec<Address> = (0..honest_scores.len()).map(|t| address(t as u8 + 1)).collect();
        let honest: BTreeMap<Address, u32> = trainers.iter().copied().zip(honest_scores.iter().copied()).collect();
        let honest_total: u128 = honest_weights.iter().sum();
        // The minority holds minority_share_ppm of all agreeing bond: w / (H + w) = p.
        let minority_weight = (honest_total * u128::from(minority_share_ppm))
            / u128::from(PPM - minority_share_ppm);
        prop_assume!(minority_weight > 0 && minority_weight < honest_total);
        let minority: BTreeMap<Address, u32> = trainers
            .iter()
            .zip(&steering)
            .filter_map(|(t, s)| match s {
                Steer::Omit => None,
                Steer::Score(score) => Some((*t, *score)),
            })
            .collect();
        let mut ballots = BTreeMap::new();
        for (i, weight) in honest_weights.iter().enumerate() {
            ballots.insert(address(100 + i as u8), Ballot { weight: *weight, scores: &honest });
        }
        ballots.insert(address(200), Ballot { weight: minority_weight, scores: &minority });
        let total = honest_total + minority_weight;

        let steered = settle(&trainers, &ballots, POOL, VALIDATOR_SHARE, TOLERANCE);
        for trainer in &trainers {
            let h = u128::from(honest[trainer]);
            let got = u128::from(steered.scores[trainer]);
            // |got - h| <= (w / total) * tol * h, plus one unit of rounding.
            let bound = (minority_weight * u128::from(TOLERANCE) * h)
                / (total * u128::from(PPM)) + 1;
            prop_assert!(got.abs_diff(h) <= bound, "trainer {trainer}: honest {h}, got {got}, bound {bound}");
            if h == 0 {
                prop_assert_eq!(got, 0, "a zero-work friend is paid nothing");
                prop_assert!(!steered.trainer_rewards.contains_key(trainer));
            }
        }
        // The honest validators agree fully, so per unit of bond the minority never out-earns
        // them (up to one unit of rounding).
        let honest_validator = address(100);
        let per_bond_honest = steered.validator_rewards.get(&honest_validator).copied().unwrap_or(0)
            * minority_weight;
        let per_bond_minority = steered.validator_rewards.get(&address(200)).copied().unwrap_or(0)
            * honest_weights[0];
        prop_assert!(per_bond_minority <= per_bond_honest + minority_weight);
    }
}

/// Three honest validators of bond 10 scoring alike, and one of bond 10 that behaves as given.
fn round_with(other: &BTreeMap<Address, u32>) -> cairn_ledger::reward::Settlement {
    let trainers = [address(1), address(2), address(3)];
    let honest = BTreeMap::from([
        (address(1), 500_000),
        (address(2), 300_000),
        (address(3), 0),
    ]);
    let ballots = BTreeMap::from([
        (
            address(10),
            Ballot {
                weight: 10,
                scores: &honest,
            },
        ),
        (
            address(11),
            Ballot {
                weight: 10,
                scores: &honest,
            },
        ),
        (
            address(12),
            Ballot {
                weight: 10,
                scores: &honest,
            },
        ),
        (
            address(13),
            Ballot {
                weight: 10,
                scores: other,
            },
        ),
    ]);
    settle(&trainers, &ballots, POOL, VALIDATOR_SHARE, TOLERANCE)
}

#[test]
fn a_minority_validator_cannot_pay_a_zero_work_friend() {
    // Validator 13 gives trainer 3 (its friend, whose update helped nobody) the whole score.
    let friendly = BTreeMap::from([(address(1), 0), (address(2), 0), (address(3), PPM)]);
    let settlement = round_with(&friendly);
    assert_eq!(settlement.scores[&address(3)], 0);
    assert!(!settlement.trainer_rewards.contains_key(&address(3)));
    // Under the old absolute band (median 0 +- 10% of PPM) the friend would have had 25 000 ppm.
    // The honest trainers keep scores within p * tol = 2.5% of their honest values.
    assert!(settlement.scores[&address(1)] >= 487_500);
    assert!(settlement.scores[&address(2)] >= 292_500);
}

#[test]
fn a_lazy_validator_and_a_zero_scorer_earn_nothing_and_a_near_miss_earns_less() {
    let honest = round_with(&BTreeMap::from([
        (address(1), 500_000),
        (address(2), 300_000),
        (address(3), 0),
    ]));
    let full = honest.validator_rewards[&address(13)];
    assert_eq!(full, honest.validator_rewards[&address(10)]);

    // Scores nothing: every score missing, no agreement, no reward; the trainers are paid as if
    // it had not voted.
    let lazy = round_with(&BTreeMap::new());
    assert!(!lazy.validator_rewards.contains_key(&address(13)));
    assert_eq!(lazy.scores, honest.scores);

    // Scores everyone 0 without evaluating: far outside every band, no agreement.
    let zeros = round_with(&BTreeMap::from([
        (address(1), 0),
        (address(2), 0),
        (address(3), 0),
    ]));
    assert!(!zeros.validator_rewards.contains_key(&address(13)));

    // Guesses 15% high on both working trainers (575 000 and 345 000 against bands reaching
    // 550 000 and 330 000): half a band's width beyond it, so half the agreement.
    let guess = round_with(&BTreeMap::from([
        (address(1), 575_000),
        (address(2), 345_000),
        (address(3), 0),
    ]));
    let guessed = guess.validator_rewards[&address(13)];
    let honest_reward = guess.validator_rewards[&address(10)];
    assert!(
        guessed * 2 <= honest_reward + 2,
        "{guessed} vs {honest_reward}"
    );
    assert!(
        guessed * 2 + 2 >= honest_reward,
        "{guessed} vs {honest_reward}"
    );
}

#[test]
fn a_trainer_scored_by_at_most_half_of_the_bond_gets_nothing() {
    let trainers = [address(1)];
    let some = BTreeMap::from([(address(1), 700_000)]);
    let none = BTreeMap::new();
    // Validator 10 (bond `scoring`) scores the trainer, validator 11 (bond 5) does not.
    let settle_with = |scoring: u128| {
        let ballots = BTreeMap::from([
            (
                address(10),
                Ballot {
                    weight: scoring,
                    scores: &some,
                },
            ),
            (
                address(11),
                Ballot {
                    weight: 5,
                    scores: &none,
                },
            ),
        ]);
        settle(&trainers, &ballots, POOL, VALIDATOR_SHARE, TOLERANCE)
    };
    let settlement = settle_with(5);
    assert_eq!(settlement.scores[&address(1)], 0);
    assert!(settlement.trainer_rewards.is_empty());
    // With one more unit of bond behind the score, it counts.
    let settlement = settle_with(6);
    assert_eq!(settlement.scores[&address(1)], 700_000);
}
