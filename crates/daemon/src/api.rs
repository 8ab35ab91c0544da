//! A node's HTTP API: health, Prometheus metrics, and read access to the chain, tasks, rounds and
//! public blobs; task creation on the node's own key.
//!
//! | method and path | answer |
//! | --- | --- |
//! | `GET /healthz` | `200 ok` once the node runs, `503` before |
//! | `GET /metrics` | Prometheus text: Cairn's gauges, then commonware's own metrics |
//! | `GET /status` | JSON: name, role, keys, chain, height, state root, mempool, blobs |
//! | `GET /tasks` | JSON list of the newest tasks (id, status, round, members, model hash) |
//! | `GET /tasks/{id}` | JSON: the task as the ledger stores it |
//! | `GET /tasks/{id}/rounds/{round}` | JSON: the round as the ledger stores it |
//! | `GET /blobs/{hash}` | the bytes of a public blob this node holds (models, revealed updates) |
//! | `GET /blocks/{height}` | JSON: the state root after that block (nodes on one chain agree) |
//! | `GET /state/{key}` | the raw ledger value under a hex key (what `cairn replay` decodes) |
//! | `GET /validators` | JSON: epochs, the consensus set (address, weight) and the roster of candidates |
//! | `POST /tasks` | body: a scenario TOML (`cairn simulate`'s format; its task fields count): this node creates the task and starts it once its members joined |
//! | `POST /validators` | body: `{"stake": N}`: this node bonds what it lacks of `N` and stands for the validator set with weight `N` (`0` withdraws) |
//!
//! The API reads; the only things it changes are which tasks the node creates and whether it
//! stands as a validator. Both spend or lock the node's tokens: they need the node's API token
//! (`--api-token`, sent as `Authorization: Bearer ...`), or, when the node has none, a caller on
//! loopback. Reads need nothing: serve the API on loopback or a private network.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cairn_ledger::encoding::{from_hex, to_hex, Hash};
use cairn_ledger::state::{keys, Overlay};
use cairn_ledger::store::StateRead;
use cairn_ledger::store::Store;
use cairn_ledger::transaction::Payload;
use cairn_ledger::{query, validators, DatasetRegistry, TaskStatus};
use cairn_node::blobs::BlobView;
use cairn_node::keys::NodeKey;
use cairn_node::node::NodeState;
use cairn_node::protocol::Agent;
use commonware_cryptography::ed25519;
use commonware_runtime::{tokio as cw_tokio, Metrics};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::chain::ChainFile;
use crate::home::NodeRole;
use crate::DaemonError;

type Node = NodeState<cw_tokio::Context, Store>;

/// Tasks `GET /tasks` lists (the newest).
pub const TASK_LIST: u64 = 64;

/// Largest body `POST /tasks` accepts.
pub const MAX_TASK_BODY: usize = 64 * 1024;

/// What the API reads.
pub struct ApiState {
    context: cw_tokio::Context,
    name: String,
    role: NodeRole,
    key: NodeKey,
    chain: ChainFile,
    chain_hash: Hash,
    registry: Arc<DatasetRegistry>,
    store: Arc<Mutex<Store>>,
    node: Mutex<Option<Node>>,
    blocks: Mutex<BlockClock>,
    /// blake3 of the bearer token `POST /tasks` and `POST /validators` require (`None`: loopback
    /// callers only).
    token: Option<Hash>,
    /// Slashes of the rounds already closed, so a scrape reads only newly closed rounds.
    slashes: Mutex<SlashTally>,
}

/// Slashes at round close, per task, counted once per round: a round's outcome never changes
/// once it is set and rounds close in order, so each `/metrics` scrape reads only the rounds
/// closed since the one before (the first scrape reads every closed round once).
#[derive(Debug, Default)]
struct SlashTally {
    /// Per task: the first round not yet seen closed, and the slashes of the rounds before it.
    tasks: BTreeMap<u64, (u32, usize)>,
}

impl SlashTally {
    /// Brings every listed task `(id, last round number)` up to date with `closed(task,
    /// round)` — the round's slash count once it is closed, `None` while it is open or absent
    /// — forgets tasks no longer listed, and returns the total over the listed tasks.
    fn update(
        &mut self,
        tasks: &[(u64, u32)],
        mut closed: impl FnMut(u64, u32) -> Option<usize>,
    ) -> usize {
        self.tasks
            .retain(|id, _| tasks.iter().any(|(listed, _)| listed == id));
        let mut total = 0usize;
        for (id, last) in tasks {
            let (next, sum) = self.tasks.entry(*id).or_insert((0, 0));
            while *next <= *last {
                let Some(slashed) = closed(*id, *next) else {
                    break;
                };
                *sum = sum.saturating_add(slashed);
                match next.checked_add(1) {
                    Some(after) => *next = after,
                    None => break,
                }
            }
            total = total.saturating_add(*sum);
        }
        total
    }
}

/// Intervals between finalized blocks as this node commits them.
#[derive(Debug)]
struct BlockClock {
    height: u64,
    at: Instant,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

const BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0];

impl BlockClock {
    fn observe(&mut self, height: u64) {
        if height <= self.height {
            return;
        }
        let now = Instant::now();
        // Per block, when several landed between two looks.
        let blocks = height - self.height;
        let interval = now.duration_since(self.at).as_secs_f64() / blocks as f64;
        if self.count > 0 || self.height > 0 {
            for _ in 0..blocks.min(1_000) {
                for (bucket, &bound) in self.buckets.iter_mut().zip(&BUCKETS) {
                    if interval <= bound {
                        *bucket += 1;
                    }
                }
                self.count += 1;
                self.sum += interval;
            }
        }
        self.height = height;
        self.at = now;
    }
}

impl ApiState {
    /// The API's view of one node.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        context: cw_tokio::Context,
        name: String,
        role: NodeRole,
        key: NodeKey,
        chain: ChainFile,
        chain_hash: Hash,
        registry: Arc<DatasetRegistry>,
        store: Arc<Mutex<Store>>,
    ) -> Self {
        Self {
            context,
            name,
            role,
            key,
            chain,
            chain_hash,
            registry,
            store,
            node: Mutex::new(None),
            token: None,
            slashes: Mutex::new(SlashTally::default()),
            blocks: Mutex::new(BlockClock {
                height: 0,
                at: Instant::now(),
                buckets: [0; BUCKETS.len()],
                count: 0,
                sum: 0.0,
            }),
        }
    }

    /// Requires `Authorization: Bearer TOKEN` on `POST /tasks` and `POST /validators` (from any
    /// address); without a token only loopback callers may create tasks or make the node stand.
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(|t| *blake3::hash(t.as_bytes()).as_bytes());
        self
    }

    /// Called once the node's parts run.
    pub fn set_node(&self, node: Node) {
        *lock(&self.node) = Some(node);
    }

    fn node(&self) -> Option<Node> {
        lock(&self.node).clone()
    }

    /// Records the committed height (called by the block clock task) and returns it.
    pub fn observe_height(&self) -> u64 {
        let height = lock(&self.store).height().unwrap_or(0);
        lock(&self.blocks).observe(height);
        height
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves the API on `address` until the runtime stops.
pub async fn serve(address: SocketAddr, state: Arc<ApiState>) -> Result<(), DaemonError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| DaemonError::Port {
            what: "http".into(),
            address,
            reason: error.to_string(),
        })?;
    tracing::info!(%address, "HTTP API listening");
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .map_err(|error| DaemonError::Io(error.to_string()))
}

/// The API's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/tasks", get(tasks).post(create_task))
        .route("/tasks/{id}", get(task))
        .route("/tasks/{id}/rounds/{round}", get(round))
        .route("/blobs/{hash}", get(blob))
        .route("/state/{key}", get(state_value))
        .route("/blocks/{height}", get(block_root))
        .route("/validators", get(validator_set).post(stand))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn healthz(State(state): State<Arc<ApiState>>) -> Response {
    if state.node().is_some() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

/// `GET /status`.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The node's name in the chain file.
    pub name: String,
    /// Its role.
    pub role: NodeRole,
    /// Its public key, hex.
    pub public_key: String,
    /// Its ledger address, hex.
    pub address: String,
    /// The chain id.
    pub chain_id: u64,
    /// Block 0's hash, hex.
    pub chain_hash: String,
    /// Last committed height.
    pub height: u64,
    /// State root after it, hex.
    pub state_root: String,
    /// Transactions pooled (validators).
    pub mempool: Option<usize>,
    /// Blobs held.
    pub blobs: usize,
    /// Tasks on the ledger.
    pub tasks: u64,
    /// Whether the node's parts run.
    pub running: bool,
    /// What consensus does on this node.
    pub consensus: ConsensusLine,
}

/// The consensus part of `GET /status`.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsensusLine {
    /// The newest epoch this node knows (its set is final).
    pub epoch: u64,
    /// Size of that epoch's validator set.
    pub validators: usize,
    /// Whether this node is in that set.
    pub member: bool,
    /// Whether this node's consensus engine signs votes in that epoch (a validator in the set
    /// that has entered it; false on trainers and observers).
    pub voting: bool,
}

impl ConsensusLine {
    fn of(node: Option<&Node>, key: &ed25519::PublicKey) -> Self {
        let Some(node) = node else {
            return Self::default();
        };
        let (epoch, set) = node.epochs.current();
        let voting = node.consensus.member() && node.consensus.epoch() == epoch;
        Self {
            epoch,
            validators: set.len(),
            member: set.position(key).is_some(),
            voting,
        }
    }
}

async fn status(State(state): State<Arc<ApiState>>) -> Response {
    let node = state.node();
    let (height, root, tasks) = {
        let store = lock(&state.store);
        let tasks: u64 = Overlay::new(&*store)
            .read(keys::NEXT_TASK)
            .ok()
            .flatten()
            .unwrap_or(0);
        (store.height().unwrap_or(0), store.root(), tasks)
    };
    Json(Status {
        name: state.name.clone(),
        role: state.role,
        public_key: to_hex(state.key.public_key().as_ref()),
        address: to_hex(&state.key.address().0),
        chain_id: state.chain.chain_id,
        chain_hash: to_hex(&state.chain_hash),
        height,
        state_root: to_hex(&root),
        mempool: node
            .as_ref()
            .and_then(|n| n.mempool.as_ref().map(|m| m.len())),
        blobs: node.as_ref().map_or(0, |n| n.blobs.hashes().len()),
        tasks,
        running: node.is_some(),
        consensus: ConsensusLine::of(node.as_ref(), &state.key.public_key()),
    })
    .into_response()
}

/// One line of `GET /tasks`.
#[derive(Debug, Serialize)]
pub struct TaskLine {
    /// Task id.
    pub id: u64,
    /// Open, running, finished, settled or cancelled.
    pub status: String,
    /// The round running, if any.
    pub round: Option<u32>,
    /// Rounds in all.
    pub rounds: u32,
    /// Creator's address, hex.
    pub creator: String,
    /// Trainers joined.
    pub trainers: usize,
    /// Validators joined.
    pub validators: usize,
    /// The latest model's hash, hex.
    pub model_hash: String,
}

fn task_lines(state: &dyn StateRead) -> Result<Vec<TaskLine>, String> {
    let next: u64 = Overlay::new(state)
        .read(keys::NEXT_TASK)
        .map_err(|e| e.to_string())?
        .unwrap_or(0);
    let mut lines = Vec::new();
    for id in next.saturating_sub(TASK_LIST)..next {
        let Some(task) = query::task(state, id).map_err(|e| e.to_string())? else {
            continue;
        };
        let (status, round) = match task.status {
            TaskStatus::Open => ("open", None),
            TaskStatus::Running { round } => ("running", Some(round)),
            TaskStatus::Finished => ("finished", None),
            TaskStatus::Settled => ("settled", None),
            TaskStatus::Cancelled => ("cancelled", None),
        };
        lines.push(TaskLine {
            id,
            status: status.into(),
            round,
            rounds: task.spec.rounds,
            creator: to_hex(&task.creator.0),
            trainers: task.trainers.len(),
            validators: task.validators.len(),
            model_hash: to_hex(&task.model_hash),
        });
    }
    Ok(lines)
}

async fn tasks(State(state): State<Arc<ApiState>>) -> Response {
    let store = lock(&state.store);
    match task_lines(&*store) {
        Ok(lines) => Json(lines).into_response(),
        Err(reason) => error(StatusCode::INTERNAL_SERVER_ERROR, reason),
    }
}

async fn task(State(state): State<Arc<ApiState>>, Path(id): Path<u64>) -> Response {
    let store = lock(&state.store);
    match query::task(&*store, id) {
        Ok(Some(task)) => Json(task).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no task {id}")),
        Err(reason) => error(StatusCode::INTERNAL_SERVER_ERROR, reason.to_string()),
    }
}

async fn round(
    State(state): State<Arc<ApiState>>,
    Path((id, number)): Path<(u64, u32)>,
) -> Response {
    let store = lock(&state.store);
    match query::round(&*store, id, number) {
        Ok(Some(round)) => Json(round).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no round {number} of task {id}"),
        ),
        Err(reason) => error(StatusCode::INTERNAL_SERVER_ERROR, reason.to_string()),
    }
}

async fn blob(State(state): State<Arc<ApiState>>, Path(hash): Path<String>) -> Response {
    let Some(hash) = from_hex::<32>(&hash) else {
        return error(StatusCode::BAD_REQUEST, "a blob hash is 32 bytes of hex");
    };
    let Some(node) = state.node() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "node starting");
    };
    match node.blobs.public_blob(&hash) {
        Some(bytes) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Bytes::copy_from_slice(&bytes),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no public blob {}", to_hex(&hash)),
        ),
    }
}

async fn block_root(State(state): State<Arc<ApiState>>, Path(height): Path<u64>) -> Response {
    let store = lock(&state.store);
    match store.root_at(height) {
        Ok(Some(root)) => {
            Json(json!({ "height": height, "state_root": to_hex(&root) })).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("block {height} is not committed here"),
        ),
        Err(reason) => error(StatusCode::INTERNAL_SERVER_ERROR, reason.to_string()),
    }
}

async fn state_value(State(state): State<Arc<ApiState>>, Path(key): Path<String>) -> Response {
    let Some(key) = decode_hex(&key) else {
        return error(StatusCode::BAD_REQUEST, "a state key is hex");
    };
    let store = lock(&state.store);
    match store.get(&key) {
        Ok(Some(value)) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Bytes::from(value),
        )
            .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no value under this key"),
        Err(reason) => error(StatusCode::INTERNAL_SERVER_ERROR, reason.to_string()),
    }
}

/// Hex of any even length (state keys are up to a few dozen bytes).
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 512 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Whether a caller may spend the node's tokens: the bearer token when one is set (compared by
/// hash, so the comparison's time says nothing about the token), otherwise a loopback caller.
fn authorized(
    token: Option<&Hash>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, &'static str)> {
    match token {
        Some(want) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match given {
                Some(token) if blake3::hash(token.as_bytes()).as_bytes() == want => Ok(()),
                _ => Err((
                    StatusCode::UNAUTHORIZED,
                    "POST /tasks needs this node's API token (Authorization: Bearer ...)",
                )),
            }
        }
        None if peer.ip().is_loopback() => Ok(()),
        None => Err((
            StatusCode::FORBIDDEN,
            "this node has no API token: only loopback callers may make it spend (create \
             tasks, stand as a validator); start it with --api-token",
        )),
    }
}

async fn create_task(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((status, reason)) = authorized(state.token.as_ref(), peer, &headers) {
        return error(status, reason);
    }
    if body.len() > MAX_TASK_BODY {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "task body over 64 KiB");
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "task body is not UTF-8");
    };
    let Some(node) = state.node() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "node starting");
    };
    let scenario = match cairn_sim::Scenario::from_toml_str(text) {
        Ok(scenario) => scenario,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason.to_string()),
    };
    // The checks `cairn simulate` makes before a run: the plan parses, every trainer gets a
    // sample, and the rule can aggregate as many updates as there are trainers (the ledger
    // cannot check the last two at creation, before anyone joined).
    if let Err(reason) = cairn_sim::runner::check(&scenario) {
        return error(StatusCode::BAD_REQUEST, reason.to_string());
    }
    let spec = match cairn_sim::runner::task_spec(&scenario, &state.registry) {
        Ok(spec) => spec,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason.to_string()),
    };
    let trainers = usize::try_from(scenario.trainer_count()).unwrap_or(usize::MAX);
    let validators = usize::try_from(scenario.validator_count()).unwrap_or(usize::MAX);
    let agent = match Agent::creator(
        &state.key.ledger_key(),
        spec,
        state.registry.clone(),
        trainers,
        validators,
    ) {
        Ok(agent) => agent,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason.to_string()),
    };
    let spec = agent.spec().cloned();
    lock(&node.observer).add_agent(agent);
    tracing::info!(trainers, validators, "task creation accepted");
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "creator": to_hex(&state.key.address().0),
            "trainers": trainers,
            "validators": validators,
            "spec": spec,
        })),
    )
        .into_response()
}

/// One validator of `GET /validators`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ValidatorLine {
    /// Ledger address, hex.
    pub address: String,
    /// Its name in the chain file, if it is there.
    pub name: Option<String>,
    /// Weight (the bond it joins tasks with; its voting power is one vote).
    pub weight: String,
}

/// One candidate of `GET /validators`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CandidateLine {
    /// Ledger address, hex.
    pub address: String,
    /// Its name in the chain file, if it is there.
    pub name: Option<String>,
    /// Stake offered.
    pub stake: String,
    /// Bonded stake now (the weight it can get is the smaller of the two).
    pub bonded: String,
}

/// `GET /validators`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ValidatorSet {
    /// Blocks per epoch (0: the genesis set for the chain's life).
    pub epoch_length: u64,
    /// Last committed height.
    pub height: u64,
    /// The epoch of the next block.
    pub epoch: u64,
    /// The last block of that epoch, after which the next set is taken (`None` without epochs).
    pub next_boundary: Option<u64>,
    /// The set of that epoch.
    pub validators: Vec<ValidatorLine>,
    /// Standing candidates (genesis validators stand without a roster entry).
    pub roster: Vec<CandidateLine>,
}

fn validator_lines(
    store: &Store,
    chain: &ChainFile,
) -> Result<ValidatorSet, cairn_ledger::state::StateError> {
    let params = query::params(store)?;
    let height = store.height().unwrap_or(0);
    let epoch = validators::epoch_of(&params, height.saturating_add(1));
    let next_boundary = (params.epoch_length > 0)
        .then(|| epoch.saturating_add(1).saturating_mul(params.epoch_length) - 1);
    let name =
        |address: &cairn_ledger::Address| chain.member_by_address(address).map(|m| m.name.clone());
    let set = query::consensus_validators(store)?
        .into_iter()
        .map(|(address, weight)| ValidatorLine {
            address: to_hex(&address.0),
            name: name(&address),
            weight: weight.to_string(),
        })
        .collect();
    let mut roster = Vec::new();
    for (address, candidate) in validators::roster(store)? {
        roster.push(CandidateLine {
            address: to_hex(&address.0),
            name: name(&address),
            stake: candidate.stake.to_string(),
            bonded: query::stake(store, &address)?.bonded.to_string(),
        });
    }
    Ok(ValidatorSet {
        epoch_length: params.epoch_length,
        height,
        epoch,
        next_boundary,
        validators: set,
        roster,
    })
}

async fn validator_set(State(state): State<Arc<ApiState>>) -> Response {
    let store = lock(&state.store);
    match validator_lines(&store, &state.chain) {
        Ok(set) => Json(set).into_response(),
        Err(reason) => error(StatusCode::INTERNAL_SERVER_ERROR, reason.to_string()),
    }
}

/// Body of `POST /validators`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stand {
    /// Weight to stand with (base units, a decimal string or a number); 0 withdraws.
    #[serde(with = "amount")]
    pub stake: u128,
}

mod amount {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Amount {
            Number(u64),
            Text(String),
        }
        match Amount::deserialize(deserializer)? {
            Amount::Number(n) => Ok(u128::from(n)),
            Amount::Text(text) => text.trim().parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The transactions that make `address` stand with `stake`: a bond of what its bonded stake
/// lacks, then the candidacy. Refused where the ledger would refuse them.
pub fn stand_payloads(
    state: &dyn StateRead,
    address: &cairn_ledger::Address,
    stake: u128,
) -> Result<Vec<Payload>, String> {
    let params = query::params(state).map_err(|e| e.to_string())?;
    if params.epoch_length == 0 {
        return Err("this chain's validator set is fixed at genesis (epoch_length = 0)".into());
    }
    if stake != 0 && stake < params.min_bond {
        return Err(format!(
            "stake {stake} is below the chain's min_bond {}",
            params.min_bond
        ));
    }
    let bonded = query::stake(state, address)
        .map_err(|e| e.to_string())?
        .bonded;
    let balance = query::balance(state, address).map_err(|e| e.to_string())?;
    let lacking = stake.saturating_sub(bonded);
    if lacking > balance {
        return Err(format!(
            "standing with {stake} needs {lacking} more bonded, and the balance is {balance}"
        ));
    }
    let mut payloads = Vec::new();
    if lacking > 0 {
        payloads.push(Payload::Bond { amount: lacking });
    }
    payloads.push(Payload::Candidacy { stake });
    Ok(payloads)
}

async fn stand(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((status, reason)) = authorized(state.token.as_ref(), peer, &headers) {
        return error(status, reason);
    }
    let request: Stand = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(reason) => return error(StatusCode::BAD_REQUEST, format!("body: {reason}")),
    };
    let Some(node) = state.node() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "node starting");
    };
    let address = state.key.address();
    let payloads = {
        let store = lock(&state.store);
        match stand_payloads(&*store, &address, request.stake) {
            Ok(payloads) => payloads,
            Err(reason) => return error(StatusCode::UNPROCESSABLE_ENTITY, reason),
        }
    };
    let sent = match lock(&node.observer).submit(payloads) {
        Ok(sent) => sent,
        Err(reason) => return error(StatusCode::SERVICE_UNAVAILABLE, reason.to_string()),
    };
    tracing::info!(stake = %request.stake, "standing for the validator set");
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "address": to_hex(&address.0),
            "stake": request.stake.to_string(),
            "transactions": sent.iter().map(|t| to_hex(&t.hash())).collect::<Vec<_>>(),
        })),
    )
        .into_response()
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    out.push_str(&format!(
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
    ));
}

async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    let mut out = String::new();
    let node = state.node();
    let (height, task_rounds, slashes) = {
        let store = lock(&state.store);
        let height = store.height().unwrap_or(0);
        let lines = task_lines(&*store).unwrap_or_default();
        let listed: Vec<(u64, u32)> = lines
            .iter()
            .map(|line| (line.id, line.round.unwrap_or(line.rounds)))
            .collect();
        let slashes = lock(&state.slashes).update(&listed, |task, number| {
            match query::round(&*store, task, number) {
                Ok(Some(round)) => match &round.outcome {
                    Some(cairn_ledger::round::Outcome::Finalized { slashed, .. })
                    | Some(cairn_ledger::round::Outcome::TimedOut { slashed }) => {
                        Some(slashed.len())
                    }
                    None => None,
                },
                _ => None,
            }
        });
        let rounds: Vec<(u64, Option<u32>)> = lines.iter().map(|l| (l.id, l.round)).collect();
        (height, rounds, slashes)
    };
    gauge(
        &mut out,
        "cairn_finalized_height",
        "Height of the last block this node committed.",
        height,
    );
    out.push_str(
        "# HELP cairn_task_round The round each running task is in.\n# TYPE cairn_task_round gauge\n",
    );
    for (id, round) in task_rounds {
        if let Some(round) = round {
            out.push_str(&format!("cairn_task_round{{task=\"{id}\"}} {round}\n"));
        }
    }
    gauge(
        &mut out,
        "cairn_slashes",
        "Members slashed at round close in the newest tasks.",
        slashes,
    );
    let consensus = ConsensusLine::of(node.as_ref(), &state.key.public_key());
    gauge(
        &mut out,
        "cairn_consensus_epoch",
        "The newest consensus epoch this node knows.",
        consensus.epoch,
    );
    gauge(
        &mut out,
        "cairn_consensus_validators",
        "Validators in that epoch's set.",
        consensus.validators,
    );
    gauge(
        &mut out,
        "cairn_consensus_member",
        "1 if this node is in that epoch's validator set.",
        u8::from(consensus.member),
    );
    gauge(
        &mut out,
        "cairn_consensus_voting",
        "1 if this node's engine signs votes in that epoch.",
        u8::from(consensus.voting),
    );
    if let Some(node) = &node {
        if let Some(pool) = &node.mempool {
            gauge(
                &mut out,
                "cairn_mempool_transactions",
                "Transactions in this validator's mempool.",
                pool.len(),
            );
        }
        let hashes = node.blobs.hashes();
        let bytes: usize = hashes
            .iter()
            .filter_map(|hash| node.blobs.blob(hash).map(|b| b.len()))
            .sum();
        gauge(
            &mut out,
            "cairn_blobs",
            "Blobs this node holds.",
            hashes.len(),
        );
        gauge(
            &mut out,
            "cairn_blob_bytes",
            "Bytes of the blobs this node holds.",
            bytes,
        );
        let (audits, agents) = {
            let observer = lock(&node.observer);
            let audits: u64 = observer
                .agents()
                .iter()
                .map(|a| a.audit_stats().audits)
                .sum();
            (audits, observer.agents().len())
        };
        gauge(
            &mut out,
            "cairn_audits",
            "Trainer rounds this node re-ran in audits.",
            audits,
        );
        gauge(
            &mut out,
            "cairn_agents",
            "Protocol agents (one per task this node works on or created).",
            agents,
        );
        gauge(
            &mut out,
            "cairn_agent_seconds",
            "Wall time this node's agents spent computing (training, aggregation, scoring, audits).",
            node.agent_time.total().as_secs_f64(),
        );
        gauge(
            &mut out,
            "cairn_agent_callback_seconds",
            "Wall time the agents spent deciding in block callbacks (with the ledger store locked).",
            node.agent_time.callback().as_secs_f64(),
        );
        gauge(
            &mut out,
            "cairn_agent_job_seconds",
            "Wall time slow jobs (training, aggregation, scoring, audits) took on the worker pool.",
            node.agent_time.job_time().as_secs_f64(),
        );
        gauge(
            &mut out,
            "cairn_agent_jobs",
            "Slow jobs finished on the worker pool.",
            node.agent_time.jobs(),
        );
        gauge(
            &mut out,
            "cairn_agent_jobs_refused",
            "Slow jobs refused because the pool's queue was full (each decided again later).",
            node.agent_time.refused(),
        );
    }
    {
        let clock = lock(&state.blocks);
        out.push_str("# HELP cairn_block_interval_seconds Time between blocks as this node commits them.\n# TYPE cairn_block_interval_seconds histogram\n");
        for (bucket, bound) in clock.buckets.iter().zip(BUCKETS) {
            out.push_str(&format!(
                "cairn_block_interval_seconds_bucket{{le=\"{bound}\"}} {bucket}\n"
            ));
        }
        out.push_str(&format!(
            "cairn_block_interval_seconds_bucket{{le=\"+Inf\"}} {}\ncairn_block_interval_seconds_sum {}\ncairn_block_interval_seconds_count {}\n",
            clock.count, clock.sum, clock.count
        ));
    }
    out.push_str(&state.context.encode());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain where address 1 validates with 1 000 bonded and address 2 holds 5 000 unbonded.
    fn ledger(epoch_length: u64) -> cairn_ledger::Chain<cairn_ledger::store::MemoryStore> {
        let genesis = cairn_ledger::Genesis {
            chain_id: 3,
            params: cairn_ledger::Params {
                epoch_length,
                ..cairn_ledger::Params::default()
            },
            balances: [(cairn_ledger::Address([2; 20]), 5_000u128)]
                .into_iter()
                .collect(),
            validators: [(cairn_ledger::Address([1; 20]), 1_000u128)]
                .into_iter()
                .collect(),
            datasets: Default::default(),
        };
        cairn_ledger::Chain::create(
            cairn_ledger::store::MemoryStore::new(),
            &genesis,
            Arc::default(),
        )
        .unwrap()
    }

    #[test]
    fn standing_bonds_what_is_lacking_and_refuses_what_the_ledger_would() {
        let chain = ledger(10);
        let state = chain.store();
        let validator = cairn_ledger::Address([1; 20]);
        let outsider = cairn_ledger::Address([2; 20]);
        // Bonded enough: the candidacy alone.
        assert_eq!(
            stand_payloads(state, &validator, 1_000).unwrap(),
            vec![Payload::Candidacy { stake: 1_000 }]
        );
        // Withdrawing needs no bond.
        assert_eq!(
            stand_payloads(state, &validator, 0).unwrap(),
            vec![Payload::Candidacy { stake: 0 }]
        );
        // An outsider bonds what it lacks first.
        assert_eq!(
            stand_payloads(state, &outsider, 4_000).unwrap(),
            vec![
                Payload::Bond { amount: 4_000 },
                Payload::Candidacy { stake: 4_000 }
            ]
        );
        // Beyond the balance, below min_bond, or on a chain without epochs: refused.
        assert!(stand_payloads(state, &outsider, 6_000)
            .unwrap_err()
            .contains("balance"));
        assert!(stand_payloads(state, &outsider, 99)
            .unwrap_err()
            .contains("min_bond"));
        let fixed = ledger(0);
        assert!(stand_payloads(fixed.store(), &validator, 1_000)
            .unwrap_err()
            .contains("epoch_length"));
    }

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn slashes_of_a_closed_round_are_read_once_and_tasks_that_leave_the_list_are_forgotten() {
        use std::collections::BTreeMap;
        // Task 1: rounds 0 and 1 closed (2 and 0 slashed), round 2 open. Task 2: round 0 closed.
        let mut ledger: BTreeMap<(u64, u32), usize> = [((1, 0), 2), ((1, 1), 0), ((2, 0), 1)]
            .into_iter()
            .collect();
        let mut tally = SlashTally::default();
        let mut reads = 0;
        let mut scrape =
            |tally: &mut SlashTally, ledger: &BTreeMap<(u64, u32), usize>, tasks: &[(u64, u32)]| {
                tally.update(tasks, |task, round| {
                    reads += 1;
                    ledger.get(&(task, round)).copied()
                })
            };
        assert_eq!(scrape(&mut tally, &ledger, &[(1, 2), (2, 0)]), 3);
        // Second scrape, nothing new: only the open round of task 1 is read again.
        assert_eq!(scrape(&mut tally, &ledger, &[(1, 2), (2, 0)]), 3);
        // Round 2 of task 1 closes with 4 slashed.
        ledger.insert((1, 2), 4);
        assert_eq!(scrape(&mut tally, &ledger, &[(1, 2), (2, 0)]), 7);
        // Task 2 leaves the list (older than the newest tasks): its slashes no longer count.
        assert_eq!(scrape(&mut tally, &ledger, &[(1, 2)]), 6);
        assert!(!tally.tasks.contains_key(&2));
        // 3 closed + 1 open on the first scrape, 1 open on the second, 1 on the third; none
        // after task 1's last round closed.
        assert_eq!(reads, 4 + 1 + 1);
    }

    #[test]
    fn task_creation_needs_the_token_or_loopback() {
        let loopback: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        // No token: loopback only.
        assert!(authorized(None, loopback, &headers(None)).is_ok());
        let refused = authorized(None, remote, &headers(Some("Bearer x"))).unwrap_err();
        assert_eq!(refused.0, StatusCode::FORBIDDEN);
        // A token: required from everyone, loopback included.
        let token = *blake3::hash(b"s3cret").as_bytes();
        assert!(authorized(Some(&token), remote, &headers(Some("Bearer s3cret"))).is_ok());
        for bad in [
            None,
            Some("Bearer s3cre"),
            Some("s3cret"),
            Some("Bearer s3cret "),
        ] {
            let refused = authorized(Some(&token), loopback, &headers(bad)).unwrap_err();
            assert_eq!(refused.0, StatusCode::UNAUTHORIZED, "{bad:?}");
        }
    }

    #[test]
    fn hex_keys_decode_or_are_refused() {
        assert_eq!(decode_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex(&"ab".repeat(300)), None);
        assert_eq!(decode_hex("é1"), None);
    }
}
