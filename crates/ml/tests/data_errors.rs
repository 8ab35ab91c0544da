//! Corrupt, truncated and inconsistent data files give typed errors that name the file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cairn_ml::data::{
    find_data_dir, read_csv, read_idx_dataset, BuiltinDataset, DataError, IdxLimits,
    IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

fn shipped(name: &str) -> Vec<u8> {
    let dir = find_data_dir(None, Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut text = Vec::new();
    GzDecoder::new(std::fs::File::open(dir.join(name)).unwrap())
        .read_to_end(&mut text)
        .unwrap();
    text
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The digits file with line `line` (1-based) passed through `edit`.
fn digits_with_line(line: usize, edit: impl Fn(&str) -> String) -> Vec<u8> {
    let text = String::from_utf8(shipped("digits.csv.gz")).unwrap();
    let mut out = String::new();
    for (i, l) in text.lines().enumerate() {
        out.push_str(&if i + 1 == line { edit(l) } else { l.to_owned() });
        out.push('\n');
    }
    out.into_bytes()
}

fn digits_format() -> cairn_ml::data::CsvFormat {
    BuiltinDataset::Digits.csv_format().unwrap()
}

#[test]
fn missing_value_on_line_17_names_file_line_and_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let edited = digits_with_line(17, |l| l.split_once(',').unwrap().1.to_owned());
    let path = write(tmp.path(), "digits.csv.gz", &gzip(&edited));
    let err = read_csv(&path, &digits_format()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{} line 17: expected 65 values, found 64", path.display())
    );
}

#[test]
fn plain_csv_reads_like_gzip_and_label_out_of_range_names_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = write(tmp.path(), "digits.csv", &shipped("digits.csv.gz"));
    assert_eq!(read_csv(&plain, &digits_format()).unwrap().len(), 1797);
    let edited = digits_with_line(3, |l| format!("{},10", l.rsplit_once(',').unwrap().0));
    let path = write(tmp.path(), "bad-label.csv", &edited);
    let err = read_csv(&path, &digits_format()).unwrap_err();
    assert!(matches!(err, DataError::LabelOutOfRange { label: 10, .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{} line 3: label 10 is out of range for 10 classes",
            path.display()
        )
    );
}

#[test]
fn pixel_above_the_maximum_is_a_feature_error() {
    let tmp = tempfile::tempdir().unwrap();
    let edited = digits_with_line(5, |l| format!("17,{}", l.split_once(',').unwrap().1));
    let path = write(tmp.path(), "bright.csv", &edited);
    let err = read_csv(&path, &digits_format()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CsvFeature {
                line: 5,
                column: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("bright.csv line 5 column 1"));
}

#[test]
fn truncated_gzip_csv_is_a_gzip_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = std::fs::read(
        find_data_dir(None, Path::new(env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .join("mnist_5k.csv.gz"),
    )
    .unwrap();
    let path = write(tmp.path(), "mnist_5k.csv.gz", &whole[..whole.len() / 2]);
    let err = read_csv(&path, &BuiltinDataset::Mnist5k.csv_format().unwrap()).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&path.display().to_string()));
}

#[test]
fn missing_csv_file_is_an_io_error_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let err = BuiltinDataset::Digits.load(tmp.path(), 0).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(
        err.to_string().contains("digits.csv.gz: cannot read"),
        "{err}"
    );
}

/// An IDX pair of `count` 2x2 images and labels `0, 1, 2, ...` (mod 10).
fn idx_pair(count: u32) -> (Vec<u8>, Vec<u8>) {
    let mut images = IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [count, 2, 2] {
        images.extend_from_slice(&d.to_be_bytes());
    }
    images.extend((0..count * 4).map(|i| (i * 7) as u8));
    let mut labels = IDX_LABELS_MAGIC.to_be_bytes().to_vec();
    labels.extend_from_slice(&count.to_be_bytes());
    labels.extend((0..count).map(|i| (i % 10) as u8));
    (images, labels)
}

fn read_pair(
    dir: &Path,
    images: &[u8],
    labels: &[u8],
) -> (Result<(), DataError>, PathBuf, PathBuf) {
    let i = write(dir, "train-images-idx3-ubyte.gz", &gzip(images));
    let l = write(dir, "train-labels-idx1-ubyte", labels);
    let result = read_idx_dataset(&i, &l, 10, &IdxLimits::default()).map(|ds| {
        assert_eq!(ds.shape(), (1, 2, 2));
    });
    (result, i, l)
}

#[test]
fn idx_pair_reads_gzip_images_with_plain_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let (images, labels) = idx_pair(25);
    let (result, _, _) = read_pair(tmp.path(), &images, &labels);
    result.unwrap();
}

#[test]
fn idx_wrong_magic_names_the_file_and_both_magics() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut images, labels) = idx_pair(5);
    images[3] = 0x02;
    let (result, path, _) = read_pair(tmp.path(), &images, &labels);
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: wrong magic 0x00000802, expected 0x00000803 (IDX images)",
            path.display()
        )
    );
}

#[test]
fn idx_truncated_images_say_how_much_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let (images, labels) = idx_pair(5);
    let (result, path, _) = read_pair(tmp.path(), &images[..30], &labels);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 36,
                found: 30,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(&path.display().to_string()));
}

#[test]
fn idx_label_out_of_range_names_the_label_file_and_item() {
    let tmp = tempfile::tempdir().unwrap();
    let (images, mut labels) = idx_pair(5);
    labels[8 + 3] = 12;
    let (result, _, path) = read_pair(tmp.path(), &images, &labels);
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "{} item 3: label 12 is out of range for 10 classes",
            path.display()
        )
    );
}

#[test]
fn idx_image_and_label_counts_must_match() {
    let tmp = tempfile::tempdir().unwrap();
    let (images, _) = idx_pair(5);
    let (_, labels) = idx_pair(4);
    let (result, _, _) = read_pair(tmp.path(), &images, &labels);
    assert!(matches!(
        result.unwrap_err(),
        DataError::CountMismatch {
            image_count: 5,
            label_count: 4,
            ..
        }
    ));
}

#[test]
fn idx_absurd_dimensions_are_refused_without_reading_data() {
    let tmp = tempfile::tempdir().unwrap();
    let mut images = IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [60_000u32, 100_000, 100_000] {
        images.extend_from_slice(&d.to_be_bytes());
    }
    let (_, labels) = idx_pair(60_000);
    let (result, _, _) = read_pair(tmp.path(), &images, &labels);
    let err = result.unwrap_err();
    assert!(matches!(err, DataError::IdxDimensions { .. }), "{err:?}");
    assert!(err.to_string().contains("[60000, 100000, 100000]"), "{err}");
}
