//! The per-node state machine: at every finalized block it reads the ledger state and the blobs
//! it holds and says what to do next, as [`Intent`]s the node executes.
//!
//! An agent acts on the phase of the *next* block (the one its transactions can land in), does
//! each step once per (task, round, phase), and when a blob it needs has not arrived it asks
//! for it with [`Intent::Fetch`] and looks again at the next block.
//!
//! Slow steps (training, aggregation and scoring, audit re-runs) are not computed at the block:
//! the agent decides them there and hands them out as [`Job`]s ([`Agent::take_jobs`]); the node
//! runs them on its worker pool and gives each result back to [`Agent::on_done`], which acts on
//! it with the state of that moment (see [`jobs`]).

mod attesting;
mod auditing;

pub use auditing::AuditStats;
mod defending;
pub mod jobs;
mod training;

pub use jobs::{Done, Job, JobKey, JobKind};

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_ledger::state::{keys, Overlay, StateError};
use cairn_ledger::store::StateRead;
use cairn_ledger::{query, Address, Hash, Payload, Role, Task, TaskSpec, TaskStatus};
use cairn_ml::data::Dataset;
use cairn_round::dataset::DatasetRegistry;
use cairn_round::plan::{self, PlanError, TaskPlan};
use ed25519_dalek::SigningKey;

use super::conduct::{TrainerConduct, ValidatorConduct};
use super::BlobView;

/// Challenge bonds a validator keeps bonded beyond its task bond, so that it can dispute this
/// many updates at once.
pub const CHALLENGE_RESERVE: u128 = 4;

/// What an agent's own round work cost: a measurement for reports (a simulation prices it in
/// its cost model), never an input to the protocol. Audits are counted in [`AuditStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkStats {
    /// Updates committed (trainers).
    pub commits: u64,
    /// Training steps run to produce them ([`super::Submission::steps_trained`]).
    pub steps_trained: u64,
    /// Held-out evaluations run to score updates (validators): the input model's and one per
    /// distinct update scored, each over the whole held-out set.
    pub evaluations: u64,
    /// Samples those evaluations ran through the model.
    pub samples_evaluated: u64,
}

/// How many recent tasks a creator scans to find the one it created.
const CREATOR_SCAN: u64 = 64;

/// Something the node should do for the protocol.
// Intents live between the agent and the node for one block; boxing each payload would cost an
// allocation per transaction for no memory saved.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Sign this payload with the node's key (next nonce, see [`super::Outbox`]) and broadcast it.
    Submit(Payload),
    /// Keep these bytes under their blake3 hash; serve them to peers only when `public`
    /// (an update stays private until its reveal).
    Store {
        /// The blob.
        bytes: Arc<[u8]>,
        /// Whether peers may fetch it now.
        public: bool,
    },
    /// Make a stored private blob fetchable by peers.
    Publish(Hash),
    /// Fetch this blob from peers (idempotent: the agent repeats it until the blob is held),
    /// asking `holder` first when the agent knows who published it (a revealing trainer).
    Fetch {
        /// The blob's hash.
        hash: Hash,
        /// The node expected to hold it, if known.
        holder: Option<Address>,
    },
}

/// Why an agent could not be built or could not act.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The task spec does not parse against this node's datasets.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The ledger state could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// The task's round record is missing although the task says it is running.
    #[error("task {task} is running round {round} but its record is missing")]
    MissingRound {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
    },
}

/// A creator's progress.
#[derive(Debug)]
struct CreatorState {
    spec: TaskSpec,
    initial_blob: Arc<[u8]>,
    trainers: usize,
    validators: usize,
    created: bool,
    task: Option<u64>,
    /// The height at which the creator first saw its task on the ledger.
    seen_at: Option<u64>,
    /// The height of its last `StartTask`, if it sent one.
    start_sent_at: Option<u64>,
}

/// What a member does in its rounds.
#[derive(Debug)]
enum Duty {
    Trainer(training::Trainer),
    Validator(attesting::Validator),
}

/// A member's progress.
#[derive(Debug)]
struct MemberState {
    task: u64,
    bond: u128,
    duty: Duty,
    join_sent: bool,
    plan: Option<Arc<TaskPlan>>,
    unusable: bool,
}

/// A secret salt for a commitment: blake3 keyed by a key derived from the node's secret key
/// bytes (`derive_key("cairn 2026 commitment salt v1", secret)`), over `purpose || task ||
/// round`. Deterministic for the node (a restart reveals the same salt), unpredictable to others.
pub fn salt(secret: &[u8; 32], purpose: &str, task: u64, round: u32) -> Hash {
    let key = blake3::derive_key("cairn 2026 commitment salt v1", secret);
    let mut hasher = blake3::Hasher::new_keyed(&key);
    hasher.update(purpose.as_bytes());
    hasher.update(&task.to_be_bytes());
    hasher.update(&round.to_be_bytes());
    *hasher.finalize().as_bytes()
}

#[derive(Debug)]
enum Part {
    Creator(CreatorState),
    Member(MemberState),
}

/// What every round step needs to know about the node and the block.
pub(crate) struct Step<'a> {
    pub(crate) address: Address,
    pub(crate) secret: &'a [u8; 32],
    pub(crate) chain_id: u64,
    pub(crate) height: u64,
    pub(crate) state: &'a dyn StateRead,
    pub(crate) blobs: &'a dyn BlobView,
    pub(crate) task: &'a Task,
    pub(crate) plan: &'a Arc<TaskPlan>,
}

impl<'a> Step<'a> {
    /// The step of `task` at `height` for the node with this key (its chain id read from
    /// `state`).
    fn new(
        (address, secret): (Address, &'a [u8; 32]),
        (height, state, blobs): (u64, &'a dyn StateRead, &'a dyn BlobView),
        task: &'a Task,
        plan: &'a Arc<TaskPlan>,
    ) -> Result<Self, StateError> {
        Ok(Self {
            address,
            secret,
            chain_id: Overlay::new(state).read(keys::CHAIN_ID)?.unwrap_or(0),
            height,
            state,
            blobs,
            task,
            plan,
        })
    }
}

/// One node's protocol state machine (a task creator, a trainer or a validator of one task).
pub struct Agent {
    address: Address,
    secret: [u8; 32],
    registry: Arc<DatasetRegistry>,
    part: Part,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("address", &self.address)
            .field("part", &self.part)
            .finish()
    }
}

impl Agent {
    /// A task creator: derives `M_0` from `spec` (filling `spec.initial_model`), stores it,
    /// posts the task, and starts it once `trainers` trainers and `validators` validators joined,
    /// or [`JOIN_WAIT_BLOCKS`] after the task appeared once two thirds of each have.
    pub fn creator(
        key: &SigningKey,
        mut spec: TaskSpec,
        registry: Arc<DatasetRegistry>,
        trainers: usize,
        validators: usize,
    ) -> Result<Agent, AgentError> {
        let blob = plan::seal_initial_model(&mut spec, &registry)?;
        Ok(Self::new(
            key,
            registry,
            Part::Creator(CreatorState {
                spec,
                initial_blob: blob.into(),
                trainers: trainers.max(1),
                validators: validators.max(1),
                created: false,
                task: None,
                seen_at: None,
                start_sent_at: None,
            }),
        ))
    }

    /// A trainer of task `task` that bonds (if needed) and locks `bond`, then decides as
    /// `conduct` says ([`super::HonestTrainer`] on a real node).
    pub fn trainer(
        key: &SigningKey,
        task: u64,
        bond: u128,
        conduct: Box<dyn TrainerConduct>,
        registry: Arc<DatasetRegistry>,
    ) -> Agent {
        let duty = Duty::Trainer(training::Trainer::new(conduct));
        Self::member(key, task, bond, duty, registry)
    }

    /// A validator of task `task` that bonds (if needed) and locks `bond`, keeps
    /// [`CHALLENGE_RESERVE`] challenge bonds free, then decides as `conduct` says
    /// ([`super::HonestValidator`] on a real node).
    pub fn validator(
        key: &SigningKey,
        task: u64,
        bond: u128,
        conduct: Box<dyn ValidatorConduct>,
        registry: Arc<DatasetRegistry>,
    ) -> Agent {
        let duty = Duty::Validator(attesting::Validator::new(conduct));
        Self::member(key, task, bond, duty, registry)
    }

    fn member(
        key: &SigningKey,
        task: u64,
        bond: u128,
        duty: Duty,
        registry: Arc<DatasetRegistry>,
    ) -> Agent {
        Self::new(
            key,
            registry,
            Part::Member(MemberState {
                task,
                bond,
                duty,
                join_sent: false,
                plan: None,
                unusable: false,
            }),
        )
    }

    fn new(key: &SigningKey, registry: Arc<DatasetRegistry>, part: Part) -> Agent {
        Agent {
            address: Address::from_public_key(&key.verifying_key()),
            secret: key.to_bytes(),
            registry,
            part,
        }
    }

    /// This node's ledger address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The task this agent works on (for a creator: once its creation is finalized).
    pub fn task(&self) -> Option<u64> {
        match &self.part {
            Part::Creator(creator) => creator.task,
            Part::Member(member) => Some(member.task),
        }
    }

    /// What this agent's audits cost so far (zero for trainers and creators).
    pub fn audit_stats(&self) -> AuditStats {
        match &self.part {
            Part::Member(MemberState {
                duty: Duty::Validator(validator),
                ..
            }) => validator.audits.stats,
            _ => AuditStats::default(),
        }
    }

    /// What this agent's round work cost so far (training for trainers, scoring for
    /// validators; zero for creators).
    pub fn work_stats(&self) -> WorkStats {
        match &self.part {
            Part::Member(MemberState {
                duty: Duty::Trainer(trainer),
                ..
            }) => trainer.work,
            Part::Member(MemberState {
                duty: Duty::Validator(validator),
                ..
            }) => validator.work,
            Part::Creator(_) => WorkStats::default(),
        }
    }

    /// The spec a creator posts (with `initial_model` filled in); `None` for members.
    pub fn spec(&self) -> Option<&TaskSpec> {
        match &self.part {
            Part::Creator(creator) => Some(&creator.spec),
            Part::Member(_) => None,
        }
    }

    /// Whether a payload this agent submitted can no longer execute at `state` and will not
    /// again: a move in a dispute that has moved on or ended, a challenge of a trainer already
    /// expelled. The node drops such pending transactions (in [`super::Outbox::on_block`]) so that
    /// they do not hold back the nonces after them.
    pub fn is_stale(&self, payload: &Payload, state: &dyn StateRead) -> bool {
        stale(payload, state).unwrap_or(false)
    }

    /// What to do after the block at `height`, given the state at exactly that height and the
    /// blobs this node holds. Call it for every finalized height in order (a skipped height only
    /// loses that block's chance to act). Never fails: a state it cannot read is logged and
    /// retried at the next block.
    pub fn on_block(
        &mut self,
        height: u64,
        state: &dyn StateRead,
        blobs: &dyn BlobView,
    ) -> Vec<Intent> {
        let result = match &mut self.part {
            Part::Creator(creator) => creator_step(creator, &self.address, (height, state)),
            Part::Member(member) => member_step(
                member,
                &self.registry,
                (self.address, &self.secret),
                (height, state, blobs),
            ),
        };
        result.unwrap_or_else(|error| {
            tracing::warn!(address = %self.address, height, %error, "protocol step failed; retrying at the next block");
            Vec::new()
        })
    }

    /// The jobs decided since the last call, for the node's worker pool. Each is in flight
    /// until its [`Done`] comes back through [`Agent::on_done`] or it is handed back through
    /// [`Agent::on_refused`]; until then the agent does not decide that step again.
    pub fn take_jobs(&mut self) -> Vec<Job> {
        match &mut self.part {
            Part::Member(MemberState {
                duty: Duty::Trainer(trainer),
                ..
            }) => std::mem::take(&mut trainer.jobs),
            Part::Member(MemberState {
                duty: Duty::Validator(validator),
                ..
            }) => std::mem::take(&mut validator.jobs),
            Part::Creator(_) => Vec::new(),
        }
    }

    /// Whether `key` names a job of this agent (its address, its task, its duty).
    pub fn owns(&self, address: &Address, key: &JobKey) -> bool {
        if *address != self.address {
            return false;
        }
        match &self.part {
            Part::Member(member) if member.task == key.task => matches!(
                (&member.duty, key.kind),
                (
                    Duty::Trainer(_),
                    JobKind::Train | JobKind::Claim { .. } | JobKind::Witness { .. }
                ) | (
                    Duty::Validator(_),
                    JobKind::Attest | JobKind::Audit | JobKind::Answer { .. }
                )
            ),
            _ => false,
        }
    }

    /// A job the node could not run (its pool was full): the step is decided again at the
    /// next block.
    pub fn on_refused(&mut self, key: JobKey) {
        if let Part::Member(member) = &mut self.part {
            if member.task == key.task {
                release(&mut member.duty, key, true);
            }
        }
    }

    /// Acts on a finished job with the state at `height` (the latest finalized block, which
    /// may be later than the one the job was decided at): signs, stores and sends what the step
    /// produces, or gives the step up for its round when the result came too late or the
    /// computation failed. A result this agent did not ask for, or no longer waits for, is
    /// ignored.
    pub fn on_done(
        &mut self,
        height: u64,
        state: &dyn StateRead,
        blobs: &dyn BlobView,
        done: Done,
    ) -> Vec<Intent> {
        let key = done.key();
        if !self.owns(&done.agent(), &key) {
            return Vec::new();
        }
        let Part::Member(member) = &mut self.part else {
            return Vec::new();
        };
        if !release(&mut member.duty, key, false) {
            tracing::debug!(%key, "a job result no longer waited for; ignored");
            return Vec::new();
        }
        member_done(
            member,
            (self.address, &self.secret),
            (height, state, blobs),
            done,
        )
        .unwrap_or_else(|error| {
            tracing::warn!(address = %self.address, height, %key, %error, "could not act on a job's result; the step is decided again");
            Vec::new()
        })
    }

    /// [`Agent::on_block`], then every job it decided run at once on this thread and acted on
    /// at the same height: a synchronous driver's step (the node runs jobs on its pool).
    pub fn on_block_inline(
        &mut self,
        height: u64,
        state: &dyn StateRead,
        blobs: &dyn BlobView,
    ) -> Vec<Intent> {
        let mut intents = self.on_block(height, state, blobs);
        for job in self.take_jobs() {
            let done = job.run();
            intents.extend(self.on_done(height, state, blobs, done));
        }
        intents
    }
}

/// Takes a job back from `duty`: `true` if it was in flight.
fn release(duty: &mut Duty, key: JobKey, refused: bool) -> bool {
    match (duty, key.kind) {
        (Duty::Trainer(trainer), JobKind::Train) => trainer.release(key.round),
        (Duty::Validator(validator), JobKind::Attest) => validator.release_attestation(key.round),
        (Duty::Validator(validator), JobKind::Audit) => {
            validator.release_audits(key.round, refused)
        }
        (Duty::Trainer(trainer), kind @ (JobKind::Claim { .. } | JobKind::Witness { .. })) => {
            trainer.release_move(kind, refused)
        }
        (Duty::Validator(validator), JobKind::Answer { dispute, moves }) => {
            validator.release_answer(dispute, moves, refused)
        }
        _ => false,
    }
}

fn member_done(
    member: &mut MemberState,
    (address, secret): (Address, &[u8; 32]),
    (height, state, blobs): (u64, &dyn StateRead, &dyn BlobView),
    done: Done,
) -> Result<Vec<Intent>, AgentError> {
    let key = done.key();
    let elapsed = done.elapsed();
    if let jobs::Output::Panicked(reason) = &done.output {
        tracing::error!(%key, %reason, "a job panicked; the step is given up for this round");
        match (&mut member.duty, key.kind) {
            (Duty::Trainer(trainer), JobKind::Train) => {
                trainer.give_up(key.round, format!("training panicked: {reason}"));
            }
            (Duty::Validator(validator), JobKind::Attest) => {
                validator.abandon_attestation(key.round);
            }
            // An audit or a dispute move that panicked is not tried again (it would panic
            // again); the dispute's deadline decides it.
            _ => {}
        }
        return Ok(Vec::new());
    }
    let (Some(task), Some(plan)) = (query::task(state, key.task)?, member.plan.clone()) else {
        return Ok(Vec::new());
    };
    let round = query::round(state, key.task, key.round)?.ok_or(AgentError::MissingRound {
        task: key.task,
        round: key.round,
    })?;
    let step = Step::new((address, secret), (height, state, blobs), &task, &plan)?;
    Ok(match (&mut member.duty, done.output) {
        (Duty::Trainer(trainer), jobs::Output::Trained(result)) => {
            trainer.on_trained(&step, &round, result)
        }
        (Duty::Validator(validator), jobs::Output::Attested(attested)) => {
            validator.on_attested(&step, &round, *attested)
        }
        (Duty::Validator(validator), jobs::Output::Audited(audited)) => {
            validator.on_audited(&step, &round, audited, elapsed)?
        }
        (Duty::Trainer(trainer), jobs::Output::Claimed { checkpoint, proof }) => {
            let JobKind::Claim { dispute, moves } = key.kind else {
                return Ok(Vec::new());
            };
            trainer.on_claimed(&step, (dispute, moves), checkpoint, proof)?
        }
        (
            Duty::Trainer(trainer),
            jobs::Output::Witnessed {
                bytes,
                offsets,
                expected,
            },
        ) => {
            let JobKind::Witness { dispute } = key.kind else {
                return Ok(Vec::new());
            };
            trainer.on_witnessed(&step, dispute, (bytes, offsets, expected))?
        }
        (
            Duty::Validator(validator),
            jobs::Output::Answered {
                claimed,
                mine,
                replayed,
            },
        ) => {
            let JobKind::Answer { dispute, moves } = key.kind else {
                return Ok(Vec::new());
            };
            validator.on_answered(&step, (dispute, moves), (claimed, mine, replayed), elapsed)?
        }
        _ => Vec::new(),
    })
}

/// Blocks a creator waits for every expected member to join before it starts with those that
/// did (a member that crashed before joining must not hold the task back for ever).
pub const JOIN_WAIT_BLOCKS: u64 = 40;

/// Blocks after which a creator sends `StartTask` again while its task is still open (the last
/// one was refused, e.g. too little validator stake had joined yet, or never included).
const START_RETRY_BLOCKS: u64 = 10;

fn creator_step(
    creator: &mut CreatorState,
    address: &Address,
    (height, state): (u64, &dyn StateRead),
) -> Result<Vec<Intent>, AgentError> {
    if !creator.created {
        creator.created = true;
        // A creator that restarted finds its task on the ledger instead of posting a second one
        // (it still stores M_0 again: its blobs may not have been synced before the crash).
        if let Some(id) = find_created(creator, address, state)? {
            creator.task = Some(id);
            return Ok(vec![Intent::Store {
                bytes: creator.initial_blob.clone(),
                public: true,
            }]);
        }
        return Ok(vec![
            Intent::Store {
                bytes: creator.initial_blob.clone(),
                public: true,
            },
            Intent::Submit(Payload::CreateTask {
                spec: creator.spec.clone(),
            }),
        ]);
    }
    let id = match creator.task {
        Some(id) => id,
        None => {
            let Some(id) = find_created(creator, address, state)? else {
                return Ok(Vec::new());
            };
            tracing::info!(task = id, creator = %address, "task created");
            creator.task = Some(id);
            id
        }
    };
    let Some(task) = query::task(state, id)? else {
        return Ok(Vec::new());
    };
    if task.status != TaskStatus::Open {
        return Ok(Vec::new());
    }
    let seen_at = *creator.seen_at.get_or_insert(height);
    let everyone =
        task.trainers.len() >= creator.trainers && task.validators.len() >= creator.validators;
    // After the wait, two thirds of the expected trainers and validators will do (the ledger
    // still requires 2/3 of the consensus stake among the validators).
    let enough = 3 * task.trainers.len() >= 2 * creator.trainers
        && 3 * task.validators.len() >= 2 * creator.validators;
    let waited = height >= seen_at.saturating_add(JOIN_WAIT_BLOCKS);
    let due = creator
        .start_sent_at
        .is_none_or(|sent| height >= sent.saturating_add(START_RETRY_BLOCKS));
    if (everyone || (waited && enough)) && due {
        if !everyone {
            tracing::info!(
                task = id,
                trainers = task.trainers.len(),
                validators = task.validators.len(),
                "starting without every expected member"
            );
        }
        creator.start_sent_at = Some(height);
        return Ok(vec![Intent::Submit(Payload::StartTask { task: id })]);
    }
    Ok(Vec::new())
}

/// The newest task (among the last [`CREATOR_SCAN`]) this creator posted with this spec.
fn find_created(
    creator: &CreatorState,
    address: &Address,
    state: &dyn StateRead,
) -> Result<Option<u64>, AgentError> {
    let next: u64 = Overlay::new(state).read(keys::NEXT_TASK)?.unwrap_or(0);
    for id in (next.saturating_sub(CREATOR_SCAN)..next).rev() {
        if let Some(task) = query::task(state, id)? {
            if task.creator == *address && task.spec == creator.spec {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

fn member_step(
    member: &mut MemberState,
    registry: &DatasetRegistry,
    (address, secret): (Address, &[u8; 32]),
    (height, state, blobs): (u64, &dyn StateRead, &dyn BlobView),
) -> Result<Vec<Intent>, AgentError> {
    if member.unusable {
        return Ok(Vec::new());
    }
    let Some(task) = query::task(state, member.task)? else {
        return Ok(Vec::new());
    };
    let plan = match &member.plan {
        Some(plan) => plan.clone(),
        None => match TaskPlan::from_spec(&task.spec, registry) {
            Ok(plan) => {
                let plan = Arc::new(plan);
                member.plan = Some(plan.clone());
                plan
            }
            Err(error) => {
                tracing::warn!(task = member.task, %error, "cannot take part in this task");
                member.unusable = true;
                return Ok(Vec::new());
            }
        },
    };
    let role = match member.duty {
        Duty::Trainer(_) => Role::Trainer,
        Duty::Validator(_) => Role::Validator,
    };
    let is_member = match role {
        Role::Trainer => task.trainers.contains_key(&address),
        Role::Validator => task.validators.contains_key(&address),
    };
    match task.status {
        TaskStatus::Open if !is_member && !member.join_sent => {
            member.join_sent = true;
            let mut intents = Vec::new();
            let free = query::stake(state, &address)?.free();
            let reserve = match role {
                Role::Validator => task
                    .spec
                    .verification
                    .challenge_bond
                    .saturating_mul(CHALLENGE_RESERVE),
                Role::Trainer => 0,
            };
            let needed = member.bond.saturating_add(reserve);
            if free < needed {
                intents.push(Intent::Submit(Payload::Bond {
                    amount: needed - free,
                }));
            }
            intents.push(Intent::Submit(Payload::JoinTask {
                task: member.task,
                role,
                bond: member.bond,
            }));
            Ok(intents)
        }
        TaskStatus::Running { .. } | TaskStatus::Finished if is_member => {
            let step = Step::new((address, secret), (height, state, blobs), &task, &plan)?;
            let mut intents = Vec::new();
            if let TaskStatus::Running { round } = task.status {
                let record =
                    query::round(state, member.task, round)?.ok_or(AgentError::MissingRound {
                        task: member.task,
                        round,
                    })?;
                intents.extend(match &mut member.duty {
                    Duty::Trainer(trainer) => trainer.step(&step, &record)?,
                    Duty::Validator(validator) => validator.step(&step, &record)?,
                });
            }
            // Disputes over earlier rounds go on after their rounds, and after the task's last.
            intents.extend(match &mut member.duty {
                Duty::Trainer(trainer) => trainer.defend(&step)?,
                Duty::Validator(validator) => validator.pursue(&step)?,
            });
            Ok(intents)
        }
        _ => Ok(Vec::new()),
    }
}

fn stale(payload: &Payload, state: &dyn StateRead) -> Result<bool, StateError> {
    use cairn_ledger::dispute::Stage;
    let dispute = |id: u64| query::dispute(state, id);
    Ok(match payload {
        Payload::DisputeClaim { dispute: id, .. } => {
            !matches!(dispute(*id)?.map(|d| d.stage), Some(Stage::Claim { .. }))
        }
        Payload::DisputeAnswer { dispute: id, .. } => {
            !matches!(dispute(*id)?.map(|d| d.stage), Some(Stage::Answer { .. }))
        }
        Payload::DisputeWitness {
            dispute: id,
            offset,
            ..
        } => !matches!(
            dispute(*id)?.map(|d| d.stage),
            Some(Stage::Witness { received, .. }) if received <= *offset
        ),
        Payload::Challenge { task, trainer, .. } => {
            query::task(state, *task)?.is_none_or(|t| t.expelled.contains(trainer))
        }
        _ => false,
    })
}

/// Decodes the blob `hash` as a parameter vector of the task's model, or says to fetch it.
pub(crate) enum Needed {
    /// The blob is held and valid.
    Have(Vec<f32>),
    /// The blob is not held yet.
    Missing(Hash),
    /// The blob is held and invalid.
    Invalid(String),
}

pub(crate) fn model_params(step: &Step<'_>, hash: &Hash) -> Needed {
    match step.blobs.blob(hash) {
        None => Needed::Missing(*hash),
        Some(bytes) => match cairn_round::params::decode(&bytes, step.plan.param_count()) {
            Ok(values) => Needed::Have(values),
            Err(error) => Needed::Invalid(error.to_string()),
        },
    }
}

/// With worker momentum, the vector `trainer` carries into round `number`
/// (`cairn_ledger::query::carried`: its previous round's update, if it counted there) as this
/// node holds it; `None` when the task has no worker momentum or the trainer carries nothing.
pub(crate) fn carried_params(
    step: &Step<'_>,
    number: u32,
    trainer: &Address,
) -> Result<Option<Needed>, StateError> {
    if step.plan.worker_momentum == 0.0 {
        return Ok(None);
    }
    Ok(query::carried(step.state, step.task.id, number, trainer)?
        .map(|hash| model_params(step, &hash)))
}

/// Whom to ask first for a round's input model: for round 0 the task's creator, which stored
/// `M_0` when it posted the task (asking the validators first would cost a timeout for each one
/// not yet connected, and the commit window is short); later models are held by every validator
/// that attested them, which the fetch asks first anyway.
pub(crate) fn model_holder(task: &Task, round: &cairn_ledger::round::Round) -> Option<Address> {
    (round.number == 0).then_some(task.creator)
}

/// Keeps only the entries of recent rounds (`round` and the one before).
pub(crate) fn prune<V>(rounds: &mut BTreeMap<u32, V>, round: u32) {
    rounds.retain(|r, _| r.saturating_add(1) >= round);
}

/// A cached dataset (a trainer's shard, or the held-out data validators score on), built once
/// per task.
pub(crate) type Cached = Option<Arc<Dataset>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_can_move_between_threads() {
        fn send<T: Send + 'static>() {}
        send::<Agent>();
        send::<Intent>();
    }
}
