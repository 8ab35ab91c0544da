//! The ledger as a commonware consensus [`Application`]: proposers build blocks from mempool
//! candidates, verifiers re-execute them; both on the speculative state of the parent.
//!
//! It runs behind `marshal::standard::Inline`, which turns it into simplex's automaton.
//! Futures are cancellation-safe: every step either completes under a lock or only reads, so
//! dropping one half-way leaves at most extra pending entries, which are valid.

use std::sync::Arc;
use std::time::Duration;

use cairn_ledger::store::StateStore;
use cairn_ledger::transaction::SignedTransaction;
use commonware_codec::EncodeSize;
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::simplex::types::Context;
use commonware_consensus::Application;
use commonware_cryptography::{ed25519, Digested, Digestible};
use commonware_runtime::Clock;
use futures::StreamExt;

use super::block::{CairnBlock, MAX_BLOCK_BYTES};
use super::speculative::{ConsensusError, LedgerState, Standing, Verdict};
use super::{Digest, Scheme};

/// Where proposers get candidate transactions (the node's mempool).
pub trait TxSource: Send + Sync + 'static {
    /// Up to `max` candidates in the order they should be tried.
    fn candidates(&self, max: usize) -> Vec<SignedTransaction>;
    /// Forgets transactions a finalized block included.
    fn remove_included(&self, txs: &[SignedTransaction]);
}

/// Room kept for the header and the transaction count inside [`MAX_BLOCK_BYTES`].
const BLOCK_OVERHEAD: usize = 256;

/// The ledger application simplex (through marshal) drives.
pub struct LedgerApp<S, T> {
    ledger: LedgerState<S>,
    txs: Arc<T>,
    max_candidates: usize,
    block_interval: Duration,
}

impl<S, T> Clone for LedgerApp<S, T> {
    fn clone(&self) -> Self {
        Self {
            ledger: self.ledger.clone(),
            txs: self.txs.clone(),
            max_candidates: self.max_candidates,
            block_interval: self.block_interval,
        }
    }
}

impl<S: StateStore + Send + 'static, T: TxSource> LedgerApp<S, T> {
    /// An application over `ledger` that asks `txs` for at most `max_candidates` per block and
    /// waits `block_interval` before building each block (the chain's pace: protocol windows are
    /// counted in blocks, so this sets how much time a window gives, and it bounds empty blocks).
    pub fn new(
        ledger: LedgerState<S>,
        txs: Arc<T>,
        max_candidates: usize,
        block_interval: Duration,
    ) -> Self {
        Self {
            ledger,
            txs,
            max_candidates,
            block_interval,
        }
    }

    /// Candidates cut so that the block stays under [`MAX_BLOCK_BYTES`] even if all are kept.
    fn bounded_candidates(&self) -> Vec<SignedTransaction> {
        let mut budget = MAX_BLOCK_BYTES - BLOCK_OVERHEAD;
        let mut kept = Vec::new();
        for tx in self.txs.candidates(self.max_candidates) {
            let size = tx.encode_size();
            if size > budget {
                break;
            }
            budget -= size;
            kept.push(tx);
        }
        kept
    }
}

/// Makes the state after the first block of `ancestry` known, executing it and any unknown
/// ancestors (oldest first). `Committed` blocks are valid but have no state any more.
async fn settle<S: StateStore + Send + 'static>(
    ledger: &LedgerState<S>,
    mut ancestry: impl Ancestry<CairnBlock>,
) -> Result<(Verdict, Standing), ConsensusError> {
    let mut unknown: Vec<Digested<CairnBlock>> = Vec::new();
    let mut first = None;
    loop {
        let Some(next) = ancestry.next().await else {
            return Ok((Verdict::Unknown, first.unwrap_or(Standing::Unknown)));
        };
        let header = &next.inner().block().header;
        let standing = ledger.standing(&next.digest().0, header.height, &header.parent)?;
        first.get_or_insert(standing);
        match standing {
            Standing::Known | Standing::Committed if unknown.is_empty() => {
                return Ok((Verdict::Valid, standing));
            }
            // The tip may have moved past this ancestor while the stream was fetching; the
            // blocks above it are executed (or found known) below.
            Standing::Known | Standing::Committed => break,
            Standing::Conflicting => {
                return Ok((Verdict::Invalid, standing));
            }
            Standing::ParentKnown => {
                unknown.push(next);
                break;
            }
            Standing::Unknown => unknown.push(next),
        }
    }
    for block in unknown.iter().rev() {
        match ledger.execute(block.inner().block())? {
            Verdict::Valid => {}
            other => return Ok((other, Standing::ParentKnown)),
        }
    }
    Ok((Verdict::Valid, Standing::Known))
}

impl<E, S, T> Application<E> for LedgerApp<S, T>
where
    E: Clock + Send + 'static,
    S: StateStore + Send + 'static,
    T: TxSource,
{
    type SigningScheme = Scheme;
    type Context = Context<Digest, ed25519::PublicKey>;
    type Block = CairnBlock;
    type Input = ();

    async fn propose(
        &mut self,
        context: (E, Self::Context),
        ancestry: impl Ancestry<CairnBlock>,
        _input: (),
    ) -> Option<Digested<CairnBlock>> {
        if !self.block_interval.is_zero() {
            context.0.sleep(self.block_interval).await;
        }
        let parent = ancestry.peek()?.digest();
        match settle(&self.ledger, ancestry).await {
            Ok((Verdict::Valid, Standing::Known)) => {}
            Ok(outcome) => {
                tracing::debug!(?outcome, "parent state unavailable; skipping proposal");
                return None;
            }
            Err(error) => {
                tracing::error!(%error, "cannot build on parent; skipping proposal");
                return None;
            }
        }
        let candidates = self.bounded_candidates();
        match self.ledger.build(&parent.0, candidates) {
            Ok(Some(block)) => {
                let block = CairnBlock::new(block);
                let digest = block.digest();
                tracing::debug!(
                    height = block.block().header.height,
                    transactions = block.block().transactions.len(),
                    "proposing block"
                );
                Some(Digested::precomputed(block, digest))
            }
            Ok(None) => None,
            Err(error) => {
                tracing::error!(%error, "block building failed; skipping proposal");
                None
            }
        }
    }

    async fn verify(
        &mut self,
        _context: (E, Self::Context),
        ancestry: impl Ancestry<CairnBlock>,
    ) -> bool {
        match settle(&self.ledger, ancestry).await {
            Ok((Verdict::Valid, _)) => true,
            Ok((Verdict::Invalid, _)) => false,
            Ok((Verdict::Unknown, _)) => std::future::pending().await,
            Err(error) => {
                // A local failure (store, lock) says nothing about the block: no verdict.
                tracing::error!(%error, "cannot verify block; leaving the vote pending");
                std::future::pending().await
            }
        }
    }
}
