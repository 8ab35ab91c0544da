//! Fuzzes the files a node reads from its home (key.json, genesis.json or a chain TOML,
//! config.toml, identity.json): arbitrary bytes must parse to a checked value or a typed error,
//! never panic. A chain file that parses is checked, and re-reads from its own JSON unchanged.
#![no_main]

use cairn_daemon::chain::ChainFile;
use cairn_daemon::home::{Identity, NodeSettings};
use cairn_daemon::keyfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = keyfile::parse(text);
    let _ = NodeSettings::parse(text);
    let _ = Identity::parse(text);
    for json in [true, false] {
        if let Ok(chain) = ChainFile::parse(text, json) {
            let again = serde_json::to_string(&chain).unwrap();
            assert_eq!(ChainFile::parse(&again, true).unwrap(), chain);
        }
    }
});
