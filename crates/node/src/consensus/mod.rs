//! Consensus: the ledger as a commonware simplex application, finalization into the ledger
//! store, and the finality feed trainers follow.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`block`] | the ledger block as a commonware block (digest = header hash, 4 MiB bound) |
//! | [`speculative`] | ledger state after blocks that are notarized but not final yet |
//! | [`app`] | `propose` / `verify` on top of that state ([`app::LedgerApp`]) |
//! | [`finalizer`] | commits finalized blocks in height order and tells the [`BlockObserver`] |
//! | [`epochs`] | which validator set runs each epoch; the schemes certificates verify with |
//! | [`validator`] | wires marshal, block broadcast, backfill and one simplex engine per epoch |
//! | [`feed_wire`] | the bytes of finality-feed messages |
//! | [`feed`] | validators publish finalized blocks with certificates; followers verify and apply |

pub mod app;
pub mod block;
pub mod epochs;
pub mod feed;
pub mod feed_wire;
pub mod finalizer;
pub mod speculative;
pub mod validator;

pub use app::{LedgerApp, TxSource};
pub use block::{CairnBlock, MAX_BLOCK_BYTES};
pub use epochs::{EpochError, EpochProvider, Epochs};
pub use feed::{start_follower, FeedError, FeedOutcome, Follower, FollowerConfig};
pub use finalizer::Finalizer;
pub use speculative::{committed_header, ConsensusError, LedgerState};
pub use validator::{
    init_store, max_message_size, namespace, run_validator, start_validator, ConsensusStatus,
    Timeouts, ValidatorChannels, ValidatorConfig,
};

/// The commonware signing scheme (and participant set) Cairn's consensus uses.
pub type Scheme = commonware_consensus::simplex::scheme::ed25519::Scheme;
/// The digest that names blocks.
pub type Digest = commonware_cryptography::blake3::Digest;
/// A finalization certificate over a block digest.
pub type Finalization = commonware_consensus::simplex::types::Finalization<Scheme, Digest>;

/// Told about every finalized block, in height order, right after it is committed.
///
/// `state` is the ledger state at exactly that block's height. Validators get the hook from
/// their finalizer, trainers from the finality-feed follower. The call is synchronous and runs
/// while the ledger store's lock is held (that is how `state` stays at exactly this height):
/// keep it short, queue work for another task, and never lock the store from inside it (the
/// lock is not reentrant). A block marshal redelivers after a restart is not reported again.
pub trait BlockObserver: Send + 'static {
    /// Called once per finalized block, after its commit.
    fn on_finalized(
        &mut self,
        block: &cairn_ledger::block::Block,
        state: &dyn cairn_ledger::store::StateRead,
    );
}
