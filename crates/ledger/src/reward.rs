//! Reward arithmetic: the per-trainer score consensus (stake-weighted median, clipping on both
//! sides) and the proportional split of a round's reward. Pure integer functions.
//!
//! For each trainer `t`, with agreeing validators `v` of bond `w_v` and score `s_vt` (0 if the
//! validator did not score `t`):
//! 1. `c_t` = the stake-weighted (lower) median of the `s_vt`;
//! 2. every score is clipped into `[c_t - tol, c_t + tol]` (too high and too low alike);
//! 3. the trainer's consensus score is the stake-weighted mean of the clipped scores.
//!
//! Trainers share the trainer pool in proportion to their consensus scores. A validator's
//! agreement is `1 - (mean amount clipped off its scores)`, and validators share the validator
//! pool in proportion to `bond x agreement`. Rounding dust stays in the task's escrow.

use std::collections::BTreeMap;

use crate::address::Address;
use crate::amount::mul_div;
use crate::encoding::PPM;

/// One agreeing validator's weight and scores.
#[derive(Clone, Debug)]
pub struct Ballot<'a> {
    /// Bond (attestation weight).
    pub weight: u128,
    /// Score per trainer, ppm.
    pub scores: &'a BTreeMap<Address, u32>,
}

/// The result of a round's score consensus and payout split.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Consensus score per trainer, ppm.
    pub scores: BTreeMap<Address, u32>,
    /// Amount per trainer.
    pub trainer_rewards: BTreeMap<Address, u128>,
    /// Amount per validator.
    pub validator_rewards: BTreeMap<Address, u128>,
}

impl Settlement {
    /// Total paid out.
    pub fn total(&self) -> u128 {
        self.trainer_rewards
            .values()
            .chain(self.validator_rewards.values())
            .sum()
    }
}

/// The stake-weighted lower median: the smallest score at which the cumulative weight reaches
/// half the total. `None` when there is no weight at all.
pub fn weighted_median(points: &mut [(u32, u128)]) -> Option<u32> {
    points.sort_unstable();
    let total: u128 = points.iter().map(|(_, w)| *w).sum();
    if total == 0 {
        return None;
    }
    let half = total - total / 2;
    let mut cumulative = 0u128;
    for (score, weight) in points.iter() {
        cumulative += weight;
        if cumulative >= half {
            return Some(*score);
        }
    }
    points.last().map(|(score, _)| *score)
}

/// Splits `pool` in proportion to `weights` (floor each share; the dust is not paid). The
/// weights must sum to at most `u128::MAX`; if they do not, nothing is paid.
pub fn split(pool: u128, weights: &BTreeMap<Address, u128>) -> BTreeMap<Address, u128> {
    let Some(total) = weights
        .values()
        .try_fold(0u128, |sum, w| sum.checked_add(*w))
    else {
        return BTreeMap::new();
    };
    weights
        .iter()
        .filter_map(|(address, weight)| {
            let share = mul_div(pool, *weight, total)?;
            (share > 0).then_some((*address, share))
        })
        .collect()
}

/// Computes consensus scores and payouts. `trainers` are those who revealed; `ballots` are the
/// validators whose model hash won; `pool` is the round's reward, of which `validator_ppm` goes
/// to validators; `tolerance_ppm` is the clipping band's half-width.
pub fn settle(
    trainers: &[Address],
    ballots: &BTreeMap<Address, Ballot<'_>>,
    pool: u128,
    validator_ppm: u32,
    tolerance_ppm: u32,
) -> Settlement {
    let total_weight: u128 = ballots.values().map(|b| b.weight).sum();
    let mut clipped_off: BTreeMap<Address, u128> = ballots.keys().map(|v| (*v, 0)).collect();
    let mut scores = BTreeMap::new();
    for trainer in trainers {
        let score_of = |ballot: &Ballot| ballot.scores.get(trainer).copied().unwrap_or(0);
        let mut points: Vec<(u32, u128)> =
            ballots.values().map(|b| (score_of(b), b.weight)).collect();
        let Some(median) = weighted_median(&mut points) else {
            continue;
        };
        let low = median.saturating_sub(tolerance_ppm);
        let high = median.saturating_add(tolerance_ppm).min(PPM);
        // Exact weighted mean when the weighted sum fits in u128; otherwise the sum of
        // per-validator floors (at most one unit low per validator).
        let mut exact = Some(0u128);
        let mut floors = 0u128;
        for (validator, ballot) in ballots {
            let raw = score_of(ballot);
            let clipped = raw.clamp(low, high);
            exact = exact
                .and_then(|sum| sum.checked_add(ballot.weight.checked_mul(u128::from(clipped))?));
            floors += mul_div(ballot.weight, u128::from(clipped), total_weight).unwrap_or(0);
            if let Some(off) = clipped_off.get_mut(validator) {
                *off += u128::from(raw.abs_diff(clipped));
            }
        }
        let consensus = exact.map_or(floors, |sum| sum / total_weight);
        scores.insert(*trainer, u32::try_from(consensus).unwrap_or(PPM).min(PPM));
    }

    let validator_pool = crate::amount::fraction(pool, validator_ppm);
    let trainer_pool = pool - validator_pool;
    let trainer_weights = scores.iter().map(|(t, s)| (*t, u128::from(*s))).collect();
    let count = trainers.len().max(1) as u128;
    let agreements: Vec<(Address, u128, u128)> = ballots
        .iter()
        .map(|(validator, ballot)| {
            let mean_off = clipped_off.get(validator).copied().unwrap_or(0) / count;
            let agreement = u128::from(PPM).saturating_sub(mean_off);
            (*validator, ballot.weight, agreement)
        })
        .collect();
    // bond x agreement exactly when every product and their sum fit; otherwise scale all bonds
    // down by 1e6 (bonds sum to at most the supply, so the scaled weights always fit).
    let exact: Option<BTreeMap<Address, u128>> = agreements
        .iter()
        .map(|(v, bond, agreement)| bond.checked_mul(*agreement).map(|w| (*v, w)))
        .collect::<Option<BTreeMap<_, _>>>()
        .filter(|weights| {
            weights
                .values()
                .try_fold(0u128, |sum, w| sum.checked_add(*w))
                .is_some()
        });
    let validator_weights = exact.unwrap_or_else(|| {
        agreements
            .iter()
            .map(|(v, bond, agreement)| {
                (*v, mul_div(*bond, *agreement, u128::from(PPM)).unwrap_or(0))
            })
            .collect()
    });
    Settlement {
        trainer_rewards: split(trainer_pool, &trainer_weights),
        validator_rewards: split(validator_pool, &validator_weights),
        scores,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(byte: u8) -> Address {
        Address([byte; 20])
    }

    #[test]
    fn weighted_median_follows_stake_not_head_count() {
        let mut points = vec![(100, 1), (200, 1), (900, 5)];
        assert_eq!(weighted_median(&mut points), Some(900));
        let mut points = vec![(100, 3), (200, 1), (900, 1)];
        assert_eq!(weighted_median(&mut points), Some(100));
        assert_eq!(weighted_median(&mut []), None);
    }

    #[test]
    fn outlying_scores_are_clipped_on_both_sides() {
        let trainer = address(1);
        let honest = BTreeMap::from([(trainer, 500_000)]);
        let high = BTreeMap::from([(trainer, 1_000_000)]);
        let low = BTreeMap::from([(trainer, 0)]);
        let ballots = BTreeMap::from([
            (
                address(10),
                Ballot {
                    weight: 1,
                    scores: &honest,
                },
            ),
            (
                address(11),
                Ballot {
                    weight: 1,
                    scores: &honest,
                },
            ),
            (
                address(12),
                Ballot {
                    weight: 1,
                    scores: &high,
                },
            ),
            (
                address(13),
                Ballot {
                    weight: 1,
                    scores: &low,
                },
            ),
        ]);
        let settlement = settle(&[trainer], &ballots, 1_000, 200_000, 100_000);
        // Clipped to [400k, 600k]: (500 + 500 + 600 + 400) / 4 = 500k.
        assert_eq!(settlement.scores[&trainer], 500_000);
        assert_eq!(settlement.trainer_rewards[&trainer], 800);
        // Honest validators agree fully; the outliers lost 400k each of agreement.
        let rewards = &settlement.validator_rewards;
        assert!(rewards[&address(10)] > rewards[&address(12)]);
        assert_eq!(rewards[&address(12)], rewards[&address(13)]);
        assert!(settlement.total() <= 1_000);
    }

    #[test]
    fn trainers_are_paid_in_proportion_to_consensus_scores() {
        let (a, b) = (address(1), address(2));
        let scores = BTreeMap::from([(a, 300_000), (b, 100_000)]);
        let ballots = BTreeMap::from([(
            address(10),
            Ballot {
                weight: 7,
                scores: &scores,
            },
        )]);
        let settlement = settle(&[a, b], &ballots, 1_000, 0, 0);
        assert_eq!(settlement.trainer_rewards[&a], 750);
        assert_eq!(settlement.trainer_rewards[&b], 250);
        assert!(settlement.validator_rewards.is_empty());
    }
}
