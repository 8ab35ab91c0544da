//! The decisions a trainer or a validator makes in a round, as traits whose provided methods
//! are what the protocol says. The node runs [`HonestTrainer`] and [`HonestValidator`]; a
//! simulation models an adversary by implementing a trait and overriding a decision (commit
//! another update, skip the reveal, attest another hash, never audit, challenge without cause),
//! usually by calling the honest computation and changing its result. The node itself holds no
//! adversarial behaviour.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use cairn_ledger::dispute::Dispute;
use cairn_ledger::round::Round;
use cairn_ledger::store::StateRead;
use cairn_ledger::{Address, Hash, Task};
use cairn_round::trace::Checkpoint;
use cairn_round::training::{Assignment, Shard, TrainerError, Trajectory, Work};
use cairn_round::TaskPlan;

use super::{BlobView, Intent};

/// Everything a trainer's honest work in a round is a function of, and what an adversary might
/// look at besides (the ledger state and the blobs this node holds).
pub struct RoundInput<'a> {
    /// The task.
    pub task: &'a Task,
    /// The round's ledger record.
    pub round: &'a Round,
    /// The task's plan.
    pub plan: &'a Arc<TaskPlan>,
    /// This trainer.
    pub address: Address,
    /// The round's input model `M_r`.
    pub model: Arc<[f32]>,
    /// With worker momentum, what this trainer sent in its previous round if it counted there
    /// (carried into this round's update); `None` otherwise.
    pub carried: Option<Arc<[f32]>>,
    /// This trainer's shard.
    pub shard: Arc<Shard>,
    /// The ledger state at this block.
    pub state: &'a dyn StateRead,
    /// Blobs this node holds.
    pub blobs: &'a dyn BlobView,
    /// Whether this is the last block at which a commit can still land.
    pub last_chance: bool,
}

impl RoundInput<'_> {
    /// This trainer's assignment: its shard, its batch seed, `M_r`.
    pub fn assignment(&self) -> Assignment {
        self.assignment_on(self.shard.clone())
    }

    /// The assignment with another shard (the same seed and `M_r`).
    pub fn assignment_on(&self, shard: Arc<Shard>) -> Assignment {
        Assignment::new(
            self.plan.clone(),
            shard,
            &self.round.seed,
            &self.address,
            self.model.clone(),
        )
        .carrying(self.carried.clone())
    }

    /// The honest work: every step trained, the trace recorded.
    pub fn train(&self) -> Result<Submission, TrainerError> {
        Submission::honest(self.assignment())
    }
}

/// What a trainer commits in a round, and how it answers for it in a dispute.
#[derive(Clone)]
pub struct Submission {
    /// The update it reveals.
    pub update: Vec<f32>,
    /// Its trace: checkpoint hashes at the leaf steps.
    pub leaves: Vec<Hash>,
    /// The last checkpoint (naming the update).
    pub last: Checkpoint,
    /// Its checkpoints and witnesses at any step, for disputes.
    pub trajectory: Arc<dyn Trajectory>,
    /// Mean training loss (0 when it did not train).
    pub mean_loss: f32,
    /// Training steps actually run to produce it: the task's local steps for honest work, what
    /// [`Submission::trained`] says for a crafted one (0 unless set). A measurement of the
    /// trainer's cost for reports, never an input to the protocol.
    pub steps_trained: u32,
}

impl fmt::Debug for Submission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submission")
            .field("leaves", &self.leaves.len())
            .field("last", &self.last)
            .finish()
    }
}

impl Submission {
    /// The honest submission of an assignment: it trains every step.
    pub fn honest(assignment: Assignment) -> Result<Submission, TrainerError> {
        let steps = assignment.run.steps();
        let work = assignment.train()?;
        Ok(Submission::from_work(work, Arc::new(assignment)).trained(steps))
    }

    /// The same submission, recording that `steps` training steps were run to produce it.
    #[must_use]
    pub fn trained(mut self, steps: u32) -> Submission {
        self.steps_trained = steps;
        self
    }

    /// The submission a trajectory answers for: its checkpoints at the leaf steps of `plan`'s
    /// trace, its last checkpoint, and `update` (which the last checkpoint must name).
    pub fn from_trajectory(
        plan: &TaskPlan,
        trajectory: Arc<dyn Trajectory>,
        update: Vec<f32>,
    ) -> Result<Submission, TrainerError> {
        let steps = plan.local_steps;
        let mut leaves = Vec::new();
        for step in cairn_round::trace::leaf_steps(steps, plan.trace_every) {
            leaves.push(trajectory.checkpoint(step)?.hash());
        }
        let last = trajectory.checkpoint(steps)?;
        debug_assert_eq!(last.update, cairn_round::params::hash(&update));
        Ok(Submission {
            update,
            leaves,
            last,
            trajectory,
            mean_loss: 0.0,
            steps_trained: 0,
        })
    }

    /// A submission of `work`, answered for by `trajectory`.
    pub fn from_work(work: Work, trajectory: Arc<dyn Trajectory>) -> Submission {
        Submission {
            update: work.update,
            leaves: work.leaves,
            last: work.last,
            trajectory,
            mean_loss: work.mean_loss,
            steps_trained: 0,
        }
    }

    /// The trace root it commits.
    pub fn trace_root(&self) -> Hash {
        cairn_round::trace::root(&self.leaves)
    }

    /// The proof that opens the last leaf against the trace root (revealed with the update).
    pub fn leaves_proof(&self) -> Vec<Hash> {
        cairn_round::trace::proof(&self.leaves, self.leaves.len().saturating_sub(1))
            .unwrap_or_default()
    }
}

/// A decision that may have to wait for more blocks.
pub enum Decision<T> {
    /// Decided.
    Ready(T),
    /// Decided, but the result takes long to compute: the node runs `compute` on its worker
    /// pool, off the consensus path, and the agent acts on the result when it arrives.
    Compute(Compute<T>),
    /// Not yet: do these and ask again at the next block.
    Wait(Vec<Intent>),
    /// Not this round, for this reason.
    Skip(String),
}

/// A computation that owns its inputs, to run away from the block callback (on the node's
/// worker pool). An error is the reason the round is skipped.
pub struct Compute<T>(Box<dyn FnOnce() -> Result<T, String> + Send>);

impl<T> Compute<T> {
    /// Wraps `f`, which must own everything it reads (no ledger state, no blob view).
    pub fn new(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Self {
        Self(Box::new(f))
    }

    /// Runs it.
    pub fn run(self) -> Result<T, String> {
        (self.0)()
    }
}

impl<T> fmt::Debug for Compute<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Compute(..)")
    }
}

/// A trainer's decisions. The provided methods are the protocol's.
pub trait TrainerConduct: Send + fmt::Debug {
    /// The work to commit this round: the protocol trains the assignment, on the worker pool.
    fn work(&mut self, input: &RoundInput<'_>) -> Decision<Submission> {
        let assignment = input.assignment();
        Decision::Compute(Compute::new(move || {
            Submission::honest(assignment).map_err(|error| error.to_string())
        }))
    }

    /// Whether to reveal this round's commitment: the protocol always does.
    fn reveals(&mut self, _round: u32) -> bool {
        true
    }

    /// Whether to let peers fetch the update it reveals: the protocol always does (an update
    /// that validators holding 2/3 of stake do not hold by the end of the availability window
    /// does not count).
    fn publishes(&mut self, _round: u32) -> bool {
        true
    }

    /// Whether to make its move in this dispute over its work: the protocol always does.
    fn defends(&mut self, _dispute: &Dispute) -> bool {
        true
    }
}

/// The trainer the protocol describes.
#[derive(Clone, Copy, Debug, Default)]
pub struct HonestTrainer;

impl TrainerConduct for HonestTrainer {}

/// An attestation: the next model's hash and the scores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    /// Hash of `M_{r+1}`.
    pub model_hash: Hash,
    /// Score per revealed trainer, in ppm.
    pub scores: BTreeMap<Address, u32>,
}

/// What a validator's attestation is computed from, for a conduct that wants more.
pub struct AttestInput<'a> {
    /// The task.
    pub task: &'a Task,
    /// The round.
    pub round: &'a Round,
    /// The ledger state at this block.
    pub state: &'a dyn StateRead,
    /// The trainers whose updates count this round (revealed and available to 2/3 of validator
    /// stake), with their update hashes.
    pub counted: &'a [(Address, Hash)],
}

/// What a validator's availability vote is computed from.
pub struct VoteInput<'a> {
    /// The task.
    pub task: &'a Task,
    /// The round.
    pub round: &'a Round,
    /// The trainers that revealed, with their update hashes.
    pub revealed: &'a [(Address, Hash)],
}

/// A validator's decisions. The provided methods are the protocol's.
pub trait ValidatorConduct: Send + fmt::Debug {
    /// The attestation to commit, given the honest one; `None` attests nothing.
    fn attest(&mut self, _input: &AttestInput<'_>, honest: Attestation) -> Option<Attestation> {
        Some(honest)
    }

    /// The trainers whose revealed update it says it holds, given the honest answer (those whose
    /// blob it holds); `None` does not vote.
    fn vote(
        &mut self,
        _input: &VoteInput<'_>,
        honest: BTreeSet<Address>,
    ) -> Option<BTreeSet<Address>> {
        Some(honest)
    }

    /// Whether to score the round's updates on the held-out data: the protocol always does.
    /// A conduct that does not gets an honest attestation with no scores (and spends nothing
    /// on evaluation).
    fn scores(&mut self) -> bool {
        true
    }

    /// Whether to run the audits it was drawn for: the protocol always does.
    fn audits(&mut self) -> bool {
        true
    }

    /// Trainers to challenge although no audit of its own found them wrong: the protocol
    /// challenges none.
    fn unfounded_challenges(&mut self, _task: &Task, _round: &Round) -> Vec<Address> {
        Vec::new()
    }

    /// Its answer to a trainer's claim in a dispute it opened, given the honest answer.
    fn answer(&mut self, _dispute: &Dispute, honest: bool) -> bool {
        honest
    }
}

/// The validator the protocol describes.
#[derive(Clone, Copy, Debug, Default)]
pub struct HonestValidator;

impl ValidatorConduct for HonestValidator {}
