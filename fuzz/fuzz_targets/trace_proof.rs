//! Fuzzes trace proof verification (proofs arrive in reveals and dispute claims): any root,
//! leaf count, index, leaf and proof must give an answer without panicking, and a proof built for
//! the leaves derived from the input must verify.
#![no_main]

use cairn_round::trace;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let hashes: Vec<[u8; 32]> = data
        .chunks_exact(32)
        .map(|chunk| chunk.try_into().expect("32 bytes"))
        .collect();
    let (count, index) = match data.first() {
        Some(&byte) => (usize::from(byte), usize::from(byte / 3)),
        None => (0, 0),
    };
    if let [root, leaf, proof @ ..] = hashes.as_slice() {
        let _ = trace::verify(root, count, index, leaf, proof);
    }
    if !hashes.is_empty() {
        let index = index % hashes.len();
        let proof = trace::proof(&hashes, index).expect("index in range");
        assert!(trace::verify(
            &trace::root(&hashes),
            hashes.len(),
            index,
            &hashes[index],
            &proof
        ));
    }
});
