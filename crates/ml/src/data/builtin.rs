//! The datasets Cairn knows by name, their files, and their documented train/test splits.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::csv::{read_csv, CsvFormat};
use super::idx::{read_idx_dataset, IdxLimits};
use super::split::{stratified_split, TrainTest};
use super::DataError;

/// Environment variable naming the folder of the shipped datasets.
pub const DATA_DIR_ENV: &str = "CAIRN_DATA_DIR";
/// Environment variable naming a folder of the Fashion-MNIST IDX files.
pub const FASHION_MNIST_DIR_ENV: &str = "CAIRN_FASHION_MNIST_DIR";
/// Where Debian's `dataset-fashion-mnist` package installs the files.
pub const FASHION_MNIST_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Fraction of `digits` and `mnist_5k` held out for testing (stratified).
pub const TEST_FRACTION: f64 = 0.2;

/// The Fashion-MNIST files, without the `.gz` that Debian's package adds (either is accepted).
const FASHION_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// A dataset Cairn can load by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BuiltinDataset {
    /// UCI handwritten digits, 8x8, 1797 samples, shipped as `data/digits.csv.gz`.
    #[serde(rename = "digits")]
    Digits,
    /// 5000 MNIST samples (500 per class), 28x28, shipped as `data/mnist_5k.csv.gz`.
    #[serde(rename = "mnist_5k")]
    Mnist5k,
    /// Fashion-MNIST, 28x28, 60000 train + 10000 test, from Debian's `dataset-fashion-mnist`.
    #[serde(rename = "fashion_mnist")]
    FashionMnist,
}

/// The error for a dataset name that is not one of [`BuiltinDataset::ALL`].
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("unknown dataset {0:?}; expected one of: digits, mnist_5k, fashion_mnist")]
pub struct UnknownDataset(pub String);

impl BuiltinDataset {
    /// Every built-in dataset.
    pub const ALL: [Self; 3] = [Self::Digits, Self::Mnist5k, Self::FashionMnist];

    /// The name used on the command line and in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::Digits => "digits",
            Self::Mnist5k => "mnist_5k",
            Self::FashionMnist => "fashion_mnist",
        }
    }

    /// Number of classes (10 for all three).
    pub fn classes(self) -> usize {
        10
    }

    /// (channels, height, width) of one sample.
    pub fn shape(self) -> (usize, usize, usize) {
        match self {
            Self::Digits => (1, 8, 8),
            Self::Mnist5k | Self::FashionMnist => (1, 28, 28),
        }
    }

    /// The CSV format of the shipped file, or `None` for Fashion-MNIST (IDX files).
    pub fn csv_format(self) -> Option<CsvFormat> {
        match self {
            Self::Digits => Some(CsvFormat::new(self.shape(), self.classes(), 16.0)),
            Self::Mnist5k => Some(CsvFormat::new(self.shape(), self.classes(), 255.0)),
            Self::FashionMnist => None,
        }
    }

    /// Loads the dataset with its documented split.
    ///
    /// `digits` and `mnist_5k` are read from `data_dir` (see [`default_data_dir`]) and split by
    /// [`stratified_split`] with [`TEST_FRACTION`] and `seed` (digits: 1438 train / 359 test;
    /// mnist_5k: 4000 / 1000, 100 test samples per class). Fashion-MNIST keeps its own 60000 /
    /// 10000 split in file order (`seed` is unused); its folder is found by
    /// [`find_fashion_mnist_dir`].
    pub fn load(&self, data_dir: &Path, seed: u64) -> Result<TrainTest, DataError> {
        let split = match self {
            Self::Digits | Self::Mnist5k => {
                let path = data_dir.join(format!("{}.csv.gz", self.name()));
                let format = self.csv_format().ok_or_else(|| DataError::InvalidFormat {
                    reason: format!("{} has no CSV format", self.name()),
                })?;
                let dataset = read_csv(&path, &format)?;
                stratified_split(&dataset, TEST_FRACTION, seed).map_err(|source| {
                    DataError::Split {
                        file: path.display().to_string(),
                        source,
                    }
                })?
            }
            Self::FashionMnist => {
                let env = std::env::var_os(FASHION_MNIST_DIR_ENV);
                load_fashion_mnist(&find_fashion_mnist_dir(data_dir, env)?)?
            }
        };
        tracing::info!(
            dataset = self.name(),
            train = split.train.len(),
            test = split.test.len(),
            "loaded dataset"
        );
        Ok(split)
    }
}

impl fmt::Display for BuiltinDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BuiltinDataset {
    type Err = UnknownDataset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| UnknownDataset(s.to_owned()))
    }
}

/// Loads Fashion-MNIST's own train and test sets from the four IDX files in `dir`, each named as
/// Debian ships it (`train-images-idx3-ubyte.gz`, ...) or without the `.gz`.
pub fn load_fashion_mnist(dir: &Path) -> Result<TrainTest, DataError> {
    let [train_images, train_labels, test_images, test_labels] =
        fashion_mnist_paths(dir).map_err(|missing| DataError::FashionMnistMissing {
            missing,
            tried: vec![dir.to_path_buf()],
        })?;
    let limits = IdxLimits::default();
    Ok(TrainTest {
        train: read_idx_dataset(&train_images, &train_labels, 10, &limits)?,
        test: read_idx_dataset(&test_images, &test_labels, 10, &limits)?,
    })
}

/// Finds the folder holding all four Fashion-MNIST files: `env_dir` (the value of
/// `$CAIRN_FASHION_MNIST_DIR`, if set), then `data_dir/fashion-mnist`, then
/// [`FASHION_MNIST_SYSTEM_DIR`]. When none has them, the error says how to install them.
pub fn find_fashion_mnist_dir(
    data_dir: &Path,
    env_dir: Option<OsString>,
) -> Result<PathBuf, DataError> {
    let mut tried = Vec::new();
    if let Some(dir) = env_dir.filter(|d| !d.is_empty()) {
        tried.push(PathBuf::from(dir));
    }
    tried.push(data_dir.join("fashion-mnist"));
    tried.push(PathBuf::from(FASHION_MNIST_SYSTEM_DIR));
    let mut first_missing = None;
    for dir in &tried {
        match fashion_mnist_paths(dir) {
            Ok(_) => return Ok(dir.clone()),
            Err(missing) => {
                first_missing.get_or_insert(missing);
            }
        }
    }
    Err(DataError::FashionMnistMissing {
        missing: first_missing.unwrap_or_default(),
        tried,
    })
}

/// The four Fashion-MNIST paths in `dir` that [`load_fashion_mnist`] reads (train images, train
/// labels, test images, test labels; each `.gz` if present, else plain), or the path of the first
/// one missing.
pub fn fashion_mnist_paths(dir: &Path) -> Result<[PathBuf; 4], String> {
    let find = |stem: &str| {
        let gz = dir.join(format!("{stem}.gz"));
        let plain = dir.join(stem);
        if gz.is_file() {
            Ok(gz)
        } else if plain.is_file() {
            Ok(plain)
        } else {
            Err(gz.display().to_string())
        }
    };
    Ok([
        find(FASHION_FILES[0])?,
        find(FASHION_FILES[1])?,
        find(FASHION_FILES[2])?,
        find(FASHION_FILES[3])?,
    ])
}

/// Locates the repository's `data/` folder: `$CAIRN_DATA_DIR` if set, else the first `data/`
/// holding `digits.csv.gz` in the working directory or one of its parents, else the folder this
/// crate was built from (`crates/ml/../../data`).
pub fn default_data_dir() -> Result<PathBuf, DataError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    find_data_dir(std::env::var_os(DATA_DIR_ENV), &cwd)
}

/// [`default_data_dir`] with the environment value and working directory passed in.
pub fn find_data_dir(env_dir: Option<OsString>, cwd: &Path) -> Result<PathBuf, DataError> {
    if let Some(dir) = env_dir.filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() {
            Ok(dir)
        } else {
            Err(DataError::DataDirNotFound { tried: vec![dir] })
        };
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    // Canonical so that error messages show `/…/data/x.csv.gz`, not `crates/ml/../../data`.
    let built_from = std::fs::canonicalize(&built_from).unwrap_or(built_from);
    let mut tried: Vec<PathBuf> = cwd.ancestors().map(|a| a.join("data")).collect();
    tried.push(built_from);
    match tried.iter().find(|d| d.join("digits.csv.gz").is_file()) {
        Some(dir) => Ok(dir.clone()),
        None => Err(DataError::DataDirNotFound { tried }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_display_and_serde() {
        for dataset in BuiltinDataset::ALL {
            assert_eq!(dataset.to_string().parse::<BuiltinDataset>(), Ok(dataset));
            let json = serde_json::to_string(&dataset).unwrap();
            assert_eq!(json, format!("\"{}\"", dataset.name()));
            assert_eq!(
                serde_json::from_str::<BuiltinDataset>(&json).unwrap(),
                dataset
            );
        }
        assert_eq!(BuiltinDataset::Mnist5k.name(), "mnist_5k");
        let err = "mnist".parse::<BuiltinDataset>().unwrap_err();
        assert!(err.to_string().contains("digits, mnist_5k, fashion_mnist"));
    }

    #[test]
    fn env_data_dir_wins_and_must_exist() {
        let tmp = tempfile::tempdir().unwrap();
        let found = find_data_dir(Some(tmp.path().into()), Path::new("/")).unwrap();
        assert_eq!(found, tmp.path());
        let err = find_data_dir(Some("/nonexistent/cairn-data".into()), Path::new("/"));
        assert!(matches!(err, Err(DataError::DataDirNotFound { .. })));
    }

    #[test]
    fn data_dir_is_found_from_a_subfolder_or_the_build_path() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("data")).unwrap();
        std::fs::write(tmp.path().join("data/digits.csv.gz"), b"").unwrap();
        let nested = tmp.path().join("crates/cli");
        std::fs::create_dir_all(&nested).unwrap();
        assert_eq!(
            find_data_dir(None, &nested).unwrap(),
            tmp.path().join("data")
        );
        // From an unrelated folder, the crate's own checkout is the fallback.
        let elsewhere = tempfile::tempdir().unwrap();
        let found = find_data_dir(None, elsewhere.path()).unwrap();
        assert!(found.join("digits.csv.gz").is_file());
    }

    #[test]
    fn missing_fashion_mnist_says_how_to_install_it() {
        let tmp = tempfile::tempdir().unwrap();
        let err = load_fashion_mnist(tmp.path()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("sudo apt-get install dataset-fashion-mnist"),
            "{message}"
        );
        assert!(message.contains("train-images-idx3-ubyte.gz"), "{message}");
    }
}
