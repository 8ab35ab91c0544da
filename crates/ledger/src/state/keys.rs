//! State keys. Every record lives under a short ASCII prefix followed by fixed-width big-endian
//! ids, so keys of one kind sort by id and `iter_prefix` lists them in order.
//!
//! | key                                   | value                         |
//! |---------------------------------------|-------------------------------|
//! | `meta/chain`                          | chain id (u64)                |
//! | `meta/params`                         | [`crate::genesis::Params`]    |
//! | `meta/supply`                         | total supply (u128)           |
//! | `meta/next-task`                      | next task id (u64)            |
//! | `meta/next-dispute`                   | next dispute id (u64)         |
//! | `meta/datasets`                       | dataset hashes the chain serves |
//! | `meta/validators`                     | this epoch's validators and weights |
//! | `meta/roster`                         | [`crate::validators::Candidate`]s by address |
//! | `acct/` address                       | [`crate::account::Account`]   |
//! | `stake/` address                      | [`crate::staking::Stake`]     |
//! | `reward/` address                     | total rewards earned (u128)   |
//! | `task/` id                            | [`crate::task::Task`]         |
//! | `round/` task id, round               | [`crate::round::Round`]       |
//! | `model/` task id, round               | finalized model hash (32 bytes) |
//! | `dataset/` content hash               | [`crate::dataset::Listing`]   |
//! | `access/` content hash, buyer         | [`crate::dataset::Access`]    |
//! | `queue/` height                       | events due at that height     |
//! | `dispute/` id                         | [`crate::dispute::Dispute`]   |
//! | `witness/` dispute id, chunk number   | a chunk of a dispute witness  |
//! | `unbond/` address, due height         | stake unbonding until then (u128) |

use crate::address::Address;
use crate::encoding::Hash;

/// Chain id.
pub const CHAIN_ID: &[u8] = b"meta/chain";
/// Ledger parameters.
pub const PARAMS: &[u8] = b"meta/params";
/// Total token supply.
pub const SUPPLY: &[u8] = b"meta/supply";
/// Next task id.
pub const NEXT_TASK: &[u8] = b"meta/next-task";
/// Next dispute id.
pub const NEXT_DISPUTE: &[u8] = b"meta/next-dispute";
/// The dataset hashes tasks on this chain may name (fixed at genesis).
pub const DATASETS: &[u8] = b"meta/datasets";
/// The consensus validator set of the current epoch and each validator's weight (written at
/// genesis and at every epoch's last block, [`crate::validators::rotate`]): who votes in
/// consensus and may validate tasks, and with how much weight.
pub const CONSENSUS_VALIDATORS: &[u8] = b"meta/validators";
/// The roster: who stands for the next epochs' validator sets ([`crate::validators`]).
pub const ROSTER: &[u8] = b"meta/roster";

/// Prefix of account records.
pub const ACCOUNT_PREFIX: &[u8] = b"acct/";
/// Prefix of stake records.
pub const STAKE_PREFIX: &[u8] = b"stake/";
/// Prefix of reward totals.
pub const REWARD_PREFIX: &[u8] = b"reward/";
/// Prefix of task records.
pub const TASK_PREFIX: &[u8] = b"task/";
/// Prefix of round records.
pub const ROUND_PREFIX: &[u8] = b"round/";
/// Prefix of finalized model hashes.
pub const MODEL_PREFIX: &[u8] = b"model/";
/// Prefix of dataset listings.
pub const DATASET_PREFIX: &[u8] = b"dataset/";
/// Prefix of dataset access records.
pub const ACCESS_PREFIX: &[u8] = b"access/";
/// Prefix of scheduled events.
pub const QUEUE_PREFIX: &[u8] = b"queue/";
/// Prefix of disputes.
pub const DISPUTE_PREFIX: &[u8] = b"dispute/";
/// Prefix of witness chunks.
pub const WITNESS_PREFIX: &[u8] = b"witness/";
/// Prefix of unbonding entries.
pub const UNBOND_PREFIX: &[u8] = b"unbond/";

fn join(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>());
    key.extend_from_slice(prefix);
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

/// Key of an account.
pub fn account(address: &Address) -> Vec<u8> {
    join(ACCOUNT_PREFIX, &[address.as_bytes()])
}

/// Key of an account's stake.
pub fn stake(address: &Address) -> Vec<u8> {
    join(STAKE_PREFIX, &[address.as_bytes()])
}

/// Key of an account's reward total.
pub fn reward(address: &Address) -> Vec<u8> {
    join(REWARD_PREFIX, &[address.as_bytes()])
}

/// Key of a task.
pub fn task(id: u64) -> Vec<u8> {
    join(TASK_PREFIX, &[&id.to_be_bytes()])
}

/// Key of a round.
pub fn round(task: u64, round: u32) -> Vec<u8> {
    join(ROUND_PREFIX, &[&task.to_be_bytes(), &round.to_be_bytes()])
}

/// Key of a round's finalized model hash: what a light client asks a proof for.
pub fn model(task: u64, round: u32) -> Vec<u8> {
    join(MODEL_PREFIX, &[&task.to_be_bytes(), &round.to_be_bytes()])
}

/// Key of a dataset listing.
pub fn dataset(content_hash: &Hash) -> Vec<u8> {
    join(DATASET_PREFIX, &[content_hash])
}

/// Key of a buyer's access to a dataset.
pub fn access(content_hash: &Hash, buyer: &Address) -> Vec<u8> {
    join(ACCESS_PREFIX, &[content_hash, buyer.as_bytes()])
}

/// Key of the events due at a height.
pub fn queue(height: u64) -> Vec<u8> {
    join(QUEUE_PREFIX, &[&height.to_be_bytes()])
}

/// Key of a dispute.
pub fn dispute(id: u64) -> Vec<u8> {
    join(DISPUTE_PREFIX, &[&id.to_be_bytes()])
}

/// Key of chunk `chunk` of a dispute's witness.
pub fn witness_chunk(dispute: u64, chunk: u32) -> Vec<u8> {
    join(
        WITNESS_PREFIX,
        &[&dispute.to_be_bytes(), &chunk.to_be_bytes()],
    )
}

/// Key of an account's stake unbonding until `due`.
pub fn unbonding(address: &Address, due: u64) -> Vec<u8> {
    join(UNBOND_PREFIX, &[address.as_bytes(), &due.to_be_bytes()])
}

/// The address at the end of an `acct/`, `stake/` or `reward/` key.
pub fn address_suffix(key: &[u8], prefix: &[u8]) -> Option<Address> {
    let rest = key.strip_prefix(prefix)?;
    let bytes: [u8; 20] = rest.try_into().ok()?;
    Some(Address(bytes))
}
