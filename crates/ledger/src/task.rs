//! Training tasks: the spec a creator posts, membership, and the lifecycle
//! `Open -> Running(round) -> Finished | Cancelled`.

use std::collections::BTreeMap;

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, RangeCfg, Read, Write};
use serde::Serialize;

use crate::address::Address;
use crate::encoding::{
    read_tag, read_text, text_size, to_hex, write_text, Hash, MAX_TASK_MEMBERS, MAX_TASK_VALIDATORS,
};

/// Most rounds a task may ask for.
pub const MAX_ROUNDS: u32 = 1_000_000;

/// Longest commit, reveal or attestation window, in blocks.
pub const MAX_WINDOW: u64 = 1_000_000;

/// What to train and how: everything a trainer and a validator need to agree on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskSpec {
    /// Model architecture name (as `cairn-ml` names it).
    pub model: String,
    /// blake3 of the initial model blob (`M_0`).
    #[serde(serialize_with = "serialize_hash")]
    pub initial_model: Hash,
    /// blake3 of the dataset's content.
    #[serde(serialize_with = "serialize_hash")]
    pub dataset: Hash,
    /// How the data is split among trainers (e.g. `iid`, `dirichlet:0.5`, `private`).
    pub partition: String,
    /// Number of rounds.
    pub rounds: u32,
    /// SGD steps each trainer runs per round.
    pub local_steps: u32,
    /// Optimizer and its hyper-parameters (e.g. `sgd:lr=0.05`).
    pub optimizer: String,
    /// Robust aggregation rule (as `cairn-robust` names it, e.g. `trimmed-mean:0.2`).
    pub robust_rule: String,
    /// Blocks during which trainers may commit.
    pub commit_window: u64,
    /// Blocks during which trainers may reveal (right after the commit window).
    pub reveal_window: u64,
    /// Blocks for attestation commits, then as many for attestation reveals.
    pub attest_window: u64,
    /// Smallest bond a member may lock.
    pub min_stake: u128,
    /// Tokens paid out per finalized round (escrowed for every round at creation).
    pub reward_per_round: u128,
}

impl TaskSpec {
    /// Blocks from a round's opening block to the block that closes it: the opening block
    /// itself, then the commit, reveal, attestation-commit and attestation-reveal windows.
    pub fn round_length(&self) -> u64 {
        1 + self.commit_window + self.reveal_window + 2 * self.attest_window
    }

    /// The budget escrowed at creation; `None` when it overflows u128.
    pub fn budget(&self) -> Option<u128> {
        self.reward_per_round.checked_mul(u128::from(self.rounds))
    }
}

/// A member's part in a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Role {
    /// Trains and submits updates.
    Trainer,
    /// Aggregates, scores and attests.
    Validator,
}

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TaskStatus {
    /// Accepting members; not started.
    Open,
    /// Round `round` is in progress.
    Running {
        /// The current round.
        round: u32,
    },
    /// All rounds closed; unspent budget refunded.
    Finished,
    /// Cancelled before it started; budget refunded.
    Cancelled,
}

/// A task as stored in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Task {
    /// Sequential id.
    pub id: u64,
    /// Who posted it and receives refunds.
    pub creator: Address,
    /// What to train.
    pub spec: TaskSpec,
    /// Budget still held in escrow.
    pub escrow: u128,
    /// Lifecycle state.
    pub status: TaskStatus,
    /// The latest finalized model hash (`M_0` until a round finalizes).
    #[serde(serialize_with = "serialize_hash")]
    pub model_hash: Hash,
    /// Trainers and their bonds.
    pub trainers: BTreeMap<Address, u128>,
    /// Validators and their bonds (their attestation weight).
    pub validators: BTreeMap<Address, u128>,
}

impl Task {
    /// Total bond of the task's validators (the denominator of the 2/3 rule).
    pub fn validator_stake(&self) -> u128 {
        self.validators.values().sum()
    }

    /// Number of members of either role.
    pub fn members(&self) -> usize {
        self.trainers.len() + self.validators.len()
    }
}

/// Serializes a hash as lower-case hex (for JSON output).
pub fn serialize_hash<S: serde::Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&to_hex(hash))
}

impl Write for TaskSpec {
    fn write(&self, buf: &mut impl BufMut) {
        write_text(&self.model, buf);
        self.initial_model.write(buf);
        self.dataset.write(buf);
        write_text(&self.partition, buf);
        self.rounds.write(buf);
        self.local_steps.write(buf);
        write_text(&self.optimizer, buf);
        write_text(&self.robust_rule, buf);
        self.commit_window.write(buf);
        self.reveal_window.write(buf);
        self.attest_window.write(buf);
        self.min_stake.write(buf);
        self.reward_per_round.write(buf);
    }
}

impl EncodeSize for TaskSpec {
    fn encode_size(&self) -> usize {
        text_size(&self.model)
            + 64
            + text_size(&self.partition)
            + 8
            + text_size(&self.optimizer)
            + text_size(&self.robust_rule)
            + 24
            + 32
    }
}

impl Read for TaskSpec {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            model: read_text(buf)?,
            initial_model: Hash::read_cfg(buf, &())?,
            dataset: Hash::read_cfg(buf, &())?,
            partition: read_text(buf)?,
            rounds: u32::read_cfg(buf, &())?,
            local_steps: u32::read_cfg(buf, &())?,
            optimizer: read_text(buf)?,
            robust_rule: read_text(buf)?,
            commit_window: u64::read_cfg(buf, &())?,
            reveal_window: u64::read_cfg(buf, &())?,
            attest_window: u64::read_cfg(buf, &())?,
            min_stake: u128::read_cfg(buf, &())?,
            reward_per_round: u128::read_cfg(buf, &())?,
        })
    }
}

impl Write for Role {
    fn write(&self, buf: &mut impl BufMut) {
        let tag: u8 = match self {
            Self::Trainer => 0,
            Self::Validator => 1,
        };
        tag.write(buf);
    }
}

impl FixedSize for Role {
    const SIZE: usize = 1;
}

impl Read for Role {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match read_tag(buf)? {
            0 => Ok(Self::Trainer),
            1 => Ok(Self::Validator),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

impl Write for TaskStatus {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::Open => 0u8.write(buf),
            Self::Running { round } => (1u8, *round).write(buf),
            Self::Finished => 2u8.write(buf),
            Self::Cancelled => 3u8.write(buf),
        }
    }
}

impl EncodeSize for TaskStatus {
    fn encode_size(&self) -> usize {
        match self {
            Self::Running { .. } => 5,
            _ => 1,
        }
    }
}

impl Read for TaskStatus {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match read_tag(buf)? {
            0 => Ok(Self::Open),
            1 => Ok(Self::Running {
                round: u32::read_cfg(buf, &())?,
            }),
            2 => Ok(Self::Finished),
            3 => Ok(Self::Cancelled),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

impl Write for Task {
    fn write(&self, buf: &mut impl BufMut) {
        self.id.write(buf);
        self.creator.write(buf);
        self.spec.write(buf);
        self.escrow.write(buf);
        self.status.write(buf);
        self.model_hash.write(buf);
        self.trainers.write(buf);
        self.validators.write(buf);
    }
}

impl EncodeSize for Task {
    fn encode_size(&self) -> usize {
        8 + Address::SIZE
            + self.spec.encode_size()
            + 16
            + self.status.encode_size()
            + 32
            + self.trainers.encode_size()
            + self.validators.encode_size()
    }
}

impl Read for Task {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let members = (RangeCfg::new(..=MAX_TASK_MEMBERS), ((), ()));
        Ok(Self {
            id: u64::read_cfg(buf, &())?,
            creator: Address::read_cfg(buf, &())?,
            spec: TaskSpec::read_cfg(buf, &())?,
            escrow: u128::read_cfg(buf, &())?,
            status: TaskStatus::read_cfg(buf, &())?,
            model_hash: Hash::read_cfg(buf, &())?,
            trainers: BTreeMap::read_cfg(buf, &members)?,
            validators: BTreeMap::read_cfg(
                buf,
                &(RangeCfg::new(..=MAX_TASK_VALIDATORS), ((), ())),
            )?,
        })
    }
}
