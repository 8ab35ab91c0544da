//! Key files: a node's secret seed, as JSON, readable by its owner only.
//!
//! ```json
//! {"secret":"<64 hex>","public_key":"<64 hex>","address":"<40 hex>"}
//! ```
//!
//! The seed backs both the ledger key and the p2p/consensus identity ([`NodeKey`]). The public
//! key and address are written for the operator's convenience and checked on read: a file whose
//! public part does not match its secret was edited by hand and is refused.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use cairn_ledger::encoding::{from_hex, to_hex};
use cairn_node::keys::NodeKey;
use serde::{Deserialize, Serialize};

use crate::DaemonError;

/// A key file's contents.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The 32-byte secret seed, hex.
    pub secret: String,
    /// The ed25519 public key, hex (p2p identity and consensus key).
    pub public_key: String,
    /// The ledger address, hex.
    pub address: String,
}

/// The public parts of a key, for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublicParts {
    /// The ed25519 public key, hex.
    pub public_key: String,
    /// The ledger address, hex.
    pub address: String,
}

/// The public parts of `key`.
pub fn public_parts(key: &NodeKey) -> PublicParts {
    PublicParts {
        public_key: to_hex(key.public_key().as_ref()),
        address: to_hex(&key.address().0),
    }
}

/// Writes the key of `seed` to `path` with mode 0600; refuses to overwrite an existing file.
pub fn write(path: &Path, seed: &[u8; 32]) -> Result<NodeKey, DaemonError> {
    let key = NodeKey::from_seed(*seed);
    let parts = public_parts(&key);
    let file = KeyFile {
        secret: to_hex(seed),
        public_key: parts.public_key,
        address: parts.address,
    };
    let text = serde_json::to_string_pretty(&file).map_err(|e| DaemonError::Io(e.to_string()))?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            DaemonError::Exists(path.display().to_string())
        } else {
            DaemonError::Io(format!("{}: {error}", path.display()))
        }
    })?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.sync_all())
        .map_err(|error| DaemonError::Io(format!("{}: {error}", path.display())))?;
    Ok(key)
}

/// Generates a key and writes it to `path` (mode 0600, never overwriting).
pub fn generate_into(path: &Path) -> Result<NodeKey, DaemonError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|error| DaemonError::Io(format!("no randomness for a key: {error}")))?;
    write(path, &seed)
}

/// Reads and checks a key file.
pub fn read(path: &Path) -> Result<NodeKey, DaemonError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| DaemonError::Io(format!("key file {}: {error}", path.display())))?;
    parse(&text).map_err(|reason| DaemonError::BadKey {
        path: path.display().to_string(),
        reason,
    })
}

/// Parses a key file's text and checks its public parts against its secret.
pub fn parse(text: &str) -> Result<NodeKey, String> {
    let file: KeyFile = serde_json::from_str(text).map_err(|error| error.to_string())?;
    let seed: [u8; 32] =
        from_hex(&file.secret).ok_or("secret is not 32 bytes of hex".to_string())?;
    let key = NodeKey::from_seed(seed);
    let parts = public_parts(&key);
    if parts.public_key != file.public_key.trim_start_matches("0x") {
        return Err("public_key does not belong to secret".into());
    }
    if parts.address != file.address.trim_start_matches("0x") {
        return Err("address does not belong to secret".into());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_reads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let key = generate_into(&path).unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.public_key(), key.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(generate_into(&path), Err(DaemonError::Exists(_))));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn edited_or_truncated_key_files_are_refused() {
        let key = NodeKey::from_seed([7; 32]);
        let parts = public_parts(&key);
        let good = format!(
            r#"{{"secret":"{}","public_key":"{}","address":"{}"}}"#,
            to_hex(&[7; 32]),
            parts.public_key,
            parts.address
        );
        assert!(parse(&good).is_ok());
        let other = public_parts(&NodeKey::from_seed([8; 32]));
        let swapped = good.replace(&parts.public_key, &other.public_key);
        assert!(parse(&swapped).unwrap_err().contains("public_key"));
        assert!(parse(&good[..good.len() / 2]).is_err());
        assert!(parse(&good.replace(&to_hex(&[7; 32]), "abcd")).is_err());
    }
}
