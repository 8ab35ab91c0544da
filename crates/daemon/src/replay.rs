//! `cairn replay`: recompute a finalized round's model from public data and check it against the
//! hash the ledger recorded (DESIGN.md, step 7).
//!
//! The replayer asks a node for the task's and the round's ledger records (raw state values,
//! decoded here with the ledger's own decoders), fetches the round's input model `M_r`, the
//! previous input `M_{r−1}` and every update that counted by hash from that node or others
//! (each checked against its hash), and runs the same `aggregate_round` validators ran. A match means the node's ledger
//! and the blobs it serves reproduce the recorded model bit for bit; a mismatch is an error.

use std::collections::BTreeMap;

use cairn_ledger::encoding::{to_hex, Hash};
use cairn_ledger::round::Outcome;
use cairn_ledger::state::keys;
use cairn_ledger::store::{StateRead, StoreError, Value};
use cairn_ledger::{query, Address, DatasetRegistry};
use cairn_round::aggregation::{aggregate_round, Revealed};
use cairn_round::params;
use cairn_round::plan::TaskPlan;
use serde::Serialize;

use crate::client::Client;
use crate::DaemonError;

/// Ledger records fetched from a node, served to the ledger's readers.
#[derive(Default)]
struct Fetched(BTreeMap<Vec<u8>, Value>);

impl StateRead for Fetched {
    fn get(&self, key: &[u8]) -> Result<Option<Value>, StoreError> {
        Ok(self.0.get(key).cloned())
    }
}

impl Fetched {
    fn fetch(&mut self, client: &Client, key: Vec<u8>) -> Result<(), DaemonError> {
        match client.get_bytes(&format!("/state/{}", to_hex(&key))) {
            Ok(bytes) => {
                self.0.insert(key, bytes);
                Ok(())
            }
            Err(DaemonError::Api(reason)) if reason.contains(" 404 ") => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// Task id.
    pub task: u64,
    /// Round number.
    pub round: u32,
    /// Updates that counted (aggregated).
    pub updates: usize,
    /// The model hash the ledger recorded for `M_{r+1}`, hex.
    pub recorded: String,
    /// The model hash recomputed here, hex.
    pub recomputed: String,
    /// Whether they are equal.
    pub matches: bool,
}

/// The blob `hash` from the first node that serves bytes hashing to it (a node that was down
/// during a round never fetched that round's updates; another serves them).
fn blob(nodes: &[Client], hash: &Hash) -> Result<Vec<u8>, DaemonError> {
    let mut reasons = Vec::new();
    for client in nodes {
        match client.get_bytes(&format!("/blobs/{}", to_hex(hash))) {
            Ok(bytes) if params::blob_hash(&bytes) == *hash => return Ok(bytes),
            Ok(_) => reasons.push(format!("{} served bytes of another hash", client.base())),
            Err(error) => reasons.push(error.to_string()),
        }
    }
    Err(DaemonError::Replay(format!(
        "no node served blob {}: {}",
        to_hex(hash),
        reasons.join("; ")
    )))
}

/// Replays round `round` of task `task`: the ledger records from the first of `nodes`, each blob
/// from the first node that serves it, on the datasets of `registry`; `Err` if a record or blob
/// is missing, `Ok` with `matches` telling the verdict.
pub fn replay(
    nodes: &[Client],
    registry: &DatasetRegistry,
    task: u64,
    round: u32,
) -> Result<ReplayReport, DaemonError> {
    let client = nodes
        .first()
        .ok_or_else(|| DaemonError::Replay("no node to replay from".into()))?;
    let mut fetched = Fetched::default();
    fetched.fetch(client, keys::task(task))?;
    fetched.fetch(client, keys::round(task, round))?;
    if let Some(previous) = round.checked_sub(1) {
        fetched.fetch(client, keys::round(task, previous))?;
    }
    let corrupt = |error: cairn_ledger::state::StateError| DaemonError::Replay(error.to_string());
    let record = query::task(&fetched, task)
        .map_err(corrupt)?
        .ok_or_else(|| DaemonError::Replay(format!("no task {task} on {}", client.base())))?;
    let this = query::round(&fetched, task, round)
        .map_err(corrupt)?
        .ok_or_else(|| DaemonError::Replay(format!("task {task} has no round {round}")))?;
    let recorded = match &this.outcome {
        Some(Outcome::Finalized { model_hash, .. }) => *model_hash,
        Some(Outcome::TimedOut { .. }) => {
            return Err(DaemonError::Replay(format!(
                "round {round} of task {task} timed out: no model was recorded"
            )))
        }
        None => {
            return Err(DaemonError::Replay(format!(
                "round {round} of task {task} has not closed yet"
            )))
        }
    };
    let plan = TaskPlan::from_spec(&record.spec, registry)
        .map_err(|error| DaemonError::Replay(format!("task {task}'s plan: {error}")))?;
    let available = this.available.clone().unwrap_or_default();
    let counted: Vec<(Address, Hash)> = this
        .revealed()
        .filter(|(trainer, _)| available.contains(*trainer))
        .map(|(trainer, hash)| (*trainer, *hash))
        .collect();
    let decode = |bytes: &[u8], what: &str| {
        params::decode(bytes, plan.param_count())
            .map_err(|error| DaemonError::Replay(format!("{what}: {error}")))
    };
    let model = decode(&blob(nodes, &this.model_hash)?, "input model")?;
    let previous = match round.checked_sub(1) {
        None => None,
        Some(previous) => {
            let earlier = query::round(&fetched, task, previous)
                .map_err(corrupt)?
                .ok_or_else(|| {
                    DaemonError::Replay(format!("task {task} has no round {previous}"))
                })?;
            Some(decode(
                &blob(nodes, &earlier.model_hash)?,
                "previous input model",
            )?)
        }
    };
    let blobs: Vec<Vec<u8>> = counted
        .iter()
        .map(|(_, hash)| blob(nodes, hash))
        .collect::<Result<_, _>>()?;
    let revealed: Vec<Revealed<'_>> = counted
        .iter()
        .zip(&blobs)
        .map(|((trainer, hash), bytes)| Revealed {
            trainer: *trainer,
            hash: *hash,
            blob: Some(bytes.as_slice()),
        })
        .collect();
    let aggregated = aggregate_round(&plan, &model, previous.as_deref(), &revealed);
    Ok(ReplayReport {
        task,
        round,
        updates: counted.len(),
        recorded: to_hex(&recorded),
        recomputed: to_hex(&aggregated.model_hash),
        matches: aggregated.model_hash == recorded,
    })
}

/// Task `task`'s spec as the node's ledger records it.
pub fn task_spec(client: &Client, task: u64) -> Result<cairn_ledger::TaskSpec, DaemonError> {
    let mut fetched = Fetched::default();
    fetched.fetch(client, keys::task(task))?;
    query::task(&fetched, task)
        .map_err(|error| DaemonError::Replay(error.to_string()))?
        .map(|record| record.spec)
        .ok_or_else(|| DaemonError::Replay(format!("no task {task} on {}", client.base())))
}
