//! Datasets: readers for the shipped CSV files and IDX (MNIST-format) files, train/test splits,
//! and seeded partitioners that hand each federated client its share.

mod dataset;

pub use dataset::{Dataset, DatasetError};
