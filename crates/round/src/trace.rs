//! The trace a trainer commits: a checkpoint every `k` steps and at the last step, Merkle-rooted.
//!
//! A [`Checkpoint`] commits to everything the next step depends on: the step index, the weights,
//! the optimizer state and the batch that produced them, and at the last step `T` the update
//! `Δ = W_T − M_r` the trainer reveals. From the state behind any checkpoint a referee re-runs
//! the next step exactly ([`crate::referee`]).
//!
//! Leaves sit at steps `0, k, 2k, …` and at `T` (always a leaf). The root is a binary blake3
//! Merkle tree over the leaves' hashes (`node = blake3(0x01 ‖ left ‖ right)`, an odd node carried
//! up), wrapped as `domain_hash("cairn/trace-root/v2", count ‖ tree root)`; [`proof`] and
//! [`verify`] open one leaf against it.

use crate::encoding::{domain_hash, Hash, ZERO_HASH};

/// Most checkpoints a trace may hold (so that `k >= ceil(T / 4096)`); bounds a trainer's trace
/// and every Merkle proof to [`MAX_PROOF_HASHES`] hashes.
pub const MAX_TRACE_LEAVES: usize = 4097;
/// Most hashes in a proof of one leaf (`ceil(log2(MAX_TRACE_LEAVES))`).
pub const MAX_PROOF_HASHES: usize = 13;

/// What a trace checkpoint (or any step's claim in a dispute) commits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Steps taken (0 before the first).
    pub step: u32,
    /// [`crate::params::hash`] of the weights after `step` steps.
    pub weights: Hash,
    /// [`crate::optimizer::hash`] of the optimizer state after `step` steps.
    pub optimizer: Hash,
    /// [`batch_hash`] of the batch the step that produced this state used ([`ZERO_HASH`] at 0).
    pub batch: Hash,
    /// At the last step, [`crate::params::hash`] of the update `W_T − M_r`; otherwise zero.
    pub update: Hash,
}

impl Checkpoint {
    /// The checkpoint's hash: `domain_hash("cairn/checkpoint/v1", step u32 BE ‖ weights ‖
    /// optimizer ‖ batch ‖ update)`.
    pub fn hash(&self) -> Hash {
        domain_hash(
            b"cairn/checkpoint/v1",
            &[
                &self.step.to_be_bytes(),
                &self.weights,
                &self.optimizer,
                &self.batch,
                &self.update,
            ],
        )
    }

    /// The checkpoint before any step: the input model `M_r` and a fresh optimizer.
    pub fn start(model_hash: Hash, fresh_optimizer: Hash) -> Self {
        Self {
            step: 0,
            weights: model_hash,
            optimizer: fresh_optimizer,
            batch: ZERO_HASH,
            update: ZERO_HASH,
        }
    }
}

/// The identity of a mini-batch: `domain_hash("cairn/batch/v1", count u64 BE ‖ indices)`, each
/// index a u32 BE position in the dataset's train split.
pub fn batch_hash(indices: impl ExactSizeIterator<Item = usize>) -> Hash {
    let mut bytes = Vec::with_capacity(8 + 4 * indices.len());
    bytes.extend_from_slice(&(indices.len() as u64).to_be_bytes());
    for index in indices {
        bytes.extend_from_slice(&(index as u32).to_be_bytes());
    }
    domain_hash(b"cairn/batch/v1", &[&bytes])
}

/// Checkpoints of a run of `steps` steps with a leaf every `every` steps: `ceil(steps / every)
/// + 1` (steps 0, k, 2k, … and the last step).
pub fn leaf_count(steps: u32, every: u32) -> usize {
    steps.div_ceil(every.max(1)) as usize + 1
}

/// The step of leaf `index` (the last leaf is always step `steps`).
pub fn leaf_step(index: usize, steps: u32, every: u32) -> u32 {
    (index as u64 * u64::from(every.max(1))).min(u64::from(steps)) as u32
}

/// The leaf index of `step`, if a leaf sits there.
pub fn leaf_index(step: u32, steps: u32, every: u32) -> Option<usize> {
    let every = every.max(1);
    if step == steps {
        Some(leaf_count(steps, every) - 1)
    } else if step % every == 0 && step < steps {
        Some((step / every) as usize)
    } else {
        None
    }
}

/// Every leaf step in order.
pub fn leaf_steps(steps: u32, every: u32) -> Vec<u32> {
    (0..leaf_count(steps, every))
        .map(|index| leaf_step(index, steps, every))
        .collect()
}

fn parent(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[1]);
    hasher.update(left);
    hasher.update(right);
    *hasher.finalize().as_bytes()
}

fn next_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => parent(left, right),
            // `chunks(2)` yields one or two: an odd node is carried up unchanged.
            _ => pair[0],
        })
        .collect()
}

/// The trace root over leaf hashes in step order (no leaves: a tree root of 32 zeros).
pub fn root(leaves: &[Hash]) -> Hash {
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    wrap(leaves.len(), &level.first().copied().unwrap_or(ZERO_HASH))
}

fn wrap(count: usize, top: &Hash) -> Hash {
    domain_hash(
        b"cairn/trace-root/v2",
        &[&(count as u64).to_be_bytes(), top],
    )
}

/// The sibling hashes that open leaf `index` against [`root`], bottom up (`None` when `index`
/// is out of range).
pub fn proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut siblings = Vec::new();
    let mut level = leaves.to_vec();
    let mut at = index;
    while level.len() > 1 {
        let sibling = at ^ 1;
        if sibling < level.len() {
            siblings.push(level[sibling]);
        }
        level = next_level(&level);
        at /= 2;
    }
    Some(siblings)
}

/// Whether `leaf` is leaf `index` of a trace of `count` leaves with root `root`.
pub fn verify(root_hash: &Hash, count: usize, index: usize, leaf: &Hash, proof: &[Hash]) -> bool {
    if index >= count || count == 0 {
        return false;
    }
    let mut node = *leaf;
    let mut at = index;
    let mut width = count;
    let mut used = 0;
    while width > 1 {
        let sibling = at ^ 1;
        if sibling < width {
            let Some(hash) = proof.get(used) else {
                return false;
            };
            used += 1;
            node = if at % 2 == 0 {
                parent(&node, hash)
            } else {
                parent(hash, &node)
            };
        }
        at /= 2;
        width = width.div_ceil(2);
    }
    used == proof.len() && wrap(count, &node) == *root_hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| domain_hash(b"test", &[&(i as u64).to_be_bytes()]))
            .collect()
    }

    #[test]
    fn the_root_depends_on_order_and_count() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_ne!(root(&[a, b]), root(&[b, a]));
        assert_ne!(root(&[a]), root(&[a, a]));
        assert_ne!(root(&[]), root(&[ZERO_HASH]));
    }

    #[test]
    fn leaf_schedule_always_holds_step_zero_and_the_last_step() {
        assert_eq!(leaf_steps(20, 5), vec![0, 5, 10, 15, 20]);
        assert_eq!(leaf_steps(22, 5), vec![0, 5, 10, 15, 20, 22]);
        assert_eq!(leaf_steps(3, 10), vec![0, 3]);
        assert_eq!(leaf_steps(1, 1), vec![0, 1]);
        for (steps, every) in [(20, 5), (22, 5), (3, 10), (100, 7)] {
            for (index, step) in leaf_steps(steps, every).into_iter().enumerate() {
                assert_eq!(leaf_index(step, steps, every), Some(index));
            }
        }
        assert_eq!(leaf_index(7, 22, 5), None);
        assert_eq!(leaf_index(21, 22, 5), None);
    }

    #[test]
    fn a_proof_opens_exactly_its_leaf() {
        for n in [1usize, 2, 3, 5, 8, 13, 17] {
            let leaves = leaves(n);
            let root = root(&leaves);
            for index in 0..n {
                let proof = proof(&leaves, index).unwrap();
                assert!(proof.len() <= MAX_PROOF_HASHES);
                assert!(
                    verify(&root, n, index, &leaves[index], &proof),
                    "{n} {index}"
                );
                let other = (index + 1) % n;
                if other != index {
                    assert!(
                        !verify(&root, n, other, &leaves[index], &proof)
                            || leaves[other] == leaves[index]
                    );
                }
                assert!(!verify(&root, n + 1, index, &leaves[index], &proof));
                let mut longer = proof.clone();
                longer.push(ZERO_HASH);
                assert!(!verify(&root, n, index, &leaves[index], &longer));
            }
            assert!(proof(&leaves, n).is_none());
        }
    }

    #[test]
    fn the_largest_trace_needs_at_most_the_bounded_proof() {
        let leaves = leaves(MAX_TRACE_LEAVES);
        let proof = proof(&leaves, MAX_TRACE_LEAVES - 1).unwrap();
        assert!(proof.len() <= MAX_PROOF_HASHES);
        assert!(verify(
            &root(&leaves),
            MAX_TRACE_LEAVES,
            MAX_TRACE_LEAVES - 1,
            &leaves[MAX_TRACE_LEAVES - 1],
            &proof
        ));
    }

    proptest! {
        #[test]
        fn a_tampered_proof_never_verifies(n in 2usize..40, index in 0usize..40, which in 0usize..13, bit in 0usize..256) {
            let index = index % n;
            let leaves = leaves(n);
            let root = root(&leaves);
            let mut proof = proof(&leaves, index).unwrap();
            prop_assume!(!proof.is_empty());
            let which = which % proof.len();
            proof[which][bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!verify(&root, n, index, &leaves[index], &proof));
        }
    }
}
