//! Events due at a future height (round closes, unbonding releases, escrow releases), run at the
//! start of the block at that height, in the order they were scheduled.
//!
//! Each event has its own key (`queue/` height, then a sequence number) and a per-height count,
//! so scheduling costs one read and two writes however many events share the height.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};

use crate::address::Address;
use crate::encoding::{read_tag, Hash};
use crate::execute::TxError;
use crate::state::{keys, Overlay, StateError};

/// Something the ledger does by itself when a height is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Close round `round` of `task`: finalize it or time it out.
    CloseRound {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
    },
    /// Return the stake that unbonds at this height to the balance (what slashing left of it).
    ReleaseUnbond {
        /// Whose stake.
        address: Address,
        /// The height the unbonding ends (its entry's key).
        due: u64,
    },
    /// Release a dataset purchase's escrow to the owner.
    ReleaseAccess {
        /// Dataset content hash.
        dataset: Hash,
        /// Who bought it.
        buyer: Address,
    },
    /// Draw the round's audits (at the first block after its reveal window).
    DrawAudits {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
    },
    /// Pay a finalized round's rewards once its audit window is over.
    VestRound {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
    },
    /// A dispute move's deadline passed: if nobody moved since, the party to move loses.
    DisputeDeadline {
        /// Dispute id.
        dispute: u64,
        /// The dispute's move count when the deadline was set.
        moves: u32,
    },
    /// Refund the unspent budget and unlock bonds once every window and dispute is over.
    SettleTask {
        /// Task id.
        task: u64,
    },
}

fn event_key(height: u64, sequence: u64) -> Vec<u8> {
    let mut key = keys::queue(height);
    key.push(b'/');
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

/// Schedules `event` for the block at `height`.
pub fn push(state: &mut Overlay, height: u64, event: &Event) -> Result<(), TxError> {
    let count_key = keys::queue(height);
    let count: u64 = state.read(&count_key)?.unwrap_or(0);
    state.write(event_key(height, count), event);
    state.write(count_key, &(count + 1));
    Ok(())
}

/// Removes and returns the events due at `height`, in scheduling order.
pub fn take(state: &mut Overlay, height: u64) -> Result<Vec<Event>, StateError> {
    let count_key = keys::queue(height);
    let count: u64 = state.read(&count_key)?.unwrap_or(0);
    let mut events = Vec::new();
    for sequence in 0..count {
        let key = event_key(height, sequence);
        if let Some(event) = state.read::<Event>(&key)? {
            events.push(event);
        }
        state.delete(key);
    }
    state.delete(count_key);
    Ok(events)
}

impl Write for Event {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::CloseRound { task, round } => (0u8, *task, *round).write(buf),
            Self::ReleaseUnbond { address, due } => {
                1u8.write(buf);
                address.write(buf);
                due.write(buf);
            }
            Self::ReleaseAccess { dataset, buyer } => {
                2u8.write(buf);
                dataset.write(buf);
                buyer.write(buf);
            }
            Self::DrawAudits { task, round } => (3u8, *task, *round).write(buf),
            Self::VestRound { task, round } => (4u8, *task, *round).write(buf),
            Self::DisputeDeadline { dispute, moves } => (5u8, *dispute, *moves).write(buf),
            Self::SettleTask { task } => (6u8, *task).write(buf),
        }
    }
}

impl EncodeSize for Event {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::CloseRound { .. }
            | Self::DrawAudits { .. }
            | Self::VestRound { .. }
            | Self::DisputeDeadline { .. } => 12,
            Self::ReleaseUnbond { .. } => 20 + 8,
            Self::ReleaseAccess { .. } => 32 + 20,
            Self::SettleTask { .. } => 8,
        }
    }
}

impl Read for Event {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match read_tag(buf)? {
            0 => Ok(Self::CloseRound {
                task: u64::read_cfg(buf, &())?,
                round: u32::read_cfg(buf, &())?,
            }),
            1 => Ok(Self::ReleaseUnbond {
                address: Address::read_cfg(buf, &())?,
                due: u64::read_cfg(buf, &())?,
            }),
            2 => Ok(Self::ReleaseAccess {
                dataset: Hash::read_cfg(buf, &())?,
                buyer: Address::read_cfg(buf, &())?,
            }),
            3 => Ok(Self::DrawAudits {
                task: u64::read_cfg(buf, &())?,
                round: u32::read_cfg(buf, &())?,
            }),
            4 => Ok(Self::VestRound {
                task: u64::read_cfg(buf, &())?,
                round: u32::read_cfg(buf, &())?,
            }),
            5 => Ok(Self::DisputeDeadline {
                dispute: u64::read_cfg(buf, &())?,
                moves: u32::read_cfg(buf, &())?,
            }),
            6 => Ok(Self::SettleTask {
                task: u64::read_cfg(buf, &())?,
            }),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}
