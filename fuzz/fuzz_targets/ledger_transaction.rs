//! Fuzzes the signed-transaction decoder: arbitrary bytes must decode to an error or to a
//! transaction that re-encodes to exactly the same bytes (the encoding is canonical), and
//! signature checking of whatever decodes must not panic.
#![no_main]

use cairn_ledger::SignedTransaction;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(transaction) = SignedTransaction::from_bytes(data) {
        assert_eq!(transaction.to_bytes(), data);
        let _ = transaction.verify();
        let _ = transaction.hash();
    }
});
