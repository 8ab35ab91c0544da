//! The blob format of a parameter vector (models and updates) and its checked decoder.
//!
//! ```text
//! magic "CRNP" | version u8 = 1 | count u64 LE | count x f32 LE
//! ```
//!
//! The encoding is canonical (one byte string per vector, NaN and infinities refused), so a
//! vector's identity is `blake3` of its blob bytes ([`hash`]): the model hash on the ledger, the
//! update hash a trainer reveals, and the weights hash in every trace checkpoint are all this one
//! hash.

use crate::encoding::Hash;

/// First bytes of every parameter blob.
pub const MAGIC: [u8; 4] = *b"CRNP";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the values.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + 8;

/// Why bytes are not a valid parameter blob for this task.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamsError {
    /// Fewer bytes than the header.
    #[error("parameter blob of {0} bytes is shorter than its {HEADER_LEN}-byte header")]
    TooShort(usize),
    /// The magic is not `CRNP`.
    #[error("not a parameter blob (magic {0:02x?}, expected \"CRNP\")")]
    BadMagic([u8; 4]),
    /// A version this code does not read.
    #[error("parameter blob version {0} is not supported (this node reads version {VERSION})")]
    UnsupportedVersion(u8),
    /// The header's count is not the task model's parameter count.
    #[error("parameter blob holds {got} values; the task's model has {expected}")]
    WrongCount {
        /// The model's parameter count.
        expected: usize,
        /// The count in the header.
        got: u64,
    },
    /// The body is not exactly `4 x count` bytes.
    #[error("parameter blob body is {got} bytes; {expected} were announced")]
    BodyLength {
        /// Bytes announced by the header.
        expected: usize,
        /// Bytes present.
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("parameter {index} is {value}; every value must be finite")]
    NonFinite {
        /// Index of the first bad value.
        index: usize,
        /// The value.
        value: f32,
    },
}

/// Encodes a parameter vector as a blob.
pub fn encode(values: &[f32]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(HEADER_LEN + 4 * values.len());
    blob.extend_from_slice(&MAGIC);
    blob.push(VERSION);
    blob.extend_from_slice(&(values.len() as u64).to_le_bytes());
    for value in values {
        blob.extend_from_slice(&value.to_le_bytes());
    }
    blob
}

/// Decodes a blob that must hold exactly `expected` finite values. The header is checked
/// before anything is allocated.
pub fn decode(blob: &[u8], expected: usize) -> Result<Vec<f32>, ParamsError> {
    if blob.len() < HEADER_LEN {
        return Err(ParamsError::TooShort(blob.len()));
    }
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&blob[..4]);
    if magic != MAGIC {
        return Err(ParamsError::BadMagic(magic));
    }
    if blob[4] != VERSION {
        return Err(ParamsError::UnsupportedVersion(blob[4]));
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&blob[5..HEADER_LEN]);
    let count = u64::from_le_bytes(count);
    if count != expected as u64 {
        return Err(ParamsError::WrongCount {
            expected,
            got: count,
        });
    }
    let body = &blob[HEADER_LEN..];
    let announced = expected.saturating_mul(4);
    if body.len() != announced {
        return Err(ParamsError::BodyLength {
            expected: announced,
            got: body.len(),
        });
    }
    let mut values = Vec::with_capacity(expected);
    for (index, bytes) in body.chunks_exact(4).enumerate() {
        let value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if !value.is_finite() {
            return Err(ParamsError::NonFinite { index, value });
        }
        values.push(value);
    }
    Ok(values)
}

/// The content address of a blob: blake3 of its bytes (the model hash on the ledger).
pub fn blob_hash(blob: &[u8]) -> Hash {
    *blake3::hash(blob).as_bytes()
}

/// The identity of a parameter vector: [`blob_hash`] of its [`encode`]d blob, computed without
/// building the blob. Models, updates and trace checkpoints all name weights by this hash.
pub fn hash(values: &[f32]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&MAGIC);
    hasher.update(&[VERSION]);
    hasher.update(&(values.len() as u64).to_le_bytes());
    hash_values(&mut hasher, values);
    *hasher.finalize().as_bytes()
}

/// Feeds `values` to `hasher` as little-endian bytes, a buffer at a time.
pub(crate) fn hash_values(hasher: &mut blake3::Hasher, values: &[f32]) {
    let mut buffer = [0u8; 4096];
    for chunk in values.chunks(buffer.len() / 4) {
        for (bytes, value) in buffer.chunks_exact_mut(4).zip(chunk) {
            bytes.copy_from_slice(&value.to_le_bytes());
        }
        hasher.update(&buffer[..chunk.len() * 4]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_malformation_is_its_own_typed_error() {
        let blob = encode(&[1.0, -2.5, 0.0]);
        assert_eq!(decode(&blob, 3).unwrap(), vec![1.0, -2.5, 0.0]);
        assert_eq!(decode(&blob[..5], 3), Err(ParamsError::TooShort(5)));
        let mut bad = blob.clone();
        bad[0] = b'X';
        assert!(matches!(decode(&bad, 3), Err(ParamsError::BadMagic(_))));
        let mut bad = blob.clone();
        bad[4] = 2;
        assert_eq!(decode(&bad, 3), Err(ParamsError::UnsupportedVersion(2)));
        assert!(matches!(
            decode(&blob, 4),
            Err(ParamsError::WrongCount { .. })
        ));
        assert!(matches!(
            decode(&blob[..blob.len() - 1], 3),
            Err(ParamsError::BodyLength { .. })
        ));
        let nan = encode(&[1.0, f32::NAN, 0.0]);
        assert!(matches!(
            decode(&nan, 3),
            Err(ParamsError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn a_huge_announced_count_is_refused_before_allocation() {
        let mut blob = encode(&[]);
        blob[5..13].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode(&blob, 10),
            Err(ParamsError::WrongCount { .. })
        ));
    }

    #[test]
    fn the_vector_hash_is_the_hash_of_its_blob() {
        for values in [
            vec![],
            vec![1.5f32],
            (0..5000).map(|i| i as f32 * 0.25).collect(),
        ] {
            assert_eq!(hash(&values), blob_hash(&encode(&values)));
        }
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(values in proptest::collection::vec(-1e6f32..1e6, 0..64)) {
            let blob = encode(&values);
            prop_assert_eq!(decode(&blob, values.len()).unwrap(), values);
        }

        #[test]
        fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes, 3);
        }
    }
}
