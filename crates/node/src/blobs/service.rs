//! The blob channel's network service: serves public blobs in chunks and fetches blobs from
//! peers, chunk by chunk, checking every answer.
//!
//! One task owns the channel's receiver, because requests and answers share the channel. A
//! fetch asks one peer at a time, from chunk 0 to the last, and rotates to the next peer of its
//! list when that peer times out, says it does not have the blob, or sends something wrong. A
//! fetch restarts from chunk 0 on every new peer, so a wrong final hash is always attributable
//! to exactly one peer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cairn_ledger::encoding::to_hex;
use commonware_cryptography::PublicKey;
use commonware_macros::select;
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Handle, Spawner, Storage};
use commonware_utils::channel::{mpsc, oneshot};
use tracing::{debug, warn};

use super::{blob_hash, BlobStore};
use crate::penalty::{Offence, Penalties, PenaltyConfig, Verdict};
use crate::wire::{chunk_range, Message, MAX_BLOB_BYTES};

/// Settings of the blob service.
#[derive(Clone, Copy, Debug)]
pub struct BlobConfig {
    /// Largest blob fetched (at most [`MAX_BLOB_BYTES`]).
    pub max_blob_bytes: u64,
    /// How long to wait for one chunk before asking the next peer.
    pub request_timeout: Duration,
    /// How many times a fetch goes through its whole peer list before it gives up.
    pub rounds: u32,
    /// Most fetches of distinct blobs in flight at once.
    pub max_fetches: usize,
    /// Most fetch requests queued for the service.
    pub mailbox: usize,
    /// Weights and limit for misbehaving peers.
    pub penalties: PenaltyConfig,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            max_blob_bytes: MAX_BLOB_BYTES,
            request_timeout: Duration::from_secs(2),
            rounds: 3,
            max_fetches: 64,
            mailbox: 256,
            penalties: PenaltyConfig::default(),
        }
    }
}

/// Why a fetch failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The fetch was given no peer to ask.
    #[error("no peer to fetch blob {0} from")]
    NoPeers(String),
    /// Every peer was asked `rounds` times without a valid answer.
    #[error("blob {hash} not obtained after {attempts} attempts (peers timed out, lacked it or misbehaved)")]
    Exhausted {
        /// Hex of the blob hash.
        hash: String,
        /// Peer attempts made.
        attempts: u32,
    },
    /// Too many distinct fetches are in flight; retry later.
    #[error("too many blob fetches in flight ({0}); retry later")]
    Busy(usize),
    /// The fetched blob could not be stored.
    #[error("fetched blob could not be stored: {0}")]
    Store(String),
    /// The blob service stopped.
    #[error("the blob service has stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<Arc<[u8]>, FetchError>>;

struct FetchRequest<P> {
    hash: [u8; 32],
    peers: Vec<P>,
    reply: Reply,
}

/// Handle through which the node asks the blob service to fetch blobs from peers.
#[derive(Clone, Debug)]
pub struct Fetcher<P> {
    mailbox: mpsc::Sender<FetchRequest<P>>,
}

impl<P: PublicKey> Fetcher<P> {
    /// Fetches the blob with this hash (returns at once if it is stored locally), asking `peers`
    /// in order and rotating on timeout, absence or misbehaviour. The blob is verified against
    /// `hash` and stored as public before it is returned.
    pub async fn fetch(&self, hash: [u8; 32], peers: Vec<P>) -> Result<Arc<[u8]>, FetchError> {
        let (reply, answer) = oneshot::channel();
        self.mailbox
            .send(FetchRequest { hash, peers, reply })
            .await
            .map_err(|_| FetchError::Stopped)?;
        answer.await.map_err(|_| FetchError::Stopped)?
    }
}

impl<P> std::fmt::Debug for FetchRequest<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchRequest")
            .field("hash", &to_hex(&self.hash))
            .finish()
    }
}

/// Spawns the blob service on `context`, serving and fetching through the blob channel's
/// `sender`/`receiver` and blocking peers past the penalty limit through `blocker`. Returns the
/// fetch handle and the task's handle.
pub fn start<E, S, R, B, P>(
    context: E,
    store: BlobStore<E>,
    config: BlobConfig,
    sender: S,
    receiver: R,
    blocker: B,
) -> (Fetcher<P>, Handle<()>)
where
    E: Spawner + Clock + Storage,
    P: PublicKey,
    S: Sender<PublicKey = P>,
    R: Receiver<PublicKey = P>,
    B: Blocker<PublicKey = P>,
{
    let (mailbox, requests) = mpsc::channel(config.mailbox.max(1));
    let handle = context.spawn(move |context| {
        let service = Service {
            context,
            store,
            config,
            sender,
            blocker,
            penalties: Penalties::new(config.penalties),
            blocked: BTreeSet::new(),
            fetches: BTreeMap::new(),
            finished: VecDeque::new(),
        };
        service.run(receiver, requests)
    });
    (Fetcher { mailbox }, handle)
}

struct Fetch<P> {
    peers: Vec<P>,
    attempts: u32,
    current: Option<P>,
    asked: BTreeSet<P>,
    next_chunk: u32,
    total_len: Option<u64>,
    data: Vec<u8>,
    deadline: SystemTime,
    waiters: Vec<Reply>,
}

enum Event<P> {
    Request(Option<FetchRequest<P>>),
    Message(Option<(P, Bytes)>),
    Deadline,
}

struct Service<E, S, B, P: PublicKey> {
    context: E,
    store: BlobStore<E>,
    config: BlobConfig,
    sender: S,
    blocker: B,
    penalties: Penalties<P>,
    blocked: BTreeSet<P>,
    fetches: BTreeMap<[u8; 32], Fetch<P>>,
    /// Who was asked for the last [`FINISHED_MEMORY`] finished fetches: their late answers are
    /// not unsolicited (a slow honest peer must not collect marks until it is blocked).
    finished: VecDeque<([u8; 32], BTreeSet<P>)>,
}

/// Finished fetches whose askees are remembered.
const FINISHED_MEMORY: usize = 1024;

impl<E, S, B, P> Service<E, S, B, P>
where
    E: Spawner + Clock + Storage,
    P: PublicKey,
    S: Sender<PublicKey = P>,
    B: Blocker<PublicKey = P>,
{
    async fn run<R: Receiver<PublicKey = P>>(
        mut self,
        mut receiver: R,
        requests: mpsc::Receiver<FetchRequest<P>>,
    ) {
        let mut requests = Some(requests);
        loop {
            let deadline = self.fetches.values().map(|fetch| fetch.deadline).min();
            let timer = optional_sleep(&self.context, deadline);
            let event = select! {
                request = next_request(&mut requests) => Event::Request(request),
                message = receiver.recv() => Event::Message(
                    message.ok().map(|(peer, bytes)| (peer, Bytes::copy_from_slice(bytes.as_ref())))
                ),
                _ = timer => Event::Deadline,
            };
            match event {
                Event::Request(Some(request)) => self.begin(request).await,
                Event::Request(None) => requests = None,
                Event::Message(Some((peer, bytes))) => self.receive(peer, &bytes).await,
                Event::Message(None) => {
                    debug!("blob channel closed; blob service stops");
                    break;
                }
                Event::Deadline => self.expire(),
            }
        }
        for (_, fetch) in std::mem::take(&mut self.fetches) {
            for waiter in fetch.waiters {
                let _ = waiter.send(Err(FetchError::Stopped));
            }
        }
    }

    async fn begin(&mut self, request: FetchRequest<P>) {
        let FetchRequest { hash, peers, reply } = request;
        if let Some(bytes) = super::BlobView::blob(&self.store, &hash) {
            let _ = reply.send(Ok(bytes));
            return;
        }
        if let Some(fetch) = self.fetches.get_mut(&hash) {
            fetch.waiters.push(reply);
            for peer in peers {
                if !fetch.peers.contains(&peer) {
                    fetch.peers.push(peer);
                }
            }
            return;
        }
        if peers.is_empty() {
            let _ = reply.send(Err(FetchError::NoPeers(to_hex(&hash))));
            return;
        }
        if self.fetches.len() >= self.config.max_fetches {
            let _ = reply.send(Err(FetchError::Busy(self.fetches.len())));
            return;
        }
        let fetch = Fetch {
            peers,
            attempts: 0,
            current: None,
            asked: BTreeSet::new(),
            next_chunk: 0,
            total_len: None,
            data: Vec::new(),
            deadline: self.context.current(),
            waiters: vec![reply],
        };
        self.fetches.insert(hash, fetch);
        self.rotate(hash);
    }

    /// Moves a fetch to its next unblocked peer and asks it for chunk 0, or fails the fetch
    /// once every peer has had `rounds` attempts.
    fn rotate(&mut self, hash: [u8; 32]) {
        let Some(fetch) = self.fetches.get_mut(&hash) else {
            return;
        };
        let limit = u32::try_from(fetch.peers.len())
            .unwrap_or(u32::MAX)
            .saturating_mul(self.config.rounds.max(1));
        loop {
            if fetch.attempts >= limit {
                let attempts = fetch.attempts;
                if let Some(fetch) = self.fetches.remove(&hash) {
                    self.remember(hash, &fetch.asked);
                    warn!(hash = %to_hex(&hash), attempts, "blob fetch exhausted its peers");
                    for waiter in fetch.waiters {
                        let _ = waiter.send(Err(FetchError::Exhausted {
                            hash: to_hex(&hash),
                            attempts,
                        }));
                    }
                }
                return;
            }
            let peer = fetch.peers[fetch.attempts as usize % fetch.peers.len()].clone();
            fetch.attempts += 1;
            if self.blocked.contains(&peer) {
                continue;
            }
            fetch.current = Some(peer.clone());
            fetch.asked.insert(peer.clone());
            fetch.next_chunk = 0;
            fetch.total_len = None;
            fetch.data = Vec::new();
            fetch.deadline = self.context.current() + self.config.request_timeout;
            let request = Message::BlobRequest { hash, chunk: 0 };
            self.sender
                .send(Recipients::One(peer), request.to_bytes(), false);
            return;
        }
    }

    fn expire(&mut self) {
        let now = self.context.current();
        let due: Vec<[u8; 32]> = self
            .fetches
            .iter()
            .filter(|(_, fetch)| fetch.deadline <= now)
            .map(|(hash, _)| *hash)
            .collect();
        for hash in due {
            debug!(hash = %to_hex(&hash), "blob chunk timed out; asking the next peer");
            self.rotate(hash);
        }
    }

    fn punish(&mut self, peer: &P, offence: Offence) {
        if self.penalties.mark(peer, offence) == Verdict::Block && self.blocked.insert(peer.clone())
        {
            warn!(peer = ?peer, ?offence, "blocking peer on the blob channel");
            let _ = self.blocker.block(peer.clone());
        }
    }

    async fn receive(&mut self, peer: P, bytes: &[u8]) {
        let message = match Message::from_bytes(bytes) {
            Ok(message) => message,
            Err(error) => {
                debug!(peer = ?peer, %error, "undecodable blob message");
                let offence = if error.is_oversized() {
                    Offence::Oversized
                } else {
                    Offence::Malformed
                };
                self.punish(&peer, offence);
                self.abandon_peer(&peer);
                return;
            }
        };
        match message {
            Message::BlobRequest { hash, chunk } => self.serve(peer, hash, chunk),
            Message::BlobChunk {
                hash,
                chunk,
                total_len,
                data,
            } => self.on_chunk(peer, hash, chunk, total_len, data).await,
            Message::BlobMissing { hash } => {
                if !self.is_current(&hash, &peer) {
                    self.punish_if_never_asked(&peer, &hash);
                    return;
                }
                debug!(hash = %to_hex(&hash), peer = ?peer, "peer lacks the blob");
                self.rotate(hash);
            }
            Message::Transaction(_) => self.punish(&peer, Offence::Malformed),
        }
    }

    /// A fetch whose current peer just sent garbage moves on rather than waiting for a timeout.
    fn abandon_peer(&mut self, peer: &P) {
        let hashes: Vec<[u8; 32]> = self
            .fetches
            .iter()
            .filter(|(_, fetch)| fetch.current.as_ref() == Some(peer))
            .map(|(hash, _)| *hash)
            .collect();
        for hash in hashes {
            self.rotate(hash);
        }
    }

    fn is_current(&self, hash: &[u8; 32], peer: &P) -> bool {
        self.fetches
            .get(hash)
            .is_some_and(|fetch| fetch.current.as_ref() == Some(peer))
    }

    fn remember(&mut self, hash: [u8; 32], asked: &BTreeSet<P>) {
        if self.finished.len() == FINISHED_MEMORY {
            self.finished.pop_front();
        }
        self.finished.push_back((hash, asked.clone()));
    }

    /// A late answer from a peer asked earlier is harmless; one from a peer never asked is not.
    fn punish_if_never_asked(&mut self, peer: &P, hash: &[u8; 32]) {
        let asked = self
            .fetches
            .get(hash)
            .is_some_and(|fetch| fetch.asked.contains(peer))
            || self
                .finished
                .iter()
                .any(|(h, asked)| h == hash && asked.contains(peer));
        if !asked {
            self.punish(peer, Offence::Unsolicited);
        }
    }

    fn serve(&mut self, peer: P, hash: [u8; 32], chunk: u32) {
        let answer = match self.store.public_blob(&hash) {
            None => Message::BlobMissing { hash },
            Some(bytes) => {
                let total_len = bytes.len() as u64;
                let Some(range) = chunk_range(total_len, chunk) else {
                    self.punish(&peer, Offence::Malformed);
                    return;
                };
                Message::BlobChunk {
                    hash,
                    chunk,
                    total_len,
                    data: Bytes::copy_from_slice(&bytes[range]),
                }
            }
        };
        self.sender
            .send(Recipients::One(peer), answer.to_bytes(), false);
    }

    async fn on_chunk(&mut self, peer: P, hash: [u8; 32], chunk: u32, total_len: u64, data: Bytes) {
        if !self.is_current(&hash, &peer) {
            self.punish_if_never_asked(&peer, &hash);
            return;
        }
        let max_blob_bytes = self.config.max_blob_bytes;
        let Some(fetch) = self.fetches.get_mut(&hash) else {
            return;
        };
        if chunk != fetch.next_chunk {
            // A late answer to an earlier attempt of this same peer (after a timeout and a
            // restart from chunk 0): harmless, and honest slow peers send them.
            return;
        }
        if total_len > max_blob_bytes {
            self.punish(&peer, Offence::Oversized);
            self.rotate(hash);
            return;
        }
        let consistent = fetch.total_len.is_none_or(|known| known == total_len);
        let expected = chunk_range(total_len, chunk).map(|range| range.len());
        if !consistent || expected != Some(data.len()) {
            debug!(hash = %to_hex(&hash), peer = ?peer, "inconsistent blob chunk");
            self.punish(&peer, Offence::Malformed);
            self.rotate(hash);
            return;
        }
        fetch.total_len = Some(total_len);
        fetch.data.extend_from_slice(&data);
        if (fetch.data.len() as u64) < total_len {
            fetch.next_chunk += 1;
            fetch.deadline = self.context.current() + self.config.request_timeout;
            let request = Message::BlobRequest {
                hash,
                chunk: fetch.next_chunk,
            };
            self.sender
                .send(Recipients::One(peer), request.to_bytes(), false);
            return;
        }
        if blob_hash(&fetch.data) != hash {
            warn!(hash = %to_hex(&hash), peer = ?peer, "peer sent a blob with the wrong hash");
            self.punish(&peer, Offence::WrongHash);
            self.rotate(hash);
            return;
        }
        let Some(fetch) = self.fetches.remove(&hash) else {
            return;
        };
        self.remember(hash, &fetch.asked);
        let result = match self.store.put(&fetch.data, true).await {
            Ok(_) => Ok(Arc::from(fetch.data)),
            Err(error) => Err(FetchError::Store(error.to_string())),
        };
        debug!(hash = %to_hex(&hash), peer = ?peer, ok = result.is_ok(), "blob fetch finished");
        for waiter in fetch.waiters {
            let _ = waiter.send(result.clone());
        }
    }
}

async fn next_request<P>(
    requests: &mut Option<mpsc::Receiver<FetchRequest<P>>>,
) -> Option<FetchRequest<P>> {
    match requests {
        Some(requests) => requests.recv().await,
        None => futures::future::pending().await,
    }
}

async fn optional_sleep<E: Clock>(context: &E, deadline: Option<SystemTime>) {
    match deadline {
        Some(deadline) => context.sleep_until(deadline).await,
        None => futures::future::pending().await,
    }
}
