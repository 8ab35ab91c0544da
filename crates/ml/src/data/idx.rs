//! Reader for IDX files, the format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a 4-byte magic number `00 00 08 n` (unsigned-byte data, `n` dimensions), then
//! `n` big-endian `u32` dimension sizes, then the data row-major. Images are `n = 3`
//! (count, rows, columns), labels `n = 1` (count). Files may be gzip-compressed (detected by their
//! magic number). Dimensions are checked against [`IdxLimits`] before anything is allocated for
//! the data, and the data must be exactly as long as the header says.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::source::Decompressed;
use super::{DataError, Dataset};

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Bounds an IDX header must respect before the reader allocates for its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdxLimits {
    /// Most items (images or labels) in one file.
    pub max_items: u32,
    /// Most rows, and most columns, of one image.
    pub max_side: u32,
    /// Most data bytes (after the header) in one file.
    pub max_bytes: u64,
}

impl Default for IdxLimits {
    /// 10 million items, images up to 1024 x 1024, 1 GiB of data: room for MNIST-8M, while a
    /// corrupt header cannot ask for more.
    fn default() -> Self {
        Self {
            max_items: 10_000_000,
            max_side: 1024,
            max_bytes: 1 << 30,
        }
    }
}

/// The images of an IDX image file, pixels as stored (0-255), row-major `count x rows x cols`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// All pixels, `count * rows * cols` bytes.
    pub pixels: Vec<u8>,
}

/// Decodes an IDX image file (plain or gzip) from `reader`; `file` names it in errors.
pub fn decode_idx_images(
    file: &str,
    reader: impl Read,
    limits: &IdxLimits,
) -> Result<IdxImages, DataError> {
    let mut input = Decompressed::open(file, reader)?;
    let dims = read_header(&mut input, IDX_IMAGES_MAGIC, "IDX images")?;
    let bad = |reason: String| DataError::IdxDimensions {
        file: file.to_owned(),
        dims: dims.clone(),
        reason,
    };
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if count > limits.max_items {
        return Err(bad(format!("more than {} images", limits.max_items)));
    }
    if rows == 0 || cols == 0 || rows > limits.max_side || cols > limits.max_side {
        return Err(bad(format!("image sides must be 1 to {}", limits.max_side)));
    }
    let bytes = u64::from(count) * u64::from(rows) * u64::from(cols);
    if bytes > limits.max_bytes {
        return Err(bad(format!(
            "more than {} bytes of pixels",
            limits.max_bytes
        )));
    }
    let pixels = read_data(&mut input, 16, bytes)?;
    Ok(IdxImages {
        count: count as usize,
        rows: rows as usize,
        cols: cols as usize,
        pixels,
    })
}

/// Decodes an IDX label file (plain or gzip) from `reader`, checking every label is below
/// `classes`; `file` names it in errors.
pub fn decode_idx_labels(
    file: &str,
    reader: impl Read,
    classes: usize,
    limits: &IdxLimits,
) -> Result<Vec<u32>, DataError> {
    let mut input = Decompressed::open(file, reader)?;
    let dims = read_header(&mut input, IDX_LABELS_MAGIC, "IDX labels")?;
    let count = dims[0];
    if count > limits.max_items || u64::from(count) > limits.max_bytes {
        return Err(DataError::IdxDimensions {
            file: file.to_owned(),
            reason: format!(
                "more than {} labels",
                u64::from(limits.max_items).min(limits.max_bytes)
            ),
            dims,
        });
    }
    let data = read_data(&mut input, 8, u64::from(count))?;
    data.iter()
        .enumerate()
        .map(|(index, &label)| {
            if usize::from(label) < classes {
                Ok(u32::from(label))
            } else {
                Err(DataError::LabelOutOfRange {
                    file: file.to_owned(),
                    position: format!("item {index}"),
                    label: u32::from(label),
                    classes,
                })
            }
        })
        .collect()
}

/// Pairs decoded images with their labels into a [`Dataset`] of shape `(1, rows, cols)`, pixels
/// scaled to `[0, 1]` by dividing by 255. The file names are for errors.
pub fn idx_dataset(
    images_file: &str,
    images: &IdxImages,
    labels_file: &str,
    labels: Vec<u32>,
    classes: usize,
) -> Result<Dataset, DataError> {
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            images: images_file.to_owned(),
            image_count: images.count,
            labels: labels_file.to_owned(),
            label_count: labels.len(),
        });
    }
    let features = images
        .pixels
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    Dataset::new(features, labels, classes, (1, images.rows, images.cols)).map_err(|source| {
        DataError::Dataset {
            file: images_file.to_owned(),
            source,
        }
    })
}

/// Reads an IDX image file and its label file (each plain or gzip) into a [`Dataset`].
pub fn read_idx_dataset(
    images_path: &Path,
    labels_path: &Path,
    classes: usize,
    limits: &IdxLimits,
) -> Result<Dataset, DataError> {
    let images_file = images_path.display().to_string();
    let labels_file = labels_path.display().to_string();
    let open = |path: &Path, name: &str| {
        File::open(path).map_err(|source| DataError::Io {
            file: name.to_owned(),
            source,
        })
    };
    let images = decode_idx_images(&images_file, open(images_path, &images_file)?, limits)?;
    let labels = decode_idx_labels(
        &labels_file,
        open(labels_path, &labels_file)?,
        classes,
        limits,
    )?;
    idx_dataset(&images_file, &images, &labels_file, labels, classes)
}

/// Reads and checks the magic number, then reads the dimensions it announces.
fn read_header(
    input: &mut Decompressed<'_>,
    magic: u32,
    kind: &'static str,
) -> Result<Vec<u32>, DataError> {
    let ndims = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims as u64;
    let head = input.read_up_to(4)?;
    let file = input.file().to_owned();
    let truncated = |found: usize| DataError::Truncated {
        file: file.clone(),
        expected: header_len,
        found: found as u64,
    };
    let Ok(head) = <[u8; 4]>::try_from(head.as_slice()) else {
        return Err(truncated(head.len()));
    };
    let found = u32::from_be_bytes(head);
    if found != magic {
        return Err(DataError::IdxMagic {
            file: input.file().to_owned(),
            found,
            expected: magic,
            kind,
        });
    }
    let raw = input.read_up_to(4 * ndims as u64)?;
    if raw.len() < 4 * ndims {
        return Err(truncated(4 + raw.len()));
    }
    Ok(raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Reads exactly `len` data bytes after a `header_len`-byte header, and checks nothing follows.
fn read_data(
    input: &mut Decompressed<'_>,
    header_len: u64,
    len: u64,
) -> Result<Vec<u8>, DataError> {
    let data = input.read_up_to(len)?;
    if (data.len() as u64) < len {
        return Err(DataError::Truncated {
            file: input.file().to_owned(),
            expected: header_len + len,
            found: header_len + data.len() as u64,
        });
    }
    if !input.read_up_to(1)?.is_empty() {
        return Err(DataError::TrailingBytes {
            file: input.file().to_owned(),
            expected: header_len + len,
        });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IDX image file of `count` images of 2 x 3 pixels, pixel value = its index mod 256.
    fn images(count: u32) -> Vec<u8> {
        let mut out = IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [count, 2, 3] {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend((0..count * 6).map(|i| i as u8));
        out
    }

    fn labels(values: &[u8]) -> Vec<u8> {
        let mut out = IDX_LABELS_MAGIC.to_be_bytes().to_vec();
        out.extend_from_slice(&(values.len() as u32).to_be_bytes());
        out.extend_from_slice(values);
        out
    }

    #[test]
    fn images_and_labels_decode_into_a_scaled_dataset() {
        let limits = IdxLimits::default();
        let imgs = decode_idx_images("i", &images(2)[..], &limits).unwrap();
        assert_eq!((imgs.count, imgs.rows, imgs.cols), (2, 2, 3));
        let labs = decode_idx_labels("l", &labels(&[7, 1])[..], 10, &limits).unwrap();
        let ds = idx_dataset("i", &imgs, "l", labs, 10).unwrap();
        assert_eq!(ds.shape(), (1, 2, 3));
        assert_eq!(ds.labels(), &[7, 1]);
        assert_eq!(ds.sample(1).unwrap()[5], 11.0 / 255.0);
    }

    #[test]
    fn wrong_magic_names_found_and_expected() {
        let err = decode_idx_images("train-images", &labels(&[1])[..], &IdxLimits::default())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "train-images: wrong magic 0x00000801, expected 0x00000803 (IDX images)"
        );
    }

    #[test]
    fn truncated_header_and_data_are_typed_errors() {
        let limits = IdxLimits::default();
        let full = images(2);
        let err = decode_idx_images("i", &full[..10], &limits).unwrap_err();
        assert!(matches!(
            err,
            DataError::Truncated {
                expected: 16,
                found: 10,
                ..
            }
        ));
        let err = decode_idx_images("i", &full[..20], &limits).unwrap_err();
        assert!(matches!(
            err,
            DataError::Truncated {
                expected: 28,
                found: 20,
                ..
            }
        ));
        let err = decode_idx_images("i", &full[..2], &limits).unwrap_err();
        assert!(matches!(err, DataError::Truncated { found: 2, .. }));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut long = labels(&[1, 2]);
        long.push(0);
        let err = decode_idx_labels("l", &long[..], 10, &IdxLimits::default()).unwrap_err();
        assert!(matches!(err, DataError::TrailingBytes { expected: 10, .. }));
    }

    #[test]
    fn absurd_dimensions_are_rejected_before_reading_data() {
        let limits = IdxLimits::default();
        let mut header = IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [u32::MAX, 28, 28] {
            header.extend_from_slice(&d.to_be_bytes());
        }
        let err = decode_idx_images("i", &header[..], &limits).unwrap_err();
        assert!(matches!(err, DataError::IdxDimensions { .. }), "{err:?}");
        let mut header = IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [5_000_000u32, 1000, 1000] {
            header.extend_from_slice(&d.to_be_bytes());
        }
        let err = decode_idx_images("i", &header[..], &limits).unwrap_err();
        assert!(err.to_string().contains("bytes of pixels"), "{err}");
    }

    #[test]
    fn label_past_classes_names_the_item() {
        let err =
            decode_idx_labels("l", &labels(&[0, 10])[..], 10, &IdxLimits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "l item 1: label 10 is out of range for 10 classes"
        );
    }

    #[test]
    fn image_and_label_counts_must_agree() {
        let imgs = decode_idx_images("i", &images(3)[..], &IdxLimits::default()).unwrap();
        let err = idx_dataset("i", &imgs, "l", vec![0, 1], 10).unwrap_err();
        assert_eq!(err.to_string(), "i holds 3 images but l holds 2 labels");
    }
}
