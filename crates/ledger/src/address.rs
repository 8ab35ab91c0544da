//! Account addresses: the first 20 bytes of blake3 over an ed25519 public key. The type lives in
//! `cairn-round` (shards, batch seeds and audits are keyed by it) and is re-exported here.

pub use cairn_round::address::{Address, ParseAddressError, ADDRESS_LEN};
