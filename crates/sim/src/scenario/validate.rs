//! Checks that a scenario describes a network the protocol can run, with errors that say which
//! key is wrong and what to write instead.

use std::path::PathBuf;

use cairn_robust::attack::{Attack, AttackError, ATTACK_SYNTAX};

use super::groups::{
    FreeRide, TrainerBehaviour, TrainerBehaviourKind, TrainerGroup, ValidatorBehaviour,
    DEFAULT_LAZY_FRACTION, DEFAULT_NOISE, DEFAULT_SCALE, DEFAULT_SYBIL_ATTACK,
    DEFAULT_SYBIL_IDENTITIES,
};
use super::{NodeName, Scenario};

/// Most nodes (trainers + validators) one simulation may run in one process: the ledger's bound
/// on one task's members (`cairn_ledger::encoding::MAX_TASK_MEMBERS`).
pub const MAX_NODES: u64 = cairn_ledger::encoding::MAX_TASK_MEMBERS as u64;

/// Most validators one simulation may run: the ledger's bound on one task's validators
/// (`cairn_ledger::encoding::MAX_TASK_VALIDATORS`).
pub const MAX_VALIDATORS: u64 = cairn_ledger::encoding::MAX_TASK_VALIDATORS as u64;

/// Most directed links a simulation may start with. The simulated network links every validator
/// to every node (trainers never talk to each other), `v(v - 1) + 2vt` links for `v` validators
/// and `t` trainers; commonware's deterministic runtime hands out 32 767 ephemeral ports in all,
/// one per dial and never reused, and reconnections after crashes and healed partitions dial
/// again, so a run may start with half of them. A rule of thumb, not a proof: a scenario near the
/// limit with many crashes and partition heals can still use up the ports.
pub const MAX_LINKS: u64 = 16_383;
/// Most rounds one simulation may run.
pub const MAX_ROUNDS: u32 = 10_000;
/// Most local SGD steps per round.
pub const MAX_LOCAL_STEPS: u32 = 100_000;
/// Largest mini-batch.
pub const MAX_BATCH_SIZE: u32 = 65_536;
/// Longest window, in blocks.
pub const MAX_WINDOW_BLOCKS: u64 = 10_000;
/// Highest price per sample in the cost model, in tokens.
pub const MAX_PRICE: f64 = 1_000_000.0;
/// Most worker threads.
pub const MAX_THREADS: usize = 1024;
/// Longest one-way link latency, in simulated milliseconds. The run's simulated time limit grows
/// with it (4 latencies per block), and a run that cannot finalize lasts until that limit.
pub const MAX_LATENCY_MS: u64 = 10_000;
/// Latest time of a network event (partition, heal, crash, restart), in simulated milliseconds:
/// one simulated hour, about 13 default runs. A run waits for its last event, so this bounds how
/// long a scenario whose network never recovers runs before it is reported as stalled.
pub const MAX_EVENT_MS: u64 = 3_600_000;
/// Largest integer TOML can hold: any larger seed, stake or time could not be written to the
/// report's `scenario.toml`.
pub const MAX_TOML_INTEGER: u64 = i64::MAX as u64;

/// Why a scenario cannot be read or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file could not be read.
    #[error("cannot read scenario file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML text is malformed, has an unknown key, or a value of the wrong type.
    #[error("invalid scenario: {message}")]
    Parse {
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// The scenario file is malformed, has an unknown key, or a value of the wrong type.
    #[error("invalid scenario file {}: {message}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// The scenario could not be written as TOML.
    #[error("cannot write the scenario as TOML: {message}")]
    Serialize {
        /// The serializer's message.
        message: String,
    },
    /// The dataset is not one a protocol task can use (only datasets shipped as files are).
    #[error("`dataset` is {0}, which is not shipped in data/: a simulated task uses `digits` or `mnist_5k` (`cairn train` also takes fashion_mnist)")]
    NotShipped(cairn_ml::data::BuiltinDataset),
    /// A count or size that must be positive is zero.
    #[error("`{field}` is 0; it must be at least 1")]
    Zero {
        /// The key.
        field: String,
    },
    /// A value is above its limit.
    #[error("`{field}` is {value}; the most allowed is {max}")]
    TooLarge {
        /// The key.
        field: String,
        /// The value given.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// A text value (rule, partition, optimizer, model) is empty.
    #[error("`{field}` is empty; see `cairn simulate --help` for its syntax")]
    Empty {
        /// The key.
        field: String,
    },
    /// A number is outside its range or not finite.
    #[error("`{field}` is {value}; it must be {range}")]
    BadNumber {
        /// The key.
        field: String,
        /// The value given.
        value: f64,
        /// The allowed range.
        range: &'static str,
    },
    /// A copier's victim is not an honest trainer of the scenario.
    #[error("`{field}` names `{victim}`, which is not an honest trainer of this scenario")]
    BadVictim {
        /// The key.
        field: String,
        /// The name given.
        victim: String,
    },
    /// A probability is outside [0, 1] or not a number.
    #[error("`{field}` is {value}; a probability must be between 0 and 1")]
    Probability {
        /// The key.
        field: String,
        /// The value given.
        value: f64,
    },
    /// There are no trainers, or none of them is honest.
    #[error(
        "the scenario has no honest trainer; add a [[trainers]] group with behaviour = \"honest\""
    )]
    NoHonestTrainer,
    /// There are no validators.
    #[error("the scenario has no validator; add a [[validators]] group with count >= 1")]
    NoValidators,
    /// More validators than one task takes.
    #[error(
        "the scenario has {validators} validators; a task takes at most {max} (the ledger's \
         bound), so the others could never join"
    )]
    TooManyValidators {
        /// Validator nodes.
        validators: u64,
        /// The limit, [`MAX_VALIDATORS`].
        max: u64,
    },
    /// More nodes than one simulation runs.
    #[error("the scenario has {nodes} nodes; at most {max} run in one simulation")]
    TooManyNodes {
        /// Trainers plus validators.
        nodes: u64,
        /// The limit, [`MAX_NODES`].
        max: u64,
    },
    /// The simulated network would need more links than it can dial.
    #[error(
        "{validators} validators and {trainers} trainers need {links} links in the simulated \
         network; at most {max} fit (the limit is about 2 * validators * trainers): use fewer \
         validators or trainers"
    )]
    TooManyLinks {
        /// Validator nodes.
        validators: u64,
        /// Trainer nodes.
        trainers: u64,
        /// Directed links, `v(v - 1) + 2vt`.
        links: u64,
        /// The limit, [`MAX_LINKS`].
        max: u64,
    },
    /// Byzantine validators are not fewer than a third of the validators, by count or by stake:
    /// BFT consensus and the 2/3 attestation rule give no guarantee then.
    #[error(
        "{byzantine} of {total} validator {unit} are Byzantine; they must be fewer than a third \
         (f < n/3) for consensus to be safe: add honest validators or remove Byzantine ones"
    )]
    TooManyByzantineValidators {
        /// Byzantine validators (or their stake).
        byzantine: u64,
        /// All validators (or their stake).
        total: u64,
        /// `nodes` or `stake tokens`.
        unit: &'static str,
    },
    /// A command-line count leaves no room for honest nodes next to the scenario's other groups.
    #[error("--{flag} {given} leaves no honest {role}s: the other {role} groups have {others} nodes; give at least {}", others + 1)]
    NoRoomForHonest {
        /// The flag (`trainers` or `validators`).
        flag: &'static str,
        /// The count given.
        given: u64,
        /// Nodes of the non-honest groups.
        others: u64,
        /// `trainer` or `validator`.
        role: &'static str,
    },
    /// A key was given that the group's behaviour does not use.
    #[error("[[trainers]] group {group} ({behaviour}) does not use `{key}`; remove it")]
    UnusedKey {
        /// Position of the group (0-based).
        group: usize,
        /// The group's behaviour.
        behaviour: String,
        /// The key.
        key: &'static str,
    },
    /// An `attack` group names no attack.
    #[error("[[trainers]] group {group} has behaviour = \"attack\" but no `attack`; add e.g. attack = \"alie\" ({ATTACK_SYNTAX})")]
    MissingAttack {
        /// Position of the group (0-based).
        group: usize,
    },
    /// The attack text does not parse.
    #[error("[[trainers]] group {group} has an invalid `attack`")]
    BadAttack {
        /// Position of the group (0-based).
        group: usize,
        /// The parser's error.
        source: AttackError,
    },
    /// A Sybil attacker's stake cannot give each identity the chain's minimum bond.
    #[error("[[trainers]] group {group}: stake {stake} cannot be split among {identities} Sybil identities with the minimum bond {minimum} each; give a stake of at least {}", u128::from(*identities) * *minimum)]
    SybilStake {
        /// Position of the group (0-based).
        group: usize,
        /// The attacker's stake.
        stake: u64,
        /// Its identities.
        identities: u32,
        /// The chain's minimum bond per member.
        minimum: u128,
    },
    /// A stake is below the chain's minimum bond (`min_bond`), so the node could not join.
    #[error("{field} = {stake} is below the chain's minimum bond {minimum}; a bond that small could not be slashed meaningfully")]
    BelowMinimumBond {
        /// The scenario key, e.g. `validators[0].stake`.
        field: String,
        /// Its value.
        stake: u64,
        /// `cairn_ledger::Params::min_bond`.
        minimum: u128,
    },
    /// A partition or crash names a node the scenario does not have.
    #[error("{context} names `{name}`, which is not a node of this scenario (validators v0..v{}, trainers t0..t{})", validators.saturating_sub(1), trainers.saturating_sub(1))]
    UnknownNode {
        /// Where the name appears, e.g. `network.partitions[0]`.
        context: String,
        /// The name.
        name: String,
        /// Validators in the scenario.
        validators: u64,
        /// Trainers in the scenario.
        trainers: u64,
    },
    /// A partition is malformed.
    #[error("network.partitions[{index}]: {reason}")]
    BadPartition {
        /// Position of the partition (0-based).
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A crash is malformed.
    #[error("network.crashes[{index}]: {reason}")]
    BadCrash {
        /// Position of the crash (0-based).
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

impl Scenario {
    /// Checks every rule a runnable scenario obeys: positive counts and sizes within limits, at
    /// least one honest trainer and one validator, Byzantine validators below a third by count
    /// and by stake, positive stakes, attacks that parse, probabilities in [0, 1], and partitions
    /// and crashes that name existing nodes at consistent times.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        positive("rounds", u64::from(self.rounds), u64::from(MAX_ROUNDS))?;
        positive(
            "local_steps",
            u64::from(self.local_steps),
            u64::from(MAX_LOCAL_STEPS),
        )?;
        positive(
            "batch_size",
            u64::from(self.batch_size),
            u64::from(MAX_BATCH_SIZE),
        )?;
        positive("threads", self.threads as u64, MAX_THREADS as u64)?;
        positive("windows.commit", self.windows.commit, MAX_WINDOW_BLOCKS)?;
        positive("windows.reveal", self.windows.reveal, MAX_WINDOW_BLOCKS)?;
        positive(
            "windows.availability",
            self.windows.availability,
            MAX_WINDOW_BLOCKS,
        )?;
        positive("windows.attest", self.windows.attest, MAX_WINDOW_BLOCKS)?;
        positive("reward_per_round", self.reward_per_round, u64::MAX)?;
        if self.dataset.csv_format().is_none() {
            return Err(ScenarioError::NotShipped(self.dataset));
        }
        not_empty("partition", &self.partition)?;
        not_empty("optimizer", &self.optimizer)?;
        not_empty("rule", &self.rule)?;
        not_empty("model", &self.model())?;
        self.validate_trainers()?;
        self.validate_validators()?;
        self.validate_verification()?;
        self.validate_economics()?;
        let nodes = self.trainer_count() + self.validator_count();
        if nodes > MAX_NODES {
            return Err(ScenarioError::TooManyNodes {
                nodes,
                max: MAX_NODES,
            });
        }
        let (validators, trainers) = (self.validator_count(), self.trainer_count());
        let links = validators * validators.saturating_sub(1) + 2 * validators * trainers;
        if links > MAX_LINKS {
            return Err(ScenarioError::TooManyLinks {
                validators,
                trainers,
                links,
                max: MAX_LINKS,
            });
        }
        self.validate_network()?;
        self.validate_faults()?;
        self.validate_toml_integers()
    }

    /// Random faults come on top of no scripted ones, with a loss below one half and a horizon
    /// within the simulated hour.
    fn validate_faults(&self) -> Result<(), ScenarioError> {
        let Some(faults) = &self.faults else {
            return Ok(());
        };
        if !self.network.partitions.is_empty() || !self.network.crashes.is_empty() {
            return Err(ScenarioError::BadNumber {
                field: "faults".to_owned(),
                value: (self.network.partitions.len() + self.network.crashes.len()) as f64,
                range: "used without scripted [[network.partitions]] or [[network.crashes]] \
                        (this many are given); draw them all or script them all",
            });
        }
        if !(0.0..=0.5).contains(&faults.max_loss) {
            return Err(ScenarioError::BadNumber {
                field: "faults.max_loss".to_owned(),
                value: faults.max_loss,
                range: "a share of messages between 0 and 0.5",
            });
        }
        not_above("faults.until_ms", faults.until_ms, MAX_EVENT_MS)?;
        for (field, value) in [
            ("faults.validator_crashes", faults.validator_crashes),
            ("faults.trainer_crashes", faults.trainer_crashes),
            ("faults.partitions", faults.partitions),
        ] {
            not_above(field, u64::from(value), MAX_NODES)?;
        }
        Ok(())
    }

    /// The slash fraction is a probability-like fraction and every price a finite amount.
    fn validate_economics(&self) -> Result<(), ScenarioError> {
        if !(0.0..=1.0).contains(&self.slash_fraction) {
            return Err(ScenarioError::BadNumber {
                field: "slash_fraction".to_owned(),
                value: self.slash_fraction,
                range: "a fraction between 0 and 1",
            });
        }
        let costs = &self.costs;
        for (field, value) in [
            ("costs.train_per_sample", costs.train_per_sample),
            ("costs.score_per_sample", costs.score_per_sample),
            ("costs.audit_per_sample", costs.audit_per_sample),
        ] {
            if !(0.0..=MAX_PRICE).contains(&value) {
                return Err(ScenarioError::BadNumber {
                    field: field.to_owned(),
                    value,
                    range: "a price in tokens between 0 and 1000000",
                });
            }
        }
        if !(0.0..=1.0).contains(&costs.stake_per_round) {
            return Err(ScenarioError::BadNumber {
                field: "costs.stake_per_round".to_owned(),
                value: costs.stake_per_round,
                range: "a fraction of the stake between 0 and 1",
            });
        }
        Ok(())
    }

    /// Every u64 key must fit TOML's signed 64-bit integers, so the report can write the scenario.
    fn validate_toml_integers(&self) -> Result<(), ScenarioError> {
        let mut values = vec![
            ("seed".to_owned(), self.seed),
            ("reward_per_round".to_owned(), self.reward_per_round),
            ("network.latency_ms".to_owned(), self.network.latency_ms),
            ("network.jitter_ms".to_owned(), self.network.jitter_ms),
        ];
        for (i, group) in self.trainers.iter().enumerate() {
            values.push((format!("trainers[{i}].stake"), group.stake));
        }
        for (i, group) in self.validators.iter().enumerate() {
            values.push((format!("validators[{i}].stake"), group.stake));
        }
        for (i, partition) in self.network.partitions.iter().enumerate() {
            values.push((
                format!("network.partitions[{i}].heal_ms"),
                partition.heal_ms,
            ));
        }
        for (i, crash) in self.network.crashes.iter().enumerate() {
            let last = crash.restart_ms.unwrap_or(crash.at_ms);
            values.push((format!("network.crashes[{i}]"), last));
        }
        match values
            .into_iter()
            .find(|(_, value)| *value > MAX_TOML_INTEGER)
        {
            Some((field, value)) => Err(ScenarioError::TooLarge {
                field,
                value,
                max: MAX_TOML_INTEGER,
            }),
            None => Ok(()),
        }
    }

    fn validate_trainers(&self) -> Result<(), ScenarioError> {
        let mut honest = 0u64;
        for (index, group) in self.trainers.iter().enumerate() {
            positive(
                &format!("trainers[{index}].count"),
                u64::from(group.count),
                MAX_NODES,
            )?;
            positive(&format!("trainers[{index}].stake"), group.stake, u64::MAX)?;
            at_least_min_bond(&format!("trainers[{index}].stake"), group.stake)?;
            if resolve_behaviour(index, group)?.is_honest() {
                honest += u64::from(group.count);
            }
        }
        if honest == 0 {
            return Err(ScenarioError::NoHonestTrainer);
        }
        let nodes = self.trainer_nodes()?;
        for (index, group) in self.trainers.iter().enumerate() {
            let Some(victim) = &group.victim else {
                continue;
            };
            let honest_victim = nodes
                .iter()
                .any(|node| node.name == *victim && node.behaviour.is_honest());
            if !honest_victim {
                return Err(ScenarioError::BadVictim {
                    field: format!("trainers[{index}].victim"),
                    victim: victim.clone(),
                });
            }
        }
        Ok(())
    }

    fn validate_verification(&self) -> Result<(), ScenarioError> {
        let settings = &self.verification;
        if let Some(rate) = settings.audit_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ScenarioError::Probability {
                    field: "verification.audit_rate".to_owned(),
                    value: rate,
                });
            }
        }
        positive(
            "verification.trace_every",
            u64::from(settings.trace_every),
            u64::from(MAX_LOCAL_STEPS),
        )?;
        positive(
            "verification.audit_window",
            settings.audit_window,
            MAX_WINDOW_BLOCKS,
        )?;
        positive(
            "verification.move_window",
            settings.move_window,
            MAX_WINDOW_BLOCKS,
        )?;
        positive(
            "verification.challenge_bond",
            settings.challenge_bond,
            MAX_TOML_INTEGER,
        )?;
        Ok(())
    }

    fn validate_validators(&self) -> Result<(), ScenarioError> {
        for (index, group) in self.validators.iter().enumerate() {
            positive(
                &format!("validators[{index}].count"),
                u64::from(group.count),
                MAX_NODES,
            )?;
            positive(&format!("validators[{index}].stake"), group.stake, u64::MAX)?;
            at_least_min_bond(&format!("validators[{index}].stake"), group.stake)?;
        }
        let total = self.validator_count();
        if total == 0 {
            return Err(ScenarioError::NoValidators);
        }
        if total > MAX_VALIDATORS {
            return Err(ScenarioError::TooManyValidators {
                validators: total,
                max: MAX_VALIDATORS,
            });
        }
        let byzantine = |g: &&super::ValidatorGroup| g.behaviour != ValidatorBehaviour::Honest;
        let bad_count: u64 = self
            .validators
            .iter()
            .filter(byzantine)
            .map(|g| u64::from(g.count))
            .sum();
        if bad_count * 3 >= total {
            return Err(ScenarioError::TooManyByzantineValidators {
                byzantine: bad_count,
                total,
                unit: "nodes",
            });
        }
        let stake = |g: &super::ValidatorGroup| u128::from(g.count) * u128::from(g.stake);
        let total_stake: u128 = self.validators.iter().map(stake).sum();
        let bad_stake: u128 = self.validators.iter().filter(byzantine).map(stake).sum();
        if bad_stake * 3 >= total_stake {
            return Err(ScenarioError::TooManyByzantineValidators {
                byzantine: u64::try_from(bad_stake).unwrap_or(u64::MAX),
                total: u64::try_from(total_stake).unwrap_or(u64::MAX),
                unit: "stake tokens",
            });
        }
        Ok(())
    }

    fn validate_network(&self) -> Result<(), ScenarioError> {
        let rate = self.network.success_rate;
        if !(0.0..=1.0).contains(&rate) {
            return Err(ScenarioError::Probability {
                field: "network.success_rate".to_owned(),
                value: rate,
            });
        }
        not_above(
            "network.latency_ms",
            self.network.latency_ms,
            MAX_LATENCY_MS,
        )?;
        for (index, partition) in self.network.partitions.iter().enumerate() {
            not_above(
                &format!("network.partitions[{index}].heal_ms"),
                partition.heal_ms,
                MAX_EVENT_MS,
            )?;
        }
        for (index, crash) in self.network.crashes.iter().enumerate() {
            let last = crash.restart_ms.unwrap_or(crash.at_ms);
            let key = if crash.restart_ms.is_some() {
                "restart_ms"
            } else {
                "at_ms"
            };
            not_above(
                &format!("network.crashes[{index}].{key}"),
                last,
                MAX_EVENT_MS,
            )?;
        }
        let mut previous_heal = 0u64;
        for (index, partition) in self.network.partitions.iter().enumerate() {
            let bad = |reason: String| ScenarioError::BadPartition { index, reason };
            if partition.heal_ms <= partition.at_ms {
                return Err(bad(format!(
                    "heal_ms ({}) must be after at_ms ({})",
                    partition.heal_ms, partition.at_ms
                )));
            }
            if index > 0 && partition.at_ms < previous_heal {
                return Err(bad(format!(
                    "starts at {} ms, before the previous partition heals at {previous_heal} ms; \
                     list partitions in time order without overlap",
                    partition.at_ms
                )));
            }
            previous_heal = partition.heal_ms;
            if partition.groups.len() < 2 {
                return Err(bad("give at least two groups of nodes".to_owned()));
            }
            let mut seen = std::collections::BTreeSet::new();
            for group in &partition.groups {
                if group.is_empty() {
                    return Err(bad("a group is empty".to_owned()));
                }
                for name in group {
                    self.known_node(&format!("network.partitions[{index}]"), name)?;
                    if !seen.insert(name.as_str()) {
                        return Err(bad(format!("`{name}` is in more than one group")));
                    }
                }
            }
        }
        for (index, crash) in self.network.crashes.iter().enumerate() {
            self.known_node(&format!("network.crashes[{index}]"), &crash.node)?;
            if let Some(restart) = crash.restart_ms {
                if restart <= crash.at_ms {
                    return Err(ScenarioError::BadCrash {
                        index,
                        reason: format!(
                            "restart_ms ({restart}) must be after at_ms ({})",
                            crash.at_ms
                        ),
                    });
                }
            }
            let overlaps = self.network.crashes[..index].iter().any(|earlier| {
                earlier.node == crash.node
                    && earlier
                        .restart_ms
                        .is_none_or(|restart| restart > crash.at_ms)
                    && crash
                        .restart_ms
                        .is_none_or(|restart| restart > earlier.at_ms)
            });
            if overlaps {
                return Err(ScenarioError::BadCrash {
                    index,
                    reason: format!("overlaps an earlier crash of `{}`", crash.node),
                });
            }
        }
        Ok(())
    }

    fn known_node(&self, context: &str, name: &str) -> Result<(), ScenarioError> {
        if name.parse::<NodeName>().is_ok() && self.has_node(name) {
            return Ok(());
        }
        Err(ScenarioError::UnknownNode {
            context: context.to_owned(),
            name: name.to_owned(),
            validators: self.validator_count(),
            trainers: self.trainer_count(),
        })
    }
}

/// Parses a group's behaviour and checks that it carries exactly the keys that behaviour uses.
pub(crate) fn resolve_behaviour(
    group_index: usize,
    group: &TrainerGroup,
) -> Result<TrainerBehaviour, ScenarioError> {
    use TrainerBehaviourKind as Kind;
    let kind = group.behaviour;
    let unused = |key| ScenarioError::UnusedKey {
        group: group_index,
        behaviour: kind.name().to_owned(),
        key,
    };
    if group.attack.is_some() && !matches!(kind, Kind::Attack | Kind::Sybil) {
        return Err(unused("attack"));
    }
    if group.free_ride.is_some() && kind != Kind::FreeRider {
        return Err(unused("free_ride"));
    }
    if group.identities.is_some() && !matches!(kind, Kind::Sybil | Kind::NoiseSybil) {
        return Err(unused("identities"));
    }
    if (group.lazy.is_some() || group.fraction.is_some()) && kind != Kind::Lazy {
        return Err(unused(if group.lazy.is_some() {
            "lazy"
        } else {
            "fraction"
        }));
    }
    if group.victim.is_some() && kind != Kind::Copier {
        return Err(unused("victim"));
    }
    if group.noise.is_some() && !matches!(kind, Kind::NoiseSybil | Kind::PerturbedStale) {
        return Err(unused("noise"));
    }
    if group.factor.is_some() && kind != Kind::Scaled {
        return Err(unused("factor"));
    }
    let number = |key: &str, value: f64, ok: bool, range: &'static str| {
        if value.is_finite() && ok {
            Ok(())
        } else {
            Err(ScenarioError::BadNumber {
                field: format!("trainers[{group_index}].{key}"),
                value,
                range,
            })
        }
    };
    // A Sybil's identity count is positive and its stake covers a token per identity.
    let sybil_identities = || {
        let identities = group.identities.unwrap_or(DEFAULT_SYBIL_IDENTITIES);
        positive(
            &format!("trainers[{group_index}].identities"),
            u64::from(identities),
            MAX_NODES,
        )?;
        let minimum = cairn_ledger::Params::default().min_bond;
        if u128::from(group.stake) < u128::from(identities) * minimum {
            return Err(ScenarioError::SybilStake {
                group: group_index,
                stake: group.stake,
                identities,
                minimum,
            });
        }
        Ok(())
    };
    let parse = |text: &str| {
        text.parse::<Attack>()
            .map_err(|source| ScenarioError::BadAttack {
                group: group_index,
                source,
            })
    };
    Ok(match kind {
        Kind::Honest => TrainerBehaviour::Honest,
        Kind::Attack => {
            let text = group
                .attack
                .as_deref()
                .ok_or(ScenarioError::MissingAttack { group: group_index })?;
            TrainerBehaviour::Attack(parse(text)?)
        }
        Kind::LabelFlip => TrainerBehaviour::LabelFlip,
        Kind::FreeRider => TrainerBehaviour::FreeRider(group.free_ride.unwrap_or(FreeRide::Zero)),
        Kind::NonRevealer => TrainerBehaviour::NonRevealer,
        Kind::Withholder => TrainerBehaviour::Withholder,
        Kind::MalformedBlob => TrainerBehaviour::MalformedBlob,
        Kind::Sybil => {
            sybil_identities()?;
            TrainerBehaviour::Sybil(parse(
                group.attack.as_deref().unwrap_or(DEFAULT_SYBIL_ATTACK),
            )?)
        }
        Kind::Lazy => {
            let fraction = group.fraction.unwrap_or(DEFAULT_LAZY_FRACTION);
            number(
                "fraction",
                fraction,
                fraction > 0.0 && fraction < 1.0,
                "strictly between 0 and 1",
            )?;
            TrainerBehaviour::Lazy {
                kind: group.lazy.unwrap_or_default(),
                fraction,
            }
        }
        Kind::ForgedTrace => TrainerBehaviour::ForgedTrace,
        Kind::Copier => TrainerBehaviour::Copier {
            victim: group.victim.clone(),
        },
        Kind::NoiseSybil | Kind::PerturbedStale => {
            let noise = group.noise.unwrap_or(DEFAULT_NOISE);
            number("noise", f64::from(noise), noise >= 0.0, "at least 0")?;
            if kind == Kind::NoiseSybil {
                sybil_identities()?;
                TrainerBehaviour::NoiseSybil { noise }
            } else {
                TrainerBehaviour::PerturbedStale { noise }
            }
        }
        Kind::Scaled => {
            let factor = group.factor.unwrap_or(DEFAULT_SCALE);
            number("factor", f64::from(factor), true, "a finite number")?;
            TrainerBehaviour::Scaled { factor }
        }
    })
}

/// Refuses `value` above `max`.
fn not_above(field: &str, value: u64, max: u64) -> Result<(), ScenarioError> {
    if value > max {
        return Err(ScenarioError::TooLarge {
            field: field.to_owned(),
            value,
            max,
        });
    }
    Ok(())
}

/// Every member bonds at least the chain's `min_bond` (a Sybil group's stake is checked per
/// identity by its own rule).
fn at_least_min_bond(field: &str, stake: u64) -> Result<(), ScenarioError> {
    let minimum = cairn_ledger::Params::default().min_bond;
    if u128::from(stake) < minimum {
        return Err(ScenarioError::BelowMinimumBond {
            field: field.to_owned(),
            stake,
            minimum,
        });
    }
    Ok(())
}

fn positive(field: &str, value: u64, max: u64) -> Result<(), ScenarioError> {
    if value == 0 {
        return Err(ScenarioError::Zero {
            field: field.to_owned(),
        });
    }
    not_above(field, value, max)
}

fn not_empty(field: &str, value: &str) -> Result<(), ScenarioError> {
    if value.trim().is_empty() {
        return Err(ScenarioError::Empty {
            field: field.to_owned(),
        });
    }
    Ok(())
}
