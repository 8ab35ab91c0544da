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
use commonware_consensus::types::{Epoch, FixedEpocher, ViewDelta};
use commonware_cryptography::certificate::{ConstantProvider, Verifier as _};
use commonware_cryptography::{ed25519, Digested, Digestible, Sha256, Signer as _};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_storage::archive::immutable;
use commonware_utils::ordered::Set;
use commonware_utils::{NZDuration, NZUsize, NZU16, NZU64};
use futures::channel::mpsc;
use rand_core_010::CryptoRng;

use super::app::{LedgerApp, TxSource};
use super::block::CairnBlock;
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

/// The largest p2p message consensus and the feed send with `validators` validators; the
/// network's `max_size` must be at least this (commonware panics on larger sends).
pub fn max_message_size(validators: u32) -> u32 {
    commonware_p2p::max_message_size(&[
        simplex::max_payload_size::<Scheme, Digest>(validators),
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
    /// The validator set (one static epoch).
    pub validators: Set<ed25519::PublicKey>,
    /// This validator's consensus key; its public key must be in `validators`.
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
    let scheme = Scheme::signer(
        &namespace(config.chain_id),
        config.validators.clone(),
        config.key.clone(),
    )
    .ok_or(ConsensusError::NotAValidator)?;
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

    let epocher = FixedEpocher::new(NZU64!(u64::MAX));
    let (marshal_actor, marshal, _floor) = MarshalActor::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: ConstantProvider::new(scheme.clone()),
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
    let participants = config.validators.len();
    let feed_marshal = marshal.clone();
    let feed_channel = channels.feed;
    context
        .child("feed")
        .spawn(move |_| feed::serve(feed_marshal, feed_receiver, feed_channel, participants));

    let finalizer = Finalizer::new(ledger.clone(), txs.clone(), observer, Some(feed_heights));
    let app = LedgerApp::new(ledger, txs, config.max_candidates, config.block_interval);
    let inline = Inline::new(context.child("application"), app, marshal.clone(), epocher);
    marshal_actor.start(finalizer, buffer, resolver);

    let engine = simplex::Engine::new(
        context.child("simplex"),
        simplex::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker,
            automaton: inline.clone(),
            relay: inline.clone(),
            reporter: inline,
            strategy: Sequential,
            partition: format!("{prefix}-simplex-0"),
            mailbox_size: config.mailbox_size,
            epoch: Epoch::zero(),
            floor: Floor::Genesis(genesis.digest()),
            replay_buffer: IO_BUFFER,
            write_buffer: IO_BUFFER,
            page_cache,
            leader_timeout: timeouts.leader,
            certification_timeout: timeouts.certification,
            timeout_retry: timeouts.retry,
            view_retention: ViewDelta::new(config.view_retention),
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
    let handle = engine.start(channels.votes, channels.certificates, channels.resolver);
    if let Err(error) = handle.await {
        tracing::debug!(?error, "consensus engine stopped");
    }
    Ok(())
}
