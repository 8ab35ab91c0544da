//! Canonical encoding for ledger types: the bounds every ledger decoder takes, plus the shared
//! helpers (hashes, text fields, hex) that live in `cairn-round` and are re-exported here.
//!
//! Everything hashed or signed is encoded with `commonware-codec` (fixed-width big-endian
//! integers, varint length prefixes, maps in ascending key order). Decoders take their bounds from
//! the constants below, so a hostile byte string can never make the ledger allocate more than a
//! block's worth of memory.

pub use cairn_round::encoding::{
    domain_hash, first_u64, from_hex, read_tag, read_text, serialize_hash, text_size, to_hex,
    write_text, Hash, MAX_TEXT_BYTES, ZERO_HASH,
};

/// Most transactions one block may carry (bounds the block decoder).
pub const MAX_TRANSACTIONS_PER_BLOCK: usize = 20_000;

/// Most members (trainers plus validators) a task may have; also bounds score lists.
pub const MAX_TASK_MEMBERS: usize = 1024;

/// Most validators a task may have. With [`MAX_TASK_MEMBERS`] it bounds a round record: at most
/// 64 attestations of at most 1024 scores each (about 2.4 MB), however members split by role.
pub const MAX_TASK_VALIDATORS: usize = 64;

/// Most entries of one attestation's score list.
pub const MAX_SCORES_PER_ATTESTATION: usize = MAX_TASK_MEMBERS;

/// Most bytes of one chunk of a dispute witness (a witness of up to
/// [`cairn_round::witness::MAX_WITNESS_BYTES`] takes at most 8 chunks). Every chunk but the last
/// must be exactly this long, which bounds how long a witness can take to post.
pub const MAX_WITNESS_CHUNK: usize = 1 << 20;

/// One million: the denominator of every fraction and score (parts per million).
pub const PPM: u32 = 1_000_000;
