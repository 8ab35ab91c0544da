//! Fuzzes the `.npy` decoder: any bytes give an array or an error, never a panic, and a decoded
//! array re-encodes to bytes that decode to the same array.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = cairn_ml::npy::decode(data) {
        assert_eq!(array.shape.iter().product::<usize>(), array.data.len());
        let bytes = cairn_ml::npy::encode(&array).expect("a decoded array always re-encodes");
        let again = cairn_ml::npy::decode(&bytes).expect("our own encoding always decodes");
        assert_eq!(again.shape, array.shape);
        let bits =
            |a: &cairn_ml::npy::NpyArray| a.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&again), bits(&array));
    }
});
