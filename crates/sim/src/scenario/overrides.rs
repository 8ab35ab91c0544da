//! Command-line flags that override a scenario's main keys (`cairn simulate --trainers 20 ...`).

use super::groups::{TrainerBehaviourKind, TrainerGroup, ValidatorBehaviour, ValidatorGroup};
use super::{Scenario, ScenarioError, DEFAULT_TRAINER_STAKE, DEFAULT_VALIDATOR_STAKE};

/// Attack used when `--attackers` adds attackers to a scenario that has none and names none.
pub const DEFAULT_OVERRIDE_ATTACK: &str = "alie";

/// Values given on the command line; each `Some` replaces the scenario's key.
///
/// Node counts keep the scenario's other groups: `trainers` is the new total number of trainer
/// nodes and `validators` the new total of validators, and the honest groups absorb the
/// difference. `attackers` and `attack` replace every `attack` group with one group of
/// `attackers` nodes running `attack` (each defaulting to the scenario's).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScenarioOverrides {
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--rounds`.
    pub rounds: Option<u32>,
    /// `--local-steps`.
    pub local_steps: Option<u32>,
    /// `--trainers`: total trainer nodes.
    pub trainers: Option<u32>,
    /// `--attackers`: trainers in the `attack` group.
    pub attackers: Option<u32>,
    /// `--attack`: the attack those trainers run.
    pub attack: Option<String>,
    /// `--validators`: total validator nodes.
    pub validators: Option<u32>,
    /// `--rule`.
    pub rule: Option<String>,
    /// `--dataset`.
    pub dataset: Option<cairn_ml::data::BuiltinDataset>,
    /// `--data-dir`.
    pub data_dir: Option<std::path::PathBuf>,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--latency-ms`.
    pub latency_ms: Option<u64>,
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--audit-rate`.
    pub audit_rate: Option<f64>,
}

impl ScenarioOverrides {
    /// Applies every given value to `scenario`. Errors when a count leaves no room for the
    /// honest nodes (e.g. `--trainers 3 --attackers 3`).
    pub fn apply(&self, scenario: &mut Scenario) -> Result<(), ScenarioError> {
        set(&mut scenario.seed, self.seed);
        set(&mut scenario.rounds, self.rounds);
        set(&mut scenario.local_steps, self.local_steps);
        set(&mut scenario.rule, self.rule.clone());
        set(&mut scenario.dataset, self.dataset);
        set(&mut scenario.partition, self.partition.clone());
        set(&mut scenario.threads, self.threads);
        set(&mut scenario.network.latency_ms, self.latency_ms);
        if self.audit_rate.is_some() {
            scenario.verification.audit_rate = self.audit_rate;
        }
        if self.data_dir.is_some() {
            scenario.data_dir = self.data_dir.clone();
        }
        if self.model.is_some() {
            scenario.model = self.model.clone();
        }
        if self.attackers.is_some() || self.attack.is_some() || self.trainers.is_some() {
            self.apply_trainers(scenario)?;
        }
        if let Some(total) = self.validators {
            apply_validators(scenario, total)?;
        }
        Ok(())
    }

    fn apply_trainers(&self, scenario: &mut Scenario) -> Result<(), ScenarioError> {
        let total = match self.trainers {
            Some(total) => u64::from(total),
            None => scenario.trainer_count(),
        };
        let is_attack = |g: &TrainerGroup| g.behaviour == TrainerBehaviourKind::Attack;
        if self.attackers.is_some() || self.attack.is_some() {
            let first = scenario.trainers.iter().find(|g| is_attack(g));
            let attack = self
                .attack
                .clone()
                .or_else(|| first.and_then(|g| g.attack.clone()))
                .unwrap_or_else(|| DEFAULT_OVERRIDE_ATTACK.to_owned());
            let stake = first.map_or(DEFAULT_TRAINER_STAKE, |g| g.stake);
            let count = match self.attackers {
                Some(count) => count,
                None => scenario
                    .trainers
                    .iter()
                    .filter(|g| is_attack(g))
                    .map(|g| g.count)
                    .sum(),
            };
            let at = scenario.trainers.iter().position(is_attack);
            scenario.trainers.retain(|g| !is_attack(g));
            if count > 0 {
                let group = TrainerGroup {
                    stake,
                    ..TrainerGroup::attack(count, &attack)
                };
                let at = at
                    .unwrap_or(scenario.trainers.len())
                    .min(scenario.trainers.len());
                scenario.trainers.insert(at, group);
            }
        }
        let is_honest = |g: &TrainerGroup| g.behaviour == TrainerBehaviourKind::Honest;
        let others: u64 = scenario
            .trainers
            .iter()
            .filter(|g| !is_honest(g))
            .map(TrainerGroup::node_count)
            .sum();
        let honest =
            total
                .checked_sub(others)
                .filter(|&h| h > 0)
                .ok_or(ScenarioError::NoRoomForHonest {
                    flag: "trainers",
                    given: total,
                    others,
                    role: "trainer",
                })?;
        let honest = u32::try_from(honest).map_err(|_| ScenarioError::TooLarge {
            field: "trainers".to_owned(),
            value: honest,
            max: u64::from(u32::MAX),
        })?;
        let stake = scenario
            .trainers
            .iter()
            .find(|g| is_honest(g))
            .map_or(DEFAULT_TRAINER_STAKE, |g| g.stake);
        let at = scenario.trainers.iter().position(is_honest).unwrap_or(0);
        scenario.trainers.retain(|g| !is_honest(g));
        scenario.trainers.insert(
            at.min(scenario.trainers.len()),
            TrainerGroup {
                stake,
                ..TrainerGroup::honest(honest)
            },
        );
        Ok(())
    }
}

fn apply_validators(scenario: &mut Scenario, total: u32) -> Result<(), ScenarioError> {
    let is_honest = |g: &ValidatorGroup| g.behaviour == ValidatorBehaviour::Honest;
    let others: u32 = scenario
        .validators
        .iter()
        .filter(|g| !is_honest(g))
        .map(|g| g.count)
        .sum();
    let honest =
        total
            .checked_sub(others)
            .filter(|&h| h > 0)
            .ok_or(ScenarioError::NoRoomForHonest {
                flag: "validators",
                given: u64::from(total),
                others: u64::from(others),
                role: "validator",
            })?;
    let stake = scenario
        .validators
        .iter()
        .find(|g| is_honest(g))
        .map_or(DEFAULT_VALIDATOR_STAKE, |g| g.stake);
    let at = scenario.validators.iter().position(is_honest).unwrap_or(0);
    scenario.validators.retain(|g| !is_honest(g));
    scenario.validators.insert(
        at.min(scenario.validators.len()),
        ValidatorGroup {
            count: honest,
            behaviour: ValidatorBehaviour::Honest,
            stake,
        },
    );
    Ok(())
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}
