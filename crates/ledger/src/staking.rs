//! Staking: bonding tokens, unbonding them after a delay, locking them into tasks, slashing.

use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, Write};
use serde::Serialize;

use crate::account;
use crate::address::Address;
use crate::execute::{Env, TxError};
use crate::genesis::SlashDestination;
use crate::schedule::{self, Event};
use crate::state::{keys, Overlay};

/// An account's stake. `locked` is the part of `bonded` held by tasks it joined; only the rest
/// can be unbonded. `unbonding` has left `bonded` and returns to the balance when its delay ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stake {
    /// Bonded base units, locked ones included.
    pub bonded: u128,
    /// Part of `bonded` locked by tasks.
    pub locked: u128,
    /// Base units on their way back to the balance.
    pub unbonding: u128,
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
}

/// Reads an account's stake (absent is zero).
pub fn load(state: &Overlay, address: &Address) -> Result<Stake, TxError> {
    Ok(state.read(&keys::stake(address))?.unwrap_or_default())
}

fn save(state: &mut Overlay, address: &Address, stake: &Stake) {
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
    stake.bonded -= amount;
    stake.unbonding = stake
        .unbonding
        .checked_add(amount)
        .ok_or(TxError::Overflow("unbonding stake"))?;
    save(state, address, &stake);
    let due = env
        .height
        .checked_add(env.params.unbond_delay)
        .ok_or(TxError::Overflow("height"))?;
    schedule::push(
        state,
        due,
        &Event::ReleaseUnbond {
            address: *address,
            amount,
        },
    )
}

/// Returns matured unbonding stake to the balance (a scheduled event).
pub fn release(state: &mut Overlay, address: &Address, amount: u128) -> Result<(), TxError> {
    let mut stake = load(state, address)?;
    stake.unbonding = stake
        .unbonding
        .checked_sub(amount)
        .ok_or(TxError::Overflow("unbonding stake"))?;
    save(state, address, &stake);
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

/// Slashes `amount` of an account's locked stake. The tokens are burned, or credited to
/// `challenger` when the parameters send slashes to challengers and one proved the fault.
pub fn slash_locked(
    state: &mut Overlay,
    env: &Env,
    address: &Address,
    amount: u128,
    challenger: Option<&Address>,
) -> Result<(), TxError> {
    if amount == 0 {
        return Ok(());
    }
    let mut stake = load(state, address)?;
    stake.locked = stake
        .locked
        .checked_sub(amount)
        .ok_or(TxError::Overflow("locked stake"))?;
    stake.bonded -= amount;
    save(state, address, &stake);
    match (env.params.slash_destination, challenger) {
        (SlashDestination::Challenger, Some(challenger)) => {
            account::credit(state, challenger, amount)
        }
        _ => account::retire(state, amount),
    }
}

impl Write for Stake {
    fn write(&self, buf: &mut impl BufMut) {
        self.bonded.write(buf);
        self.locked.write(buf);
        self.unbonding.write(buf);
    }
}

impl FixedSize for Stake {
    const SIZE: usize = 48;
}

impl Read for Stake {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let stake = Self {
            bonded: u128::read_cfg(buf, &())?,
            locked: u128::read_cfg(buf, &())?,
            unbonding: u128::read_cfg(buf, &())?,
        };
        if stake.locked > stake.bonded {
            return Err(CodecError::Invalid("Stake", "locked exceeds bonded"));
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
            ..Params::default()
        };
        let genesis = Genesis {
            chain_id: 1,
            params: params.clone(),
            balances: BTreeMap::from([(member, 1_000)]),
            validators: BTreeMap::from([(Address([9; 20]), 10)]),
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
        };
        (store, env, member, challenger)
    }

    #[test]
    fn slash_goes_to_the_challenger_when_the_parameter_says_so() {
        let (store, env, member, challenger) = setup(SlashDestination::Challenger);
        let mut state = Overlay::new(&store);
        bond(&mut state, &member, 500).unwrap();
        lock(&mut state, &member, 400).unwrap();
        slash_locked(&mut state, &env, &member, 100, Some(&challenger)).unwrap();
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
        slash_locked(&mut state, &env, &member, 100, Some(&challenger)).unwrap();
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
                amount: 100
            }]
        );
    }
}
