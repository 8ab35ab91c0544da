//! A simulated network as a researcher describes it: data, model, robust rule, trainers and
//! validators with their behaviours and stakes, and network conditions.
//!
//! A scenario is written in TOML; every key has a default, so the empty file is the default
//! scenario (mnist_5k, 8 honest trainers and 2 running ALIE, 4 honest validators,
//! `arc:2,nnm:2>centered_clipping:1:3+screen:2+sm:0.5`).
//! Unknown keys are errors. Every field is documented in `docs/simulate.md`.
//!
//! Nodes are named by role and position: validators `v0, v1, ...` and trainers `t0, t1, ...`,
//! numbered in the order their groups appear (see [`NodeName`]). Partitions and crashes refer to
//! nodes by these names.
//!
//! ```
//! use cairn_sim::scenario::Scenario;
//! let scenario = Scenario::from_toml_str("rounds = 3\n[[validators]]\ncount = 7\n").unwrap();
//! scenario.validate().unwrap();
//! assert_eq!(scenario.rounds, 3);
//! assert_eq!(scenario.validator_nodes().len(), 7);
//! assert_eq!(scenario.trainer_nodes().unwrap().len(), 10);
//! ```

mod faults;
mod groups;
mod network;
mod overrides;
mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use cairn_ml::data::BuiltinDataset;
use serde::{Deserialize, Serialize};

pub use faults::RandomFaults;
pub use groups::{
    BadNodeName, FreeRide, LazyKind, NodeName, TrainerBehaviour, TrainerBehaviourKind,
    TrainerGroup, TrainerNode, ValidatorBehaviour, ValidatorGroup, ValidatorNode,
    DEFAULT_LAZY_FRACTION, DEFAULT_NOISE, DEFAULT_SCALE, DEFAULT_SYBIL_ATTACK,
    DEFAULT_SYBIL_IDENTITIES, DEFAULT_TRAINER_STAKE, DEFAULT_VALIDATOR_STAKE,
};
pub use network::{
    CrashEvent, NetworkConditions, PartitionEvent, DEFAULT_JITTER_MS, DEFAULT_LATENCY_MS,
};
pub use overrides::ScenarioOverrides;
pub use validate::{
    ScenarioError, MAX_BATCH_SIZE, MAX_EVENT_MS, MAX_LATENCY_MS, MAX_LOCAL_STEPS, MAX_NODES,
    MAX_PRICE, MAX_ROUNDS, MAX_THREADS, MAX_TOML_INTEGER, MAX_WINDOW_BLOCKS,
};

/// Default seed of every random choice in a run.
pub const DEFAULT_SEED: u64 = 7;
/// Default number of rounds.
pub const DEFAULT_ROUNDS: u32 = 20;
/// Default SGD steps each trainer runs per round.
pub const DEFAULT_LOCAL_STEPS: u32 = 20;
/// Default mini-batch size of a local step.
pub const DEFAULT_BATCH_SIZE: u32 = 32;
/// Default data partition among trainers.
pub const DEFAULT_PARTITION: &str = "iid";
/// Default optimizer of the local steps.
pub const DEFAULT_OPTIMIZER: &str = "sgd:lr=0.1,momentum=0.9";
/// Default robust rule: nearest-neighbour mixing, then the coordinate-wise trimmed mean.
/// The recommended defence of `docs/robustness.md` at f = 2: adaptive robust clipping and
/// nearest-neighbour mixing, then centered clipping at radius 1 (3 iterations, from the last
/// global step), with server momentum 0.5: the one configuration no attack of the robustness
/// benchmark breaks on IID or label-skewed data.
pub const DEFAULT_RULE: &str = "arc:2,nnm:2>centered_clipping:1:3+screen:2+sm:0.5";
/// Default tokens paid out per finalized round.
pub const DEFAULT_REWARD_PER_ROUND: u64 = 10_000;
/// Default width of the hidden layer of the default model.
pub const DEFAULT_HIDDEN: usize = 64;

/// A whole simulated network and training task (the TOML scenario file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Seed of every random choice: keys, data split and partition, initial model, network
    /// jitter and loss, attacks. The same scenario and seed give the same run, bit for bit.
    pub seed: u64,
    /// Training rounds.
    pub rounds: u32,
    /// SGD steps each trainer runs per round.
    pub local_steps: u32,
    /// Samples per local step.
    pub batch_size: u32,
    /// Dataset: `mnist_5k` or `digits`, shipped in `data/` (a task's dataset must be a file all
    /// nodes hash the same; `fashion_mnist` is refused).
    pub dataset: BuiltinDataset,
    /// Folder holding the datasets; absent: `$CAIRN_DATA_DIR`, then the repository's `data/`.
    /// A relative path in a scenario file is relative to that file's folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// How training samples are split among trainers: `iid`, `dirichlet:ALPHA`,
    /// `shards:PER_TRAINER`, ... (passed to the protocol, which parses it).
    pub partition: String,
    /// Model, e.g. `mlp:784-64-10`; absent: an MLP with one hidden layer of 64 sized for the
    /// dataset (see [`Scenario::model`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Optimizer of the local steps, e.g. `sgd:lr=0.05`.
    pub optimizer: String,
    /// Robust rule with its pre-aggregation chain, e.g. `nnm:2>trimmed_mean:2` (passed verbatim to
    /// the protocol, which parses it).
    pub rule: String,
    /// Tokens paid to trainers and validators per finalized round.
    pub reward_per_round: u64,
    /// Fraction of its bond a member loses for a commitment it never reveals (an update or an
    /// attestation held back), in [0, 1]. Lost disputes take the whole bond whatever this is.
    pub slash_fraction: f64,
    /// What work and locked stake cost the nodes, in tokens: each node's profit in the report is
    /// rewards − slashes − these costs.
    pub costs: CostModel,
    /// Lengths of the round's windows, in blocks.
    pub windows: Windows,
    /// Traces, audits and disputes.
    pub verification: VerificationSettings,
    /// Trainer groups, expanded in order into `t0, t1, ...`.
    pub trainers: Vec<TrainerGroup>,
    /// Validator groups, expanded in order into `v0, v1, ...`.
    pub validators: Vec<ValidatorGroup>,
    /// Latency, jitter, loss, partitions and crashes.
    pub network: NetworkConditions,
    /// Random faults drawn per seed (crashes, partitions, loss, Byzantine validators), added to
    /// `network` and `validators` when the run starts; absent, only the scripted ones happen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<RandomFaults>,
    /// Worker threads for training and aggregation. Any value gives the same bits, so it is an
    /// execution setting, not part of the experiment: it is read but never written (not in
    /// `results.json` nor `scenario.toml`), and reports of runs on different thread counts are
    /// byte-identical.
    #[serde(skip_serializing)]
    pub threads: usize,
}

/// The `[costs]` table: the price of a node's work and of its locked stake, in tokens. The
/// simulation counts the work each node actually did (steps it trained, held-out samples it
/// evaluated, steps it re-ran in audits and disputes) and prices it here; nothing of this
/// reaches the ledger. A free rider that trains nothing pays nothing for training, a validator
/// that copies scores pays nothing for scoring: the prices make those savings visible.
///
/// The defaults are a reference point, not a market price: a training step on one sample (a
/// forward and a backward pass) costs 0.01 token, evaluating one sample (a forward pass, about
/// a third of that) 0.0033, re-executing in an audit the same as training, and a locked token
/// 0.0001 of itself per round (its use elsewhere forgone). At these prices honest work costs
/// a trainer about 1% and a validator about a quarter of its reward at the default scenario;
/// `cairn economics` sweeps them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostModel {
    /// Tokens per sample of one training step.
    pub train_per_sample: f64,
    /// Tokens per held-out sample evaluated when scoring updates.
    pub score_per_sample: f64,
    /// Tokens per sample of one training step re-executed in an audit or a dispute answer.
    pub audit_per_sample: f64,
    /// Fraction of a node's initial stake it forgoes per round the task runs.
    pub stake_per_round: f64,
}

/// Default price of one sample of a training step.
pub const DEFAULT_TRAIN_PER_SAMPLE: f64 = 0.01;
/// Default price of evaluating one held-out sample (a third of a training step's).
pub const DEFAULT_SCORE_PER_SAMPLE: f64 = 0.0033;
/// Default stake opportunity cost per round.
pub const DEFAULT_STAKE_PER_ROUND: f64 = 0.0001;
/// Default slash fraction for a commitment never revealed.
pub const DEFAULT_SLASH_FRACTION: f64 = 0.1;

impl Default for CostModel {
    fn default() -> Self {
        Self {
            train_per_sample: DEFAULT_TRAIN_PER_SAMPLE,
            score_per_sample: DEFAULT_SCORE_PER_SAMPLE,
            audit_per_sample: DEFAULT_TRAIN_PER_SAMPLE,
            stake_per_round: DEFAULT_STAKE_PER_ROUND,
        }
    }
}

/// The `[windows]` table: how many blocks each phase of a round lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Windows {
    /// Blocks during which trainers commit to their updates.
    pub commit: u64,
    /// Blocks during which trainers reveal them (right after the commit window).
    pub reveal: u64,
    /// Blocks during which validators vote which revealed updates they hold (right after the
    /// reveal window).
    pub availability: u64,
    /// Blocks for attestation commits, then as many for attestation reveals.
    pub attest: u64,
}

/// The `[verification]` table: how trainers' work is checked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationSettings {
    /// Fraction of revealed updates audited each round, in [0, 1]; absent, the smallest rate at
    /// which cheating loses money ([`Scenario::audit_ppm`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_rate: Option<f64>,
    /// A trace checkpoint every this many local steps.
    pub trace_every: u32,
    /// Blocks after a round closes during which its trainers can still be challenged.
    pub audit_window: u64,
    /// Blocks each side of a dispute has for a move.
    pub move_window: u64,
    /// Tokens a challenger locks (lost to the trainer if it challenged wrongly).
    pub challenge_bond: u64,
}

/// Tokens a challenger locks when the scenario does not say.
pub const DEFAULT_CHALLENGE_BOND: u64 = 500;
/// How many times the mean per-round trainer reward the default audit rate covers, in tenths: a
/// trainer's share of a round is its score's share, which the default scenario sees up to about
/// twice the mean, and a cheat that inflates its update (`scaled`) earns about that much
/// unaudited. At 2 that cheat broke even (−193 tokens, 95% interval −1 986 to 1 600 over 100
/// seeds); 2.5 leaves it a margin and keeps audits under 10% of the training work.
pub const AUDIT_SAFETY_TENTHS: u128 = 25;

impl Default for VerificationSettings {
    fn default() -> Self {
        Self {
            audit_rate: None,
            trace_every: cairn_round::spec::DEFAULT_TRACE_EVERY,
            audit_window: cairn_round::spec::DEFAULT_AUDIT_WINDOW,
            move_window: cairn_round::spec::DEFAULT_MOVE_WINDOW,
            challenge_bond: DEFAULT_CHALLENGE_BOND,
        }
    }
}

impl Default for Windows {
    fn default() -> Self {
        Self {
            commit: 5,
            reveal: 5,
            availability: 3,
            attest: 5,
        }
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            seed: DEFAULT_SEED,
            rounds: DEFAULT_ROUNDS,
            local_steps: DEFAULT_LOCAL_STEPS,
            batch_size: DEFAULT_BATCH_SIZE,
            dataset: BuiltinDataset::Mnist5k,
            data_dir: None,
            partition: DEFAULT_PARTITION.to_owned(),
            model: None,
            optimizer: DEFAULT_OPTIMIZER.to_owned(),
            rule: DEFAULT_RULE.to_owned(),
            reward_per_round: DEFAULT_REWARD_PER_ROUND,
            slash_fraction: DEFAULT_SLASH_FRACTION,
            costs: CostModel::default(),
            windows: Windows::default(),
            verification: VerificationSettings::default(),
            trainers: vec![TrainerGroup::honest(8), TrainerGroup::attack(2, "alie")],
            validators: vec![ValidatorGroup {
                count: 4,
                ..ValidatorGroup::default()
            }],
            network: NetworkConditions::default(),
            faults: None,
            threads: 1,
        }
    }
}

impl Scenario {
    /// Parses a scenario from TOML text; keys left out take their defaults. Does not validate.
    pub fn from_toml_str(text: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|source| ScenarioError::Parse {
            message: source.to_string(),
        })
    }

    /// Reads a scenario file; a relative `data_dir` in it is taken relative to the file's folder.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut scenario = Self::from_toml_str(&text).map_err(|error| match error {
            ScenarioError::Parse { message } => ScenarioError::ParseFile {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })?;
        if let Some(dir) = scenario.data_dir.as_mut() {
            if dir.is_relative() {
                let base = path.parent().unwrap_or_else(|| Path::new(""));
                *dir = base.join(&*dir);
            }
        }
        Ok(scenario)
    }

    /// Writes the scenario as TOML (every key explicit), so a run can be repeated from its report.
    pub fn to_toml_string(&self) -> Result<String, ScenarioError> {
        toml::to_string(self).map_err(|source| ScenarioError::Serialize {
            message: source.to_string(),
        })
    }

    /// The model to train: [`Scenario::model`] if set, else `mlp:INPUT-64-CLASSES` for the dataset.
    pub fn model(&self) -> String {
        match &self.model {
            Some(model) => model.clone(),
            None => {
                let (channels, height, width) = self.dataset.shape();
                format!(
                    "mlp:{}-{DEFAULT_HIDDEN}-{}",
                    channels * height * width,
                    self.dataset.classes()
                )
            }
        }
    }

    /// Number of trainer nodes once groups are expanded (Sybils count once per identity).
    pub fn trainer_count(&self) -> u64 {
        self.trainers.iter().map(TrainerGroup::node_count).sum()
    }

    /// Number of validator nodes.
    pub fn validator_count(&self) -> u64 {
        self.validators.iter().map(|g| u64::from(g.count)).sum()
    }

    /// The validators, `v0, v1, ...`, in group order.
    pub fn validator_nodes(&self) -> Vec<ValidatorNode> {
        let mut nodes = Vec::new();
        for group in &self.validators {
            for _ in 0..group.count {
                let index = nodes.len();
                nodes.push(ValidatorNode {
                    index,
                    name: NodeName::Validator(index).to_string(),
                    behaviour: group.behaviour,
                    stake: group.stake,
                });
            }
        }
        nodes
    }

    /// The trainers, `t0, t1, ...`, in group order, with their attacks parsed. Each `attack`
    /// group is one coalition, and so is each Sybil attacker's set of identities; the only error
    /// is a group [`Scenario::validate`] rejects.
    pub fn trainer_nodes(&self) -> Result<Vec<TrainerNode>, ScenarioError> {
        let mut nodes = Vec::new();
        let mut coalitions = 0usize;
        for (group_index, group) in self.trainers.iter().enumerate() {
            let behaviour = validate::resolve_behaviour(group_index, group)?;
            match &behaviour {
                TrainerBehaviour::Sybil(_) | TrainerBehaviour::NoiseSybil { .. } => {
                    let identities = group.identities.unwrap_or(DEFAULT_SYBIL_IDENTITIES);
                    for _ in 0..group.count {
                        let stakes = split_stake(group.stake, identities);
                        for stake in stakes {
                            push_trainer(&mut nodes, &behaviour, stake, Some(coalitions));
                        }
                        coalitions += 1;
                    }
                }
                TrainerBehaviour::Attack(_) => {
                    for _ in 0..group.count {
                        push_trainer(&mut nodes, &behaviour, group.stake, Some(coalitions));
                    }
                    coalitions += 1;
                }
                _ => {
                    for _ in 0..group.count {
                        push_trainer(&mut nodes, &behaviour, group.stake, None);
                    }
                }
            }
        }
        Ok(nodes)
    }

    /// The task's audit rate in ppm: `verification.audit_rate` if set, otherwise the deterrent
    /// rate `cairn_round::audit::deterrent_rate_ppm(2.5 × r, B)` ([`AUDIT_SAFETY_TENTHS`]) for the
    /// mean trainer reward per round `r = reward × (1 − validator share) / trainers` and the
    /// smallest trainer stake `B`: the rate at which a cheat earning up to 2.5 times the mean
    /// share loses more, when caught, than it earns when not (`docs/verification.md`).
    pub fn audit_ppm(&self, validator_share_ppm: u32) -> u32 {
        if let Some(rate) = self.verification.audit_rate {
            return (rate.clamp(0.0, 1.0) * 1e6).round() as u32;
        }
        let trainers = u128::from(self.trainer_count().max(1));
        let pool = u128::from(self.reward_per_round)
            * u128::from(1_000_000 - validator_share_ppm.min(1_000_000))
            / 1_000_000;
        let mean = pool / trainers;
        let covered = AUDIT_SAFETY_TENTHS * mean / 10;
        cairn_round::audit::deterrent_rate_ppm(covered, u128::from(self.trainer_bond()))
    }

    /// The smallest stake of a trainer node (a Sybil identity's share of its attacker's stake):
    /// the task's `min_trainer_bond`, so the bond the audit rate deters with is one every
    /// trainer locks.
    pub fn trainer_bond(&self) -> u64 {
        self.trainers
            .iter()
            .map(|group| match group.behaviour {
                TrainerBehaviourKind::Sybil | TrainerBehaviourKind::NoiseSybil => {
                    let identities = group.identities.unwrap_or(DEFAULT_SYBIL_IDENTITIES);
                    group.stake / u64::from(identities.max(1))
                }
                _ => group.stake,
            })
            .min()
            .unwrap_or(0)
    }

    /// The slash fraction in parts per million, as the chain's parameters take it.
    pub fn slash_ppm(&self) -> u32 {
        (self.slash_fraction.clamp(0.0, 1.0) * 1e6).round() as u32
    }

    /// Every node name, validators first, in index order.
    pub fn node_names(&self) -> Vec<String> {
        let validators = (0..self.validator_count()).map(|i| format!("v{i}"));
        let trainers = (0..self.trainer_count()).map(|i| format!("t{i}"));
        validators.chain(trainers).collect()
    }

    /// Whether `name` is a node of this scenario.
    pub fn has_node(&self, name: &str) -> bool {
        match name.parse::<NodeName>() {
            Ok(NodeName::Validator(i)) => (i as u64) < self.validator_count(),
            Ok(NodeName::Trainer(i)) => (i as u64) < self.trainer_count(),
            Err(_) => false,
        }
    }
}

fn push_trainer(
    nodes: &mut Vec<TrainerNode>,
    behaviour: &TrainerBehaviour,
    stake: u64,
    coalition_id: Option<usize>,
) {
    let index = nodes.len();
    nodes.push(TrainerNode {
        index,
        name: NodeName::Trainer(index).to_string(),
        behaviour: behaviour.clone(),
        stake,
        coalition_id,
    });
}

/// Splits `total` into `parts` stakes differing by at most one token, larger ones first.
pub fn split_stake(total: u64, parts: u32) -> Vec<u64> {
    if parts == 0 {
        return Vec::new();
    }
    let parts64 = u64::from(parts);
    let (base, extra) = (total / parts64, total % parts64);
    (0..parts64).map(|i| base + u64::from(i < extra)).collect()
}
