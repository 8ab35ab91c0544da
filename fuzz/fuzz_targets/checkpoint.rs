//! Fuzzes the model-file decoder: any bytes must give a model or a typed error, never a panic,
//! and a model that loads must encode back to bytes that load to the same model.

#![no_main]

use cairn_ml::checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = checkpoint::from_bytes(data) {
        let bytes = checkpoint::to_bytes(&model).expect("a loaded model has finite weights");
        let again = checkpoint::from_bytes(&bytes).expect("re-encoded model file loads");
        assert_eq!(again, model);
    }
});
