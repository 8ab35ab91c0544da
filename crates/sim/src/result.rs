//! What a simulation produced: the contract between the runner, which fills it, and the report.
//!
//! Everything here is a function of the scenario: no wall-clock time, so `results.json` is
//! byte-identical from run to run. Token amounts are `u128` as in the ledger and are written to
//! JSON as decimal strings, which no JSON reader rounds. Non-finite accuracies or losses (a model
//! an attack drove to NaN) are written as `null` and read back as NaN.

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// The outcome of one simulation: final figures, one record per round and one per node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The scenario that was run (with every default filled in).
    pub scenario: Scenario,
    /// Test accuracy of the final model, in [0, 1].
    #[serde(with = "finite")]
    pub final_accuracy: f64,
    /// Test loss of the final model.
    #[serde(with = "finite")]
    pub final_loss: f64,
    /// blake3 of the final model blob, hex.
    pub final_model_hash: String,
    /// Merkle root of the ledger state after the last block, hex.
    pub final_state_root: String,
    /// Simulated milliseconds from the start of the run to its end.
    pub simulated_ms: u64,
    /// One record per round, in round order.
    pub rounds: Vec<RoundRecord>,
    /// One record per node, validators (`v0..`) then trainers (`t0..`).
    pub nodes: Vec<NodeRecord>,
    /// Test accuracy of centralized training with the same data and budget, if it was run.
    #[serde(with = "finite_option")]
    pub centralized_accuracy: Option<f64>,
    /// Audits and disputes over the whole run.
    pub verification: VerificationRecord,
}

/// Audits and disputes over a run, read from the final ledger state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    /// The task's audit rate, in parts per million.
    pub audit_ppm: u32,
    /// Trainer-rounds drawn for audit (any reason).
    pub audited: u64,
    /// Of those, audited because the update was a duplicate or a replay.
    pub forced_audits: u64,
    /// Auditor reports of a matching re-run.
    pub audits_passed: u64,
    /// Disputes opened.
    pub disputes: u64,
    /// Disputes the trainer won (the challenger lost its bond).
    pub trainer_won: u64,
    /// Disputes the challenger won (the trainer was slashed and expelled).
    pub challenger_won: u64,
    /// Disputes that ended with another dispute over the same update.
    pub moot: u64,
    /// Disputes decided by the referee's re-execution (the rest by a silent side).
    pub refereed: u64,
    /// Training steps the referee re-executed, over all disputes.
    pub referee_steps: u64,
    /// Blocks from opening to resolution, per resolved dispute (in dispute order).
    pub dispute_blocks: Vec<u64>,
    /// Bytes of the witnesses posted (all chunks of refereed disputes).
    pub witness_bytes: u64,
}

/// One round of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number as the ledger counts it.
    pub round: u32,
    /// Whether attestations holding 2/3 of validator stake finalized it.
    pub finalized: bool,
    /// Test accuracy of the model at the end of the round, in [0, 1].
    #[serde(with = "finite")]
    pub accuracy: f64,
    /// Test loss of that model.
    #[serde(with = "finite")]
    pub loss: f64,
    /// blake3 of that model, hex.
    pub model_hash: String,
    /// Simulated milliseconds from the round's opening block to its finalization (`None` when
    /// it did not finalize).
    pub finalization_latency_ms: Option<u64>,
    /// Tokens paid out for this round.
    #[serde(with = "amount")]
    pub rewards_paid: u128,
    /// Tokens slashed in this round (missed reveals and lost disputes).
    #[serde(with = "amount")]
    pub slashed: u128,
    /// Trainers audited in this round.
    pub audited: u32,
    /// Disputes opened over this round's updates.
    pub disputes: u32,
}

/// A node's part in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// Trains and submits updates.
    Trainer,
    /// Aggregates, scores and attests.
    Validator,
}

impl NodeRole {
    /// `trainer` or `validator`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Trainer => "trainer",
            Self::Validator => "validator",
        }
    }
}

/// One node's economics over the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// `v0`, `t3`, ... (see [`crate::scenario::NodeName`]).
    pub name: String,
    /// Trainer or validator.
    pub role: NodeRole,
    /// Behaviour label: `honest`, or e.g. `attack:alie:auto`, `free_rider:zero`, `silent`
    /// (from [`crate::scenario::TrainerBehaviour::label`] / [`crate::scenario::ValidatorBehaviour::label`]).
    pub behaviour: String,
    /// Ledger address, hex.
    pub address: String,
    /// Stake locked at the start.
    #[serde(with = "amount")]
    pub stake_initial: u128,
    /// Stake at the end (after slashing).
    #[serde(with = "amount")]
    pub stake_final: u128,
    /// Free balance at the end.
    #[serde(with = "amount")]
    pub balance_final: u128,
    /// Rewards received over the run.
    #[serde(with = "amount")]
    pub rewards_total: u128,
    /// Tokens slashed over the run (missed reveals, lost disputes, a wrong challenger's bond).
    #[serde(with = "amount")]
    pub slashed_total: u128,
    /// Rewards awarded and then forfeited because the trainer lost a dispute over the round.
    #[serde(with = "amount")]
    pub forfeited_total: u128,
    /// Rounds in which this trainer revealed an update (0 for validators).
    pub revealed: u32,
    /// Rounds this trainer was audited in (0 for validators).
    pub audited: u32,
    /// Disputes this node won (as trainer or challenger).
    pub disputes_won: u32,
    /// Disputes this node lost (as trainer or challenger).
    pub disputes_lost: u32,
    /// Rewards received in each round, in round order (same length as [`RunResult::rounds`]).
    #[serde(with = "amounts")]
    pub rewards_per_round: Vec<u128>,
    /// The work this node did, as its agent counted it.
    pub work: NodeWork,
    /// What that work and its locked stake cost, under the scenario's `[costs]`.
    pub costs: NodeCosts,
}

/// The work one node did over a run (what the cost model prices).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeWork {
    /// Training steps it ran for the updates it committed (a crafted update counts only the
    /// steps actually trained for it).
    pub steps_trained: u64,
    /// Held-out samples it evaluated to score updates.
    pub samples_evaluated: u64,
    /// Training steps it re-executed in audits and to answer disputes.
    pub steps_audited: u64,
}

/// One node's costs over a run, in whole tokens (each rounded to the nearest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCosts {
    /// Training: steps × batch size × `train_per_sample`.
    #[serde(with = "amount")]
    pub training: u128,
    /// Scoring: samples evaluated × `score_per_sample`.
    #[serde(with = "amount")]
    pub scoring: u128,
    /// Audits and dispute answers: steps × batch size × `audit_per_sample`.
    #[serde(with = "amount")]
    pub auditing: u128,
    /// Stake locked: initial stake × `stake_per_round` × rounds.
    #[serde(with = "amount")]
    pub stake: u128,
}

impl NodeCosts {
    /// The costs of `work` and of `stake` locked for `rounds` rounds at the scenario's prices.
    pub fn of(
        work: &NodeWork,
        stake: u128,
        rounds: u32,
        batch_size: u32,
        prices: &crate::scenario::CostModel,
    ) -> Self {
        let tokens = |amount: f64| -> u128 {
            if amount.is_finite() && amount > 0.0 {
                amount.round() as u128
            } else {
                0
            }
        };
        let batch = f64::from(batch_size);
        Self {
            training: tokens(work.steps_trained as f64 * batch * prices.train_per_sample),
            scoring: tokens(work.samples_evaluated as f64 * prices.score_per_sample),
            auditing: tokens(work.steps_audited as f64 * batch * prices.audit_per_sample),
            stake: tokens(stake as f64 * prices.stake_per_round * f64::from(rounds)),
        }
    }

    /// All of them.
    pub fn total(&self) -> u128 {
        self.training
            .saturating_add(self.scoring)
            .saturating_add(self.auditing)
            .saturating_add(self.stake)
    }
}

impl NodeRecord {
    /// Whether the node followed the protocol (its behaviour is `honest`).
    pub fn is_honest(&self) -> bool {
        self.behaviour == "honest"
    }

    /// Tokens gained over the run: rewards minus slashes (negative when it lost more).
    pub fn net_tokens(&self) -> i128 {
        let rewards = i128::try_from(self.rewards_total).unwrap_or(i128::MAX);
        let slashed = i128::try_from(self.slashed_total).unwrap_or(i128::MAX);
        rewards.saturating_sub(slashed)
    }

    /// Tokens gained net of costs: rewards − slashes − [`NodeCosts::total`].
    pub fn profit(&self) -> i128 {
        let costs = i128::try_from(self.costs.total()).unwrap_or(i128::MAX);
        self.net_tokens().saturating_sub(costs)
    }

    /// Rewards accumulated up to and including each round.
    pub fn cumulative_rewards(&self) -> Vec<u128> {
        let mut total = 0u128;
        self.rewards_per_round
            .iter()
            .map(|reward| {
                total = total.saturating_add(*reward);
                total
            })
            .collect()
    }
}

impl RunResult {
    /// Rounds that finalized.
    pub fn finalized_rounds(&self) -> usize {
        self.rounds.iter().filter(|r| r.finalized).count()
    }
}

/// u128 as a decimal string.
mod amount {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|_| D::Error::custom(format!("`{text}` is not a token amount")))
    }
}

/// A list of u128 as decimal strings.
mod amounts {
    use serde::{de::Error, ser::SerializeSeq, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[u128], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(values.len()))?;
        for value in values {
            seq.serialize_element(&value.to_string())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u128>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .into_iter()
            .map(|text| {
                text.parse()
                    .map_err(|_| D::Error::custom(format!("`{text}` is not a token amount")))
            })
            .collect()
    }
}

/// f64 that may be NaN or infinite: written as `null` then, read back as NaN.
mod finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else {
            serializer.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
    }
}

/// An optional f64; a non-finite value is written as `null` (read back as `None`).
mod finite_option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) if v.is_finite() => serializer.serialize_some(v),
            _ => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(deserializer)
    }
}
