//! Commits finalized blocks to the ledger store in height order, then tells the observer, the
//! transaction source and the finality feed, then acknowledges to marshal.

use std::sync::{Arc, Mutex};

use cairn_ledger::store::StateStore;
use commonware_actor::Feedback;
use commonware_consensus::marshal::Update;
use commonware_consensus::Reporter;
use commonware_utils::acknowledgement::Acknowledgement;
use futures::channel::mpsc;

use super::app::TxSource;
use super::block::CairnBlock;
use super::epochs::Epochs;
use super::speculative::LedgerState;
use super::BlockObserver;

/// marshal's reporter: applies each finalized block to the ledger.
///
/// The commit happens inside [`Reporter::report`], synchronously, before the acknowledgement,
/// so marshal records a height as processed only once the ledger holds it. A block marshal
/// redelivers (after a restart, the crash window between commit and ack) is checked against the
/// committed block and acknowledged again without re-applying it or calling the observer. A
/// block that cannot be committed (a root mismatch means this node's state machine disagrees
/// with the finalized chain) is logged and left unacknowledged, which stops marshal: the node
/// must not go on past a state it cannot reproduce.
pub struct Finalizer<S, T, O> {
    ledger: LedgerState<S>,
    txs: Arc<T>,
    observer: Arc<Mutex<O>>,
    feed: Option<mpsc::Sender<u64>>,
    epochs: Option<Epochs>,
}

impl<S, T, O> Clone for Finalizer<S, T, O> {
    fn clone(&self) -> Self {
        Self {
            ledger: self.ledger.clone(),
            txs: self.txs.clone(),
            observer: self.observer.clone(),
            feed: self.feed.clone(),
            epochs: self.epochs.clone(),
        }
    }
}

impl<S, T, O> Finalizer<S, T, O>
where
    S: StateStore + Send + 'static,
    T: TxSource,
    O: BlockObserver,
{
    /// A finalizer over `ledger`; `feed` (if any) receives each newly committed height.
    pub fn new(
        ledger: LedgerState<S>,
        txs: Arc<T>,
        observer: Arc<Mutex<O>>,
        feed: Option<mpsc::Sender<u64>>,
    ) -> Self {
        Self {
            ledger,
            txs,
            observer,
            feed,
            epochs: None,
        }
    }

    /// Registers each next epoch (at every epoch's last block, before acknowledging it).
    pub fn with_epochs(mut self, epochs: Epochs) -> Self {
        self.epochs = Some(epochs);
        self
    }

    /// Commits one finalized block; `true` if the caller may acknowledge it.
    fn finalize(&mut self, block: &CairnBlock) -> bool {
        let block = block.block();
        let height = block.header.height;
        match self.ledger.commit_finalized(block) {
            Ok(false) => {
                tracing::debug!(height, "finalized block already committed");
                true
            }
            Ok(true) => {
                match (self.ledger.store().lock(), self.observer.lock()) {
                    (Ok(store), Ok(mut observer)) => {
                        observer.on_finalized(block, &*store);
                        if let Some(epochs) = &self.epochs {
                            if let Err(error) = epochs.on_committed(height, &*store) {
                                // Without the next set this node cannot follow consensus.
                                tracing::error!(height, %error, "the next epoch cannot start");
                                return false;
                            }
                        }
                    }
                    _ => {
                        tracing::error!(height, "a lock was poisoned; the observer was not told");
                        return false;
                    }
                }
                self.txs.remove_included(&block.transactions);
                if let Some(feed) = &mut self.feed {
                    if feed.try_send(height).is_err() {
                        tracing::debug!(height, "finality feed busy; followers will ask for it");
                    }
                }
                tracing::debug!(
                    height,
                    transactions = block.transactions.len(),
                    "finalized block committed"
                );
                true
            }
            Err(error) => {
                tracing::error!(height, %error, "finalized block could not be committed");
                false
            }
        }
    }
}

impl<S, T, O> Reporter for Finalizer<S, T, O>
where
    S: StateStore + Send + 'static,
    T: TxSource,
    O: BlockObserver,
{
    type Activity = Update<CairnBlock>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        match activity {
            Update::Tip(_, height, _) => {
                tracing::trace!(height = height.get(), "finalized tip");
            }
            Update::Block(block, ack) => {
                if self.finalize(block.inner()) {
                    ack.acknowledge();
                }
            }
        }
        Feedback::Ok
    }
}
