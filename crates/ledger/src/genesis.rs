//! Genesis: the chain id, the ledger's parameters, initial balances and initial validators.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, RangeCfg, Read, Write};
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::encoding::{Hash, PPM};

/// Most initial accounts (balances plus validators) a genesis may list.
pub const MAX_GENESIS_ACCOUNTS: usize = 1 << 20;

/// Most datasets a chain may serve.
pub const MAX_DATASETS: usize = 64;

/// The shortest epoch a chain may have (blocks).
pub const MIN_EPOCH_LENGTH: u64 = 4;

/// Where slashed tokens go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlashDestination {
    /// Slashed tokens leave the supply.
    Burn,
    /// Slashed tokens go to whoever proved the fault; burned when nobody did (e.g. a missed reveal).
    Challenger,
}

/// The rules every node must agree on; fixed at genesis and stored in the state. Read from a
/// chain file, a field left out takes its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Blocks between an unbond and the tokens returning to the balance.
    pub unbond_delay: u64,
    /// Fraction (ppm) of a member's task bond slashed, rounded up, for a commitment never
    /// revealed, an update served to nobody a second round in a row, a provably wrong
    /// attestation, a drawn audit left unreported, or a pass of work the referee proved wrong.
    pub slash_fraction_ppm: u32,
    /// Where slashed tokens go.
    pub slash_destination: SlashDestination,
    /// Share (ppm) of each round's reward paid to validators; the rest goes to trainers.
    pub validator_reward_ppm: u32,
    /// Half-width (ppm) of the band around the median score outside which scores are clipped.
    pub score_tolerance_ppm: u32,
    /// Blocks a dataset purchase stays in escrow before it is released to the owner.
    pub access_escrow_blocks: u64,
    /// The smallest task bond any member may lock (a task may ask for more), and the smallest
    /// genesis validator stake: a bond small enough that its slash is worth nothing would make
    /// slashing toothless.
    pub min_bond: u128,
    /// Blocks per consensus epoch; the validator set for the next epoch is taken from stake at
    /// each epoch's last block ([`crate::validators`]). 0: one epoch for the chain's whole life
    /// (the genesis validators validate forever and candidacies are refused).
    pub epoch_length: u64,
}

impl Default for Params {
    /// Defaults sized for a devnet with one block per second.
    fn default() -> Self {
        Self {
            unbond_delay: 100,
            slash_fraction_ppm: 100_000,
            slash_destination: SlashDestination::Burn,
            validator_reward_ppm: 200_000,
            score_tolerance_ppm: 100_000,
            access_escrow_blocks: 10,
            min_bond: 100,
            epoch_length: 0,
        }
    }
}

/// Why a genesis cannot start a chain.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenesisError {
    /// A fraction parameter is above one million parts per million.
    #[error("parameter {name} is {value} ppm; fractions must be at most 1000000")]
    FractionTooLarge {
        /// Which parameter.
        name: &'static str,
        /// Its value.
        value: u32,
    },
    /// The initial balances and stakes add up to more than `u128::MAX`.
    #[error("initial balances and stakes overflow u128; lower them")]
    SupplyOverflow,
    /// There are no validators, so no round could ever finalize.
    #[error("genesis lists no validators; add at least one with stake")]
    NoValidators,
    /// A delay parameter is zero: events would be scheduled for a height already processed.
    #[error("parameter {0} must be at least 1 block")]
    ZeroDelay(&'static str),
    /// A validator was given zero stake.
    #[error("validator {0} has zero stake")]
    ZeroStake(Address),
    /// A validator's stake is below `min_bond`.
    #[error("validator {validator} has stake {stake}, below the minimum bond {minimum}")]
    StakeBelowMinimum {
        /// The validator.
        validator: Address,
        /// Its stake.
        stake: u128,
        /// `Params::min_bond`.
        minimum: u128,
    },
    /// An epoch too short to finalize its own boundary block.
    #[error("epoch_length is {0}; it must be 0 (no epochs) or at least {MIN_EPOCH_LENGTH} blocks")]
    EpochTooShort(u64),
    /// Stake could leave before the epoch it validated in ends.
    #[error(
        "unbond_delay {unbond_delay} is shorter than epoch_length {epoch_length}: a validator \
         could unbond and be paid out while it still votes"
    )]
    UnbondBeforeEpochEnds {
        /// `Params::unbond_delay`.
        unbond_delay: u64,
        /// `Params::epoch_length`.
        epoch_length: u64,
    },
    /// More validators than a consensus set may hold.
    #[error("genesis lists {0} validators; at most {max} are allowed", max = crate::validators::MAX_CONSENSUS_VALIDATORS)]
    TooManyValidators(usize),
    /// More datasets than a chain may serve.
    #[error("genesis lists {0} datasets; at most {MAX_DATASETS} are allowed")]
    TooManyDatasets(usize),
}

/// Everything block 0 writes into the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Genesis {
    /// Identifies the chain; every transaction names it so signatures cannot be replayed elsewhere.
    pub chain_id: u64,
    /// The ledger's parameters.
    pub params: Params,
    /// Initial spendable balances.
    pub balances: BTreeMap<Address, u128>,
    /// Initial validators and their bonded stake (in addition to any balance).
    pub validators: BTreeMap<Address, u128>,
    /// Content hashes of the datasets tasks on this chain may train on. Every node must hold
    /// them: the ledger parses a task's plan against its dataset when the task is created, and
    /// its dispute referee re-runs steps on it.
    pub datasets: BTreeSet<Hash>,
}

impl Genesis {
    /// Checks the parameters and returns the total initial supply.
    pub fn validate(&self) -> Result<u128, GenesisError> {
        for (name, value) in [
            ("slash_fraction_ppm", self.params.slash_fraction_ppm),
            ("validator_reward_ppm", self.params.validator_reward_ppm),
            ("score_tolerance_ppm", self.params.score_tolerance_ppm),
        ] {
            if value > PPM {
                return Err(GenesisError::FractionTooLarge { name, value });
            }
        }
        for (name, value) in [
            ("unbond_delay", self.params.unbond_delay),
            ("access_escrow_blocks", self.params.access_escrow_blocks),
        ] {
            if value == 0 {
                return Err(GenesisError::ZeroDelay(name));
            }
        }
        let epoch_length = self.params.epoch_length;
        if epoch_length != 0 && epoch_length < MIN_EPOCH_LENGTH {
            return Err(GenesisError::EpochTooShort(epoch_length));
        }
        if epoch_length != 0 && self.params.unbond_delay < epoch_length {
            return Err(GenesisError::UnbondBeforeEpochEnds {
                unbond_delay: self.params.unbond_delay,
                epoch_length,
            });
        }
        if self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        if self.validators.len() > crate::validators::MAX_CONSENSUS_VALIDATORS {
            return Err(GenesisError::TooManyValidators(self.validators.len()));
        }
        if let Some((address, _)) = self.validators.iter().find(|(_, stake)| **stake == 0) {
            return Err(GenesisError::ZeroStake(*address));
        }
        if let Some((address, stake)) = self
            .validators
            .iter()
            .find(|(_, stake)| **stake < self.params.min_bond)
        {
            return Err(GenesisError::StakeBelowMinimum {
                validator: *address,
                stake: *stake,
                minimum: self.params.min_bond,
            });
        }
        if self.datasets.len() > MAX_DATASETS {
            return Err(GenesisError::TooManyDatasets(self.datasets.len()));
        }
        self.balances
            .values()
            .chain(self.validators.values())
            .try_fold(0u128, |sum, amount| sum.checked_add(*amount))
            .ok_or(GenesisError::SupplyOverflow)
    }
}

tag_enum_codec!(SlashDestination { Burn = 0, Challenger = 1 });

impl Write for Params {
    fn write(&self, buf: &mut impl BufMut) {
        self.unbond_delay.write(buf);
        self.slash_fraction_ppm.write(buf);
        self.slash_destination.write(buf);
        self.validator_reward_ppm.write(buf);
        self.score_tolerance_ppm.write(buf);
        self.access_escrow_blocks.write(buf);
        self.min_bond.write(buf);
        self.epoch_length.write(buf);
    }
}

impl FixedSize for Params {
    const SIZE: usize = 8 + 4 + 1 + 4 + 4 + 8 + 16 + 8;
}

impl Read for Params {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            unbond_delay: u64::read_cfg(buf, &())?,
            slash_fraction_ppm: u32::read_cfg(buf, &())?,
            slash_destination: SlashDestination::read_cfg(buf, &())?,
            validator_reward_ppm: u32::read_cfg(buf, &())?,
            score_tolerance_ppm: u32::read_cfg(buf, &())?,
            access_escrow_blocks: u64::read_cfg(buf, &())?,
            min_bond: u128::read_cfg(buf, &())?,
            epoch_length: u64::read_cfg(buf, &())?,
        })
    }
}

impl Write for Genesis {
    fn write(&self, buf: &mut impl BufMut) {
        self.chain_id.write(buf);
        self.params.write(buf);
        self.balances.write(buf);
        self.validators.write(buf);
        self.datasets.write(buf);
    }
}

impl EncodeSize for Genesis {
    fn encode_size(&self) -> usize {
        self.chain_id.encode_size()
            + self.params.encode_size()
            + self.balances.encode_size()
            + self.validators.encode_size()
            + self.datasets.encode_size()
    }
}

impl Read for Genesis {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let map_cfg = (RangeCfg::new(..=MAX_GENESIS_ACCOUNTS), ((), ()));
        Ok(Self {
            chain_id: u64::read_cfg(buf, &())?,
            params: Params::read_cfg(buf, &())?,
            balances: BTreeMap::read_cfg(buf, &map_cfg)?,
            validators: BTreeMap::read_cfg(buf, &map_cfg)?,
            datasets: BTreeSet::read_cfg(buf, &(RangeCfg::new(..=MAX_DATASETS), ()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};

    fn sample() -> Genesis {
        Genesis {
            chain_id: 7,
            params: Params::default(),
            balances: BTreeMap::from([(Address([1; 20]), 500)]),
            validators: BTreeMap::from([(Address([2; 20]), 100)]),
            datasets: BTreeSet::from([[3; 32]]),
        }
    }

    #[test]
    fn genesis_round_trips_and_sums_supply() {
        let genesis = sample();
        assert_eq!(Genesis::decode(genesis.encode()).unwrap(), genesis);
        assert_eq!(genesis.validate(), Ok(600));
    }

    #[test]
    fn genesis_rejects_overflowing_supply_and_bad_fractions() {
        let mut genesis = sample();
        genesis.balances.insert(Address([3; 20]), u128::MAX);
        assert_eq!(genesis.validate(), Err(GenesisError::SupplyOverflow));
        let mut genesis = sample();
        genesis.params.validator_reward_ppm = PPM + 1;
        assert!(matches!(
            genesis.validate(),
            Err(GenesisError::FractionTooLarge { .. })
        ));
        let mut genesis = sample();
        genesis.params.unbond_delay = 0;
        assert_eq!(
            genesis.validate(),
            Err(GenesisError::ZeroDelay("unbond_delay"))
        );
        let mut genesis = sample();
        genesis.validators.clear();
        assert_eq!(genesis.validate(), Err(GenesisError::NoValidators));
        let mut genesis = sample();
        genesis.datasets = (0..=MAX_DATASETS as u8).map(|i| [i; 32]).collect();
        assert_eq!(
            genesis.validate(),
            Err(GenesisError::TooManyDatasets(MAX_DATASETS + 1))
        );
    }
}
