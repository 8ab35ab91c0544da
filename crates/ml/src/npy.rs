//! Reading and writing NumPy `.npy` files of `float32`, the interchange format of `cairn aggregate`
//! and `cairn attack`.
//!
//! Only what those commands need is supported, and everything else is refused with a typed
//! [`NpyError`] rather than guessed at:
//!
//! - format versions 1.0, 2.0 and 3.0 (the header is a Python dict literal of at most
//!   [`MAX_HEADER_LEN`] bytes);
//! - one- and two-dimensional arrays in C order (`fortran_order` must be `False`);
//! - dtype `'<f4'` (little-endian `float32`), read exactly; dtype `'<f8'` (little-endian
//!   `float64`, NumPy's default) is also accepted on read and **rounded to the nearest `f32`**, so
//!   that `np.save(path, x)` works without an `astype(np.float32)`; a finite `f64` value beyond
//!   the `f32` range is refused ([`NpyError::OutOfF32Range`]) rather than turned into an infinity
//!   that would later be blamed as "non-finite" (NaN and infinities themselves are kept);
//! - the data must be exactly `product(shape)` elements long: a truncated file or trailing bytes
//!   are errors, and the shape product is computed with overflow checks.
//!
//! [`read`] checks the magic bytes and the header before it reads the data, and compares the
//! file's size with the size the header declares before it allocates anything for the data: a
//! large file that is not a `.npy` file, or whose size disagrees with its header, costs a few
//! bytes of reading, not its whole size in memory.
//!
//! Files are always written as version 1.0, dtype `'<f4'`, C order, header padded to 64 bytes as
//! NumPy itself does, so `np.load` reads them back bit for bit.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The first six bytes of every `.npy` file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Longest header (the dict literal plus padding) accepted on read, in bytes.
///
/// NumPy's own reader refuses headers over 10 000 bytes by default; a 1-D or 2-D array never needs
/// more than a hundred.
pub const MAX_HEADER_LEN: usize = 10_000;

/// Alignment of the data section that NumPy uses (and that [`encode`] follows).
const ALIGNMENT: usize = 64;

/// Why a `.npy` file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be opened, read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The bytes do not start with the `.npy` magic string.
    #[error("not a .npy file: it does not start with \\x93NUMPY")]
    BadMagic,
    /// The file ended before the header or the data did.
    #[error("truncated .npy file: {0}")]
    Truncated(&'static str),
    /// The format version is not 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are supported)")]
    UnsupportedVersion {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header declares a length over [`MAX_HEADER_LEN`].
    #[error("header of {0} bytes is longer than the {MAX_HEADER_LEN}-byte limit")]
    HeaderTooLong(usize),
    /// The header is not the dict literal NumPy writes.
    #[error("malformed .npy header: {0}")]
    MalformedHeader(String),
    /// The dtype is not `'<f4'` or `'<f8'`.
    #[error("unsupported dtype {0:?}: save the array as float32 (x.astype(np.float32))")]
    UnsupportedDtype(String),
    /// The array is stored in Fortran (column-major) order.
    #[error("Fortran-ordered arrays are not supported: save np.ascontiguousarray(x)")]
    FortranOrder,
    /// The array is not one- or two-dimensional.
    #[error("arrays must be 1-D or 2-D, this one has {0} dimensions")]
    UnsupportedRank(usize),
    /// The product of the dimensions (or its size in bytes) overflows `usize`.
    #[error("shape {0:?} is too large")]
    ShapeOverflow(Vec<usize>),
    /// The data section is not exactly as long as the shape says.
    #[error("data is {actual} bytes but shape {shape:?} needs {expected}")]
    DataLength {
        /// The declared shape.
        shape: Vec<usize>,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
    /// A finite `float64` value is too large in magnitude to be a `float32`.
    #[error(
        "float64 value {value:e} at flat index {index} is outside the float32 range (about \
         ±3.4e38); scale the data, or clip it before saving"
    )]
    OutOfF32Range {
        /// Position of the value in the flattened (row-major) array.
        index: usize,
        /// The value as stored in the file.
        value: f64,
    },
}

/// A one- or two-dimensional `float32` array in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Dimensions: `[len]` or `[rows, cols]`.
    pub shape: Vec<usize>,
    /// Elements, row after row; `data.len()` is the product of `shape`.
    pub data: Vec<f32>,
}

impl NpyArray {
    /// Builds a 1-D array of `data.len()` elements.
    pub fn vector(data: Vec<f32>) -> Self {
        Self {
            shape: vec![data.len()],
            data,
        }
    }

    /// Builds a `rows x cols` array, or refuses if `data` has another length.
    pub fn matrix(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self, NpyError> {
        let shape = vec![rows, cols];
        let expected = element_count(&shape)?;
        if expected != data.len() {
            return Err(NpyError::DataLength {
                shape,
                expected: expected * 4,
                actual: data.len() * 4,
            });
        }
        Ok(Self { shape, data })
    }
}

/// Product of the dimensions, refusing overflow (of the element count or of its byte size in f64).
fn element_count(shape: &[usize]) -> Result<usize, NpyError> {
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &dim| acc.checked_mul(dim))
        .ok_or_else(|| NpyError::ShapeOverflow(shape.to_vec()))?;
    count
        .checked_mul(8)
        .ok_or_else(|| NpyError::ShapeOverflow(shape.to_vec()))?;
    Ok(count)
}

/// Element types accepted on read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    F64,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// Bytes before the header length: the magic string and the two version bytes.
const LEAD_LEN: usize = MAGIC.len() + 2;

/// What the version bytes say about the rest of the preamble.
#[derive(Debug, Clone, Copy)]
struct Version {
    /// Width of the little-endian header length: 2 bytes (1.0) or 4 (2.0 and 3.0).
    length_bytes: usize,
    /// Whether the header is UTF-8 (3.0) rather than ASCII.
    utf8: bool,
}

/// What the header says about the data that follows it.
#[derive(Debug)]
struct Layout {
    shape: Vec<usize>,
    dtype: Dtype,
    /// Bytes of data the shape and dtype need.
    data_len: usize,
}

/// Checks the magic string and the version in the first [`LEAD_LEN`] bytes (`lead` is shorter
/// only when the input is).
fn version(lead: &[u8]) -> Result<Version, NpyError> {
    if lead.len() < LEAD_LEN {
        return Err(if lead.starts_with(&MAGIC[..lead.len().min(MAGIC.len())]) {
            NpyError::Truncated("no room for the version")
        } else {
            NpyError::BadMagic
        });
    }
    if &lead[..MAGIC.len()] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let (major, minor) = (lead[6], lead[7]);
    match (major, minor) {
        (1, 0) => Ok(Version {
            length_bytes: 2,
            utf8: false,
        }),
        (2, 0) => Ok(Version {
            length_bytes: 4,
            utf8: false,
        }),
        (3, 0) => Ok(Version {
            length_bytes: 4,
            utf8: true,
        }),
        _ => Err(NpyError::UnsupportedVersion { major, minor }),
    }
}

/// Reads the header length from `bytes` (`version.length_bytes` long, or shorter only when the
/// input is) and checks it against [`MAX_HEADER_LEN`].
fn header_len(bytes: &[u8], version: Version) -> Result<usize, NpyError> {
    let header_len = match (version.length_bytes, bytes) {
        (2, [a, b, ..]) => usize::from(u16::from_le_bytes([*a, *b])),
        (4, [a, b, c, d, ..]) => {
            let raw = u32::from_le_bytes([*a, *b, *c, *d]);
            usize::try_from(raw).map_err(|_| NpyError::HeaderTooLong(usize::MAX))?
        }
        _ => return Err(NpyError::Truncated("no room for the header length")),
    };
    if header_len > MAX_HEADER_LEN {
        return Err(NpyError::HeaderTooLong(header_len));
    }
    Ok(header_len)
}

/// Parses the header text and checks that this reader supports what it declares.
fn layout(header_bytes: &[u8], version: Version) -> Result<Layout, NpyError> {
    let header = if version.utf8 {
        std::str::from_utf8(header_bytes)
            .map_err(|_| NpyError::MalformedHeader("header is not UTF-8".into()))?
    } else {
        if !header_bytes.is_ascii() {
            return Err(NpyError::MalformedHeader("header is not ASCII".into()));
        }
        std::str::from_utf8(header_bytes)
            .map_err(|_| NpyError::MalformedHeader("header is not ASCII".into()))?
    };
    let parsed = header::parse(header)?;
    let dtype = match parsed.descr.as_str() {
        "<f4" => Dtype::F32,
        "<f8" => Dtype::F64,
        _ => return Err(NpyError::UnsupportedDtype(parsed.descr)),
    };
    if parsed.fortran_order {
        return Err(NpyError::FortranOrder);
    }
    if !(1..=2).contains(&parsed.shape.len()) {
        return Err(NpyError::UnsupportedRank(parsed.shape.len()));
    }
    // `element_count` already checked that `count * 8` fits.
    let data_len = element_count(&parsed.shape)? * dtype.size();
    Ok(Layout {
        shape: parsed.shape,
        dtype,
        data_len,
    })
}

/// Converts the data section (checked to be `layout.data_len` bytes) into the array.
fn array(layout: Layout, data: &[u8]) -> Result<NpyArray, NpyError> {
    if data.len() != layout.data_len {
        return Err(NpyError::DataLength {
            shape: layout.shape,
            expected: layout.data_len,
            actual: data.len(),
        });
    }
    let values = match layout.dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .enumerate()
            .map(|(index, c)| {
                let value = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                let rounded = value as f32;
                if value.is_finite() && !rounded.is_finite() {
                    Err(NpyError::OutOfF32Range { index, value })
                } else {
                    Ok(rounded)
                }
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(NpyArray {
        shape: layout.shape,
        data: values,
    })
}

/// Decodes the bytes of a `.npy` file.
pub fn decode(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    let version = version(&bytes[..bytes.len().min(LEAD_LEN)])?;
    let rest = &bytes[LEAD_LEN..];
    let header_len = header_len(rest, version)?;
    let rest = &rest[version.length_bytes..];
    if rest.len() < header_len {
        return Err(NpyError::Truncated("the header is cut short"));
    }
    let (header_bytes, data) = rest.split_at(header_len);
    array(layout(header_bytes, version)?, data)
}
/// Encodes an array as the bytes of a version 1.0, `'<f4'`, C-order `.npy` file.
pub fn encode(array: &NpyArray) -> Result<Vec<u8>, NpyError> {
    if !(1..=2).contains(&array.shape.len()) {
        return Err(NpyError::UnsupportedRank(array.shape.len()));
    }
    let count = element_count(&array.shape)?;
    if count != array.data.len() {
        return Err(NpyError::DataLength {
            shape: array.shape.clone(),
            expected: count * 4,
            actual: array.data.len() * 4,
        });
    }
    let shape = match array.shape.as_slice() {
        [len] => format!("({len},)"),
        dims => {
            let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!("({})", parts.join(", "))
        }
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to the alignment.
    let unpadded = 10 + header.len() + 1;
    let padding = (ALIGNMENT - unpadded % ALIGNMENT) % ALIGNMENT;
    header.extend(std::iter::repeat_n(' ', padding));
    header.push('\n');
    let header_len =
        u16::try_from(header.len()).map_err(|_| NpyError::HeaderTooLong(header.len()))?;
    let mut out = Vec::with_capacity(10 + header.len() + count * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for value in &array.data {
        out.extend_from_slice(&value.to_le_bytes());
    }
    Ok(out)
}

/// Reads a `.npy` file from disk: the preamble first, then (once the header is valid and the
/// file's size agrees with it) the data.
///
/// A regular file whose size differs from what its header declares is refused before the data is
/// read or allocated. A pipe or other stream, whose size is not known in advance, is read up to
/// one byte past the declared length (and then drained to count what is extra).
pub fn read(path: &Path) -> Result<NpyArray, NpyError> {
    let io_error = |source| NpyError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    let lead = read_up_to(&mut file, LEAD_LEN).map_err(io_error)?;
    let version = version(&lead)?;
    let length = read_up_to(&mut file, version.length_bytes).map_err(io_error)?;
    let header_len = header_len(&length, version)?;
    let header_bytes = read_up_to(&mut file, header_len).map_err(io_error)?;
    if header_bytes.len() < header_len {
        return Err(NpyError::Truncated("the header is cut short"));
    }
    let layout = layout(&header_bytes, version)?;
    let expected = layout.data_len;
    // LEAD_LEN + 4 + MAX_HEADER_LEN: no overflow.
    let preamble_len = (LEAD_LEN + version.length_bytes + header_len) as u64;
    let data = if metadata.is_file() {
        let present = metadata.len().saturating_sub(preamble_len);
        if present != expected as u64 {
            return Err(NpyError::DataLength {
                shape: layout.shape,
                expected,
                actual: usize::try_from(present).unwrap_or(usize::MAX),
            });
        }
        let mut data = Vec::new();
        data.try_reserve_exact(expected)
            .map_err(|_| NpyError::ShapeOverflow(layout.shape.clone()))?;
        // One byte more than expected shows a file that grew since its size was read.
        (&mut file)
            .take(expected as u64 + 1)
            .read_to_end(&mut data)
            .map_err(io_error)?;
        data
    } else {
        let mut data = Vec::new();
        (&mut file)
            .take(expected as u64 + 1)
            .read_to_end(&mut data)
            .map_err(io_error)?;
        if data.len() > expected {
            let extra = io::copy(&mut file, &mut io::sink()).map_err(io_error)?;
            let actual = (data.len() as u64).saturating_add(extra);
            return Err(NpyError::DataLength {
                shape: layout.shape,
                expected,
                actual: usize::try_from(actual).unwrap_or(usize::MAX),
            });
        }
        data
    };
    array(layout, &data)
}

/// Reads up to `limit` bytes, fewer only at the end of the input.
fn read_up_to(reader: &mut impl Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(limit);
    reader.take(limit as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes an array to disk as a `.npy` file (see [`encode`]).
pub fn write(path: &Path, array: &NpyArray) -> Result<(), NpyError> {
    let bytes = encode(array)?;
    std::fs::write(path, bytes).map_err(|source| NpyError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The parser of the header's Python dict literal.
mod header {
    use super::NpyError;

    /// The three keys every `.npy` header holds.
    pub(super) struct Header {
        pub(super) descr: String,
        pub(super) fortran_order: bool,
        pub(super) shape: Vec<usize>,
    }

    /// Most dimensions accepted while parsing (before the rank check), to bound work on junk.
    const MAX_DIMS: usize = 32;

    struct Cursor<'a> {
        text: &'a [u8],
        at: usize,
    }

    fn malformed(what: &str) -> NpyError {
        NpyError::MalformedHeader(what.to_string())
    }

    impl Cursor<'_> {
        fn skip_space(&mut self) {
            while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
                self.at += 1;
            }
        }

        fn peek(&mut self) -> Option<u8> {
            self.skip_space();
            self.text.get(self.at).copied()
        }

        fn expect(&mut self, byte: u8) -> Result<(), NpyError> {
            if self.peek() == Some(byte) {
                self.at += 1;
                Ok(())
            } else {
                Err(malformed(&format!("expected '{}'", byte as char)))
            }
        }

        fn string(&mut self) -> Result<String, NpyError> {
            let quote = self.peek().ok_or_else(|| malformed("expected a string"))?;
            if quote != b'\'' && quote != b'"' {
                return Err(malformed("expected a quoted string"));
            }
            self.at += 1;
            let start = self.at;
            while self.at < self.text.len() && self.text[self.at] != quote {
                if self.text[self.at] == b'\\' {
                    return Err(malformed("escapes in strings are not supported"));
                }
                self.at += 1;
            }
            if self.at >= self.text.len() {
                return Err(malformed("unterminated string"));
            }
            let value = std::str::from_utf8(&self.text[start..self.at])
                .map_err(|_| malformed("string is not UTF-8"))?
                .to_string();
            self.at += 1;
            Ok(value)
        }

        fn word(&mut self) -> &[u8] {
            self.skip_space();
            let start = self.at;
            while self.at < self.text.len()
                && (self.text[self.at].is_ascii_alphanumeric() || self.text[self.at] == b'_')
            {
                self.at += 1;
            }
            &self.text[start..self.at]
        }

        fn boolean(&mut self) -> Result<bool, NpyError> {
            match self.word() {
                b"True" => Ok(true),
                b"False" => Ok(false),
                _ => Err(malformed("fortran_order must be True or False")),
            }
        }

        fn shape(&mut self) -> Result<Vec<usize>, NpyError> {
            self.expect(b'(')?;
            let mut dims = Vec::new();
            loop {
                if self.peek() == Some(b')') {
                    self.at += 1;
                    break;
                }
                let word = self.word();
                if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
                    return Err(malformed("shape must be a tuple of non-negative integers"));
                }
                let text = std::str::from_utf8(word).map_err(|_| malformed("bad digits"))?;
                let dim: usize = text
                    .parse()
                    .map_err(|_| malformed("a dimension does not fit in usize"))?;
                dims.push(dim);
                if dims.len() > MAX_DIMS {
                    return Err(malformed("too many dimensions"));
                }
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b')') => {
                        self.at += 1;
                        if dims.len() == 1 {
                            // Python needs `(n,)` for a 1-tuple; `(n)` is just an integer.
                            return Err(malformed("a 1-D shape must be written (n,)"));
                        }
                        break;
                    }
                    _ => return Err(malformed("expected ',' or ')' in shape")),
                }
            }
            Ok(dims)
        }
    }

    /// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` and padding.
    pub(super) fn parse(text: &str) -> Result<Header, NpyError> {
        let mut cursor = Cursor {
            text: text.as_bytes(),
            at: 0,
        };
        let mut descr = None;
        let mut fortran_order = None;
        let mut shape = None;
        cursor.expect(b'{')?;
        loop {
            if cursor.peek() == Some(b'}') {
                cursor.at += 1;
                break;
            }
            let key = cursor.string()?;
            cursor.expect(b':')?;
            let duplicate = match key.as_str() {
                "descr" => descr.replace(cursor.string()?).is_some(),
                "fortran_order" => fortran_order.replace(cursor.boolean()?).is_some(),
                "shape" => shape.replace(cursor.shape()?).is_some(),
                other => return Err(malformed(&format!("unexpected key {other:?}"))),
            };
            if duplicate {
                return Err(malformed(&format!("key {key:?} appears twice")));
            }
            match cursor.peek() {
                Some(b',') => cursor.at += 1,
                Some(b'}') => {}
                _ => return Err(malformed("expected ',' or '}' after a value")),
            }
        }
        if cursor.peek().is_some() {
            return Err(malformed("unexpected text after the dict"));
        }
        Ok(Header {
            descr: descr.ok_or_else(|| malformed("missing 'descr'"))?,
            fortran_order: fortran_order.ok_or_else(|| malformed("missing 'fortran_order'"))?,
            shape: shape.ok_or_else(|| malformed("missing 'shape'"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_header_is_padded_to_64_bytes_and_ends_with_newline() {
        let bytes = encode(&NpyArray::vector(vec![1.0, 2.0])).unwrap();
        let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(bytes[9 + header_len], b'\n');
        assert_eq!(bytes.len(), 10 + header_len + 8);
    }

    /// A version 1.0 file of `header` (padding and newline added) followed by `data`.
    fn file_bytes(header: &str, data: &[u8]) -> Vec<u8> {
        let header = format!("{header}\n");
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn f64_bytes(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn float64_beyond_the_float32_range_is_refused_with_its_index() {
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        let bytes = file_bytes(header, &f64_bytes(&[0.5, -2.0, -1e300, 1.0]));
        let error = decode(&bytes).unwrap_err();
        assert!(
            matches!(error, NpyError::OutOfF32Range { index: 2, value } if value == -1e300),
            "{error}"
        );
        let message = error.to_string();
        assert!(message.contains("index 2"), "{message}");
        assert!(message.contains("float32 range"), "{message}");
        assert!(!message.contains("non-finite"), "{message}");
    }

    #[test]
    fn float64_non_finite_values_and_the_largest_float32_are_kept() {
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }";
        let largest = f64::from(f32::MAX);
        let values = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, largest];
        let array = decode(&file_bytes(header, &f64_bytes(&values))).unwrap();
        assert!(array.data[0].is_nan());
        assert_eq!(
            array.data[1..],
            [f32::INFINITY, f32::NEG_INFINITY, f32::MAX]
        );
    }

    #[test]
    fn read_checks_the_magic_before_reading_a_large_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.bin");
        let file = std::fs::File::create(&path).unwrap();
        // A sparse 1 TiB file: reading it whole would exhaust memory long before it ended.
        file.set_len(1 << 40).unwrap();
        assert!(matches!(read(&path), Err(NpyError::BadMagic)));
    }

    #[test]
    fn read_refuses_a_file_whose_size_disagrees_with_its_header_before_reading_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
        let short = dir.path().join("short.npy");
        std::fs::write(&short, file_bytes(header, &[0; 12])).unwrap();
        assert!(matches!(
            read(&short),
            Err(NpyError::DataLength {
                expected: 16,
                actual: 12,
                ..
            })
        ));
        // A sparse 1 TiB tail after a valid header is refused from the file's size alone.
        let long = dir.path().join("long.npy");
        let preamble = file_bytes(header, &[]);
        std::fs::write(&long, &preamble).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&long).unwrap();
        file.set_len(preamble.len() as u64 + (1 << 40)).unwrap();
        assert!(matches!(
            read(&long),
            Err(NpyError::DataLength {
                expected: 16,
                actual,
                ..
            }) if actual == 1 << 40
        ));
        // A header declaring more data than the file holds is refused without allocating it.
        let claims = dir.path().join("claims.npy");
        let huge = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }";
        std::fs::write(&claims, file_bytes(huge, &[0; 8])).unwrap();
        assert!(matches!(
            read(&claims),
            Err(NpyError::DataLength { actual: 8, .. })
        ));
    }

    #[test]
    fn read_and_decode_agree_on_valid_and_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let bytes =
            encode(&NpyArray::matrix(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap()).unwrap();
        let path = dir.path().join("x.npy");
        for cut in [0, 3, 7, 9, 20, bytes.len() - 1, bytes.len()] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let from_file = read(&path).map_err(|e| e.to_string());
            let from_bytes = decode(&bytes[..cut]).map_err(|e| e.to_string());
            assert_eq!(from_file, from_bytes, "cut at {cut}");
        }
    }

    #[test]
    fn one_dimensional_shape_needs_trailing_comma() {
        assert!(header::parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3), }").is_err());
        let ok =
            header::parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }").unwrap();
        assert_eq!(ok.shape, vec![3]);
    }
}
