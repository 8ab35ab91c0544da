//! Seeded partitioners that hand each federated client its share of a dataset.
//!
//! Every scheme returns one list of sample indices per client. Each sample goes to at most one
//! client (every scheme here assigns every sample), each client's list is sorted ascending, and
//! the result depends only on the labels, the parameters and the seed: it is the same on every
//! machine. The exact definition of each scheme is on its [`Partition`] variant and in
//! `docs/data.md`.

mod dirichlet;
mod iid;
mod quantity;
mod shards;

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Dataset;

/// Most times the Dirichlet label-skew scheme redraws to give every client `min_samples`.
pub const MAX_DIRICHLET_ATTEMPTS: usize = 1000;

/// Smallest Dirichlet `alpha` accepted: below it a Gamma draw overflows f64 even as a logarithm.
pub const MIN_ALPHA: f64 = 1e-300;

/// How to partition samples among clients; serialized with a `kind` tag, e.g.
/// `{ kind = "dirichlet", alpha = 0.5 }` in TOML.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Partition {
    /// Uniformly at random: shuffle all indices, cut them into `clients` runs whose sizes differ
    /// by at most one (the first `len mod clients` clients get the extra sample).
    #[default]
    Iid,
    /// Label skew (Hsu et al., 2019): for each class present, in increasing order, shuffle its samples, draw client
    /// proportions `p ~ Dirichlet(alpha, ..., alpha)` and cut the class at the cumulative
    /// proportions `floor(n_class * (p_0 + ... + p_i))`. Small `alpha` gives each client few
    /// classes; large `alpha` approaches IID. If a client ends with fewer than `min_samples`,
    /// the whole draw is repeated (at most [`MAX_DIRICHLET_ATTEMPTS`] times).
    Dirichlet {
        /// Concentration, > 0 (at least [`MIN_ALPHA`]).
        alpha: f64,
        /// Fewest samples any client may get (0 allows empty clients).
        #[serde(default)]
        min_samples: usize,
    },
    /// Label-sorted shards (McMahan et al., 2017, the FedAvg non-IID scheme): shuffle, sort by
    /// label (stable, so ties stay shuffled), cut into `shards_per_client * clients` contiguous
    /// shards whose sizes differ by at most one, shuffle the shards and deal `shards_per_client`
    /// to each client. Each client sees about `shards_per_client` labels.
    Shards {
        /// Shards each client receives, > 0.
        shards_per_client: usize,
    },
    /// Quantity skew with IID labels: client proportions `q ~ Dirichlet(alpha, ..., alpha)`;
    /// client `i` gets `min_samples` plus its cumulative-proportion share of the remaining
    /// `len - clients * min_samples`, as a contiguous run of one shuffle of all indices.
    QuantityDirichlet {
        /// Concentration, > 0.
        alpha: f64,
        /// Samples every client gets before the skewed share.
        #[serde(default)]
        min_samples: usize,
    },
    /// Quantity skew with IID labels and power-law sizes: rank `r` (0-based) has weight
    /// `(r + 1)^-exponent`; ranks are dealt to clients by a seeded shuffle, and sizes follow as in
    /// [`Partition::QuantityDirichlet`] with the normalized weights as proportions.
    QuantityPowerLaw {
        /// Exponent, >= 0 (0 gives equal sizes).
        exponent: f64,
        /// Samples every client gets before the skewed share.
        #[serde(default)]
        min_samples: usize,
    },
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Iid => write!(f, "iid"),
            Self::Dirichlet { alpha, min_samples } => {
                write!(f, "dirichlet(alpha={alpha}, min_samples={min_samples})")
            }
            Self::Shards { shards_per_client } => {
                write!(f, "shards(shards_per_client={shards_per_client})")
            }
            Self::QuantityDirichlet { alpha, min_samples } => {
                write!(
                    f,
                    "quantity_dirichlet(alpha={alpha}, min_samples={min_samples})"
                )
            }
            Self::QuantityPowerLaw {
                exponent,
                min_samples,
            } => write!(
                f,
                "quantity_power_law(exponent={exponent}, min_samples={min_samples})"
            ),
        }
    }
}

/// Errors from partitioning samples among clients.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum PartitionError {
    /// Zero clients were asked for.
    #[error("cannot partition among zero clients")]
    NoClients,
    /// More clients than samples.
    #[error("{clients} clients but only {samples} samples; use at most one client per sample")]
    TooManyClients {
        /// Clients asked for.
        clients: usize,
        /// Samples available.
        samples: usize,
    },
    /// A Dirichlet concentration that is not a finite number of at least [`MIN_ALPHA`].
    #[error("Dirichlet alpha must be a finite number > 0 (at least 1e-300), got {0}")]
    BadAlpha(f64),
    /// A power-law exponent that is not a finite non-negative number.
    #[error("power-law exponent must be a finite number >= 0, got {0}")]
    BadExponent(f64),
    /// `shards_per_client` is zero.
    #[error("shards_per_client must be at least 1")]
    NoShards,
    /// More shards than samples.
    #[error("{shards} shards need at least as many samples, got {samples}")]
    TooFewSamplesForShards {
        /// `shards_per_client * clients` (saturating).
        shards: usize,
        /// Samples available.
        samples: usize,
    },
    /// A label is not below the number of classes.
    #[error("label {label} of sample {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// Index of the offending sample.
        index: usize,
        /// The label found.
        label: u32,
        /// Number of classes.
        classes: usize,
    },
    /// `clients * min_samples` exceeds the samples available.
    #[error("{clients} clients x {min_samples} samples each exceeds the {samples} samples")]
    MinSamplesUnreachable {
        /// Clients asked for.
        clients: usize,
        /// Minimum per client.
        min_samples: usize,
        /// Samples available.
        samples: usize,
    },
    /// The Dirichlet label-skew draws never gave every client `min_samples`.
    #[error(
        "no Dirichlet draw in {attempts} gave every client {min_samples} samples; \
         raise alpha or lower min_samples"
    )]
    MinSamplesNotReached {
        /// Draws tried.
        attempts: usize,
        /// Minimum per client.
        min_samples: usize,
    },
}

/// Partitions samples with the given `labels` (each below `classes`) among `clients` by
/// `scheme`, seeded by `seed`: one ascending index list per client, disjoint, deterministic.
pub fn partition(
    labels: &[u32],
    classes: usize,
    clients: usize,
    scheme: &Partition,
    seed: u64,
) -> Result<Vec<Vec<usize>>, PartitionError> {
    if clients == 0 {
        return Err(PartitionError::NoClients);
    }
    if clients > labels.len() {
        return Err(PartitionError::TooManyClients {
            clients,
            samples: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes)
    {
        return Err(PartitionError::LabelOutOfRange {
            index,
            label,
            classes,
        });
    }
    let mut parts = match *scheme {
        Partition::Iid => iid::partition(labels.len(), clients, seed),
        Partition::Dirichlet { alpha, min_samples } => {
            check_alpha(alpha)?;
            check_min_samples(labels.len(), clients, min_samples)?;
            dirichlet::partition(labels, classes, clients, alpha, min_samples, seed)?
        }
        Partition::Shards { shards_per_client } => {
            shards::partition(labels, clients, shards_per_client, seed)?
        }
        Partition::QuantityDirichlet { alpha, min_samples } => {
            check_alpha(alpha)?;
            check_min_samples(labels.len(), clients, min_samples)?;
            quantity::partition_dirichlet(labels.len(), clients, alpha, min_samples, seed)
        }
        Partition::QuantityPowerLaw {
            exponent,
            min_samples,
        } => {
            if !(exponent.is_finite() && exponent >= 0.0) {
                return Err(PartitionError::BadExponent(exponent));
            }
            check_min_samples(labels.len(), clients, min_samples)?;
            quantity::partition_power_law(labels.len(), clients, exponent, min_samples, seed)
        }
    };
    for part in &mut parts {
        part.sort_unstable();
    }
    tracing::debug!(scheme = %scheme, clients, samples = labels.len(), "partitioned samples");
    Ok(parts)
}

/// [`partition`] over a dataset's labels and classes.
pub fn partition_dataset(
    dataset: &Dataset,
    clients: usize,
    scheme: &Partition,
    seed: u64,
) -> Result<Vec<Vec<usize>>, PartitionError> {
    partition(dataset.labels(), dataset.classes(), clients, scheme, seed)
}

/// How many samples of each class every client holds: `counts[client][class]`, for reports and
/// for checking how skewed a partition is.
pub fn label_counts(labels: &[u32], classes: usize, parts: &[Vec<usize>]) -> Vec<Vec<usize>> {
    parts
        .iter()
        .map(|part| {
            let mut counts = vec![0; classes];
            for &i in part {
                if let Some(count) = labels.get(i).and_then(|&l| counts.get_mut(l as usize)) {
                    *count += 1;
                }
            }
            counts
        })
        .collect()
}

fn check_alpha(alpha: f64) -> Result<(), PartitionError> {
    if alpha.is_finite() && alpha >= MIN_ALPHA {
        Ok(())
    } else {
        Err(PartitionError::BadAlpha(alpha))
    }
}

fn check_min_samples(
    samples: usize,
    clients: usize,
    min_samples: usize,
) -> Result<(), PartitionError> {
    match clients.checked_mul(min_samples) {
        Some(needed) if needed <= samples => Ok(()),
        _ => Err(PartitionError::MinSamplesUnreachable {
            clients,
            min_samples,
            samples,
        }),
    }
}

/// Cuts `n` items into runs in proportion to `weights` (non-negative, summing to about 1):
/// run `i` ends at `floor(n * (w_0 + ... + w_i))`, kept monotone and with the last run ending at
/// `n`, so the sizes always sum to exactly `n`.
pub(crate) fn sizes_from_proportions(n: usize, weights: &[f64]) -> Vec<usize> {
    let mut sizes = Vec::with_capacity(weights.len());
    let mut cumulative = 0.0;
    let mut start = 0usize;
    for (i, &w) in weights.iter().enumerate() {
        cumulative += w;
        let end = if i + 1 == weights.len() {
            n
        } else {
            ((n as f64 * cumulative).floor() as usize).clamp(start, n)
        };
        sizes.push(end - start);
        start = end;
    }
    sizes
}

/// Deals consecutive runs of `items` of the given sizes (summing to `items.len()`).
pub(crate) fn cut_runs(items: &[usize], sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut start = 0;
    sizes
        .iter()
        .map(|&size| {
            let run = items[start..start + size].to_vec();
            start += size;
            run
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportional_sizes_always_sum_to_n() {
        assert_eq!(sizes_from_proportions(10, &[0.5, 0.5]), vec![5, 5]);
        assert_eq!(
            sizes_from_proportions(10, &[0.33, 0.33, 0.34]),
            vec![3, 3, 4]
        );
        assert_eq!(sizes_from_proportions(7, &[0.0, 1.0, 0.0]), vec![0, 7, 0]);
        // Weights summing slightly above 1 cannot push a cut past n.
        assert_eq!(sizes_from_proportions(3, &[0.7, 0.7, 0.0]), vec![2, 1, 0]);
    }

    #[test]
    fn scheme_parameters_are_validated() {
        let labels = [0u32, 1, 0, 1];
        let run = |clients, scheme: Partition| partition(&labels, 2, clients, &scheme, 0);
        assert_eq!(run(0, Partition::Iid), Err(PartitionError::NoClients));
        assert!(matches!(
            run(5, Partition::Iid),
            Err(PartitionError::TooManyClients { .. })
        ));
        for alpha in [0.0, -1.0, 1e-310, f64::NAN, f64::INFINITY] {
            let scheme = Partition::Dirichlet {
                alpha,
                min_samples: 0,
            };
            assert!(matches!(run(2, scheme), Err(PartitionError::BadAlpha(_))));
        }
        let scheme = Partition::QuantityPowerLaw {
            exponent: -1.0,
            min_samples: 0,
        };
        assert!(matches!(
            run(2, scheme),
            Err(PartitionError::BadExponent(_))
        ));
        let scheme = Partition::Shards {
            shards_per_client: 0,
        };
        assert_eq!(run(2, scheme), Err(PartitionError::NoShards));
        let scheme = Partition::Shards {
            shards_per_client: 3,
        };
        assert!(matches!(
            run(2, scheme),
            Err(PartitionError::TooFewSamplesForShards {
                shards: 6,
                samples: 4
            })
        ));
        let scheme = Partition::QuantityDirichlet {
            alpha: 1.0,
            min_samples: 3,
        };
        assert!(matches!(
            run(2, scheme),
            Err(PartitionError::MinSamplesUnreachable { .. })
        ));
        assert!(matches!(
            partition(&[0, 2], 2, 1, &Partition::Iid, 0),
            Err(PartitionError::LabelOutOfRange { index: 1, .. })
        ));
    }

    #[test]
    fn schemes_serialize_with_a_kind_tag() {
        let scheme: Partition =
            serde_json::from_str(r#"{"kind":"dirichlet","alpha":0.5}"#).unwrap();
        assert_eq!(
            scheme,
            Partition::Dirichlet {
                alpha: 0.5,
                min_samples: 0
            }
        );
        let iid: Partition = serde_json::from_str(r#"{"kind":"iid"}"#).unwrap();
        assert_eq!(iid, Partition::Iid);
        let shards = Partition::Shards {
            shards_per_client: 2,
        };
        let json = serde_json::to_string(&shards).unwrap();
        assert_eq!(json, r#"{"kind":"shards","shards_per_client":2}"#);
        assert!(serde_json::from_str::<Partition>(r#"{"kind":"shards","shard":2}"#).is_err());
        assert_eq!(shards.to_string(), "shards(shards_per_client=2)");
    }
}
