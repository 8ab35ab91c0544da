//! `cairn node`: one node on commonware's tokio runtime, with authenticated p2p over TCP, the
//! ledger in redb, consensus journals and blobs in the home's storage directory, and the HTTP
//! API. The node itself ([`cairn_node::node::run_node`]) is the same code the simulator runs.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_ledger::store::Store;
use cairn_node::channels;
use cairn_node::cluster::max_message_size;
use cairn_node::consensus::{self, ValidatorChannels};
use cairn_node::keys::address_of;
use cairn_node::node::{run_node, NodeChannels, NodeConfig, PeerTracking, Role};
use cairn_node::protocol::volunteer::Offer;
use commonware_cryptography::{ed25519, ChaCha20Poly1305};
use commonware_p2p::authenticated::discovery;
use commonware_runtime::{tokio as cw_tokio, Clock, Quota, Runner, Spawner, Supervisor};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::{NZUsize, NZU32};
use tracing::{info, warn};

use crate::api::{self, ApiState};
use crate::home::{Home, NetworkProfile, NodeRole, NodeSettings};
use crate::DaemonError;

/// How long a stop (SIGTERM, Ctrl-C) waits for the node's tasks before it gives up on them.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The p2p namespace of a chain: a handshake with a node of another chain fails.
pub fn p2p_namespace(chain_id: u64) -> Vec<u8> {
    let mut namespace = b"cairn/p2p/".to_vec();
    namespace.extend_from_slice(&chain_id.to_be_bytes());
    namespace
}

/// Parses `PUBLIC_KEY@HOST:PORT`.
pub fn parse_bootstrapper(text: &str) -> Result<(ed25519::PublicKey, SocketAddr), DaemonError> {
    let (key, address) = text.split_once('@').ok_or_else(|| {
        DaemonError::Settings(format!("bootstrapper {text:?} is not PUBLIC_KEY@HOST:PORT"))
    })?;
    let bytes: [u8; 32] = cairn_ledger::encoding::from_hex(key).ok_or_else(|| {
        DaemonError::Settings(format!("bootstrapper {text:?}: key is not 32 bytes of hex"))
    })?;
    let key = <ed25519::PublicKey as commonware_codec::DecodeExt<()>>::decode(
        bytes::Bytes::copy_from_slice(&bytes),
    )
    .map_err(|error| DaemonError::Settings(format!("bootstrapper {text:?}: {error}")))?;
    let address = address
        .parse()
        .map_err(|error| DaemonError::Settings(format!("bootstrapper {text:?}: {error}")))?;
    Ok((key, address))
}

/// Fails with a clear error when `address` cannot be bound (in use, or not this host's).
pub fn check_free(what: &str, address: SocketAddr) -> Result<(), DaemonError> {
    TcpListener::bind(address)
        .map(drop)
        .map_err(|error| DaemonError::Port {
            what: what.to_string(),
            address,
            reason: error.to_string(),
        })
}

/// Runs the node of `home` with `settings` until SIGTERM or Ctrl-C (then stops gracefully) or
/// until it fails. `api_token`, if any, is what `POST /tasks` requires ([`crate::api`]).
pub fn run(
    home: &Home,
    settings: NodeSettings,
    api_token: Option<String>,
) -> Result<(), DaemonError> {
    let (key, chain) = home.load()?;
    let me = key.public_key();
    let Some(member) = chain.member(&me).cloned() else {
        return Err(DaemonError::Mismatch(format!(
            "key {} is not a member of the chain in {}",
            cairn_ledger::encoding::to_hex(me.as_ref()),
            home.genesis().display()
        )));
    };
    let validators = chain.validator_set()?;
    let is_validator = validators.position(&me).is_some();
    let epochs = chain.params.epoch_length > 0;
    match (settings.role, is_validator) {
        // A member outside the genesis set may run as a validator where the set follows stake:
        // it observes consensus until it bonds, stands (`cairn validator join`) and is elected.
        (NodeRole::Validator, false) if !epochs => {
            return Err(DaemonError::Settings(format!(
                "{} is not a validator of this chain, whose validator set is fixed at genesis \
                 (params.epoch_length = 0); run it as a trainer or creator",
                member.name
            )))
        }
        (NodeRole::Trainer | NodeRole::Creator, true) => {
            return Err(DaemonError::Settings(format!(
                "{} is a validator of this chain: run it with --role validator (a validator \
                 that does not vote stalls consensus)",
                member.name
            )))
        }
        _ => {}
    }
    let data_dir: PathBuf = match &settings.data_dir {
        Some(dir) => dir.clone(),
        None => cairn_ml::data::default_data_dir()
            .map_err(|error| DaemonError::Data(error.to_string()))?,
    };
    let registry = chain.registry(&data_dir)?;
    let genesis = chain.genesis(&registry)?;
    let chain_hash = chain.chain_hash(&registry)?;
    home.bind(&key, &chain_hash)?;
    let dialable = settings.dialable()?;
    check_free("p2p", settings.listen)?;
    if let Some(http) = settings.http {
        check_free("http", http)?;
    }
    let store = Store::open(&home.ledger())
        .map_err(|error| DaemonError::Ledger(format!("{}: {error}", home.ledger().display())))?;
    let (store, block0) = consensus::init_store(store, &genesis, registry.clone())
        .map_err(|error| DaemonError::Ledger(error.to_string()))?;
    if block0.hash() != chain_hash {
        return Err(DaemonError::Mismatch(format!(
            "{} holds another chain than genesis.json",
            home.ledger().display()
        )));
    }
    let bootstrappers = if settings.bootstrappers.is_empty() {
        chain.bootstrappers()?
    } else {
        settings
            .bootstrappers
            .iter()
            .map(|text| parse_bootstrapper(text))
            .collect::<Result<Vec<_>, _>>()?
    };
    let bootstrappers: Vec<_> = bootstrappers
        .into_iter()
        .filter(|(key, _)| *key != me)
        .map(|(key, address)| (key, address.into()))
        .collect();
    let everyone = chain.public_keys()?;
    info!(
        name = member.name,
        role = ?settings.role,
        address = %address_of(&me),
        height = store.height().unwrap_or(0),
        listen = %settings.listen,
        "starting node"
    );

    let mut runtime = cw_tokio::Config::new()
        .with_storage_directory(home.storage())
        .with_catch_panics(false);
    if let Some(threads) = settings.worker_threads {
        runtime = runtime.with_worker_threads(threads.max(1));
    }
    let runner = cw_tokio::Runner::new(runtime);
    let name = member.name.clone();
    runner.start(move |context| async move {
        let handshake = Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: key.consensus_key(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        );
        let namespace = p2p_namespace(chain.chain_id);
        let max_peers = NZUsize!((everyone.len() + 1).max(8));
        // Where the set follows stake, an epoch may hold up to the ledger's cap of validators.
        let max_size = if epochs {
            max_message_size(cairn_ledger::validators::MAX_CONSENSUS_VALIDATORS)
        } else {
            max_message_size(validators.len())
        };
        let mailbox = NZUsize!(1_024);
        let profile = match settings.network {
            NetworkProfile::Local => discovery::Config::local,
            NetworkProfile::Recommended => discovery::Config::recommended,
        };
        let p2p = profile(
            handshake,
            &namespace,
            settings.listen,
            dialable,
            bootstrappers,
            max_peers,
            max_size,
            mailbox,
        );
        let (mut network, oracle) = discovery::Network::new(context.child("network"), p2p);
        // The peer sets are tracked by the node, one per epoch with the epoch as its id
        // (`PeerTracking::Epochs`): that epoch's validators as primary peers (dialed), every
        // other member of the chain file as secondary peers. Discovery needs every node to
        // agree on the set at each id; every node reads an epoch's set from the same boundary
        // block, however late it starts.
        let quota = Quota::per_second(NZU32!(1_000));
        let role = if settings.role == NodeRole::Validator {
            Role::Validator
        } else {
            Role::Trainer
        };
        let node_channels = match role {
            Role::Validator => NodeChannels::Validator {
                consensus: ValidatorChannels {
                    votes: network.register(channels::VOTES, quota),
                    certificates: network.register(channels::CERTIFICATES, quota),
                    resolver: network.register(channels::RESOLVER, quota),
                    backfill: network.register(channels::BACKFILL, quota),
                    broadcast: network.register(channels::BROADCAST, quota),
                    feed: network.register(channels::FEED, quota),
                },
                mempool: network.register(channels::MEMPOOL, quota),
                blobs: network.register(channels::BLOBS, quota),
            },
            Role::Trainer => {
                // Validators broadcast consensus messages to every connected peer, and a peer
                // that receives on a channel it never registered drops the connection: a
                // follower registers them and discards what arrives.
                for channel in [
                    channels::VOTES,
                    channels::CERTIFICATES,
                    channels::RESOLVER,
                    channels::BACKFILL,
                    channels::BROADCAST,
                ] {
                    let (_, mut receiver) = network.register(channel, quota);
                    context.child("discard").spawn(move |_| async move {
                        while commonware_p2p::Receiver::recv(&mut receiver).await.is_ok() {}
                    });
                }
                NodeChannels::Trainer {
                    feed: network.register(channels::FEED, quota),
                    mempool: network.register(channels::MEMPOOL, quota),
                    blobs: network.register(channels::BLOBS, quota),
                }
            }
        };
        network.start();

        let mut config = NodeConfig::new(
            name.clone(),
            key.clone(),
            role,
            chain.chain_id,
            block0,
            validators.clone(),
            everyone.clone(),
        );
        config.block_interval = Duration::from_millis(settings.block_interval_ms.max(1));
        config.peer_tracking = PeerTracking::Epochs;
        config.volunteer_policy = settings.policy();
        config.workers = settings.workers();
        config.datasets = registry.clone();
        config.volunteer = match settings.role {
            NodeRole::Validator => Some(Offer::Validator),
            NodeRole::Trainer => Some(Offer::Trainer),
            NodeRole::Creator => None,
        };
        let store = Arc::new(Mutex::new(store));
        let state = Arc::new(
            ApiState::new(
                context.child("api"),
                name.clone(),
                settings.role,
                key.clone(),
                chain.clone(),
                chain_hash,
                registry.clone(),
                store.clone(),
            )
            .with_token(api_token.as_deref()),
        );
        if let Some(address) = settings.http {
            let state = state.clone();
            context.child("http").spawn(move |_| async move {
                if let Err(error) = api::serve(address, state).await {
                    warn!(%error, "HTTP API stopped");
                }
            });
        }
        let clock = state.clone();
        let chain_id = chain.chain_id;
        let hash = cairn_ledger::encoding::to_hex(&chain_hash);
        context
            .child("block_clock")
            .spawn(move |context| async move {
                let mut stall = Stall::new(STALL_WARNING);
                loop {
                    let height = clock.observe_height();
                    let now = context.current();
                    if let Some(quiet) = stall.observe(height, now) {
                        warn!(
                            height,
                            seconds = quiet.as_secs(),
                            "{}",
                            stall_hint(chain_id, &hash)
                        );
                    }
                    context.sleep(Duration::from_millis(50)).await;
                }
            });
        let stopper = context.child("stop");
        context.child("signals").spawn(move |_| async move {
            wait_for_stop_signal().await;
            info!("stopping: waiting for the node's tasks");
            if let Err(error) = stopper.stop(0, Some(STOP_TIMEOUT)).await {
                warn!(?error, "the node's tasks did not stop in time");
            }
        });
        let stopped = context.stopped();
        let ready_state = state.clone();
        let node = run_node(
            context.child("node"),
            config,
            store,
            Vec::new(),
            node_channels,
            oracle.clone(),
            oracle,
            move |ready| ready_state.set_node(ready),
        );
        futures_select(node, stopped).await
    })
}

/// How long without a new block before a node says what may be wrong (and again each time
/// as long after).
pub const STALL_WARNING: Duration = Duration::from_secs(30);

/// What a node that commits nothing says: the usual causes, the chain's own identity first (a
/// node of another chain fails the p2p handshake, which commonware logs at debug only).
pub fn stall_hint(chain_id: u64, chain_hash: &str) -> String {
    format!(
        "no block committed for a while: are the bootstrappers reachable and running chain \
         {chain_id} with genesis hash {chain_hash}? Peers of another chain (or another genesis \
         file) fail the p2p handshake and never connect (RUST_LOG=commonware_p2p=debug shows \
         \"failed to complete handshake\"); a validator set with fewer than 2/3 of its \
         validators up finalizes nothing"
    )
}

/// Watches the committed height: says when it has not moved for a whole period.
#[derive(Debug)]
pub struct Stall {
    period: Duration,
    height: u64,
    since: Option<std::time::SystemTime>,
    warned: u32,
}

impl Stall {
    /// A watch that speaks after `period` without a new block.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            height: 0,
            since: None,
            warned: 0,
        }
    }

    /// Records `height` at `now`; returns how long it has not moved when another whole period
    /// has passed since it last did (or since the last warning).
    pub fn observe(&mut self, height: u64, now: std::time::SystemTime) -> Option<Duration> {
        let since = *self.since.get_or_insert(now);
        if height != self.height {
            self.height = height;
            self.since = Some(now);
            self.warned = 0;
            return None;
        }
        let quiet = now.duration_since(since).unwrap_or_default();
        let due = self.period.checked_mul(self.warned + 1)?;
        if quiet >= due {
            self.warned += 1;
            return Some(quiet);
        }
        None
    }
}

async fn futures_select(
    node: impl std::future::Future<Output = Result<(), cairn_node::node::NodeError>>,
    stopped: impl std::future::Future,
) -> Result<(), DaemonError> {
    tokio::select! {
        result = node => result.map_err(|error| DaemonError::Node(error.to_string())),
        _ = stopped => {
            info!("node stopped");
            Ok(())
        }
    }
}

#[cfg(unix)]
async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => info!("SIGTERM"),
                _ = tokio::signal::ctrl_c() => info!("interrupted"),
            }
        }
        Err(error) => {
            warn!(%error, "cannot listen for SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrappers_parse_or_say_why_not() {
        let key = cairn_node::keys::NodeKey::from_seed([3; 32]).public_key();
        let hex = cairn_ledger::encoding::to_hex(key.as_ref());
        let (parsed, address) = parse_bootstrapper(&format!("{hex}@127.0.0.1:9000")).unwrap();
        assert_eq!(parsed, key);
        assert_eq!(address.port(), 9000);
        assert!(parse_bootstrapper("127.0.0.1:9000").is_err());
        assert!(parse_bootstrapper(&format!("{hex}@nowhere")).is_err());
        assert!(parse_bootstrapper("abcd@127.0.0.1:9000").is_err());
    }

    #[test]
    fn a_stalled_chain_is_reported_once_per_period_and_progress_resets_it() {
        use std::time::UNIX_EPOCH;
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let mut stall = Stall::new(Duration::from_secs(30));
        assert_eq!(stall.observe(0, at(100)), None);
        assert_eq!(stall.observe(0, at(129)), None);
        assert_eq!(stall.observe(0, at(130)), Some(Duration::from_secs(30)));
        assert_eq!(stall.observe(0, at(131)), None);
        assert_eq!(stall.observe(0, at(160)), Some(Duration::from_secs(60)));
        // A block resets the watch.
        assert_eq!(stall.observe(1, at(161)), None);
        assert_eq!(stall.observe(1, at(190)), None);
        assert_eq!(stall.observe(1, at(191)), Some(Duration::from_secs(30)));
        let hint = stall_hint(7, "ab12");
        assert!(hint.contains("chain 7") && hint.contains("ab12") && hint.contains("handshake"));
    }

    #[test]
    fn a_port_in_use_is_a_clear_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        let error = check_free("p2p", address).unwrap_err();
        assert!(error.to_string().contains("p2p"));
        assert!(error.to_string().contains(&address.to_string()));
    }
}
