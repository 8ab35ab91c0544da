//! Blocks: a height, the parent's hash, ordered transactions and the state root after them.

use bytes::BufMut;
use commonware_codec::{Buf, Encode, EncodeSize, Error as CodecError, RangeCfg, Read, Write};

use crate::encoding::{domain_hash, Hash, MAX_TRANSACTIONS_PER_BLOCK};
use crate::transaction::SignedTransaction;

/// What a block commits to; its hash names the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The chain this block belongs to.
    pub chain_id: u64,
    /// Height: the parent's plus one (genesis is 0).
    pub height: u64,
    /// Hash of the parent header (all zero for genesis).
    pub parent: Hash,
    /// Commitment to the ordered transactions (see [`transactions_root`]).
    pub transactions_root: Hash,
    /// Merkle root of the whole state after this block.
    pub state_root: Hash,
}

impl Header {
    /// The block's hash: blake3 over the canonical header encoding.
    pub fn hash(&self) -> Hash {
        domain_hash(b"cairn/block-header", &[&self.encode()])
    }
}

/// A block: its header and its transactions in execution order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// Transactions, applied in this order.
    pub transactions: Vec<SignedTransaction>,
}

impl Block {
    /// Decodes a block received from outside (bounded; the whole input must be used).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        <Self as commonware_codec::Decode>::decode_cfg(commonware_codec::Copying(bytes), &())
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode().to_vec()
    }

    /// The block's hash (its header's).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }
}

/// blake3 over the ids of the transactions in order (with their count).
pub fn transactions_root(transactions: &[SignedTransaction]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cairn/transactions-root");
    hasher.update(&(transactions.len() as u64).to_be_bytes());
    for transaction in transactions {
        hasher.update(&transaction.hash());
    }
    *hasher.finalize().as_bytes()
}

impl Write for Header {
    fn write(&self, buf: &mut impl BufMut) {
        self.chain_id.write(buf);
        self.height.write(buf);
        self.parent.write(buf);
        self.transactions_root.write(buf);
        self.state_root.write(buf);
    }
}

impl commonware_codec::FixedSize for Header {
    const SIZE: usize = 8 + 8 + 32 * 3;
}

impl Read for Header {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            chain_id: u64::read_cfg(buf, &())?,
            height: u64::read_cfg(buf, &())?,
            parent: Hash::read_cfg(buf, &())?,
            transactions_root: Hash::read_cfg(buf, &())?,
            state_root: Hash::read_cfg(buf, &())?,
        })
    }
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        self.header.write(buf);
        self.transactions.write(buf);
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        self.header.encode_size() + self.transactions.encode_size()
    }
}

impl Read for Block {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            header: Header::read_cfg(buf, &())?,
            transactions: Vec::read_cfg(buf, &(RangeCfg::new(..=MAX_TRANSACTIONS_PER_BLOCK), ()))?,
        })
    }
}
