//! The state tree's update and proof algorithms, shared by the durable and the in-memory store.
//!
//! Both stores keep the current tree as a map from [`NodePath`] to [`Node`] (the durable one in
//! 4-level pages); this module reads it through [`NodeSource`] and answers the writes a block
//! makes. Reading and writing only
//! the paths of changed keys keeps a block's cost at O(changed keys x depth), and the depth of a
//! compacted tree over uniformly hashed keys is about log2(size).

use super::error::StoreError;
use super::node::{
    bit, internal_hash, key_hash, subtree_hash, value_hash, Digest, Node, NodePath, EMPTY_HASH,
    KEY_HASH_BITS,
};
use super::proof::{Proof, Terminal};
use super::ChangeSet;

/// Read access to the current tree's nodes.
pub(crate) trait NodeSource {
    /// The node stored at `path`, or `None` for an empty subtree.
    fn node(&self, path: &NodePath) -> Result<Option<Node>, StoreError>;

    /// Whether updates and proofs re-hash each node read against its parent's record: yes for
    /// storage that can rot (disk), no for the process's own memory ([`audit`] always checks).
    fn untrusted(&self) -> bool {
        true
    }
}

/// One change to the tree: a key hash and its new value hash, or `None` to delete it.
pub(crate) type LeafChange = (Digest, Option<Digest>);

/// What a block does to the tree: its new root and the node writes (`None` = delete) to apply.
pub(crate) struct TreeUpdate {
    /// State root after the block.
    pub root: Digest,
    /// Node writes, in the order they were decided; each path appears at most once.
    pub writes: Vec<(NodePath, Option<Node>)>,
}

/// Hashes a change set into leaf changes sorted by key hash, the order the tree descends in.
pub(crate) fn leaf_changes(changes: &ChangeSet) -> Result<Vec<LeafChange>, StoreError> {
    let mut out: Vec<LeafChange> = changes
        .iter()
        .map(|(key, value)| (key_hash(key), value.as_deref().map(value_hash)))
        .collect();
    out.sort_unstable_by_key(|a| a.0);
    if out.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(StoreError::KeyHashCollision);
    }
    Ok(out)
}

/// Computes the new root and the node writes that `changes` (sorted by key hash) make.
pub(crate) fn update(
    source: &impl NodeSource,
    changes: &[LeafChange],
) -> Result<TreeUpdate, StoreError> {
    let mut writes = Vec::new();
    let current = source.node(&NodePath::ROOT)?;
    let old_root = subtree_hash(&current);
    let new = update_subtree(source, NodePath::ROOT, current, changes, &mut writes)?;
    let root = subtree_hash(&new);
    if root != old_root {
        writes.push((NodePath::ROOT, new));
    }
    Ok(TreeUpdate { root, writes })
}

/// The error for an internal node where only leaves can be (every key-hash bit already used).
fn too_deep(path: &NodePath) -> StoreError {
    StoreError::CorruptNode {
        path: path.to_string(),
        reason: "internal node below the deepest possible level".to_owned(),
    }
}

/// Reads the child at `path`, checking it hashes to what its parent records if the source is
/// untrusted.
fn checked_child(
    source: &impl NodeSource,
    path: &NodePath,
    expected: &Digest,
) -> Result<Option<Node>, StoreError> {
    if source.untrusted() {
        verified_child(source, path, expected)
    } else {
        source.node(path)
    }
}

/// Reads the child at `path` and checks it hashes to what its parent records.
fn verified_child(
    source: &impl NodeSource,
    path: &NodePath,
    expected: &Digest,
) -> Result<Option<Node>, StoreError> {
    let node = source.node(path)?;
    let found = subtree_hash(&node);
    if &found != expected {
        return Err(StoreError::CorruptNode {
            path: path.to_string(),
            reason: "node hash differs from the hash its parent records".to_owned(),
        });
    }
    Ok(node)
}

/// One side of an internal node after an update.
enum Side {
    /// No change below: only its hash is known (the node itself is read only if needed).
    Kept(Digest),
    /// Updated: the new subtree top, which the parent must place.
    Changed { old: Digest, new: Option<Node> },
}

impl Side {
    fn hash(&self) -> Digest {
        match self {
            Side::Kept(hash) => *hash,
            Side::Changed { new, .. } => subtree_hash(new),
        }
    }

    fn old_hash(&self) -> Digest {
        match self {
            Side::Kept(hash) => *hash,
            Side::Changed { old, .. } => *old,
        }
    }
}

/// Returns the new top node of the subtree at `path`; writes below `path` go to `writes`, and
/// placing the returned node (at `path`, or higher if it is a lone leaf) is the caller's job.
fn update_subtree(
    source: &impl NodeSource,
    path: NodePath,
    current: Option<Node>,
    changes: &[LeafChange],
    writes: &mut Vec<(NodePath, Option<Node>)>,
) -> Result<Option<Node>, StoreError> {
    if changes.is_empty() {
        return Ok(current);
    }
    match current {
        None => {
            let leaves: Vec<(Digest, Digest)> = changes
                .iter()
                .filter_map(|(k, v)| v.map(|v| (*k, v)))
                .collect();
            build(path, &leaves, writes)
        }
        Some(Node::Leaf {
            key_hash: old_key,
            value_hash: old_value,
        }) => {
            let mut leaves: Vec<(Digest, Digest)> = Vec::with_capacity(changes.len() + 1);
            let overridden = changes.binary_search_by(|c| c.0.cmp(&old_key)).is_ok();
            if !overridden {
                leaves.push((old_key, old_value));
            }
            leaves.extend(changes.iter().filter_map(|(k, v)| v.map(|v| (*k, v))));
            leaves.sort_unstable_by_key(|a| a.0);
            build(path, &leaves, writes)
        }
        Some(Node::Internal { left, right }) => {
            if path.depth() >= KEY_HASH_BITS {
                return Err(too_deep(&path));
            }
            let split = changes.partition_point(|c| !bit(&c.0, path.depth()));
            let (left_changes, right_changes) = changes.split_at(split);
            let left_path = path.child(false);
            let right_path = path.child(true);
            let mut side = |child: NodePath, old: Digest, changes: &[LeafChange]| {
                if changes.is_empty() {
                    return Ok(Side::Kept(old));
                }
                let current = checked_child(source, &child, &old)?;
                let new = update_subtree(source, child, current, changes, writes)?;
                Ok::<Side, StoreError>(Side::Changed { old, new })
            };
            let left_side = side(left_path, left, left_changes)?;
            let right_side = side(right_path, right, right_changes)?;
            combine(
                source,
                (left_path, left_side),
                (right_path, right_side),
                writes,
            )
        }
    }
}

/// Forms the node at a parent from its two updated sides, collapsing a lone leaf upwards.
fn combine(
    source: &impl NodeSource,
    (left_path, left): (NodePath, Side),
    (right_path, right): (NodePath, Side),
    writes: &mut Vec<(NodePath, Option<Node>)>,
) -> Result<Option<Node>, StoreError> {
    let (left_hash, right_hash) = (left.hash(), right.hash());
    // A subtree holding a single leaf is represented by that leaf, wherever it used to sit.
    let lone = match (left_hash == EMPTY_HASH, right_hash == EMPTY_HASH) {
        (true, true) => Some(None),
        (true, false) => lone_leaf(source, &right_path, &right)?.map(Some),
        (false, true) => lone_leaf(source, &left_path, &left)?.map(Some),
        (false, false) => None,
    };
    if let Some(top) = lone {
        for (path, side) in [(left_path, &left), (right_path, &right)] {
            if side.old_hash() != EMPTY_HASH {
                writes.push((path, None));
            }
        }
        return Ok(top);
    }
    for (path, side) in [(left_path, left), (right_path, right)] {
        if let Side::Changed { old, new } = side {
            if new.is_some() || old != EMPTY_HASH {
                writes.push((path, new));
            }
        }
    }
    Ok(Some(Node::Internal {
        left: left_hash,
        right: right_hash,
    }))
}

/// The side's top node if it is a leaf (reading it from the source if the side was kept).
fn lone_leaf(
    source: &impl NodeSource,
    path: &NodePath,
    side: &Side,
) -> Result<Option<Node>, StoreError> {
    let node = match side {
        Side::Changed { new, .. } => *new,
        Side::Kept(hash) => checked_child(source, path, hash)?,
    };
    Ok(node.filter(|n| matches!(n, Node::Leaf { .. })))
}

/// Builds a fresh subtree at `path` from leaves sorted by key hash, writing every node below it.
fn build(
    path: NodePath,
    leaves: &[(Digest, Digest)],
    writes: &mut Vec<(NodePath, Option<Node>)>,
) -> Result<Option<Node>, StoreError> {
    match leaves {
        [] => Ok(None),
        [(key_hash, value_hash)] => Ok(Some(Node::Leaf {
            key_hash: *key_hash,
            value_hash: *value_hash,
        })),
        _ => {
            if path.depth() >= KEY_HASH_BITS {
                return Err(StoreError::KeyHashCollision);
            }
            let split = leaves.partition_point(|(k, _)| !bit(k, path.depth()));
            let mut hashes = [EMPTY_HASH; 2];
            for (right, part) in [(false, &leaves[..split]), (true, &leaves[split..])] {
                let child = path.child(right);
                let node = build(child, part, writes)?;
                hashes[usize::from(right)] = subtree_hash(&node);
                if node.is_some() {
                    writes.push((child, node));
                }
            }
            Ok(Some(Node::Internal {
                left: hashes[0],
                right: hashes[1],
            }))
        }
    }
}

/// Proves `key`'s presence (with its value) or absence against the tree's current root.
pub(crate) fn prove(source: &impl NodeSource, key: &[u8]) -> Result<Proof, StoreError> {
    let target = key_hash(key);
    let mut path = NodePath::ROOT;
    let mut node = source.node(&path)?;
    let mut siblings = Vec::new();
    loop {
        match node {
            None => return Ok(Proof::new(siblings, Terminal::Empty)),
            Some(Node::Leaf {
                key_hash,
                value_hash,
            }) => {
                return Ok(Proof::new(
                    siblings,
                    Terminal::Leaf {
                        key_hash,
                        value_hash,
                    },
                ))
            }
            Some(Node::Internal { left, right }) => {
                if path.depth() >= KEY_HASH_BITS {
                    return Err(too_deep(&path));
                }
                let right_side = bit(&target, path.depth());
                let (next, sibling) = if right_side {
                    (right, left)
                } else {
                    (left, right)
                };
                siblings.push(sibling);
                path = path.child(right_side);
                node = checked_child(source, &path, &next)?;
            }
        }
    }
}

/// What [`audit`] counted below a path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AuditCount {
    /// Leaves reachable.
    pub leaves: u64,
    /// Nodes reachable (leaves and internal nodes).
    pub nodes: u64,
}

/// Checks the tree's shape under `path` against `expected` (every node hashes as its parent
/// records, no internal node with fewer than two leaves below) and counts what it reached.
pub(crate) fn audit(
    source: &impl NodeSource,
    path: NodePath,
    expected: &Digest,
) -> Result<AuditCount, StoreError> {
    match verified_child(source, &path, expected)? {
        None => Ok(AuditCount::default()),
        Some(Node::Leaf { .. }) => Ok(AuditCount {
            leaves: 1,
            nodes: 1,
        }),
        Some(Node::Internal { left, right }) => {
            if path.depth() >= KEY_HASH_BITS {
                return Err(too_deep(&path));
            }
            let l = audit(source, path.child(false), &left)?;
            let r = audit(source, path.child(true), &right)?;
            if l.leaves + r.leaves < 2 {
                return Err(StoreError::CorruptNode {
                    path: path.to_string(),
                    reason: "internal node with fewer than two leaves below".to_owned(),
                });
            }
            debug_assert_eq!(internal_hash(&left, &right), *expected);
            Ok(AuditCount {
                leaves: l.leaves + r.leaves,
                nodes: l.nodes + r.nodes + 1,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A damaged source claiming an internal node at every position, all the way down.
    struct EndlessInternal;

    impl NodeSource for EndlessInternal {
        fn node(&self, _path: &NodePath) -> Result<Option<Node>, StoreError> {
            Ok(Some(Node::Internal {
                left: [1; 32],
                right: [2; 32],
            }))
        }

        fn untrusted(&self) -> bool {
            false
        }
    }

    #[test]
    fn internal_nodes_past_the_last_key_bit_are_errors_not_panics() {
        let changes = [([0xff; 32], Some([3; 32]))];
        assert!(matches!(
            update(&EndlessInternal, &changes),
            Err(StoreError::CorruptNode { .. })
        ));
        assert!(matches!(
            prove(&EndlessInternal, b"key"),
            Err(StoreError::CorruptNode { .. })
        ));
    }

    #[test]
    fn duplicate_key_hashes_are_refused() {
        let leaves = [([5; 32], [1; 32]), ([5; 32], [2; 32])];
        let mut writes = Vec::new();
        assert!(matches!(
            build(NodePath::ROOT, &leaves, &mut writes),
            Err(StoreError::KeyHashCollision)
        ));
    }
}
