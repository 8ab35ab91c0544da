//! Datasets: owners list them (content hash, schema, licence, price); buyers pay for access into
//! an escrow that is released to the owner `access_escrow_blocks` later.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use serde::Serialize;

use crate::account;
use crate::address::Address;
use crate::encoding::{read_text, text_size, write_text, Hash, MAX_TEXT_BYTES};
use crate::execute::{Env, TxError};
use crate::schedule::{self, Event};
use crate::state::{keys, Overlay};

/// A dataset on sale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listing {
    /// Who listed it and is paid.
    pub owner: Address,
    /// Schema description.
    pub schema: String,
    /// Licence name.
    pub licence: String,
    /// Price of access in base units.
    pub price: u128,
    /// Accesses sold.
    pub sales: u64,
}

/// A buyer's access to a dataset, and the payment it escrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Access {
    /// Amount paid.
    pub paid: u128,
    /// Height at which the payment is released to the owner.
    pub release_at: u64,
    /// Whether the payment has reached the owner.
    pub released: bool,
}

/// Why a dataset operation was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatasetError {
    /// A dataset with this content hash is already listed.
    #[error("a dataset with this content hash is already listed")]
    AlreadyListed,
    /// No dataset has this content hash.
    #[error("no dataset with this content hash is listed")]
    UnknownDataset,
    /// The buyer already has access.
    #[error("{0} already bought access to this dataset")]
    AlreadyBought(Address),
    /// Owners do not buy their own datasets.
    #[error("the owner cannot buy access to its own dataset")]
    OwnerPurchase,
    /// Schema and licence must be named.
    #[error("schema and licence must be non-empty (at most {MAX_TEXT_BYTES} bytes)")]
    MissingDescription,
}

/// Lists a dataset.
pub fn list(
    state: &mut Overlay,
    owner: &Address,
    content_hash: &Hash,
    schema: &str,
    licence: &str,
    price: u128,
) -> Result<(), TxError> {
    if schema.is_empty() || licence.is_empty() {
        return Err(DatasetError::MissingDescription.into());
    }
    let key = keys::dataset(content_hash);
    if state.read::<Listing>(&key)?.is_some() {
        return Err(DatasetError::AlreadyListed.into());
    }
    let listing = Listing {
        owner: *owner,
        schema: schema.to_string(),
        licence: licence.to_string(),
        price,
        sales: 0,
    };
    state.write(key, &listing);
    Ok(())
}

/// Buys access: the price leaves the buyer's balance into escrow.
pub fn buy(
    state: &mut Overlay,
    env: &Env,
    buyer: &Address,
    content_hash: &Hash,
) -> Result<(), TxError> {
    let key = keys::dataset(content_hash);
    let mut listing: Listing = state.read(&key)?.ok_or(DatasetError::UnknownDataset)?;
    if listing.owner == *buyer {
        return Err(DatasetError::OwnerPurchase.into());
    }
    let access_key = keys::access(content_hash, buyer);
    if state.read::<Access>(&access_key)?.is_some() {
        return Err(DatasetError::AlreadyBought(*buyer).into());
    }
    account::debit(state, buyer, listing.price)?;
    let release_at = env
        .height
        .checked_add(env.params.access_escrow_blocks)
        .ok_or(TxError::Overflow("height"))?;
    state.write(
        access_key,
        &Access {
            paid: listing.price,
            release_at,
            released: false,
        },
    );
    listing.sales = listing.sales.saturating_add(1);
    state.write(key, &listing);
    schedule::push(
        state,
        release_at,
        &Event::ReleaseAccess {
            dataset: *content_hash,
            buyer: *buyer,
        },
    )
}

/// Releases an access payment to the dataset's owner (a scheduled event).
pub fn release(state: &mut Overlay, content_hash: &Hash, buyer: &Address) -> Result<(), TxError> {
    let listing: Listing = state
        .read(&keys::dataset(content_hash))?
        .ok_or(DatasetError::UnknownDataset)?;
    let access_key = keys::access(content_hash, buyer);
    let Some(mut access) = state.read::<Access>(&access_key)? else {
        return Ok(());
    };
    if access.released {
        return Ok(());
    }
    account::credit(state, &listing.owner, access.paid)?;
    access.released = true;
    state.write(access_key, &access);
    Ok(())
}

impl Write for Listing {
    fn write(&self, buf: &mut impl BufMut) {
        self.owner.write(buf);
        write_text(&self.schema, buf);
        write_text(&self.licence, buf);
        self.price.write(buf);
        self.sales.write(buf);
    }
}

impl EncodeSize for Listing {
    fn encode_size(&self) -> usize {
        20 + text_size(&self.schema) + text_size(&self.licence) + 16 + 8
    }
}

impl Read for Listing {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            owner: Address::read_cfg(buf, &())?,
            schema: read_text(buf)?,
            licence: read_text(buf)?,
            price: u128::read_cfg(buf, &())?,
            sales: u64::read_cfg(buf, &())?,
        })
    }
}

impl Write for Access {
    fn write(&self, buf: &mut impl BufMut) {
        self.paid.write(buf);
        self.release_at.write(buf);
        self.released.write(buf);
    }
}

impl commonware_codec::FixedSize for Access {
    const SIZE: usize = 16 + 8 + 1;
}

impl Read for Access {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            paid: u128::read_cfg(buf, &())?,
            release_at: u64::read_cfg(buf, &())?,
            released: bool::read_cfg(buf, &())?,
        })
    }
}
