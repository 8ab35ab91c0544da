//! Parameter sweeps: one scenario run over a grid of parameter values, every point at every seed
//! of a range, giving each node group's expected profit per point with its 95% interval, and
//! per attack the frontier: the parameter value at which the attack turns profitable.
//!
//! A sweep varies one or two [`Knob`]s (`audit_rate`, `slash_fraction`, `reward_per_round`,
//! `attacker_share`, prices of the cost model, ...). The first axis is the one the frontier is
//! read along; the second, if any, gives one frontier point per value. Like [`crate::seeds`],
//! results are the same bytes on any number of workers.
//!
//! ```
//! use cairn_sim::sweep::{Axis, Knob};
//! let axis: Axis = "audit_rate=0.01,0.05,0.1".parse().unwrap();
//! assert_eq!(axis.knob, Knob::AuditRate);
//! assert_eq!(axis.values, [0.01, 0.05, 0.1]);
//! assert!("audit_rate=".parse::<Axis>().is_err());
//! assert!("speed=1".parse::<Axis>().is_err());
//! ```

use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::Serialize;

use crate::runner::SimError;
use crate::scenario::{Scenario, ScenarioError, ScenarioOverrides};
use crate::seeds::{run_seeds, Estimate, GroupSummary, SeedRange};

/// Most points one sweep takes (the product of its axes' lengths).
pub const MAX_POINTS: usize = 400;
/// Most values on one axis.
pub const MAX_VALUES: usize = 100;

/// A scenario parameter a sweep can vary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    /// `verification.audit_rate`, in [0, 1].
    AuditRate,
    /// `slash_fraction`, in [0, 1].
    SlashFraction,
    /// `reward_per_round`, whole tokens.
    RewardPerRound,
    /// Share of the trainers that attack, in (0, 1): `round(share × trainers)` attackers (at
    /// least one) replace the attack groups, running the scenario's attack (`alie` when it has
    /// none), as `--attackers` does.
    AttackerShare,
    /// Number of attacking trainers, as `--attackers`.
    Attackers,
    /// `costs.train_per_sample`.
    TrainPerSample,
    /// `costs.score_per_sample`.
    ScorePerSample,
    /// `costs.audit_per_sample`.
    AuditPerSample,
    /// `costs.stake_per_round`.
    StakePerRound,
    /// `verification.challenge_bond`, whole tokens.
    ChallengeBond,
}

impl Knob {
    /// Every knob, in the order `--help` lists them.
    pub const ALL: [Knob; 10] = [
        Knob::AuditRate,
        Knob::SlashFraction,
        Knob::RewardPerRound,
        Knob::AttackerShare,
        Knob::Attackers,
        Knob::TrainPerSample,
        Knob::ScorePerSample,
        Knob::AuditPerSample,
        Knob::StakePerRound,
        Knob::ChallengeBond,
    ];

    /// The name a sweep axis uses.
    pub fn name(self) -> &'static str {
        match self {
            Knob::AuditRate => "audit_rate",
            Knob::SlashFraction => "slash_fraction",
            Knob::RewardPerRound => "reward_per_round",
            Knob::AttackerShare => "attacker_share",
            Knob::Attackers => "attackers",
            Knob::TrainPerSample => "train_per_sample",
            Knob::ScorePerSample => "score_per_sample",
            Knob::AuditPerSample => "audit_per_sample",
            Knob::StakePerRound => "stake_per_round",
            Knob::ChallengeBond => "challenge_bond",
        }
    }

    /// Whether the knob takes whole numbers only.
    fn integral(self) -> bool {
        matches!(
            self,
            Knob::RewardPerRound | Knob::Attackers | Knob::ChallengeBond
        )
    }

    /// Sets the knob to `value` in `scenario` (which [`Scenario::validate`] then checks).
    pub fn apply(self, scenario: &mut Scenario, value: f64) -> Result<(), ScenarioError> {
        let whole = || -> Result<u64, ScenarioError> {
            if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < 2f64.powi(53) {
                Ok(value as u64)
            } else {
                Err(ScenarioError::BadNumber {
                    field: self.name().to_owned(),
                    value,
                    range: "a whole number",
                })
            }
        };
        match self {
            Knob::AuditRate => scenario.verification.audit_rate = Some(value),
            Knob::SlashFraction => scenario.slash_fraction = value,
            Knob::RewardPerRound => scenario.reward_per_round = whole()?,
            Knob::ChallengeBond => scenario.verification.challenge_bond = whole()?,
            Knob::TrainPerSample => scenario.costs.train_per_sample = value,
            Knob::ScorePerSample => scenario.costs.score_per_sample = value,
            Knob::AuditPerSample => scenario.costs.audit_per_sample = value,
            Knob::StakePerRound => scenario.costs.stake_per_round = value,
            Knob::Attackers => {
                let attackers = u32::try_from(whole()?).unwrap_or(u32::MAX);
                attackers_override(scenario, attackers)?;
            }
            Knob::AttackerShare => {
                if !(value > 0.0 && value < 1.0) {
                    return Err(ScenarioError::BadNumber {
                        field: self.name().to_owned(),
                        value,
                        range: "a share strictly between 0 and 1",
                    });
                }
                let trainers = scenario.trainer_count() as f64;
                let attackers = ((value * trainers).round() as u32).max(1);
                attackers_override(scenario, attackers)?;
            }
        }
        Ok(())
    }
}

fn attackers_override(scenario: &mut Scenario, attackers: u32) -> Result<(), ScenarioError> {
    ScenarioOverrides {
        attackers: Some(attackers),
        ..ScenarioOverrides::default()
    }
    .apply(scenario)
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Knob {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Knob::ALL
            .into_iter()
            .find(|knob| knob.name() == text.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Knob::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "`{text}` is not a parameter a sweep can vary; use one of {}",
                    names.join(", ")
                )
            })
    }
}

/// One axis of a sweep: a knob and its values, written `KNOB=V1,V2,...`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Axis {
    /// The parameter.
    pub knob: Knob,
    /// Its values, in the order given.
    pub values: Vec<f64>,
}

impl FromStr for Axis {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (name, list) = text.split_once('=').ok_or_else(|| {
            format!("`{text}` is not an axis; write KNOB=V1,V2,..., e.g. audit_rate=0.01,0.05,0.1")
        })?;
        let knob: Knob = name.parse()?;
        let mut values = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let value: f64 = part
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| format!("`{part}` in `{text}` is not a finite number"))?;
            if knob.integral() && value.fract() != 0.0 {
                return Err(format!("{knob} takes whole numbers; `{part}` is not one"));
            }
            if values.contains(&value) {
                return Err(format!("`{part}` appears twice in `{text}`"));
            }
            values.push(value);
        }
        if values.is_empty() {
            return Err(format!("`{text}` gives {knob} no value"));
        }
        if values.len() > MAX_VALUES {
            return Err(format!(
                "`{text}` gives {} values; at most {MAX_VALUES} per axis",
                values.len()
            ));
        }
        Ok(Axis { knob, values })
    }
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// No axis, more than two, the same knob twice, or too many points.
    #[error("{0}")]
    Axes(String),
    /// A point's scenario is invalid.
    #[error("the scenario at {point} is invalid")]
    Point {
        /// The point, e.g. `audit_rate=0.5, attackers=3`.
        point: String,
        /// Why.
        #[source]
        source: ScenarioError,
    },
    /// A run failed.
    #[error("the run at {point}, seed {seed} failed")]
    Run {
        /// The point.
        point: String,
        /// The seed.
        seed: u64,
        /// Why.
        #[source]
        source: Box<SimError>,
    },
}

/// One point of the grid, summarized over the seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// The value of each axis, in axis order.
    pub values: Vec<f64>,
    /// Final accuracy over seeds.
    pub final_accuracy: Estimate,
    /// Share of rounds finalized over seeds.
    pub finalized_share: Estimate,
    /// Per node group, as [`crate::seeds::ManySeeds::groups`].
    pub groups: Vec<GroupSummary>,
}

/// Where an attack's expected profit changes sign along the first axis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Frontier {
    /// `role behaviour` of the group.
    pub group: String,
    /// The second axis's value this frontier is read at (`None` for a one-axis sweep).
    pub at: Option<f64>,
    /// What the profit does along the first axis.
    pub crossing: Crossing,
}

/// An attack's profit along the first axis of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Crossing {
    /// Mean profit is negative at every value swept.
    NeverProfitable,
    /// Mean profit is at least zero at every value swept.
    AlwaysProfitable,
    /// Mean profit crosses zero between two swept values, at `value` by linear interpolation
    /// (the first crossing, in axis order); `profitable_above` says on which side it pays.
    Crosses {
        /// The interpolated value of the first axis where the mean profit is zero.
        value: f64,
        /// Whether the attack pays at values above it (else below).
        profitable_above: bool,
    },
}

impl Crossing {
    /// Reads the crossing from `(x, mean profit)` pairs in axis order.
    pub fn of(points: &[(f64, f64)]) -> Self {
        if points.iter().all(|(_, profit)| *profit < 0.0) {
            return Crossing::NeverProfitable;
        }
        if points.iter().all(|(_, profit)| *profit >= 0.0) {
            return Crossing::AlwaysProfitable;
        }
        for pair in points.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            if (y0 < 0.0) != (y1 < 0.0) {
                let value = if y1 == y0 {
                    x0
                } else {
                    x0 + (x1 - x0) * (0.0 - y0) / (y1 - y0)
                };
                return Crossing::Crosses {
                    value,
                    profitable_above: (y1 >= 0.0) == (x1 > x0),
                };
            }
        }
        // Unreachable with both signs present, but a sign change is always between neighbours.
        Crossing::NeverProfitable
    }

    /// For CSV: `never`, `always`, or the value.
    fn csv(&self) -> (String, String) {
        match self {
            Crossing::NeverProfitable => ("never_profitable".into(), String::new()),
            Crossing::AlwaysProfitable => ("always_profitable".into(), String::new()),
            Crossing::Crosses {
                value,
                profitable_above,
            } => (
                if *profitable_above {
                    "profitable_above".into()
                } else {
                    "profitable_below".into()
                },
                format!("{value:.6}"),
            ),
        }
    }
}

/// A whole sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sweep {
    /// The scenario before any knob was set.
    pub scenario: Scenario,
    /// The axes, first one first.
    pub axes: Vec<Axis>,
    /// First seed of every point.
    pub first_seed: u64,
    /// Last seed of every point (included).
    pub last_seed: u64,
    /// Every point, the first axis varying fastest.
    pub points: Vec<Point>,
    /// Per group that is not honest, and per value of the second axis.
    pub frontiers: Vec<Frontier>,
}

/// The grid's points as values per axis, the first axis varying fastest.
fn grid(axes: &[Axis]) -> Vec<Vec<f64>> {
    let first = axes.first().map_or(&[][..], |a| a.values.as_slice());
    match axes.get(1) {
        None => first.iter().map(|a| vec![*a]).collect(),
        Some(second) => second
            .values
            .iter()
            .flat_map(|b| first.iter().map(move |a| vec![*a, *b]))
            .collect(),
    }
}

fn describe(axes: &[Axis], values: &[f64]) -> String {
    axes.iter()
        .zip(values)
        .map(|(axis, v)| format!("{}={v}", axis.knob))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The scenario at one point of the grid, validated.
pub fn point_scenario(
    scenario: &Scenario,
    axes: &[Axis],
    values: &[f64],
) -> Result<Scenario, SweepError> {
    let mut at = scenario.clone();
    let point = || describe(axes, values);
    for (axis, value) in axes.iter().zip(values) {
        axis.knob
            .apply(&mut at, *value)
            .map_err(|source| SweepError::Point {
                point: point(),
                source,
            })?;
    }
    at.validate().map_err(|source| SweepError::Point {
        point: point(),
        source,
    })?;
    Ok(at)
}

/// Checks the axes and every point's scenario before anything runs; returns the points.
pub fn check(scenario: &Scenario, axes: &[Axis]) -> Result<Vec<Vec<f64>>, SweepError> {
    if axes.is_empty() || axes.len() > 2 {
        return Err(SweepError::Axes(format!(
            "a sweep takes one or two axes (--vary); {} given",
            axes.len()
        )));
    }
    if axes.len() == 2 && axes[0].knob == axes[1].knob {
        return Err(SweepError::Axes(format!(
            "{} is given twice; vary two different parameters",
            axes[0].knob
        )));
    }
    let count: usize = axes.iter().map(|a| a.values.len()).product();
    if count > MAX_POINTS {
        return Err(SweepError::Axes(format!(
            "the grid has {count} points; at most {MAX_POINTS} run in one sweep"
        )));
    }
    let points = grid(axes);
    for values in &points {
        point_scenario(scenario, axes, values)?;
    }
    Ok(points)
}

/// Runs every point of the grid at every seed of `range` (`workers` runs at a time), calling
/// `done` after each finished run.
pub fn run_sweep(
    scenario: &Scenario,
    axes: Vec<Axis>,
    range: SeedRange,
    workers: usize,
    done: &(dyn Fn(u64) + Sync),
) -> Result<Sweep, SweepError> {
    let grid = check(scenario, &axes)?;
    let mut points = Vec::with_capacity(grid.len());
    for values in grid {
        let at = point_scenario(scenario, &axes, &values)?;
        let many =
            run_seeds(&at, range, workers, done).map_err(|(seed, source)| SweepError::Run {
                point: describe(&axes, &values),
                seed,
                source: Box::new(source),
            })?;
        points.push(Point {
            values,
            final_accuracy: many.final_accuracy,
            finalized_share: many.finalized_share,
            groups: many.groups,
        });
    }
    let frontiers = frontiers(&axes, &points);
    Ok(Sweep {
        scenario: scenario.clone(),
        axes,
        first_seed: range.first,
        last_seed: range.last,
        points,
        frontiers,
    })
}

fn key(group: &GroupSummary) -> String {
    format!("{} {}", group.role, group.behaviour)
}

/// The groups that are not honest, in the order they first appear.
fn attack_groups(points: &[Point]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for group in points.iter().flat_map(|p| &p.groups) {
        let key = key(group);
        if group.behaviour != "honest" && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

fn frontiers(axes: &[Axis], points: &[Point]) -> Vec<Frontier> {
    let seconds: Vec<Option<f64>> = match axes.get(1) {
        Some(axis) => axis.values.iter().copied().map(Some).collect(),
        None => vec![None],
    };
    let mut out = Vec::new();
    for group in attack_groups(points) {
        for at in &seconds {
            let line: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| at.is_none_or(|v| p.values.get(1) == Some(&v)))
                .filter_map(|p| {
                    let g = p.groups.iter().find(|g| key(g) == group)?;
                    Some((p.values[0], g.profit.mean))
                })
                .collect();
            if line.is_empty() {
                continue;
            }
            out.push(Frontier {
                group: group.clone(),
                at: *at,
                crossing: Crossing::of(&line),
            });
        }
    }
    out
}

impl Sweep {
    /// `sweep.csv`: one line per point and node group.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        for axis in &self.axes {
            let _ = write!(out, "{},", axis.knob);
        }
        out.push_str(
            "role,behaviour,nodes,seeds,rewards_mean,slashed_mean,costs_mean,profit_mean,\
             profit_low,profit_high,finalized_share,final_accuracy\n",
        );
        let seeds = self.last_seed - self.first_seed + 1;
        for point in &self.points {
            for g in &point.groups {
                for value in &point.values {
                    let _ = write!(out, "{value},");
                }
                let _ = writeln!(
                    out,
                    "{},{},{},{seeds},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.4},{:.4}",
                    g.role,
                    g.behaviour,
                    g.nodes,
                    g.rewards.mean,
                    g.slashed.mean,
                    g.costs.mean,
                    g.profit.mean,
                    g.profit.low,
                    g.profit.high,
                    point.finalized_share.mean,
                    point.final_accuracy.mean
                );
            }
        }
        out
    }

    /// `frontier.csv`: per attack group (and value of the second axis), where its mean profit
    /// turns from negative to positive along the first axis.
    pub fn frontier_csv(&self) -> String {
        let first = self.axes.first().map_or("value", |a| a.knob.name());
        let mut out = String::from("group,");
        if let Some(second) = self.axes.get(1) {
            let _ = write!(out, "{},", second.knob);
        }
        let _ = writeln!(out, "crossing,{first}");
        for frontier in &self.frontiers {
            let _ = write!(out, "{},", frontier.group);
            if let Some(at) = frontier.at {
                let _ = write!(out, "{at},");
            }
            let (kind, value) = frontier.crossing.csv();
            let _ = writeln!(out, "{kind},{value}");
        }
        out
    }

    /// A table for the terminal: per attack group, its profit at each value of the first axis
    /// (the second axis at its first value) and the frontier.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let Some(first) = self.axes.first() else {
            return out;
        };
        let _ = writeln!(
            out,
            "expected profit per node (mean over seeds {}..{}) along {}{}",
            self.first_seed,
            self.last_seed,
            first.knob,
            match self.axes.get(1) {
                Some(second) => format!(", {} = {}", second.knob, second.values[0]),
                None => String::new(),
            }
        );
        let _ = write!(out, "{:<36}", "group");
        for value in &first.values {
            let _ = write!(out, " {:>10}", format!("{value}"));
        }
        out.push('\n');
        let mut keys: Vec<String> = Vec::new();
        for group in self.points.iter().flat_map(|p| &p.groups) {
            if !keys.contains(&key(group)) {
                keys.push(key(group));
            }
        }
        let second = self.axes.get(1).map(|a| a.values[0]);
        for group in &keys {
            let _ = write!(out, "{group:<36}");
            for point in self
                .points
                .iter()
                .filter(|p| second.is_none_or(|v| p.values.get(1) == Some(&v)))
            {
                match point.groups.iter().find(|g| &key(g) == group) {
                    Some(g) => {
                        let _ = write!(out, " {:>10.0}", g.profit.mean);
                    }
                    None => {
                        let _ = write!(out, " {:>10}", "-");
                    }
                }
            }
            out.push('\n');
        }
        if !self.frontiers.is_empty() {
            out.push_str("\nfrontier (where the mean profit changes sign):\n");
        }
        for frontier in &self.frontiers {
            let at = match (frontier.at, self.axes.get(1)) {
                (Some(v), Some(axis)) => format!(" at {}={v}", axis.knob),
                _ => String::new(),
            };
            let verdict = match frontier.crossing {
                Crossing::NeverProfitable => "never profitable in the range swept".to_owned(),
                Crossing::AlwaysProfitable => "PROFITABLE across the range swept".to_owned(),
                Crossing::Crosses {
                    value,
                    profitable_above,
                } => format!(
                    "profitable {} {}={value:.4}",
                    if profitable_above { "above" } else { "below" },
                    first.knob
                ),
            };
            let _ = writeln!(out, "  {}{at}: {verdict}", frontier.group);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_and_refuse_what_cannot_be_swept() {
        let axis: Axis = "slash_fraction=0.05, 0.1 ,0.5".parse().unwrap();
        assert_eq!(axis.knob, Knob::SlashFraction);
        assert_eq!(axis.values, [0.05, 0.1, 0.5]);
        for bad in [
            "audit_rate",
            "audit_rate=",
            "audit_rate=x",
            "audit_rate=0.1,0.1",
            "audit_rate=NaN",
            "attackers=1.5",
            "nope=1",
        ] {
            assert!(bad.parse::<Axis>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_grid_varies_the_first_axis_fastest() {
        let axes = vec![
            "audit_rate=0.1,0.2".parse::<Axis>().unwrap(),
            "attackers=1,2,3".parse::<Axis>().unwrap(),
        ];
        assert_eq!(
            grid(&axes),
            [
                [0.1, 1.0],
                [0.2, 1.0],
                [0.1, 2.0],
                [0.2, 2.0],
                [0.1, 3.0],
                [0.2, 3.0]
            ]
        );
    }

    #[test]
    fn a_crossing_is_interpolated_between_neighbours() {
        assert_eq!(
            Crossing::of(&[(0.0, -3.0), (1.0, -1.0)]),
            Crossing::NeverProfitable
        );
        assert_eq!(
            Crossing::of(&[(0.0, 0.0), (1.0, 5.0)]),
            Crossing::AlwaysProfitable
        );
        // Profit falls as the audit rate rises: profitable below 0.25.
        assert_eq!(
            Crossing::of(&[(0.0, 10.0), (0.5, -10.0), (1.0, -30.0)]),
            Crossing::Crosses {
                value: 0.25,
                profitable_above: false
            }
        );
        assert_eq!(
            Crossing::of(&[(1.0, -4.0), (3.0, 4.0)]),
            Crossing::Crosses {
                value: 2.0,
                profitable_above: true
            }
        );
    }

    #[test]
    fn knobs_set_their_keys_and_points_are_checked_up_front() {
        let scenario = Scenario::default();
        let at =
            point_scenario(&scenario, &["slash_fraction=0.5".parse().unwrap()], &[0.5]).unwrap();
        assert_eq!(at.slash_ppm(), 500_000);
        let at =
            point_scenario(&scenario, &["attacker_share=0.3".parse().unwrap()], &[0.3]).unwrap();
        let attackers = at
            .trainer_nodes()
            .unwrap()
            .iter()
            .filter(|t| !t.behaviour.is_honest())
            .count();
        assert_eq!(attackers, 3);
        assert_eq!(at.trainer_count(), 10);
        let refused = check(&scenario, &["slash_fraction=0.5,2".parse().unwrap()]);
        assert!(
            matches!(refused, Err(SweepError::Point { .. })),
            "{refused:?}"
        );
        let twice = vec![
            "audit_rate=0.1".parse().unwrap(),
            "audit_rate=0.2".parse().unwrap(),
        ];
        assert!(matches!(check(&scenario, &twice), Err(SweepError::Axes(_))));
    }
}
