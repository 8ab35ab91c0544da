//! Fuzzes the Merkle proof decoder a light client runs on untrusted bytes: arbitrary input must
//! decode to an error or to a proof that re-encodes to the same bytes (the encoding is canonical),
//! and verifying whatever decodes must not panic.
#![no_main]

use cairn_ledger::store::Proof;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = Proof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
        let _ = proof.verify(&[0; 32], b"acct/fuzz", None);
        let _ = proof.verify(&[7; 32], b"", Some(b"value"));
    }
});
