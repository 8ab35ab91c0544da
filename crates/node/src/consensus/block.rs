//! The ledger block as a commonware consensus block: digest = header hash, bounded decoding.

use bytes::BufMut;
use cairn_ledger::block::Block;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use commonware_consensus::types::Height;
use commonware_consensus::{BoundedBlock, Heightable};
use commonware_cryptography::{blake3, Digestible};

/// Largest encoded block any node accepts (4 MiB).
///
/// The ledger's own bound (20 000 transactions, each possibly large) would allow blocks of
/// several GiB, which would overflow the p2p message-size budget (a `u32`). 4 MiB leaves room
/// for thousands of ordinary transactions per block while keeping every consensus message small
/// enough for the simulated and the real network. Proposers stop adding candidates before a
/// block would pass it ([`crate::consensus::app`]) and decoders refuse anything larger.
pub const MAX_BLOCK_BYTES: usize = 4 << 20;

/// A ledger block as commonware's consensus and marshal see it.
///
/// Its digest is the header hash (`cairn_ledger::block::Header::hash`), which commits to the
/// transactions through `transactions_root`, so the digest is a pure function of the encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CairnBlock {
    block: Block,
    digest: blake3::Digest,
}

impl CairnBlock {
    /// Wraps a ledger block (computes and caches its hash).
    pub fn new(block: Block) -> Self {
        let digest = blake3::Digest(block.hash());
        Self { block, digest }
    }

    /// The ledger block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Gives back the ledger block.
    pub fn into_block(self) -> Block {
        self.block
    }
}

impl Heightable for CairnBlock {
    fn height(&self) -> Height {
        Height::new(self.block.header.height)
    }
}

impl Digestible for CairnBlock {
    type Digest = blake3::Digest;

    fn digest(&self) -> blake3::Digest {
        self.digest
    }
}

impl commonware_consensus::Block for CairnBlock {
    fn parent(&self) -> blake3::Digest {
        blake3::Digest(self.block.header.parent)
    }
}

impl Write for CairnBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.block.write(buf);
    }
}

impl EncodeSize for CairnBlock {
    fn encode_size(&self) -> usize {
        self.block.encode_size()
    }
}

impl Read for CairnBlock {
    type Cfg = ();

    /// Decodes the ledger block with its own bounds, then refuses it if it used more than
    /// [`MAX_BLOCK_BYTES`].
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let start = buf.remaining();
        let block = Block::read_cfg(buf, &())?;
        if start - buf.remaining() > MAX_BLOCK_BYTES {
            return Err(CodecError::Invalid(
                "CairnBlock",
                "block exceeds MAX_BLOCK_BYTES",
            ));
        }
        Ok(Self::new(block))
    }
}

impl BoundedBlock for CairnBlock {
    fn max_encode_size(_: &()) -> usize {
        MAX_BLOCK_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_ledger::block::{transactions_root, Header};
    use cairn_ledger::transaction::{Payload, SignedTransaction};
    use commonware_codec::{Decode, Encode};

    fn sample(transactions: usize) -> Block {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let txs: Vec<SignedTransaction> = (0..transactions as u64)
            .map(|nonce| SignedTransaction::new(&key, 9, nonce, Payload::Burn { amount: 1 }))
            .collect();
        Block {
            header: Header {
                chain_id: 9,
                height: 3,
                parent: [1; 32],
                transactions_root: transactions_root(&txs),
                state_root: [2; 32],
            },
            transactions: txs,
        }
    }

    #[test]
    fn decode_of_encode_is_the_same_block_with_the_header_hash_as_digest() {
        let block = CairnBlock::new(sample(5));
        let bytes = block.encode();
        let decoded = CairnBlock::decode_cfg(bytes, &()).unwrap();
        assert_eq!(decoded, block);
        assert_eq!(decoded.digest().0, block.block().hash());
        assert_eq!(decoded.height(), Height::new(3));
        assert_eq!(commonware_consensus::Block::parent(&decoded).0, [1; 32]);
    }

    #[test]
    fn block_over_the_byte_bound_is_refused_though_the_ledger_bounds_admit_it() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
        let scores: std::collections::BTreeMap<_, _> = (0..256u32)
            .map(|i| {
                let mut address = [0u8; 20];
                address[..4].copy_from_slice(&i.to_be_bytes());
                (cairn_ledger::address::Address(address), i)
            })
            .collect();
        let tx = SignedTransaction::new(
            &key,
            9,
            0,
            Payload::RevealAttestation {
                task: 0,
                round: 0,
                model_hash: [0; 32],
                scores,
                salt: [0; 32],
            },
        );
        let count = MAX_BLOCK_BYTES / tx.encode_size() + 1;
        let mut block = sample(0);
        block.transactions = vec![tx; count];
        let bytes = block.encode();
        assert!(bytes.len() > MAX_BLOCK_BYTES);
        assert!(Block::decode_cfg(bytes.clone(), &()).is_ok());
        assert!(CairnBlock::decode_cfg(bytes, &()).is_err());
    }

    #[test]
    fn truncated_block_is_an_error_not_a_panic() {
        let bytes = CairnBlock::new(sample(2)).encode();
        for cut in [0, 1, 50, bytes.len() - 1] {
            assert!(
                CairnBlock::decode_cfg(bytes::Bytes::copy_from_slice(&bytes[..cut]), &()).is_err()
            );
        }
    }
}
