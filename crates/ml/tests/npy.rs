//! `.npy` reading and writing: round trips, NumPy's own bytes, and refusal of malformed files.

use cairn_ml::npy::{decode, encode, read, write, NpyArray, NpyError, MAX_HEADER_LEN};
use proptest::prelude::*;

/// Builds a `.npy` file by hand, as NumPy would, from a header text and raw data.
fn handmade(major: u8, header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn decodes_bytes_written_by_numpy_save() {
    // `np.save(f, np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32))` with NumPy 1.26.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    let padded = format!("{header:<117}\n");
    let bytes = handmade(1, &padded, &f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    let array = decode(&bytes).unwrap();
    assert_eq!(array.shape, vec![2, 3]);
    assert_eq!(array.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // Our encoder writes exactly the same bytes.
    assert_eq!(encode(&array).unwrap(), bytes);
}

#[test]
fn decodes_version_2_and_3_headers() {
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
    for major in [2, 3] {
        let array = decode(&handmade(major, header, &f32_bytes(&[0.5, -1.5]))).unwrap();
        assert_eq!(array.data, vec![0.5, -1.5]);
    }
}

#[test]
fn float64_input_is_rounded_to_nearest_float32() {
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n";
    let bytes =
        |values: [f64; 3]| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
    let array = decode(&handmade(1, header, &bytes([0.1, 1e30, -2.0]))).unwrap();
    assert_eq!(array.data, vec![0.1f32, 1e30f32, -2.0]);
    // A finite float64 beyond float32's range is its own error, with its index.
    let error = decode(&handmade(1, header, &bytes([0.1, 1e300, -2.0]))).unwrap_err();
    assert!(
        matches!(error, NpyError::OutOfF32Range { index: 1, .. }),
        "{error}"
    );
}

/// A predicate on the error a header must produce.
type ErrorCheck = fn(&NpyError) -> bool;

#[test]
fn refuses_unsupported_dtypes_fortran_order_and_ranks() {
    let cases: [(&str, ErrorCheck); 5] = [
        (
            "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
            |e| matches!(e, NpyError::UnsupportedDtype(d) if d == ">f4"),
        ),
        (
            "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }",
            |e| matches!(e, NpyError::UnsupportedDtype(_)),
        ),
        (
            "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
            |e| matches!(e, NpyError::FortranOrder),
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1), }",
            |e| matches!(e, NpyError::UnsupportedRank(3)),
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
            |e| matches!(e, NpyError::UnsupportedRank(0)),
        ),
    ];
    for (header, check) in cases {
        let error = decode(&handmade(1, header, &f32_bytes(&[1.0]))).unwrap_err();
        assert!(check(&error), "{header}: {error}");
    }
}

#[test]
fn refuses_data_shorter_or_longer_than_the_shape() {
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n";
    for values in [&[1.0f32, 2.0, 3.0][..], &[1.0, 2.0, 3.0, 4.0, 5.0]] {
        let error = decode(&handmade(1, header, &f32_bytes(values))).unwrap_err();
        assert!(
            matches!(error, NpyError::DataLength { expected: 16, .. }),
            "{error}"
        );
    }
}

#[test]
fn refuses_shapes_whose_product_overflows() {
    let header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}\n",
        usize::MAX / 2,
        3
    );
    let error = decode(&handmade(1, &header, &[])).unwrap_err();
    assert!(matches!(error, NpyError::ShapeOverflow(_)), "{error}");
}

#[test]
fn refuses_headers_over_the_length_cap() {
    let header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }}{}\n",
        " ".repeat(MAX_HEADER_LEN)
    );
    let error = decode(&handmade(2, &header, &f32_bytes(&[1.0]))).unwrap_err();
    assert!(matches!(error, NpyError::HeaderTooLong(_)), "{error}");
}

#[test]
fn refuses_malformed_headers() {
    for header in [
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} trailing",
        "['descr', '<f4']",
    ] {
        let error = decode(&handmade(1, header, &f32_bytes(&[1.0]))).unwrap_err();
        assert!(
            matches!(error, NpyError::MalformedHeader(_)),
            "{header}: {error}"
        );
    }
}

#[test]
fn refuses_bad_magic_versions_and_truncation() {
    assert!(matches!(decode(b"PK\x03\x04zip"), Err(NpyError::BadMagic)));
    assert!(matches!(decode(b"\x93NUM"), Err(NpyError::Truncated(_))));
    assert!(matches!(
        decode(b"\x93NUMPY\x04\x00\x00\x00"),
        Err(NpyError::UnsupportedVersion { major: 4, minor: 0 })
    ));
    assert!(matches!(
        decode(b"\x93NUMPY\x01\x00\x50"),
        Err(NpyError::Truncated(_))
    ));
    assert!(matches!(
        decode(b"\x93NUMPY\x01\x00\x50\x00{'de"),
        Err(NpyError::Truncated(_))
    ));
}

#[test]
fn matrix_constructor_checks_the_length() {
    assert!(NpyArray::matrix(2, 3, vec![0.0; 6]).is_ok());
    assert!(matches!(
        NpyArray::matrix(2, 3, vec![0.0; 5]),
        Err(NpyError::DataLength { .. })
    ));
}

#[test]
fn file_round_trip_and_missing_file_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let array = NpyArray::matrix(2, 2, vec![1.0, f32::NAN, -0.0, 3.5]).unwrap();
    write(&path, &array).unwrap();
    let back = read(&path).unwrap();
    assert_eq!(back.shape, array.shape);
    let bits = |a: &NpyArray| a.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back), bits(&array));
    let missing = read(&dir.path().join("missing.npy")).unwrap_err();
    assert!(matches!(missing, NpyError::Io { .. }));
    assert!(missing.to_string().contains("missing.npy"));
}

proptest! {
    #[test]
    fn decode_of_encode_is_identity_bit_for_bit(
        rows in 0usize..6,
        cols in 0usize..6,
        two_d in any::<bool>(),
        seed_bits in proptest::collection::vec(any::<u32>(), 36),
    ) {
        let count = if two_d { rows * cols } else { rows };
        let data: Vec<f32> = seed_bits[..count].iter().map(|b| f32::from_bits(*b)).collect();
        let array = if two_d {
            NpyArray::matrix(rows, cols, data).unwrap()
        } else {
            NpyArray::vector(data)
        };
        let back = decode(&encode(&array).unwrap()).unwrap();
        prop_assert_eq!(&back.shape, &array.shape);
        let bits = |a: &NpyArray| a.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&back), bits(&array));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
        let mut prefixed = b"\x93NUMPY\x01\x00".to_vec();
        prefixed.extend_from_slice(&bytes);
        let outcome = decode(&prefixed);
        // A decoded array is always internally consistent.
        if let Ok(array) = outcome {
            prop_assert_eq!(array.shape.iter().product::<usize>(), array.data.len());
        }
    }

    #[test]
    fn mutated_valid_files_never_panic(
        flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..8),
    ) {
        let mut bytes = encode(&NpyArray::matrix(3, 4, vec![1.5; 12]).unwrap()).unwrap();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        if let Ok(array) = decode(&bytes) {
            prop_assert_eq!(array.shape.iter().product::<usize>(), array.data.len());
        }
    }
}
