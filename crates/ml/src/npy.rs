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
//!   that `np.save(path, x)` works without an `astype(np.float32)`; finite `f64` values beyond the
//!   `f32` range become infinities, as in NumPy's own `astype`;
//! - the data must be exactly `product(shape)` elements long: a truncated file or trailing bytes
//!   are errors, and the shape product is computed with overflow checks.
//!
//! Files are always written as version 1.0, dtype `'<f4'`, C order, header padded to 64 bytes as
//! NumPy itself does, so `np.load` reads them back bit for bit.

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

/// Decodes the bytes of a `.npy` file.
pub fn decode(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    if bytes.len() < MAGIC.len() + 2 {
        return Err(if bytes.starts_with(&MAGIC[..bytes.len().min(6)]) {
            NpyError::Truncated("no room for the version")
        } else {
            NpyError::BadMagic
        });
    }
    if &bytes[..6] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (length_bytes, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => return Err(NpyError::UnsupportedVersion { major, minor }),
    };
    let rest = &bytes[8..];
    if rest.len() < length_bytes {
        return Err(NpyError::Truncated("no room for the header length"));
    }
    let header_len = if length_bytes == 2 {
        usize::from(u16::from_le_bytes([rest[0], rest[1]]))
    } else {
        let raw = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        usize::try_from(raw).map_err(|_| NpyError::HeaderTooLong(usize::MAX))?
    };
    if header_len > MAX_HEADER_LEN {
        return Err(NpyError::HeaderTooLong(header_len));
    }
    let rest = &rest[length_bytes..];
    if rest.len() < header_len {
        return Err(NpyError::Truncated("the header is cut short"));
    }
    let (header_bytes, data) = rest.split_at(header_len);
    let header = if utf8 {
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
    let count = element_count(&parsed.shape)?;
    let expected = count * dtype.size();
    if data.len() != expected {
        return Err(NpyError::DataLength {
            shape: parsed.shape,
            expected,
            actual: data.len(),
        });
    }
    let values = match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
    };
    Ok(NpyArray {
        shape: parsed.shape,
        data: values,
    })
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

/// Reads a `.npy` file from disk.
pub fn read(path: &Path) -> Result<NpyArray, NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    decode(&bytes)
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

    #[test]
    fn one_dimensional_shape_needs_trailing_comma() {
        assert!(header::parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3), }").is_err());
        let ok =
            header::parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }").unwrap();
        assert_eq!(ok.shape, vec![3]);
    }
}
