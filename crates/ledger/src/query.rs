//! Read access to ledger state: balances, stakes, tasks, rounds, scores, rewards, datasets, and
//! a whole-state [`Snapshot`] for `cairn ledger inspect`.

use std::collections::{BTreeMap, BTreeSet};

use commonware_codec::{Decode, Read};
use serde::Serialize;

use crate::account::Account;
use crate::address::Address;
use crate::dataset::{Access, Listing};
use crate::dispute::Dispute;
use crate::encoding::{to_hex, Hash};
use crate::genesis::Params;
use crate::round::{Outcome, Round};
use crate::staking::Stake;
use crate::state::{keys, Overlay, StateError};
use crate::store::{StateRead, StateStore};
use crate::task::Task;

fn read<T: Read<Cfg = ()>>(state: &dyn StateRead, key: &[u8]) -> Result<Option<T>, StateError> {
    Overlay::new(state).read(key)
}

/// An account's spendable balance.
pub fn balance(state: &dyn StateRead, address: &Address) -> Result<u128, StateError> {
    Ok(account(state, address)?.balance)
}

/// An account (balance and nonce); empty when absent.
pub fn account(state: &dyn StateRead, address: &Address) -> Result<Account, StateError> {
    Ok(read(state, &keys::account(address))?.unwrap_or_default())
}

/// An account's stake; zero when absent.
pub fn stake(state: &dyn StateRead, address: &Address) -> Result<Stake, StateError> {
    Ok(read(state, &keys::stake(address))?.unwrap_or_default())
}

/// Total rewards an account has earned from rounds.
pub fn rewards(state: &dyn StateRead, address: &Address) -> Result<u128, StateError> {
    Ok(read(state, &keys::reward(address))?.unwrap_or(0))
}

/// The total supply.
pub fn supply(state: &dyn StateRead) -> Result<u128, StateError> {
    Ok(read(state, keys::SUPPLY)?.unwrap_or(0))
}

/// The ledger parameters.
pub fn params(state: &dyn StateRead) -> Result<Params, StateError> {
    Ok(read(state, keys::PARAMS)?.unwrap_or_default())
}

/// A task, if it exists.
pub fn task(state: &dyn StateRead, id: u64) -> Result<Option<Task>, StateError> {
    read(state, &keys::task(id))
}

/// A round of a task, if it was opened.
pub fn round(state: &dyn StateRead, task: u64, number: u32) -> Result<Option<Round>, StateError> {
    read(state, &keys::round(task, number))
}

/// With worker momentum: the hash of the vector `trainer` carries into round `number` of
/// `task`, i.e. the update it revealed in round `number − 1` if that update counted there
/// (`Round::counts`); `None` in round 0, or when it was not counted (it then starts afresh).
/// The trainer, its auditors and the referee all take the carried vector from here.
pub fn carried(
    state: &dyn StateRead,
    task: u64,
    number: u32,
    trainer: &Address,
) -> Result<Option<Hash>, StateError> {
    let Some(previous) = number.checked_sub(1) else {
        return Ok(None);
    };
    Ok(round(state, task, previous)?.and_then(|record| {
        if !record.counts(trainer) {
            return None;
        }
        record.commits.get(trainer)?.update_hash
    }))
}

/// The finalized model hash of a round, if it finalized.
pub fn model_hash(
    state: &dyn StateRead,
    task: u64,
    number: u32,
) -> Result<Option<Hash>, StateError> {
    read(state, &keys::model(task, number))
}

/// Consensus scores of a finalized round (empty otherwise).
pub fn scores(
    state: &dyn StateRead,
    task: u64,
    number: u32,
) -> Result<BTreeMap<Address, u32>, StateError> {
    Ok(match round(state, task, number)?.and_then(|r| r.outcome) {
        Some(Outcome::Finalized { scores, .. }) => scores,
        _ => BTreeMap::new(),
    })
}

/// A dispute, if it exists.
pub fn dispute(state: &dyn StateRead, id: u64) -> Result<Option<Dispute>, StateError> {
    read(state, &keys::dispute(id))
}

/// The content hashes of the datasets the chain serves (fixed at genesis).
pub fn datasets(state: &dyn StateRead) -> Result<BTreeSet<Hash>, StateError> {
    Ok(Overlay::new(state)
        .read_cfg(
            keys::DATASETS,
            &(
                commonware_codec::RangeCfg::new(..=crate::genesis::MAX_DATASETS),
                (),
            ),
        )?
        .unwrap_or_default())
}

/// The consensus validator set: each validator's weight (its genesis stake). Only these may
/// validate tasks, each with at most this weight (`crate::lifecycle::join`).
pub fn consensus_validators(state: &dyn StateRead) -> Result<BTreeMap<Address, u128>, StateError> {
    Ok(Overlay::new(state)
        .read_cfg(
            keys::CONSENSUS_VALIDATORS,
            &(
                commonware_codec::RangeCfg::new(..=crate::genesis::MAX_GENESIS_ACCOUNTS),
                ((), ()),
            ),
        )?
        .unwrap_or_default())
}

/// A dataset listing, if listed.
pub fn dataset(state: &dyn StateRead, content_hash: &Hash) -> Result<Option<Listing>, StateError> {
    read(state, &keys::dataset(content_hash))
}

/// Decodes every record under `prefix`, with its key.
fn scan<T: Read<Cfg = ()>>(
    store: &dyn StateStore,
    prefix: &[u8],
) -> Result<Vec<(Vec<u8>, T)>, StateError> {
    store
        .iter_prefix(prefix)?
        .into_iter()
        .map(|(key, value)| {
            T::decode_cfg(value, &())
                .map(|record| (key.clone(), record))
                .map_err(|error| StateError::Corrupt {
                    key: to_hex(&key),
                    reason: error.to_string(),
                })
        })
        .collect()
}

fn by_address<T: Read<Cfg = ()>>(
    store: &dyn StateStore,
    prefix: &[u8],
) -> Result<BTreeMap<Address, T>, StateError> {
    Ok(scan::<T>(store, prefix)?
        .into_iter()
        .filter_map(|(key, record)| Some((keys::address_suffix(&key, prefix)?, record)))
        .collect())
}

/// A dataset listing with its content hash.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetEntry {
    /// Hex content hash.
    pub content_hash: String,
    /// The listing.
    pub listing: Listing,
}

/// Everything in the ledger state, decoded (for inspection and tests).
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// Last committed height.
    pub height: Option<u64>,
    /// Hex state root.
    pub state_root: String,
    /// Chain id.
    pub chain_id: u64,
    /// Total supply.
    pub supply: u128,
    /// Parameters.
    pub params: Params,
    /// The consensus validator set and its weights.
    pub consensus_validators: BTreeMap<Address, u128>,
    /// Who stands for the next epochs' sets.
    pub roster: BTreeMap<Address, crate::validators::Candidate>,
    /// Accounts.
    pub accounts: BTreeMap<Address, Account>,
    /// Stakes.
    pub stakes: BTreeMap<Address, Stake>,
    /// Reward totals.
    pub rewards: BTreeMap<Address, u128>,
    /// Tasks, by id.
    pub tasks: Vec<Task>,
    /// Rounds of every task.
    pub rounds: Vec<Round>,
    /// Disputes, by id.
    pub disputes: Vec<Dispute>,
    /// Dataset listings.
    pub datasets: Vec<DatasetEntry>,
    /// Dataset payments still in escrow.
    pub access_escrow: u128,
}

impl Snapshot {
    /// Reads the whole state of `store`.
    pub fn read<S: StateStore>(store: &S) -> Result<Self, StateError> {
        let state: &dyn StateRead = store;
        let datasets = scan::<Listing>(store, keys::DATASET_PREFIX)?
            .into_iter()
            .map(|(key, listing)| DatasetEntry {
                content_hash: to_hex(&key[keys::DATASET_PREFIX.len()..]),
                listing,
            })
            .collect();
        let access_escrow = scan::<Access>(store, keys::ACCESS_PREFIX)?
            .into_iter()
            .filter(|(_, access)| !access.released)
            .try_fold(0u128, |sum, (_, access)| sum.checked_add(access.paid))
            .ok_or(StateError::Overflow {
                what: "dataset payments in escrow",
            })?;
        Ok(Self {
            height: store.height(),
            state_root: to_hex(&store.root()),
            chain_id: read(state, keys::CHAIN_ID)?.unwrap_or(0),
            supply: supply(state)?,
            params: params(state)?,
            consensus_validators: consensus_validators(state)?,
            roster: crate::validators::roster(state)?,
            accounts: by_address(store, keys::ACCOUNT_PREFIX)?,
            stakes: by_address(store, keys::STAKE_PREFIX)?,
            rewards: by_address(store, keys::REWARD_PREFIX)?,
            tasks: scan::<Task>(store, keys::TASK_PREFIX)?
                .into_iter()
                .map(|(_, task)| task)
                .collect(),
            rounds: scan::<Round>(store, keys::ROUND_PREFIX)?
                .into_iter()
                .map(|(_, round)| round)
                .collect(),
            disputes: scan::<Dispute>(store, keys::DISPUTE_PREFIX)?
                .into_iter()
                .map(|(_, dispute)| dispute)
                .collect(),
            datasets,
            access_escrow,
        })
    }

    /// Every token the state accounts for: balances, stakes (bonded and unbonding), task escrows
    /// and dataset escrows. Equals [`Snapshot::supply`] in every valid state.
    pub fn holdings(&self) -> Option<u128> {
        let balances = self.accounts.values().map(|a| a.balance);
        let stakes = self.stakes.values().flat_map(|s| [s.bonded, s.unbonding]);
        let escrows = self.tasks.iter().map(|t| t.escrow);
        balances
            .chain(stakes)
            .chain(escrows)
            .chain([self.access_escrow])
            .try_fold(0u128, |sum, amount| sum.checked_add(amount))
    }
}

#[cfg(test)]
mod tests {
    use commonware_codec::Encode;

    use super::*;
    use crate::store::{ChangeSet, MemoryStore};

    #[test]
    fn escrowed_payments_summing_past_u128_max_are_a_typed_error_not_a_panic() {
        let access = Access {
            paid: u128::MAX,
            release_at: 5,
            released: false,
        };
        let mut changes = ChangeSet::new();
        for buyer in [1u8, 2] {
            let key = keys::access(&[7; 32], &Address([buyer; 20]));
            changes.insert(key, Some(access.encode().to_vec()));
        }
        let mut store = MemoryStore::new();
        store.commit(0, &changes, b"").expect("commit");
        let error = Snapshot::read(&store).expect_err("the sum overflows");
        assert!(
            matches!(error, StateError::Overflow { what } if what.contains("escrow")),
            "{error:?}"
        );
    }
}
