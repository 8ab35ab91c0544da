//! Reading a data file's bytes: gzip detected by its magic number, size bounded.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::DataError;

/// The two bytes every gzip stream starts with (RFC 1952).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads everything from `reader`, gunzipping it first when it starts with [`GZIP_MAGIC`].
///
/// At most `limit` bytes (after decompression) are accepted, so a small compressed input cannot
/// expand into an unbounded allocation; more is [`DataError::TooLarge`]. `file` names the input in
/// errors.
pub fn read_maybe_gzip(file: &str, reader: impl Read, limit: u64) -> Result<Vec<u8>, DataError> {
    let mut input = Decompressed::open(file, reader)?;
    let out = input.read_up_to(limit.saturating_add(1))?;
    if out.len() as u64 > limit {
        return Err(DataError::TooLarge {
            file: file.to_owned(),
            limit,
        });
    }
    Ok(out)
}

/// A byte stream, gunzipped when it starts with [`GZIP_MAGIC`], that reads in bounded pieces.
pub(crate) struct Decompressed<'a> {
    file: String,
    gzip: bool,
    inner: Box<dyn Read + 'a>,
}

impl<'a> Decompressed<'a> {
    /// Looks at the first two bytes of `reader` to decide whether to gunzip it.
    pub(crate) fn open(file: &str, mut reader: impl Read + 'a) -> Result<Self, DataError> {
        let mut magic = [0u8; 2];
        let mut filled = 0;
        while filled < magic.len() {
            match reader.read(&mut magic[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(DataError::Io {
                        file: file.to_owned(),
                        source,
                    })
                }
            }
        }
        let whole = Cursor::new(magic[..filled].to_vec()).chain(reader);
        let gzip = filled == GZIP_MAGIC.len() && magic == GZIP_MAGIC;
        let inner: Box<dyn Read + 'a> = if gzip {
            Box::new(MultiGzDecoder::new(whole))
        } else {
            Box::new(whole)
        };
        Ok(Self {
            file: file.to_owned(),
            gzip,
            inner,
        })
    }

    /// The name the input goes by in errors.
    pub(crate) fn file(&self) -> &str {
        &self.file
    }

    /// Reads up to `n` more bytes; fewer only at the end of the input. The buffer grows with the
    /// bytes actually present, so a header announcing a huge size allocates nothing up front.
    pub(crate) fn read_up_to(&mut self, n: u64) -> Result<Vec<u8>, DataError> {
        let mut out = Vec::new();
        match (&mut self.inner).take(n).read_to_end(&mut out) {
            Ok(_) => Ok(out),
            Err(source) => {
                let file = self.file.clone();
                Err(if self.gzip {
                    DataError::Gzip { file, source }
                } else {
                    DataError::Io { file, source }
                })
            }
        }
    }
}

/// Reads the file at `path` with [`read_maybe_gzip`], naming it by its path in errors.
pub fn read_file_maybe_gzip(path: &Path, limit: u64) -> Result<Vec<u8>, DataError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| DataError::Io {
        file: name.clone(),
        source,
    })?;
    read_maybe_gzip(&name, file, limit)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn plain_and_gzip_inputs_read_the_same_bytes() {
        let text = b"1,2,3\n4,5,6\n";
        assert_eq!(read_maybe_gzip("t", &text[..], 100).unwrap(), text);
        assert_eq!(read_maybe_gzip("t", &gzip(text)[..], 100).unwrap(), text);
    }

    #[test]
    fn inputs_shorter_than_the_magic_are_read_as_plain() {
        assert_eq!(read_maybe_gzip("t", &[0x1f][..], 10).unwrap(), vec![0x1f]);
        assert!(read_maybe_gzip("t", &[][..], 10).unwrap().is_empty());
    }

    #[test]
    fn output_past_the_limit_is_too_large_even_when_compressed() {
        let zeros = gzip(&[0u8; 10_000]);
        let err = read_maybe_gzip("bomb.gz", &zeros[..], 1000).unwrap_err();
        assert!(matches!(err, DataError::TooLarge { limit: 1000, .. }));
        assert!(err.to_string().starts_with("bomb.gz: "));
        assert_eq!(
            read_maybe_gzip("t", &zeros[..], 10_000).unwrap().len(),
            10_000
        );
    }

    #[test]
    fn truncated_gzip_is_a_gzip_error_naming_the_file() {
        let whole = gzip(b"some text that compresses into a stream we then cut short");
        let cut = &whole[..whole.len() - 12];
        let err = read_maybe_gzip("cut.csv.gz", cut, 1000).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
        assert!(err
            .to_string()
            .starts_with("cut.csv.gz: corrupt or truncated gzip"));
    }

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        let err = read_file_maybe_gzip(Path::new("/nonexistent/cairn/x.csv"), 10).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }));
        assert!(err
            .to_string()
            .starts_with("/nonexistent/cairn/x.csv: cannot read"));
    }
}
