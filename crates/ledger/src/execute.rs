//! Executing transactions and blocks against a state, producing the [`ChangeSet`] to commit.
//!
//! A block is all or nothing: proposers include only valid transactions (see
//! [`build_block`]), and a block carrying any invalid one is rejected whole, with the index of
//! the first bad transaction and its typed error. Each transaction runs in its own nested
//! overlay, so a failed one leaves no trace even while a proposer is still filling its block.

use std::sync::Arc;

use cairn_round::DatasetRegistry;
use rayon::prelude::*;

use crate::account;
use crate::address::Address;
use crate::audit;
use crate::block::{transactions_root, Block, Header};
use crate::dataset::{self, DatasetError};
use crate::dispute::{self, DisputeError};
use crate::encoding::{Hash, MAX_TRANSACTIONS_PER_BLOCK};
use crate::genesis::Params;
use crate::lifecycle::{self, TaskError};
use crate::participation::{self, RoundError};
use crate::schedule::{self, Event};
use crate::settlement;
use crate::staking::{self, StakingError};
use crate::state::{keys, Overlay, StateError};
use crate::store::{ChangeSet, StateRead, StoreError};
use crate::transaction::{Payload, SignedTransaction};
use crate::validators;
use crate::vesting;

/// What a transaction sees besides the state: the block it runs in, the chain's rules, and the
/// datasets its tasks train on (which task creation parses plans against and the dispute
/// referee re-runs steps on; every node holds the ones genesis names).
#[derive(Clone, Debug)]
pub struct Env {
    /// The chain id.
    pub chain_id: u64,
    /// Height of the block being executed.
    pub height: u64,
    /// Hash of its parent (the source of round and audit seeds).
    pub parent: Hash,
    /// The ledger parameters.
    pub params: Params,
    /// The datasets of the chain, by content hash.
    pub datasets: Arc<DatasetRegistry>,
}

impl Env {
    /// The environment of the block after `parent`, with chain id and parameters read from state.
    pub fn after(
        state: &dyn StateRead,
        parent: &Header,
        datasets: &Arc<DatasetRegistry>,
    ) -> Result<Self, StateError> {
        let overlay = Overlay::new(state);
        let chain_id = overlay.read(keys::CHAIN_ID)?.unwrap_or(parent.chain_id);
        let params = overlay.read(keys::PARAMS)?.unwrap_or_default();
        Ok(Self {
            chain_id,
            height: parent.height.saturating_add(1),
            parent: parent.hash(),
            params,
            datasets: datasets.clone(),
        })
    }
}

/// Why a transaction was rejected.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// The transaction names another chain.
    #[error("transaction is for chain {got}, this is chain {expected}")]
    WrongChainId {
        /// This chain.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The signature does not verify against the signer key (or the key is invalid).
    #[error("signature does not verify for the signer's public key")]
    BadSignature,
    /// The nonce was already used.
    #[error("nonce {got} was already used; the account's next nonce is {expected}")]
    NonceReused {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The nonce skips ahead.
    #[error("nonce {got} skips ahead; the account's next nonce is {expected}")]
    NonceSkipped {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The balance is too small.
    #[error("balance {available} is below the {needed} base units needed")]
    InsufficientBalance {
        /// Needed.
        needed: u128,
        /// Available.
        available: u128,
    },
    /// An amount must be positive.
    #[error("amount must be positive")]
    ZeroAmount,
    /// Integer arithmetic would overflow.
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    /// A staking rule.
    #[error(transparent)]
    Staking(#[from] StakingError),
    /// A candidacy was refused.
    #[error(transparent)]
    Candidacy(#[from] crate::validators::CandidacyError),
    /// A task rule.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// A round rule.
    #[error(transparent)]
    Round(#[from] RoundError),
    /// A dataset rule.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A dispute rule.
    #[error(transparent)]
    Dispute(#[from] DisputeError),
    /// An audit report rule.
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    /// The state could not be read.
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        Self::State(StateError::Store(error))
    }
}

/// Why a block was rejected.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The block names another chain.
    #[error("block is for chain {got}, this is chain {expected}")]
    WrongChainId {
        /// This chain.
        expected: u64,
        /// The block's.
        got: u64,
    },
    /// The height does not follow the parent's.
    #[error("block height {got} does not follow the tip; expected {expected}")]
    WrongHeight {
        /// Expected height.
        expected: u64,
        /// The block's.
        got: u64,
    },
    /// The parent hash is not the tip's hash.
    #[error("block's parent is not the current tip")]
    WrongParent,
    /// More transactions than a block may carry.
    #[error("block carries {0} transactions; at most {MAX_TRANSACTIONS_PER_BLOCK} are allowed")]
    TooManyTransactions(usize),
    /// The transactions root does not commit to the transactions.
    #[error("block's transactions root does not match its transactions")]
    TransactionsRootMismatch,
    /// A transaction is invalid; the whole block is rejected.
    #[error("transaction {index} is invalid: {error}")]
    Transaction {
        /// Its position in the block.
        index: usize,
        /// Why.
        error: TxError,
    },
    /// A scheduled event failed (a ledger bug or a damaged state).
    #[error("scheduled event {event:?} failed: {error}")]
    Event {
        /// The event.
        event: Box<Event>,
        /// Why.
        error: Box<TxError>,
    },
    /// Writing the next epoch's validator set failed (a ledger bug or a damaged state).
    #[error("the epoch boundary failed: {0}")]
    EpochEnd(Box<TxError>),
    /// The state root after execution differs from the header's.
    #[error("state root mismatch: header says {expected}, execution gives {computed}")]
    StateRootMismatch {
        /// Hex of the header's root.
        expected: String,
        /// Hex of the computed root.
        computed: String,
    },
    /// The state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<StoreError> for BlockError {
    fn from(error: StoreError) -> Self {
        Self::State(StateError::Store(error))
    }
}

/// Applies one transaction whose signature was already checked: chain id, nonce, then payload.
pub fn apply_transaction(
    state: &mut Overlay,
    env: &Env,
    transaction: &SignedTransaction,
) -> Result<(), TxError> {
    let tx = &transaction.transaction;
    if tx.chain_id != env.chain_id {
        return Err(TxError::WrongChainId {
            expected: env.chain_id,
            got: tx.chain_id,
        });
    }
    let sender = tx.sender();
    let mut account = account::load(state, &sender)?;
    if tx.nonce < account.nonce {
        return Err(TxError::NonceReused {
            expected: account.nonce,
            got: tx.nonce,
        });
    }
    if tx.nonce > account.nonce {
        return Err(TxError::NonceSkipped {
            expected: account.nonce,
            got: tx.nonce,
        });
    }
    account.nonce = account
        .nonce
        .checked_add(1)
        .ok_or(TxError::Overflow("nonce"))?;
    account::save(state, &sender, &account);
    apply_payload(state, env, (&sender, &tx.signer), &tx.payload)
}

fn apply_payload(
    state: &mut Overlay,
    env: &Env,
    (sender, signer): (&Address, &[u8; 32]),
    payload: &Payload,
) -> Result<(), TxError> {
    match payload {
        Payload::Transfer { to, amount } => account::transfer(state, sender, to, *amount),
        Payload::Bond { amount } => staking::bond(state, sender, *amount),
        Payload::Unbond { amount } => staking::unbond(state, env, sender, *amount),
        Payload::Burn { amount } => account::burn(state, sender, *amount),
        // The consensus key is the signer's own: nobody stands with a key it cannot sign with.
        Payload::Candidacy { stake } => validators::candidacy(state, env, sender, signer, *stake),
        Payload::CreateTask { spec } => lifecycle::create(state, env, sender, spec).map(|_| ()),
        Payload::JoinTask { task, role, bond } => {
            lifecycle::join(state, env, sender, *task, *role, *bond)
        }
        Payload::StartTask { task } => lifecycle::start(state, env, sender, *task),
        Payload::CancelTask { task } => lifecycle::cancel(state, sender, *task),
        Payload::CommitUpdate {
            task,
            round,
            commitment,
            trace_root,
        } => participation::commit_update(
            state,
            env,
            sender,
            (*task, *round),
            *commitment,
            *trace_root,
        ),
        Payload::RevealUpdate {
            task,
            round,
            update_hash,
            salt,
            last,
            proof,
        } => participation::reveal_update(
            state,
            env,
            sender,
            (*task, *round),
            (*update_hash, *salt),
            last,
            proof,
        ),
        Payload::VoteAvailability { task, round, held } => {
            participation::vote_availability(state, env, sender, (*task, *round), held)
        }
        Payload::CommitAttestation {
            task,
            round,
            commitment,
        } => participation::commit_attestation(state, env, sender, (*task, *round), *commitment),
        Payload::RevealAttestation {
            task,
            round,
            model_hash,
            scores,
            salt,
        } => participation::reveal_attestation(
            state,
            env,
            sender,
            (*task, *round),
            *model_hash,
            scores,
            *salt,
        ),
        Payload::ListDataset {
            content_hash,
            schema,
            licence,
            price,
        } => dataset::list(state, sender, content_hash, schema, licence, *price),
        Payload::BuyAccess { dataset } => dataset::buy(state, env, sender, dataset),
        Payload::ReportAudit {
            task,
            round,
            trainer,
        } => audit::report(state, env, sender, (*task, *round), trainer),
        Payload::Challenge {
            task,
            round,
            trainer,
            trace_root,
        } => dispute::open(state, env, sender, (*task, *round), trainer, trace_root),
        Payload::DisputeClaim {
            dispute,
            checkpoint,
            proof,
        } => dispute::claim(state, env, sender, *dispute, checkpoint, proof),
        Payload::DisputeAnswer { dispute, agree } => {
            dispute::answer(state, env, sender, *dispute, *agree)
        }
        Payload::DisputeWitness {
            dispute,
            offset,
            bytes,
        } => dispute::witness(state, env, sender, *dispute, *offset, bytes),
    }
}

/// Runs the events scheduled for `env.height` (before the block's transactions).
pub fn run_scheduled(state: &mut Overlay, env: &Env) -> Result<(), BlockError> {
    let events = schedule::take(state, env.height)?;
    for event in events {
        let result = match &event {
            Event::CloseRound { task, round } => settlement::close_round(state, env, *task, *round),
            Event::ReleaseUnbond { address, due } => staking::release(state, address, *due),
            Event::ReleaseAccess { dataset, buyer } => dataset::release(state, dataset, buyer),
            Event::DrawAudits { task, round } => audit::draw(state, env, *task, *round),
            Event::VestRound { task, round } => vesting::vest_round(state, env, *task, *round),
            Event::DisputeDeadline { dispute, moves } => {
                dispute::deadline(state, env, *dispute, *moves)
            }
            Event::SettleTask { task } => vesting::settle_task(state, env, *task),
        };
        result.map_err(|error| BlockError::Event {
            event: Box::new(event),
            error: Box::new(error),
        })?;
    }
    Ok(())
}

/// Whether `transaction` would execute as the first transaction of the block after `parent`,
/// whose state is `state` (that block's scheduled events run first): `Ok(None)` if it would,
/// `Ok(Some(error))` with the error it would be refused with. What a sender asks of its oldest
/// pending transaction before waiting longer for a block to include it; its signature is not
/// checked (the sender signed it).
pub fn check_next(
    state: &dyn StateRead,
    parent: &Header,
    transaction: &SignedTransaction,
    datasets: &Arc<DatasetRegistry>,
) -> Result<Option<TxError>, BlockError> {
    let env = Env::after(state, parent, datasets)?;
    let mut overlay = Overlay::new(state);
    run_scheduled(&mut overlay, &env)?;
    let mut nested = Overlay::new(&overlay);
    Ok(apply_transaction(&mut nested, &env, transaction).err())
}

/// Checks every signature of a block with [`SignedTransaction::verify`] (`verify_strict`), in
/// parallel; the error names the first bad one.
///
/// Why not batch verification: ed25519 batch verification is cofactorless with random
/// coefficients, so it accepts some signatures whose `R` carries a small-order component that
/// `verify_strict` rejects, with a probability that depends on the other signatures in the
/// batch. Block validity must not depend on a block's other transactions, and must agree with
/// what `build_block` and the mempool accept, so each signature is checked on its own.
pub fn verify_signatures(transactions: &[SignedTransaction]) -> Result<(), BlockError> {
    let valid: Vec<bool> = transactions
        .par_iter()
        .map(SignedTransaction::verify)
        .collect();
    match valid.iter().position(|ok| !ok) {
        None => Ok(()),
        Some(index) => Err(BlockError::Transaction {
            index,
            error: TxError::BadSignature,
        }),
    }
}

/// Executes `block` on top of `state`, whose last block is `parent`; returns the changes.
/// Does not check `block.header.state_root` (the caller compares it with the store's root).
pub fn execute_block(
    state: &dyn StateRead,
    parent: &Header,
    block: &Block,
    datasets: &Arc<DatasetRegistry>,
) -> Result<ChangeSet, BlockError> {
    let env = Env::after(state, parent, datasets)?;
    let header = &block.header;
    if header.chain_id != env.chain_id {
        return Err(BlockError::WrongChainId {
            expected: env.chain_id,
            got: header.chain_id,
        });
    }
    if header.height != env.height {
        return Err(BlockError::WrongHeight {
            expected: env.height,
            got: header.height,
        });
    }
    if header.parent != env.parent {
        return Err(BlockError::WrongParent);
    }
    if block.transactions.len() > MAX_TRANSACTIONS_PER_BLOCK {
        return Err(BlockError::TooManyTransactions(block.transactions.len()));
    }
    if transactions_root(&block.transactions) != header.transactions_root {
        return Err(BlockError::TransactionsRootMismatch);
    }
    for (index, transaction) in block.transactions.iter().enumerate() {
        if transaction.transaction.chain_id != env.chain_id {
            let error = TxError::WrongChainId {
                expected: env.chain_id,
                got: transaction.transaction.chain_id,
            };
            return Err(BlockError::Transaction { index, error });
        }
    }
    verify_signatures(&block.transactions)?;

    let mut overlay = Overlay::new(state);
    run_scheduled(&mut overlay, &env)?;
    for (index, transaction) in block.transactions.iter().enumerate() {
        let mut nested = Overlay::new(&overlay);
        apply_transaction(&mut nested, &env, transaction)
            .map_err(|error| BlockError::Transaction { index, error })?;
        let changes = nested.into_changes();
        overlay.merge(changes);
    }
    validators::rotate(&mut overlay, &env)
        .map_err(|error| BlockError::EpochEnd(Box::new(error)))?;
    Ok(overlay.into_changes())
}

/// A block a proposer assembled, with the candidates it left out and why.
#[derive(Debug)]
pub struct Proposal {
    /// The block's transactions, in order (its header is filled in by the caller).
    pub transactions: Vec<SignedTransaction>,
    /// The state changes of the block.
    pub changes: ChangeSet,
    /// Candidates dropped: their position among the candidates and their error.
    pub rejected: Vec<(usize, TxError)>,
}

/// Assembles a block from candidates: runs the scheduled events, then keeps each candidate that
/// verifies and applies (in order) and drops the rest, up to the block size limit.
pub fn build_block(
    state: &dyn StateRead,
    parent: &Header,
    candidates: Vec<SignedTransaction>,
    datasets: &Arc<DatasetRegistry>,
) -> Result<Proposal, BlockError> {
    let env = Env::after(state, parent, datasets)?;
    let mut overlay = Overlay::new(state);
    run_scheduled(&mut overlay, &env)?;
    let mut transactions = Vec::new();
    let mut rejected = Vec::new();
    for (index, transaction) in candidates.into_iter().enumerate() {
        if transactions.len() == MAX_TRANSACTIONS_PER_BLOCK {
            break;
        }
        if !transaction.verify() {
            rejected.push((index, TxError::BadSignature));
            continue;
        }
        let mut nested = Overlay::new(&overlay);
        match apply_transaction(&mut nested, &env, &transaction) {
            Ok(()) => {
                let changes = nested.into_changes();
                overlay.merge(changes);
                transactions.push(transaction);
            }
            Err(error) => {
                tracing::debug!(index, %error, "candidate transaction dropped");
                rejected.push((index, error));
            }
        }
    }
    validators::rotate(&mut overlay, &env)
        .map_err(|error| BlockError::EpochEnd(Box::new(error)))?;
    Ok(Proposal {
        transactions,
        changes: overlay.into_changes(),
        rejected,
    })
}
