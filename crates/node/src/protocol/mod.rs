//! The round protocol: what a task creator, a trainer or a validator does at each finalized
//! block, as a synchronous, deterministic state machine with no I/O.
//!
//! The node calls [`Agent::on_block`] with the ledger state at exactly that height and a view of
//! the blobs it holds; the agent answers with [`Intent`]s (transactions to sign, blobs to store,
//! publish or fetch) that the node executes, and with [`Job`]s: slow steps (training,
//! aggregation and scoring, audits) the node computes on its worker pool and hands back to
//! [`Agent::on_done`]. Everything an agent computes is a pure function of
//! the ledger state, the blobs and its own key, so a simulation replays it bit for bit. The
//! round's deterministic functions (plan, training, trace, aggregation, scoring, audits) live in
//! `cairn-round`, shared with the ledger's referee.
//!
//! | module | concept |
//! | --- | --- |
//! | [`conduct`] | a trainer's and a validator's decisions, as traits with the protocol's defaults |
//! | [`outbox`] | signing payloads with tracked nonces and re-broadcasting pending ones |
//! | [`agent`] | the per-node state machine driven by finalized blocks |
//! | [`volunteer`] | a deployed node joining open tasks and resuming its own after a restart |
//!
//! Design notes: `docs/protocol.md`, `docs/verification.md`.

pub mod agent;
pub mod conduct;
pub mod outbox;
pub mod volunteer;

pub use crate::blobs::BlobView;
pub use agent::{Agent, AgentError, AuditStats, Done, Intent, Job, JobKey, JobKind, WorkStats};
pub use cairn_round::{dataset, params, plan};
pub use cairn_round::{DatasetRegistry, PlanError, RegisteredDataset, TaskPlan};
pub use conduct::{
    AttestInput, Attestation, Compute, Decision, HonestTrainer, HonestValidator, RoundInput,
    Submission, TrainerConduct, ValidatorConduct, VoteInput,
};
pub use outbox::Outbox;
