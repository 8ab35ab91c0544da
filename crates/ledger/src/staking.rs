//! Staking: bonding tokens, unbonding them after a delay, locking them into tasks, slashing.
//!
//! Stake that is unbonding stays slashable for offences committed before its unbonding began:
//! [`slash`] takes from the locked task bond first and then from unbonding entries that started
//! at or after the offence, newest first, so leaving cannot outrun a penalty.

use std::collections::BTreeMap;

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, Write};
use serde::Serialize;

use crate::account;
use crate::address::Address;
use crate::execute::{Env, TxError};
use crate::genesis::SlashDestination;
use crate::schedule::{self, Event};
use crate::state::{keys, Overlay};

/// Most unbonding entries (distinct release heights) an account may have at once.
pub const MAX_UNBONDING_ENTRIES: usize = 64;

/// An account's stake. `locked` is the part of `bonded` held by tasks it joined (and by disputes
/// it opened); only the rest can be unbonded. `unbonding` has left `bonded` and returns to the
/// balance when its delay ends; `unbonding_until` says how much at which height.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stake {
    /// Bonded base units, locked ones included.
    pub bonded: u128,
    /// Part of `bonded` locked by tasks.
    pub locked: u128,
    /// Base units on their way back to the balance (the sum of `unbonding_until`).
    pub unbonding: u128,
    /// Unbonding amounts by the height they return at.
    pub unbonding_until: BTreeMap<u64, u128>,
}

impl Stake {
    /// Bonded stake not locked by any task.
    pub fn free(&self) -> u128 {
        self.bonded - self.locked
    }
}

/// Why a staking operation was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StakingError {
    /// Not enough bonded stake outside task locks.
    #[error("only {available} bonded base units are free (not locked by tasks); {needed} needed")]
    InsufficientFreeStake {
        /// Requested.
        needed: u128,
        /// Free bonded stake.
        available: u128,
    },
    /// The account already has the most unbonding entries it may have.
    #[error(
        "the account already has {MAX_UNBONDING_ENTRIES} unbonding entries; wait for one to end"
    )]
    TooManyUnbonding,
}

/// Reads an account's stake (absent is zero).
pub fn load(state: &Overlay, address: &Address) -> Result<Stake, TxError> {
    Ok(state.read(&keys::stake(address))?.unwrap_or_default())
}

fn save(state: &mut Overlay, address: &Address, stake: &Stake) {
    debug_assert_eq!(
        stake.unbonding,
        stake.unbonding_until.values().sum::<u128>()
    );
    debug_assert!(stake.locked <= stake.bonded);
    if *stake == Stake::default() {
        state.delete(keys::stake(address));
    } else {
        state.write(keys::stake(address), stake);
    }
}

/// Moves `amount` from the balance into bonded stake.
pub fn bond(state: &mut Overlay, address: &Address, amount: u128) -> Result<(), TxError> {
    if amount == 0 {
        return Err(TxError::ZeroAmount);
    }
    account::debit(state, address, amount)?;
    let mut stake = load(state, address)?;
    stake.bonded = stake
        .bonded
        .checked_add(amount)
        .ok_or(TxError::Overflow("bonded stake"))?;
    save(state, address, &stake);
    Ok(())
}

/// Starts unbonding `amount` of free stake; it returns to the balance `unbond_delay` blocks later.
pub fn unbond(
    state: &mut Overlay,
    env: &Env,
    address: &Address,
    amount: u128,
) -> Result<(), TxError> {
    if amount == 0 {
        return Err(TxError::ZeroAmount);
    }
    let mut stake = load(state, address)?;
    if stake.free() < amount {
        return Err(StakingError::InsufficientFreeStake {
            needed: amount,
            available: stake.free(),
        }
        .into());
    }
    let due = env
        .height
        .checked_add(env.params.unbond_delay)
        .ok_or(TxError::Overflow("height"))?;
    let fresh = !stake.unbonding_until.contains_key(&due);
    if fresh && stake.unbonding_until.len() >= MAX_UNBONDING_ENTRIES {
        return Err(StakingError::TooManyUnbonding.into());
    }
    stake.bonded -= amount;
    stake.unbonding = stake
        .unbonding
        .checked_add(amount)
        .ok_or(TxError::Overflow("unbonding stake"))?;
    *stake.unbonding_until.entry(due).or_default() += amount;
    save(state, address, &stake);
    if fresh {
        schedule::push(
            state,
            due,
            &Event::ReleaseUnbond {
                address: *address,
                due,
            },
        )?;
    }
    Ok(())
}

/// Returns what is left of the stake unbonding until `due` to the balance (a scheduled event).
pub fn release(state: &mut Overlay, address: &Address, due: u64) -> Result<(), TxError> {
    let mut stake = load(state, address)?;
    let amount = stake.unbonding_until.remove(&due).unwrap_or(0);
    stake.unbonding = stake
        .unbonding
        .checked_sub(amount)
        .ok_or(TxError::Overflow("unbonding stake"))?;
    save(state, address, &stake);
    if amount == 0 {
        return Ok(());
    }
    account::credit(state, address, amount)
}

/// Locks `amount` of free stake for a task.
pub fn lock(state: &mut Overlay, address: &Address, amount: u128) -> Result<(), TxError> {
    let mut stake = load(state, address)?;
    if stake.free() < amount {
        return Err(StakingError::InsufficientFreeStake {
            needed: amount,
            available: stake.free(),
        }
        .into());
    }
    stake.locked += amount;
    save(state, address, &stake);
    Ok(())
}

/// Releases a task's lock on `amount` of stake.
pub fn unlock(state: &mut Overlay, address: &Address, amount: u128) -> Result<(), TxError> {
    let mut stake = load(state, address)?;
    stake.locked = stake
        .locked
        .checked_sub(amount)
        .ok_or(TxError::Overflow("locked stake"))?;
    save(state, address, &stake);
    Ok(())
}

/// Slashes up to `amount` of an account's stake for an offence committed at height `offence`:
/// first from its locked stake, then from stake that started unbonding at or after `offence`
/// (newest first). The tokens are burned, or credited to `challenger` when the parameters send
/// slashes to challengers and one proved the fault. Returns what was taken.
pub fn slash(
    state: &mut Overlay,
    env: &Env,
    address: &Address,
    amount: u128,
    offence: u64,
    challenger: Option<&Address>,
) -> Result<u128, TxError> {
    if amount == 0 {
        return Ok(0);
    }
    let mut stake = load(state, address)?;
    let from_locked = amount.min(stake.locked);
    stake.locked -= from_locked;
    stake.bonded -= from_locked;
    let mut taken = from_locked;
    let started = |due: u64| due.saturating_sub(env.params.unbond_delay);
    let entries: Vec<u64> = stake
        .unbonding_until
        .keys()
        .rev()
        .copied()
        .filter(|due| started(*due) >= offence)
        .collect();
    for due in entries {
        if taken == amount {
            break;
        }
        let Some(entry) = stake.unbonding_until.get_mut(&due) else {
            continue;
        };
        let part = (amount - taken).min(*entry);
        *entry -= part;
        if *entry == 0 {
            stake.unbonding_until.remove(&due);
        }
        stake.unbonding -= part;
        taken += part;
    }
    save(state, address, &stake);
    match (env.params.slash_destination, challenger) {
        (SlashDestination::Challenger, Some(challenger)) => {
            account::credit(state, challenger, taken)?
        }
        _ => account::retire(state, taken)?,
    }
    Ok(taken)
}

/// Moves `amount` of an account's locked stake to another account's balance: a wrong
/// challenger's bond goes to the trainer it challenged, whatever the slash destination.
pub fn forfeit_locked(
    state: &mut Overlay,
    from: &Address,
    amount: u128,
    to: &Address,
) -> Result<(), TxError> {
    if amount == 0 {
        return Ok(());
    }
    let mut stake = load(state, from)?;
    stake.locked = stake
        .locked
        .checked_sub(amount)
        .ok_or(TxError::Overflow("locked stake"))?;
    stake.bonded -= amount;
    save(state, from, &stake);
    account::credit(state, to, amount)
}

impl Write for Stake {
    fn write(&self, buf: &mut impl BufMut) {
        self.bonded.write(buf);
        self.locked.write(buf);
        self.unbonding.write(buf);
        self.unbonding_until.write(buf);
    }
}

impl EncodeSize for Stake {
    fn encode_size(&self) -> usize {
        48 + self.unbonding_until.encode_size()
    }
}

impl Read for Stake {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let stake = Self {
            bonded: u128::read_cfg(buf, &())?,
            locked: u128::read_cfg(buf, &())?,
            unbonding: u128::read_cfg(buf, &())?,
            unbonding_until: BTreeMap::read_cfg(
                buf,
                &(RangeCfg::new(..=MAX_UNBONDING_ENTRIES), ((), ())),
            )?,
        };
        if stake.locked > stake.bonded {
            return Err(CodecError::Invalid("Stake", "locked exceeds bonded"));
        }
        let entries = stake
            .unbonding_until
            .values()
            .try_fold(0u128, |sum, v| sum.checked_add(*v));
        if entries != Some(stake.unbonding) {
            return Err(CodecError::Invalid(
                "Stake",
                "unbonding entries do not add up",
            ));
        }
        Ok(stake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::genesis_changes;
    use crate::genesis::{Genesis, Params};
    use crate::store::MemoryStore;
    use std::collections::BTreeMap;

    fn setup(destination: SlashDestination) -> (MemoryStore, Env, Address, Address) {
        let (member, challenger) = (Address([1; 20]), Address([2; 20]));
        let params = Params {
            slash_destination: destination,
            min_bond: 10,
            ..Params::default()
        };
        let genesis = Genesis {
            chain_id: 1,
            params: params.clone(),
            balances: BTreeMap::from([(member, 1_000)]),
            validators: BTreeMap::from([(Address([9; 20]), 10)]),
            datasets: Default::default(),
        };
        let mut store = MemoryStore::new();
        store
            .commit(0, &genesis_changes(&genesis).unwrap(), b"")
            .unwrap();
        let env = Env {
            chain_id: 1,
            height: 1,
            parent: [0; 32],
            params,
            datasets: Default::default(),
        };
        (store, env, member, challenger)
    }

    #[test]
    fn slash_goes_to_the_challenger_when_the_parameter_says_so() {
        let (store, env, member, challenger) = setup(SlashDestination::Challenger);
        let mut state = Overlay::new(&store);
        bond(&mut state, &member, 500).unwrap();
        lock(&mut state, &member, 400).unwrap();
        assert_eq!(
            slash(&mut state, &env, &member, 100, 0, Some(&challenger)).unwrap(),
            100
        );
        let stake = load(&state, &member).unwrap();
        assert_eq!((stake.bonded, stake.locked), (400, 300));
        assert_eq!(account::load(&state, &challenger).unwrap().balance, 100);
        assert_eq!(account::supply(&state).unwrap(), 1_010);
    }

    #[test]
    fn slash_is_burned_when_the_parameter_says_burn() {
        let (store, env, member, challenger) = setup(SlashDestination::Burn);
        let mut state = Overlay::new(&store);
        bond(&mut state, &member, 500).unwrap();
        lock(&mut state, &member, 400).unwrap();
        slash(&mut state, &env, &member, 100, 0, Some(&challenger)).unwrap();
        assert_eq!(account::load(&state, &challenger).unwrap().balance, 0);
        assert_eq!(account::supply(&state).unwrap(), 910);
    }

    #[test]
    fn locked_stake_cannot_be_unbonded_and_free_stake_waits_for_the_delay() {
        let (store, env, member, _) = setup(SlashDestination::Burn);
        let mut state = Overlay::new(&store);
        bond(&mut state, &member, 500).unwrap();
        lock(&mut state, &member, 400).unwrap();
        assert!(matches!(
            unbond(&mut state, &env, &member, 101),
            Err(TxError::Staking(StakingError::InsufficientFreeStake { .. }))
        ));
        unbond(&mut state, &env, &member, 100).unwrap();
        let due = env.height + env.params.unbond_delay;
        let events = schedule::take(&mut state, due).unwrap();
        assert_eq!(
            events,
            vec![Event::ReleaseUnbond {
                address: member,
                due
            }]
        );
        release(&mut state, &member, due).unwrap();
        assert_eq!(account::load(&state, &member).unwrap().balance, 600);
        assert_eq!(load(&state, &member).unwrap().unbonding, 0);
    }

    #[test]
    fn unbonding_stake_stays_slashable_for_earlier_offences_only() {
        let (store, mut env, member, challenger) = setup(SlashDestination::Challenger);
        let mut state = Overlay::new(&store);
        bond(&mut state, &member, 500).unwrap();
        lock(&mut state, &member, 100).unwrap();
        // The member unbonds 300 at height 10, after an offence at height 5.
        env.height = 10;
        unbond(&mut state, &env, &member, 300).unwrap();
        // A slash of 250 for the offence takes the 100 locked, then 150 of the unbonding stake.
        assert_eq!(
            slash(&mut state, &env, &member, 250, 5, Some(&challenger)).unwrap(),
            250
        );
        let stake = load(&state, &member).unwrap();
        assert_eq!((stake.bonded, stake.locked, stake.unbonding), (100, 0, 150));
        // An offence after the unbonding began cannot reach it.
        assert_eq!(slash(&mut state, &env, &member, 100, 11, None).unwrap(), 0);
        // The release pays out only what the slash left.
        let due = 10 + env.params.unbond_delay;
        release(&mut state, &member, due).unwrap();
        assert_eq!(account::load(&state, &member).unwrap().balance, 500 + 150);
        assert_eq!(account::load(&state, &challenger).unwrap().balance, 250);
        assert_eq!(account::supply(&state).unwrap(), 1_010);
    }

    #[test]
    fn a_wrong_challengers_bond_goes_to_the_trainer() {
        let (store, _, member, challenger) = setup(SlashDestination::Burn);
        let mut state = Overlay::new(&store);
        bond(&mut state, &member, 500).unwrap();
        lock(&mut state, &member, 200).unwrap();
        forfeit_locked(&mut state, &member, 200, &challenger).unwrap();
        let stake = load(&state, &member).unwrap();
        assert_eq!((stake.bonded, stake.locked), (300, 0));
        assert_eq!(account::load(&state, &challenger).unwrap().balance, 200);
        assert_eq!(account::supply(&state).unwrap(), 1_010);
    }
}
