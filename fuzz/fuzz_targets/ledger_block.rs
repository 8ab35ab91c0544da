//! Fuzzes the block decoder (bounded transaction count and field sizes): arbitrary bytes must
//! decode to an error or to a block that re-encodes to the same bytes; batch signature checking
//! of whatever decodes must not panic.
#![no_main]

use cairn_ledger::execute::verify_signatures;
use cairn_ledger::Block;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::from_bytes(data) {
        assert_eq!(block.to_bytes(), data);
        let _ = block.hash();
        let _ = verify_signatures(&block.transactions);
    }
});
