//! Fuzzes the node's wire decoder (mempool and blob channels): arbitrary bytes must decode to a
//! typed error or to a message that re-encodes to exactly the same bytes (the encoding is
//! canonical), within the network's message budget.
#![no_main]

use cairn_node::wire::{max_message_bytes, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::from_bytes(data) {
        let bytes = message.to_bytes();
        assert_eq!(bytes, data);
        assert_eq!(message.encoded_len(), data.len());
        assert!(bytes.len() <= max_message_bytes());
    }
});
