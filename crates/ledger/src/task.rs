//! Training tasks: the spec a creator posts, membership, and the lifecycle
//! `Open -> Running(round) -> Finished -> Settled`, or `Open -> Cancelled`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, RangeCfg, Read, Write};
use serde::Serialize;

use crate::address::Address;
use crate::encoding::{read_tag, Hash, MAX_TASK_MEMBERS, MAX_TASK_VALIDATORS};

pub use crate::encoding::serialize_hash;
pub use cairn_round::spec::{TaskSpec, Verification};

/// Most rounds a task may ask for.
pub const MAX_ROUNDS: u32 = 1_000_000;

/// Longest commit, reveal, attestation, audit or dispute-move window, in blocks.
pub const MAX_WINDOW: u64 = 1_000_000;

/// Most disputes one task may have open at once (bounds the task record; a challenge past it
/// is refused until one resolves).
pub const MAX_OPEN_DISPUTES: usize = 4096;

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
    /// All rounds closed; the last audit window and every dispute still have to end before the
    /// unspent budget is refunded and bonds unlock.
    Finished,
    /// Rounds, audit windows and disputes are over: unspent budget refunded, bonds unlocked.
    Settled,
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
    /// Trainers and their bonds (a trainer that lost a dispute keeps its place, so that shards
    /// do not move, with a bond of 0).
    pub trainers: BTreeMap<Address, u128>,
    /// Validators and their bonds (their attestation weight).
    pub validators: BTreeMap<Address, u128>,
    /// Trainers that lost a dispute: their bond is gone and they earn nothing more in the task.
    pub expelled: BTreeSet<Address>,
    /// Rewards awarded to closed rounds and not yet vested or forfeited (held in the escrow).
    pub pending: u128,
    /// Disputes of the task still open (the task settles only when none is).
    pub open_disputes: BTreeSet<u64>,
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

    /// Whether `trainer` may still take part (a member that never lost a dispute).
    pub fn is_active_trainer(&self, trainer: &Address) -> bool {
        self.trainers.contains_key(trainer) && !self.expelled.contains(trainer)
    }

    /// The escrow not promised to any round's rewards yet.
    pub fn unpromised(&self) -> u128 {
        self.escrow.saturating_sub(self.pending)
    }
}

tag_enum_codec!(Role { Trainer = 0, Validator = 1 });

impl Write for TaskStatus {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::Open => 0u8.write(buf),
            Self::Running { round } => (1u8, *round).write(buf),
            Self::Finished => 2u8.write(buf),
            Self::Cancelled => 3u8.write(buf),
            Self::Settled => 4u8.write(buf),
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
            4 => Ok(Self::Settled),
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
        self.expelled.write(buf);
        self.pending.write(buf);
        self.open_disputes.write(buf);
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
            + self.expelled.encode_size()
            + 16
            + self.open_disputes.encode_size()
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
            expelled: BTreeSet::read_cfg(buf, &(RangeCfg::new(..=MAX_TASK_MEMBERS), ()))?,
            pending: u128::read_cfg(buf, &())?,
            open_disputes: BTreeSet::read_cfg(buf, &(RangeCfg::new(..=MAX_OPEN_DISPUTES), ()))?,
        })
    }
}
