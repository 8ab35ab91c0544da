//! The bytes of finality-feed messages: a version byte, a tag byte, then the fields in
//! commonware-codec's canonical encoding. Every decoder is bounded.

use bytes::BufMut;
use commonware_codec::{EncodeSize, Error as CodecError, Read, ReadExt, Write};

use super::block::{CairnBlock, MAX_BLOCK_BYTES};
use super::Finalization;

/// The feed format this node speaks.
pub const FEED_VERSION: u8 = 1;

/// Most heights one [`FeedMessage::Request`] may ask for.
pub const MAX_REQUEST_HEIGHTS: u16 = 64;

const TAG_FINALIZED: u8 = 0;
const TAG_REQUEST: u8 = 1;
const TAG_ANCESTOR: u8 = 2;

/// A message on the finality feed channel.
// Messages live only between decoding and handling; boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedMessage {
    /// A finalized block with the certificate that finalized it (validator to follower).
    Finalized {
        /// The block.
        block: CairnBlock,
        /// The finalization whose payload is the block's digest.
        finalization: Finalization,
    },
    /// A finalized block that has no certificate of its own (validator to follower): consensus
    /// finalized it as an ancestor of a later block (a finalization of height `h + 1` finalizes
    /// `h` too), so no certificate names it. A follower trusts it only once a certified block's
    /// chain of parent hashes reaches it.
    Ancestor {
        /// The block.
        block: CairnBlock,
    },
    /// Asks a validator for the finalized blocks `from .. from + count` (follower to
    /// validator); `count` is at most [`MAX_REQUEST_HEIGHTS`].
    Request {
        /// First height wanted.
        from: u64,
        /// How many heights.
        count: u16,
    },
}

/// Why feed bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum FeedWireError {
    /// The message is empty.
    #[error("empty feed message")]
    Empty,
    /// Another version of the format.
    #[error("feed message version {0}, this node speaks version {FEED_VERSION}")]
    Version(u8),
    /// The fields do not decode (unknown tag, truncation, bounds, trailing bytes).
    #[error("malformed feed message: {0}")]
    Codec(#[from] CodecError),
}

impl FeedMessage {
    /// The canonical encoding, version byte first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.fields_size());
        out.put_u8(FEED_VERSION);
        match self {
            Self::Finalized {
                block,
                finalization,
            } => {
                out.put_u8(TAG_FINALIZED);
                block.write(&mut out);
                finalization.write(&mut out);
            }
            Self::Ancestor { block } => {
                out.put_u8(TAG_ANCESTOR);
                block.write(&mut out);
            }
            Self::Request { from, count } => {
                out.put_u8(TAG_REQUEST);
                from.write(&mut out);
                count.write(&mut out);
            }
        }
        out
    }

    fn fields_size(&self) -> usize {
        match self {
            Self::Finalized {
                block,
                finalization,
            } => block.encode_size() + finalization.encode_size(),
            Self::Ancestor { block } => block.encode_size(),
            Self::Request { from, count } => from.encode_size() + count.encode_size(),
        }
    }

    /// Decodes a message whose certificates name at most `participants` signers. The whole
    /// input must be used.
    pub fn from_bytes(bytes: &[u8], participants: usize) -> Result<Self, FeedWireError> {
        let (&version, rest) = bytes.split_first().ok_or(FeedWireError::Empty)?;
        if version != FEED_VERSION {
            return Err(FeedWireError::Version(version));
        }
        let mut buf = commonware_codec::Copying(rest);
        let tag = u8::read(&mut buf)?;
        let message = match tag {
            TAG_FINALIZED => {
                let block = CairnBlock::read_cfg(&mut buf, &())?;
                let finalization = Finalization::read_cfg(&mut buf, &participants)?;
                Self::Finalized {
                    block,
                    finalization,
                }
            }
            TAG_ANCESTOR => Self::Ancestor {
                block: CairnBlock::read_cfg(&mut buf, &())?,
            },
            TAG_REQUEST => {
                let from = u64::read(&mut buf)?;
                let count = u16::read(&mut buf)?;
                if count == 0 || count > MAX_REQUEST_HEIGHTS {
                    return Err(
                        CodecError::Invalid("FeedMessage", "request count out of range").into(),
                    );
                }
                Self::Request { from, count }
            }
            other => return Err(CodecError::InvalidEnum(other).into()),
        };
        if bytes::Buf::has_remaining(&buf) {
            return Err(CodecError::ExtraData(bytes::Buf::remaining(&buf)).into());
        }
        Ok(message)
    }
}

/// The largest feed message for a validator set of `participants` (for the p2p size budget).
pub fn max_message_size(participants: u32) -> usize {
    2 + MAX_BLOCK_BYTES + Finalization::max_encode_size(participants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_its_count_is_bounded() {
        let request = FeedMessage::Request { from: 42, count: 3 };
        let bytes = request.to_bytes();
        assert_eq!(bytes[0], FEED_VERSION);
        assert_eq!(FeedMessage::from_bytes(&bytes, 4).unwrap(), request);
        for count in [0, MAX_REQUEST_HEIGHTS + 1] {
            let bytes = FeedMessage::Request { from: 1, count }.to_bytes();
            assert!(FeedMessage::from_bytes(&bytes, 4).is_err());
        }
    }

    #[test]
    fn an_ancestor_round_trips_and_must_be_whole() {
        let block = cairn_ledger::block::Block {
            header: cairn_ledger::block::Header {
                chain_id: 1,
                height: 11,
                parent: [7; 32],
                transactions_root: [0; 32],
                state_root: [1; 32],
            },
            transactions: Vec::new(),
        };
        let message = FeedMessage::Ancestor {
            block: CairnBlock::new(block),
        };
        let bytes = message.to_bytes();
        assert_eq!(bytes[1], TAG_ANCESTOR);
        assert_eq!(FeedMessage::from_bytes(&bytes, 4).unwrap(), message);
        assert!(FeedMessage::from_bytes(&bytes[..bytes.len() - 1], 4).is_err());
    }

    #[test]
    fn unknown_tags_trailing_bytes_and_other_versions_are_errors() {
        let mut bytes = FeedMessage::Request { from: 1, count: 1 }.to_bytes();
        bytes.push(0);
        assert!(matches!(
            FeedMessage::from_bytes(&bytes, 4),
            Err(FeedWireError::Codec(_))
        ));
        assert!(FeedMessage::from_bytes(&[FEED_VERSION, 9], 4).is_err());
        assert!(FeedMessage::from_bytes(&[FEED_VERSION, TAG_ANCESTOR], 4).is_err());
        assert!(matches!(
            FeedMessage::from_bytes(&[2, TAG_REQUEST], 4),
            Err(FeedWireError::Version(2))
        ));
        assert!(matches!(
            FeedMessage::from_bytes(&[], 4),
            Err(FeedWireError::Empty)
        ));
    }
}
