//! Node identity: one 32-byte seed backs both the ledger's ed25519 signing key (transactions)
//! and the commonware ed25519 key (consensus votes, p2p identity). The public key bytes are the
//! same; the signatures are not interchangeable (commonware signs a namespaced message).

use cairn_ledger::address::Address;
use commonware_codec::DecodeExt;
use commonware_cryptography::{ed25519, Signer};

/// A node's secret seed and the keys derived from it.
#[derive(Clone)]
pub struct NodeKey {
    seed: [u8; 32],
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey")
            .field(
                "address",
                &cairn_ledger::encoding::to_hex(&self.address().0),
            )
            .finish()
    }
}

impl NodeKey {
    /// A key from a secret 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { seed }
    }

    /// The key a simulation or test derives for node `index` of a network seeded with `seed`
    /// (`blake3("cairn/node-key" || seed || index)`); never use this for real funds.
    pub fn derive(seed: u64, index: u64) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"cairn/node-key");
        hasher.update(&seed.to_be_bytes());
        hasher.update(&index.to_be_bytes());
        Self::from_seed(*hasher.finalize().as_bytes())
    }

    /// The ledger key that signs transactions.
    pub fn ledger_key(&self) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&self.seed)
    }

    /// The commonware key that signs consensus votes and authenticates p2p links.
    pub fn consensus_key(&self) -> ed25519::PrivateKey {
        ed25519::PrivateKey::decode(bytes::Bytes::copy_from_slice(&self.seed))
            .expect("every 32-byte string is an ed25519 seed")
    }

    /// The commonware public key (the node's p2p identity).
    pub fn public_key(&self) -> ed25519::PublicKey {
        self.consensus_key().public_key()
    }

    /// The node's ledger address (`blake3(public key)[..20]`).
    pub fn address(&self) -> Address {
        Address::from_public_key(&self.ledger_key().verifying_key())
    }
}

/// The ledger address of a commonware public key.
pub fn address_of(public_key: &ed25519::PublicKey) -> Address {
    let bytes: [u8; 32] = public_key
        .as_ref()
        .try_into()
        .expect("ed25519 public keys are 32 bytes");
    Address::from_public_key_bytes(&bytes)
}
