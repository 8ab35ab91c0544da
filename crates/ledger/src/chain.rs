//! A chain over a state store: writes genesis, proposes blocks, applies them and commits each
//! block's changes atomically with its record (the encoded block).

use std::sync::Arc;

use cairn_round::DatasetRegistry;
use commonware_codec::{Decode, Encode};

use crate::account::Account;
use crate::block::{transactions_root, Block, Header};
use crate::encoding::{to_hex, Hash, ZERO_HASH};
use crate::execute::{build_block, execute_block, BlockError, TxError};
use crate::genesis::{Genesis, GenesisError};
use crate::query;
use crate::staking::Stake;
use crate::state::{keys, StateError};
use crate::store::{ChangeSet, StateRead, StateStore, StoreError};
use crate::transaction::SignedTransaction;

/// Why a chain could not be opened, extended or started.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The genesis is invalid.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// A block was rejected.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Genesis was offered to a store that already has blocks.
    #[error("the store already holds blocks up to height {0}; genesis needs an empty store")]
    NotEmpty(u64),
    /// The store holds no block yet.
    #[error("the store holds no blocks; create the chain with a genesis first")]
    Empty,
    /// The chain serves a dataset this node does not hold.
    #[error("the chain's genesis names dataset {0}, which this node has not loaded; register it (the built-in ones load from data/)")]
    MissingDataset(String),
    /// The stored record of the tip block is missing or does not decode.
    #[error("the record of block {height} is missing or damaged: {reason}")]
    BadRecord {
        /// Height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
}

impl From<StateError> for ChainError {
    fn from(error: StateError) -> Self {
        Self::Block(BlockError::State(error))
    }
}

/// The state changes genesis writes.
pub fn genesis_changes(genesis: &Genesis) -> Result<ChangeSet, GenesisError> {
    let supply = genesis.validate()?;
    let mut changes = ChangeSet::new();
    let mut put = |key: Vec<u8>, value: Vec<u8>| {
        changes.insert(key, Some(value));
    };
    put(keys::CHAIN_ID.to_vec(), genesis.chain_id.encode().to_vec());
    put(keys::PARAMS.to_vec(), genesis.params.encode().to_vec());
    put(keys::SUPPLY.to_vec(), supply.encode().to_vec());
    for (address, balance) in &genesis.balances {
        if *balance > 0 {
            let account = Account {
                balance: *balance,
                nonce: 0,
            };
            put(keys::account(address), account.encode().to_vec());
        }
    }
    for (address, bonded) in &genesis.validators {
        let stake = Stake {
            bonded: *bonded,
            ..Stake::default()
        };
        put(keys::stake(address), stake.encode().to_vec());
    }
    put(
        keys::CONSENSUS_VALIDATORS.to_vec(),
        genesis.validators.encode().to_vec(),
    );
    put(
        keys::ROSTER.to_vec(),
        crate::validators::genesis_roster(&genesis.validators)
            .encode()
            .to_vec(),
    );
    put(keys::DATASETS.to_vec(), genesis.datasets.encode().to_vec());
    Ok(changes)
}

/// A ledger chain: the store, the header of its last block, and the datasets its tasks use.
pub struct Chain<S: StateStore> {
    store: S,
    tip: Header,
    datasets: Arc<DatasetRegistry>,
}

/// Checks that `registry` holds every dataset the chain at `state` serves.
pub fn check_datasets(state: &dyn StateRead, registry: &DatasetRegistry) -> Result<(), ChainError> {
    for hash in query::datasets(state)? {
        if registry.get(&hash).is_none() {
            return Err(ChainError::MissingDataset(to_hex(&hash)));
        }
    }
    Ok(())
}

impl<S: StateStore> Chain<S> {
    /// Starts a chain: commits `genesis` as block 0 of an empty store. `datasets` must hold
    /// every dataset the genesis names.
    pub fn create(
        mut store: S,
        genesis: &Genesis,
        datasets: Arc<DatasetRegistry>,
    ) -> Result<Self, ChainError> {
        if let Some(height) = store.height() {
            return Err(ChainError::NotEmpty(height));
        }
        if let Some(missing) = genesis.datasets.iter().find(|h| datasets.get(h).is_none()) {
            return Err(ChainError::MissingDataset(to_hex(missing)));
        }
        let changes = genesis_changes(genesis)?;
        let state_root = store.root_with(&changes)?;
        let block = Block {
            header: Header {
                chain_id: genesis.chain_id,
                height: 0,
                parent: ZERO_HASH,
                transactions_root: transactions_root(&[]),
                state_root,
            },
            transactions: Vec::new(),
        };
        // The record embeds the header, which embeds the root: the root must be known before the
        // commit, so genesis computes its tree twice (once per chain); the commit still checks it.
        store.commit_expecting(0, &changes, &block.encode(), &state_root)?;
        tracing::info!(chain_id = genesis.chain_id, root = %to_hex(&state_root), "genesis committed");
        Ok(Self {
            store,
            tip: block.header,
            datasets,
        })
    }

    /// Opens an existing chain at its last committed block; `datasets` must hold every dataset
    /// the chain serves.
    pub fn open(store: S, datasets: Arc<DatasetRegistry>) -> Result<Self, ChainError> {
        check_datasets(&store, &datasets)?;
        let height = store.height().ok_or(ChainError::Empty)?;
        let record = store
            .block_record(height)?
            .ok_or_else(|| ChainError::BadRecord {
                height,
                reason: "missing".into(),
            })?;
        let block = Block::decode_cfg(record, &()).map_err(|error| ChainError::BadRecord {
            height,
            reason: error.to_string(),
        })?;
        Ok(Self {
            store,
            tip: block.header,
            datasets,
        })
    }

    /// The datasets the chain's referee and task checks use.
    pub fn datasets(&self) -> &Arc<DatasetRegistry> {
        &self.datasets
    }

    /// The header of the last committed block.
    pub fn tip(&self) -> &Header {
        &self.tip
    }

    /// The underlying store (for queries and proofs).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives back the store.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Builds the next block from candidate transactions, leaving out invalid ones (returned
    /// with their errors), and fills in its header. Commits nothing.
    pub fn propose(
        &self,
        candidates: Vec<SignedTransaction>,
    ) -> Result<(Block, Vec<(usize, TxError)>), ChainError> {
        let proposal = build_block(&self.store, &self.tip, candidates, &self.datasets)?;
        let state_root = self.store.root_with(&proposal.changes)?;
        let header = Header {
            chain_id: self.tip.chain_id,
            height: self.tip.height + 1,
            parent: self.tip.hash(),
            transactions_root: transactions_root(&proposal.transactions),
            state_root,
        };
        let block = Block {
            header,
            transactions: proposal.transactions,
        };
        Ok((block, proposal.rejected))
    }

    /// Validates and executes `block`, checks its state root, and commits it. On any error the
    /// store is untouched.
    ///
    /// The root check happens inside the commit ([`StateStore::commit_expecting`]), so the state
    /// tree is updated once per block; a wrong header root is still
    /// [`BlockError::StateRootMismatch`].
    pub fn apply(&mut self, block: &Block) -> Result<Hash, ChainError> {
        let changes = execute_block(&self.store, &self.tip, block, &self.datasets)?;
        let root = self
            .store
            .commit_expecting(
                block.header.height,
                &changes,
                &block.encode(),
                &block.header.state_root,
            )
            .map_err(|error| match error {
                StoreError::RootMismatch { expected, computed } => {
                    ChainError::Block(BlockError::StateRootMismatch {
                        expected: to_hex(&expected),
                        computed: to_hex(&computed),
                    })
                }
                other => ChainError::Store(other),
            })?;
        self.tip = block.header.clone();
        tracing::debug!(
            height = block.header.height,
            transactions = block.transactions.len(),
            "block committed"
        );
        Ok(root)
    }

    /// Proposes a block from `candidates` and applies it; returns the block and the dropped ones.
    pub fn propose_and_apply(
        &mut self,
        candidates: Vec<SignedTransaction>,
    ) -> Result<(Block, Vec<(usize, TxError)>), ChainError> {
        let (block, rejected) = self.propose(candidates)?;
        self.apply(&block)?;
        Ok((block, rejected))
    }
}
