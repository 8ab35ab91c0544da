//! Slow work, decided at a block and computed away from it.
//!
//! An agent never trains, aggregates, scores or re-runs an audit inside its block callback.
//! At a block it *decides* (which job, on which inputs, read from the state and the blobs it
//! holds), hands back a [`Job`] that owns those inputs, and marks the step as in flight. The
//! node runs the job on its worker pool (`crate::workers`) and hands the [`Done`] result back to
//! [`super::Agent::on_done`], which *acts* on it with the state of that moment: it signs, stores
//! and sends what the step produces. A job the pool cannot take is handed back with
//! [`super::Agent::on_refused`] and decided again at the next block.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use cairn_ledger::{Address, Hash};
use cairn_round::aggregation::Aggregated;
use cairn_round::training::Assignment;

use crate::protocol::conduct::Submission;

/// Which step a job computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobKind {
    /// A trainer's local training for its commit.
    Train,
    /// A validator's aggregation of the counted updates and its scoring of them.
    Attest,
    /// A validator's re-runs of the trainers it was drawn to audit.
    Audit,
    /// A trainer's checkpoint for its claim at move `moves` of a dispute over its work.
    Claim {
        /// The dispute.
        dispute: u64,
        /// The move it answers.
        moves: u32,
    },
    /// A trainer's witness of the agreed state, once a dispute is down to one step.
    Witness {
        /// The dispute.
        dispute: u64,
    },
    /// A challenger's own checkpoint, to agree or disagree with the trainer's claim.
    Answer {
        /// The dispute.
        dispute: u64,
        /// The move it answers.
        moves: u32,
    },
}

impl JobKind {
    /// A short name, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Train => "train",
            JobKind::Attest => "attest",
            JobKind::Audit => "audit",
            JobKind::Claim { .. } => "claim",
            JobKind::Witness { .. } => "witness",
            JobKind::Answer { .. } => "answer",
        }
    }
}

/// Names a job: an agent has at most one in flight per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobKey {
    /// The task.
    pub task: u64,
    /// The round.
    pub round: u32,
    /// The step.
    pub kind: JobKind,
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} task {} round {}",
            self.kind.name(),
            self.task,
            self.round
        )
    }
}

/// What a finished job computed.
pub(crate) enum Output {
    /// A trainer's submission, or why it could not train.
    Trained(Result<Submission, String>),
    /// A validator's aggregation and scores.
    Attested(Box<Attested>),
    /// A validator's audit re-runs.
    Audited(Vec<Audited>),
    /// A trainer's checkpoint hash at the claimed step, and the Merkle proof it sends with it.
    Claimed {
        checkpoint: Result<Hash, String>,
        proof: Vec<Hash>,
    },
    /// A trainer's witness bytes, and the chunk offsets still to send.
    Witnessed {
        bytes: Result<Vec<u8>, String>,
        offsets: Vec<u64>,
        expected: u64,
    },
    /// A challenger's own checkpoint hash at the claimed step, against the trainer's.
    Answered {
        claimed: Hash,
        mine: Result<Hash, String>,
        /// Training steps replayed to compute it.
        replayed: u64,
    },
    /// The job panicked (a bug): the step is given up for this round.
    Panicked(String),
}

/// The computed half of an attestation, with what the decision was taken on.
pub(crate) struct Attested {
    /// The updates that count, in the order they were aggregated.
    pub(crate) counted: Vec<(Address, Hash)>,
    /// `M_{r+1}` and how it was reached.
    pub(crate) aggregated: Aggregated,
    /// Scores per trainer (empty when the conduct does not score), or why scoring failed.
    pub(crate) scores: Result<BTreeMap<Address, u32>, String>,
    /// Held-out evaluations run, and the samples they covered.
    pub(crate) evaluations: (u64, u64),
}

/// One audited trainer: its honest re-run and what it committed.
pub(crate) struct Audited {
    pub(crate) trainer: Address,
    /// The honest assignment (kept to answer the trainer's claims in a dispute).
    pub(crate) assignment: Assignment,
    /// The trace root of the honest re-run, or why it failed.
    pub(crate) root: Result<Hash, String>,
    /// The trace root the trainer committed.
    pub(crate) committed: Hash,
    /// Whether the conduct challenges it whatever the re-run says.
    pub(crate) unfounded: bool,
}

/// A computation an agent decided on, owning its inputs.
pub struct Job {
    key: JobKey,
    agent: Address,
    work: Box<dyn FnOnce() -> Output + Send>,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("key", &self.key)
            .field("agent", &self.agent)
            .finish()
    }
}

impl Job {
    pub(crate) fn new(
        key: JobKey,
        agent: Address,
        work: impl FnOnce() -> Output + Send + 'static,
    ) -> Self {
        Self {
            key,
            agent,
            work: Box::new(work),
        }
    }

    /// The step it computes.
    pub fn key(&self) -> JobKey {
        self.key
    }

    /// The agent's address.
    pub fn agent(&self) -> Address {
        self.agent
    }

    /// Computes it on this thread. A panic inside is caught and reported as the step's failure
    /// (the agent gives the step up for the round instead of waiting for ever).
    pub fn run(self) -> Done {
        let started = Instant::now();
        let output = catch_unwind(AssertUnwindSafe(self.work)).unwrap_or_else(|panic| {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Output::Panicked(reason)
        });
        Done {
            key: self.key,
            agent: self.agent,
            output,
            elapsed: started.elapsed(),
        }
    }
}

/// A finished job, to hand back to the agent that decided it.
pub struct Done {
    key: JobKey,
    agent: Address,
    pub(crate) output: Output,
    elapsed: Duration,
}

impl fmt::Debug for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Done")
            .field("key", &self.key)
            .field("agent", &self.agent)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

impl Done {
    /// The step it computed.
    pub fn key(&self) -> JobKey {
        self.key
    }

    /// The agent's address.
    pub fn agent(&self) -> Address {
        self.agent
    }

    /// Wall-clock time it took (a measurement, never an input to the protocol).
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}
