//! Fuzzes the model/update blob decoder (blob contents come from peers): arbitrary bytes must
//! decode to a typed error or to finite values that re-encode to exactly the same bytes.
#![no_main]

use cairn_node::protocol::params;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The expected length comes from the task's model; derive one from the input so both the
    // matching and the mismatching paths are reached.
    let expected = data.len().saturating_sub(params::HEADER_LEN) / 4;
    if let Ok(values) = params::decode(data, expected) {
        assert!(values.iter().all(|v| v.is_finite()));
        assert_eq!(params::encode(&values), data);
    }
});
