//! The deterministic functions of a Cairn round: what a trainer, an auditor and the ledger's
//! referee all run, so that a dispute is decided by the very function the trainer claimed to run.
//!
//! Everything here is pure: given the task's spec, its dataset, the sorted trainer set, the round
//! seed and the input model, the same bytes come out on every machine and thread count.
//!
//! | module | concept |
//! | --- | --- |
//! | [`encoding`] | canonical hashes, text fields and hex shared by every protocol type |
//! | [`address`] | account addresses (`blake3(ed25519 key)[..20]`) |
//! | [`spec`] | the task spec a creator posts, with its verification settings |
//! | [`dataset`] | datasets known by content hash, split the same way on every node |
//! | [`syntax`], [`plan`] | the spec's strings parsed into model, optimizer, partition and rule |
//! | [`params`], [`optimizer`] | the canonical blobs of parameter vectors and optimizer state |
//! | [`training`] | shards, batch seeds, one step at a time, the work a trainer commits |
//! | [`trace`] | checkpoints every `k` steps, Merkle-rooted, and their proofs |
//! | [`witness`], [`referee`] | the state behind a checkpoint and the one-step re-execution |
//! | [`audit`] | which trainers are audited and by whom; the audit-rate arithmetic |
//! | [`aggregation`], [`scoring`], [`evaluate`] | `M_{r+1}`, contribution scores, test accuracy |
//!
//! Design notes: `docs/verification.md`, `docs/protocol.md`.
#![warn(missing_docs)]

pub mod address;
pub mod aggregation;
pub mod audit;
pub mod dataset;
pub mod encoding;
pub mod evaluate;
pub mod optimizer;
pub mod params;
pub mod plan;
pub mod referee;
pub mod scoring;
pub mod spec;
pub mod syntax;
pub mod trace;
pub mod training;
pub mod witness;

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

pub use address::Address;
pub use dataset::{DatasetRegistry, RegisteredDataset};
pub use encoding::Hash;
pub use plan::{PlanError, TaskPlan};
pub use spec::{TaskSpec, Verification};
pub use trace::Checkpoint;
pub use training::{Assignment, LocalRun, Trajectory, Work};
pub use witness::Witness;
