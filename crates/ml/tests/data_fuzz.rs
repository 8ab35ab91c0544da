//! CI's short version of the `csv_reader` and `idx_reader` fuzzers: arbitrary bytes, plain or
//! gzip-wrapped, and mutations of valid files never make a decoder panic.

use std::io::Write;

use cairn_ml::data::{
    decode_csv, decode_idx_images, decode_idx_labels, CsvFormat, DataError, IdxLimits,
    IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
};
use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn small_format() -> CsvFormat {
    let mut format = CsvFormat::new((1, 1, 3), 4, 9.0);
    format.max_bytes = 1 << 16;
    format
}

fn small_limits() -> IdxLimits {
    IdxLimits {
        max_items: 1000,
        max_side: 64,
        max_bytes: 1 << 16,
    }
}

/// Runs every decoder on `bytes`; each must return, and a success must be self-consistent.
fn decode_all(bytes: &[u8]) {
    if let Ok(ds) = decode_csv("fuzz.csv", bytes, &small_format()) {
        assert_eq!(ds.features().len(), ds.len() * 3);
        assert!(ds.features().iter().all(|x| (0.0..=1.0).contains(x)));
        assert!(ds.labels().iter().all(|&l| l < 4));
    }
    if let Ok(images) = decode_idx_images("fuzz-images", bytes, &small_limits()) {
        assert_eq!(
            images.pixels.len(),
            images.count * images.rows * images.cols
        );
    }
    if let Ok(labels) = decode_idx_labels("fuzz-labels", bytes, 10, &small_limits()) {
        assert!(labels.iter().all(|&l| l < 10));
    }
}

/// Bytes biased toward what the decoders look for: digits, commas, newlines, IDX magics.
fn csv_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b'0'),
            Just(b'9'),
            Just(b','),
            Just(b'\n'),
            Just(b'.'),
            Just(b'-'),
            any::<u8>()
        ],
        0..200,
    )
}

fn idx_like() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(IDX_IMAGES_MAGIC), Just(IDX_LABELS_MAGIC), any::<u32>()],
        prop::collection::vec(prop_oneof![0u32..8, any::<u32>()], 0..4),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(magic, dims, data)| {
            let mut out = magic.to_be_bytes().to_vec();
            for d in dims {
                out.extend_from_slice(&d.to_be_bytes());
            }
            out.extend(data);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        decode_all(&bytes);
        decode_all(&gzip(&bytes));
    }

    #[test]
    fn decoders_never_panic_on_csv_like_bytes(bytes in csv_like()) {
        decode_all(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_idx_like_bytes(bytes in idx_like(), gzipped in any::<bool>()) {
        if gzipped {
            decode_all(&gzip(&bytes));
        } else {
            decode_all(&bytes);
        }
    }

    #[test]
    fn cutting_a_valid_gzip_file_short_is_an_error(cut in 0usize..40) {
        let text = b"1,2,3,0\n4,5,6,1\n7,8,9,2\n";
        let whole = gzip(text);
        let cut = cut.min(whole.len() - 1);
        prop_assert!(decode_csv("t.csv.gz", &whole[..cut], &small_format()).is_err());
    }
}

#[test]
fn gzip_bomb_is_refused_at_the_size_limit() {
    let bomb = gzip(&vec![b'0'; 1 << 20]);
    let err = decode_csv("bomb.csv.gz", &bomb[..], &small_format()).unwrap_err();
    assert!(
        matches!(err, DataError::TooLarge { limit: 65536, .. }),
        "{err:?}"
    );
}
