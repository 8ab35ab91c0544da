//! Interoperability: a Cairn model file opens in Python with `safetensors.numpy`, with PyTorch's
//! tensor names and shapes, the exact weights, and the spec in the metadata.
//!
//! Skipped (with a message saying why) when `python3`, `numpy` or `safetensors` is not installed;
//! CI installs them with `pip install safetensors numpy`.

use std::process::Command;

use cairn_ml::checkpoint;
use cairn_ml::model::{Model, ModelSpec};

/// Loads the file given as argv[1] and prints what the Rust side checks, one fact per line.
const PYTHON_CHECK: &str = r#"
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

tensors = load_file(sys.argv[1])
with safe_open(sys.argv[1], framework="np") as f:
    meta = f.metadata()
for name in sorted(tensors):
    t = tensors[name]
    print("tensor", name, t.dtype, ",".join(str(d) for d in t.shape))
w = tensors["conv1.weight"]
print("value conv1.weight[0,0,0,0]", np.float32(w[0, 0, 0, 0]).view(np.uint32))
print("value conv1.weight[31,0,2,1]", np.float32(w[31, 0, 2, 1]).view(np.uint32))
b = tensors["fc2.bias"]
print("value fc2.bias[9]", np.float32(b[9]).view(np.uint32))
spec = json.loads(meta["cairn.spec"])
print("spec", spec["kind"], spec["height"], spec["width"], spec["classes"])
print("format", meta["format"], meta["cairn.format_version"])
"#;

fn python_has_modules() -> Result<(), String> {
    let output = Command::new("python3")
        .args(["-c", "import numpy, safetensors.numpy"])
        .output()
        .map_err(|e| format!("python3 cannot be run ({e})"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "python3 lacks numpy or safetensors ({})",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[test]
fn python_safetensors_reads_names_shapes_values_and_spec() {
    if let Err(why) = python_has_modules() {
        eprintln!(
            "SKIPPED python_safetensors_reads_names_shapes_values_and_spec: {why}; \
             run `pip install safetensors numpy` to enable this test"
        );
        return;
    }
    let spec = ModelSpec::Cnn {
        channels: 1,
        height: 8,
        width: 8,
        classes: 10,
        dropout: 0.25,
    };
    let model = Model::init(spec.clone(), 5).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cnn.safetensors");
    checkpoint::save(&model, &path).unwrap();

    let output = Command::new("python3")
        .args(["-c", PYTHON_CHECK])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut expected: Vec<String> = spec
        .tensors()
        .iter()
        .map(|t| {
            let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
            format!("tensor {} float32 {}", t.name, shape.join(","))
        })
        .collect();
    expected.sort();
    let tensors = spec.tensors();
    let conv1 = &tensors[0];
    let fc2_bias = tensors.iter().find(|t| t.name == "fc2.bias").unwrap();
    let bits = |index: usize| model.params()[index].to_bits();
    // conv1.weight is [32, 1, 3, 3]: [31, 0, 2, 1] is flat index 31*9 + 2*3 + 1.
    expected.push(format!(
        "value conv1.weight[0,0,0,0] {}",
        bits(conv1.offset)
    ));
    expected.push(format!(
        "value conv1.weight[31,0,2,1] {}",
        bits(conv1.offset + 31 * 9 + 2 * 3 + 1)
    ));
    expected.push(format!("value fc2.bias[9] {}", bits(fc2_bias.offset + 9)));
    expected.push("spec cnn 8 8 10".into());
    expected.push("format pt 1".into());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, expected);
}
