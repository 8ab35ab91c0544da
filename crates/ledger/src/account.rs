//! Accounts and transfers: balances, nonces, and the total supply.

use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, Write};
use serde::Serialize;

use crate::address::Address;
use crate::execute::TxError;
use crate::state::{keys, Overlay};

/// An account as stored: its spendable balance and how many transactions it has sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Spendable base units.
    pub balance: u128,
    /// Nonce the account's next transaction must carry.
    pub nonce: u64,
}

/// Reads an account (an absent one is empty).
pub fn load(state: &Overlay, address: &Address) -> Result<Account, TxError> {
    Ok(state.read(&keys::account(address))?.unwrap_or_default())
}

/// Writes an account, deleting it when it is empty so state holds only live accounts.
pub fn save(state: &mut Overlay, address: &Address, account: &Account) {
    if *account == Account::default() {
        state.delete(keys::account(address));
    } else {
        state.write(keys::account(address), account);
    }
}

/// Takes `amount` from a balance.
pub fn debit(state: &mut Overlay, address: &Address, amount: u128) -> Result<(), TxError> {
    let mut account = load(state, address)?;
    account.balance = account
        .balance
        .checked_sub(amount)
        .ok_or(TxError::InsufficientBalance {
            needed: amount,
            available: account.balance,
        })?;
    save(state, address, &account);
    Ok(())
}

/// Adds `amount` to a balance.
pub fn credit(state: &mut Overlay, address: &Address, amount: u128) -> Result<(), TxError> {
    let mut account = load(state, address)?;
    account.balance = account
        .balance
        .checked_add(amount)
        .ok_or(TxError::Overflow("balance"))?;
    save(state, address, &account);
    Ok(())
}

/// Moves `amount` from `from` to `to`.
pub fn transfer(
    state: &mut Overlay,
    from: &Address,
    to: &Address,
    amount: u128,
) -> Result<(), TxError> {
    if amount == 0 {
        return Err(TxError::ZeroAmount);
    }
    debit(state, from, amount)?;
    credit(state, to, amount)
}

/// The total supply recorded in the state.
pub fn supply(state: &Overlay) -> Result<u128, TxError> {
    Ok(state.read(keys::SUPPLY)?.unwrap_or(0))
}

/// Destroys `amount` tokens that have already left every holding (balance, stake, escrow).
pub fn retire(state: &mut Overlay, amount: u128) -> Result<(), TxError> {
    let total = supply(state)?;
    let rest = total
        .checked_sub(amount)
        .ok_or(TxError::Overflow("supply"))?;
    state.write(keys::SUPPLY.to_vec(), &rest);
    Ok(())
}

/// Burns `amount` from the signer's balance.
pub fn burn(state: &mut Overlay, from: &Address, amount: u128) -> Result<(), TxError> {
    if amount == 0 {
        return Err(TxError::ZeroAmount);
    }
    debit(state, from, amount)?;
    retire(state, amount)
}

impl Write for Account {
    fn write(&self, buf: &mut impl BufMut) {
        self.balance.write(buf);
        self.nonce.write(buf);
    }
}

impl FixedSize for Account {
    const SIZE: usize = 16 + 8;
}

impl Read for Account {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            balance: u128::read_cfg(buf, &())?,
            nonce: u64::read_cfg(buf, &())?,
        })
    }
}
