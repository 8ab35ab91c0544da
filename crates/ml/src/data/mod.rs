//! Datasets: readers for the shipped CSV files and IDX (MNIST-format) files, train/test splits,
//! and seeded partitioners that hand each federated client its share.
//!
//! See `docs/data.md` for the formats, the splits and the exact definition of every partition.
//!
//! ```
//! use cairn_ml::data::{
//!     default_data_dir, label_counts, partition_dataset, BuiltinDataset, Partition,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data_dir = default_data_dir()?;
//! let split = BuiltinDataset::Digits.load(&data_dir, 42)?;
//! assert_eq!((split.train.len(), split.test.len()), (1438, 359));
//!
//! // Ten clients with label skew: each client sees few classes.
//! let scheme = Partition::Dirichlet { alpha: 0.1, min_samples: 10 };
//! let clients = partition_dataset(&split.train, 10, &scheme, 42)?;
//! let first_client = split.train.subset(&clients[0])?;
//! assert!(first_client.len() >= 10);
//! let counts = label_counts(split.train.labels(), 10, &clients);
//! assert_eq!(counts.iter().flatten().sum::<usize>(), 1438);
//! # Ok(())
//! # }
//! ```

mod builtin;
mod csv;
mod dataset;
mod error;
mod idx;
mod partition;
mod sampling;
mod source;
mod split;

pub use builtin::{
    default_data_dir, fashion_mnist_paths, find_data_dir, find_fashion_mnist_dir,
    load_fashion_mnist, BuiltinDataset, UnknownDataset, DATA_DIR_ENV, FASHION_MNIST_DIR_ENV,
    FASHION_MNIST_SYSTEM_DIR, TEST_FRACTION,
};
pub use csv::{decode_csv, parse_csv, read_csv, CsvFormat, DEFAULT_MAX_CSV_BYTES};
pub use dataset::{Dataset, DatasetError};
pub use error::DataError;
pub use idx::{
    decode_idx_images, decode_idx_labels, idx_dataset, read_idx_dataset, IdxImages, IdxLimits,
    IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
};
pub use partition::{
    label_counts, partition, partition_dataset, Partition, PartitionError, MAX_DIRICHLET_ATTEMPTS,
    MIN_ALPHA,
};
pub use source::{read_file_maybe_gzip, read_maybe_gzip, GZIP_MAGIC};
pub use split::{
    split_indices, stratified_split, stratified_split_indices, train_test_split, SplitError,
    SplitIndices, TrainTest,
};
