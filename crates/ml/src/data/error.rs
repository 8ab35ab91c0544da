//! What can go wrong while reading a dataset, each case naming the file it came from.

use std::path::PathBuf;

use thiserror::Error;

use super::DatasetError;

/// Errors from reading a dataset file or locating the data.
///
/// Every variant that comes from a file carries `file`, the name the caller gave the input (a
/// path for the path-based readers), so the message says which file is wrong and where.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file starts like gzip but its compressed stream is corrupt or cut short.
    #[error("{file}: corrupt or truncated gzip stream: {source}")]
    Gzip {
        /// The file.
        file: String,
        /// The decompressor's error.
        #[source]
        source: std::io::Error,
    },
    /// The (decompressed) contents are larger than the reader accepts.
    #[error("{file}: more than {limit} bytes (after decompression); refusing to read further")]
    TooLarge {
        /// The file.
        file: String,
        /// The byte limit that was passed.
        limit: u64,
    },
    /// The format description itself is unusable (a caller's mistake, not the file's).
    #[error("invalid data format: {reason}")]
    InvalidFormat {
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds no data rows.
    #[error("{file}: no data rows")]
    Empty {
        /// The file.
        file: String,
    },
    /// A CSV row has the wrong number of values.
    #[error("{file} line {line}: expected {expected} values, found {found}")]
    CsvColumns {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// Values per row the format requires (features + label).
        expected: usize,
        /// Values found on the line.
        found: usize,
    },
    /// A CSV feature is not a finite number within `[0, max]`.
    #[error("{file} line {line} column {column}: feature {value:?} is not a number in [0, {max}]")]
    CsvFeature {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// 1-based column number.
        column: usize,
        /// The text found (cut to 32 characters).
        value: String,
        /// The largest value the format allows.
        max: f32,
    },
    /// A CSV label is not a non-negative integer.
    #[error("{file} line {line}: label {value:?} is not a non-negative integer")]
    CsvLabel {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The text found (cut to 32 characters).
        value: String,
    },
    /// A label is not below the number of classes.
    #[error("{file} {position}: label {label} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// The file.
        file: String,
        /// Where: `line N` in a CSV file, `item N` (0-based) in an IDX file.
        position: String,
        /// The label found.
        label: u32,
        /// Number of classes.
        classes: usize,
    },
    /// An IDX file does not start with the magic number of the kind expected.
    #[error("{file}: wrong magic {found:#010x}, expected {expected:#010x} ({kind})")]
    IdxMagic {
        /// The file.
        file: String,
        /// The magic number read.
        found: u32,
        /// The magic number required.
        expected: u32,
        /// What kind of IDX file was expected, e.g. `IDX images`.
        kind: &'static str,
    },
    /// An IDX file has dimensions beyond the reader's limits (checked before allocating).
    #[error("{file}: dimensions {dims:?} are out of bounds ({reason})")]
    IdxDimensions {
        /// The file.
        file: String,
        /// The dimensions read from the header.
        dims: Vec<u32>,
        /// Which bound they break.
        reason: String,
    },
    /// An IDX file ends before the data its header announces.
    #[error("{file}: truncated: header announces {expected} bytes, found {found}")]
    Truncated {
        /// The file.
        file: String,
        /// Bytes the header announces (header included).
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// An IDX file holds bytes after the data its header announces.
    #[error("{file}: unexpected bytes after the {expected} bytes the header announces")]
    TrailingBytes {
        /// The file.
        file: String,
        /// Bytes the header announces (header included).
        expected: u64,
    },
    /// An IDX image file and its label file disagree on the number of samples.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The image file.
        images: String,
        /// Images it holds.
        image_count: usize,
        /// The label file.
        labels: String,
        /// Labels it holds.
        label_count: usize,
    },
    /// The decoded values do not form a valid [`Dataset`](super::Dataset).
    #[error("{file}: {source}")]
    Dataset {
        /// The file.
        file: String,
        /// What is inconsistent.
        #[source]
        source: DatasetError,
    },
    /// Splitting a loaded dataset into train and test failed.
    #[error("{file}: {source}")]
    Split {
        /// The file that was split.
        file: String,
        /// Why the split is impossible.
        #[source]
        source: super::SplitError,
    },
    /// No directory holding the shipped datasets was found.
    #[error(
        "no data directory found (tried {}); set CAIRN_DATA_DIR to the repository's data/ folder",
        display_paths(tried)
    )]
    DataDirNotFound {
        /// The directories looked at, in order.
        tried: Vec<PathBuf>,
    },
    /// The Fashion-MNIST files are not installed.
    #[error(
        "Fashion-MNIST not found: {missing} is missing (looked in {}). Install it with \
         `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu; puts the files in \
         /usr/share/datasets/fashion-mnist), or set CAIRN_FASHION_MNIST_DIR to a folder holding \
         train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and \
         t10k-labels-idx1-ubyte.gz",
        display_paths(tried)
    )]
    FashionMnistMissing {
        /// The first file found missing.
        missing: String,
        /// The directories looked at, in order.
        tried: Vec<PathBuf>,
    },
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nothing".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Cuts text quoted in an error to a readable length (input may be a megabyte of garbage).
pub(crate) fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 32;
    let mut out: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}
