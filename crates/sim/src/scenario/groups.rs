//! Trainer and validator groups as written in a scenario, and the nodes they expand to.
//!
//! A group is `count` nodes with one behaviour and one stake. Groups expand in file order into
//! numbered nodes: validators are `v0, v1, ...` and trainers `t0, t1, ...` (a Sybil attacker
//! expands to `identities` consecutive trainer names).

use std::fmt;
use std::str::FromStr;

use cairn_robust::attack::Attack;
use serde::{Deserialize, Serialize};

/// Stake a trainer locks when its group does not say (tokens): large against its expected
/// reward per round, so that losing it when caught cheating outweighs what cheating earns at a
/// low audit rate (`docs/verification.md`).
pub const DEFAULT_TRAINER_STAKE: u64 = 40_000;
/// Stake a validator locks when its group does not say (tokens; its attestation weight).
pub const DEFAULT_VALIDATOR_STAKE: u64 = 1_000;
/// Attack a Sybil group runs when it names none.
pub const DEFAULT_SYBIL_ATTACK: &str = "alie";
/// Identities a Sybil attacker splits into when its group does not say.
pub const DEFAULT_SYBIL_IDENTITIES: u32 = 3;
/// Fraction of its work a lazy trainer does when its group does not say.
pub const DEFAULT_LAZY_FRACTION: f64 = 0.5;
/// Half-width of the uniform noise a noise Sybil or a perturbed stale update adds.
pub const DEFAULT_NOISE: f32 = 1e-3;
/// What a scaled-update trainer multiplies its update by when its group does not say.
pub const DEFAULT_SCALE: f32 = 2.0;

/// What the trainers of a group do each round (the `behaviour` key of `[[trainers]]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainerBehaviourKind {
    /// Trains on its shard and follows the protocol.
    #[default]
    Honest,
    /// Byzantine: submits updates crafted by the group's `attack` (every attack of
    /// `cairn-robust`); the group's members collude (they craft their updates together).
    Attack,
    /// Trains honestly on its shard with every label `y` replaced by `classes - 1 - y`.
    LabelFlip,
    /// Claims rewards without training: submits the zero update or a stale one (`free_ride`).
    FreeRider,
    /// Commits to an update, then never reveals it (its bond is slashed).
    NonRevealer,
    /// Commits and reveals its update's hash, then lets nobody fetch the update (it does not
    /// count; a second round in a row is slashed).
    Withholder,
    /// Reveals a blob that does not decode as an update of the model's size.
    MalformedBlob,
    /// One attacker split into `identities` small-stake nodes that all submit the same update,
    /// crafted by the group's `attack`.
    Sybil,
    /// Does a `fraction` of its work (of its steps, or of its shard: `lazy`) and claims all.
    Lazy,
    /// Trains one step, reveals that change times the steps, and commits a made-up trace.
    ForgedTrace,
    /// Recomputes another trainer's update (`victim`, default the first honest trainer) from
    /// public data and commits it as its own.
    Copier,
    /// One training run sold under `identities` nodes, each adding its own `noise`.
    NoiseSybil,
    /// Reveals the last global step plus `noise` without training.
    PerturbedStale,
    /// Trains honestly and reveals its update times `factor`.
    Scaled,
}

impl TrainerBehaviourKind {
    /// The name written in scenario files (`honest`, `attack`, `label_flip`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Honest => "honest",
            Self::Attack => "attack",
            Self::LabelFlip => "label_flip",
            Self::FreeRider => "free_rider",
            Self::NonRevealer => "non_revealer",
            Self::Withholder => "withholder",
            Self::MalformedBlob => "malformed_blob",
            Self::Sybil => "sybil",
            Self::Lazy => "lazy",
            Self::ForgedTrace => "forged_trace",
            Self::Copier => "copier",
            Self::NoiseSybil => "noise_sybil",
            Self::PerturbedStale => "perturbed_stale",
            Self::Scaled => "scaled",
        }
    }
}

/// What a free rider submits instead of a trained update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreeRide {
    /// The all-zero update.
    #[default]
    Zero,
    /// Its own update of the previous round (the zero update in the first round).
    Stale,
}

/// What a lazy trainer skips.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LazyKind {
    /// It trains only the first `fraction` of its steps.
    #[default]
    Steps,
    /// It trains every step on only the first `fraction` of its shard.
    Shard,
}

/// A `[[trainers]]` table: `count` trainers sharing a behaviour and a stake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainerGroup {
    /// Number of trainers (for `sybil`: number of attackers, each split into `identities` nodes).
    pub count: u32,
    /// What they do.
    pub behaviour: TrainerBehaviourKind,
    /// Tokens each one stakes (for `sybil`: each attacker's total, split among its identities).
    pub stake: u64,
    /// The attack (`attack` and `sybil` only), in `cairn attack --kind` syntax, e.g. `alie`,
    /// `ipm:0.5`, `min_max:std`; a Sybil group defaults to [`DEFAULT_SYBIL_ATTACK`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
    /// What a free rider submits (`free_rider` only; default `zero`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_ride: Option<FreeRide>,
    /// Nodes each Sybil attacker runs (`sybil` and `noise_sybil`; default
    /// [`DEFAULT_SYBIL_IDENTITIES`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identities: Option<u32>,
    /// What a lazy trainer skips (`lazy` only; default `steps`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lazy: Option<LazyKind>,
    /// Fraction of its steps or shard a lazy trainer works on, in (0, 1) (`lazy` only; default
    /// [`DEFAULT_LAZY_FRACTION`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// The trainer a copier copies, e.g. `t0` (`copier` only; default the first honest one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub victim: Option<String>,
    /// Half-width of the uniform noise added to each value (`noise_sybil` and
    /// `perturbed_stale`; default [`DEFAULT_NOISE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise: Option<f32>,
    /// What a scaled update is multiplied by (`scaled` only; default [`DEFAULT_SCALE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<f32>,
}

impl Default for TrainerGroup {
    fn default() -> Self {
        Self {
            count: 1,
            behaviour: TrainerBehaviourKind::Honest,
            stake: DEFAULT_TRAINER_STAKE,
            attack: None,
            free_ride: None,
            identities: None,
            lazy: None,
            fraction: None,
            victim: None,
            noise: None,
            factor: None,
        }
    }
}

impl TrainerGroup {
    /// A group of `count` honest trainers with the default stake.
    pub fn honest(count: u32) -> Self {
        Self {
            count,
            ..Self::default()
        }
    }

    /// A group of `count` colluding trainers running `attack` with the default stake.
    pub fn attack(count: u32, attack: &str) -> Self {
        Self {
            count,
            behaviour: TrainerBehaviourKind::Attack,
            attack: Some(attack.to_owned()),
            ..Self::default()
        }
    }

    /// Nodes this group expands to (`count`, or `count × identities` for Sybils).
    pub fn node_count(&self) -> u64 {
        match self.behaviour {
            TrainerBehaviourKind::Sybil | TrainerBehaviourKind::NoiseSybil => {
                u64::from(self.count)
                    * u64::from(self.identities.unwrap_or(DEFAULT_SYBIL_IDENTITIES))
            }
            _ => u64::from(self.count),
        }
    }
}

/// What the validators of a group do (the `behaviour` key of `[[validators]]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidatorBehaviour {
    /// Aggregates, scores and attests as the protocol says.
    #[default]
    Honest,
    /// Byzantine: attests to a model hash that is not the aggregate's.
    WrongModelHash,
    /// Byzantine: attests the right model but copies another validator's scores.
    CopyScores,
    /// Byzantine: never attests.
    Silent,
    /// Attests honestly but never runs the audits it is drawn for.
    LazyAuditor,
    /// Challenges one trainer a round without cause and disagrees with every claim.
    FalseChallenger,
}

impl ValidatorBehaviour {
    /// The label used in reports (`honest`, `wrong_model_hash`, `copy_scores`, `silent`,
    /// `lazy_auditor`, `false_challenger`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Honest => "honest",
            Self::WrongModelHash => "wrong_model_hash",
            Self::CopyScores => "copy_scores",
            Self::Silent => "silent",
            Self::LazyAuditor => "lazy_auditor",
            Self::FalseChallenger => "false_challenger",
        }
    }
}

/// A `[[validators]]` table: `count` validators sharing a behaviour and a stake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorGroup {
    /// Number of validators.
    pub count: u32,
    /// What they do.
    pub behaviour: ValidatorBehaviour,
    /// Tokens each one stakes (its attestation weight).
    pub stake: u64,
}

impl Default for ValidatorGroup {
    fn default() -> Self {
        Self {
            count: 1,
            behaviour: ValidatorBehaviour::Honest,
            stake: DEFAULT_VALIDATOR_STAKE,
        }
    }
}

/// A trainer's behaviour with its parameters parsed (what the runner acts on).
#[derive(Clone, Debug, PartialEq)]
pub enum TrainerBehaviour {
    /// Follows the protocol.
    Honest,
    /// Submits updates crafted by `attack`, together with its coalition.
    Attack(Attack),
    /// Trains on flipped labels (`y -> classes - 1 - y`).
    LabelFlip,
    /// Submits the zero or a stale update.
    FreeRider(FreeRide),
    /// Commits and never reveals.
    NonRevealer,
    /// Reveals and serves the update to nobody.
    Withholder,
    /// Reveals an undecodable blob.
    MalformedBlob,
    /// One identity of a Sybil attacker; every identity submits the first vector of `attack`.
    Sybil(Attack),
    /// Does a fraction of its work and claims all of it.
    Lazy {
        /// What it skips.
        kind: LazyKind,
        /// The fraction it does.
        fraction: f64,
    },
    /// Shortcut update with a made-up trace.
    ForgedTrace,
    /// Copies another trainer's update (the named node, or the first honest trainer).
    Copier {
        /// The victim's node name.
        victim: Option<String>,
    },
    /// One identity of a noise Sybil (the first of each attacker trains).
    NoiseSybil {
        /// Half-width of its noise.
        noise: f32,
    },
    /// The last global step plus noise.
    PerturbedStale {
        /// Half-width of the noise.
        noise: f32,
    },
    /// Its honest update times `factor`.
    Scaled {
        /// The multiplier.
        factor: f32,
    },
}

impl TrainerBehaviour {
    /// Whether the trainer follows the protocol.
    pub fn is_honest(&self) -> bool {
        matches!(self, Self::Honest)
    }

    /// The label used in reports, e.g. `honest`, `attack:alie:auto`, `free_rider:stale`,
    /// `sybil:ipm:0.1`.
    pub fn label(&self) -> String {
        match self {
            Self::Honest => "honest".to_owned(),
            Self::Attack(attack) => format!("attack:{attack}"),
            Self::LabelFlip => "label_flip".to_owned(),
            Self::FreeRider(FreeRide::Zero) => "free_rider:zero".to_owned(),
            Self::FreeRider(FreeRide::Stale) => "free_rider:stale".to_owned(),
            Self::NonRevealer => "non_revealer".to_owned(),
            Self::Withholder => "withholder".to_owned(),
            Self::MalformedBlob => "malformed_blob".to_owned(),
            Self::Sybil(attack) => format!("sybil:{attack}"),
            Self::Lazy { kind, fraction } => {
                let kind = match kind {
                    LazyKind::Steps => "steps",
                    LazyKind::Shard => "shard",
                };
                format!("lazy:{kind}:{fraction}")
            }
            Self::ForgedTrace => "forged_trace".to_owned(),
            Self::Copier { .. } => "copier".to_owned(),
            Self::NoiseSybil { .. } => "noise_sybil".to_owned(),
            Self::PerturbedStale { .. } => "perturbed_stale".to_owned(),
            Self::Scaled { factor } => format!("scaled:{factor}"),
        }
    }
}

/// One trainer node of the expanded scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerNode {
    /// Position among the trainers (the `3` of `t3`).
    pub index: usize,
    /// Its name, `t{index}`.
    pub name: String,
    /// What it does.
    pub behaviour: TrainerBehaviour,
    /// Tokens it stakes.
    pub stake: u64,
    /// Nodes with the same id collude: one `attack` group, or the identities of one Sybil
    /// (the first identity of a noise Sybil trains for all).
    pub coalition_id: Option<usize>,
}

/// One validator node of the expanded scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorNode {
    /// Position among the validators (the `1` of `v1`).
    pub index: usize,
    /// Its name, `v{index}`.
    pub name: String,
    /// What it does.
    pub behaviour: ValidatorBehaviour,
    /// Tokens it stakes (its attestation weight).
    pub stake: u64,
}

/// A node's name: `v{i}` for the i-th validator, `t{i}` for the i-th trainer (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeName {
    /// The validator with this index.
    Validator(usize),
    /// The trainer with this index.
    Trainer(usize),
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Validator(index) => write!(f, "v{index}"),
            Self::Trainer(index) => write!(f, "t{index}"),
        }
    }
}

/// The error for text that is not a node name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a node name; write v<index> for a validator or t<index> for a trainer, e.g. v0, t3")]
pub struct BadNodeName(pub String);

impl FromStr for NodeName {
    type Err = BadNodeName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadNodeName(text.to_owned());
        let (role, digits) = text.split_at_checked(1).ok_or_else(bad)?;
        // Reject signs and leading zeros so every node has exactly one spelling.
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (digits.len() > 1 && digits.starts_with('0'))
        {
            return Err(bad());
        }
        let index: usize = digits.parse().map_err(|_| bad())?;
        match role {
            "v" => Ok(Self::Validator(index)),
            "t" => Ok(Self::Trainer(index)),
            _ => Err(bad()),
        }
    }
}
