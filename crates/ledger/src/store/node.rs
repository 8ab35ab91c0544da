//! Tree nodes: their positions (paths), their domain-separated hashes and their on-disk encoding.
//!
//! The state tree is a compacted binary Merkle tree over `blake3(key)`: a leaf sits at the
//! shortest prefix of its key hash that no other key hash shares, an internal node exists only
//! where at least two leaves lie below it, and an empty subtree hashes to [`EMPTY_HASH`].

use super::error::StoreError;

/// A 32-byte blake3 digest.
pub type Digest = [u8; 32];

/// Hash of an empty subtree, and so the state root of an empty state.
pub const EMPTY_HASH: Digest = [0u8; 32];

/// Domain tag hashed before a leaf's contents.
const LEAF_TAG: u8 = 0x00;
/// Domain tag hashed before an internal node's children.
const INTERNAL_TAG: u8 = 0x01;

/// Number of bits in a key hash, and so the deepest level a leaf can sit at.
pub const KEY_HASH_BITS: u16 = 256;

/// Length of an encoded node: a tag byte and two digests.
pub const ENCODED_NODE_LEN: usize = 65;

/// Hashes a state key to its position in the tree.
pub fn key_hash(key: &[u8]) -> Digest {
    *blake3::hash(key).as_bytes()
}

/// Hashes a state value to the digest a leaf commits to.
pub fn value_hash(value: &[u8]) -> Digest {
    *blake3::hash(value).as_bytes()
}

/// `H(tag || a || b)`, hashed from one stack buffer (the streaming hasher costs more for 65 bytes).
fn tagged_hash(tag: u8, a: &Digest, b: &Digest) -> Digest {
    let mut buffer = [0u8; 65];
    buffer[0] = tag;
    buffer[1..33].copy_from_slice(a);
    buffer[33..].copy_from_slice(b);
    *blake3::hash(&buffer).as_bytes()
}

/// Hash of a leaf: `H(0x00 || key_hash || value_hash)`.
pub fn leaf_hash(key_hash: &Digest, value_hash: &Digest) -> Digest {
    tagged_hash(LEAF_TAG, key_hash, value_hash)
}

/// Hash of an internal node: `H(0x01 || left || right)`, an empty child counting as [`EMPTY_HASH`].
pub fn internal_hash(left: &Digest, right: &Digest) -> Digest {
    tagged_hash(INTERNAL_TAG, left, right)
}

/// Bit `index` (0 = most significant bit of byte 0) of a key hash: 0 goes left, 1 goes right.
pub fn bit(hash: &Digest, index: u16) -> bool {
    debug_assert!(index < KEY_HASH_BITS);
    let byte = hash[usize::from(index / 8)];
    (byte >> (7 - (index % 8))) & 1 == 1
}

/// Whether two key hashes agree on their first `depth` bits.
pub fn shares_prefix(a: &Digest, b: &Digest, depth: u16) -> bool {
    (0..depth.min(KEY_HASH_BITS)).all(|i| bit(a, i) == bit(b, i))
}

/// Position of a node in the tree: the first `depth` bits of the key hashes below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodePath {
    depth: u16,
    bits: Digest,
}

impl NodePath {
    /// The root's position (depth 0).
    pub const ROOT: NodePath = NodePath {
        depth: 0,
        bits: [0u8; 32],
    };

    /// Depth of this position: how many key-hash bits it fixes.
    pub fn depth(&self) -> u16 {
        self.depth
    }

    /// Position of the child on side `right` (false = left, true = right).
    pub fn child(&self, right: bool) -> NodePath {
        debug_assert!(self.depth < KEY_HASH_BITS);
        let mut bits = self.bits;
        if right {
            bits[usize::from(self.depth / 8)] |= 0x80 >> (self.depth % 8);
        }
        NodePath {
            depth: self.depth + 1,
            bits,
        }
    }

    /// The ancestor at `depth` (at most this path's depth): the same leading bits, cut there.
    pub fn ancestor(&self, depth: u16) -> NodePath {
        debug_assert!(depth <= self.depth);
        let mut bits = [0u8; 32];
        let whole = usize::from(depth / 8);
        bits[..whole].copy_from_slice(&self.bits[..whole]);
        if depth % 8 != 0 {
            bits[whole] = self.bits[whole] & (0xff << (8 - depth % 8));
        }
        NodePath { depth, bits }
    }

    /// Bit `index` of the path (below its depth).
    pub fn bit(&self, index: u16) -> bool {
        debug_assert!(index < self.depth);
        bit(&self.bits, index)
    }

    /// Storage key: the prefix bytes in use followed by the depth (big-endian u16).
    ///
    /// Prefix first keeps a path's ancestors and descendants near each other in the B-tree; the
    /// trailing depth makes the encoding injective.
    pub fn storage_key(&self) -> StorageKey {
        let used = usize::from(self.depth).div_ceil(8);
        let mut bytes = [0u8; 34];
        bytes[..used].copy_from_slice(&self.bits[..used]);
        bytes[used..used + 2].copy_from_slice(&self.depth.to_be_bytes());
        StorageKey {
            bytes,
            len: used + 2,
        }
    }
}

impl std::fmt::Display for NodePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "depth {} prefix ", self.depth)?;
        for i in 0..self.depth {
            f.write_str(if bit(&self.bits, i) { "1" } else { "0" })?;
        }
        Ok(())
    }
}

/// A node path's key in storage, built on the stack (one per node read or write).
#[derive(Clone, Copy, Debug)]
pub struct StorageKey {
    bytes: [u8; 34],
    len: usize,
}

impl StorageKey {
    /// The key's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A stored tree node. Empty subtrees are not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// One key/value pair: the only key below this position.
    Leaf {
        /// `blake3(key)`.
        key_hash: Digest,
        /// `blake3(value)`.
        value_hash: Digest,
    },
    /// At least two leaves below: the hashes of both children ([`EMPTY_HASH`] for an empty side).
    Internal {
        /// Hash of the left (bit 0) subtree.
        left: Digest,
        /// Hash of the right (bit 1) subtree.
        right: Digest,
    },
}

impl Node {
    /// The node's hash, as its parent records it.
    pub fn hash(&self) -> Digest {
        match self {
            Node::Leaf {
                key_hash,
                value_hash,
            } => leaf_hash(key_hash, value_hash),
            Node::Internal { left, right } => internal_hash(left, right),
        }
    }

    /// Fixed-length encoding: tag byte (0 leaf, 1 internal) then two digests.
    pub fn encode(&self) -> [u8; ENCODED_NODE_LEN] {
        let mut out = [0u8; ENCODED_NODE_LEN];
        let (tag, a, b) = match self {
            Node::Leaf {
                key_hash,
                value_hash,
            } => (LEAF_TAG, key_hash, value_hash),
            Node::Internal { left, right } => (INTERNAL_TAG, left, right),
        };
        out[0] = tag;
        out[1..33].copy_from_slice(a);
        out[33..65].copy_from_slice(b);
        out
    }

    /// Decodes a stored node, reporting which position held bad bytes.
    pub fn decode(bytes: &[u8], path: &NodePath) -> Result<Node, StoreError> {
        if bytes.len() != ENCODED_NODE_LEN {
            return Err(StoreError::CorruptNode {
                path: path.to_string(),
                reason: format!("{} bytes, expected {ENCODED_NODE_LEN}", bytes.len()),
            });
        }
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        a.copy_from_slice(&bytes[1..33]);
        b.copy_from_slice(&bytes[33..65]);
        match bytes[0] {
            LEAF_TAG => Ok(Node::Leaf {
                key_hash: a,
                value_hash: b,
            }),
            INTERNAL_TAG => Ok(Node::Internal { left: a, right: b }),
            tag => Err(StoreError::CorruptNode {
                path: path.to_string(),
                reason: format!("unknown node tag {tag:#04x}"),
            }),
        }
    }
}

/// Hash of an optional subtree: [`EMPTY_HASH`] when absent.
pub fn subtree_hash(node: &Option<Node>) -> Digest {
    node.as_ref().map_or(EMPTY_HASH, Node::hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_paths_set_the_bit_at_their_parents_depth() {
        let right = NodePath::ROOT.child(true);
        assert_eq!(right.storage_key().as_slice(), [0x80, 0, 1]);
        let right_left = right.child(false);
        assert_eq!(right_left.storage_key().as_slice(), [0x80, 0, 2]);
        assert_eq!(NodePath::ROOT.storage_key().as_slice(), [0, 0]);
        assert_eq!(right_left.ancestor(1), right);
        assert_eq!(right_left.ancestor(0), NodePath::ROOT);
        let mut deep = NodePath::ROOT;
        for _ in 0..KEY_HASH_BITS {
            deep = deep.child(true);
        }
        assert_eq!(
            deep.storage_key().as_slice(),
            [0xff; 32]
                .iter()
                .chain(&[1, 0])
                .copied()
                .collect::<Vec<u8>>()
        );
    }

    #[test]
    fn node_encoding_round_trips_and_rejects_bad_tags() {
        let node = Node::Leaf {
            key_hash: [7; 32],
            value_hash: [9; 32],
        };
        let bytes = node.encode();
        assert_eq!(Node::decode(&bytes, &NodePath::ROOT).ok(), Some(node));
        let mut bad = bytes;
        bad[0] = 5;
        assert!(matches!(
            Node::decode(&bad, &NodePath::ROOT),
            Err(StoreError::CorruptNode { .. })
        ));
        assert!(Node::decode(&bytes[..64], &NodePath::ROOT).is_err());
    }

    #[test]
    fn leaf_and_internal_hashes_are_domain_separated() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_ne!(leaf_hash(&a, &b), internal_hash(&a, &b));
        assert!(bit(&[0x80; 32], 0));
        assert!(!bit(&[0x80; 32], 1));
        assert!(shares_prefix(&[0x80; 32], &[0xbf; 32], 2));
        assert!(!shares_prefix(&[0x80; 32], &[0xbf; 32], 3));
    }
}
