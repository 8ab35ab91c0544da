//! Datasets known by content hash: a task names its dataset by the blake3 of a canonical
//! encoding, and every node maps that hash to the same train/test split.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::encoding::{to_hex, Hash};
use cairn_ml::data::{read_csv, stratified_split, BuiltinDataset, DataError, Dataset, TrainTest};

/// Domain tag of [`content_hash`].
const DATASET_DOMAIN: &[u8] = b"cairn/dataset/v1";

/// Why a dataset could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum DatasetLoadError {
    /// The built-in dataset has no shipped CSV file (Fashion-MNIST is not a protocol dataset).
    #[error("{0} is not shipped as a file in data/; protocol tasks use digits or mnist_5k")]
    NotShipped(BuiltinDataset),
    /// Reading or splitting the file failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The train/test split failed.
    #[error("cannot split dataset {name}: {reason}")]
    Split {
        /// The dataset's name.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// One dataset in the registry: its name, content hash and train/test split.
#[derive(Debug)]
pub struct RegisteredDataset {
    /// Human-readable name (`mnist_5k`, or what the caller gave).
    pub name: String,
    /// [`content_hash`] of the whole dataset.
    pub hash: Hash,
    /// The split every node derives: stratified 80/20 seeded by [`split_seed`].
    pub split: TrainTest,
}

/// The content hash of a dataset: blake3 over `"cairn/dataset/v1"`, the class count, the sample
/// shape (channels, height, width) and the sample count as big-endian u64, then every feature
/// as little-endian f32 in sample order, then every label as little-endian u32.
pub fn content_hash(dataset: &Dataset) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(DATASET_DOMAIN);
    let (channels, height, width) = dataset.shape();
    for value in [dataset.classes(), channels, height, width, dataset.len()] {
        hasher.update(&(value as u64).to_be_bytes());
    }
    let mut buffer = Vec::with_capacity(4096);
    for chunk in dataset.features().chunks(1024) {
        buffer.clear();
        buffer.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        hasher.update(&buffer);
    }
    for chunk in dataset.labels().chunks(1024) {
        buffer.clear();
        buffer.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        hasher.update(&buffer);
    }
    *hasher.finalize().as_bytes()
}

/// The seed of a dataset's train/test split: its content hash's first 8 bytes, little-endian,
/// so the split is fixed by the content and needs no extra agreement.
pub fn split_seed(hash: &Hash) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(bytes)
}

/// The datasets this node can train or validate on, keyed by content hash.
#[derive(Debug, Default, Clone)]
pub struct DatasetRegistry {
    entries: BTreeMap<Hash, Arc<RegisteredDataset>>,
}

impl DatasetRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the shipped `digits` and `mnist_5k` from `data_dir`.
    pub fn with_builtins(data_dir: &Path) -> Result<Self, DatasetLoadError> {
        let mut registry = Self::new();
        for builtin in [BuiltinDataset::Digits, BuiltinDataset::Mnist5k] {
            registry.load_builtin(builtin, data_dir)?;
        }
        Ok(registry)
    }

    /// Reads a shipped dataset's CSV file from `data_dir` and registers it; returns its hash.
    pub fn load_builtin(
        &mut self,
        builtin: BuiltinDataset,
        data_dir: &Path,
    ) -> Result<Hash, DatasetLoadError> {
        let format = builtin
            .csv_format()
            .ok_or(DatasetLoadError::NotShipped(builtin))?;
        let path = data_dir.join(format!("{}.csv.gz", builtin.name()));
        let dataset = read_csv(&path, &format)?;
        self.insert(builtin.name(), &dataset)
    }

    /// Registers any dataset under its content hash (split 80/20, stratified, seeded by
    /// [`split_seed`]); returns the hash.
    pub fn insert(&mut self, name: &str, dataset: &Dataset) -> Result<Hash, DatasetLoadError> {
        let hash = content_hash(dataset);
        let split = stratified_split(dataset, cairn_ml::data::TEST_FRACTION, split_seed(&hash))
            .map_err(|error| DatasetLoadError::Split {
                name: name.to_string(),
                reason: error.to_string(),
            })?;
        tracing::info!(dataset = name, hash = %to_hex(&hash), train = split.train.len(), test = split.test.len(), "dataset registered");
        self.entries.insert(
            hash,
            Arc::new(RegisteredDataset {
                name: name.to_string(),
                hash,
                split,
            }),
        );
        Ok(hash)
    }

    /// The dataset with this content hash, if registered.
    pub fn get(&self, hash: &Hash) -> Option<Arc<RegisteredDataset>> {
        self.entries.get(hash).cloned()
    }

    /// The hash of the dataset registered under `name` (first in hash order), if any.
    pub fn hash_of(&self, name: &str) -> Option<Hash> {
        self.entries
            .values()
            .find(|entry| entry.name == name)
            .map(|entry| entry.hash)
    }

    /// Every registered dataset, in hash order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<RegisteredDataset>> {
        self.entries.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(labels: Vec<u32>) -> Dataset {
        let features = labels.iter().map(|l| *l as f32 / 4.0).collect();
        Dataset::new(features, labels, 2, (1, 1, 1)).expect("valid dataset")
    }

    #[test]
    fn content_hash_changes_with_any_label_or_feature() {
        let base = tiny(vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        let relabelled = tiny(vec![1, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        assert_ne!(content_hash(&base), content_hash(&relabelled));
        assert_eq!(content_hash(&base), content_hash(&base.clone()));
    }

    #[test]
    fn registry_finds_an_inserted_dataset_by_hash_and_name() {
        let mut registry = DatasetRegistry::new();
        let data = tiny(vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        let hash = registry.insert("tiny", &data).expect("insert");
        let entry = registry.get(&hash).expect("registered");
        assert_eq!(entry.split.train.len() + entry.split.test.len(), 10);
        assert_eq!(registry.hash_of("tiny"), Some(hash));
        assert!(registry.get(&[0; 32]).is_none());
    }
}
