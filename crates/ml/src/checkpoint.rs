//! Model files: a [`Model`] saved as safetensors, loadable by PyTorch, NumPy and Cairn alike.
//!
//! A model file holds one F32 tensor per parameter tensor of the model, under PyTorch's names and
//! shapes (`fc1.weight` is `[out, in]`), and three metadata entries: the model's [`ModelSpec`] as
//! JSON ([`SPEC_KEY`]), the format version ([`FORMAT_VERSION_KEY`]) and the blake3 hash of the
//! weights ([`WEIGHTS_HASH_KEY`]), which [`from_bytes`] recomputes and checks.
//!
//! Why the header is written here rather than by `safetensors::serialize`: that function takes the
//! metadata as a `HashMap`, so its key order, and with it the file's bytes and content hash, would
//! change from run to run. Model files are blobs addressed by their blake3 hash, so the same model
//! must give the same bytes; we write the (tiny) header ourselves with sorted keys and let the
//! `safetensors` crate parse it back, which checks that we follow the format.
//!
//! Reading is defensive: the header length and the file size are bounded before anything is
//! allocated, the tensor offsets are checked against the file before the `safetensors` crate sees
//! them, and every mismatch with the spec is a [`FormatError`], never a panic.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::Serialize;
use thiserror::Error;

use crate::model::{Model, ModelSpec};
use crate::train::weights_hash;

/// Metadata key holding the model's [`ModelSpec`] as JSON.
pub const SPEC_KEY: &str = "cairn.spec";
/// Metadata key holding the format version ([`FORMAT_VERSION`]).
pub const FORMAT_VERSION_KEY: &str = "cairn.format_version";
/// Metadata key holding the lowercase hex blake3 hash of the weights (see
/// [`crate::train::weights_hash`]).
pub const WEIGHTS_HASH_KEY: &str = "cairn.weights_blake3";
/// Metadata key PyTorch tooling reads to know the tensors are PyTorch-laid-out (`"pt"`).
pub const TORCH_FORMAT_KEY: &str = "format";
/// The version of the model-file layout this code writes and reads.
pub const FORMAT_VERSION: &str = "1";
/// Largest header accepted, in bytes. Ours are well under 4 KiB; the bound keeps a corrupt length
/// field from making us allocate or parse megabytes of JSON.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;
/// Largest model file accepted, in bytes (1 GiB: 256 M parameters).
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// Largest number of tensors accepted in a header.
pub const MAX_TENSORS: usize = 1024;

/// What is wrong with the bytes of a model file (see [`from_bytes`] and [`to_bytes`]).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum FormatError {
    /// The bytes end before the 8-byte header length, the header, or the tensor data.
    #[error("the file is truncated: {0}")]
    Truncated(String),
    /// The header length field exceeds [`MAX_HEADER_BYTES`].
    #[error("the header claims {len} bytes, above the limit of {MAX_HEADER_BYTES}")]
    HeaderTooLarge {
        /// Header length read from the file.
        len: u64,
    },
    /// The header is not the JSON object safetensors defines.
    #[error("the header is not valid safetensors JSON: {0}")]
    Header(String),
    /// More tensors than [`MAX_TENSORS`].
    #[error("the header lists {count} tensors, above the limit of {MAX_TENSORS}")]
    TooManyTensors {
        /// Number of tensors listed.
        count: usize,
    },
    /// The `safetensors` crate rejected the file.
    #[error("not a valid safetensors file: {0}")]
    Safetensors(String),
    /// A required metadata entry is absent (the file was not written by Cairn).
    #[error("metadata entry `{key}` is missing (was this file written by `cairn train --save`?)")]
    MissingMetadata {
        /// The missing key.
        key: &'static str,
    },
    /// The file was written in a layout version this code does not read.
    #[error(
        "format version `{found}` is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion {
        /// The version found in the file.
        found: String,
    },
    /// The spec metadata is not a JSON [`ModelSpec`].
    #[error("metadata `{SPEC_KEY}` is not a model spec: {0}")]
    SpecJson(String),
    /// The spec parses but describes no valid model.
    #[error("the model spec is invalid: {0}")]
    InvalidSpec(String),
    /// The spec's parameter count exceeds what the file could hold.
    #[error("the model spec needs {needed} parameters but the file holds only {available}")]
    SpecTooLarge {
        /// Parameters the spec needs.
        needed: usize,
        /// F32 values the tensor data can hold.
        available: usize,
    },
    /// A tensor the spec needs is absent.
    #[error("tensor `{name}` is missing")]
    MissingTensor {
        /// Name of the missing tensor.
        name: String,
    },
    /// The file holds a tensor the spec does not have.
    #[error("tensor `{name}` is not part of the model spec")]
    UnexpectedTensor {
        /// Name of the extra tensor.
        name: String,
    },
    /// A tensor has another shape than the spec says.
    #[error("tensor `{name}` has shape {found:?}, the spec needs {expected:?}")]
    WrongShape {
        /// Tensor name.
        name: String,
        /// Shape the spec needs.
        expected: Vec<usize>,
        /// Shape found in the file.
        found: Vec<usize>,
    },
    /// A tensor is not F32.
    #[error("tensor `{name}` has dtype {found}, only F32 is supported")]
    WrongDtype {
        /// Tensor name.
        name: String,
        /// Dtype found in the file.
        found: String,
    },
    /// A weight is NaN or infinite.
    #[error("tensor `{name}` holds a non-finite value ({value}) at flat index {index}")]
    NonFinite {
        /// Tensor name.
        name: String,
        /// Index within the tensor, row-major.
        index: usize,
        /// The value found.
        value: f32,
    },
    /// The weights do not hash to the recorded hash: the data was altered or corrupted.
    #[error("weights hash {found} does not match the recorded {expected}: the data is corrupt")]
    HashMismatch {
        /// Hash recorded in the metadata.
        expected: String,
        /// Hash of the weights read.
        found: String,
    },
    /// The model rejected the spec and weights (should not happen once the checks above pass).
    #[error("the model rejected the weights: {0}")]
    Model(String),
}

/// Errors from saving or loading a model file: which file, and what went wrong.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// The file could not be read.
    #[error("cannot read model file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file (or its temporary sibling) could not be written or renamed into place.
    #[error("cannot write model file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("model file {} is {size} bytes, above the limit of {MAX_FILE_BYTES}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file's content is not a valid Cairn model file.
    #[error("model file {} is invalid: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        problem: FormatError,
    },
}

/// One entry of the safetensors header: either the metadata map or a tensor's description.
#[derive(Serialize)]
#[serde(untagged)]
enum HeaderEntry<'a> {
    Metadata(BTreeMap<&'static str, String>),
    Tensor {
        dtype: &'static str,
        shape: &'a [usize],
        data_offsets: [usize; 2],
    },
}

/// Lowercase hex of a 32-byte hash.
pub fn hex(hash: &[u8; 32]) -> String {
    blake3::Hash::from(*hash).to_hex().to_string()
}

/// Encodes `model` as safetensors bytes; the same model always gives the same bytes.
///
/// Fails only if a weight is not finite (such a file could not be loaded back).
pub fn to_bytes(model: &Model) -> Result<Vec<u8>, FormatError> {
    let spec = model.spec();
    let params = model.params();
    let mut tensors = spec.tensors();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    for tensor in &tensors {
        let len = tensor.shape.iter().product::<usize>();
        check_finite(&tensor.name, &params[tensor.offset..tensor.offset + len])?;
    }
    let spec_json =
        serde_json::to_string(spec).map_err(|e| FormatError::SpecJson(e.to_string()))?;
    let metadata = BTreeMap::from([
        (SPEC_KEY, spec_json),
        (FORMAT_VERSION_KEY, FORMAT_VERSION.to_string()),
        (WEIGHTS_HASH_KEY, hex(&weights_hash(params))),
        (TORCH_FORMAT_KEY, "pt".to_string()),
    ]);
    let mut header = BTreeMap::new();
    header.insert("__metadata__", HeaderEntry::Metadata(metadata));
    let mut start = 0;
    for tensor in &tensors {
        let end = start + 4 * tensor.shape.iter().product::<usize>();
        header.insert(
            tensor.name.as_str(),
            HeaderEntry::Tensor {
                dtype: "F32",
                shape: &tensor.shape,
                data_offsets: [start, end],
            },
        );
        start = end;
    }
    let mut header = serde_json::to_vec(&header).map_err(|e| FormatError::Header(e.to_string()))?;
    // The format pads the header with spaces so the tensor data starts 8-byte aligned.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut bytes = Vec::with_capacity(8 + header.len() + start);
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header);
    for tensor in &tensors {
        let len = tensor.shape.iter().product::<usize>();
        for value in &params[tensor.offset..tensor.offset + len] {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    Ok(bytes)
}

/// Decodes a model from safetensors bytes written by [`to_bytes`], checking everything: the
/// header's bounds, the metadata, the spec, each tensor's name, dtype and shape, that every weight
/// is finite, and that the weights hash to the recorded hash.
pub fn from_bytes(bytes: &[u8]) -> Result<Model, FormatError> {
    precheck_header(bytes)?;
    let (header_len, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| FormatError::Safetensors(e.to_string()))?;
    let data = bytes
        .get(8 + header_len..)
        .ok_or_else(|| FormatError::Truncated("the header runs past the end".into()))?;
    let empty = Default::default();
    let metadata = header.metadata().as_ref().unwrap_or(&empty);
    let entry = |key: &'static str| {
        metadata
            .get(key)
            .ok_or(FormatError::MissingMetadata { key })
    };
    let version = entry(FORMAT_VERSION_KEY)?;
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion {
            found: version.chars().take(64).collect(),
        });
    }
    let spec: ModelSpec =
        serde_json::from_str(entry(SPEC_KEY)?).map_err(|e| FormatError::SpecJson(e.to_string()))?;
    let expected_hash = entry(WEIGHTS_HASH_KEY)?;
    spec.validate()
        .map_err(|e| FormatError::InvalidSpec(e.to_string()))?;
    // A valid spec can still be huge; refuse before allocating more than the file could fill.
    let available = data.len() / 4;
    let needed = spec.param_count();
    if needed > available {
        return Err(FormatError::SpecTooLarge { needed, available });
    }
    let wanted = spec.tensors();
    let wanted_names: BTreeSet<&str> = wanted.iter().map(|t| t.name.as_str()).collect();
    let found = header.tensors();
    let found_names: BTreeSet<&str> = found.keys().map(String::as_str).collect();
    if let Some(name) = found_names.difference(&wanted_names).next() {
        return Err(FormatError::UnexpectedTensor {
            name: name.chars().take(256).collect(),
        });
    }
    let mut params = vec![0.0f32; needed];
    for tensor in &wanted {
        let info = found
            .get(&tensor.name)
            .ok_or_else(|| FormatError::MissingTensor {
                name: tensor.name.clone(),
            })?;
        if info.dtype != Dtype::F32 {
            return Err(FormatError::WrongDtype {
                name: tensor.name.clone(),
                found: format!("{:?}", info.dtype),
            });
        }
        if info.shape != tensor.shape {
            return Err(FormatError::WrongShape {
                name: tensor.name.clone(),
                expected: tensor.shape.clone(),
                found: info.shape.clone(),
            });
        }
        // read_metadata checked that the offsets tile the data and match shape and dtype.
        let (start, end) = info.data_offsets;
        let raw = data.get(start..end).ok_or_else(|| {
            FormatError::Truncated(format!(
                "tensor `{}` lies past the end of the data",
                tensor.name
            ))
        })?;
        let len = tensor.shape.iter().product::<usize>();
        let slot = params
            .get_mut(tensor.offset..tensor.offset + len)
            .ok_or_else(|| {
                FormatError::InvalidSpec(format!(
                    "tensor `{}` lies outside the parameters",
                    tensor.name
                ))
            })?;
        for (value, chunk) in slot.iter_mut().zip(raw.chunks_exact(4)) {
            *value = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        check_finite(&tensor.name, slot)?;
    }
    let found_hash = hex(&weights_hash(&params));
    if &found_hash != expected_hash {
        return Err(FormatError::HashMismatch {
            expected: expected_hash.chars().take(64).collect(),
            found: found_hash,
        });
    }
    Model::new(spec, params).map_err(|e| FormatError::Model(e.to_string()))
}

/// Saves `model` to `path` atomically: it writes a temporary file beside `path`, syncs it, then
/// renames it over `path`, so a crash leaves either the old file or the new one, never half of one.
pub fn save(model: &Model, path: &Path) -> Result<(), CheckpointError> {
    let bytes = to_bytes(model).map_err(|problem| CheckpointError::Invalid {
        path: path.to_path_buf(),
        problem,
    })?;
    let write_error = |source| CheckpointError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        write_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = (|| {
        // A leftover of this name (a killed run with the same pid) is removed, and the file is
        // created new: `File::create` would follow a symbolic link planted at the name.
        match fs::remove_file(&temp) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        let mut file = fs::File::create_new(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(source) = written {
        // Best effort: the temporary file is ours and useless now; the original error matters.
        let _ = fs::remove_file(&temp);
        return Err(write_error(source));
    }
    Ok(())
}

/// Loads and checks the model file at `path` (see [`from_bytes`] for what is checked).
pub fn load(path: &Path) -> Result<Model, CheckpointError> {
    let read_error = |source| CheckpointError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_FILE_BYTES {
        return Err(CheckpointError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let bytes = fs::read(path).map_err(read_error)?;
    from_bytes(&bytes).map_err(|problem| CheckpointError::Invalid {
        path: path.to_path_buf(),
        problem,
    })
}

fn check_finite(name: &str, values: &[f32]) -> Result<(), FormatError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(FormatError::NonFinite {
            name: name.to_string(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Checks the header's length and every tensor's data offsets against the file before the
/// `safetensors` crate parses it: 0.4 adds the last offset to the header length unchecked, which
/// overflows (a panic with overflow checks on) on an offset near `usize::MAX`.
fn precheck_header(bytes: &[u8]) -> Result<(), FormatError> {
    let len_field: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            FormatError::Truncated(format!(
                "{} bytes, less than the 8-byte header length",
                bytes.len()
            ))
        })?;
    let header_len = u64::from_le_bytes(len_field);
    if header_len > MAX_HEADER_BYTES {
        return Err(FormatError::HeaderTooLarge { len: header_len });
    }
    // Bounded by MAX_HEADER_BYTES above, so the conversion and the addition cannot overflow.
    let header_end = 8 + header_len as usize;
    let header = bytes.get(8..header_end).ok_or_else(|| {
        FormatError::Truncated(format!(
            "header of {header_len} bytes but only {} bytes follow the length",
            bytes.len() - 8
        ))
    })?;
    let data_len = (bytes.len() - header_end) as u64;
    let entries: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| FormatError::Header(e.to_string()))?;
    let tensors = entries.len() - usize::from(entries.contains_key("__metadata__"));
    if tensors > MAX_TENSORS {
        return Err(FormatError::TooManyTensors { count: tensors });
    }
    for (name, entry) in entries.iter().filter(|(name, _)| *name != "__metadata__") {
        let name: String = name.chars().take(256).collect();
        let offsets = entry.get("data_offsets").and_then(|o| o.as_array());
        let bound = |i: usize| offsets.and_then(|o| o.get(i)).and_then(|v| v.as_u64());
        match (bound(0), bound(1)) {
            (Some(start), Some(end)) if start <= end && end <= data_len => {}
            (Some(start), Some(end)) => {
                return Err(FormatError::Truncated(format!(
                    "tensor `{name}` spans bytes {start}..{end} of {data_len} bytes of data"
                )))
            }
            _ => {
                return Err(FormatError::Header(format!(
                    "tensor `{name}` has no valid data_offsets"
                )))
            }
        }
    }
    Ok(())
}
