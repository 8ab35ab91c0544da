//! Disputes: a validator whose re-run of a trainer's round gives another trace opens a dispute
//! with a bond; trainer and challenger bisect the trainer's claimed checkpoints on the ledger,
//! each move within a deadline in blocks (the side that lets it pass loses), down to one step;
//! then the ledger's referee re-executes that step (`cairn_round::referee`) and the liar pays.
//!
//! The range starts at step 0, whose checkpoint the ledger computes itself (`M_r` and a fresh
//! optimizer), and ends at the trainer's last checkpoint, which its reveal opened against its
//! trace root. Each move the ledger names the step of the trainer's next claim: the middle leaf
//! of the trace while the range spans more than one leaf interval (the claim must carry a Merkle
//! proof against the committed root), then the middle step. The challenger answers whether it
//! agrees; agreement moves the range's start, disagreement its end. When one step is left the
//! trainer posts the witness of the agreed state in chunks, and the referee computes the next
//! checkpoint: equal to the trainer's claim, the challenger loses its bond to the trainer;
//! different, the trainer loses its task bond and the round's reward and takes no further part.
//! A dispute over a run of `T` steps with a leaf every `k` takes at most
//! `ceil(log2(ceil(T / k))) + ceil(log2(k))` claims and as many answers, then the witness.
//!
//! Design notes and figures: `docs/verification.md`.

mod game;
mod outcome;

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::Serialize;

use crate::address::Address;
use crate::encoding::{read_tag, serialize_hash, Hash};

pub use game::{answer, claim, deadline, next_claim, open, witness, DisputeError};

/// A side of a dispute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Party {
    /// The trainer whose update is disputed.
    Trainer,
    /// The validator that opened the dispute.
    Challenger,
}

/// A step and the trainer's checkpoint hash there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Point {
    /// Steps taken.
    pub step: u32,
    /// The checkpoint hash.
    #[serde(serialize_with = "serialize_hash")]
    pub checkpoint: Hash,
}

/// Why a dispute ended as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Reason {
    /// The loser let its move's deadline pass.
    Silence,
    /// The referee re-executed the disputed step.
    Referee,
    /// The trainer's witness was not the agreed state, or the step could not be taken from it.
    BadWitness,
    /// The trainer lost another dispute over the same round; this one ended with it.
    Moot,
}

/// How a dispute ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Resolution {
    /// Who won.
    pub winner: Party,
    /// Why.
    pub reason: Reason,
    /// The checkpoint hash the referee computed, when it ran.
    #[serde(serialize_with = "serialize_optional_hash")]
    pub computed: Option<Hash>,
    /// Training steps the referee executed (1 when it ran, else 0).
    pub referee_steps: u32,
    /// Height of the block that resolved it.
    pub height: u64,
}

/// Where a dispute stands: whose move it is, or how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Stage {
    /// The trainer must post its checkpoint at `step`.
    Claim {
        /// The step the ledger asks about.
        step: u32,
    },
    /// The challenger must say whether it agrees with the trainer's `claim`.
    Answer {
        /// The trainer's claim.
        claim: Point,
    },
    /// One step is left: the trainer must post the witness of the agreed state, in order.
    Witness {
        /// Bytes received.
        received: u64,
        /// Bytes the witness must have.
        expected: u64,
        /// Chunks received.
        chunks: u32,
    },
    /// The dispute is over.
    Resolved(Resolution),
}

/// A dispute as stored in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dispute {
    /// Sequential id.
    pub id: u64,
    /// Task id.
    pub task: u64,
    /// Round of the disputed update.
    pub round: u32,
    /// The trainer.
    pub trainer: Address,
    /// The validator that challenged.
    pub challenger: Address,
    /// The challenger's locked bond.
    pub bond: u128,
    /// The challenger's own trace root for the trainer's round.
    #[serde(serialize_with = "serialize_hash")]
    pub challenger_root: Hash,
    /// Height of the block that opened it.
    pub opened_at: u64,
    /// The latest step both sides agree on.
    pub low: Point,
    /// The earliest step where the challenger disputes the trainer's checkpoint.
    pub high: Point,
    /// Whose move it is, or how it ended.
    pub stage: Stage,
    /// Moves made so far (claims, answers and witness chunks).
    pub moves: u32,
    /// Last height at which the side to move may move.
    pub deadline: u64,
}

impl Dispute {
    /// Whether the dispute is still being played.
    pub fn is_open(&self) -> bool {
        !matches!(self.stage, Stage::Resolved(_))
    }

    /// The side that must move next (`None` once resolved).
    pub fn to_move(&self) -> Option<Party> {
        match self.stage {
            Stage::Claim { .. } | Stage::Witness { .. } => Some(Party::Trainer),
            Stage::Answer { .. } => Some(Party::Challenger),
            Stage::Resolved(_) => None,
        }
    }
}

fn serialize_optional_hash<S: serde::Serializer>(
    hash: &Option<Hash>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match hash {
        Some(hash) => serialize_hash(hash, serializer),
        None => serializer.serialize_none(),
    }
}

tag_enum_codec!(Party { Trainer = 0, Challenger = 1 });

tag_enum_codec!(Reason { Silence = 0, Referee = 1, BadWitness = 2, Moot = 3 });

impl Write for Point {
    fn write(&self, buf: &mut impl BufMut) {
        (self.step, self.checkpoint).write(buf);
    }
}

impl FixedSize for Point {
    const SIZE: usize = 4 + 32;
}

impl Read for Point {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            step: u32::read_cfg(buf, &())?,
            checkpoint: Hash::read_cfg(buf, &())?,
        })
    }
}

impl Write for Resolution {
    fn write(&self, buf: &mut impl BufMut) {
        self.winner.write(buf);
        self.reason.write(buf);
        self.computed.write(buf);
        self.referee_steps.write(buf);
        self.height.write(buf);
    }
}

impl EncodeSize for Resolution {
    fn encode_size(&self) -> usize {
        2 + self.computed.encode_size() + 4 + 8
    }
}

impl Read for Resolution {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            winner: Party::read_cfg(buf, &())?,
            reason: Reason::read_cfg(buf, &())?,
            computed: Option::<Hash>::read_cfg(buf, &())?,
            referee_steps: u32::read_cfg(buf, &())?,
            height: u64::read_cfg(buf, &())?,
        })
    }
}

impl Write for Stage {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::Claim { step } => (0u8, *step).write(buf),
            Self::Answer { claim } => {
                1u8.write(buf);
                claim.write(buf);
            }
            Self::Witness {
                received,
                expected,
                chunks,
            } => (2u8, *received, *expected, *chunks).write(buf),
            Self::Resolved(resolution) => {
                3u8.write(buf);
                resolution.write(buf);
            }
        }
    }
}

impl EncodeSize for Stage {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Claim { .. } => 4,
            Self::Answer { .. } => Point::SIZE,
            Self::Witness { .. } => 8 + 8 + 4,
            Self::Resolved(resolution) => resolution.encode_size(),
        }
    }
}

impl Read for Stage {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match read_tag(buf)? {
            0 => Ok(Self::Claim {
                step: u32::read_cfg(buf, &())?,
            }),
            1 => Ok(Self::Answer {
                claim: Point::read_cfg(buf, &())?,
            }),
            2 => Ok(Self::Witness {
                received: u64::read_cfg(buf, &())?,
                expected: u64::read_cfg(buf, &())?,
                chunks: u32::read_cfg(buf, &())?,
            }),
            3 => Ok(Self::Resolved(Resolution::read_cfg(buf, &())?)),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

impl Write for Dispute {
    fn write(&self, buf: &mut impl BufMut) {
        (self.id, self.task, self.round).write(buf);
        self.trainer.write(buf);
        self.challenger.write(buf);
        (self.bond, self.challenger_root, self.opened_at).write(buf);
        self.low.write(buf);
        self.high.write(buf);
        self.stage.write(buf);
        (self.moves, self.deadline).write(buf);
    }
}

impl EncodeSize for Dispute {
    fn encode_size(&self) -> usize {
        8 + 8
            + 4
            + 2 * Address::SIZE
            + 16
            + 32
            + 8
            + 2 * Point::SIZE
            + self.stage.encode_size()
            + 4
            + 8
    }
}

impl Read for Dispute {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let dispute = Self {
            id: u64::read_cfg(buf, &())?,
            task: u64::read_cfg(buf, &())?,
            round: u32::read_cfg(buf, &())?,
            trainer: Address::read_cfg(buf, &())?,
            challenger: Address::read_cfg(buf, &())?,
            bond: u128::read_cfg(buf, &())?,
            challenger_root: Hash::read_cfg(buf, &())?,
            opened_at: u64::read_cfg(buf, &())?,
            low: Point::read_cfg(buf, &())?,
            high: Point::read_cfg(buf, &())?,
            stage: Stage::read_cfg(buf, &())?,
            moves: u32::read_cfg(buf, &())?,
            deadline: u64::read_cfg(buf, &())?,
        };
        if dispute.low.step >= dispute.high.step {
            return Err(CodecError::Invalid("Dispute", "empty step range"));
        }
        Ok(dispute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};

    fn sample(stage: Stage) -> Dispute {
        Dispute {
            id: 3,
            task: 1,
            round: 2,
            trainer: Address([4; 20]),
            challenger: Address([5; 20]),
            bond: 700,
            challenger_root: [6; 32],
            opened_at: 40,
            low: Point {
                step: 0,
                checkpoint: [7; 32],
            },
            high: Point {
                step: 20,
                checkpoint: [8; 32],
            },
            stage,
            moves: 5,
            deadline: 44,
        }
    }

    #[test]
    fn a_dispute_round_trips_in_every_stage() {
        let stages = [
            Stage::Claim { step: 10 },
            Stage::Answer {
                claim: Point {
                    step: 10,
                    checkpoint: [9; 32],
                },
            },
            Stage::Witness {
                received: 100,
                expected: 300,
                chunks: 1,
            },
            Stage::Resolved(Resolution {
                winner: Party::Challenger,
                reason: Reason::Referee,
                computed: Some([1; 32]),
                referee_steps: 1,
                height: 50,
            }),
        ];
        for stage in stages {
            let dispute = sample(stage);
            let bytes = dispute.encode();
            assert_eq!(bytes.len(), dispute.encode_size());
            assert_eq!(Dispute::decode(bytes).unwrap(), dispute);
        }
        let mut empty = sample(Stage::Claim { step: 1 });
        empty.high.step = 0;
        assert!(Dispute::decode(empty.encode()).is_err());
    }
}
