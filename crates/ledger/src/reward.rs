//! Reward arithmetic: the per-trainer score consensus (stake-weighted median, clipping relative
//! to it on both sides) and the proportional split of a round's reward. Pure integer functions.
//!
//! For each trainer `t`, over the agreeing validators `v` (bond `w_v`) that scored it (`s_vt`):
//! 1. a trainer scored by validators holding at most half of the agreeing bond gets 0: a
//!    minority's scores pay nobody. A missing score is not a zero: it is left out of the median
//!    and the mean, and it costs its validator that trainer's agreement;
//! 2. `c_t` = the stake-weighted (lower) median of the scores given;
//! 3. every score is clipped into `[c_t (1 - tol), c_t (1 + tol)]`: the band is *relative* to the
//!    median, so a trainer whose median score is 0 gets exactly 0 whatever a minority says;
//! 4. the trainer's consensus score is the stake-weighted mean of the clipped scores.
//!
//! **What a minority can steer.** Let the validators that score against the honest ones hold a
//! fraction `p < 1/2` of the agreeing bond. The weighted median then lies between the smallest
//! and the largest honest score, and the minority's clipped scores lie within `tol` of it, so
//! `c_t` moves by at most `p * tol * c_t` around what the honest validators alone would give
//! when they agree (they do when they score on the same data). A zero-work trainer (honest score 0) gets 0;
//! a working friend's share of the trainer pool grows at most by the factor
//! `(1 + p tol) / (1 - p tol)` (about 1.11 at `p = 1/2`, `tol = 10%`). `tests/score_steering.rs`
//! holds the minority to exactly this.
//!
//! Trainers share the trainer pool in proportion to their consensus scores. A validator's
//! **agreement** is how much of the round's scored value it agreed with: per trainer,
//! `a_vt = 1 - min(1, |s_vt - clip(s_vt)| / (tol c_t))` (0 for a missing score): full inside
//! the band, nothing one band's width outside it; averaged with weights `c_t` (plainly, when
//! every `c_t` is 0). Validators score on the same held-out data, so honest validators give
//! identical scores and agree fully; one that scores nothing, or everyone 0, or copies last
//! round's consensus, agrees with little or nothing. Validators share the validator pool in
//! proportion to `bond x agreement`. Rounding dust stays in the escrow.

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
/// to validators; `tolerance_ppm` is the clipping band's half-width relative to the median.
pub fn settle(
    trainers: &[Address],
    ballots: &BTreeMap<Address, Ballot<'_>>,
    pool: u128,
    validator_ppm: u32,
    tolerance_ppm: u32,
) -> Settlement {
    let total_weight: u128 = ballots.values().map(|b| b.weight).sum();
    // Per validator: the sum of c_t * a_vt and of a_vt over the trainers a majority scored.
    let mut agreed: BTreeMap<Address, (u128, u128)> =
        ballots.keys().map(|v| (*v, (0, 0))).collect();
    let mut mass = 0u128;
    let mut counted = 0u128;
    let mut scores = BTreeMap::new();
    for trainer in trainers {
        let mut points: Vec<(u32, u128)> = ballots
            .values()
            .filter_map(|b| Some((*b.scores.get(trainer)?, b.weight)))
            .collect();
        let scored_weight: u128 = points.iter().map(|(_, w)| *w).sum();
        let majority = scored_weight > total_weight - scored_weight;
        let median = match weighted_median(&mut points) {
            Some(median) if majority => median,
            _ => {
                scores.insert(*trainer, 0);
                continue;
            }
        };
        let half_width = mul_div(
            u128::from(median),
            u128::from(tolerance_ppm),
            u128::from(PPM),
        )
        .map_or(0, |w| u32::try_from(w).unwrap_or(PPM));
        let low = median.saturating_sub(half_width);
        let high = median.saturating_add(half_width).min(PPM);
        // Exact weighted mean when the weighted sum fits in u128; otherwise the sum of
        // per-validator floors (at most one unit low per validator).
        let mut exact = Some(0u128);
        let mut floors = 0u128;
        for ballot in ballots.values() {
            let Some(raw) = ballot.scores.get(trainer).copied() else {
                continue;
            };
            let clipped = raw.clamp(low, high);
            exact = exact
                .and_then(|sum| sum.checked_add(ballot.weight.checked_mul(u128::from(clipped))?));
            floors += mul_div(ballot.weight, u128::from(clipped), scored_weight).unwrap_or(0);
        }
        let consensus = exact.map_or(floors, |sum| sum / scored_weight);
        let consensus = u32::try_from(consensus).unwrap_or(PPM).min(PPM);
        scores.insert(*trainer, consensus);
        mass += u128::from(consensus);
        counted += 1;
        for (validator, ballot) in ballots {
            let agreement = match ballot.scores.get(trainer) {
                None => 0,
                Some(raw) => {
                    let off = u128::from(raw.abs_diff((*raw).clamp(low, high)));
                    // One band's width outside the band is no agreement at all.
                    let scale = u128::from(half_width.max(1));
                    u128::from(PPM).saturating_sub(
                        mul_div(off, u128::from(PPM), scale).unwrap_or(u128::from(PPM)),
                    )
                }
            };
            if let Some((weighted, plain)) = agreed.get_mut(validator) {
                *weighted += u128::from(consensus) * agreement;
                *plain += agreement;
            }
        }
    }

    let validator_pool = crate::amount::fraction(pool, validator_ppm);
    let trainer_pool = pool - validator_pool;
    let trainer_weights = scores.iter().map(|(t, s)| (*t, u128::from(*s))).collect();
    let agreements: Vec<(Address, u128, u128)> = ballots
        .iter()
        .map(|(validator, ballot)| {
            let (weighted, plain) = agreed.get(validator).copied().unwrap_or_default();
            // Weighted by consensus score; plainly when every score is 0; and when a majority
            // scored nobody, there was nothing to disagree on.
            let agreement = weighted
                .checked_div(mass)
                .or_else(|| plain.checked_div(counted))
                .unwrap_or(u128::from(PPM));
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
        // Clipped to 500k +- 10%, [450k, 550k]: (500 + 500 + 550 + 450) / 4 = 500k.
        assert_eq!(settlement.scores[&trainer], 500_000);
        assert_eq!(settlement.trainer_rewards[&trainer], 800);
        // Honest validators agree fully; each outlier is 450k off the band, more than its width:
        // no agreement, no reward.
        let rewards = &settlement.validator_rewards;
        assert!(rewards[&address(10)] > 0);
        assert!(!rewards.contains_key(&address(12)) && !rewards.contains_key(&address(13)));
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
