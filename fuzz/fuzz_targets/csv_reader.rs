//! Fuzzes the CSV dataset decoder (plain or gzip input): it must return an error, never panic,
//! and whatever it accepts must be a consistent dataset with features in [0, 1].
#![no_main]

use cairn_ml::data::{decode_csv, CsvFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the row width so short inputs can still form valid rows.
    let Some((&width, rest)) = data.split_first() else {
        return;
    };
    let mut format = CsvFormat::new((1, 1, usize::from(width % 8) + 1), 10, 16.0);
    format.header = width & 0x80 != 0;
    format.max_bytes = 1 << 20;
    if let Ok(dataset) = decode_csv("fuzz.csv", rest, &format) {
        assert_eq!(dataset.features().len(), dataset.len() * dataset.dim());
        assert!(dataset.features().iter().all(|x| (0.0..=1.0).contains(x)));
        assert!(dataset.labels().iter().all(|&l| l < 10));
    }
});
