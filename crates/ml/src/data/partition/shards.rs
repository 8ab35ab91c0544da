//! The label-sorted shards partition (McMahan et al., 2017).

use super::super::sampling::{rng, shuffle, STREAM_SHARDS};
use super::PartitionError;

/// Shuffles, stable-sorts by label, cuts into `shards_per_client * clients` contiguous shards
/// (the first `len mod shards` one longer), shuffles the shard order and deals
/// `shards_per_client` consecutive shards of it to each client.
pub(super) fn partition(
    labels: &[u32],
    clients: usize,
    shards_per_client: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>, PartitionError> {
    if shards_per_client == 0 {
        return Err(PartitionError::NoShards);
    }
    let shards = shards_per_client.saturating_mul(clients);
    if shards > labels.len() {
        return Err(PartitionError::TooFewSamplesForShards {
            shards,
            samples: labels.len(),
        });
    }
    let mut rng = rng(seed, STREAM_SHARDS);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    shuffle(&mut rng, &mut order);
    order.sort_by_key(|&i| labels[i]);
    let (base, extra) = (labels.len() / shards, labels.len() % shards);
    let mut bounds = Vec::with_capacity(shards + 1);
    bounds.push(0);
    for s in 0..shards {
        bounds.push(bounds[s] + base + usize::from(s < extra));
    }
    let mut shard_order: Vec<usize> = (0..shards).collect();
    shuffle(&mut rng, &mut shard_order);
    Ok(shard_order
        .chunks(shards_per_client)
        .map(|dealt| {
            dealt
                .iter()
                .flat_map(|&s| order[bounds[s]..bounds[s + 1]].iter().copied())
                .collect()
        })
        .collect())
}
