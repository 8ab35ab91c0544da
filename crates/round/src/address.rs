//! Account addresses: the first 20 bytes of blake3 over an ed25519 public key.

use std::fmt;
use std::str::FromStr;

use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, Write};
use ed25519_dalek::VerifyingKey;
use serde::{Serialize, Serializer};

use crate::encoding::{from_hex, to_hex};

/// Length in bytes of an [`Address`].
pub const ADDRESS_LEN: usize = 20;

/// Identifies an account: `blake3(ed25519 public key)[..20]`.
///
/// Hashing the key (rather than using it directly) keeps state keys short and would let the
/// ledger add other signature schemes later without changing how accounts are named.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(pub [u8; ADDRESS_LEN]);

impl Address {
    /// The address that owns the given ed25519 public key.
    pub fn from_public_key(key: &VerifyingKey) -> Self {
        Self::from_public_key_bytes(key.as_bytes())
    }

    /// The address that owns the given 32 raw public-key bytes.
    pub fn from_public_key_bytes(key: &[u8; 32]) -> Self {
        let digest = blake3::hash(key);
        let mut out = [0u8; ADDRESS_LEN];
        out.copy_from_slice(&digest.as_bytes()[..ADDRESS_LEN]);
        Self(out)
    }

    /// The raw 20 bytes.
    pub fn as_bytes(&self) -> &[u8; ADDRESS_LEN] {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

/// Hex, like [`fmt::Display`]: logs and error messages that print an address with `?` show
/// the 40 digits a user can search for, not an array of 20 decimal bytes.
impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", to_hex(&self.0))
    }
}

/// Why a string is not an address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not an address: expected 40 hex digits")]
pub struct ParseAddressError(pub String);

impl FromStr for Address {
    type Err = ParseAddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        from_hex::<ADDRESS_LEN>(text)
            .map(Self)
            .ok_or_else(|| ParseAddressError(text.to_string()))
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl Write for Address {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl Read for Address {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(<[u8; ADDRESS_LEN]>::read_cfg(buf, &())?))
    }
}

impl FixedSize for Address {
    const SIZE: usize = ADDRESS_LEN;
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};
    use ed25519_dalek::SigningKey;

    #[test]
    fn address_is_a_prefix_of_the_key_hash() {
        let key = SigningKey::from_bytes(&[7u8; 32]).verifying_key();
        let address = Address::from_public_key(&key);
        assert_eq!(
            &address.0[..],
            &blake3::hash(key.as_bytes()).as_bytes()[..20]
        );
    }

    #[test]
    fn address_text_and_codec_round_trip() {
        let address = Address([0xab; 20]);
        assert_eq!(address.to_string().parse::<Address>(), Ok(address));
        assert_eq!(Address::decode(address.encode()).unwrap(), address);
        assert!("abc".parse::<Address>().is_err());
    }
}
