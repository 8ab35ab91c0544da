//! Inclusion and exclusion proofs that a light client checks with nothing but a trusted root.
//!
//! A proof lists the sibling hashes along the key hash's path from the root down to where the
//! search stopped, and what it found there: the key's own leaf (inclusion), another key's leaf
//! sharing the path so far (exclusion), or an empty subtree (exclusion).
//!
//! Encoding (all integers big-endian), at most [`MAX_PROOF_BYTES`] bytes:
//! ```text
//! version: u8 = 1
//! terminal: u8 (0 = empty, 1 = leaf) [, key_hash: 32 bytes, value_hash: 32 bytes if leaf]
//! depth: u16 (number of siblings, <= 256)
//! empty bitmap: ceil(depth / 8) bytes, bit i (MSB first) set = sibling i is the empty hash
//! siblings: 32 bytes for each sibling not marked empty, root side first
//! ```

use super::error::ProofError;
use super::node::{
    bit, internal_hash, key_hash, leaf_hash, shares_prefix, value_hash, Digest, EMPTY_HASH,
    KEY_HASH_BITS,
};

/// Version byte of the proof encoding.
const PROOF_VERSION: u8 = 1;

/// Largest possible encoded proof: header, a leaf, the bitmap and 256 siblings.
pub const MAX_PROOF_BYTES: usize = 1 + 1 + 64 + 2 + 32 + 256 * 32;

/// Where a proof's search down the tree stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminal {
    /// An empty subtree: the key is absent.
    Empty,
    /// A leaf: the key's own (inclusion) or another key's sharing the path (exclusion).
    Leaf {
        /// `blake3(key)` of the leaf found.
        key_hash: Digest,
        /// `blake3(value)` of the leaf found.
        value_hash: Digest,
    },
}

/// Proof that a key has a given value, or is absent, in the state with a given root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// Sibling hashes from the root downwards; their count is the terminal's depth.
    siblings: Vec<Digest>,
    terminal: Terminal,
}

impl Proof {
    /// Assembles a proof from the tree walk (siblings root side first).
    pub(crate) fn new(siblings: Vec<Digest>, terminal: Terminal) -> Proof {
        debug_assert!(siblings.len() <= usize::from(KEY_HASH_BITS));
        Proof { siblings, terminal }
    }

    /// Sibling hashes, root side first.
    pub fn siblings(&self) -> &[Digest] {
        &self.siblings
    }

    /// What the search found at the end of the path.
    pub fn terminal(&self) -> &Terminal {
        &self.terminal
    }

    /// Checks that, in the state whose root is `root`, `key` holds `value` (`Some`) or is
    /// absent (`None`). Needs nothing but the proof: this is what a light client runs.
    pub fn verify(
        &self,
        root: &Digest,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), ProofError> {
        if self.siblings.len() > usize::from(KEY_HASH_BITS) {
            return Err(ProofError::TooDeep(self.siblings.len()));
        }
        let target = key_hash(key);
        let depth = self.siblings.len() as u16;
        let mut acc = match (&self.terminal, value) {
            (Terminal::Empty, Some(_)) => return Err(ProofError::KeyAbsent),
            (Terminal::Empty, None) => EMPTY_HASH,
            (
                Terminal::Leaf {
                    key_hash: found,
                    value_hash: found_value,
                },
                expected,
            ) => {
                match expected {
                    Some(v) => {
                        if found != &target {
                            return Err(ProofError::KeyAbsent);
                        }
                        if found_value != &value_hash(v) {
                            return Err(ProofError::ValueMismatch);
                        }
                    }
                    None => {
                        if found == &target {
                            return Err(ProofError::KeyPresent);
                        }
                    }
                }
                if !shares_prefix(found, &target, depth) {
                    return Err(ProofError::LeafOffPath);
                }
                leaf_hash(found, found_value)
            }
        };
        for (index, sibling) in self.siblings.iter().enumerate().rev() {
            acc = if bit(&target, index as u16) {
                internal_hash(sibling, &acc)
            } else {
                internal_hash(&acc, sibling)
            };
        }
        if &acc == root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        }
    }

    /// Canonical encoding (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let depth = self.siblings.len();
        let mut out = Vec::with_capacity(2 + 64 + 2 + depth.div_ceil(8) + 32 * depth);
        out.push(PROOF_VERSION);
        match &self.terminal {
            Terminal::Empty => out.push(0),
            Terminal::Leaf {
                key_hash,
                value_hash,
            } => {
                out.push(1);
                out.extend_from_slice(key_hash);
                out.extend_from_slice(value_hash);
            }
        }
        out.extend_from_slice(&(depth as u16).to_be_bytes());
        let mut bitmap = vec![0u8; depth.div_ceil(8)];
        for (i, sibling) in self.siblings.iter().enumerate() {
            if sibling == &EMPTY_HASH {
                bitmap[i / 8] |= 0x80 >> (i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
        for sibling in self.siblings.iter().filter(|s| *s != &EMPTY_HASH) {
            out.extend_from_slice(sibling);
        }
        out
    }

    /// Decodes a proof from untrusted bytes: bounded, canonical-only, never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Proof, ProofError> {
        let mut reader = Reader { bytes, offset: 0 };
        let version = reader.take(1)?[0];
        if version != PROOF_VERSION {
            return Err(ProofError::UnknownVersion(version));
        }
        let terminal = match reader.take(1)?[0] {
            0 => Terminal::Empty,
            1 => Terminal::Leaf {
                key_hash: reader.digest()?,
                value_hash: reader.digest()?,
            },
            other => return Err(ProofError::UnknownTerminal(other)),
        };
        let depth_bytes = reader.take(2)?;
        let depth = usize::from(u16::from_be_bytes([depth_bytes[0], depth_bytes[1]]));
        if depth > usize::from(KEY_HASH_BITS) {
            return Err(ProofError::TooDeep(depth));
        }
        let bitmap = reader.take(depth.div_ceil(8))?;
        if depth % 8 != 0 {
            let unused_mask = 0xffu8 >> (depth % 8);
            if bitmap[bitmap.len() - 1] & unused_mask != 0 {
                return Err(ProofError::NonCanonical("bits set past the last sibling"));
            }
        }
        let mut siblings = Vec::with_capacity(depth);
        for i in 0..depth {
            if bitmap[i / 8] & (0x80 >> (i % 8)) != 0 {
                siblings.push(EMPTY_HASH);
            } else {
                let sibling = reader.digest()?;
                if sibling == EMPTY_HASH {
                    return Err(ProofError::NonCanonical(
                        "empty sibling written out in full",
                    ));
                }
                siblings.push(sibling);
            }
        }
        let rest = bytes.len() - reader.offset;
        if rest != 0 {
            return Err(ProofError::TrailingBytes(rest));
        }
        Ok(Proof { siblings, terminal })
    }
}

/// Bounds-checked cursor over proof bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], ProofError> {
        let end = self.offset.saturating_add(len);
        let slice = self
            .bytes
            .get(self.offset..end)
            .ok_or(ProofError::Truncated {
                offset: self.offset,
                needed: end - self.bytes.len().min(end),
            })?;
        self.offset = end;
        Ok(slice)
    }

    fn digest(&mut self) -> Result<Digest, ProofError> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32)?);
        Ok(out)
    }
}

/// Verifies encoded proof bytes against a trusted root: decode then [`Proof::verify`].
pub fn verify_proof_bytes(
    root: &Digest,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &[u8],
) -> Result<(), ProofError> {
    Proof::from_bytes(proof)?.verify(root, key, value)
}
