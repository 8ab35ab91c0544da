//! Many seeds of one scenario: the same network, attackers and parameters run at every seed of a
//! range, in parallel, and summarized per node group with a mean and a 95% confidence interval.
//! One seed is an anecdote; an attack is unprofitable when its interval lies below zero.
//!
//! A node group is the nodes of one role and one behaviour label (`trainer honest`,
//! `trainer attack:alie:auto`, `validator silent`, ...). Per seed, a group's value is the mean
//! over its nodes; across seeds, the mean of those and `t(0.975, n-1) * s / sqrt(n)`.
//! Results come out in seed order whatever the number of workers, so the summary is the same
//! bytes on any machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::progress::NoProgress;
use crate::result::RunResult;
use crate::runner::{run, SimError};
use crate::scenario::Scenario;

/// Most seeds one many-seed run takes.
pub const MAX_SEEDS: u64 = 100_000;

/// An inclusive range of seeds, written `A..B` (`1..50` is fifty seeds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// First seed.
    pub first: u64,
    /// Last seed (included).
    pub last: u64,
}

impl SeedRange {
    /// The seeds, in order.
    pub fn seeds(&self) -> impl Iterator<Item = u64> {
        self.first..=self.last
    }

    /// How many seeds (at least one: `last >= first`).
    pub fn count(&self) -> u64 {
        self.last - self.first + 1
    }
}

impl FromStr for SeedRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (first, last) = text.split_once("..").ok_or_else(|| {
            format!("`{text}` is not a seed range; write FIRST..LAST, e.g. 1..50")
        })?;
        let number = |part: &str, which: &str| {
            part.trim()
                .parse::<u64>()
                .map_err(|_| format!("the {which} seed `{part}` of `{text}` is not a whole number"))
        };
        let (first, last) = (number(first, "first")?, number(last, "last")?);
        if last < first {
            return Err(format!(
                "seed range `{text}` is empty: the last seed must be at least the first"
            ));
        }
        let range = Self { first, last };
        if range.count() > MAX_SEEDS {
            return Err(format!(
                "seed range `{text}` holds {} seeds; at most {MAX_SEEDS} run at once",
                range.count()
            ));
        }
        Ok(range)
    }
}

/// A group's totals at one seed (means over its nodes).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupAtSeed {
    /// Nodes in the group.
    pub nodes: usize,
    /// Mean rewards per node.
    pub rewards: f64,
    /// Mean tokens slashed per node.
    pub slashed: f64,
    /// Mean rewards minus slashes per node.
    pub net: f64,
    /// Mean costs of work and stake per node (the scenario's `[costs]`).
    pub costs: f64,
    /// Mean profit per node: rewards − slashes − costs.
    pub profit: f64,
}

/// One seed's run, summarized.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeedSummary {
    /// The seed.
    pub seed: u64,
    /// Rounds that finalized.
    pub finalized: usize,
    /// Rounds run.
    pub rounds: usize,
    /// Final test accuracy.
    pub final_accuracy: f64,
    /// Per node group (`role behaviour`).
    pub groups: BTreeMap<String, GroupAtSeed>,
}

/// A mean over seeds and its 95% confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// Mean over seeds.
    pub mean: f64,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end of the 95% interval.
    pub high: f64,
}

impl Estimate {
    /// The mean and 95% interval (Student's t) of `values`; the interval is the point itself
    /// for fewer than two values.
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Self {
                mean: f64::NAN,
                low: f64::NAN,
                high: f64::NAN,
            };
        }
        // Sums in seed order: the same bits on every machine.
        let mean = values.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Self {
                mean,
                low: mean,
                high: mean,
            };
        }
        let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
        let half = t_975(n - 1) * (variance / n as f64).sqrt();
        Self {
            mean,
            low: mean - half,
            high: mean + half,
        }
    }

    /// Whether the whole interval lies below zero.
    pub fn surely_negative(&self) -> bool {
        self.high < 0.0
    }

    /// Whether the whole interval lies above zero.
    pub fn surely_positive(&self) -> bool {
        self.low > 0.0
    }
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (exact to 3 decimals up to
/// 30, then the normal 1.96 with a 1/df correction that stays within 0.3% of the true value).
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => 1.960 + 2.4 / df as f64,
    }
}

/// One node group over all seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSummary {
    /// `trainer` or `validator`.
    pub role: String,
    /// Behaviour label.
    pub behaviour: String,
    /// Nodes in the group (at the first seed).
    pub nodes: usize,
    /// Rewards per node.
    pub rewards: Estimate,
    /// Tokens slashed per node.
    pub slashed: Estimate,
    /// Rewards minus slashes per node.
    pub net: Estimate,
    /// Costs of work and stake per node.
    pub costs: Estimate,
    /// Profit per node: rewards − slashes − costs. The verdict reads this.
    pub profit: Estimate,
}

/// What a many-seed run gives.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ManySeeds {
    /// The scenario, at its own seed (each run replaced the seed).
    pub scenario: Scenario,
    /// First and last seed.
    pub first_seed: u64,
    /// Last seed (included).
    pub last_seed: u64,
    /// Final accuracy over seeds.
    pub final_accuracy: Estimate,
    /// Share of rounds finalized over seeds.
    pub finalized_share: Estimate,
    /// Per node group.
    pub groups: Vec<GroupSummary>,
    /// Every seed's summary, in seed order.
    pub seeds: Vec<SeedSummary>,
}

/// Summarizes one run.
pub fn summarize(seed: u64, result: &RunResult) -> SeedSummary {
    let mut members: BTreeMap<String, Vec<[u128; 3]>> = BTreeMap::new();
    for node in &result.nodes {
        members
            .entry(group_key(node.role.label(), &node.behaviour))
            .or_default()
            .push([node.rewards_total, node.slashed_total, node.costs.total()]);
    }
    let groups = members
        .into_iter()
        .map(|(key, nodes)| {
            let count = nodes.len().max(1) as f64;
            let mean = |i: usize| nodes.iter().map(|n| n[i] as f64).sum::<f64>() / count;
            let (rewards, slashed, costs) = (mean(0), mean(1), mean(2));
            let group = GroupAtSeed {
                nodes: nodes.len(),
                rewards,
                slashed,
                net: rewards - slashed,
                costs,
                profit: rewards - slashed - costs,
            };
            (key, group)
        })
        .collect();
    SeedSummary {
        seed,
        finalized: result.finalized_rounds(),
        rounds: result.rounds.len(),
        final_accuracy: result.final_accuracy,
        groups,
    }
}

fn group_key(role: &str, behaviour: &str) -> String {
    format!("{role} {behaviour}")
}

/// Runs `scenario` at every seed of `range` on `workers` threads (each run single-threaded),
/// calling `done` after each finished seed, and summarizes. The first failure stops the runs
/// not yet started and is returned with its seed.
pub fn run_seeds(
    scenario: &Scenario,
    range: SeedRange,
    workers: usize,
    done: &(dyn Fn(u64) + Sync),
) -> Result<ManySeeds, (u64, SimError)> {
    let seeds: Vec<u64> = range.seeds().collect();
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<SeedSummary, SimError>>>> =
        Mutex::new((0..seeds.len()).map(|_| None).collect());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, seeds.len()) {
            scope.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(seed) = seeds.get(index).copied() else {
                    return;
                };
                let mut one = scenario.clone();
                one.seed = seed;
                one.threads = 1;
                let outcome = run(&one, &mut NoProgress).map(|result| summarize(seed, &result));
                if outcome.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                if let Ok(mut slots) = slots.lock() {
                    slots[index] = Some(outcome);
                }
                done(seed);
            });
        }
    });
    let slots = slots
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut summaries = Vec::with_capacity(seeds.len());
    for (seed, slot) in seeds.iter().zip(slots) {
        match slot {
            Some(Ok(summary)) => summaries.push(summary),
            Some(Err(error)) => return Err((*seed, error)),
            // Not started because an earlier seed failed: that failure is returned above.
            None => {}
        }
    }
    Ok(combine(scenario, range, summaries))
}

/// Combines per-seed summaries (in seed order) into the many-seed summary.
pub fn combine(scenario: &Scenario, range: SeedRange, seeds: Vec<SeedSummary>) -> ManySeeds {
    let accuracy: Vec<f64> = seeds.iter().map(|s| s.final_accuracy).collect();
    let finalized: Vec<f64> = seeds
        .iter()
        .map(|s| s.finalized as f64 / s.rounds.max(1) as f64)
        .collect();
    let mut keys: Vec<&String> = seeds.iter().flat_map(|s| s.groups.keys()).collect();
    keys.sort();
    keys.dedup();
    let groups = keys
        .into_iter()
        .map(|key| {
            let at: Vec<&GroupAtSeed> = seeds.iter().filter_map(|s| s.groups.get(key)).collect();
            let field =
                |f: fn(&GroupAtSeed) -> f64| -> Vec<f64> { at.iter().map(|g| f(g)).collect() };
            let (role, behaviour) = key.split_once(' ').unwrap_or((key.as_str(), ""));
            GroupSummary {
                role: role.to_owned(),
                behaviour: behaviour.to_owned(),
                nodes: at.first().map_or(0, |g| g.nodes),
                rewards: Estimate::of(&field(|g| g.rewards)),
                slashed: Estimate::of(&field(|g| g.slashed)),
                net: Estimate::of(&field(|g| g.net)),
                costs: Estimate::of(&field(|g| g.costs)),
                profit: Estimate::of(&field(|g| g.profit)),
            }
        })
        .collect();
    ManySeeds {
        scenario: scenario.clone(),
        first_seed: range.first,
        last_seed: range.last,
        final_accuracy: Estimate::of(&accuracy),
        finalized_share: Estimate::of(&finalized),
        groups,
        seeds,
    }
}

impl ManySeeds {
    /// `groups.csv`: one line per node group with each estimate's mean and interval.
    pub fn groups_csv(&self) -> String {
        let mut out = String::from(
            "role,behaviour,nodes,seeds,rewards_mean,rewards_low,rewards_high,slashed_mean,\
             slashed_low,slashed_high,net_mean,net_low,net_high,costs_mean,costs_low,costs_high,\
             profit_mean,profit_low,profit_high\n",
        );
        for g in &self.groups {
            let _ = writeln!(
                out,
                "{},{},{},{},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},\
                 {:.2},{:.2},{:.2},{:.2}",
                g.role,
                g.behaviour,
                g.nodes,
                self.seeds.len(),
                g.rewards.mean,
                g.rewards.low,
                g.rewards.high,
                g.slashed.mean,
                g.slashed.low,
                g.slashed.high,
                g.net.mean,
                g.net.low,
                g.net.high,
                g.costs.mean,
                g.costs.low,
                g.costs.high,
                g.profit.mean,
                g.profit.low,
                g.profit.high
            );
        }
        out
    }

    /// `seeds.csv`: one line per seed and node group.
    pub fn seeds_csv(&self) -> String {
        let mut out = String::from(
            "seed,finalized,rounds,final_accuracy,role,behaviour,nodes,rewards,slashed,net,costs,\
             profit\n",
        );
        for s in &self.seeds {
            for (key, g) in &s.groups {
                let (role, behaviour) = key.split_once(' ').unwrap_or((key.as_str(), ""));
                let _ = writeln!(
                    out,
                    "{},{},{},{:.4},{role},{behaviour},{},{:.2},{:.2},{:.2},{:.2},{:.2}",
                    s.seed,
                    s.finalized,
                    s.rounds,
                    s.final_accuracy,
                    g.nodes,
                    g.rewards,
                    g.slashed,
                    g.net,
                    g.costs,
                    g.profit
                );
            }
        }
        out
    }

    /// A table for the terminal: each group's profit per node (rewards − slashes − costs) with
    /// its interval, and a verdict (`loses` when the whole interval is below zero, `profits`
    /// above, else `unclear`).
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} seeds ({}..{}): final accuracy {:.2}% [{:.2}, {:.2}], rounds finalized {:.1}%\n\n",
            self.seeds.len(),
            self.first_seed,
            self.last_seed,
            100.0 * self.final_accuracy.mean,
            100.0 * self.final_accuracy.low,
            100.0 * self.final_accuracy.high,
            100.0 * self.finalized_share.mean,
        );
        let _ = writeln!(
            out,
            "{:<10} {:<24} {:>5} {:>10} {:>10} {:>9} {:>28}  verdict",
            "role", "behaviour", "nodes", "rewards", "slashed", "costs", "profit per node [95% CI]"
        );
        for g in &self.groups {
            let verdict = if g.profit.surely_negative() {
                "loses"
            } else if g.profit.surely_positive() {
                "profits"
            } else {
                "unclear"
            };
            let _ = writeln!(
                out,
                "{:<10} {:<24} {:>5} {:>10.1} {:>10.1} {:>9.1} {:>28}  {verdict}",
                g.role,
                g.behaviour,
                g.nodes,
                g.rewards.mean,
                g.slashed.mean,
                g.costs.mean,
                format!(
                    "{:.1} [{:.1}, {:.1}]",
                    g.profit.mean, g.profit.low, g.profit.high
                ),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_are_inclusive_and_checked() {
        assert_eq!("1..50".parse::<SeedRange>().unwrap().count(), 50);
        assert_eq!(
            "7..7"
                .parse::<SeedRange>()
                .unwrap()
                .seeds()
                .collect::<Vec<_>>(),
            [7]
        );
        for bad in ["", "5", "9..3", "a..3", "1..x", "0..100000"] {
            assert!(bad.parse::<SeedRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_interval_is_students_t_and_shrinks_with_more_seeds() {
        let estimate = Estimate::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(estimate.mean, 2.5);
        // s = 1.291, t(3) = 3.182: half-width 2.054.
        assert!((estimate.high - estimate.mean - 2.054).abs() < 1e-3);
        let wider: Vec<f64> = (0..40).map(|i| f64::from(i % 4 + 1)).collect();
        let narrower = Estimate::of(&wider);
        assert!(narrower.high - narrower.mean < estimate.high - estimate.mean);
        assert!(Estimate::of(&[-3.0, -2.0, -4.0]).surely_negative());
        assert!(!Estimate::of(&[-3.0, 2.0]).surely_negative());
        assert_eq!(Estimate::of(&[5.0]).low, 5.0);
    }
}
