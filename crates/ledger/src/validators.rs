//! The consensus validator set, and how it follows stake through epochs.
//!
//! A chain with `Params::epoch_length = L > 0` runs in epochs of `L` blocks: epoch `e` holds
//! heights `e·L .. (e+1)·L - 1`. The **roster** lists who stands for the set: the genesis
//! validators (with their genesis stake) and every account that sent a
//! [`Payload::Candidacy`](crate::transaction::Payload::Candidacy) with a positive stake. After
//! the transactions of each epoch's last block, [`rotate`] writes the next epoch's set: every
//! roster entry whose account still has its offered stake bonded (or at least `min_bond` of
//! it: the weight is `min(offered, bonded)`), the [`MAX_CONSENSUS_VALIDATORS`] heaviest, ties
//! by address. Consensus nodes read that set from the boundary block's state and run the next
//! epoch's engine with it, so everyone switches at the same block.
//!
//! What this buys against attackers:
//! - Weight is bonded stake, and bonded stake is slashable: a slashed validator's weight shrinks
//!   at the next boundary and it leaves the set once below `min_bond`.
//! - Leaving cannot outrun a penalty: `unbond_delay >= epoch_length` is a genesis rule, so stake
//!   that votes in an epoch is still bonded or unbonding (and slashable) until the epoch ends.
//! - Sybils pay: every roster entry needs `min_bond` bonded, and the roster is bounded
//!   ([`MAX_ROSTER`]).
//! - The consensus key is the candidacy transaction's signer, so nobody can stand with a key it
//!   cannot sign with.
//!
//! Consensus weights are equal (simplex counts votes, not stake); stake decides who is in the
//! set and, through `crate::lifecycle::join`, with what bond a validator joins tasks.

use std::collections::BTreeMap;

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, Write};
use serde::Serialize;

use crate::address::Address;
use crate::execute::{Env, TxError};
use crate::genesis::Params;
use crate::staking;
use crate::state::{keys, Overlay, StateError};
use crate::store::StateRead;

/// Most validators an epoch's set may hold.
pub const MAX_CONSENSUS_VALIDATORS: usize = 128;

/// Most roster entries (standing candidates, the set included).
pub const MAX_ROSTER: usize = 1024;

/// One roster entry: the weight offered and the consensus key (`None` for a genesis validator,
/// whose key is in the genesis file every node holds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Weight offered: the bond a validator joins tasks with.
    pub stake: u128,
    /// The consensus (ed25519) public key, as sent in the candidacy.
    #[serde(serialize_with = "crate::round::serialize_optional_hash")]
    pub key: Option<[u8; 32]>,
}

impl Write for Candidate {
    fn write(&self, buf: &mut impl BufMut) {
        self.stake.write(buf);
        self.key.write(buf);
    }
}

impl EncodeSize for Candidate {
    fn encode_size(&self) -> usize {
        self.stake.encode_size() + self.key.encode_size()
    }
}

impl Read for Candidate {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            stake: u128::read_cfg(buf, &())?,
            key: Option::<[u8; 32]>::read_cfg(buf, &())?,
        })
    }
}

/// Why a candidacy was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CandidacyError {
    /// The chain has no epochs, so its set never changes.
    #[error("this chain has no epochs (epoch_length 0): its validator set is fixed at genesis")]
    NoEpochs,
    /// The offered stake is below `min_bond`.
    #[error("a validator must offer at least {minimum} base units of stake; {offered} offered")]
    StakeBelowMinimum {
        /// Offered.
        offered: u128,
        /// `Params::min_bond`.
        minimum: u128,
    },
    /// The offered stake is more than the signer has bonded.
    #[error("{offered} base units offered but only {bonded} bonded; bond first")]
    NotBonded {
        /// Offered.
        offered: u128,
        /// Bonded now.
        bonded: u128,
    },
    /// Withdrawing a candidacy that does not exist.
    #[error("{0} does not stand for the validator set")]
    NotStanding(Address),
    /// The roster is full of candidates at least as heavy as the offer.
    #[error("the roster holds {MAX_ROSTER} candidates, none lighter than {0}")]
    RosterFull(u128),
}

/// The epoch of `height` (0 on a chain without epochs).
pub fn epoch_of(params: &Params, height: u64) -> u64 {
    height.checked_div(params.epoch_length).unwrap_or(0)
}

/// Whether `height` is the last block of its epoch (never on a chain without epochs).
pub fn is_epoch_end(params: &Params, height: u64) -> bool {
    params.epoch_length != 0 && height % params.epoch_length == params.epoch_length - 1
}

/// The decoding bounds of the stored roster (at most [`MAX_ROSTER`] candidates).
pub fn roster_cfg() -> (RangeCfg<usize>, ((), ())) {
    (RangeCfg::new(..=MAX_ROSTER), ((), ()))
}

/// The roster: who stands for the set, with what stake and key.
pub fn roster(state: &dyn StateRead) -> Result<BTreeMap<Address, Candidate>, StateError> {
    Ok(Overlay::new(state)
        .read_cfg(keys::ROSTER, &roster_cfg())?
        .unwrap_or_default())
}

fn load_roster(state: &Overlay) -> Result<BTreeMap<Address, Candidate>, StateError> {
    Ok(state
        .read_cfg(keys::ROSTER, &roster_cfg())?
        .unwrap_or_default())
}

/// The roster genesis writes: every genesis validator with its stake and no key.
pub fn genesis_roster(validators: &BTreeMap<Address, u128>) -> BTreeMap<Address, Candidate> {
    validators
        .iter()
        .map(|(address, stake)| {
            (
                *address,
                Candidate {
                    stake: *stake,
                    key: None,
                },
            )
        })
        .collect()
}

/// Applies a candidacy: `stake > 0` stands (or changes the offer) with `key` as consensus key,
/// `stake == 0` withdraws. Takes effect at the next epoch boundary.
pub fn candidacy(
    state: &mut Overlay,
    env: &Env,
    sender: &Address,
    key: &[u8; 32],
    stake: u128,
) -> Result<(), TxError> {
    if env.params.epoch_length == 0 {
        return Err(CandidacyError::NoEpochs.into());
    }
    let mut roster = load_roster(state)?;
    if stake == 0 {
        if roster.remove(sender).is_none() {
            return Err(CandidacyError::NotStanding(*sender).into());
        }
    } else {
        if stake < env.params.min_bond {
            return Err(CandidacyError::StakeBelowMinimum {
                offered: stake,
                minimum: env.params.min_bond,
            }
            .into());
        }
        let bonded = staking::load(state, sender)?.bonded;
        if bonded < stake {
            return Err(CandidacyError::NotBonded {
                offered: stake,
                bonded,
            }
            .into());
        }
        if !roster.contains_key(sender) && roster.len() >= MAX_ROSTER {
            let mut weights = BTreeMap::new();
            for address in roster.keys() {
                weights.insert(*address, staking::load(state, address)?.bonded);
            }
            make_room(&mut roster, MAX_ROSTER, stake, |address, candidate| {
                candidate
                    .stake
                    .min(weights.get(address).copied().unwrap_or(0))
            })?;
        }
        roster.insert(
            *sender,
            Candidate {
                stake,
                key: Some(*key),
            },
        );
    }
    state.write(keys::ROSTER.to_vec(), &roster);
    Ok(())
}

/// Makes room in a roster holding `cap` candidates for a newcomer offering `stake`: the lightest
/// candidate (by `weight`, ties by the higher address) leaves if it is lighter than the offer.
/// Filling the roster with cheap candidacies therefore cannot lock out a heavier newcomer.
fn make_room(
    roster: &mut BTreeMap<Address, Candidate>,
    cap: usize,
    stake: u128,
    weight: impl Fn(&Address, &Candidate) -> u128,
) -> Result<(), CandidacyError> {
    if roster.len() < cap {
        return Ok(());
    }
    let lightest = roster
        .iter()
        .map(|(address, candidate)| (weight(address, candidate), std::cmp::Reverse(*address)))
        .min();
    match lightest {
        Some((light, std::cmp::Reverse(address))) if light < stake => {
            roster.remove(&address);
            Ok(())
        }
        _ => Err(CandidacyError::RosterFull(stake)),
    }
}

/// The set the roster gives at `state`: each candidate with weight `min(offered, bonded)` if
/// that is at least `min_bond`, the heaviest [`MAX_CONSENSUS_VALIDATORS`], ties by address.
pub fn next_set(state: &Overlay, params: &Params) -> Result<BTreeMap<Address, u128>, TxError> {
    let mut weighted = Vec::new();
    for (address, candidate) in load_roster(state)? {
        let weight = candidate.stake.min(staking::load(state, &address)?.bonded);
        if weight >= params.min_bond && weight > 0 {
            weighted.push((weight, address));
        }
    }
    weighted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    weighted.truncate(MAX_CONSENSUS_VALIDATORS);
    Ok(weighted
        .into_iter()
        .map(|(weight, address)| (address, weight))
        .collect())
}

/// At the last block of an epoch, writes the next epoch's set ([`next_set`]); elsewhere, and on
/// a chain without epochs, does nothing. An empty result keeps the current set: a chain never
/// stops for want of validators.
pub fn rotate(state: &mut Overlay, env: &Env) -> Result<(), TxError> {
    if !is_epoch_end(&env.params, env.height) {
        return Ok(());
    }
    let next = next_set(state, &env.params)?;
    if next.is_empty() {
        tracing::warn!(
            height = env.height,
            "no candidate holds its stake: the validator set stays as it is"
        );
        return Ok(());
    }
    state.write(keys::CONSENSUS_VALIDATORS.to_vec(), &next);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(stake: u128) -> Candidate {
        Candidate { stake, key: None }
    }

    #[test]
    fn a_full_roster_lets_a_heavier_newcomer_displace_the_lightest_and_no_one_else() {
        let mut roster: BTreeMap<Address, Candidate> = (1..=3u8)
            .map(|i| (Address([i; 20]), candidate(100 * u128::from(i))))
            .collect();
        let offered = |_: &Address, c: &Candidate| c.stake;
        // Room left: nothing leaves.
        make_room(&mut roster, 4, 1, offered).unwrap();
        assert_eq!(roster.len(), 3);
        // Full: an offer no heavier than the lightest (100) is refused.
        assert_eq!(
            make_room(&mut roster, 3, 100, offered),
            Err(CandidacyError::RosterFull(100))
        );
        assert_eq!(roster.len(), 3);
        // A heavier one displaces the lightest.
        make_room(&mut roster, 3, 101, offered).unwrap();
        assert!(!roster.contains_key(&Address([1; 20])));
        assert_eq!(roster.len(), 2);
        // Weight counts what is bonded: an offer of 300 backed by 50 is the lightest.
        let mut roster: BTreeMap<Address, Candidate> = [
            (Address([1; 20]), candidate(100)),
            (Address([2; 20]), candidate(300)),
        ]
        .into_iter()
        .collect();
        make_room(&mut roster, 2, 60, |a, c| {
            if *a == Address([2; 20]) {
                c.stake.min(50)
            } else {
                c.stake
            }
        })
        .unwrap();
        assert!(!roster.contains_key(&Address([2; 20])));
    }
}
