//! The Dirichlet label-skew partition (Hsu, Qi and Brown, 2019).

use super::super::sampling::{dirichlet, rng, shuffle, STREAM_DIRICHLET};
use super::{sizes_from_proportions, PartitionError, MAX_DIRICHLET_ATTEMPTS};

/// For each class present, in increasing order: shuffle its samples (ascending before the shuffle), draw client
/// proportions from Dirichlet(`alpha`), and deal the class out in runs of those proportions.
/// Redraws everything (continuing the same stream) while a client has fewer than `min_samples`.
pub(super) fn partition(
    labels: &[u32],
    classes: usize,
    clients: usize,
    alpha: f64,
    min_samples: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>, PartitionError> {
    debug_assert!(labels.iter().all(|&l| (l as usize) < classes));
    // Sized by the labels present, not by `classes`, which the caller may have set very large.
    let present = labels.iter().max().map_or(0, |&l| l as usize + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); present];
    for (index, &label) in labels.iter().enumerate() {
        by_class[label as usize].push(index);
    }
    by_class.retain(|members| !members.is_empty());
    let mut rng = rng(seed, STREAM_DIRICHLET);
    for _ in 0..MAX_DIRICHLET_ATTEMPTS {
        let mut parts: Vec<Vec<usize>> = vec![Vec::new(); clients];
        for members in &by_class {
            let mut members = members.clone();
            shuffle(&mut rng, &mut members);
            let proportions = dirichlet(&mut rng, alpha, clients);
            let sizes = sizes_from_proportions(members.len(), &proportions);
            let mut start = 0;
            for (part, size) in parts.iter_mut().zip(sizes) {
                part.extend_from_slice(&members[start..start + size]);
                start += size;
            }
        }
        if parts.iter().all(|p| p.len() >= min_samples) {
            return Ok(parts);
        }
    }
    Err(PartitionError::MinSamplesNotReached {
        attempts: MAX_DIRICHLET_ATTEMPTS,
        min_samples,
    })
}
