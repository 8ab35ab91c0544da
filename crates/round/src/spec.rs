//! What a task creator posts: the model, data, optimizer, rule, rounds, windows, stakes and the
//! verification settings (trace granularity, audit rate, dispute timing). Strings are parsed by
//! [`crate::plan::TaskPlan::from_spec`]; the ledger refuses a spec that does not parse.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use serde::Serialize;

use crate::encoding::{read_text, serialize_hash, text_size, write_text, Hash};

/// Trace leaf every this many local steps when a spec does not say otherwise.
pub const DEFAULT_TRACE_EVERY: u32 = 5;
/// Blocks after a round closes during which its trainers can still be challenged.
pub const DEFAULT_AUDIT_WINDOW: u64 = 6;
/// Blocks each party of a dispute has for its move: two re-broadcast periods of a node's outbox
/// (4 blocks each), so that an honest party a few blocks behind the chain, or whose move was
/// lost once, still answers in time (silence loses the whole bond). At 3 blocks, a false
/// challenger met an honest trainer catching up after a partition heal and won by silence
/// (`examples/simulate-faults.toml`, seed 32).
pub const DEFAULT_MOVE_WINDOW: u64 = 8;

/// How a task's work is checked: the trace every trainer commits, how often trainers are
/// audited, and the timing and stake of disputes. See `docs/verification.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// A trace checkpoint every this many local steps (step 0 and the last step always are).
    pub trace_every: u32,
    /// Probability, in parts per million, that a revealed update is audited (drawn from a seed
    /// fixed after the reveals). Updates whose hash another trainer also revealed, or that
    /// replay an update of the previous round, are always audited.
    pub audit_ppm: u32,
    /// Blocks after the round closes during which a validator may still challenge a trainer;
    /// rewards vest and bonds unlock only after it.
    pub audit_window: u64,
    /// Blocks each party of a dispute has for each move; a party that lets it pass loses.
    pub move_window: u64,
    /// Stake a challenger locks; it goes to the trainer if the challenge was wrong.
    pub challenge_bond: u128,
    /// Smallest bond a trainer may lock (beyond `min_stake`): what a trainer caught cheating
    /// loses at least, the `B` that `audit_ppm` must deter with
    /// ([`crate::audit::deterrent_rate_ppm`]). A Sybil must lock it for every identity.
    pub min_trainer_bond: u128,
}

impl Verification {
    /// Settings with the given audit rate and challenge bond, the default trace and windows,
    /// and no trainer bond beyond the task's `min_stake`.
    pub fn with_audit_ppm(audit_ppm: u32, challenge_bond: u128) -> Self {
        Self {
            trace_every: DEFAULT_TRACE_EVERY,
            audit_ppm,
            audit_window: DEFAULT_AUDIT_WINDOW,
            move_window: DEFAULT_MOVE_WINDOW,
            challenge_bond,
            min_trainer_bond: 0,
        }
    }
}

/// What to train and how: everything a trainer and a validator need to agree on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskSpec {
    /// Model architecture (`logistic:IN-OUT`, `mlp:IN-H-..-OUT`, `cnn[:DROPOUT]`).
    pub model: String,
    /// blake3 of the initial model blob (`M_0`), derived from the spec
    /// ([`crate::plan::seal_initial_model`]).
    #[serde(serialize_with = "serialize_hash")]
    pub initial_model: Hash,
    /// Content hash of the dataset ([`crate::dataset::content_hash`]).
    #[serde(serialize_with = "serialize_hash")]
    pub dataset: Hash,
    /// How the data is split among trainers (e.g. `iid`, `dirichlet:0.5`, `shards:2`).
    pub partition: String,
    /// Number of rounds.
    pub rounds: u32,
    /// Optimizer steps each trainer runs per round.
    pub local_steps: u32,
    /// Optimizer and its hyper-parameters (e.g. `sgd:lr=0.05,batch=32`).
    pub optimizer: String,
    /// Robust aggregation rule with its pre-aggregation chain (e.g. `nnm:2>trimmed_mean:2`).
    pub robust_rule: String,
    /// Blocks during which trainers may commit.
    pub commit_window: u64,
    /// Blocks during which trainers may reveal (right after the commit window).
    pub reveal_window: u64,
    /// Blocks during which validators vote which revealed updates they hold (right after the
    /// reveal window): an update counts only if validators holding at least 2/3 of the task's
    /// validator stake vote that they hold it.
    pub availability_window: u64,
    /// Blocks for attestation commits, then as many for attestation reveals.
    pub attest_window: u64,
    /// Smallest bond a member may lock.
    pub min_stake: u128,
    /// Tokens paid out per finalized round (escrowed for every round at creation).
    pub reward_per_round: u128,
    /// Traces, audits and disputes.
    pub verification: Verification,
}

impl TaskSpec {
    /// Blocks from a round's opening block to the block that closes it: the opening block
    /// itself, then the commit, reveal, availability, attestation-commit and attestation-reveal
    /// windows.
    pub fn round_length(&self) -> u64 {
        1 + self.commit_window
            + self.reveal_window
            + self.availability_window
            + 2 * self.attest_window
    }

    /// Blocks from a round's opening block to the first block of its attestation-commit
    /// window, where its available updates are fixed and its audits drawn (the seed comes from
    /// the block before it).
    pub fn audit_offset(&self) -> u64 {
        1 + self.commit_window + self.reveal_window + self.availability_window
    }

    /// The budget escrowed at creation; `None` when it overflows u128.
    pub fn budget(&self) -> Option<u128> {
        self.reward_per_round.checked_mul(u128::from(self.rounds))
    }
}

impl Write for Verification {
    fn write(&self, buf: &mut impl BufMut) {
        self.trace_every.write(buf);
        self.audit_ppm.write(buf);
        self.audit_window.write(buf);
        self.move_window.write(buf);
        self.challenge_bond.write(buf);
        self.min_trainer_bond.write(buf);
    }
}

impl EncodeSize for Verification {
    fn encode_size(&self) -> usize {
        4 + 4 + 8 + 8 + 16 + 16
    }
}

impl Read for Verification {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            trace_every: u32::read_cfg(buf, &())?,
            audit_ppm: u32::read_cfg(buf, &())?,
            audit_window: u64::read_cfg(buf, &())?,
            move_window: u64::read_cfg(buf, &())?,
            challenge_bond: u128::read_cfg(buf, &())?,
            min_trainer_bond: u128::read_cfg(buf, &())?,
        })
    }
}

impl Write for TaskSpec {
    fn write(&self, buf: &mut impl BufMut) {
        write_text(&self.model, buf);
        self.initial_model.write(buf);
        self.dataset.write(buf);
        write_text(&self.partition, buf);
        self.rounds.write(buf);
        self.local_steps.write(buf);
        write_text(&self.optimizer, buf);
        write_text(&self.robust_rule, buf);
        self.commit_window.write(buf);
        self.reveal_window.write(buf);
        self.availability_window.write(buf);
        self.attest_window.write(buf);
        self.min_stake.write(buf);
        self.reward_per_round.write(buf);
        self.verification.write(buf);
    }
}

impl EncodeSize for TaskSpec {
    fn encode_size(&self) -> usize {
        text_size(&self.model)
            + 64
            + text_size(&self.partition)
            + 8
            + text_size(&self.optimizer)
            + text_size(&self.robust_rule)
            + 32
            + 32
            + self.verification.encode_size()
    }
}

impl Read for TaskSpec {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            model: read_text(buf)?,
            initial_model: Hash::read_cfg(buf, &())?,
            dataset: Hash::read_cfg(buf, &())?,
            partition: read_text(buf)?,
            rounds: u32::read_cfg(buf, &())?,
            local_steps: u32::read_cfg(buf, &())?,
            optimizer: read_text(buf)?,
            robust_rule: read_text(buf)?,
            commit_window: u64::read_cfg(buf, &())?,
            reveal_window: u64::read_cfg(buf, &())?,
            availability_window: u64::read_cfg(buf, &())?,
            attest_window: u64::read_cfg(buf, &())?,
            min_stake: u128::read_cfg(buf, &())?,
            reward_per_round: u128::read_cfg(buf, &())?,
            verification: Verification::read_cfg(buf, &())?,
        })
    }
}
