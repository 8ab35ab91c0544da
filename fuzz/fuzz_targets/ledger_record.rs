//! Fuzzes the decoders of the ledger's stored records that verification added or grew (read back
//! from disk): a dispute, a round (audits, disputes, penalties, vesting), a task, a stake. The
//! first byte picks the record; the rest must decode to an error or re-encode to the same bytes.
#![no_main]

use cairn_ledger::codec::{Copying, DecodeExt, Encode};
use cairn_ledger::dispute::Dispute;
use cairn_ledger::staking::Stake;
use cairn_ledger::{Round, Task};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    match first % 4 {
        0 => {
            if let Ok(record) = Dispute::decode(Copying(rest)) {
                assert_eq!(record.encode().as_ref(), rest);
            }
        }
        1 => {
            if let Ok(record) = Round::decode(Copying(rest)) {
                assert_eq!(record.encode().as_ref(), rest);
            }
        }
        2 => {
            if let Ok(record) = Task::decode(Copying(rest)) {
                assert_eq!(record.encode().as_ref(), rest);
            }
        }
        _ => {
            if let Ok(record) = Stake::decode(Copying(rest)) {
                assert_eq!(record.encode().as_ref(), rest);
            }
        }
    }
});
