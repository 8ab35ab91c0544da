//! A whole Cairn network in one process: real nodes on commonware's deterministic runtime and
//! simulated p2p network, with links, partitions, crashes and restarts under the caller's
//! control. `cairn simulate` and the node's integration tests are built on it; every run replays
//! exactly from the runtime's seed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_ledger::block::Block;
use cairn_ledger::encoding::Hash;
use cairn_ledger::genesis::Genesis;
use cairn_ledger::store::MemoryStore;
use cairn_ledger::DatasetRegistry;
use commonware_cryptography::ed25519;
use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_runtime::{deterministic, Clock, Handle, Quota, Spawner, Supervisor as _};
use commonware_utils::ordered::Set;
use commonware_utils::NZUsize;

use crate::channels;
use crate::consensus::{self, ConsensusError, Timeouts, ValidatorChannels};
use crate::keys::NodeKey;
use crate::node::{run_node, NodeChannels, NodeConfig, NodeError, NodeState, PeerTracking, Role};
use crate::protocol::volunteer::Offer;
use crate::protocol::Agent;

/// Builds a node's agents; called at first start and again at every restart (a crash loses
/// everything a node held in memory).
pub type AgentFactory = Arc<dyn Fn() -> Vec<Agent> + Send + Sync>;

/// One node of a cluster.
#[derive(Clone)]
pub struct ClusterNode {
    /// Short name (`[A-Za-z0-9_]`, unique): storage partitions and logs use it.
    pub name: String,
    /// Its identity.
    pub key: NodeKey,
    /// Validator or trainer.
    pub role: Role,
    /// Its round-protocol agents.
    pub agents: AgentFactory,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish()
    }
}

/// A cluster's shape and conditions.
#[derive(Clone)]
pub struct ClusterConfig {
    /// The ledger's genesis (its validators must be the validator nodes' addresses).
    pub genesis: Genesis,
    /// The nodes.
    pub nodes: Vec<ClusterNode>,
    /// The link every linked pair of nodes starts with (both directions). Every validator is
    /// linked to every node; trainers are not linked to each other, because the protocol never
    /// has them talk (they submit to validators, follow the chain from validators and fetch
    /// blobs from validators). A full mesh would also run out of the deterministic runtime's
    /// ephemeral ports (32 767 dials in all, one per directed link) at about 181 nodes.
    pub link: Link,
    /// Consensus timeouts.
    pub timeouts: Timeouts,
    /// Messages per second each node may send to each peer, per channel.
    pub quota: Quota,
    /// The datasets the genesis serves (every node holds them).
    pub datasets: Arc<DatasetRegistry>,
    /// Whether nodes join tasks on their own, as deployed nodes do ([`crate::node::NodeConfig::volunteer`]):
    /// validators validate and trainers train every task they can, beside the agents each
    /// node's factory builds.
    pub volunteers: bool,
}

/// Why a cluster could not be built or changed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Two nodes share a key.
    #[error("two nodes share a key")]
    DuplicateKey,
    /// No node is a validator.
    #[error("a cluster needs at least one validator")]
    NoValidators,
    /// The genesis is invalid or its validators are not the validator nodes.
    #[error("genesis: {0}")]
    Genesis(String),
    /// A node index out of range.
    #[error("no node {0}")]
    NoSuchNode(usize),
    /// The simulated network refused an operation.
    #[error("simulated network: {0}")]
    Network(#[from] simulated::Error),
    /// The ledger could not be initialised.
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
}

struct Slot {
    node: ClusterNode,
    config: NodeConfig,
    store: Arc<Mutex<MemoryStore>>,
    state: Arc<Mutex<Option<NodeState<deterministic::Context, MemoryStore>>>>,
    handle: Option<Handle<Result<(), NodeError>>>,
}

/// How long a node waits for a blob chunk (or a consensus fetch) before asking the next peer on
/// this network: two worst-case round trips (`4 x (latency + jitter)`), at least 250 ms and at most the default
/// 2 s. Sized to the links, a lost request costs a few round trips rather than seconds that
/// would outlast a round's short windows.
fn blob_request_timeout(link: &Link) -> Duration {
    let round_trip = link.latency.saturating_add(link.jitter).saturating_mul(4);
    round_trip.clamp(
        Duration::from_millis(250),
        crate::blobs::BlobConfig::default().request_timeout,
    )
}

/// A running cluster: the simulated network's oracle and every node's state.
pub struct Cluster {
    oracle: Oracle<ed25519::PublicKey, deterministic::Context>,
    slots: Vec<Slot>,
    link: Link,
    quota: Quota,
    genesis_block: Block,
}

impl Cluster {
    /// Builds the network and every node's ledger store (at block 0); starts no node.
    pub async fn new(
        context: &deterministic::Context,
        config: ClusterConfig,
    ) -> Result<Self, ClusterError> {
        let publics: Vec<ed25519::PublicKey> =
            config.nodes.iter().map(|n| n.key.public_key()).collect();
        let everyone = Set::try_from(publics.clone()).map_err(|_| ClusterError::DuplicateKey)?;
        // The genesis set: validator nodes with stake at genesis. On a chain with epochs a
        // validator node without it is a standby, which observes consensus until the ledger
        // elects it; without epochs it could never vote, so it is refused.
        let epochs = config.genesis.params.epoch_length > 0;
        let mut validators: Vec<ed25519::PublicKey> = Vec::new();
        for node in config.nodes.iter().filter(|n| n.role == Role::Validator) {
            if config.genesis.validators.contains_key(&node.key.address()) {
                validators.push(node.key.public_key());
            } else if !epochs {
                return Err(ClusterError::Genesis(format!(
                    "validator node {} has no stake at genesis and the chain has no epochs",
                    node.name
                )));
            }
        }
        if validators.is_empty() {
            return Err(ClusterError::NoValidators);
        }
        let validator_set =
            Set::try_from(validators.clone()).map_err(|_| ClusterError::DuplicateKey)?;
        let others: Vec<ed25519::PublicKey> = publics
            .iter()
            .filter(|pk| validator_set.position(pk).is_none())
            .cloned()
            .collect();
        let max_size = if epochs {
            max_message_size(cairn_ledger::validators::MAX_CONSENSUS_VALIDATORS)
        } else {
            max_message_size(validators.len())
        };
        let (network, oracle) = Network::new_with_split_peers(
            context.child("network"),
            simulated::Config {
                max_size,
                max_peers_per_set: NZUsize!(everyone.len().max(1)),
                disconnect_on_block: true,
                // One set: the validators keep it equal to what the ledger registers
                // (`node::PeerTracker`), and the genesis set must not outlive its replacement.
                tracked_peer_sets: NZUsize!(1),
            },
            validators.clone(),
            others,
        )
        .await;
        network.start();
        let roles: Vec<Role> = config.nodes.iter().map(|n| n.role).collect();
        for (i, a) in publics.iter().enumerate() {
            for (j, b) in publics.iter().enumerate() {
                if i != j && linked(roles[i], roles[j]) {
                    oracle
                        .add_link(a.clone(), b.clone(), config.link.clone())
                        .await?;
                }
            }
        }
        let mut slots = Vec::with_capacity(config.nodes.len());
        let mut genesis_block = None;
        for node in config.nodes {
            let (store, block) = consensus::init_store(
                MemoryStore::new(),
                &config.genesis,
                config.datasets.clone(),
            )?;
            let mut node_config = NodeConfig::new(
                node.name.clone(),
                node.key.clone(),
                node.role,
                config.genesis.chain_id,
                block.clone(),
                validator_set.clone(),
                publics.clone(),
            );
            node_config.timeouts = config.timeouts.clone();
            // A lost block or certificate is fetched again after a few round trips, not after
            // seconds: a validator that falls blocks behind misses a round's short windows
            // (and is slashed for the attestation it could not reveal in time).
            node_config.timeouts.fetch = config
                .timeouts
                .fetch
                .min(blob_request_timeout(&config.link));
            node_config.datasets = config.datasets.clone();
            node_config.volunteer = config.volunteers.then_some(match node.role {
                Role::Validator => Offer::Validator,
                Role::Trainer => Offer::Trainer,
            });
            node_config.blobs.request_timeout = blob_request_timeout(&config.link);
            // The simulated network is one shared oracle: the first validator keeps its peer
            // set in line with the ledger for everyone.
            node_config.peer_tracking = if node.key.public_key() == validators[0] {
                PeerTracking::Ledger
            } else {
                PeerTracking::Off
            };
            genesis_block = Some(block);
            slots.push(Slot {
                node,
                config: node_config,
                store: Arc::new(Mutex::new(store)),
                state: Arc::default(),
                handle: None,
            });
        }
        Ok(Self {
            oracle,
            slots,
            link: config.link,
            quota: config.quota,
            genesis_block: genesis_block.expect("at least one validator"),
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Node `index`'s description.
    pub fn node(&self, index: usize) -> &ClusterNode {
        &self.slots[index].node
    }

    /// The chain's block 0.
    pub fn genesis_block(&self) -> &Block {
        &self.genesis_block
    }

    /// The simulated network's oracle (links, bandwidth, who blocked whom).
    pub fn oracle(&self) -> &Oracle<ed25519::PublicKey, deterministic::Context> {
        &self.oracle
    }

    /// Starts every node that is not running: trainers first, then validators.
    ///
    /// Starting a node takes a few simulated milliseconds (its channels register with the
    /// network one message at a time), so with validators first the chain would be tens of
    /// blocks ahead before the last of some hundred trainers listens, and every late trainer
    /// would have to catch up through requests. Trainers first are all following at block 1.
    pub async fn start_all(
        &mut self,
        context: &deterministic::Context,
    ) -> Result<(), ClusterError> {
        for role in [Role::Trainer, Role::Validator] {
            for index in 0..self.slots.len() {
                if self.slots[index].handle.is_none() && self.slots[index].node.role == role {
                    self.start(context, index).await?;
                }
            }
        }
        Ok(())
    }

    /// Starts (or restarts after [`Cluster::crash`]) node `index` on its stored state.
    pub async fn start(
        &mut self,
        context: &deterministic::Context,
        index: usize,
    ) -> Result<(), ClusterError> {
        let quota = self.quota;
        let slot = self
            .slots
            .get_mut(index)
            .ok_or(ClusterError::NoSuchNode(index))?;
        let control = self.oracle.control(slot.node.key.public_key());
        let register = |channel| {
            let control = control.clone();
            async move { control.register(channel, quota).await }
        };
        let channels = match slot.node.role {
            Role::Validator => NodeChannels::Validator {
                consensus: ValidatorChannels {
                    votes: register(channels::VOTES).await?,
                    certificates: register(channels::CERTIFICATES).await?,
                    resolver: register(channels::RESOLVER).await?,
                    backfill: register(channels::BACKFILL).await?,
                    broadcast: register(channels::BROADCAST).await?,
                    feed: register(channels::FEED).await?,
                },
                mempool: register(channels::MEMPOOL).await?,
                blobs: register(channels::BLOBS).await?,
            },
            Role::Trainer => NodeChannels::Trainer {
                feed: register(channels::FEED).await?,
                mempool: register(channels::MEMPOOL).await?,
                blobs: register(channels::BLOBS).await?,
            },
        };
        let config = slot.config.clone();
        let store = slot.store.clone();
        let agents = (slot.node.agents)();
        let state = slot.state.clone();
        let manager = self.oracle.manager();
        let handle = context
            .child("node")
            .with_attribute("name", &slot.node.name)
            .spawn(move |context| async move {
                let result = run_node(
                    context,
                    config,
                    store,
                    agents,
                    channels,
                    manager,
                    control,
                    move |ready| {
                        *state
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ready);
                    },
                )
                .await;
                if let Err(error) = &result {
                    tracing::warn!(%error, "node stopped");
                }
                result
            });
        slot.handle = Some(handle);
        Ok(())
    }

    /// Crashes node `index`: aborts every task it runs and waits until they are gone. What it
    /// synced (ledger commits, consensus journals, blobs) survives; its memory does not.
    pub async fn crash(&mut self, index: usize) -> Result<(), ClusterError> {
        let slot = self
            .slots
            .get_mut(index)
            .ok_or(ClusterError::NoSuchNode(index))?;
        if let Some(handle) = slot.handle.take() {
            handle.abort();
            let _ = handle.await;
        }
        *slot
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        Ok(())
    }

    /// Whether node `index` is running.
    pub fn is_running(&self, index: usize) -> bool {
        self.slots
            .get(index)
            .is_some_and(|slot| slot.handle.is_some())
    }

    /// Cuts every link between nodes of different groups (both directions); nodes in no group
    /// keep their links.
    pub async fn partition(&self, groups: &[Vec<usize>]) -> Result<(), ClusterError> {
        for (g, group) in groups.iter().enumerate() {
            for (h, other) in groups.iter().enumerate() {
                if g == h {
                    continue;
                }
                for &a in group {
                    for &b in other {
                        let (a, b) = (self.public(a)?, self.public(b)?);
                        self.oracle
                            .remove_link(a, b)
                            .await
                            .or_else(ignore_missing_link)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Restores the default link between every pair of nodes the cluster links (see
    /// [`ClusterConfig::link`]).
    pub async fn heal(&self) -> Result<(), ClusterError> {
        for a in 0..self.slots.len() {
            for b in 0..self.slots.len() {
                if a != b && linked(self.slots[a].node.role, self.slots[b].node.role) {
                    self.set_link(a, b, Some(self.link.clone())).await?;
                }
            }
        }
        Ok(())
    }

    /// Replaces the link from `from` to `to` (one direction); `None` removes it.
    pub async fn set_link(
        &self,
        from: usize,
        to: usize,
        link: Option<Link>,
    ) -> Result<(), ClusterError> {
        let (a, b) = (self.public(from)?, self.public(to)?);
        self.oracle
            .remove_link(a.clone(), b.clone())
            .await
            .or_else(ignore_missing_link)?;
        if let Some(link) = link {
            self.oracle.add_link(a, b, link).await?;
        }
        Ok(())
    }

    fn public(&self, index: usize) -> Result<ed25519::PublicKey, ClusterError> {
        self.slots
            .get(index)
            .map(|slot| slot.node.key.public_key())
            .ok_or(ClusterError::NoSuchNode(index))
    }

    /// Node `index`'s ledger store (it survives crashes, like a committed database).
    pub fn store(&self, index: usize) -> Arc<Mutex<MemoryStore>> {
        self.slots[index].store.clone()
    }

    /// Node `index`'s running state (blobs, agents, mempool); `None` while it is down.
    pub fn state(&self, index: usize) -> Option<NodeState<deterministic::Context, MemoryStore>> {
        self.slots[index]
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Height of node `index`'s last committed block.
    pub fn height(&self, index: usize) -> u64 {
        self.store(index)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .height()
            .unwrap_or(0)
    }

    /// Node `index`'s state root after block `height`, if it committed that block.
    pub fn root_at(&self, index: usize, height: u64) -> Option<Hash> {
        self.store(index)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .root_at(height)
            .ok()
            .flatten()
    }

    /// Waits (simulated time, polling every 50 ms) until `done` holds or `limit` passes;
    /// returns whether it held.
    pub async fn wait_until(
        &self,
        context: &deterministic::Context,
        limit: Duration,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> bool {
        let deadline = context.current() + limit;
        loop {
            if done(self) {
                return true;
            }
            if context.current() >= deadline {
                return false;
            }
            context.sleep(Duration::from_millis(50)).await;
        }
    }

    /// Checks that every pair of nodes agrees on the root at every height both committed;
    /// returns the first disagreement as `(node, height)`.
    pub fn fork(&self) -> Option<(usize, u64)> {
        let common = (0..self.slots.len())
            .map(|i| self.height(i))
            .min()
            .unwrap_or(0);
        for height in 0..=common {
            let root = self.root_at(0, height);
            for i in 1..self.slots.len() {
                if self.root_at(i, height) != root {
                    return Some((i, height));
                }
            }
        }
        None
    }
}

/// Whether the cluster links a node of role `a` to one of role `b`: only when one is a validator.
fn linked(a: Role, b: Role) -> bool {
    a == Role::Validator || b == Role::Validator
}

fn ignore_missing_link(error: simulated::Error) -> Result<(), simulated::Error> {
    match error {
        simulated::Error::LinkMissing => Ok(()),
        other => Err(other),
    }
}

/// The largest message any Cairn channel sends in a network of `validators` validators.
pub fn max_message_size(validators: usize) -> u32 {
    let validators = u32::try_from(validators).unwrap_or(u32::MAX);
    let consensus = consensus::max_message_size(validators);
    let data = u32::try_from(crate::wire::max_message_bytes()).unwrap_or(u32::MAX);
    consensus.max(data)
}
