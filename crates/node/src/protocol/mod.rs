//! The round protocol: what a task creator, a trainer or a validator does at each finalized
//! block, as a synchronous, deterministic state machine with no I/O.
//!
//! The node calls [`Agent::on_block`] with the ledger state at exactly that height and a view of
//! the blobs it holds; the agent answers with [`Intent`]s (transactions to sign, blobs to store,
//! publish or fetch) that the node executes. Everything an agent computes is a pure function of
//! the ledger state, the blobs and its own key, so a simulation replays it bit for bit.
//!
//! | module | concept |
//! | --- | --- |
//! | [`dataset`] | datasets known by content hash (`DatasetRegistry`) |
//! | [`plan`] | a task's spec strings parsed into model, optimizer, partition and robust rule |
//! | [`params`] | the blob format of a parameter vector (models and updates) |
//! | [`syntax`] | the syntax of the spec strings |
//! | [`trainer`] | shards, batch seeds, local training, trace roots and salts |
//! | [`validator`] | decoding revealed updates, robust aggregation and contribution scores |
//! | [`behaviour`] | honest and adversarial node behaviours for simulations |
//! | [`outbox`] | signing payloads with tracked nonces and re-broadcasting pending ones |
//! | [`agent`] | the per-node state machine driven by finalized blocks |
//!
//! Design notes: `docs/protocol.md`.

pub mod agent;
pub mod behaviour;
pub mod dataset;
pub mod outbox;
pub mod params;
pub mod plan;
pub mod syntax;
pub mod trainer;
pub mod validator;

pub use crate::blobs::BlobView;
pub use agent::{Agent, AgentError, Intent};
pub use behaviour::{Coalition, FreeRide, TrainerBehaviour, ValidatorBehaviour};
pub use dataset::{DatasetRegistry, RegisteredDataset};
pub use outbox::Outbox;
pub use plan::{PlanError, TaskPlan};
