//! Fuzzes the finality-feed decoder (channel 7): arbitrary bytes must decode to a typed error or
//! to a message that re-encodes to exactly the same bytes.
#![no_main]

use cairn_node::consensus::feed_wire::FeedMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Four validators: the certificate bound the feed decodes with in a small network.
    if let Ok(message) = FeedMessage::from_bytes(data, 4) {
        assert_eq!(message.to_bytes(), data);
    }
});
