//! Rounds of a task: the phases of commit, reveal and attestation, and what each round recorded.

use std::collections::BTreeMap;

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, Write};
use serde::Serialize;

use std::collections::BTreeSet;

use cairn_round::audit::AuditReason;

use crate::address::Address;
use crate::encoding::{
    read_tag, Hash, MAX_SCORES_PER_ATTESTATION, MAX_TASK_MEMBERS, MAX_TASK_VALIDATORS,
};
use crate::task::{serialize_hash, TaskSpec, MAX_OPEN_DISPUTES};

/// Which transactions a round accepts at a given height.
///
/// The block that opens a round fixes its seed, so nobody can train before it: the commit window
/// starts with the next block. Windows follow each other without gaps, and the round closes at
/// the start of the block after the attestation reveal window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// The block that opened the round (and any earlier height): nothing is accepted yet.
    Opening,
    /// Trainers commit `blake3(update_hash || salt)` and their trace root.
    Commit,
    /// Trainers reveal the update hash and salt.
    Reveal,
    /// Validators vote which revealed updates they hold; the updates held by at least 2/3 of
    /// validator stake are the ones that count.
    Availability,
    /// Validators commit to their attestation.
    AttestCommit,
    /// Validators reveal model hash and scores.
    AttestReveal,
    /// The round is over; it closes at the start of the next block.
    Closed,
}

impl Phase {
    /// The phase of a round opened at `opened_at`, seen by a block at `height`.
    pub fn at(spec: &TaskSpec, opened_at: u64, height: u64) -> Self {
        if height <= opened_at {
            return Self::Opening;
        }
        let elapsed = height - opened_at - 1;
        let reveal = spec.commit_window;
        let availability = reveal + spec.reveal_window;
        let attest_commit = availability + spec.availability_window;
        let attest_reveal = attest_commit + spec.attest_window;
        let closed = attest_reveal + spec.attest_window;
        match elapsed {
            e if e < reveal => Self::Commit,
            e if e < availability => Self::Reveal,
            e if e < attest_commit => Self::Availability,
            e if e < attest_reveal => Self::AttestCommit,
            e if e < closed => Self::AttestReveal,
            _ => Self::Closed,
        }
    }
}

/// A trainer's commitment and, once revealed, its update hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UpdateCommit {
    /// `blake3(update_hash || salt)`.
    #[serde(serialize_with = "serialize_hash")]
    pub commitment: Hash,
    /// Merkle root of the training trace.
    #[serde(serialize_with = "serialize_hash")]
    pub trace_root: Hash,
    /// blake3 of the update blob, once revealed.
    #[serde(serialize_with = "serialize_optional_hash")]
    pub update_hash: Option<Hash>,
    /// Hash of the trace's last checkpoint, opened against the trace root at the reveal (it
    /// names the update hash): what a dispute over this update starts from.
    #[serde(serialize_with = "serialize_optional_hash")]
    pub last_checkpoint: Option<Hash>,
}

/// Where one auditor's audit of one trainer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AuditStatus {
    /// Drawn; no report yet.
    Assigned,
    /// The auditor re-ran the round and reported the same trace root.
    Passed,
    /// The auditor opened a dispute.
    Challenged,
}

/// One audited trainer: why, and each auditor's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// Drawn at the audit rate, or forced (a duplicate or replayed update).
    #[serde(serialize_with = "serialize_reason")]
    pub reason: AuditReason,
    /// The auditors and where each stands.
    pub auditors: BTreeMap<Address, AuditStatus>,
}

/// When a finalized round's rewards are paid, and what is held back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vesting {
    /// Height at which the rewards vest (after the round's audit window).
    pub at: u64,
    /// Whether the vesting ran.
    pub done: bool,
    /// Trainers whose reward waits for an open dispute over this round.
    pub withheld: BTreeSet<Address>,
    /// Rewards never paid because the trainer lost a dispute (they stay in the escrow).
    pub forfeited: BTreeMap<Address, u128>,
}

/// A validator's attestation commitment and, once revealed, its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attestation {
    /// Commitment to model hash, scores and salt.
    #[serde(serialize_with = "serialize_hash")]
    pub commitment: Hash,
    /// Model hash and scores, once revealed.
    pub reveal: Option<AttestationReveal>,
}

/// The opened content of an attestation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttestationReveal {
    /// Hash of the model `M_{r+1}` this validator computed.
    #[serde(serialize_with = "serialize_hash")]
    pub model_hash: Hash,
    /// Its score per trainer, in ppm.
    pub scores: BTreeMap<Address, u32>,
}

/// How a round ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// At least 2/3 of validator stake agreed on one model hash.
    Finalized {
        /// The agreed model hash `M_{r+1}`.
        #[serde(serialize_with = "serialize_hash")]
        model_hash: Hash,
        /// Consensus score per trainer (clipped, stake-weighted), in ppm.
        scores: BTreeMap<Address, u32>,
        /// Paid to each trainer.
        trainer_rewards: BTreeMap<Address, u128>,
        /// Paid to each validator that agreed.
        validator_rewards: BTreeMap<Address, u128>,
        /// Slashed at the close: each member that committed and never revealed, and each
        /// validator whose attestation was provably wrong (`crate::accountability`).
        slashed: BTreeMap<Address, u128>,
    },
    /// No model hash reached 2/3 of validator stake: nobody is paid.
    TimedOut {
        /// Slashed at the close: each member that committed and never revealed (with no
        /// finalized hash, no attestation is proven wrong).
        slashed: BTreeMap<Address, u128>,
    },
}

/// One round of one task as stored in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Round {
    /// Task id.
    pub task: u64,
    /// Round number, from 0.
    pub number: u32,
    /// Height of the block that opened it.
    pub opened_at: u64,
    /// The round's seed (shards, batch orders): round 0's from the parent of the block that
    /// started the task, every later round's from the previous round's [`Round::beacon`].
    #[serde(serialize_with = "serialize_hash")]
    pub seed: Hash,
    /// Randomness no single party chooses: the XOR of one share per reveal in this round
    /// (`crate::participation::beacon_share`), each fixed by a salt committed before any was
    /// revealed. Audit seeds and the next round's seed come from it.
    #[serde(serialize_with = "serialize_hash")]
    pub beacon: Hash,
    /// The model `M_r` trainers start from.
    #[serde(serialize_with = "serialize_hash")]
    pub model_hash: Hash,
    /// Trainer commitments.
    pub commits: BTreeMap<Address, UpdateCommit>,
    /// Availability votes: each validator's set of revealed trainers whose update it holds.
    pub votes: BTreeMap<Address, BTreeSet<Address>>,
    /// The trainers whose updates count this round (held by at least 2/3 of validator stake,
    /// [`Round::tally_available`]), fixed at the first block of the attestation-commit window.
    pub available: Option<BTreeSet<Address>>,
    /// Revealed trainers that provably did not serve their update: validators holding at least
    /// 2/3 of stake voted, and those holding it had less than 1/3 ([`Round::tally_unserved`]).
    /// Fixed with [`Round::available`]; a second such round in a row is slashed.
    pub unserved: BTreeSet<Address>,
    /// Validator attestations.
    pub attestations: BTreeMap<Address, Attestation>,
    /// Set when the round closes.
    pub outcome: Option<Outcome>,
    /// The audit seed, drawn from the block after the reveal window closed.
    #[serde(serialize_with = "serialize_optional_hash")]
    pub audit_seed: Option<Hash>,
    /// Audited trainers and their auditors.
    pub audits: BTreeMap<Address, Audit>,
    /// Disputes opened over this round's updates.
    pub disputes: BTreeSet<u64>,
    /// Tokens each member lost in this round's disputes (a trainer's bond, or a wrong
    /// challenger's bond, an auditor that passed work the referee proved wrong), for serving its
    /// update to nobody a second round in a row, and for a drawn audit left unreported.
    pub penalties: BTreeMap<Address, u128>,
    /// Set when a finalized round closes.
    pub vesting: Option<Vesting>,
}

impl Round {
    /// Height of the block that closes the round.
    pub fn closes_at(&self, spec: &TaskSpec) -> u64 {
        self.opened_at.saturating_add(spec.round_length())
    }

    /// Trainers that revealed an update this round, with its hash.
    pub fn revealed(&self) -> impl Iterator<Item = (&Address, &Hash)> {
        self.commits
            .iter()
            .filter_map(|(trainer, commit)| Some((trainer, commit.update_hash.as_ref()?)))
    }

    /// The revealed trainers whose update validators holding at least 2/3 of the task's
    /// validator stake voted they hold (`validators`: each validator's bond). What
    /// [`Round::available`] is set to once the availability window closes; computable by
    /// anyone from the votes before that.
    pub fn tally_available(&self, validators: &BTreeMap<Address, u128>) -> BTreeSet<Address> {
        let total: u128 = validators.values().sum();
        let mut held: BTreeMap<&Address, u128> = BTreeMap::new();
        for (validator, trainers) in &self.votes {
            let Some(bond) = validators.get(validator) else {
                continue;
            };
            for trainer in trainers {
                let stake = held.entry(trainer).or_default();
                *stake = stake.saturating_add(*bond);
            }
        }
        self.revealed()
            .filter(|(trainer, _)| {
                held.get(trainer)
                    .is_some_and(|stake| crate::settlement::is_supermajority(*stake, total))
            })
            .map(|(trainer, _)| *trainer)
            .collect()
    }

    /// The revealed trainers that provably did not serve their update: validators holding at
    /// least 2/3 of stake voted, yet those that hold it have less than 1/3. With at most 1/3 of
    /// stake faulty, at least 1/3 is honest and voted; had the trainer served every validator,
    /// those alone would hold it. A trainer that served only some validators, or whose update a
    /// partition cut off, may miss 2/3 (it earns nothing) without being here (it is not
    /// slashed): the ledger punishes only what it can tell from a fault.
    pub fn tally_unserved(&self, validators: &BTreeMap<Address, u128>) -> BTreeSet<Address> {
        let total: u128 = validators.values().sum();
        let voted: u128 = self
            .votes
            .keys()
            .filter_map(|validator| validators.get(validator))
            .sum();
        if !crate::settlement::is_supermajority(voted, total) {
            return BTreeSet::new();
        }
        self.revealed()
            .filter(|(trainer, _)| {
                let held: u128 = self
                    .votes
                    .iter()
                    .filter(|(_, trainers)| trainers.contains(*trainer))
                    .filter_map(|(validator, _)| validators.get(validator))
                    .sum();
                // held < total / 3, exactly.
                held.saturating_mul(3) < total
            })
            .map(|(trainer, _)| *trainer)
            .collect()
    }

    /// Whether `trainer`'s update counts this round: it is available once the availability
    /// window closed. Before that, nothing counts yet.
    pub fn counts(&self, trainer: &Address) -> bool {
        self.available
            .as_ref()
            .is_some_and(|available| available.contains(trainer))
    }

    /// Trainers that revealed but whose update was not available (withheld, or lost), once the
    /// availability window closed.
    pub fn unavailable(&self) -> BTreeSet<Address> {
        match &self.available {
            Some(available) => self
                .revealed()
                .map(|(trainer, _)| *trainer)
                .filter(|trainer| !available.contains(trainer))
                .collect(),
            None => BTreeSet::new(),
        }
    }

    /// Records that `member` lost `amount` in this round (a dispute, or repeated withholding).
    pub fn add_penalty(&mut self, member: &Address, amount: u128) {
        if amount > 0 {
            let entry = self.penalties.entry(*member).or_default();
            *entry = entry.saturating_add(amount);
        }
    }

    /// Last height at which a trainer of this round may be challenged.
    pub fn challenge_deadline(&self, spec: &TaskSpec) -> u64 {
        self.closes_at(spec)
            .saturating_add(spec.verification.audit_window)
    }
}

fn serialize_reason<S: serde::Serializer>(
    reason: &AuditReason,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match reason {
        AuditReason::Drawn => "drawn",
        AuditReason::Duplicate => "duplicate",
        AuditReason::Replayed => "replayed",
    })
}

/// Serializes an optional hash as hex or null.
pub(crate) fn serialize_optional_hash<S: serde::Serializer>(
    hash: &Option<Hash>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match hash {
        Some(hash) => serialize_hash(hash, serializer),
        None => serializer.serialize_none(),
    }
}

fn member_map<V: Read<Cfg = ()>>() -> (RangeCfg<usize>, ((), V::Cfg)) {
    (RangeCfg::new(..=MAX_TASK_MEMBERS), ((), ()))
}

impl Write for UpdateCommit {
    fn write(&self, buf: &mut impl BufMut) {
        self.commitment.write(buf);
        self.trace_root.write(buf);
        self.update_hash.write(buf);
        self.last_checkpoint.write(buf);
    }
}

impl EncodeSize for UpdateCommit {
    fn encode_size(&self) -> usize {
        64 + self.update_hash.encode_size() + self.last_checkpoint.encode_size()
    }
}

impl Read for UpdateCommit {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            commitment: Hash::read_cfg(buf, &())?,
            trace_root: Hash::read_cfg(buf, &())?,
            update_hash: Option::<Hash>::read_cfg(buf, &())?,
            last_checkpoint: Option::<Hash>::read_cfg(buf, &())?,
        })
    }
}

tag_enum_codec!(AuditStatus { Assigned = 0, Passed = 1, Challenged = 2 });

fn write_reason(reason: &AuditReason, buf: &mut impl BufMut) {
    let tag: u8 = match reason {
        AuditReason::Drawn => 0,
        AuditReason::Duplicate => 1,
        AuditReason::Replayed => 2,
    };
    tag.write(buf);
}

fn read_reason(buf: &mut impl Buf) -> Result<AuditReason, CodecError> {
    match read_tag(buf)? {
        0 => Ok(AuditReason::Drawn),
        1 => Ok(AuditReason::Duplicate),
        2 => Ok(AuditReason::Replayed),
        other => Err(CodecError::InvalidEnum(other)),
    }
}

impl Write for Audit {
    fn write(&self, buf: &mut impl BufMut) {
        write_reason(&self.reason, buf);
        self.auditors.write(buf);
    }
}

impl EncodeSize for Audit {
    fn encode_size(&self) -> usize {
        1 + self.auditors.encode_size()
    }
}

impl Read for Audit {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            reason: read_reason(buf)?,
            auditors: BTreeMap::read_cfg(buf, &(RangeCfg::new(..=MAX_TASK_VALIDATORS), ((), ())))?,
        })
    }
}

impl Write for Vesting {
    fn write(&self, buf: &mut impl BufMut) {
        self.at.write(buf);
        self.done.write(buf);
        self.withheld.write(buf);
        self.forfeited.write(buf);
    }
}

impl EncodeSize for Vesting {
    fn encode_size(&self) -> usize {
        8 + 1 + self.withheld.encode_size() + self.forfeited.encode_size()
    }
}

impl Read for Vesting {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            at: u64::read_cfg(buf, &())?,
            done: bool::read_cfg(buf, &())?,
            withheld: BTreeSet::read_cfg(buf, &(RangeCfg::new(..=MAX_TASK_MEMBERS), ()))?,
            forfeited: BTreeMap::read_cfg(buf, &member_map::<u128>())?,
        })
    }
}

impl Write for AttestationReveal {
    fn write(&self, buf: &mut impl BufMut) {
        self.model_hash.write(buf);
        self.scores.write(buf);
    }
}

impl EncodeSize for AttestationReveal {
    fn encode_size(&self) -> usize {
        32 + self.scores.encode_size()
    }
}

impl Read for AttestationReveal {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            model_hash: Hash::read_cfg(buf, &())?,
            scores: BTreeMap::read_cfg(
                buf,
                &(RangeCfg::new(..=MAX_SCORES_PER_ATTESTATION), ((), ())),
            )?,
        })
    }
}

impl Write for Attestation {
    fn write(&self, buf: &mut impl BufMut) {
        self.commitment.write(buf);
        self.reveal.write(buf);
    }
}

impl EncodeSize for Attestation {
    fn encode_size(&self) -> usize {
        32 + self.reveal.encode_size()
    }
}

impl Read for Attestation {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            commitment: Hash::read_cfg(buf, &())?,
            reveal: Option::<AttestationReveal>::read_cfg(buf, &())?,
        })
    }
}

impl Write for Outcome {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::Finalized {
                model_hash,
                scores,
                trainer_rewards,
                validator_rewards,
                slashed,
            } => {
                0u8.write(buf);
                model_hash.write(buf);
                scores.write(buf);
                trainer_rewards.write(buf);
                validator_rewards.write(buf);
                slashed.write(buf);
            }
            Self::TimedOut { slashed } => {
                1u8.write(buf);
                slashed.write(buf);
            }
        }
    }
}

impl EncodeSize for Outcome {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Finalized {
                scores,
                trainer_rewards,
                validator_rewards,
                slashed,
                ..
            } => {
                32 + scores.encode_size()
                    + trainer_rewards.encode_size()
                    + validator_rewards.encode_size()
                    + slashed.encode_size()
            }
            Self::TimedOut { slashed } => slashed.encode_size(),
        }
    }
}

impl Read for Outcome {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match read_tag(buf)? {
            0 => Ok(Self::Finalized {
                model_hash: Hash::read_cfg(buf, &())?,
                scores: BTreeMap::read_cfg(buf, &member_map::<u32>())?,
                trainer_rewards: BTreeMap::read_cfg(buf, &member_map::<u128>())?,
                validator_rewards: BTreeMap::read_cfg(buf, &member_map::<u128>())?,
                slashed: BTreeMap::read_cfg(buf, &member_map::<u128>())?,
            }),
            1 => Ok(Self::TimedOut {
                slashed: BTreeMap::read_cfg(buf, &member_map::<u128>())?,
            }),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

impl Write for Round {
    fn write(&self, buf: &mut impl BufMut) {
        self.task.write(buf);
        self.number.write(buf);
        self.opened_at.write(buf);
        self.seed.write(buf);
        self.beacon.write(buf);
        self.model_hash.write(buf);
        self.commits.write(buf);
        self.votes.write(buf);
        self.available.write(buf);
        self.unserved.write(buf);
        self.attestations.write(buf);
        self.outcome.write(buf);
        self.audit_seed.write(buf);
        self.audits.write(buf);
        self.disputes.write(buf);
        self.penalties.write(buf);
        self.vesting.write(buf);
    }
}

impl EncodeSize for Round {
    fn encode_size(&self) -> usize {
        8 + 4
            + 8
            + 96
            + self.commits.encode_size()
            + self.votes.encode_size()
            + self.available.encode_size()
            + self.unserved.encode_size()
            + self.attestations.encode_size()
            + self.outcome.encode_size()
            + self.audit_seed.encode_size()
            + self.audits.encode_size()
            + self.disputes.encode_size()
            + self.penalties.encode_size()
            + self.vesting.encode_size()
    }
}

impl Read for Round {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
            number: u32::read_cfg(buf, &())?,
            opened_at: u64::read_cfg(buf, &())?,
            seed: Hash::read_cfg(buf, &())?,
            beacon: Hash::read_cfg(buf, &())?,
            model_hash: Hash::read_cfg(buf, &())?,
            commits: BTreeMap::read_cfg(buf, &member_map::<UpdateCommit>())?,
            votes: BTreeMap::read_cfg(
                buf,
                &(
                    RangeCfg::new(..=MAX_TASK_VALIDATORS),
                    ((), (RangeCfg::new(..=MAX_TASK_MEMBERS), ())),
                ),
            )?,
            available: Option::<BTreeSet<Address>>::read_cfg(
                buf,
                &(RangeCfg::new(..=MAX_TASK_MEMBERS), ()),
            )?,
            unserved: BTreeSet::read_cfg(buf, &(RangeCfg::new(..=MAX_TASK_MEMBERS), ()))?,
            attestations: BTreeMap::read_cfg(
                buf,
                &(RangeCfg::new(..=MAX_TASK_VALIDATORS), ((), ())),
            )?,
            outcome: Option::<Outcome>::read_cfg(buf, &())?,
            audit_seed: Option::<Hash>::read_cfg(buf, &())?,
            audits: BTreeMap::read_cfg(buf, &member_map::<Audit>())?,
            disputes: BTreeSet::read_cfg(buf, &(RangeCfg::new(..=MAX_OPEN_DISPUTES), ()))?,
            penalties: BTreeMap::read_cfg(buf, &member_map::<u128>())?,
            vesting: Option::<Vesting>::read_cfg(buf, &())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TaskSpec {
        TaskSpec {
            model: "mlp".into(),
            initial_model: [0; 32],
            dataset: [1; 32],
            partition: "iid".into(),
            rounds: 3,
            local_steps: 10,
            optimizer: "sgd".into(),
            robust_rule: "median".into(),
            commit_window: 2,
            reveal_window: 3,
            availability_window: 3,
            attest_window: 4,
            min_stake: 1,
            reward_per_round: 1,
            verification: crate::task::Verification::with_audit_ppm(50_000, 10),
        }
    }

    #[test]
    fn round_record_round_trips_with_its_outcome() {
        use commonware_codec::{DecodeExt, Encode};
        let trainer = Address([1; 20]);
        let round = Round {
            task: 3,
            number: 2,
            opened_at: 40,
            seed: [5; 32],
            beacon: [4; 32],
            model_hash: [6; 32],
            commits: BTreeMap::from([(
                trainer,
                UpdateCommit {
                    commitment: [7; 32],
                    trace_root: [8; 32],
                    update_hash: Some([9; 32]),
                    last_checkpoint: Some([12; 32]),
                },
            )]),
            votes: BTreeMap::from([(Address([2; 20]), BTreeSet::from([trainer]))]),
            available: Some(BTreeSet::from([trainer])),
            unserved: BTreeSet::from([Address([5; 20])]),
            attestations: BTreeMap::from([(
                Address([2; 20]),
                Attestation {
                    commitment: [10; 32],
                    reveal: Some(AttestationReveal {
                        model_hash: [11; 32],
                        scores: BTreeMap::from([(trainer, 500_000)]),
                    }),
                },
            )]),
            outcome: Some(Outcome::Finalized {
                model_hash: [11; 32],
                scores: BTreeMap::from([(trainer, 500_000)]),
                trainer_rewards: BTreeMap::from([(trainer, 80)]),
                validator_rewards: BTreeMap::from([(Address([2; 20]), 20)]),
                slashed: BTreeMap::new(),
            }),
            audit_seed: Some([13; 32]),
            audits: BTreeMap::from([(
                trainer,
                Audit {
                    reason: AuditReason::Duplicate,
                    auditors: BTreeMap::from([
                        (Address([2; 20]), AuditStatus::Passed),
                        (Address([3; 20]), AuditStatus::Challenged),
                    ]),
                },
            )]),
            disputes: BTreeSet::from([4, 9]),
            penalties: BTreeMap::from([(trainer, 700)]),
            vesting: Some(Vesting {
                at: 60,
                done: true,
                withheld: BTreeSet::from([trainer]),
                forfeited: BTreeMap::from([(Address([3; 20]), 5)]),
            }),
        };
        let bytes = round.encode();
        assert_eq!(
            bytes.len(),
            commonware_codec::EncodeSize::encode_size(&round)
        );
        assert_eq!(Round::decode(bytes).unwrap(), round);
    }

    #[test]
    fn phases_follow_the_windows_in_order() {
        let spec = spec();
        let phases: Vec<Phase> = (10..28).map(|h| Phase::at(&spec, 10, h)).collect();
        let expected = [
            [Phase::Opening].as_slice(),
            &[Phase::Commit; 2],
            &[Phase::Reveal; 3],
            &[Phase::Availability; 3],
            &[Phase::AttestCommit; 4],
            &[Phase::AttestReveal; 4],
            &[Phase::Closed],
        ]
        .concat();
        assert_eq!(phases, expected);
        assert_eq!(spec.round_length(), 17);
    }
}
