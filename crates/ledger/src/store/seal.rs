//! Checksums on every stored record, so that damaged state is reported and never served.
//!
//! The tree authenticates values only when a proof is built; a plain read (`get`, a prefix scan,
//! a block record, an old root) takes the bytes redb returns, and redb 2 keeps no checksum of its
//! own. A byte flipped on disk would then be read, printed and executed on as if it were state.
//! Each record is therefore stored as `payload || checksum`, where the checksum is the first
//! [`CHECKSUM_LEN`] bytes of a keyed blake3 hash over the table name, the record's key and the
//! payload. Binding the key and table means a record moved under another key (a misdirected
//! write) fails as surely as a flipped bit.
//!
//! This guards against damage, not against someone who can rewrite the file at will: they could
//! recompute checksums. Against that the state root is the defence: `Store::verify` recomputes
//! the root from the values and names every record that disagrees.

use super::error::StoreError;

/// Bytes of checksum after each stored payload (128 bits: random damage passes with chance
/// 2^-128).
pub(crate) const CHECKSUM_LEN: usize = 16;

/// The key of the checksum hash; changing it changes the on-disk format.
const CONTEXT: &str = "cairn ledger store record checksum v1";

/// The checksum of `payload` stored under `key` in `table`.
fn checksum(table: &str, key: &[u8], payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut hasher = blake3::Hasher::new_derive_key(CONTEXT);
    for part in [table.as_bytes(), key] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.update(payload);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..CHECKSUM_LEN]);
    out
}

/// The bytes to store for `payload` under `key` in `table`.
pub(crate) fn seal(table: &str, key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + CHECKSUM_LEN);
    out.extend_from_slice(payload);
    out.extend_from_slice(&checksum(table, key, payload));
    out
}

/// The payload of a stored record, or [`StoreError::DamagedRecord`] if its checksum fails.
pub(crate) fn open<'a>(
    table: &'static str,
    key: &[u8],
    stored: &'a [u8],
) -> Result<&'a [u8], StoreError> {
    let damaged = |reason: &str| StoreError::DamagedRecord {
        table,
        key: describe_key(key),
        reason: reason.to_owned(),
    };
    let split = stored
        .len()
        .checked_sub(CHECKSUM_LEN)
        .ok_or_else(|| damaged("shorter than its checksum"))?;
    let (payload, sum) = stored.split_at(split);
    if sum != checksum(table, key, payload) {
        return Err(damaged("its checksum does not match its contents"));
    }
    Ok(payload)
}

/// A key as a person can read it: printable ASCII kept, other bytes escaped (`acct/\x1f...`).
pub(crate) fn describe_key(key: &[u8]) -> String {
    const SHOWN: usize = 96;
    let shown = &key[..key.len().min(SHOWN)];
    let mut text = shown.escape_ascii().to_string();
    if key.len() > SHOWN {
        text.push_str(&format!("... ({} bytes)", key.len()));
    }
    text
}

/// The key bytes a height-indexed record (root, block record) is checksummed under.
pub(crate) fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_opens_to_its_payload() {
        let stored = seal("state_values", b"acct/a", b"balance");
        assert_eq!(
            open("state_values", b"acct/a", &stored).unwrap(),
            b"balance"
        );
        let empty = seal("state_values", b"k", b"");
        assert_eq!(open("state_values", b"k", &empty).unwrap(), b"");
    }

    #[test]
    fn any_flipped_bit_or_moved_record_is_damage() {
        let stored = seal("state_values", b"acct/a", b"balance 100");
        for byte in 0..stored.len() {
            for bit in 0..8 {
                let mut bad = stored.clone();
                bad[byte] ^= 1 << bit;
                assert!(matches!(
                    open("state_values", b"acct/a", &bad),
                    Err(StoreError::DamagedRecord { .. })
                ));
            }
        }
        assert!(open("state_values", b"acct/b", &stored).is_err());
        assert!(open("block_records", b"acct/a", &stored).is_err());
        assert!(open("state_values", b"acct/a", &stored[..CHECKSUM_LEN - 1]).is_err());
    }

    #[test]
    fn keys_are_described_readably() {
        assert_eq!(describe_key(b"acct/\x01\xff"), "acct/\\x01\\xff");
        assert!(describe_key(&[b'a'; 200]).ends_with("(200 bytes)"));
    }
}
