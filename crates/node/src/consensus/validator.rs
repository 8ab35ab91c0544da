//! One validator: simplex consensus (ed25519, round-robin leaders) over the ledger application,
//! with marshal disseminating, backfilling and ordering full blocks, and the finality feed.
//!
//! Everything is spawned through the runtime context given to [`run_validator`], so the same
//! code runs on the deterministic runtime (tests, simulation) and on tokio, and aborting the
//! task running it stops the whole validator (its children are aborted with it).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_ledger::block::Block;
use cairn_ledger::chain::Chain;
use cairn_ledger::genesis::Genesis;
use cairn_ledger::store::StateStore;
use cairn_ledger::DatasetRegistry;
use commonware_broadcast::buffered;
use commonware_consensus::marshal::core::Actor as MarshalActor;
use commonware_consensus::marshal::resolver::p2p as marshal_resolver;
use commonware_consensus::marshal::standard::{Inline, Standard};
use commonware_consensus::marshal::{self, Start};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::{self, Floor, ForwardPolicy, SkipBudget, SkipPolicy};
use commonware_consensus::types::{Epoch, Height, ViewDelta};
use commonware_cryptography::certificate::Verifier as _;
use commonware_cryptography::{ed25519, Digested, Digestible, Sha256, Signer as _};
use commonware_macros::select;
use commonware_p2p::utils::mux::{self, Builder as _, MuxHandle, Muxer, SubReceiver, SubSender};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_storage::archive::immutable;
use commonware_utils::ordered::Set;
use commonware_utils::vec::NonEmptyVec;
use commonware_utils::{NZDuration, NZUsize, NZU16, NZU64};
use futures::channel::mpsc;
use futures::StreamExt;
use rand_core_010::CryptoRng;

use super::app::{LedgerApp, TxSource};
use super::block::CairnBlock;
use super::epochs::Epochs;
use super::feed;
use super::feed_wire;
use super::finalizer::Finalizer;
use super::speculative::{committed_header, ConsensusError, LedgerState};
use super::{BlockObserver, Digest, Scheme};

/// Default pause before each proposal: about two blocks a second on a fast network.
pub const DEFAULT_BLOCK_INTERVAL: Duration = Duration::from_millis(400);

/// The consensus namespace of a chain: votes for one chain never count on another.
pub fn namespace(chain_id: u64) -> Vec<u8> {
    let mut namespace = b"cairn/consensus/".to_vec();
    namespace.extend_from_slice(&chain_id.to_be_bytes());
    namespace
}

/// The largest p2p message consensus and the feed send with `validators` validators (on a
/// chain with epochs, pass the largest set an epoch may have,
/// `cairn_ledger::validators::MAX_CONSENSUS_VALIDATORS`); the network's `max_size` must be at
/// least this (commonware panics on larger sends). simplex's messages carry the epoch
/// multiplexer's prefix.
pub fn max_message_size(validators: u32) -> u32 {
    commonware_p2p::max_message_size(&[
        mux::prefixed(simplex::max_payload_size::<Scheme, Digest>(validators)),
        marshal::max_payload_size::<Standard<CairnBlock>, Scheme>(validators, &()),
        feed_wire::max_message_size(validators),
    ])
}

/// Commits `genesis` as block 0 if `store` is empty, and returns block 0 (from the store if it
/// already holds a chain: then `genesis` is not consulted).
pub fn init_store<S: StateStore>(
    store: S,
    genesis: &Genesis,
    datasets: Arc<DatasetRegistry>,
) -> Result<(S, Block), ConsensusError> {
    let store = if store.height().is_none() {
        Chain::create(store, genesis, datasets)
            .map_err(|error| ConsensusError::Genesis(error.to_string()))?
            .into_store()
    } else {
        store
    };
    let record = store
        .block_record(0)?
        .ok_or_else(|| ConsensusError::BadRecord {
            height: 0,
            reason: "missing".into(),
        })?;
    let block = Block::from_bytes(&record).map_err(|error| ConsensusError::BadRecord {
        height: 0,
        reason: error.to_string(),
    })?;
    debug_assert_eq!(committed_header(&store, 0)?.hash(), block.hash());
    Ok((store, block))
}

/// How long simplex and marshal wait for things (simplex requires
/// `leader < certification < skip` and `retry < skip`).
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// Wait for the leader's proposal before voting to skip the view.
    pub leader: Duration,
    /// Wait for a notarization before voting to skip the view.
    pub certification: Duration,
    /// Rebroadcast period of a skip vote.
    pub retry: Duration,
    /// Skip a silent leader's whole term after this long.
    pub skip: Duration,
    /// Fetch timeout for missing certificates and blocks.
    pub fetch: Duration,
    /// Delay between fetch retries.
    pub fetch_retry: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            leader: Duration::from_secs(1),
            certification: Duration::from_secs(2),
            retry: Duration::from_millis(500),
            skip: Duration::from_secs(5),
            fetch: Duration::from_secs(2),
            fetch_retry: Duration::from_millis(100),
        }
    }
}

/// Everything a validator needs besides its store, mempool, observer and network.
#[derive(Clone, Debug)]
pub struct ValidatorConfig {
    /// The chain id (gives the consensus namespace).
    pub chain_id: u64,
    /// The genesis validator set: epoch 0's, and the keys of genesis validators in later
    /// epochs (the ledger's roster has keys only for validators that stood later).
    pub validators: Set<ed25519::PublicKey>,
    /// The node's epochs, if it shares them with other parts (its signing key must be `key`);
    /// `None` opens them from the store.
    pub epochs: Option<Epochs>,
    /// Where the validator reports its epoch and membership.
    pub status: ConsensusStatus,
    /// This validator's consensus key (it votes in the epochs whose set holds its public key).
    pub key: ed25519::PrivateKey,
    /// Prefix of every storage partition (`[A-Za-z0-9_-]`, unique per node and chain).
    pub partition_prefix: String,
    /// Block 0 (see [`init_store`]).
    pub genesis: Block,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Size of each actor's mailbox.
    pub mailbox_size: NonZeroUsize,
    /// Most mempool candidates a proposer tries per block.
    pub max_candidates: usize,
    /// Views kept below the finalized tip.
    pub view_retention: u64,
    /// How long a leader waits before building its block (must stay below `timeouts.leader`).
    pub block_interval: Duration,
    /// The chain's datasets (every one its genesis names; empty for a chain that serves none).
    pub datasets: Arc<DatasetRegistry>,
}

impl ValidatorConfig {
    /// A config with default timeouts, mailboxes of 1024, 1000 candidates, 64 views kept.
    pub fn new(
        chain_id: u64,
        validators: Set<ed25519::PublicKey>,
        key: ed25519::PrivateKey,
        partition_prefix: String,
        genesis: Block,
    ) -> Self {
        Self {
            chain_id,
            validators,
            epochs: None,
            status: ConsensusStatus::default(),
            key,
            partition_prefix,
            genesis,
            timeouts: Timeouts::default(),
            mailbox_size: NZUsize!(1024),
            max_candidates: 1000,
            view_retention: 64,
            block_interval: DEFAULT_BLOCK_INTERVAL,
            datasets: Arc::default(),
        }
    }
}

/// The p2p channels a validator uses: (sender, receiver) per channel id of
/// [`crate::channels`] VOTES..BROADCAST and FEED.
pub struct ValidatorChannels<Snd, Rcv> {
    /// simplex votes.
    pub votes: (Snd, Rcv),
    /// simplex certificates.
    pub certificates: (Snd, Rcv),
    /// simplex certificate resolver.
    pub resolver: (Snd, Rcv),
    /// marshal backfill.
    pub backfill: (Snd, Rcv),
    /// marshal block broadcast.
    pub broadcast: (Snd, Rcv),
    /// finality feed.
    pub feed: (Snd, Rcv),
}

const IO_BUFFER: NonZeroUsize = NZUsize!(1 << 16);

fn archive_config<C>(
    prefix: &str,
    name: &str,
    page_cache: CacheRef,
    codec_config: C,
) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-freezer-table"),
        freezer_table_initial_size: 64,
        freezer_table_resize_frequency: 10,
        freezer_table_resize_chunk_size: 10,
        freezer_key_partition: format!("{prefix}-{name}-freezer-key"),
        freezer_key_page_cache: page_cache,
        freezer_value_partition: format!("{prefix}-{name}-freezer-value"),
        freezer_value_target_size: 1 << 20,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: NZU64!(1024),
        codec_config,
        replay_buffer: IO_BUFFER,
        freezer_key_write_buffer: IO_BUFFER,
        freezer_value_write_buffer: IO_BUFFER,
        ordinal_write_buffer: IO_BUFFER,
    }
}

/// Spawns [`run_validator`] as a child task of `context`.
#[allow(clippy::too_many_arguments)]
pub fn start_validator<E, S, T, O, Snd, Rcv, P, B>(
    context: E,
    config: ValidatorConfig,
    store: Arc<Mutex<S>>,
    txs: Arc<T>,
    observer: Arc<Mutex<O>>,
    channels: ValidatorChannels<Snd, Rcv>,
    peers: P,
    blocker: B,
) -> Handle<Result<(), ConsensusError>>
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng,
    S: StateStore + Send + 'static,
    T: TxSource,
    O: BlockObserver,
    Snd: Sender<PublicKey = ed25519::PublicKey>,
    Rcv: Receiver<PublicKey = ed25519::PublicKey>,
    P: Provider<PublicKey = ed25519::PublicKey>,
    B: Blocker<PublicKey = ed25519::PublicKey>,
{
    context.spawn(move |context| {
        run_validator(
            context, config, store, txs, observer, channels, peers, blocker,
        )
    })
}

/// Runs one validator until its consensus engine stops. `store` must already hold block 0
/// ([`init_store`]); after a crash, pass the same store and partition prefix again.
#[allow(clippy::too_many_arguments)]
pub async fn run_validator<E, S, T, O, Snd, Rcv, P, B>(
    context: E,
    config: ValidatorConfig,
    store: Arc<Mutex<S>>,
    txs: Arc<T>,
    observer: Arc<Mutex<O>>,
    channels: ValidatorChannels<Snd, Rcv>,
    peers: P,
    blocker: B,
) -> Result<(), ConsensusError>
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng,
    S: StateStore + Send + 'static,
    T: TxSource,
    O: BlockObserver,
    Snd: Sender<PublicKey = ed25519::PublicKey>,
    Rcv: Receiver<PublicKey = ed25519::PublicKey>,
    P: Provider<PublicKey = ed25519::PublicKey>,
    B: Blocker<PublicKey = ed25519::PublicKey>,
{
    let public_key = config.key.public_key();
    let epochs = match &config.epochs {
        Some(epochs) => epochs.clone(),
        None => Epochs::open_shared(
            &store,
            config.chain_id,
            Some(config.key.clone()),
            config.validators.iter().cloned(),
        )
        .map_err(|error| ConsensusError::Epoch(error.to_string()))?,
    };
    let ledger = LedgerState::open(store, config.datasets.clone())?;
    let genesis = CairnBlock::new(config.genesis.clone());
    let prefix = config.partition_prefix.clone();
    let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(1024));
    let timeouts = config.timeouts.clone();

    let resolver = marshal_resolver::init(
        context.child("marshal_resolver"),
        marshal_resolver::Config {
            public_key: public_key.clone(),
            peer_provider: peers.clone(),
            blocker: blocker.clone(),
            mailbox_size: config.mailbox_size,
            fetch_timeout: NZDuration!(timeouts.fetch),
            fetch_retry_delay: timeouts.fetch_retry,
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );

    let (broadcast_engine, buffer) = buffered::Engine::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: public_key.clone(),
            mailbox_size: config.mailbox_size,
            deque_size: 10,
            priority: false,
            codec_config: (),
            peer_provider: peers.clone(),
            strategy: Sequential,
        },
    );
    broadcast_engine.start(channels.broadcast);

    let finalizations = immutable::Archive::init(
        context.child("finalizations_by_height"),
        archive_config(
            &prefix,
            "finalizations",
            page_cache.clone(),
            Scheme::certificate_codec_config_unbounded(),
        ),
    )
    .await
    .map_err(|error| ConsensusError::Archive(error.to_string()))?;
    let blocks = immutable::Archive::init(
        context.child("finalized_blocks"),
        archive_config(&prefix, "blocks", page_cache.clone(), ()),
    )
    .await
    .map_err(|error| ConsensusError::Archive(error.to_string()))?;

    let epocher = epochs.epocher();
    let (marshal_actor, marshal, _floor) = MarshalActor::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: epochs.provider(),
            epocher: epocher.clone(),
            start: Start::Genesis(Digested::precomputed(genesis.clone(), genesis.digest())),
            partition_prefix: prefix.clone(),
            mailbox_size: config.mailbox_size,
            view_retention: ViewDelta::new(config.view_retention),
            prunable_items_per_section: NZU64!(64),
            page_cache: page_cache.clone(),
            replay_buffer: IO_BUFFER,
            key_write_buffer: IO_BUFFER,
            value_write_buffer: IO_BUFFER,
            block_codec_config: (),
            max_repair: NZUsize!(16),
            max_pending_acks: NZUsize!(1),
            strategy: Sequential,
        },
    )
    .await;

    let (feed_heights, feed_receiver) = mpsc::channel(config.mailbox_size.get());
    let feed_marshal = marshal.clone();
    let feed_channel = channels.feed;
    context
        .child("feed")
        .spawn(move |_| feed::serve(feed_marshal, feed_receiver, feed_channel));

    // Subscribe before the finalizer can register a new epoch.
    let notices = epochs.subscribe();
    let finalizer = Finalizer::new(ledger.clone(), txs.clone(), observer, Some(feed_heights))
        .with_epochs(epochs.clone());
    let app = LedgerApp::new(
        ledger.clone(),
        txs,
        config.max_candidates,
        config.block_interval,
    );
    let inline = Inline::new(context.child("application"), app, marshal.clone(), epocher);
    marshal_actor.start(finalizer, buffer, resolver);

    let orchestrator = Orchestrator {
        context: context.child("orchestrator"),
        epochs,
        ledger,
        marshal,
        inline,
        blocker,
        genesis: genesis.digest(),
        status: config.status.clone(),
        config,
    };
    orchestrator
        .run(
            channels.votes,
            channels.certificates,
            channels.resolver,
            notices,
        )
        .await
}

/// What a validator's consensus is doing, for status pages and metrics.
#[derive(Clone, Debug, Default)]
pub struct ConsensusStatus {
    inner: Arc<Mutex<StatusInner>>,
}

#[derive(Clone, Debug, Default)]
struct StatusInner {
    epoch: u64,
    member: bool,
    validators: usize,
}

impl ConsensusStatus {
    /// The epoch consensus runs (or follows) now.
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Whether this node votes in that epoch.
    pub fn member(&self) -> bool {
        self.lock().member
    }

    /// The size of that epoch's validator set.
    pub fn validators(&self) -> usize {
        self.lock().validators
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatusInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, epoch: u64, member: bool, validators: usize) {
        *self.lock() = StatusInner {
            epoch,
            member,
            validators,
        };
    }
}

/// The epoch multiplexers of the three consensus channels: each epoch's engine registers its
/// subchannel on all three.
struct EpochChannels<S: Sender> {
    votes: MuxHandle<S>,
    certificates: MuxHandle<S>,
    resolver: MuxHandle<S>,
}

type Muxed<S> = (
    SubSender<S>,
    SubReceiver<<S as commonware_p2p::LimitedSender>::PublicKey>,
);

/// Runs one simplex engine per epoch: starts the engine of the current epoch (a voter where
/// this node is in its set, an observer elsewhere), stops it when the finalizer registers the
/// next epoch (at the boundary block), and keeps a node that is behind catching up through
/// marshal.
///
/// Each consensus channel is multiplexed by epoch, so a node still finishing epoch `e` and one
/// already in `e + 1` never read each other's votes. A message for a later epoch than this
/// node's says its sender finalized this epoch's last block: marshal is hinted to fetch it from
/// that sender.
struct Orchestrator<E, S, A, B>
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng,
{
    context: E,
    config: ValidatorConfig,
    epochs: Epochs,
    ledger: LedgerState<S>,
    marshal: marshal::core::Mailbox<Scheme, Standard<CairnBlock>>,
    inline: A,
    blocker: B,
    genesis: Digest,
    status: ConsensusStatus,
}

impl<E, S, A, B> Orchestrator<E, S, A, B>
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng,
    S: StateStore + Send + 'static,
    A: commonware_consensus::CertifiableAutomaton<
            Digest = Digest,
            Context = commonware_consensus::simplex::types::Context<Digest, ed25519::PublicKey>,
        > + commonware_consensus::Relay<
            Digest = Digest,
            PublicKey = ed25519::PublicKey,
            Plan = simplex::Plan<ed25519::PublicKey>,
        > + commonware_consensus::Reporter<
            Activity = commonware_consensus::simplex::types::Activity<Scheme, Digest>,
        > + Clone,
    B: Blocker<PublicKey = ed25519::PublicKey>,
{
    async fn run<Snd, Rcv>(
        mut self,
        votes: (Snd, Rcv),
        certificates: (Snd, Rcv),
        resolver: (Snd, Rcv),
        mut notices: futures::channel::mpsc::UnboundedReceiver<u64>,
    ) -> Result<(), ConsensusError>
    where
        Snd: Sender<PublicKey = ed25519::PublicKey>,
        Rcv: Receiver<PublicKey = ed25519::PublicKey>,
    {
        let (votes_mux, votes_mux_handle, mut votes_backup) =
            Muxer::builder(self.context.child("votes_mux"), votes.0, votes.1)
                .with_backup()
                .build();
        votes_mux.start();
        let (certificates_mux, certificates_mux_handle, mut certificates_backup) = Muxer::builder(
            self.context.child("certificates_mux"),
            certificates.0,
            certificates.1,
        )
        .with_backup()
        .build();
        certificates_mux.start();
        let (resolver_mux, resolver_mux_handle, mut resolver_backup) =
            Muxer::builder(self.context.child("resolver_mux"), resolver.0, resolver.1)
                .with_backup()
                .build();
        resolver_mux.start();

        let mut handles = EpochChannels {
            votes: votes_mux_handle,
            certificates: certificates_mux_handle,
            resolver: resolver_mux_handle,
        };
        let (mut epoch, _) = self.epochs.current();
        let mut engine = self.enter(epoch, &mut handles).await?;
        let tick = self.config.timeouts.fetch;
        let mut last_height = self.ledger.tip()?.height;
        let mut deadline = self.context.current() + tick;
        loop {
            let ahead: Option<(u64, ed25519::PublicKey)> = select! {
                notice = notices.next() => {
                    let Some(next) = notice else {
                        return Ok(());
                    };
                    if next > epoch {
                        engine.abort();
                        epoch = next;
                        engine = self
                            .enter(epoch, &mut handles)
                            .await?;
                    }
                    None
                },
                message = votes_backup.recv() => message.map(|(channel, (peer, _))| (channel, peer)),
                message = certificates_backup.recv() => message.map(|(channel, (peer, _))| (channel, peer)),
                message = resolver_backup.recv() => message.map(|(channel, (peer, _))| (channel, peer)),
                _ = self.context.sleep_until(deadline) => {
                    deadline = self.context.current() + tick;
                    // No progress for a whole tick (outside the set, or the set moved on
                    // without us): ask this epoch's validators for the next finalized block.
                    let height = self.ledger.tip()?.height;
                    if height == last_height {
                        self.hint(Height::new(height + 1), epoch);
                    }
                    last_height = height;
                    None
                },
            };
            if let Some((channel, peer)) = ahead {
                if channel > epoch {
                    if let Some(last) = self.epochs.last_height(epoch) {
                        self.marshal.hint_finalized(last, NonEmptyVec::new(peer));
                    }
                }
            }
        }
    }

    /// Hints marshal that `height` may be finalized, asking `epoch`'s other validators.
    fn hint(&self, height: Height, epoch: u64) {
        let me = self.config.key.public_key();
        let targets: Vec<ed25519::PublicKey> = self
            .epochs
            .set(epoch)
            .map(|set| set.iter().filter(|pk| **pk != me).cloned().collect())
            .unwrap_or_default();
        if let Ok(targets) = NonEmptyVec::try_from(targets) {
            self.marshal.hint_finalized(height, targets);
        }
    }

    /// Starts `epoch`'s engine: signing where this node is in the set, observing elsewhere.
    async fn enter<S2: Sender<PublicKey = ed25519::PublicKey>>(
        &mut self,
        epoch: u64,
        channels: &mut EpochChannels<S2>,
    ) -> Result<Handle<()>, ConsensusError> {
        let me = self.config.key.public_key();
        let Some((scheme, member)) = self.epochs.scheme(epoch) else {
            return Err(ConsensusError::Epoch(format!(
                "epoch {epoch} is not registered"
            )));
        };
        let validators = self.epochs.set(epoch).map_or(0, |set| set.len());
        self.status.set(epoch, member, validators);
        let floor = if epoch == 0 {
            self.genesis
        } else {
            let boundary = epoch * self.epochs.epoch_length() - 1;
            let record = self
                .ledger
                .store()
                .lock()
                .map_err(|_| ConsensusError::Poisoned)?
                .block_record(boundary)?
                .ok_or_else(|| ConsensusError::BadRecord {
                    height: boundary,
                    reason: "the boundary block of the previous epoch is not committed".into(),
                })?;
            let block = cairn_ledger::block::Block::from_bytes(&record).map_err(|error| {
                ConsensusError::BadRecord {
                    height: boundary,
                    reason: error.to_string(),
                }
            })?;
            CairnBlock::new(block).digest()
        };
        let register = |error: commonware_p2p::utils::mux::Error| {
            ConsensusError::Epoch(format!("epoch {epoch}'s channels: {error}"))
        };
        let votes: Muxed<S2> = channels.votes.register(epoch).await.map_err(register)?;
        let certificates: Muxed<S2> = channels
            .certificates
            .register(epoch)
            .await
            .map_err(register)?;
        let resolver: Muxed<S2> = channels.resolver.register(epoch).await.map_err(register)?;
        let timeouts = self.config.timeouts.clone();
        let prefix = &self.config.partition_prefix;
        let signer = Arc::unwrap_or_clone(scheme);
        if member {
            tracing::info!(epoch, validators, key = %me, "entering epoch as a validator");
        } else {
            // Outside the set the engine runs as an observer: it verifies the set's votes and
            // certificates (which reach every connected peer) and reports finalizations to
            // marshal, so this node keeps up and is ready when the ledger elects it.
            tracing::info!(epoch, validators, key = %me, "entering epoch as an observer");
        }
        let engine = simplex::Engine::new(
            self.context.child("simplex").with_attribute("epoch", epoch),
            simplex::Config {
                scheme: signer,
                elector: RoundRobin::<Sha256>::default(),
                blocker: self.blocker.clone(),
                automaton: self.inline.clone(),
                relay: self.inline.clone(),
                reporter: self.inline.clone(),
                strategy: Sequential,
                partition: format!("{prefix}-simplex-{epoch}"),
                mailbox_size: self.config.mailbox_size,
                epoch: Epoch::new(epoch),
                floor: Floor::Genesis(floor),
                replay_buffer: IO_BUFFER,
                write_buffer: IO_BUFFER,
                page_cache: CacheRef::new(NZU16!(4096), NZUsize!(1024)),
                leader_timeout: timeouts.leader,
                certification_timeout: timeouts.certification,
                timeout_retry: timeouts.retry,
                view_retention: ViewDelta::new(self.config.view_retention),
                skip: SkipPolicy::Enabled {
                    timeout: timeouts.skip,
                    budget: SkipBudget::Participants,
                },
                fetch_timeout: NZDuration!(timeouts.fetch),
                fetch_retry_delay: timeouts.fetch_retry,
                forward: ForwardPolicy::Disabled,
                track_historical_votes: false,
            },
        );
        Ok(engine.start(votes, certificates, resolver))
    }
}
