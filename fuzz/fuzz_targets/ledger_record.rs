//! Fuzzes the decoders of the ledger's stored records that verification added or grew (read back
//! from disk): a dispute, a round (audits, disputes, penalties, vesting), a task, a stake, the
//! validator roster, the chain parameters. The first byte picks the record; the rest must decode
//! to an error or re-encode to the same bytes.
#![no_main]

use std::collections::BTreeMap;

use cairn_ledger::codec::{Copying, Decode, DecodeExt, Encode};
use cairn_ledger::validators::{roster_cfg, Candidate};
use cairn_ledger::{Address, Params};
use cairn_ledger::dispute::Dispute;
use cairn_ledger::staking::Stake;
use cairn_ledger::{Round, Task};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    match first % 6 {
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
        3 => {
            if let Ok(record) = Stake::decode(Copying(rest)) {
                assert_eq!(record.encode().as_ref(), rest);
            }
        }
        4 => {
            let cfg = roster_cfg();
            if let Ok(roster) = BTreeMap::<Address, Candidate>::decode_cfg(Copying(rest), &cfg) {
                assert_eq!(roster.encode().as_ref(), rest);
            }
        }
        _ => {
            if let Ok(record) = Params::decode(Copying(rest)) {
                assert_eq!(record.encode().as_ref(), rest);
            }
        }
    }
});
