//! The finality feed: validators publish every finalized block with its finalization
//! certificate; trainers ([`Follower`]) verify the certificate against the validator set and
//! apply the blocks in height order, asking validators for heights they missed.
//!
//! A follower never votes and never trusts a sender: a block is applied only if a quorum of the
//! validator set signed a finalization of exactly its digest, and only on top of the follower's
//! own tip (execute, compare the header's state root, commit), as `cairn_ledger::chain::Chain`
//! does. Anything else is a typed [`FeedError`], and the store does not move.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_ledger::store::StateStore;
use cairn_ledger::DatasetRegistry;
use commonware_consensus::marshal::core::Mailbox;
use commonware_consensus::marshal::standard::Standard;
use commonware_consensus::types::Height;
use commonware_cryptography::{ed25519, Digestible};
use commonware_macros::select;
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Handle, Spawner};
use commonware_utils::ordered::Set;
use futures::channel::mpsc;
use futures::StreamExt;
use rand_core_010::CryptoRng;

use super::block::CairnBlock;
use super::epochs::{EpochError, Epochs};
use super::feed_wire::{FeedMessage, FeedWireError, MAX_REQUEST_HEIGHTS};
use super::speculative::{ConsensusError, LedgerState};
use super::{BlockObserver, Scheme};
use crate::penalty::{Offence, Penalties, PenaltyConfig, Verdict};
use cairn_ledger::validators::MAX_CONSENSUS_VALIDATORS;

/// Why a feed message was refused.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The bytes do not decode.
    #[error(transparent)]
    Wire(#[from] FeedWireError),
    /// The finalization certificate does not verify against the validator set.
    #[error("the finalization of block {height} does not verify against the validator set")]
    BadCertificate {
        /// The block's height.
        height: u64,
    },
    /// The certificate finalizes another block.
    #[error("the finalization names another digest than block {height}")]
    DigestMismatch {
        /// The block's height.
        height: u64,
    },
    /// The block does not apply on the follower's tip (bad execution, root mismatch, store).
    #[error("finalized block {height} cannot be applied: {source}")]
    Apply {
        /// The block's height.
        height: u64,
        /// What went wrong.
        source: ConsensusError,
    },
    /// A follower got a request; only validators serve them.
    #[error("followers do not serve feed requests")]
    NotServing,
    /// Opening the ledger failed.
    #[error(transparent)]
    Ledger(#[from] ConsensusError),
    /// The next epoch's set could not be read from the committed state.
    #[error(transparent)]
    Epoch(#[from] EpochError),
}

impl FeedError {
    /// The offence a refused message counts as against its sender, or `None` when the fault is
    /// the follower's own (its store or a lock failed), not the sender's.
    ///
    /// Undecodable bytes are [`Offence::Malformed`]; a certificate that does not verify or names
    /// another digest is forged data, [`Offence::WrongHash`]; so is a quorum-certified block that
    /// breaks the ledger rules or contradicts the committed state (only a relayed forgery or a
    /// faulty quorum produces one). A request is [`Offence::Unsolicited`]: followers serve none.
    pub fn offence(&self) -> Option<Offence> {
        match self {
            Self::Wire(_) => Some(Offence::Malformed),
            Self::BadCertificate { .. } | Self::DigestMismatch { .. } => Some(Offence::WrongHash),
            Self::Apply { source, .. } => match source {
                ConsensusError::Block(_) | ConsensusError::Conflict { .. } => {
                    Some(Offence::WrongHash)
                }
                _ => None,
            },
            Self::NotServing => Some(Offence::Unsolicited),
            Self::Ledger(_) | Self::Epoch(_) => None,
        }
    }
}

/// What a follower needs to know to verify and apply the feed.
#[derive(Clone, Debug)]
pub struct FollowerConfig {
    /// The chain id (gives the consensus namespace).
    pub chain_id: u64,
    /// The genesis validator set: epoch 0's, and the keys of genesis validators in later
    /// epochs (the ledger's roster has keys only for validators that stood later).
    pub validators: Set<ed25519::PublicKey>,
    /// The node's epochs, if it shares them with other parts; `None` opens them from the store.
    pub epochs: Option<Epochs>,
    /// How long to wait for news before asking a validator for the next height.
    pub retry: Duration,
    /// Most out-of-order blocks kept while a gap is being filled.
    pub max_buffered: usize,
    /// The chain's datasets (every one its genesis names; empty for a chain that serves none).
    pub datasets: Arc<DatasetRegistry>,
}

impl FollowerConfig {
    /// A config with a 1 s retry and 256 buffered blocks.
    pub fn new(chain_id: u64, validators: Set<ed25519::PublicKey>) -> Self {
        Self {
            chain_id,
            validators,
            epochs: None,
            retry: Duration::from_secs(1),
            max_buffered: 256,
            datasets: Arc::default(),
        }
    }
}

/// What a follower did with one valid feed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedOutcome {
    /// The block (and this many buffered successors, in total) was applied.
    Applied(u64),
    /// The block is ahead of the tip; kept until the gap is filled.
    Buffered,
    /// The block is at or below the tip (already applied) or the buffer is full; dropped.
    Ignored,
}

/// A follower's state: its ledger, the epochs whose sets verify certificates, out-of-order
/// blocks.
pub struct Follower<S, O> {
    ledger: LedgerState<S>,
    epochs: Epochs,
    observer: Arc<Mutex<O>>,
    /// Blocks trusted but not yet applied: certified ones, and ancestors a certified block's
    /// parent hashes reached.
    buffer: BTreeMap<u64, CairnBlock>,
    /// Ancestors received without a certificate, not yet linked to a certified block.
    uncertified: BTreeMap<u64, CairnBlock>,
    max_buffered: usize,
}

impl<S: StateStore + Send + 'static, O: BlockObserver> Follower<S, O> {
    /// A follower over `store` (which must hold the chain's genesis block).
    pub fn new(
        config: &FollowerConfig,
        store: Arc<Mutex<S>>,
        observer: Arc<Mutex<O>>,
    ) -> Result<Self, FeedError> {
        let epochs = match &config.epochs {
            Some(epochs) => epochs.clone(),
            None => Epochs::open_shared(
                &store,
                config.chain_id,
                None,
                config.validators.iter().cloned(),
            )?,
        };
        Ok(Self {
            ledger: LedgerState::open(store, config.datasets.clone())?,
            epochs,
            observer,
            buffer: BTreeMap::new(),
            uncertified: BTreeMap::new(),
            max_buffered: config.max_buffered,
        })
    }

    /// The epochs the follower verifies with.
    pub fn epochs(&self) -> &Epochs {
        &self.epochs
    }

    /// The height the follower needs next.
    pub fn next_height(&self) -> Result<u64, FeedError> {
        Ok(self.ledger.tip()?.height + 1)
    }

    /// Verifies and applies one feed message.
    pub fn handle(
        &mut self,
        rng: &mut impl CryptoRng,
        bytes: &[u8],
    ) -> Result<FeedOutcome, FeedError> {
        let (block, certified) = match FeedMessage::from_bytes(bytes, MAX_CONSENSUS_VALIDATORS)? {
            FeedMessage::Finalized {
                block,
                finalization,
            } => {
                let height = block.block().header.height;
                if finalization.proposal.payload != block.digest() {
                    return Err(FeedError::DigestMismatch { height });
                }
                let epoch = commonware_consensus::Epochable::epoch(&finalization).get();
                if epoch != self.epochs.epoch_of(height) {
                    return Err(FeedError::BadCertificate { height });
                }
                // An epoch not registered yet starts after a boundary this follower has not
                // applied: its set is unknown until then, so the block is asked for again
                // later. (A registered epoch long past is below the tip and ignored anyway.)
                let Some((verifier, _)) = self.epochs.scheme(epoch) else {
                    return Ok(FeedOutcome::Ignored);
                };
                if !finalization.verify(rng, &*verifier, &Sequential) {
                    return Err(FeedError::BadCertificate { height });
                }
                (block, true)
            }
            FeedMessage::Ancestor { block } => (block, false),
            FeedMessage::Request { .. } => return Err(FeedError::NotServing),
        };
        let height = block.block().header.height;
        let next = self.next_height()?;
        if height < next || (!certified && self.buffer.contains_key(&height)) {
            return Ok(FeedOutcome::Ignored);
        }
        let held = self.buffer.len() + self.uncertified.len();
        let known = self.buffer.contains_key(&height) || self.uncertified.contains_key(&height);
        if height > next && held >= self.max_buffered && !known {
            // A certified block displaces the highest uncertified one: made-up ancestors sent
            // to fill the buffer cannot crowd out the blocks that carry proof.
            if !certified || self.uncertified.pop_last().is_none() {
                return Ok(FeedOutcome::Ignored);
            }
        }
        if certified {
            self.uncertified.remove(&height);
            self.buffer.insert(height, block);
        } else {
            self.uncertified.insert(height, block);
        }
        self.link_ancestors(next);
        let applied = self.apply_ready()?;
        if applied == 0 {
            return Ok(FeedOutcome::Buffered);
        }
        Ok(FeedOutcome::Applied(applied))
    }

    /// Moves into the trusted buffer every uncertified block that is the parent (by hash) of a
    /// trusted one, walking down from each trusted block towards `next`.
    fn link_ancestors(&mut self, next: u64) {
        let tops: Vec<u64> = self.buffer.keys().copied().collect();
        for top in tops {
            let mut child = top;
            while child > next {
                let parent_height = child - 1;
                if self.buffer.contains_key(&parent_height) {
                    break;
                }
                let Some(parent_hash) = self.buffer.get(&child).map(|b| b.block().header.parent)
                else {
                    break;
                };
                match self.uncertified.get(&parent_height) {
                    Some(candidate) if candidate.digest().0 == parent_hash => {
                        if let Some(block) = self.uncertified.remove(&parent_height) {
                            self.buffer.insert(parent_height, block);
                        }
                        child = parent_height;
                    }
                    // A block that is not the parent: whoever sent it lied; drop it so that
                    // the right one can take its place.
                    Some(_) => {
                        self.uncertified.remove(&parent_height);
                        break;
                    }
                    None => break,
                }
            }
        }
    }

    /// Applies trusted blocks from the next height on while they are contiguous; returns how
    /// many, and forgets everything below the new tip.
    fn apply_ready(&mut self) -> Result<u64, FeedError> {
        let mut next = self.next_height()?;
        let mut applied = 0;
        while let Some(block) = self.buffer.remove(&next) {
            self.apply(&block)?;
            applied += 1;
            next += 1;
        }
        self.buffer.retain(|h, _| *h >= next);
        self.uncertified.retain(|h, _| *h >= next);
        Ok(applied)
    }

    fn apply(&mut self, block: &CairnBlock) -> Result<(), FeedError> {
        let block = block.block();
        let height = block.header.height;
        self.ledger
            .commit_finalized(block)
            .map_err(|source| FeedError::Apply { height, source })?;
        let store = self
            .ledger
            .store()
            .lock()
            .map_err(|_| ConsensusError::Poisoned)?;
        let mut observer = self.observer.lock().map_err(|_| ConsensusError::Poisoned)?;
        observer.on_finalized(block, &*store);
        self.epochs.on_committed(height, &*store)?;
        tracing::debug!(height, "follower applied finalized block");
        Ok(())
    }

    /// The lowest height missing below the buffered blocks, if any are buffered.
    fn gap(&self) -> Option<u64> {
        if self.buffer.is_empty() {
            None
        } else {
            self.next_height().ok()
        }
    }
}

/// Starts a follower on the feed channel without a blocker: offences are scored and logged,
/// but nobody is blocked. Nodes use [`start_follower_with_penalties`]; this is for callers that
/// hold no `Blocker`. Ends when the network closes the channel.
pub fn start_follower<E, S, O, Snd, Rcv>(
    context: E,
    config: FollowerConfig,
    store: Arc<Mutex<S>>,
    observer: Arc<Mutex<O>>,
    feed: (Snd, Rcv),
) -> Handle<Result<(), FeedError>>
where
    E: Clock + Spawner + CryptoRng,
    S: StateStore + Send + 'static,
    O: BlockObserver,
    Snd: Sender<PublicKey = ed25519::PublicKey>,
    Rcv: Receiver<PublicKey = ed25519::PublicKey>,
{
    let penalties = Penalties::new(PenaltyConfig::default());
    context.spawn(move |context| follow(context, config, store, observer, feed, penalties, |_| {}))
}

/// Starts a follower on the feed channel: applies verified blocks and asks validators
/// (round robin, skipping blocked ones) for the next height when a gap shows or nothing arrived
/// for `retry`. Every refused message marks its sender in a [`Penalties`] record weighted by
/// `penalties` ([`FeedError::offence`]); a sender that reaches the limit is blocked through
/// `blocker`. Ends when the network closes the channel.
pub fn start_follower_with_penalties<E, S, O, Snd, Rcv, B>(
    context: E,
    config: FollowerConfig,
    store: Arc<Mutex<S>>,
    observer: Arc<Mutex<O>>,
    feed: (Snd, Rcv),
    mut blocker: B,
    penalties: PenaltyConfig,
) -> Handle<Result<(), FeedError>>
where
    E: Clock + Spawner + CryptoRng,
    S: StateStore + Send + 'static,
    O: BlockObserver,
    Snd: Sender<PublicKey = ed25519::PublicKey>,
    Rcv: Receiver<PublicKey = ed25519::PublicKey>,
    B: Blocker<PublicKey = ed25519::PublicKey>,
{
    let penalties = Penalties::new(penalties);
    context.spawn(move |context| {
        follow(
            context,
            config,
            store,
            observer,
            feed,
            penalties,
            move |peer| {
                let _ = blocker.block(peer.clone());
            },
        )
    })
}

async fn follow<E, S, O, Snd, Rcv>(
    mut context: E,
    config: FollowerConfig,
    store: Arc<Mutex<S>>,
    observer: Arc<Mutex<O>>,
    (mut sender, mut receiver): (Snd, Rcv),
    mut penalties: Penalties<ed25519::PublicKey>,
    mut block: impl FnMut(&ed25519::PublicKey) + Send,
) -> Result<(), FeedError>
where
    E: Clock + Spawner + CryptoRng,
    S: StateStore + Send + 'static,
    O: BlockObserver,
    Snd: Sender<PublicKey = ed25519::PublicKey>,
    Rcv: Receiver<PublicKey = ed25519::PublicKey>,
{
    let mut follower = Follower::new(&config, store, observer)?;
    let mut blocked: BTreeSet<ed25519::PublicKey> = BTreeSet::new();
    let mut turn = 0usize;
    let mut deadline = context.current() + config.retry;
    let mut requests = Requests::default();
    loop {
        let mut ask = false;
        select! {
            message = receiver.recv() => {
                let Ok((peer, bytes)) = message else {
                    tracing::debug!("feed channel closed; follower stops");
                    return Ok(());
                };
                match follower.handle(&mut context, bytes.as_ref()) {
                    Ok(FeedOutcome::Applied(_)) => {
                        deadline = context.current() + config.retry;
                    }
                    Ok(FeedOutcome::Buffered) => {
                        ask = follower.gap().is_some()
                            && requests.is_new(follower.next_height()?);
                    }
                    Ok(FeedOutcome::Ignored) => {}
                    Err(error) => match error.offence() {
                        Some(offence) => {
                            let verdict = penalties.mark(&peer, offence);
                            tracing::warn!(
                                %peer, %error, ?offence, score = penalties.score(&peer),
                                "feed message refused"
                            );
                            if verdict == Verdict::Block && blocked.insert(peer.clone()) {
                                tracing::warn!(%peer, "blocking peer on the feed channel");
                                block(&peer);
                            }
                        }
                        None => tracing::warn!(%peer, %error, "follower failed on a feed message"),
                    },
                }
            },
            _ = context.sleep_until(deadline) => {
                ask = true;
                deadline = context.current() + config.retry;
            },
        }
        if !ask {
            continue;
        }
        let (_, validators) = follower.epochs().current();
        let eligible: Vec<&ed25519::PublicKey> = validators
            .iter()
            .filter(|validator| !blocked.contains(*validator))
            .collect();
        if eligible.is_empty() {
            continue;
        }
        let from = follower.next_height()?;
        requests.asked(from);
        let request = FeedMessage::Request {
            from,
            count: MAX_REQUEST_HEIGHTS,
        };
        let target = eligible[turn % eligible.len()].clone();
        turn = turn.wrapping_add(1);
        sender.send(
            Recipients::One(target),
            bytes::Bytes::from(request.to_bytes()),
            false,
        );
    }
}

/// Which gaps a follower has asked about. A lagging follower sees a buffered block from every
/// validator at every new height; asking again each time would send validators one
/// `MAX_REQUEST_HEIGHTS`-block request per validator per block per lagging follower, and at a few
/// hundred followers their answers outgrow the chain (a 500-trainer simulation stalled that way).
/// So a gap is asked about once per starting height; the `retry` timer asks again when the
/// answer is lost.
#[derive(Debug, Default)]
struct Requests {
    last_from: Option<u64>,
}

impl Requests {
    /// Whether a gap starting at `from` has not been asked about yet.
    fn is_new(&self, from: u64) -> bool {
        self.last_from != Some(from)
    }

    /// Records a request starting at `from` (also the timer's re-asks).
    fn asked(&mut self, from: u64) {
        self.last_from = Some(from);
    }
}

/// The validator side: publishes every newly committed height to all peers and answers
/// followers' requests from marshal's archives. Ends when the network closes the channel.
pub(crate) async fn serve<Snd, Rcv>(
    marshal: Mailbox<Scheme, Standard<CairnBlock>>,
    mut heights: mpsc::Receiver<u64>,
    (mut sender, mut receiver): (Snd, Rcv),
) where
    Snd: Sender<PublicKey = ed25519::PublicKey>,
    Rcv: Receiver<PublicKey = ed25519::PublicKey>,
{
    loop {
        select! {
            height = heights.next() => {
                let Some(height) = height else { return };
                if let Some(message) = finalized(&marshal, height).await {
                    sender.send(Recipients::All, bytes::Bytes::from(message.to_bytes()), false);
                }
            },
            message = receiver.recv() => {
                let Ok((peer, bytes)) = message else { return };
                let (from, count) = match FeedMessage::from_bytes(bytes.as_ref(), MAX_CONSENSUS_VALIDATORS) {
                    Ok(FeedMessage::Request { from, count }) => (from, count),
                    // Validators learn finality from consensus, not from the feed.
                    Ok(FeedMessage::Finalized { .. } | FeedMessage::Ancestor { .. }) => continue,
                    Err(error) => {
                        tracing::debug!(%peer, %error, "bad feed request");
                        continue;
                    }
                };
                for height in from..from.saturating_add(u64::from(count)) {
                    let Some(message) = finalized(&marshal, height).await else { break };
                    sender.send(
                        Recipients::One(peer.clone()),
                        bytes::Bytes::from(message.to_bytes()),
                        false,
                    );
                }
            },
        }
    }
}

/// The feed message for a finalized height: the block with its finalization, or, when
/// consensus finalized it only as the ancestor of a later block (no certificate names it), the
/// block alone ([`FeedMessage::Ancestor`]); `None` when the height is not finalized here yet.
async fn finalized(
    marshal: &Mailbox<Scheme, Standard<CairnBlock>>,
    height: u64,
) -> Option<FeedMessage> {
    let block = marshal.get_block(Height::new(height)).await?;
    let block = block.inner().clone();
    Some(match marshal.get_finalization(Height::new(height)).await {
        Some(finalization) => FeedMessage::Finalized {
            block,
            finalization,
        },
        None => FeedMessage::Ancestor { block },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_faults_map_to_offences_and_local_faults_to_none() {
        let conflict = ConsensusError::Conflict {
            height: 1,
            header: "aa".into(),
            committed: "bb".into(),
        };
        let cases = [
            (
                FeedError::Wire(FeedWireError::Empty),
                Some(Offence::Malformed),
            ),
            (
                FeedError::BadCertificate { height: 1 },
                Some(Offence::WrongHash),
            ),
            (
                FeedError::DigestMismatch { height: 1 },
                Some(Offence::WrongHash),
            ),
            (
                FeedError::Apply {
                    height: 1,
                    source: conflict,
                },
                Some(Offence::WrongHash),
            ),
            (FeedError::NotServing, Some(Offence::Unsolicited)),
            (
                FeedError::Apply {
                    height: 1,
                    source: ConsensusError::Poisoned,
                },
                None,
            ),
            (FeedError::Ledger(ConsensusError::EmptyStore), None),
        ];
        for (error, offence) in cases {
            assert_eq!(error.offence(), offence, "{error}");
        }
    }

    #[test]
    fn a_gap_is_asked_about_once_per_starting_height() {
        let mut requests = Requests::default();
        assert!(requests.is_new(5));
        requests.asked(5);
        // Every validator's next block lands in the buffer while the answer is on its way.
        assert!(!requests.is_new(5));
        assert!(!requests.is_new(5));
        // The answer filled part of the gap: the rest is a new question.
        assert!(requests.is_new(69));
        requests.asked(69);
        assert!(!requests.is_new(69));
    }
}
