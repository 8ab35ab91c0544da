//! Cairn's ledger: signed transactions and the deterministic state machine that applies them.
//!
//! The consensus engine orders [`Block`]s; this crate checks and applies them. A block's
//! signatures are each checked strictly (`verify_strict`, in parallel), its transactions run in
//! order against an overlay of the [`store`], and the resulting change set is committed
//! atomically with the block, giving a Merkle state root per block. A block holding any invalid
//! transaction is rejected whole (proposers use [`Chain::propose`], which leaves invalid
//! candidates out).
//!
//! ```
//! use std::collections::BTreeMap;
//! use cairn_ledger::{Address, Chain, Genesis, Params, Payload, SignedTransaction, query};
//! use cairn_ledger::store::MemoryStore;
//! use ed25519_dalek::SigningKey;
//!
//! let alice = SigningKey::from_bytes(&[1; 32]);
//! let bob = Address::from_public_key(&SigningKey::from_bytes(&[2; 32]).verifying_key());
//! let validator = Address([9; 20]);
//! let genesis = Genesis {
//!     chain_id: 1,
//!     params: Params::default(),
//!     balances: BTreeMap::from([(Address::from_public_key(&alice.verifying_key()), 1_000)]),
//!     validators: BTreeMap::from([(validator, 500)]),
//!     datasets: Default::default(),
//! };
//! let mut chain = Chain::create(MemoryStore::new(), &genesis, Default::default())?;
//! let pay = SignedTransaction::new(&alice, 1, 0, Payload::Transfer { to: bob, amount: 250 });
//! let (block, rejected) = chain.propose_and_apply(vec![pay])?;
//! assert!(rejected.is_empty());
//! assert_eq!(block.header.height, 1);
//! assert_eq!(query::balance(chain.store(), &bob)?, 250);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Design notes: `docs/ledger.md`.
#![warn(missing_docs)]

/// Implements the canonical codec of a field-less enum as one tag byte:
/// `tag_enum_codec!(Role { Trainer = 0, Validator = 1 });`. Any other byte decodes to
/// `CodecError::InvalidEnum`.
macro_rules! tag_enum_codec {
    ($name:ident { $($variant:ident = $tag:literal),+ $(,)? }) => {
        impl commonware_codec::Write for $name {
            fn write(&self, buf: &mut impl bytes::BufMut) {
                let tag: u8 = match self {
                    $(Self::$variant => $tag,)+
                };
                commonware_codec::Write::write(&tag, buf);
            }
        }

        impl commonware_codec::FixedSize for $name {
            const SIZE: usize = 1;
        }

        impl commonware_codec::Read for $name {
            type Cfg = ();

            fn read_cfg(
                buf: &mut impl commonware_codec::Buf,
                _: &(),
            ) -> Result<Self, commonware_codec::Error> {
                match $crate::encoding::read_tag(buf)? {
                    $($tag => Ok(Self::$variant),)+
                    other => Err(commonware_codec::Error::InvalidEnum(other)),
                }
            }
        }
    };
}

pub mod account;
pub mod accountability;
pub mod address;
pub mod amount;
pub mod audit;
pub mod block;
pub mod chain;
pub mod dataset;
pub mod dispute;
pub mod encoding;
pub mod execute;
pub mod genesis;
pub mod lifecycle;
pub mod participation;
pub mod query;
pub mod reward;
pub mod round;
pub mod schedule;
pub mod settlement;
pub mod staking;
pub mod state;
pub mod store;
pub mod task;
pub mod transaction;
pub mod validators;
pub mod vesting;

pub use address::Address;
pub use block::{Block, Header};
pub use cairn_round::DatasetRegistry;
pub use chain::{Chain, ChainError};
/// The canonical codec, re-exported so users encode and decode with the same version.
pub use commonware_codec as codec;
/// The signature library, re-exported so users sign with the same version.
pub use ed25519_dalek;
pub use encoding::Hash;
pub use execute::{BlockError, Env, TxError};
pub use genesis::{Genesis, Params, SlashDestination};
pub use round::{Outcome, Phase, Round};
pub use task::{Role, Task, TaskSpec, TaskStatus, Verification};
pub use transaction::{Payload, SignedTransaction, Transaction};
