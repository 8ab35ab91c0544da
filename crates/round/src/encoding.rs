//! Canonical encoding helpers shared by every protocol type: hashes, text fields, hex.
//!
//! Everything hashed or signed is encoded with `commonware-codec` (fixed-width big-endian
//! integers, varint length prefixes, maps in ascending key order). Text fields are bounded by
//! [`MAX_TEXT_BYTES`]; the ledger adds the bounds of its own records on top.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, Write};

/// A blake3 digest: block hashes, model hashes, update commitments, dataset content hashes,
/// trace checkpoints.
pub type Hash = [u8; 32];

/// The all-zero hash: the parent of the genesis block, the batch of step 0, the update of a
/// checkpoint that is not the last.
pub const ZERO_HASH: Hash = [0u8; 32];

/// Most bytes of one text field (model name, optimizer, robust rule, schema, licence).
pub const MAX_TEXT_BYTES: usize = 256;

/// Writes a UTF-8 text field: a varint length then the bytes.
pub fn write_text(text: &str, buf: &mut impl BufMut) {
    text.len().write(buf);
    buf.put_slice(text.as_bytes());
}

/// Encoded size of a text field written by [`write_text`].
pub fn text_size(text: &str) -> usize {
    text.len().encode_size() + text.len()
}

/// Reads a UTF-8 text field of at most [`MAX_TEXT_BYTES`] bytes.
pub fn read_text(buf: &mut impl Buf) -> Result<String, CodecError> {
    let bytes = Vec::<u8>::read_cfg(buf, &(RangeCfg::new(..=MAX_TEXT_BYTES), ()))?;
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid("text", "not UTF-8"))
}

/// Reads a one-byte enum tag.
pub fn read_tag(buf: &mut impl Buf) -> Result<u8, CodecError> {
    u8::read_cfg(buf, &())
}

/// Lower-case hex of a byte string (for display, JSON and the CLI).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// Parses hex (either case) into exactly `N` bytes; `None` when it is not that.
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if text.len() != N * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (index, pair) in text.as_bytes().chunks_exact(2).enumerate() {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        out[index] = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// blake3 over a domain tag and the given parts, so hashes of different kinds never collide.
/// Every domain-separated hash of the protocol is built here.
pub fn domain_hash(domain: &[u8], parts: &[&[u8]]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(domain.len() as u64).to_be_bytes());
    hasher.update(domain);
    for part in parts {
        hasher.update(part);
    }
    *hasher.finalize().as_bytes()
}

/// The first 8 bytes of a hash, little-endian: how a hash becomes a seed or a draw.
pub fn first_u64(hash: &Hash) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(bytes)
}

/// Serializes a hash as lower-case hex (for JSON output).
pub fn serialize_hash<S: serde::Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&to_hex(hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::Copying;

    #[test]
    fn hex_round_trips_and_rejects_bad_digits() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(to_hex(&bytes), "0001abff");
        assert_eq!(from_hex::<4>("0001ABff"), Some(bytes));
        assert_eq!(from_hex::<4>("0x0001abff"), Some(bytes));
        assert_eq!(from_hex::<4>("0001abfg"), None);
        assert_eq!(from_hex::<4>("0001ab"), None);
    }

    #[test]
    fn text_longer_than_the_bound_is_rejected() {
        let mut buf = Vec::new();
        write_text(&"x".repeat(MAX_TEXT_BYTES + 1), &mut buf);
        assert!(read_text(&mut Copying(&buf)).is_err());
        let mut ok = Vec::new();
        write_text("sgd", &mut ok);
        assert_eq!(ok.len(), text_size("sgd"));
        assert_eq!(read_text(&mut Copying(&ok)).unwrap(), "sgd");
    }

    #[test]
    fn domain_separates_hashes() {
        assert_ne!(domain_hash(b"a", &[b"x"]), domain_hash(b"b", &[b"x"]));
        assert_ne!(domain_hash(b"a", &[b"xy"]), domain_hash(b"ax", &[b"y"]));
    }
}
