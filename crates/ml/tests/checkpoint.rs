//! Model files: round trips, determinism, and every way a file can be wrong, each a typed error.

use std::collections::HashMap;

use cairn_ml::checkpoint::{
    self, CheckpointError, FormatError, FORMAT_VERSION, FORMAT_VERSION_KEY, MAX_HEADER_BYTES,
    SPEC_KEY, WEIGHTS_HASH_KEY,
};
use cairn_ml::model::{Model, ModelSpec};
use cairn_ml::train::weights_hash;
use proptest::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

fn mlp() -> Model {
    let spec = ModelSpec::Mlp {
        inputs: 6,
        hidden: vec![5, 4],
        classes: 3,
    };
    Model::init(spec, 11).unwrap()
}

fn specs() -> Vec<ModelSpec> {
    vec![
        ModelSpec::Logistic {
            inputs: 7,
            classes: 3,
        },
        ModelSpec::Mlp {
            inputs: 6,
            hidden: vec![5, 4],
            classes: 3,
        },
        ModelSpec::Cnn {
            channels: 1,
            height: 8,
            width: 8,
            classes: 4,
            dropout: 0.25,
        },
    ]
}

/// A safetensors file of arbitrary tensors (name, dtype, shape, raw bytes) and metadata.
fn raw_file(
    tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)],
    metadata: HashMap<String, String>,
) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.to_string(),
                TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, &Some(metadata)).unwrap()
}

/// The tensors of `model` as (name, F32, shape, bytes), in the spec's order.
fn model_tensors(model: &Model) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    model
        .spec()
        .tensors()
        .into_iter()
        .map(|t| {
            let bytes = model.params()[t.offset..t.offset + t.len()]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            (t.name, Dtype::F32, t.shape, bytes)
        })
        .collect()
}

fn good_metadata(model: &Model) -> HashMap<String, String> {
    HashMap::from([
        (
            SPEC_KEY.to_string(),
            serde_json::to_string(model.spec()).unwrap(),
        ),
        (FORMAT_VERSION_KEY.to_string(), FORMAT_VERSION.to_string()),
        (
            WEIGHTS_HASH_KEY.to_string(),
            checkpoint::hex(&weights_hash(model.params())),
        ),
    ])
}

fn file_with(
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    metadata: HashMap<String, String>,
) -> Vec<u8> {
    let borrowed: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.as_str(), *d, s.clone(), b.clone()))
        .collect();
    raw_file(&borrowed, metadata)
}

#[test]
fn every_architecture_round_trips_bit_for_bit() {
    for spec in specs() {
        let model = Model::init(spec.clone(), 3).unwrap();
        let bytes = checkpoint::to_bytes(&model).unwrap();
        let loaded = checkpoint::from_bytes(&bytes).unwrap();
        assert_eq!(loaded.spec(), &spec);
        let same_bits = loaded
            .params()
            .iter()
            .zip(model.params())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same_bits && loaded.params().len() == model.params().len());
    }
}

#[test]
fn same_model_gives_same_bytes_and_the_safetensors_crate_reads_them() {
    let model = mlp();
    let first = checkpoint::to_bytes(&model).unwrap();
    let second = checkpoint::to_bytes(&model.clone()).unwrap();
    assert_eq!(first, second);
    let parsed = safetensors::SafeTensors::deserialize(&first).unwrap();
    let weight = parsed.tensor("fc1.weight").unwrap();
    assert_eq!(weight.shape(), &[5, 6]);
    assert_eq!(weight.dtype(), Dtype::F32);
    let first_value = f32::from_le_bytes(weight.data()[..4].try_into().unwrap());
    assert_eq!(first_value.to_bits(), model.params()[0].to_bits());
    // Tensor data starts 8-byte aligned, as the format asks.
    let header_len = u64::from_le_bytes(first[..8].try_into().unwrap());
    assert_eq!(header_len % 8, 0);
}

#[test]
fn files_written_by_the_safetensors_crate_load_too() {
    let model = mlp();
    let bytes = file_with(model_tensors(&model), good_metadata(&model));
    assert_eq!(checkpoint::from_bytes(&bytes).unwrap(), model);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = checkpoint::to_bytes(&mlp()).unwrap();
    for len in 0..bytes.len() {
        assert!(
            checkpoint::from_bytes(&bytes[..len]).is_err(),
            "a file cut to {len} bytes loaded"
        );
    }
    assert!(matches!(
        checkpoint::from_bytes(&bytes[..5]),
        Err(FormatError::Truncated(_))
    ));
    assert!(matches!(
        checkpoint::from_bytes(&bytes[..20]),
        Err(FormatError::Truncated(_))
    ));
}

#[test]
fn oversized_header_length_is_refused_before_reading() {
    let mut bytes = (MAX_HEADER_BYTES + 1).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    assert_eq!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::HeaderTooLarge {
            len: MAX_HEADER_BYTES + 1
        })
    );
    let huge = u64::MAX.to_le_bytes();
    assert!(matches!(
        checkpoint::from_bytes(&huge),
        Err(FormatError::HeaderTooLarge { .. })
    ));
}

#[test]
fn offsets_near_usize_max_are_an_error_not_an_overflow() {
    let header = format!(
        r#"{{"x":{{"dtype":"U8","shape":[{max}],"data_offsets":[0,{max}]}}}}"#,
        max = u64::MAX
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0; 8]);
    assert!(matches!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::Truncated(_))
    ));
}

#[test]
fn missing_metadata_is_named() {
    let model = mlp();
    for key in [SPEC_KEY, FORMAT_VERSION_KEY, WEIGHTS_HASH_KEY] {
        let mut metadata = good_metadata(&model);
        metadata.remove(key);
        let bytes = file_with(model_tensors(&model), metadata);
        assert_eq!(
            checkpoint::from_bytes(&bytes),
            Err(FormatError::MissingMetadata { key })
        );
    }
    let tensors = model_tensors(&model);
    let bare: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let bytes = safetensors::serialize(bare, &None).unwrap();
    assert!(matches!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::MissingMetadata { .. })
    ));
}

#[test]
fn unknown_format_version_is_refused() {
    let model = mlp();
    let mut metadata = good_metadata(&model);
    metadata.insert(FORMAT_VERSION_KEY.into(), "999".into());
    let bytes = file_with(model_tensors(&model), metadata);
    assert_eq!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::UnsupportedVersion {
            found: "999".into()
        })
    );
}

#[test]
fn malformed_or_invalid_spec_is_refused() {
    let model = mlp();
    let mut metadata = good_metadata(&model);
    metadata.insert(SPEC_KEY.into(), "{\"kind\":\"transformer\"}".into());
    let bytes = file_with(model_tensors(&model), metadata);
    assert!(matches!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::SpecJson(_))
    ));

    let mut metadata = good_metadata(&model);
    metadata.insert(
        SPEC_KEY.into(),
        r#"{"kind":"mlp","inputs":6,"hidden":[0],"classes":3}"#.into(),
    );
    let bytes = file_with(model_tensors(&model), metadata);
    assert!(matches!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::InvalidSpec(_))
    ));
}

#[test]
fn spec_larger_than_the_file_is_refused_before_allocating() {
    let model = mlp();
    let mut metadata = good_metadata(&model);
    metadata.insert(
        SPEC_KEY.into(),
        r#"{"kind":"mlp","inputs":4096,"hidden":[4096,4096],"classes":10}"#.into(),
    );
    let bytes = file_with(model_tensors(&model), metadata);
    assert!(matches!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::SpecTooLarge { .. })
    ));
}

#[test]
fn missing_extra_misshapen_and_mistyped_tensors_are_named() {
    let model = mlp();
    let good = model_tensors(&model);

    let mut missing = good.clone();
    missing.retain(|t| t.0 != "fc2.bias");
    // Keep the total size so the size check passes and the missing name is what is reported.
    missing.push(("padding".into(), Dtype::U8, vec![16], vec![0; 16]));
    let bytes = file_with(missing.clone(), good_metadata(&model));
    assert_eq!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::UnexpectedTensor {
            name: "padding".into()
        })
    );
    missing.pop();
    let mut padded = missing;
    let last = padded.len() - 1;
    assert_eq!(padded[last].0, "fc3.bias");
    padded[last].3.extend_from_slice(&[0; 16]);
    padded[last].2 = vec![3 + 4];
    let bytes = file_with(padded, good_metadata(&model));
    assert!(matches!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::MissingTensor { ref name }) if name == "fc2.bias"
    ));

    let mut extra = good.clone();
    extra.push(("fc9.weight".into(), Dtype::F32, vec![1], vec![0; 4]));
    let bytes = file_with(extra, good_metadata(&model));
    assert_eq!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::UnexpectedTensor {
            name: "fc9.weight".into()
        })
    );

    let mut transposed = good.clone();
    transposed[0].2 = vec![6, 5];
    let bytes = file_with(transposed, good_metadata(&model));
    assert_eq!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::WrongShape {
            name: "fc1.weight".into(),
            expected: vec![5, 6],
            found: vec![6, 5],
        })
    );

    let mut as_i32 = good;
    as_i32[1].1 = Dtype::I32;
    let bytes = file_with(as_i32, good_metadata(&model));
    assert_eq!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::WrongDtype {
            name: "fc1.bias".into(),
            found: "I32".into()
        })
    );
}

#[test]
fn altered_weights_fail_the_hash_check() {
    let model = mlp();
    let mut bytes = checkpoint::to_bytes(&model).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    assert!(matches!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::HashMismatch { .. })
    ));
}

#[test]
fn non_finite_weights_are_refused_on_load_and_on_save() {
    let model = mlp();
    let mut tensors = model_tensors(&model);
    tensors[2].3[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    let bytes = file_with(tensors, good_metadata(&model));
    assert!(matches!(
        checkpoint::from_bytes(&bytes),
        Err(FormatError::NonFinite { ref name, index: 2, .. }) if name == "fc2.weight"
    ));

    let mut broken = model.clone();
    broken.params_mut()[0] = f32::INFINITY;
    assert!(matches!(
        checkpoint::to_bytes(&broken),
        Err(FormatError::NonFinite { ref name, index: 0, .. }) if name == "fc1.weight"
    ));
}

#[test]
fn save_replaces_the_file_atomically_and_load_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"an older, different file").unwrap();
    let model = mlp();
    checkpoint::save(&model, &path).unwrap();
    assert_eq!(checkpoint::load(&path).unwrap(), model);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("model.safetensors")]);
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent.safetensors");
    let err = checkpoint::load(&absent).unwrap_err();
    assert!(matches!(err, CheckpointError::Read { .. }));
    assert!(err.to_string().contains("absent.safetensors"));

    let corrupt = dir.path().join("corrupt.safetensors");
    std::fs::write(&corrupt, b"not a model").unwrap();
    let err = checkpoint::load(&corrupt).unwrap_err();
    assert!(matches!(err, CheckpointError::Invalid { .. }));
    let message = err.to_string();
    assert!(message.contains("corrupt.safetensors") && message.contains("invalid"));
}

#[test]
fn save_into_a_missing_directory_is_a_write_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/model.safetensors");
    let err = checkpoint::save(&mlp(), &path).unwrap_err();
    assert!(matches!(err, CheckpointError::Write { .. }));
    assert!(err.to_string().contains("model.safetensors"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn corrupted_bytes_never_panic_and_never_load_altered_weights(
        position in 0usize..4096,
        value in any::<u8>(),
    ) {
        let model = mlp();
        let mut bytes = checkpoint::to_bytes(&model).unwrap();
        let position = position % bytes.len();
        let changed = bytes[position] != value;
        bytes[position] = value;
        if let Ok(loaded) = checkpoint::from_bytes(&bytes) {
            // Only a change the format ignores (such as header padding) may still load, and then
            // the weights must be exactly the ones saved.
            prop_assert!(!changed || loaded == model);
        }
    }
}
