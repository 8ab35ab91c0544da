//! Reader for numeric CSV datasets: one sample per line, features then the label last.
//!
//! The format is the one the shipped files use: comma-separated, no quoting, no header unless the
//! [`CsvFormat`] says so, `\n` or `\r\n` line ends, blank lines ignored. Features are numbers in
//! `[0, max_value]`, scaled to `[0, 1]` by dividing by `max_value`; the label is an integer below
//! `classes`. The input may be gzip-compressed (detected by its magic number).

use std::io::Read;
use std::path::Path;

use super::error::excerpt;
use super::source::{read_file_maybe_gzip, read_maybe_gzip};
use super::{DataError, Dataset};

/// Default bound on a CSV file's decompressed size: 512 MiB.
pub const DEFAULT_MAX_CSV_BYTES: u64 = 512 << 20;

/// How to read one CSV dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvFormat {
    /// (channels, height, width) of one sample; a row holds their product of features.
    pub shape: (usize, usize, usize),
    /// Number of classes; labels must be below it.
    pub classes: usize,
    /// The largest feature value; features are divided by it (e.g. 16 for digits, 255 for MNIST).
    pub max_value: f32,
    /// Whether the first line is a header to skip.
    pub header: bool,
    /// Bound on the decompressed size, in bytes.
    pub max_bytes: u64,
}

impl CsvFormat {
    /// A headerless format with the default size bound.
    pub fn new(shape: (usize, usize, usize), classes: usize, max_value: f32) -> Self {
        Self {
            shape,
            classes,
            max_value,
            header: false,
            max_bytes: DEFAULT_MAX_CSV_BYTES,
        }
    }

    /// Features per row (the product of `shape`), or `None` if it overflows.
    pub fn features(&self) -> Option<usize> {
        self.shape
            .0
            .checked_mul(self.shape.1)
            .and_then(|n| n.checked_mul(self.shape.2))
    }
}

/// Decodes a CSV dataset from `reader` (plain or gzip); `file` names the input in errors.
pub fn decode_csv(file: &str, reader: impl Read, format: &CsvFormat) -> Result<Dataset, DataError> {
    let bytes = read_maybe_gzip(file, reader, format.max_bytes)?;
    parse_csv(file, &bytes, format)
}

/// Reads the CSV dataset at `path` (plain or gzip), naming it by its path in errors.
pub fn read_csv(path: &Path, format: &CsvFormat) -> Result<Dataset, DataError> {
    let bytes = read_file_maybe_gzip(path, format.max_bytes)?;
    parse_csv(&path.display().to_string(), &bytes, format)
}

/// Parses already-decompressed CSV bytes; `file` names the input in errors.
pub fn parse_csv(file: &str, bytes: &[u8], format: &CsvFormat) -> Result<Dataset, DataError> {
    let features_per_row = match format.features() {
        Some(n) if n > 0 => n,
        _ => {
            return Err(DataError::InvalidFormat {
                reason: format!("sample shape {:?} holds no features", format.shape),
            })
        }
    };
    if !(format.max_value.is_finite() && format.max_value > 0.0) {
        return Err(DataError::InvalidFormat {
            reason: format!("max_value {} is not a positive number", format.max_value),
        });
    }
    let expected = features_per_row + 1;
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut header_pending = format.header;
    for (index, raw_line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_number = index + 1;
        let line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if header_pending {
            header_pending = false;
            continue;
        }
        let found = line.iter().filter(|&&b| b == b',').count() + 1;
        if found != expected {
            return Err(DataError::CsvColumns {
                file: file.to_owned(),
                line: line_number,
                expected,
                found,
            });
        }
        let mut fields = line.split(|&b| b == b',');
        for column in 1..expected {
            let field = fields.next().unwrap_or_default();
            let value =
                parse_feature(field, format.max_value).ok_or_else(|| DataError::CsvFeature {
                    file: file.to_owned(),
                    line: line_number,
                    column,
                    value: excerpt(&String::from_utf8_lossy(field)),
                    max: format.max_value,
                })?;
            features.push(value / format.max_value);
        }
        let field = fields.next().unwrap_or_default();
        let label = parse_label(field).ok_or_else(|| DataError::CsvLabel {
            file: file.to_owned(),
            line: line_number,
            value: excerpt(&String::from_utf8_lossy(field)),
        })?;
        if label as usize >= format.classes {
            return Err(DataError::LabelOutOfRange {
                file: file.to_owned(),
                position: format!("line {line_number}"),
                label,
                classes: format.classes,
            });
        }
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(DataError::Empty {
            file: file.to_owned(),
        });
    }
    Dataset::new(features, labels, format.classes, format.shape).map_err(|source| {
        DataError::Dataset {
            file: file.to_owned(),
            source,
        }
    })
}

/// A feature as a finite number in `[0, max]`, or `None`.
fn parse_feature(field: &[u8], max: f32) -> Option<f32> {
    let field = field.trim_ascii();
    // Small integers (all the shipped files hold) convert exactly; skip the float parser.
    let value = if !field.is_empty() && field.len() <= 7 && field.iter().all(u8::is_ascii_digit) {
        field
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) as f32
    } else {
        std::str::from_utf8(field).ok()?.parse::<f32>().ok()?
    };
    (value.is_finite() && (0.0..=max).contains(&value)).then_some(value)
}

/// A label as a non-negative integer that fits in `u32`, or `None`.
fn parse_label(field: &[u8]) -> Option<u32> {
    let field = field.trim_ascii();
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format() -> CsvFormat {
        CsvFormat::new((1, 1, 2), 3, 16.0)
    }

    #[test]
    fn rows_parse_into_scaled_features_and_labels() {
        let ds = parse_csv("t.csv", b"0,16,2\r\n\n8, 4 ,0\n", &format()).unwrap();
        assert_eq!(ds.features(), &[0.0, 1.0, 0.5, 0.25]);
        assert_eq!(ds.labels(), &[2, 0]);
        assert_eq!(ds.shape(), (1, 1, 2));
    }

    #[test]
    fn decimal_features_are_accepted() {
        let ds = parse_csv("t.csv", b"1.5,1e1,1\n", &format()).unwrap();
        assert_eq!(ds.features(), &[1.5 / 16.0, 10.0 / 16.0]);
    }

    #[test]
    fn header_line_is_skipped_only_when_the_format_says_so() {
        let text = b"a,b,label\n1,2,1\n";
        let mut with_header = format();
        with_header.header = true;
        assert_eq!(parse_csv("t.csv", text, &with_header).unwrap().len(), 1);
        let err = parse_csv("t.csv", text, &format()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv line 1 column 1: feature \"a\" is not a number in [0, 16]"
        );
    }

    #[test]
    fn wrong_column_count_names_file_line_and_counts() {
        let err = parse_csv("d.csv", b"1,2,0\n1,2\n", &format()).unwrap_err();
        assert_eq!(err.to_string(), "d.csv line 2: expected 3 values, found 2");
    }

    #[test]
    fn features_outside_the_range_are_rejected() {
        for bad in ["17", "-1", "nan", "inf", "x", ""] {
            let text = format!("1,{bad},0\n");
            let err = parse_csv("t.csv", text.as_bytes(), &format()).unwrap_err();
            assert!(
                matches!(
                    err,
                    DataError::CsvFeature {
                        line: 1,
                        column: 2,
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn bad_labels_are_typed_errors() {
        let err = parse_csv("t.csv", b"1,2,1.5\n", &format()).unwrap_err();
        assert!(matches!(err, DataError::CsvLabel { line: 1, .. }));
        let err = parse_csv("t.csv", b"1,2,0\n1,2,3\n", &format()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv line 2: label 3 is out of range for 3 classes"
        );
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(matches!(
            parse_csv("t.csv", b"\n\n", &format()),
            Err(DataError::Empty { .. })
        ));
    }

    #[test]
    fn degenerate_formats_are_rejected() {
        let mut zero_max = format();
        zero_max.max_value = 0.0;
        assert!(matches!(
            parse_csv("t.csv", b"0,0,0\n", &zero_max),
            Err(DataError::InvalidFormat { .. })
        ));
        let no_features = CsvFormat::new((1, 0, 2), 3, 1.0);
        assert!(matches!(
            parse_csv("t.csv", b"0\n", &no_features),
            Err(DataError::InvalidFormat { .. })
        ));
    }
}
