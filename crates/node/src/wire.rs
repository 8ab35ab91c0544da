//! Cairn's own versioned, canonical, bounded messages for the mempool and blob channels.
//!
//! Every message is an envelope: one version byte ([`WIRE_VERSION`]), one tag byte, then the
//! body encoded with `commonware-codec` (the ledger's codec: fixed-width big-endian integers,
//! varint length prefixes). Decoding is bounded before anything is allocated: a blob chunk
//! carries at most [`CHUNK_BYTES`] bytes and announces a blob of at most [`MAX_BLOB_BYTES`]; a
//! transaction body is at most [`MAX_TRANSACTION_BYTES`] and decoded with the ledger's bounds.
//! The encoding is canonical: `from_bytes(to_bytes(m)) == m`, trailing bytes are an error, and
//! whenever `from_bytes(b)` succeeds, `to_bytes` gives back exactly `b`.

use bytes::{BufMut, Bytes};
use cairn_ledger::transaction::SignedTransaction;
use commonware_codec::{Copying, Decode, EncodeSize, Error as CodecError, RangeCfg, Read, Write};

/// The wire version this node speaks; a message with another version is rejected.
pub const WIRE_VERSION: u8 = 1;

/// Most data bytes one blob chunk carries (the blob protocol's fixed chunk size).
pub const CHUNK_BYTES: usize = 1 << 20;

/// Largest blob (model, update, trace) a node accepts from the network.
pub const MAX_BLOB_BYTES: u64 = 64 << 20;

/// Largest encoded signed transaction accepted from the network: a dispute witness chunk
/// ([`cairn_ledger::encoding::MAX_WITNESS_CHUNK`], 1 MiB) plus room for its envelope (every other
/// valid transaction, a full attestation reveal or a task with maximal text fields included, is
/// a few KiB).
pub const MAX_TRANSACTION_BYTES: usize = cairn_ledger::encoding::MAX_WITNESS_CHUNK + (4 << 10);

const TAG_TRANSACTION: u8 = 0;
const TAG_BLOB_REQUEST: u8 = 1;
const TAG_BLOB_CHUNK: u8 = 2;
const TAG_BLOB_MISSING: u8 = 3;

/// A message on Cairn's mempool or blob channel.
// Messages live only between the socket and their handler; boxing the transaction would cost an
// allocation per message for no memory saved.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A signed ledger transaction offered to a validator's mempool.
    Transaction(SignedTransaction),
    /// Asks a peer for one chunk of the blob with this blake3 hash.
    BlobRequest {
        /// blake3 of the whole blob.
        hash: [u8; 32],
        /// Chunk index (chunk `i` covers bytes `i * CHUNK_BYTES ..`).
        chunk: u32,
    },
    /// One chunk of a blob, answering a [`Message::BlobRequest`].
    BlobChunk {
        /// blake3 of the whole blob.
        hash: [u8; 32],
        /// Chunk index.
        chunk: u32,
        /// Length of the whole blob in bytes.
        total_len: u64,
        /// The chunk's bytes (at most [`CHUNK_BYTES`]).
        data: Bytes,
    },
    /// The peer does not serve the requested blob (unknown, private, or pruned).
    BlobMissing {
        /// blake3 of the requested blob.
        hash: [u8; 32],
    },
}

/// Why bytes from a peer are not a valid [`Message`].
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The message is shorter than the two-byte envelope.
    #[error("message of {0} bytes is shorter than the 2-byte envelope")]
    Truncated(usize),
    /// The message is longer than any valid message.
    #[error("message of {len} bytes exceeds the {max}-byte wire limit")]
    TooLong {
        /// Received length.
        len: usize,
        /// [`max_message_bytes`].
        max: usize,
    },
    /// The peer speaks a wire version this node does not.
    #[error("unknown wire version {0} (this node speaks version {WIRE_VERSION})")]
    UnknownVersion(u8),
    /// The tag names no message kind.
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    /// A length field exceeds its bound (chunk data, announced blob size, transaction size).
    #[error("{what} of {len} bytes exceeds the bound of {max} bytes")]
    Oversized {
        /// Which field.
        what: &'static str,
        /// Announced length.
        len: u64,
        /// Bound.
        max: u64,
    },
    /// The body does not decode (truncated, trailing bytes, bad field).
    #[error("malformed {what}: {source}")]
    Malformed {
        /// Which message kind.
        what: &'static str,
        /// The codec's complaint.
        #[source]
        source: CodecError,
    },
}

impl WireError {
    /// Whether the error is a bound violation (a heavier offence than plain garbage).
    pub fn is_oversized(&self) -> bool {
        matches!(self, Self::Oversized { .. } | Self::TooLong { .. })
    }
}

/// Bytes of the largest valid message: the network's `max_size` must be at least this.
pub fn max_message_bytes() -> usize {
    let chunk = 2 + 32 + 4 + 8 + CHUNK_BYTES.encode_size() + CHUNK_BYTES;
    let transaction = 2 + MAX_TRANSACTION_BYTES;
    chunk.max(transaction)
}

impl Message {
    /// The canonical encoding (envelope and body).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.put_u8(WIRE_VERSION);
        match self {
            Self::Transaction(transaction) => {
                out.put_u8(TAG_TRANSACTION);
                transaction.write(&mut out);
            }
            Self::BlobRequest { hash, chunk } => {
                out.put_u8(TAG_BLOB_REQUEST);
                hash.write(&mut out);
                chunk.write(&mut out);
            }
            Self::BlobChunk {
                hash,
                chunk,
                total_len,
                data,
            } => {
                out.put_u8(TAG_BLOB_CHUNK);
                hash.write(&mut out);
                chunk.write(&mut out);
                total_len.write(&mut out);
                data.write(&mut out);
            }
            Self::BlobMissing { hash } => {
                out.put_u8(TAG_BLOB_MISSING);
                hash.write(&mut out);
            }
        }
        debug_assert_eq!(out.len(), self.encoded_len());
        out
    }

    /// Length of [`Message::to_bytes`].
    pub fn encoded_len(&self) -> usize {
        2 + match self {
            Self::Transaction(transaction) => transaction.encode_size(),
            Self::BlobRequest { .. } => 32 + 4,
            Self::BlobChunk { data, .. } => 32 + 4 + 8 + data.encode_size(),
            Self::BlobMissing { .. } => 32,
        }
    }

    /// Decodes a message received from a peer, enforcing every bound.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() < 2 {
            return Err(WireError::Truncated(bytes.len()));
        }
        let max = max_message_bytes();
        if bytes.len() > max {
            return Err(WireError::TooLong {
                len: bytes.len(),
                max,
            });
        }
        if bytes[0] != WIRE_VERSION {
            return Err(WireError::UnknownVersion(bytes[0]));
        }
        let body = &bytes[2..];
        match bytes[1] {
            TAG_TRANSACTION => {
                if body.len() > MAX_TRANSACTION_BYTES {
                    return Err(WireError::Oversized {
                        what: "transaction",
                        len: body.len() as u64,
                        max: MAX_TRANSACTION_BYTES as u64,
                    });
                }
                SignedTransaction::decode_cfg(Copying(body), &())
                    .map(Self::Transaction)
                    .map_err(|source| WireError::Malformed {
                        what: "transaction",
                        source,
                    })
            }
            TAG_BLOB_REQUEST => {
                let (hash, chunk) = <([u8; 32], u32)>::decode_cfg(Copying(body), &((), ()))
                    .map_err(|source| WireError::Malformed {
                        what: "blob request",
                        source,
                    })?;
                Ok(Self::BlobRequest { hash, chunk })
            }
            TAG_BLOB_CHUNK => decode_chunk(body),
            TAG_BLOB_MISSING => {
                let hash = <[u8; 32]>::decode_cfg(Copying(body), &()).map_err(|source| {
                    WireError::Malformed {
                        what: "blob missing",
                        source,
                    }
                })?;
                Ok(Self::BlobMissing { hash })
            }
            other => Err(WireError::UnknownTag(other)),
        }
    }
}

/// Bytes of a blob of `total_len` that chunk `chunk` covers; `None` past the end. An empty blob
/// has one empty chunk.
pub fn chunk_range(total_len: u64, chunk: u32) -> Option<std::ops::Range<usize>> {
    let start = u64::from(chunk).checked_mul(CHUNK_BYTES as u64)?;
    if start >= total_len && !(total_len == 0 && chunk == 0) {
        return None;
    }
    let end = total_len.min(start + CHUNK_BYTES as u64);
    Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

fn decode_chunk(body: &[u8]) -> Result<Message, WireError> {
    let malformed = |source| WireError::Malformed {
        what: "blob chunk",
        source,
    };
    let mut buf = Copying(body);
    let (hash, chunk, total_len) =
        <([u8; 32], u32, u64)>::read_cfg(&mut buf, &((), (), ())).map_err(malformed)?;
    if total_len > MAX_BLOB_BYTES {
        return Err(WireError::Oversized {
            what: "announced blob",
            len: total_len,
            max: MAX_BLOB_BYTES,
        });
    }
    let data =
        Bytes::decode_cfg(buf, &RangeCfg::new(..=CHUNK_BYTES)).map_err(|error| match error {
            CodecError::InvalidLength(len) => WireError::Oversized {
                what: "chunk data",
                len: len as u64,
                max: CHUNK_BYTES as u64,
            },
            source => malformed(source),
        })?;
    Ok(Message::BlobChunk {
        hash,
        chunk,
        total_len,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_ledger::transaction::Payload;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    fn transaction() -> SignedTransaction {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        SignedTransaction::new(&key, 9, 3, Payload::Burn { amount: 5 })
    }

    fn samples() -> Vec<Message> {
        vec![
            Message::Transaction(transaction()),
            Message::BlobRequest {
                hash: [1; 32],
                chunk: 7,
            },
            Message::BlobChunk {
                hash: [2; 32],
                chunk: 0,
                total_len: 5,
                data: Bytes::from_static(b"hello"),
            },
            Message::BlobMissing { hash: [3; 32] },
        ]
    }

    #[test]
    fn every_message_kind_round_trips_and_reports_its_length() {
        for message in samples() {
            let bytes = message.to_bytes();
            assert_eq!(bytes.len(), message.encoded_len());
            assert!(bytes.len() <= max_message_bytes());
            assert_eq!(Message::from_bytes(&bytes).unwrap(), message);
        }
    }

    #[test]
    fn trailing_bytes_and_truncation_are_errors() {
        for message in samples() {
            let mut bytes = message.to_bytes();
            bytes.push(0);
            assert!(matches!(
                Message::from_bytes(&bytes),
                Err(WireError::Malformed { .. })
            ));
            bytes.truncate(bytes.len() - 2);
            assert!(Message::from_bytes(&bytes).is_err());
        }
        assert!(matches!(
            Message::from_bytes(&[WIRE_VERSION]),
            Err(WireError::Truncated(1))
        ));
    }

    #[test]
    fn unknown_version_and_tag_are_typed_errors() {
        let mut bytes = samples()[1].to_bytes();
        bytes[0] = 2;
        assert!(matches!(
            Message::from_bytes(&bytes),
            Err(WireError::UnknownVersion(2))
        ));
        bytes[0] = WIRE_VERSION;
        bytes[1] = 9;
        assert!(matches!(
            Message::from_bytes(&bytes),
            Err(WireError::UnknownTag(9))
        ));
    }

    #[test]
    fn oversized_chunks_and_blobs_are_rejected_as_oversized() {
        let too_much_data = Message::BlobChunk {
            hash: [0; 32],
            chunk: 0,
            total_len: MAX_BLOB_BYTES,
            data: Bytes::from(vec![0u8; CHUNK_BYTES + 1]),
        };
        let error = Message::from_bytes(&too_much_data.to_bytes()).unwrap_err();
        assert!(error.is_oversized(), "{error}");
        let huge_blob = Message::BlobChunk {
            hash: [0; 32],
            chunk: 0,
            total_len: MAX_BLOB_BYTES + 1,
            data: Bytes::from_static(b"x"),
        };
        let error = Message::from_bytes(&huge_blob.to_bytes()).unwrap_err();
        assert!(matches!(
            error,
            WireError::Oversized {
                what: "announced blob",
                ..
            }
        ));
        let full = Message::BlobChunk {
            hash: [0; 32],
            chunk: 0,
            total_len: MAX_BLOB_BYTES,
            data: Bytes::from(vec![0u8; CHUNK_BYTES]),
        };
        assert!(full.encoded_len() <= max_message_bytes());
        assert_eq!(Message::from_bytes(&full.to_bytes()).unwrap(), full);
    }

    #[test]
    fn the_largest_witness_chunk_fits_a_transaction_message() {
        use cairn_ledger::encoding::MAX_WITNESS_CHUNK;
        use cairn_ledger::{Payload, SignedTransaction};
        let key = cairn_ledger::ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let chunk = SignedTransaction::new(
            &key,
            u64::MAX,
            u64::MAX,
            Payload::DisputeWitness {
                dispute: u64::MAX,
                offset: u64::MAX,
                bytes: vec![0xff; MAX_WITNESS_CHUNK],
            },
        );
        let message = Message::Transaction(chunk);
        let bytes = message.to_bytes();
        assert!(bytes.len() <= max_message_bytes());
        assert_eq!(Message::from_bytes(&bytes).unwrap(), message);
    }

    #[test]
    fn chunk_ranges_cover_a_blob_exactly_once() {
        let total = 2 * CHUNK_BYTES as u64 + 5;
        assert_eq!(chunk_range(total, 0), Some(0..CHUNK_BYTES));
        assert_eq!(
            chunk_range(total, 2),
            Some(2 * CHUNK_BYTES..2 * CHUNK_BYTES + 5)
        );
        assert_eq!(chunk_range(total, 3), None);
        assert_eq!(chunk_range(0, 0), Some(0..0));
        assert_eq!(chunk_range(0, 1), None);
        assert_eq!(
            chunk_range(u64::MAX, u32::MAX).map(|r| r.start > 0),
            Some(true)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_reencode_exactly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(message) = Message::from_bytes(&bytes) {
                prop_assert_eq!(message.to_bytes(), bytes);
            }
        }

        #[test]
        fn mutated_valid_messages_never_panic_and_reencode_exactly(
            which in 0usize..4,
            position in any::<prop::sample::Index>(),
            value in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let original = samples()[which].to_bytes();
            let keep = cut.index(original.len());
            prop_assert!(Message::from_bytes(&original[..keep]).is_err());
            let mut bytes = original;
            let at = position.index(bytes.len());
            bytes[at] = value;
            if let Ok(message) = Message::from_bytes(&bytes) {
                prop_assert_eq!(message.to_bytes(), bytes);
            }
        }

        #[test]
        fn random_chunks_round_trip(hash in any::<[u8; 32]>(), chunk in any::<u32>(), data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let message = Message::BlobChunk { hash, chunk, total_len: data.len() as u64, data: Bytes::from(data) };
            prop_assert_eq!(Message::from_bytes(&message.to_bytes()).unwrap(), message);
        }
    }
}
