//! Signed transactions: what a user asks the ledger to do, bound to a chain and a nonce.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BufMut;
use commonware_codec::{
    Buf, Encode, EncodeSize, Error as CodecError, FixedSize, RangeCfg, Read, Write,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::address::Address;
use crate::encoding::{
    domain_hash, read_tag, read_text, text_size, write_text, Hash, MAX_SCORES_PER_ATTESTATION,
    MAX_TASK_MEMBERS, MAX_WITNESS_CHUNK,
};
use crate::task::{Role, TaskSpec};
use cairn_round::trace::MAX_PROOF_HASHES;

/// Domain tag prepended to every signed message, so a transaction signature means nothing else.
pub const TRANSACTION_DOMAIN: &[u8] = b"cairn/transaction/v1";

/// What a transaction does. Tags are part of the canonical encoding and never reused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Moves tokens from the signer's balance to another account.
    Transfer {
        /// Recipient.
        to: Address,
        /// Base units moved.
        amount: u128,
    },
    /// Stands for the consensus validator set with weight `stake` (at most the signer's bonded
    /// stake, at least `min_bond`) from the next epoch on, consensus key = the signer's public
    /// key; `stake == 0` withdraws (the signer leaves the set at the next epoch boundary).
    /// Refused on a chain without epochs (`Params::epoch_length == 0`).
    Candidacy {
        /// Weight offered (0: withdraw).
        stake: u128,
    },
    /// Moves tokens from the signer's balance into its bonded stake.
    Bond {
        /// Base units bonded.
        amount: u128,
    },
    /// Starts returning unlocked stake to the balance after the unbonding delay.
    Unbond {
        /// Base units unbonded.
        amount: u128,
    },
    /// Destroys tokens from the signer's balance (the only voluntary way supply shrinks).
    Burn {
        /// Base units burned.
        amount: u128,
    },
    /// Posts a training task and escrows `reward_per_round x rounds` from the signer.
    CreateTask {
        /// What to train and how.
        spec: TaskSpec,
    },
    /// Joins an open task, locking `bond` of the signer's free bonded stake.
    JoinTask {
        /// Task id.
        task: u64,
        /// Trainer or validator.
        role: Role,
        /// Stake locked for the task's life (at least the task's minimum stake).
        bond: u128,
    },
    /// The creator starts an open task: round 0 opens in this block.
    StartTask {
        /// Task id.
        task: u64,
    },
    /// The creator cancels a task that has not started: escrow and bonds return.
    CancelTask {
        /// Task id.
        task: u64,
    },
    /// A trainer commits to its update: `blake3(update_hash || salt)` and its trace root.
    CommitUpdate {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
        /// `blake3(update_hash || salt)`.
        commitment: Hash,
        /// Merkle root of the training trace.
        trace_root: Hash,
    },
    /// A trainer opens its commitment once commits are closed, and opens the last checkpoint
    /// of its trace (which names the update) against its trace root.
    RevealUpdate {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
        /// blake3 of the update blob.
        update_hash: Hash,
        /// The salt used in the commitment.
        salt: Hash,
        /// The last checkpoint's weights, optimizer and batch hashes (its step is the task's
        /// local steps and its update the revealed update hash).
        last: LastCheckpoint,
        /// Merkle proof of the last checkpoint in the trace.
        proof: Vec<Hash>,
    },
    /// A validator says which of the round's revealed updates it holds (once per round, in the
    /// availability window). An update counts only if validators holding at least 2/3 of the
    /// task's validator stake hold it.
    VoteAvailability {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
        /// The trainers whose revealed update blob this validator holds.
        held: BTreeSet<Address>,
    },
    /// A validator commits to its attestation (see [`attestation_commitment`]).
    CommitAttestation {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
        /// Commitment to model hash, scores and salt.
        commitment: Hash,
    },
    /// A validator opens its attestation: the next model's hash and its score per trainer.
    RevealAttestation {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
        /// Hash of the aggregated model `M_{r+1}`.
        model_hash: Hash,
        /// Score per trainer, in ppm.
        scores: BTreeMap<Address, u32>,
        /// The salt used in the commitment.
        salt: Hash,
    },
    /// Lists a dataset for sale.
    ListDataset {
        /// blake3 of the dataset's content; also its id.
        content_hash: Hash,
        /// Schema description.
        schema: String,
        /// Licence name.
        licence: String,
        /// Price of access in base units.
        price: u128,
    },
    /// Buys access to a listed dataset; the price is escrowed, then released to the owner.
    BuyAccess {
        /// Content hash of the dataset.
        dataset: Hash,
    },
    /// An auditor reports that its re-run of a trainer's round gave the trainer's trace root.
    ReportAudit {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
        /// The audited trainer.
        trainer: Address,
    },
    /// A validator disputes a trainer's update: its own re-run gave another trace root. Locks
    /// the task's challenge bond.
    Challenge {
        /// Task id.
        task: u64,
        /// Round number.
        round: u32,
        /// The trainer challenged.
        trainer: Address,
        /// The challenger's own trace root for the trainer's round.
        trace_root: Hash,
    },
    /// The trainer's move in a dispute: its checkpoint at the step the ledger asks for, with a
    /// Merkle proof against its trace root when that step is a trace leaf.
    DisputeClaim {
        /// Dispute id.
        dispute: u64,
        /// The checkpoint hash.
        checkpoint: Hash,
        /// Proof of the leaf (empty between leaves).
        proof: Vec<Hash>,
    },
    /// The challenger's move in a dispute: whether it agrees with the trainer's last claim.
    DisputeAnswer {
        /// Dispute id.
        dispute: u64,
        /// Agreement with the claim.
        agree: bool,
    },
    /// A chunk of the witness of the disputed step, in order.
    DisputeWitness {
        /// Dispute id.
        dispute: u64,
        /// Offset of the chunk in the witness.
        offset: u64,
        /// The chunk.
        bytes: Vec<u8>,
    },
}

/// The parts of a trace's last checkpoint a reveal opens (its step and update are known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastCheckpoint {
    /// Hash of the final weights.
    pub weights: Hash,
    /// Hash of the final optimizer state.
    pub optimizer: Hash,
    /// Hash of the last step's batch.
    pub batch: Hash,
}

impl Payload {
    /// The payload's name, for logs (a payload's fields can be a megabyte of witness).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transfer { .. } => "transfer",
            Self::Bond { .. } => "bond",
            Self::Candidacy { .. } => "candidacy",
            Self::Unbond { .. } => "unbond",
            Self::Burn { .. } => "burn",
            Self::CreateTask { .. } => "create_task",
            Self::JoinTask { .. } => "join_task",
            Self::StartTask { .. } => "start_task",
            Self::CancelTask { .. } => "cancel_task",
            Self::CommitUpdate { .. } => "commit_update",
            Self::RevealUpdate { .. } => "reveal_update",
            Self::VoteAvailability { .. } => "vote_availability",
            Self::CommitAttestation { .. } => "commit_attestation",
            Self::RevealAttestation { .. } => "reveal_attestation",
            Self::ListDataset { .. } => "list_dataset",
            Self::BuyAccess { .. } => "buy_access",
            Self::ReportAudit { .. } => "report_audit",
            Self::Challenge { .. } => "challenge",
            Self::DisputeClaim { .. } => "dispute_claim",
            Self::DisputeAnswer { .. } => "dispute_answer",
            Self::DisputeWitness { .. } => "dispute_witness",
        }
    }
}

/// Whose commitment it is: binds a commitment to one chain, task, round and member, so that a
/// commitment copied from another participant cannot be revealed by the copier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitmentScope {
    /// The chain id.
    pub chain_id: u64,
    /// Task id.
    pub task: u64,
    /// Round number.
    pub round: u32,
    /// The committing member (the transaction's sender).
    pub member: Address,
}

impl CommitmentScope {
    fn bytes(&self) -> Vec<u8> {
        // Fixed-width fields, so the concatenation is unambiguous.
        let mut bytes = Vec::with_capacity(8 + 8 + 4 + self.member.as_bytes().len());
        bytes.extend_from_slice(&self.chain_id.to_be_bytes());
        bytes.extend_from_slice(&self.task.to_be_bytes());
        bytes.extend_from_slice(&self.round.to_be_bytes());
        bytes.extend_from_slice(self.member.as_bytes());
        bytes
    }
}

/// The commitment a trainer publishes: `blake3(scope || update_hash || salt)`, domain-separated.
pub fn update_commitment(scope: &CommitmentScope, update_hash: &Hash, salt: &Hash) -> Hash {
    domain_hash(
        b"cairn/update-commitment/v2",
        &[&scope.bytes(), update_hash, salt],
    )
}

/// The commitment a validator publishes before revealing its attestation, bound to its scope.
pub fn attestation_commitment(
    scope: &CommitmentScope,
    model_hash: &Hash,
    scores: &BTreeMap<Address, u32>,
    salt: &Hash,
) -> Hash {
    let encoded = scores.encode();
    domain_hash(
        b"cairn/attestation-commitment/v2",
        &[&scope.bytes(), model_hash, &encoded, salt],
    )
}

/// An unsigned transaction: who, on which chain, which nonce, what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// The chain this transaction is valid on.
    pub chain_id: u64,
    /// The signer's ed25519 public key; its address pays and acts.
    pub signer: [u8; 32],
    /// Must equal the signer account's nonce (the number of its transactions so far).
    pub nonce: u64,
    /// What to do.
    pub payload: Payload,
}

impl Transaction {
    /// The bytes the signer signs: a domain tag then the canonical encoding.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut message = Vec::with_capacity(TRANSACTION_DOMAIN.len() + self.encode_size());
        message.extend_from_slice(TRANSACTION_DOMAIN);
        self.write(&mut message);
        message
    }

    /// The signer's address.
    pub fn sender(&self) -> Address {
        Address::from_public_key_bytes(&self.signer)
    }

    /// Signs with `key` (whose public key must be `self.signer`).
    pub fn sign(self, key: &SigningKey) -> SignedTransaction {
        debug_assert_eq!(key.verifying_key().as_bytes(), &self.signer);
        let signature = key.sign(&self.signing_message()).to_bytes();
        SignedTransaction {
            transaction: self,
            signature,
        }
    }
}

/// A transaction with its ed25519 signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTransaction {
    /// The signed content.
    pub transaction: Transaction,
    /// ed25519 signature over [`Transaction::signing_message`].
    pub signature: [u8; 64],
}

impl SignedTransaction {
    /// Builds and signs a transaction in one step.
    pub fn new(key: &SigningKey, chain_id: u64, nonce: u64, payload: Payload) -> Self {
        Transaction {
            chain_id,
            signer: key.verifying_key().to_bytes(),
            nonce,
            payload,
        }
        .sign(key)
    }

    /// Decodes a transaction received from outside (bounded; the whole input must be used).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        <Self as commonware_codec::Decode>::decode_cfg(commonware_codec::Copying(bytes), &())
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode().to_vec()
    }

    /// blake3 of the canonical encoding: the transaction's id.
    pub fn hash(&self) -> Hash {
        domain_hash(b"cairn/transaction-id", &[&self.encode()])
    }

    /// Parses the signer key and signature; `None` when the key is not a valid curve point.
    pub fn parts(&self) -> Option<(VerifyingKey, Signature)> {
        let key = VerifyingKey::from_bytes(&self.transaction.signer).ok()?;
        Some((key, Signature::from_bytes(&self.signature)))
    }

    /// Verifies this one signature (strict: rejects weak keys and malleable signatures).
    pub fn verify(&self) -> bool {
        match self.parts() {
            Some((key, signature)) => key
                .verify_strict(&self.transaction.signing_message(), &signature)
                .is_ok(),
            None => false,
        }
    }
}

macro_rules! tags {
    ($($name:ident = $value:expr),* $(,)?) => { $(const $name: u8 = $value;)* };
}
tags!(
    TRANSFER = 0,
    BOND = 1,
    UNBOND = 2,
    BURN = 3,
    CREATE_TASK = 4,
    JOIN_TASK = 5,
    START_TASK = 6,
    CANCEL_TASK = 7,
    COMMIT_UPDATE = 8,
    REVEAL_UPDATE = 9,
    COMMIT_ATTESTATION = 10,
    REVEAL_ATTESTATION = 11,
    LIST_DATASET = 12,
    BUY_ACCESS = 13,
    REPORT_AUDIT = 14,
    CHALLENGE = 15,
    DISPUTE_CLAIM = 16,
    DISPUTE_ANSWER = 17,
    DISPUTE_WITNESS = 18,
    VOTE_AVAILABILITY = 19,
    CANDIDACY = 20,
);

impl Write for Payload {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::Transfer { to, amount } => {
                TRANSFER.write(buf);
                to.write(buf);
                amount.write(buf);
            }
            Self::Bond { amount } => (BOND, *amount).write(buf),
            Self::Candidacy { stake } => (CANDIDACY, *stake).write(buf),
            Self::Unbond { amount } => (UNBOND, *amount).write(buf),
            Self::Burn { amount } => (BURN, *amount).write(buf),
            Self::CreateTask { spec } => {
                CREATE_TASK.write(buf);
                spec.write(buf);
            }
            Self::JoinTask { task, role, bond } => {
                JOIN_TASK.write(buf);
                task.write(buf);
                role.write(buf);
                bond.write(buf);
            }
            Self::StartTask { task } => (START_TASK, *task).write(buf),
            Self::CancelTask { task } => (CANCEL_TASK, *task).write(buf),
            Self::CommitUpdate {
                task,
                round,
                commitment,
                trace_root,
            } => (COMMIT_UPDATE, *task, *round, *commitment, *trace_root).write(buf),
            Self::RevealUpdate {
                task,
                round,
                update_hash,
                salt,
                last,
                proof,
            } => {
                (REVEAL_UPDATE, *task, *round, *update_hash, *salt).write(buf);
                (last.weights, last.optimizer, last.batch).write(buf);
                proof.write(buf);
            }
            Self::VoteAvailability { task, round, held } => {
                (VOTE_AVAILABILITY, *task, *round).write(buf);
                held.write(buf);
            }
            Self::CommitAttestation {
                task,
                round,
                commitment,
            } => (COMMIT_ATTESTATION, *task, *round, *commitment).write(buf),
            Self::RevealAttestation {
                task,
                round,
                model_hash,
                scores,
                salt,
            } => {
                (REVEAL_ATTESTATION, *task, *round, *model_hash).write(buf);
                scores.write(buf);
                salt.write(buf);
            }
            Self::ListDataset {
                content_hash,
                schema,
                licence,
                price,
            } => {
                (LIST_DATASET, *content_hash).write(buf);
                write_text(schema, buf);
                write_text(licence, buf);
                price.write(buf);
            }
            Self::BuyAccess { dataset } => (BUY_ACCESS, *dataset).write(buf),
            Self::ReportAudit {
                task,
                round,
                trainer,
            } => (REPORT_AUDIT, *task, *round, *trainer).write(buf),
            Self::Challenge {
                task,
                round,
                trainer,
                trace_root,
            } => (CHALLENGE, *task, *round, *trainer, *trace_root).write(buf),
            Self::DisputeClaim {
                dispute,
                checkpoint,
                proof,
            } => {
                (DISPUTE_CLAIM, *dispute, *checkpoint).write(buf);
                proof.write(buf);
            }
            Self::DisputeAnswer { dispute, agree } => (DISPUTE_ANSWER, *dispute, *agree).write(buf),
            Self::DisputeWitness {
                dispute,
                offset,
                bytes,
            } => {
                (DISPUTE_WITNESS, *dispute, *offset).write(buf);
                bytes.write(buf);
            }
        }
    }
}

impl EncodeSize for Payload {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Transfer { .. } => Address::SIZE + 16,
            Self::Bond { .. } | Self::Unbond { .. } | Self::Burn { .. } => 16,
            Self::Candidacy { .. } => 16,
            Self::CreateTask { spec } => spec.encode_size(),
            Self::JoinTask { role, .. } => 8 + role.encode_size() + 16,
            Self::StartTask { .. } | Self::CancelTask { .. } => 8,
            Self::CommitUpdate { .. } => 8 + 4 + 32 + 32,
            Self::RevealUpdate { proof, .. } => 8 + 4 + 32 + 32 + 96 + proof.encode_size(),
            Self::VoteAvailability { held, .. } => 8 + 4 + held.encode_size(),
            Self::CommitAttestation { .. } => 8 + 4 + 32,
            Self::RevealAttestation { scores, .. } => 8 + 4 + 32 + scores.encode_size() + 32,
            Self::ListDataset {
                schema, licence, ..
            } => 32 + text_size(schema) + text_size(licence) + 16,
            Self::BuyAccess { .. } => 32,
            Self::ReportAudit { .. } => 8 + 4 + Address::SIZE,
            Self::Challenge { .. } => 8 + 4 + Address::SIZE + 32,
            Self::DisputeClaim { proof, .. } => 8 + 32 + proof.encode_size(),
            Self::DisputeAnswer { .. } => 8 + 1,
            Self::DisputeWitness { bytes, .. } => 8 + 8 + bytes.encode_size(),
        }
    }
}

impl Read for Payload {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let tag = read_tag(buf)?;
        Ok(match tag {
            TRANSFER => Self::Transfer {
                to: Address::read_cfg(buf, &())?,
                amount: u128::read_cfg(buf, &())?,
            },
            BOND => Self::Bond {
                amount: u128::read_cfg(buf, &())?,
            },
            CANDIDACY => Self::Candidacy {
                stake: u128::read_cfg(buf, &())?,
            },
            UNBOND => Self::Unbond {
                amount: u128::read_cfg(buf, &())?,
            },
            BURN => Self::Burn {
                amount: u128::read_cfg(buf, &())?,
            },
            CREATE_TASK => Self::CreateTask {
                spec: TaskSpec::read_cfg(buf, &())?,
            },
            JOIN_TASK => Self::JoinTask {
                task: u64::read_cfg(buf, &())?,
                role: Role::read_cfg(buf, &())?,
                bond: u128::read_cfg(buf, &())?,
            },
            START_TASK => Self::StartTask {
                task: u64::read_cfg(buf, &())?,
            },
            CANCEL_TASK => Self::CancelTask {
                task: u64::read_cfg(buf, &())?,
            },
            COMMIT_UPDATE => Self::CommitUpdate {
                task: u64::read_cfg(buf, &())?,
                round: u32::read_cfg(buf, &())?,
                commitment: Hash::read_cfg(buf, &())?,
                trace_root: Hash::read_cfg(buf, &())?,
            },
            REVEAL_UPDATE => Self::RevealUpdate {
                task: u64::read_cfg(buf, &())?,
                round: u32::read_cfg(buf, &())?,
                update_hash: Hash::read_cfg(buf, &())?,
                salt: Hash::read_cfg(buf, &())?,
                last: LastCheckpoint {
                    weights: Hash::read_cfg(buf, &())?,
                    optimizer: Hash::read_cfg(buf, &())?,
                    batch: Hash::read_cfg(buf, &())?,
                },
                proof: read_proof(buf)?,
            },
            VOTE_AVAILABILITY => Self::VoteAvailability {
                task: u64::read_cfg(buf, &())?,
                round: u32::read_cfg(buf, &())?,
                held: BTreeSet::read_cfg(buf, &(RangeCfg::new(..=MAX_TASK_MEMBERS), ()))?,
            },
            COMMIT_ATTESTATION => Self::CommitAttestation {
                task: u64::read_cfg(buf, &())?,
                round: u32::read_cfg(buf, &())?,
                commitment: Hash::read_cfg(buf, &())?,
            },
            REVEAL_ATTESTATION => Self::RevealAttestation {
                task: u64::read_cfg(buf, &())?,
                round: u32::read_cfg(buf, &())?,
                model_hash: Hash::read_cfg(buf, &())?,
                scores: BTreeMap::read_cfg(
                    buf,
                    &(RangeCfg::new(..=MAX_SCORES_PER_ATTESTATION), ((), ())),
                )?,
                salt: Hash::read_cfg(buf, &())?,
            },
            LIST_DATASET => Self::ListDataset {
                content_hash: Hash::read_cfg(buf, &())?,
                schema: read_text(buf)?,
                licence: read_text(buf)?,
                price: u128::read_cfg(buf, &())?,
            },
            BUY_ACCESS => Self::BuyAccess {
                dataset: Hash::read_cfg(buf, &())?,
            },
            REPORT_AUDIT => Self::ReportAudit {
                task: u64::read_cfg(buf, &())?,
                round: u32::read_cfg(buf, &())?,
                trainer: Address::read_cfg(buf, &())?,
            },
            CHALLENGE => Self::Challenge {
                task: u64::read_cfg(buf, &())?,
                round: u32::read_cfg(buf, &())?,
                trainer: Address::read_cfg(buf, &())?,
                trace_root: Hash::read_cfg(buf, &())?,
            },
            DISPUTE_CLAIM => Self::DisputeClaim {
                dispute: u64::read_cfg(buf, &())?,
                checkpoint: Hash::read_cfg(buf, &())?,
                proof: read_proof(buf)?,
            },
            DISPUTE_ANSWER => Self::DisputeAnswer {
                dispute: u64::read_cfg(buf, &())?,
                agree: bool::read_cfg(buf, &())?,
            },
            DISPUTE_WITNESS => Self::DisputeWitness {
                dispute: u64::read_cfg(buf, &())?,
                offset: u64::read_cfg(buf, &())?,
                bytes: Vec::read_cfg(buf, &(RangeCfg::new(1..=MAX_WITNESS_CHUNK), ()))?,
            },
            other => return Err(CodecError::InvalidEnum(other)),
        })
    }
}

/// Reads a Merkle proof of at most [`MAX_PROOF_HASHES`] hashes.
fn read_proof(buf: &mut impl Buf) -> Result<Vec<Hash>, CodecError> {
    Vec::read_cfg(buf, &(RangeCfg::new(..=MAX_PROOF_HASHES), ()))
}

impl Write for Transaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.chain_id.write(buf);
        self.signer.write(buf);
        self.nonce.write(buf);
        self.payload.write(buf);
    }
}

impl EncodeSize for Transaction {
    fn encode_size(&self) -> usize {
        8 + 32 + 8 + self.payload.encode_size()
    }
}

impl Read for Transaction {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            chain_id: u64::read_cfg(buf, &())?,
            signer: <[u8; 32]>::read_cfg(buf, &())?,
            nonce: u64::read_cfg(buf, &())?,
            payload: Payload::read_cfg(buf, &())?,
        })
    }
}

impl Write for SignedTransaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.transaction.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for SignedTransaction {
    fn encode_size(&self) -> usize {
        self.transaction.encode_size() + 64
    }
}

impl Read for SignedTransaction {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            transaction: Transaction::read_cfg(buf, &())?,
            signature: <[u8; 64]>::read_cfg(buf, &())?,
        })
    }
}
