//! The files a node reads from its home never panic a parser, whatever their bytes (the short
//! version of the `daemon_files` fuzz target): a key file, a chain file (JSON or TOML), the
//! settings and the identity record parse to a checked value or a typed error.

use cairn_daemon::chain::{ChainFile, Member};
use cairn_daemon::home::{Identity, NodeSettings};
use cairn_daemon::keyfile;
use cairn_ledger::encoding::to_hex;
use cairn_ledger::genesis::Params;
use cairn_node::keys::NodeKey;
use proptest::prelude::*;

fn valid_chain_json() -> String {
    let member = |seed: u8, name: &str, stake: u128| Member {
        name: name.into(),
        public_key: to_hex(NodeKey::from_seed([seed; 32]).public_key().as_ref()),
        stake,
        balance: 1_000,
        p2p: (stake > 0).then(|| "127.0.0.1:30300".to_string()),
    };
    serde_json::to_string(&ChainFile {
        chain_id: 4,
        params: Params::default(),
        datasets: vec!["digits".into()],
        validators: vec![member(1, "v0", 500)],
        accounts: vec![member(2, "t0", 0)],
    })
    .unwrap()
}

fn every_parser(text: &str) {
    let _ = keyfile::parse(text);
    let _ = NodeSettings::parse(text);
    let _ = Identity::parse(text);
    for json in [true, false] {
        if let Ok(chain) = ChainFile::parse(text, json) {
            let again = serde_json::to_string(&chain).unwrap();
            assert_eq!(ChainFile::parse(&again, true).unwrap(), chain);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics_a_home_parser(text in "\\PC{0,300}") {
        every_parser(&text);
    }

    #[test]
    fn a_damaged_chain_file_parses_checked_or_fails_cleanly(
        cut in 0usize..2_000,
        at in 0usize..2_000,
        byte in any::<u8>(),
    ) {
        let good = valid_chain_json();
        prop_assert!(ChainFile::parse(&good, true).is_ok());
        let mut bytes = good.into_bytes();
        let at = at % bytes.len();
        bytes[at] = byte;
        bytes.truncate(cut.max(1).min(bytes.len()));
        if let Ok(text) = String::from_utf8(bytes) {
            every_parser(&text);
        }
    }
}
