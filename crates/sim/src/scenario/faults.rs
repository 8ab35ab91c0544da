//! Random faults drawn per seed: the `[faults]` table turns a scenario into a family of
//! scenarios, each seed drawing its own crashes, partitions, message loss and Byzantine
//! validators, always within what a BFT network must survive (at most `f < n/3` validators
//! Byzantine or down at once, partitions that leave no side with a quorum, every validator
//! restarting). A run draws its faults first ([`Scenario::with_drawn_faults`]); the report's
//! `scenario.toml` holds them written out, so the run can be repeated without the table.
//!
//! ```
//! use cairn_sim::scenario::Scenario;
//! let scenario = Scenario::from_toml_str("[faults]\n[[validators]]\ncount = 4\n").unwrap();
//! let drawn = scenario.with_drawn_faults();
//! assert!(drawn.faults.is_none());
//! assert_eq!(drawn, scenario.with_drawn_faults()); // a function of the seed
//! drawn.validate().unwrap();
//! ```

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use super::groups::{ValidatorBehaviour, ValidatorGroup};
use super::network::{CrashEvent, PartitionEvent};
use super::Scenario;

/// Longest any drawn partition or crash lasts at least (simulated milliseconds).
const MIN_FAULT_MS: u64 = 5_000;

/// The Byzantine behaviours a validator may be drawn to run.
const BYZANTINE: [ValidatorBehaviour; 5] = [
    ValidatorBehaviour::WrongModelHash,
    ValidatorBehaviour::CopyScores,
    ValidatorBehaviour::Silent,
    ValidatorBehaviour::LazyAuditor,
    ValidatorBehaviour::FalseChallenger,
];

/// The `[faults]` table: how many faults of each kind a seed may draw, at most. Each count is
/// drawn uniformly from 0 to its maximum; every fault starts and heals before `until_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomFaults {
    /// Validators that crash and restart from their disk (with the Byzantine ones, at most
    /// `f = (n − 1) / 3`).
    pub validator_crashes: u32,
    /// Trainers that crash for good.
    pub trainer_crashes: u32,
    /// Partitions, one after another: the validators split in two halves (neither holds 2/3 of
    /// the stake), each trainer on a side drawn for it.
    pub partitions: u32,
    /// Largest share of messages lost; the loss is drawn uniformly in `[0, max_loss]`.
    pub max_loss: f64,
    /// Whether honest validators may be drawn Byzantine (up to `f` with the crashed ones), each
    /// running a behaviour drawn among wrong_model_hash, copy_scores, silent, lazy_auditor,
    /// false_challenger.
    pub byzantine_validators: bool,
    /// Every fault heals by then (simulated milliseconds from the start).
    pub until_ms: u64,
}

impl Default for RandomFaults {
    fn default() -> Self {
        Self {
            validator_crashes: 1,
            trainer_crashes: 1,
            partitions: 1,
            max_loss: 0.1,
            byzantine_validators: true,
            until_ms: 60_000,
        }
    }
}

/// A uniform draw in `[low, high]` (inclusive) from `rng`.
fn between(rng: &mut ChaCha20Rng, low: u64, high: u64) -> u64 {
    if high <= low {
        return low;
    }
    low + rng.next_u64() % (high - low + 1)
}

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// `count` distinct positions of `0..len`, in a random order.
fn pick(rng: &mut ChaCha20Rng, len: usize, count: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..len).collect();
    // Fisher–Yates, first `count` places only.
    for i in 0..count.min(len) {
        let j = i + (rng.next_u64() % (len - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(count.min(len));
    all
}

impl Scenario {
    /// The scenario with its `[faults]` drawn from its seed and written out as network events
    /// and validator behaviours (and the table removed); the scenario itself when it has none.
    pub fn with_drawn_faults(&self) -> Scenario {
        let Some(faults) = self.faults else {
            return self.clone();
        };
        let mut out = self.clone();
        out.faults = None;
        let key = blake3::derive_key("cairn/sim/faults/v1", &self.seed.to_le_bytes());
        let mut rng = ChaCha20Rng::from_seed(key);
        let validators = self.validator_nodes();
        let n = validators.len();
        let f = n.saturating_sub(1) / 3;
        let already = validators
            .iter()
            .filter(|v| v.behaviour != ValidatorBehaviour::Honest)
            .count();
        let honest: Vec<usize> = validators
            .iter()
            .filter(|v| v.behaviour == ValidatorBehaviour::Honest)
            .map(|v| v.index)
            .collect();
        let mut budget = f.saturating_sub(already);

        // Byzantine validators: each validator becomes its own group, so one can change.
        let mut behaviours: Vec<ValidatorBehaviour> =
            validators.iter().map(|v| v.behaviour).collect();
        if faults.byzantine_validators && budget > 0 {
            let count = between(&mut rng, 0, budget as u64) as usize;
            for position in pick(&mut rng, honest.len(), count) {
                let kind = BYZANTINE[(rng.next_u64() % BYZANTINE.len() as u64) as usize];
                behaviours[honest[position]] = kind;
            }
            budget -= count;
            out.validators = validators
                .iter()
                .zip(&behaviours)
                .map(|(v, behaviour)| ValidatorGroup {
                    count: 1,
                    behaviour: *behaviour,
                    stake: v.stake,
                })
                .collect();
        }
        let until = faults.until_ms.max(2 * MIN_FAULT_MS);

        // Crashes: honest validators restart; trainers stay down.
        let mut crashes = Vec::new();
        let still_honest: Vec<usize> = (0..n)
            .filter(|i| behaviours[*i] == ValidatorBehaviour::Honest)
            .collect();
        let count = between(
            &mut rng,
            0,
            u64::from(faults.validator_crashes).min(budget as u64),
        );
        for position in pick(&mut rng, still_honest.len(), count as usize) {
            let at_ms = between(&mut rng, 0, until - MIN_FAULT_MS);
            let restart_ms = between(&mut rng, at_ms + MIN_FAULT_MS, until);
            crashes.push(CrashEvent {
                node: validators[still_honest[position]].name.clone(),
                at_ms,
                restart_ms: Some(restart_ms),
            });
        }
        let trainers = self.trainer_count() as usize;
        let count = between(&mut rng, 0, u64::from(faults.trainer_crashes));
        for position in pick(&mut rng, trainers, count as usize) {
            crashes.push(CrashEvent {
                node: format!("t{position}"),
                at_ms: between(&mut rng, 0, until),
                restart_ms: None,
            });
        }
        crashes.sort_by(|a, b| (a.at_ms, &a.node).cmp(&(b.at_ms, &b.node)));
        out.network.crashes = crashes;

        // Partitions, in disjoint slots of [0, until).
        let mut partitions = Vec::new();
        let count = between(&mut rng, 0, u64::from(faults.partitions));
        let total: u64 = validators.iter().map(|v| v.stake).sum();
        if count > 0 && n >= 4 {
            let slot = until / count;
            for k in 0..count {
                if slot < MIN_FAULT_MS {
                    break;
                }
                let start = k * slot;
                let at_ms = between(&mut rng, start, start + slot - MIN_FAULT_MS);
                let heal_ms = between(&mut rng, at_ms + MIN_FAULT_MS, start + slot);
                let order = pick(&mut rng, n, n);
                let (left, right) = order.split_at(n.div_ceil(2));
                let side_stake = |side: &[usize]| -> u64 {
                    side.iter().map(|i| validators[*i].stake).sum::<u64>()
                };
                // Neither side may hold a quorum: 3 × side < 2 × total.
                if 3 * u128::from(side_stake(left).max(side_stake(right))) >= 2 * u128::from(total)
                {
                    continue;
                }
                let mut groups: [Vec<String>; 2] = [
                    left.iter().map(|i| validators[*i].name.clone()).collect(),
                    right.iter().map(|i| validators[*i].name.clone()).collect(),
                ];
                for t in 0..trainers {
                    match rng.next_u64() % 3 {
                        0 => groups[0].push(format!("t{t}")),
                        1 => groups[1].push(format!("t{t}")),
                        _ => {}
                    }
                }
                partitions.push(PartitionEvent {
                    at_ms,
                    heal_ms,
                    groups: groups.to_vec(),
                });
            }
        }
        out.network.partitions = partitions;
        let loss = unit(&mut rng) * faults.max_loss.clamp(0.0, 1.0);
        out.network.success_rate = self.network.success_rate * (1.0 - loss);
        out
    }

    /// When the last scripted fault of the network heals (the latest partition heal or crash
    /// restart; a crash for good counts at its start), in simulated milliseconds; 0 for none.
    pub fn faults_heal_ms(&self) -> u64 {
        let partitions = self.network.partitions.iter().map(|p| p.heal_ms);
        let crashes = self
            .network
            .crashes
            .iter()
            .map(|c| c.restart_ms.unwrap_or(c.at_ms));
        partitions.chain(crashes).max().unwrap_or(0)
    }
}
