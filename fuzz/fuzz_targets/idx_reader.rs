//! Fuzzes the IDX image and label decoders (plain or gzip input) and their pairing: errors,
//! never panics, and no allocation beyond the limits whatever the header claims.
#![no_main]

use cairn_ml::data::{decode_idx_images, decode_idx_labels, idx_dataset, IdxLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = IdxLimits {
        max_items: 100_000,
        max_side: 256,
        max_bytes: 1 << 22,
    };
    // Split the input into an image file and a label file at a point chosen by the first byte.
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(cut).min(rest.len());
    let (label_bytes, image_bytes) = rest.split_at(at);
    let images = decode_idx_images("fuzz-images", image_bytes, &limits);
    let labels = decode_idx_labels("fuzz-labels", label_bytes, 10, &limits);
    if let Ok(images) = &images {
        assert_eq!(
            images.pixels.len(),
            images.count * images.rows * images.cols
        );
    }
    if let (Ok(images), Ok(labels)) = (images, labels) {
        if let Ok(dataset) = idx_dataset("fuzz-images", &images, "fuzz-labels", labels, 10) {
            assert_eq!(dataset.len(), images.count);
            assert!(dataset.features().iter().all(|x| (0.0..=1.0).contains(x)));
        }
    }
});
