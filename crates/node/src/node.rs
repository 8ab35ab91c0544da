//! One Cairn node, assembled: consensus (validators) or the finality-feed follower (trainers),
//! the mempool, the blob service, and the round-protocol agents driven by finalized blocks.
//!
//! ```text
//!  finalized block ──► NodeObserver (sync, in the finalizer / follower task)
//!                         │ outbox: re-broadcasts, nonces      agents: Vec<Intent>
//!                         ▼
//!                    work queue ──► worker task: sign+send txs (mempool channel, local pool),
//!                                                store / publish blobs, start fetches
//! ```
//!
//! Everything is spawned from the node's own runtime context, so aborting the node's root task
//! stops all of it (a crash), and the same code runs on the deterministic runtime and on tokio.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_ledger::block::Block;
use cairn_ledger::query;
use cairn_ledger::store::{StateRead, StateStore};
use cairn_ledger::transaction::{Payload, SignedTransaction};
use cairn_ledger::{Address, DatasetRegistry};
use commonware_cryptography::ed25519;
use commonware_p2p::{Blocker, Manager, Receiver, Sender, TrackedPeers};
use commonware_runtime::{Clock, Metrics, Spawner, Storage};
use commonware_utils::ordered::Set;
use futures::channel::mpsc;
use futures::StreamExt;
use rand_core_010::CryptoRng;
use tracing::{debug, warn};

use crate::blobs::{self, BlobConfig, BlobStore, Fetcher};
use crate::consensus::{
    self, BlockObserver, ConsensusError, ConsensusStatus, EpochError, Epochs, FeedError,
    FollowerConfig, Timeouts, TxSource, ValidatorChannels, ValidatorConfig,
};
use crate::keys::{address_of, NodeKey};
use crate::mempool::{self, Mempool, MempoolConfig};
use crate::penalty::PenaltyConfig;
use crate::protocol::outbox::OutboxError;
use crate::protocol::volunteer::{Offer, Policy, Volunteer};
use crate::protocol::{Agent, Done, Intent, Outbox};
use crate::workers::{self, JobSender, OnDone, WorkerConfig};

/// What a node does in consensus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Votes in simplex, proposes blocks from its mempool, publishes the finality feed.
    Validator,
    /// Follows the chain through the finality feed; submits transactions to validators.
    Trainer,
}

/// Everything one node needs besides its runtime context, store, agents and network.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Storage partition prefix, unique per node on a shared runtime (`[A-Za-z0-9_-]`).
    pub name: String,
    /// The node's identity.
    pub key: NodeKey,
    /// Validator or trainer.
    pub role: Role,
    /// The chain id.
    pub chain_id: u64,
    /// Block 0 ([`consensus::init_store`]).
    pub genesis_block: Block,
    /// The genesis validator set (later epochs' sets come from the ledger,
    /// [`consensus::Epochs`]).
    pub validators: commonware_utils::ordered::Set<ed25519::PublicKey>,
    /// Every other node's public key, in the order blobs are asked from them.
    pub peers: Vec<ed25519::PublicKey>,
    /// Consensus timeouts (validators).
    pub timeouts: Timeouts,
    /// Pause before each proposal (validators); protocol windows are counted in blocks.
    pub block_interval: Duration,
    /// Blob service settings.
    pub blobs: BlobConfig,
    /// Mempool bounds (validators).
    pub mempool: MempoolConfig,
    /// Marks against peers sending bad transactions.
    pub penalties: PenaltyConfig,
    /// How this node keeps the p2p peer set in line with the ledger ([`PeerTracking`]).
    pub peer_tracking: PeerTracking,
    /// The chain's datasets (every one its genesis names), which the ledger's task checks and
    /// dispute referee read.
    pub datasets: Arc<DatasetRegistry>,
    /// Whether the node joins tasks on its own ([`Volunteer`]), and as what. A simulation builds
    /// its agents for a known task and leaves this `None`; a deployed node sets it.
    pub volunteer: Option<Offer>,
    /// Which open tasks a volunteering node joins.
    pub volunteer_policy: Policy,
    /// The worker pool its agents' slow work runs on.
    pub workers: WorkerConfig,
}

impl NodeConfig {
    /// A config with default timeouts, blob, mempool and penalty settings.
    pub fn new(
        name: String,
        key: NodeKey,
        role: Role,
        chain_id: u64,
        genesis_block: Block,
        validators: commonware_utils::ordered::Set<ed25519::PublicKey>,
        peers: Vec<ed25519::PublicKey>,
    ) -> Self {
        Self {
            name,
            key,
            role,
            chain_id,
            genesis_block,
            validators,
            peers,
            timeouts: Timeouts::default(),
            block_interval: consensus::validator::DEFAULT_BLOCK_INTERVAL,
            blobs: BlobConfig::default(),
            mempool: MempoolConfig::new(chain_id),
            penalties: PenaltyConfig::default(),
            peer_tracking: PeerTracking::Ledger,
            datasets: Arc::default(),
            volunteer: None,
            volunteer_policy: Policy::default(),
            workers: WorkerConfig::default(),
        }
    }
}

/// How a node re-tracks the p2p peer set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerTracking {
    /// It leaves the peer set alone.
    Off,
    /// A validator re-tracks at every block whose ledger changes the set ([`PeerTracker`]): the
    /// validators of the current and previous epoch as primary peers, every known node holding
    /// tokens or stake as secondary ones; the set's id is the height. Made for a network with
    /// one shared oracle (the simulator), where one validator tracks for everyone.
    Ledger,
    /// Every node tracks one set per epoch, with the epoch as its id: the epoch's validators as
    /// primary peers and every other known node as secondary ones. Every node reads the same
    /// sets from the same boundary blocks, so they agree on the set at each id however late
    /// they start, which peer discovery needs.
    Epochs,
}

/// The p2p channels of one node.
pub enum NodeChannels<Snd, Rcv> {
    /// A validator's consensus channels plus the data channels.
    Validator {
        /// Consensus channels (votes .. broadcast, feed).
        consensus: ValidatorChannels<Snd, Rcv>,
        /// Mempool channel.
        mempool: (Snd, Rcv),
        /// Blob channel.
        blobs: (Snd, Rcv),
    },
    /// A trainer's feed and data channels.
    Trainer {
        /// Finality feed channel.
        feed: (Snd, Rcv),
        /// Mempool channel (send only; anything received is ignored).
        mempool: (Snd, Rcv),
        /// Blob channel.
        blobs: (Snd, Rcv),
    },
}

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Its blob store could not be opened.
    #[error("blob store: {0}")]
    Blobs(#[from] blobs::BlobError),
    /// Its epochs could not be read from the ledger.
    #[error("epochs: {0}")]
    Epochs(#[from] EpochError),
    /// Consensus failed.
    #[error("consensus: {0}")]
    Consensus(#[from] ConsensusError),
    /// The finality feed failed.
    #[error("finality feed: {0}")]
    Feed(#[from] FeedError),
    /// A task of the node stopped abnormally (aborted or panicked).
    #[error("node task stopped: {0}")]
    Stopped(String),
    /// The role and the channels given do not match.
    #[error("a {0:?} node needs its role's channels")]
    ChannelsMismatch(Role),
}

/// The mempool shared by the network task, the proposer and the node's own submissions.
pub struct SharedMempool(Arc<Mutex<Mempool>>);

impl SharedMempool {
    /// A shared pool with `config`'s bounds.
    pub fn new(config: MempoolConfig) -> Self {
        Self(Arc::new(Mutex::new(Mempool::new(config))))
    }

    /// The pool itself (what the mempool network task inserts into).
    pub fn pool(&self) -> Arc<Mutex<Mempool>> {
        self.0.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mempool> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a transaction; rejected ones are logged (the caller is this node itself).
    pub fn insert(&self, transaction: SignedTransaction) {
        if let Err(error) = self.lock().insert(transaction) {
            debug!(%error, "own transaction not pooled");
        }
    }

    /// Transactions pooled.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops transactions whose nonce the ledger already used.
    pub fn prune_stale(&self, state: &dyn StateRead) {
        self.lock().prune_stale(|address| {
            query::account(state, address).map_or(0, |account| account.nonce)
        });
    }
}

impl TxSource for SharedMempool {
    fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        self.lock().candidates(max)
    }

    fn remove_included(&self, txs: &[SignedTransaction]) {
        self.lock().remove_included(txs);
    }
}

/// Work the observer hands to the node's worker task.
#[derive(Debug)]
enum Work {
    Send(Box<SignedTransaction>),
    Store { bytes: Arc<[u8]>, public: bool },
    Publish([u8; 32]),
    Fetch([u8; 32], Option<Address>),
}

/// Wall-clock time this node's agents spent computing: in the block callback (deciding) and in
/// jobs on the worker pool (training on trainers; aggregation, scoring and audits on
/// validators). A measurement for reports, metrics and benchmarks, never an input to logic.
#[derive(Debug, Default)]
pub struct AgentTime {
    callback_nanos: AtomicU64,
    calls: AtomicU64,
    job_nanos: AtomicU64,
    jobs: AtomicU64,
    refused: AtomicU64,
}

fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

impl AgentTime {
    fn add_callback(&self, elapsed: Duration) {
        self.callback_nanos
            .fetch_add(nanos(elapsed), Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    fn add_job(&self, elapsed: Duration) {
        self.job_nanos.fetch_add(nanos(elapsed), Ordering::Relaxed);
        self.jobs.fetch_add(1, Ordering::Relaxed);
    }

    /// Total time the agents computed, in callbacks and in jobs.
    pub fn total(&self) -> Duration {
        self.callback() + self.job_time()
    }

    /// Time spent in block callbacks (what holds the ledger store and delays the next block).
    pub fn callback(&self) -> Duration {
        Duration::from_nanos(self.callback_nanos.load(Ordering::Relaxed))
    }

    /// Number of finalized blocks the agents handled.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Time jobs took on the worker pool.
    pub fn job_time(&self) -> Duration {
        Duration::from_nanos(self.job_nanos.load(Ordering::Relaxed))
    }

    /// Jobs finished.
    pub fn jobs(&self) -> u64 {
        self.jobs.load(Ordering::Relaxed)
    }

    /// Jobs refused because the pool's queue was full (each decided again at a later block).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Keeps the p2p peer set equal to what the ledger registers ([`PeerTracking::Ledger`]): the
/// validators of the current and the previous epoch as primary peers, and as secondary peers
/// every known node whose address holds tokens or stake on the ledger. A key with no account
/// cannot reach the network, so identities cost tokens.
pub struct PeerTracker {
    track: Box<dyn FnMut(u64, TrackedPeers<ed25519::PublicKey>) + Send>,
    epochs: Epochs,
    candidates: Vec<ed25519::PublicKey>,
    last: Option<(Set<ed25519::PublicKey>, Set<ed25519::PublicKey>)>,
}

impl PeerTracker {
    /// A tracker that hands each changed peer set (with the block height as its id) to `track`.
    pub fn new(
        track: impl FnMut(u64, TrackedPeers<ed25519::PublicKey>) + Send + 'static,
        epochs: Epochs,
        candidates: Vec<ed25519::PublicKey>,
    ) -> Self {
        Self {
            track: Box::new(track),
            epochs,
            candidates,
            last: None,
        }
    }

    /// The primary peers: the validators of the newest registered epoch and of the one before
    /// (still finishing, or serving blocks to nodes behind).
    pub fn primary(&self) -> Set<ed25519::PublicKey> {
        let (epoch, current) = self.epochs.current();
        let previous = epoch
            .checked_sub(1)
            .and_then(|e| self.epochs.set(e))
            .map(|set| set.into_iter().collect::<Vec<_>>())
            .unwrap_or_default();
        Set::from_iter_dedup(current.into_iter().chain(previous))
    }

    /// The secondary peers the ledger registers at `state`.
    pub fn registered(&self, state: &dyn StateRead) -> Set<ed25519::PublicKey> {
        let primary = self.primary();
        let members = self.candidates.iter().filter(|pk| {
            if primary.position(pk).is_some() {
                return false;
            }
            let address = address_of(pk);
            let balance = query::balance(state, &address).unwrap_or(0);
            let bonded = query::stake(state, &address).map_or(0, |s| s.bonded);
            balance > 0 || bonded > 0
        });
        Set::from_iter_dedup(members.cloned())
    }

    fn on_block(&mut self, height: u64, state: &dyn StateRead) {
        let sets = (self.primary(), self.registered(state));
        if self.last.as_ref() != Some(&sets) {
            debug!(
                height,
                validators = sets.0.len(),
                peers = sets.1.len(),
                "peer set follows the ledger"
            );
            (self.track)(height, TrackedPeers::new(sets.0.clone(), sets.1.clone()));
            self.last = Some(sets);
        }
    }
}

/// The peer set of `epoch` under [`PeerTracking::Epochs`]: its validators as primary peers,
/// every other known node as secondary ones.
fn epoch_peers(
    epochs: &Epochs,
    epoch: u64,
    known: &[ed25519::PublicKey],
) -> Option<TrackedPeers<ed25519::PublicKey>> {
    let set = epochs.set(epoch)?;
    let others = known
        .iter()
        .filter(|pk| set.position(pk).is_none())
        .cloned();
    Some(TrackedPeers::new(set.clone(), Set::from_iter_dedup(others)))
}

/// Tracks the current epoch's peer set now and each later epoch's when it is registered
/// ([`PeerTracking::Epochs`]).
fn spawn_epoch_tracking<E, P>(
    context: &E,
    epochs: Epochs,
    mut manager: P,
    known: Vec<ed25519::PublicKey>,
) where
    E: Spawner,
    P: Manager<PublicKey = ed25519::PublicKey>,
{
    // Subscribe before reading the current epoch: an epoch registered in between is seen.
    let mut notices = epochs.subscribe();
    let (current, _) = epochs.current();
    if let Some(peers) = epoch_peers(&epochs, current, &known) {
        let _ = manager.track(current, peers);
    }
    context.child("peer_sets").spawn(move |_| async move {
        let mut tracked = current;
        while let Some(epoch) = notices.next().await {
            if epoch <= tracked {
                continue;
            }
            if let Some(peers) = epoch_peers(&epochs, epoch, &known) {
                debug!(
                    epoch,
                    validators = peers.primary.len(),
                    "peer set of a new epoch"
                );
                let _ = manager.track(epoch, peers);
                tracked = epoch;
            }
        }
    });
}

/// What the node's agents and outbox see at every finalized block.
pub struct NodeObserver<E> {
    peers: Option<PeerTracker>,
    volunteer: Option<Volunteer>,
    agents: Vec<Agent>,
    time: Arc<AgentTime>,
    outbox: Outbox,
    blobs: BlobStore<E>,
    mempool: Option<Arc<SharedMempool>>,
    work: mpsc::UnboundedSender<Work>,
    /// The worker pool's queue (`None` until the pool is started: jobs are then refused).
    jobs: Option<JobSender>,
    height: u64,
    /// The chain's datasets, to check pending transactions as the next block would.
    datasets: Arc<DatasetRegistry>,
}

impl<E: Send + Sync + 'static> NodeObserver<E> {
    /// The agents this node runs.
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// Height of the last finalized block seen.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Signs `payloads` with this node's key (consecutive nonces, after any pending
    /// transaction), keeps them for re-broadcast until the ledger includes them, and sends them
    /// (an operator's request through the node's API). Stops at the first the outbox refuses.
    pub fn submit(
        &mut self,
        payloads: Vec<Payload>,
    ) -> Result<Vec<SignedTransaction>, OutboxError> {
        let mut sent = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let transaction = self.outbox.submit(payload, self.height)?;
            let _ = self
                .work
                .unbounded_send(Work::Send(Box::new(transaction.clone())));
            sent.push(transaction);
        }
        Ok(sent)
    }

    /// Adds an agent (a task creator asked for through a node's API); it acts from the next
    /// finalized block on.
    pub fn add_agent(&mut self, agent: Agent) {
        self.agents.push(agent);
    }
}

impl<E: Send + Sync + 'static> BlockObserver for NodeObserver<E> {
    fn on_finalized(&mut self, block: &Block, state: &dyn StateRead) {
        let height = block.header.height;
        self.height = height;
        if let Some(peers) = &mut self.peers {
            peers.on_block(height, state);
        }
        if let Some(pool) = &self.mempool {
            pool.prune_stale(state);
        }
        if let Some(volunteer) = &mut self.volunteer {
            match volunteer.on_block(state) {
                Ok(joined) => self.agents.extend(joined),
                Err(error) => warn!(height, %error, "volunteer could not read the tasks"),
            }
        }
        let agents = &self.agents;
        let stale = |payload: &_| agents.iter().any(|a| a.is_stale(payload, state));
        let datasets = &self.datasets;
        let refused = |transaction: &SignedTransaction| {
            cairn_ledger::execute::check_next(state, &block.header, transaction, datasets)
                .unwrap_or_else(|error| {
                    warn!(height, %error, "could not check a pending transaction");
                    None
                })
        };
        match self.outbox.on_block(height, state, stale, refused) {
            Ok(due) => {
                for transaction in due {
                    let _ = self.work.unbounded_send(Work::Send(Box::new(transaction)));
                }
            }
            Err(error) => warn!(height, %error, "outbox could not read the state"),
        }
        let started = std::time::Instant::now();
        let mut intents = Vec::new();
        for agent in &mut self.agents {
            intents.extend(agent.on_block(height, state, &self.blobs));
            for job in agent.take_jobs() {
                let key = job.key();
                let queued = match &mut self.jobs {
                    Some(jobs) => jobs.try_send(job).is_ok(),
                    None => false,
                };
                if queued {
                    debug!(height, %key, "job queued");
                } else {
                    warn!(height, %key, "the worker pool is full; the step is decided again at the next block");
                    self.time.refused.fetch_add(1, Ordering::Relaxed);
                    agent.on_refused(key);
                }
            }
        }
        self.time.add_callback(started.elapsed());
        self.execute(height, intents);
    }
}

impl<E: Send + Sync + 'static> NodeObserver<E> {
    fn execute(&mut self, height: u64, intents: Vec<Intent>) {
        for intent in intents {
            let work = match intent {
                Intent::Submit(payload) => match self.outbox.submit(payload, height) {
                    Ok(transaction) => Work::Send(Box::new(transaction)),
                    Err(error) => {
                        warn!(height, %error, "transaction not submitted");
                        continue;
                    }
                },
                Intent::Store { bytes, public } => Work::Store { bytes, public },
                Intent::Publish(hash) => Work::Publish(hash),
                Intent::Fetch { hash, holder } => Work::Fetch(hash, holder),
            };
            let _ = self.work.unbounded_send(work);
        }
    }
}

impl<E: Send + Sync + 'static> OnDone for NodeObserver<E> {
    fn on_done(&mut self, state: &dyn StateRead, done: Done) {
        let height = self.height;
        let key = done.key();
        self.time.add_job(done.elapsed());
        debug!(height, %key, elapsed = ?done.elapsed(), "job done");
        let agent = done.agent();
        let Some(agent) = self.agents.iter_mut().find(|a| a.owns(&agent, &key)) else {
            warn!(height, %key, "a job finished for no agent of this node; ignored");
            return;
        };
        let intents = agent.on_done(height, state, &self.blobs, done);
        self.execute(height, intents);
    }
}

/// Handles to a running node's state, for whoever assembled it (simulations, tests, the CLI).
pub struct NodeState<E, S> {
    /// The node's ledger store.
    pub store: Arc<Mutex<S>>,
    /// The node's blobs.
    pub blobs: BlobStore<E>,
    /// The node's observer (agents, last height seen).
    pub observer: Arc<Mutex<NodeObserver<E>>>,
    /// The validator's mempool (`None` on trainers).
    pub mempool: Option<Arc<SharedMempool>>,
    /// Wall time the agents spent computing.
    pub agent_time: Arc<AgentTime>,
    /// The chain's epochs as this node knows them.
    pub epochs: Epochs,
    /// What consensus does now (validators; a trainer's stays at its default).
    pub consensus: ConsensusStatus,
}

impl<E, S> Clone for NodeState<E, S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            blobs: self.blobs.clone(),
            observer: self.observer.clone(),
            mempool: self.mempool.clone(),
            agent_time: self.agent_time.clone(),
            epochs: self.epochs.clone(),
            consensus: self.consensus.clone(),
        }
    }
}

/// Runs one node until its consensus engine (validator) or feed follower (trainer) stops.
///
/// `store` must hold block 0 ([`consensus::init_store`]); after a crash, pass the same store and
/// config again: consensus journals, blobs and the ledger resume from what was synced. `ready`
/// receives the node's state handles once its parts are started.
#[allow(clippy::too_many_arguments)]
pub async fn run_node<E, S, Snd, Rcv, P, B>(
    context: E,
    config: NodeConfig,
    store: Arc<Mutex<S>>,
    agents: Vec<Agent>,
    channels: NodeChannels<Snd, Rcv>,
    peers: P,
    blocker: B,
    ready: impl FnOnce(NodeState<E, S>),
) -> Result<(), NodeError>
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng + Send + Sync + 'static,
    S: StateStore + Send + 'static,
    Snd: Sender<PublicKey = ed25519::PublicKey>,
    Rcv: Receiver<PublicKey = ed25519::PublicKey>,
    P: Manager<PublicKey = ed25519::PublicKey>,
    B: Blocker<PublicKey = ed25519::PublicKey> + Clone,
{
    let partition = format!("{}-blobs", config.name);
    let blob_store = BlobStore::open(
        context.child("blob_store"),
        &partition,
        config.blobs.max_blob_bytes,
    )
    .await?;
    let (work_tx, work_rx) = mpsc::unbounded();
    let mempool = match config.role {
        Role::Validator => Some(Arc::new(SharedMempool::new(config.mempool))),
        Role::Trainer => None,
    };
    let outbox = Outbox::new(config.key.ledger_key(), config.chain_id);
    let agent_time = Arc::new(AgentTime::default());
    let key = (config.role == Role::Validator).then(|| config.key.consensus_key());
    let epochs = Epochs::open_shared(
        &store,
        config.chain_id,
        key,
        config.validators.iter().cloned(),
    )?;
    let status = ConsensusStatus::default();
    let tracker = match config.peer_tracking {
        // Validators keep the network's peer set in line with the ledger.
        PeerTracking::Ledger if config.role == Role::Validator => {
            let mut manager = peers.clone();
            Some(PeerTracker::new(
                move |id, set| {
                    let _ = manager.track(id, set);
                },
                epochs.clone(),
                config.peers.clone(),
            ))
        }
        PeerTracking::Epochs => {
            spawn_epoch_tracking(
                &context,
                epochs.clone(),
                peers.clone(),
                config.peers.clone(),
            );
            None
        }
        PeerTracking::Ledger | PeerTracking::Off => None,
    };
    let volunteer = config.volunteer.map(|offer| {
        Volunteer::new(&config.key.ledger_key(), offer, config.datasets.clone())
            .with_policy(config.volunteer_policy)
    });
    let observer = Arc::new(Mutex::new(NodeObserver {
        peers: tracker,
        volunteer,
        agents,
        time: agent_time.clone(),
        outbox,
        blobs: blob_store.clone(),
        mempool: mempool.clone(),
        work: work_tx,
        jobs: None,
        height: 0,
        datasets: config.datasets.clone(),
    }));
    let jobs = workers::start(&context, config.workers, store.clone(), observer.clone());
    if let Ok(mut observer) = observer.lock() {
        observer.jobs = Some(jobs);
    }
    ready(NodeState {
        store: store.clone(),
        blobs: blob_store.clone(),
        observer: observer.clone(),
        mempool: mempool.clone(),
        agent_time,
        epochs: epochs.clone(),
        consensus: status.clone(),
    });
    let targets = Targets {
        me: config.key.public_key(),
        epochs: epochs.clone(),
        peers: config.peers.clone(),
    };

    match (config.role, channels) {
        (
            Role::Validator,
            NodeChannels::Validator {
                consensus: consensus_channels,
                mempool: (mempool_sender, mempool_receiver),
                blobs: (blob_sender, blob_receiver),
            },
        ) => {
            let pool = mempool.clone().expect("validators have a mempool");
            let (fetcher, _blob_task) = blobs::start(
                context.child("blobs"),
                blob_store.clone(),
                config.blobs,
                blob_sender,
                blob_receiver,
                blocker.clone(),
            );
            let _mempool_task = mempool::start(
                context.child("mempool"),
                pool.pool(),
                config.penalties,
                mempool_receiver,
                blocker.clone(),
            );
            spawn_worker(
                &context,
                work_rx,
                mempool_sender,
                targets,
                Some(pool.clone()),
                blob_store,
                fetcher,
            );
            let validator = ValidatorConfig {
                timeouts: config.timeouts.clone(),
                block_interval: config.block_interval,
                datasets: config.datasets.clone(),
                epochs: Some(epochs),
                status,
                ..ValidatorConfig::new(
                    config.chain_id,
                    config.validators.clone(),
                    config.key.consensus_key(),
                    format!("{}-consensus", config.name),
                    config.genesis_block.clone(),
                )
            };
            consensus::run_validator(
                context.child("consensus"),
                validator,
                store,
                pool,
                observer,
                consensus_channels,
                peers,
                blocker,
            )
            .await?;
            Ok(())
        }
        (
            Role::Trainer,
            NodeChannels::Trainer {
                feed,
                mempool: (mempool_sender, _mempool_receiver),
                blobs: (blob_sender, blob_receiver),
            },
        ) => {
            let (fetcher, _blob_task) = blobs::start(
                context.child("blobs"),
                blob_store.clone(),
                config.blobs,
                blob_sender,
                blob_receiver,
                blocker.clone(),
            );
            spawn_worker(
                &context,
                work_rx,
                mempool_sender,
                targets,
                None,
                blob_store,
                fetcher,
            );
            let defaults = FollowerConfig::new(config.chain_id, config.validators.clone());
            let follower = FollowerConfig {
                datasets: config.datasets.clone(),
                epochs: Some(epochs),
                // A follower asks again as soon as a validator would re-fetch a missing block,
                // but never faster than blocks come.
                retry: defaults
                    .retry
                    .min(config.timeouts.fetch)
                    .max(config.block_interval),
                ..defaults
            };
            match consensus::feed::start_follower_with_penalties(
                context.child("follower"),
                follower,
                store,
                observer,
                feed,
                blocker,
                config.penalties,
            )
            .await
            {
                Ok(result) => result.map_err(NodeError::from),
                Err(error) => Err(NodeError::Stopped(error.to_string())),
            }
        }
        (role, _) => Err(NodeError::ChannelsMismatch(role)),
    }
}

/// Whom the worker sends transactions to and asks blobs from, read when it does: the
/// validators of the newest epoch, then every other known node.
struct Targets {
    me: ed25519::PublicKey,
    epochs: Epochs,
    peers: Vec<ed25519::PublicKey>,
}

impl Targets {
    /// The current epoch's validators other than this node.
    fn validators(&self) -> Vec<ed25519::PublicKey> {
        let (_, set) = self.epochs.current();
        set.into_iter().filter(|pk| *pk != self.me).collect()
    }

    /// The order blobs are asked in: `holder` first if known, then the validators, then the
    /// other peers.
    fn fetch_order(&self, holder: Option<Address>) -> Vec<ed25519::PublicKey> {
        let mut order = self.validators();
        let rest: Vec<_> = self
            .peers
            .iter()
            .filter(|pk| **pk != self.me && !order.contains(pk))
            .cloned()
            .collect();
        order.extend(rest);
        if let Some(first) = holder.and_then(|a| order.iter().position(|pk| address_of(pk) == a)) {
            let pk = order.remove(first);
            order.insert(0, pk);
        }
        order
    }
}

fn spawn_worker<E, Snd>(
    context: &E,
    mut work: mpsc::UnboundedReceiver<Work>,
    mut sender: Snd,
    targets: Targets,
    pool: Option<Arc<SharedMempool>>,
    blobs: BlobStore<E>,
    fetcher: Fetcher<ed25519::PublicKey>,
) where
    E: Spawner + Clock + Storage + Send + Sync + 'static,
    Snd: Sender<PublicKey = ed25519::PublicKey>,
{
    context.child("worker").spawn(move |context| async move {
        let in_flight: Arc<Mutex<BTreeSet<[u8; 32]>>> = Arc::default();
        while let Some(item) = work.next().await {
            match item {
                Work::Send(transaction) => {
                    if let Some(pool) = &pool {
                        pool.insert((*transaction).clone());
                    }
                    mempool::broadcast(&mut sender, &transaction, targets.validators());
                }
                Work::Store { bytes, public } => {
                    if let Err(error) = blobs.put(&bytes, public).await {
                        warn!(%error, "blob not stored");
                    }
                }
                Work::Publish(hash) => {
                    if let Err(error) = blobs.publish(&hash).await {
                        warn!(%error, "blob not published");
                    }
                }
                Work::Fetch(hash, holder) => {
                    if blobs.contains(&hash) {
                        continue;
                    }
                    let fresh = in_flight
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(hash);
                    if !fresh {
                        continue;
                    }
                    let fetcher = fetcher.clone();
                    let order = targets.fetch_order(holder);
                    let in_flight = in_flight.clone();
                    context.child("fetch").spawn(move |_| async move {
                        if let Err(error) = fetcher.fetch(hash, order).await {
                            debug!(%error, "blob fetch failed; the agent asks again");
                        }
                        in_flight
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .remove(&hash);
                    });
                }
            }
        }
    });
}
