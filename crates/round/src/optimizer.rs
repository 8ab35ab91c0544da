//! The canonical encoding of an optimizer's state (step count and moment buffers), which trace
//! checkpoints hash and dispute witnesses carry.
//!
//! ```text
//! magic "CRNO" | version u8 = 1 | steps u64 LE | n1 u64 LE | n1 x f32 LE | n2 u64 LE | n2 x f32 LE
//! ```
//!
//! `n1` and `n2` are the lengths of the two moment buffers (SGD momentum or Adam's first moment,
//! Adam's second moment; 0 when unused). The decoder takes the lengths the task's optimizer and
//! model dictate and checks the header against them before allocating.

use cairn_ml::optim::{Optimizer, OptimizerError, OptimizerSpec};

use crate::encoding::Hash;
use crate::params::hash_values;

/// First bytes of every optimizer-state blob.
pub const MAGIC: [u8; 4] = *b"CRNO";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of the fixed header (magic, version, step count).
pub const HEADER_LEN: usize = MAGIC.len() + 1 + 8;

/// Why bytes are not the optimizer state a task expects.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// Fewer bytes than the header.
    #[error("optimizer state of {0} bytes is shorter than its header")]
    TooShort(usize),
    /// The magic is not `CRNO`.
    #[error("not an optimizer state (magic {0:02x?}, expected \"CRNO\")")]
    BadMagic([u8; 4]),
    /// A version this code does not read.
    #[error("optimizer state version {0} is not supported (this node reads version {VERSION})")]
    UnsupportedVersion(u8),
    /// A buffer length differs from what the optimizer and model dictate.
    #[error(
        "optimizer state buffer {buffer} holds {got} values; the task's optimizer keeps {expected}"
    )]
    WrongLength {
        /// 1 or 2.
        buffer: u8,
        /// What the task needs.
        expected: usize,
        /// What the header says.
        got: u64,
    },
    /// The byte count does not match the header.
    #[error("optimizer state is {got} bytes; its header announces {expected}")]
    BodyLength {
        /// Bytes announced.
        expected: usize,
        /// Bytes present.
        got: usize,
    },
    /// The buffers do not form a valid state (e.g. a non-finite moment).
    #[error(transparent)]
    Invalid(#[from] OptimizerError),
}

/// Bytes of the encoded state of `spec` for `param_count` parameters.
pub fn encoded_len(spec: &OptimizerSpec, param_count: usize) -> usize {
    let (first, second) = Optimizer::moment_lengths(spec, param_count);
    HEADER_LEN + 16 + 4 * (first + second)
}

/// Encodes an optimizer's state.
pub fn encode(optimizer: &Optimizer) -> Vec<u8> {
    let (first, second) = optimizer.moments();
    let mut out = Vec::with_capacity(HEADER_LEN + 16 + 4 * (first.len() + second.len()));
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&optimizer.steps().to_le_bytes());
    for buffer in [first, second] {
        out.extend_from_slice(&(buffer.len() as u64).to_le_bytes());
        for value in buffer {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out
}

/// blake3 of [`encode`]d state, computed without building the blob: the optimizer part of a
/// trace checkpoint.
pub fn hash(optimizer: &Optimizer) -> Hash {
    let (first, second) = optimizer.moments();
    let mut hasher = blake3::Hasher::new();
    hasher.update(&MAGIC);
    hasher.update(&[VERSION]);
    hasher.update(&optimizer.steps().to_le_bytes());
    for buffer in [first, second] {
        hasher.update(&(buffer.len() as u64).to_le_bytes());
        hash_values(&mut hasher, buffer);
    }
    *hasher.finalize().as_bytes()
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let slice = bytes.get(at..at + 8)?;
    let mut out = [0u8; 8];
    out.copy_from_slice(slice);
    Some(u64::from_le_bytes(out))
}

/// Decodes the state of `spec`'s optimizer for `param_count` parameters; every length is checked
/// against what they dictate before anything is allocated, and the values must be finite.
pub fn decode(
    bytes: &[u8],
    spec: &OptimizerSpec,
    param_count: usize,
) -> Result<Optimizer, StateError> {
    if bytes.len() < HEADER_LEN + 8 {
        return Err(StateError::TooShort(bytes.len()));
    }
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&bytes[..4]);
    if magic != MAGIC {
        return Err(StateError::BadMagic(magic));
    }
    if bytes[4] != VERSION {
        return Err(StateError::UnsupportedVersion(bytes[4]));
    }
    let steps = read_u64(bytes, 5).ok_or(StateError::TooShort(bytes.len()))?;
    let expected = Optimizer::moment_lengths(spec, param_count);
    let mut at = HEADER_LEN;
    let mut buffers: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
    for (index, want) in [expected.0, expected.1].into_iter().enumerate() {
        let got = read_u64(bytes, at).ok_or(StateError::TooShort(bytes.len()))?;
        if got != want as u64 {
            return Err(StateError::WrongLength {
                buffer: index as u8 + 1,
                expected: want,
                got,
            });
        }
        at += 8;
        let body = bytes.get(at..at + 4 * want).ok_or(StateError::BodyLength {
            expected: encoded_len(spec, param_count),
            got: bytes.len(),
        })?;
        buffers[index] = body
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        at += 4 * want;
    }
    if at != bytes.len() {
        return Err(StateError::BodyLength {
            expected: at,
            got: bytes.len(),
        });
    }
    let [first, second] = buffers;
    Ok(Optimizer::restore(spec, param_count, steps, first, second)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn adam_after_two_steps() -> Optimizer {
        let mut optimizer = Optimizer::new(&OptimizerSpec::adam(0.01), 3).unwrap();
        let mut params = [0.5f32, -1.0, 2.0];
        optimizer.step(&mut params, &[0.1, 0.2, -0.3]);
        optimizer.step(&mut params, &[0.0, 1.0, 0.5]);
        optimizer
    }

    #[test]
    fn state_round_trips_and_hashes_as_its_blob() {
        let optimizer = adam_after_two_steps();
        let blob = encode(&optimizer);
        assert_eq!(blob.len(), encoded_len(optimizer.spec(), 3));
        assert_eq!(hash(&optimizer), *blake3::hash(&blob).as_bytes());
        assert_eq!(decode(&blob, optimizer.spec(), 3).unwrap(), optimizer);
        let plain = Optimizer::new(&OptimizerSpec::sgd(0.1), 3).unwrap();
        assert_eq!(decode(&encode(&plain), plain.spec(), 3).unwrap(), plain);
    }

    #[test]
    fn every_malformation_is_a_typed_error() {
        let optimizer = adam_after_two_steps();
        let spec = optimizer.spec().clone();
        let blob = encode(&optimizer);
        assert!(matches!(
            decode(&blob[..4], &spec, 3),
            Err(StateError::TooShort(4))
        ));
        let mut bad = blob.clone();
        bad[0] = b'X';
        assert!(matches!(
            decode(&bad, &spec, 3),
            Err(StateError::BadMagic(_))
        ));
        let mut bad = blob.clone();
        bad[4] = 9;
        assert!(matches!(
            decode(&bad, &spec, 3),
            Err(StateError::UnsupportedVersion(9))
        ));
        assert!(matches!(
            decode(&blob, &spec, 4),
            Err(StateError::WrongLength { buffer: 1, .. })
        ));
        assert!(matches!(
            decode(&blob[..blob.len() - 1], &spec, 3),
            Err(StateError::BodyLength { .. })
        ));
        let mut longer = blob.clone();
        longer.push(0);
        assert!(matches!(
            decode(&longer, &spec, 3),
            Err(StateError::BodyLength { .. })
        ));
        let mut nan = blob.clone();
        let last = nan.len() - 4;
        nan[last..].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(matches!(
            decode(&nan, &spec, 3),
            Err(StateError::Invalid(_))
        ));
        let mut huge = blob;
        huge[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode(&huge, &spec, 3),
            Err(StateError::WrongLength { .. })
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = decode(&bytes, &OptimizerSpec::adam(0.01), 2);
            let _ = decode(&bytes, &OptimizerSpec::sgd(0.01), 2);
        }
    }
}
