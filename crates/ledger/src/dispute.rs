//! The dispute game's transaction types, fixed now so the encoding is stable; the referee that
//! executes them (re-running one training step with `cairn-ml`) is not built yet, so these types
//! are not part of [`crate::transaction::Payload`] and no block can carry them.
//!
//! The game, as designed: a validator whose audit of a trainer's trace fails posts a
//! [`Challenge`] with a bond. Trainer and challenger then alternate [`BisectionMove`]s over the
//! trace (each within `move_window` blocks, or the silent party loses), halving the disputed
//! range of steps until one step remains. The trainer then posts a [`OneStepProof`]: the weights
//! before the step and the mini-batch witness; the ledger re-executes that single step
//! bit-exactly and slashes whoever lied, paying the challenger per
//! [`crate::genesis::SlashDestination`].

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, Write};

use crate::address::Address;
use crate::encoding::{Hash, MAX_DISPUTE_HASHES, MAX_WITNESS_BYTES};

/// Opens a dispute against a trainer's update in a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Task id.
    pub task: u64,
    /// Round number.
    pub round: u32,
    /// The trainer challenged.
    pub trainer: Address,
    /// The first trace checkpoint the challenger disputes.
    pub first_step: u32,
    /// The challenger's hash of the weights at that checkpoint.
    pub claimed_hash: Hash,
}

/// One move of the bisection: the mover's weight hashes at evenly spaced steps of the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BisectionMove {
    /// Dispute id (the challenge transaction's id).
    pub dispute: Hash,
    /// First step of the range being split.
    pub from_step: u32,
    /// Last step of the range being split.
    pub to_step: u32,
    /// Weight hashes at the split points.
    pub hashes: Vec<Hash>,
}

/// The final move: the material to re-execute one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneStepProof {
    /// Dispute id.
    pub dispute: Hash,
    /// The disputed step.
    pub step: u32,
    /// Encoded weights before the step and the mini-batch indices.
    pub witness: Vec<u8>,
}

impl Write for Challenge {
    fn write(&self, buf: &mut impl BufMut) {
        (
            self.task,
            self.round,
            self.trainer,
            self.first_step,
            self.claimed_hash,
        )
            .write(buf);
    }
}

impl EncodeSize for Challenge {
    fn encode_size(&self) -> usize {
        8 + 4 + 20 + 4 + 32
    }
}

impl Read for Challenge {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
            round: u32::read_cfg(buf, &())?,
            trainer: Address::read_cfg(buf, &())?,
            first_step: u32::read_cfg(buf, &())?,
            claimed_hash: Hash::read_cfg(buf, &())?,
        })
    }
}

impl Write for BisectionMove {
    fn write(&self, buf: &mut impl BufMut) {
        (self.dispute, self.from_step, self.to_step).write(buf);
        self.hashes.write(buf);
    }
}

impl EncodeSize for BisectionMove {
    fn encode_size(&self) -> usize {
        32 + 8 + self.hashes.encode_size()
    }
}

impl Read for BisectionMove {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let dispute = Hash::read_cfg(buf, &())?;
        let from_step = u32::read_cfg(buf, &())?;
        let to_step = u32::read_cfg(buf, &())?;
        if from_step >= to_step {
            return Err(CodecError::Invalid("BisectionMove", "empty step range"));
        }
        Ok(Self {
            dispute,
            from_step,
            to_step,
            hashes: Vec::read_cfg(buf, &(RangeCfg::new(1..=MAX_DISPUTE_HASHES), ()))?,
        })
    }
}

impl Write for OneStepProof {
    fn write(&self, buf: &mut impl BufMut) {
        (self.dispute, self.step).write(buf);
        self.witness.write(buf);
    }
}

impl EncodeSize for OneStepProof {
    fn encode_size(&self) -> usize {
        32 + 4 + self.witness.encode_size()
    }
}

impl Read for OneStepProof {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            dispute: Hash::read_cfg(buf, &())?,
            step: u32::read_cfg(buf, &())?,
            witness: Vec::read_cfg(buf, &(RangeCfg::new(..=MAX_WITNESS_BYTES), ()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};

    #[test]
    fn dispute_types_round_trip_and_bound_their_lists() {
        let challenge = Challenge {
            task: 1,
            round: 2,
            trainer: Address([3; 20]),
            first_step: 4,
            claimed_hash: [5; 32],
        };
        assert_eq!(Challenge::decode(challenge.encode()).unwrap(), challenge);
        let bisection = BisectionMove {
            dispute: [1; 32],
            from_step: 0,
            to_step: 8,
            hashes: vec![[2; 32]; 3],
        };
        assert_eq!(
            BisectionMove::decode(bisection.encode()).unwrap(),
            bisection
        );
        let too_many = BisectionMove {
            hashes: vec![[2; 32]; MAX_DISPUTE_HASHES + 1],
            ..bisection
        };
        assert!(BisectionMove::decode(too_many.encode()).is_err());
        let proof = OneStepProof {
            dispute: [1; 32],
            step: 3,
            witness: vec![9; 10],
        };
        assert_eq!(OneStepProof::decode(proof.encode()).unwrap(), proof);
    }
}
