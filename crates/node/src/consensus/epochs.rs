//! Epochs on the node: which validator set runs each epoch, the schemes marshal and the feed
//! verify certificates with, and the notices the validator's orchestrator and the p2p peer
//! tracker act on.
//!
//! The ledger writes epoch `e + 1`'s set after the transactions of epoch `e`'s last block
//! (`cairn_ledger::validators`). Whoever commits that block (a validator's finalizer, a
//! follower) calls [`Epochs::on_committed`] with the state at exactly that height, which reads
//! the set, resolves each address to its consensus key (the roster's key, or the genesis file's
//! for a genesis validator), registers the epoch and notifies the subscribers. Every node reads
//! the same set from the same block, so every node switches at the same height.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cairn_ledger::address::Address;
use cairn_ledger::genesis::Params;
use cairn_ledger::state::StateError;
use cairn_ledger::store::{StateRead, StateStore};
use cairn_ledger::{query, validators};
use commonware_codec::DecodeExt;
use commonware_consensus::types::{Epoch, FixedEpocher, Height};
use commonware_cryptography::certificate::{Provider, Scoped};
use commonware_cryptography::{ed25519, Signer as _};
use commonware_utils::ordered::Set;
use commonware_utils::NZU64;
use futures::channel::mpsc;

use super::validator::namespace;
use super::Scheme;
use crate::keys::address_of;

/// Epochs kept registered behind the newest (marshal may verify a late certificate of one).
pub const RETAINED_EPOCHS: u64 = 8;

/// Why an epoch's set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    /// The state could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// A validator of the set has no key this node knows.
    #[error("validator {0} of epoch {1} has no known consensus key (neither in the roster nor in the genesis file)")]
    UnknownKey(Address, u64),
    /// A roster key is not an ed25519 point.
    #[error("validator {0} stands with a key that is not an ed25519 public key")]
    BadKey(Address),
    /// The store's lock was poisoned by a panic elsewhere.
    #[error("the ledger store's lock is poisoned")]
    Poisoned,
}

/// One registered epoch.
#[derive(Clone)]
struct Registered {
    set: Set<ed25519::PublicKey>,
    scheme: Arc<Scheme>,
    signer: bool,
}

struct Inner {
    namespace: Vec<u8>,
    epoch_length: u64,
    key: Option<ed25519::PrivateKey>,
    known: BTreeMap<Address, ed25519::PublicKey>,
    epochs: BTreeMap<u64, Registered>,
    subscribers: Vec<mpsc::UnboundedSender<u64>>,
}

/// The epochs this node knows, shared by its finalizer or follower (which register them),
/// its consensus orchestrator, marshal (through [`EpochProvider`]) and its peer tracker.
#[derive(Clone)]
pub struct Epochs {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Epochs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Epochs")
            .field("epoch_length", &inner.epoch_length)
            .field("epochs", &inner.epochs.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The epoch of `height` under `epoch_length` (0: one epoch).
pub fn epoch_of(epoch_length: u64, height: u64) -> u64 {
    validators::epoch_of(
        &Params {
            epoch_length,
            ..Params::default()
        },
        height,
    )
}

impl Epochs {
    /// Epochs of the chain whose committed state is `state`: registers the epoch of the next
    /// block with the set `state` holds. `key` signs votes (validators; `None` for followers),
    /// `known` are the keys of the genesis file (genesis validators stand without a key on the
    /// ledger).
    pub fn open<S: StateStore>(
        state: &S,
        chain_id: u64,
        key: Option<ed25519::PrivateKey>,
        known: impl IntoIterator<Item = ed25519::PublicKey>,
    ) -> Result<Self, EpochError> {
        let params: Params = query::params(state)?;
        let height = state.height().unwrap_or(0);
        let epochs = Self {
            inner: Arc::new(Mutex::new(Inner {
                namespace: namespace(chain_id),
                epoch_length: params.epoch_length,
                key,
                known: known
                    .into_iter()
                    .map(|key| (address_of(&key), key))
                    .collect(),
                epochs: BTreeMap::new(),
                subscribers: Vec::new(),
            })),
        };
        let next = epoch_of(params.epoch_length, height.saturating_add(1));
        epochs.register(next, state)?;
        Ok(epochs)
    }

    /// [`Epochs::open`] on a store shared with the node's other parts.
    pub fn open_shared<S: StateStore>(
        store: &Mutex<S>,
        chain_id: u64,
        key: Option<ed25519::PrivateKey>,
        known: impl IntoIterator<Item = ed25519::PublicKey>,
    ) -> Result<Self, EpochError> {
        let state = store.lock().map_err(|_| EpochError::Poisoned)?;
        Self::open(&*state, chain_id, key, known)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks per epoch (0: the chain has one epoch).
    pub fn epoch_length(&self) -> u64 {
        self.lock().epoch_length
    }

    /// The epocher consensus uses: epochs of `epoch_length` blocks, or one endless epoch.
    pub fn epocher(&self) -> FixedEpocher {
        match self.epoch_length() {
            0 => FixedEpocher::new(NZU64!(u64::MAX)),
            length => FixedEpocher::new(std::num::NonZeroU64::new(length).unwrap_or(NZU64!(1))),
        }
    }

    /// The epoch of `height`.
    pub fn epoch_of(&self, height: u64) -> u64 {
        epoch_of(self.epoch_length(), height)
    }

    /// The last height of `epoch` (`None` on a chain with one epoch).
    pub fn last_height(&self, epoch: u64) -> Option<Height> {
        match self.epoch_length() {
            0 => None,
            length => epoch
                .checked_add(1)
                .and_then(|next| next.checked_mul(length))
                .map(|end| Height::new(end - 1)),
        }
    }

    /// The newest registered epoch and its set.
    pub fn current(&self) -> (u64, Set<ed25519::PublicKey>) {
        let inner = self.lock();
        let (epoch, registered) = inner
            .epochs
            .last_key_value()
            .expect("an epoch is registered at open");
        (*epoch, registered.set.clone())
    }

    /// The set of `epoch`, if registered.
    pub fn set(&self, epoch: u64) -> Option<Set<ed25519::PublicKey>> {
        self.lock().epochs.get(&epoch).map(|r| r.set.clone())
    }

    /// The scheme that verifies (and, for a member with a key, signs) `epoch`'s certificates.
    pub fn scheme(&self, epoch: u64) -> Option<(Arc<Scheme>, bool)> {
        self.lock()
            .epochs
            .get(&epoch)
            .map(|r| (r.scheme.clone(), r.signer))
    }

    /// A receiver of every epoch registered from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<u64> {
        let (sender, receiver) = mpsc::unbounded();
        self.lock().subscribers.push(sender);
        receiver
    }

    /// The set `state` names, with keys.
    fn read_set(
        inner: &Inner,
        epoch: u64,
        state: &dyn StateRead,
    ) -> Result<Set<ed25519::PublicKey>, EpochError> {
        let roster = validators::roster(state)?;
        let mut keys = Vec::new();
        for address in query::consensus_validators(state)?.keys() {
            let key = match roster.get(address).and_then(|candidate| candidate.key) {
                Some(bytes) => ed25519::PublicKey::decode(bytes::Bytes::copy_from_slice(&bytes))
                    .map_err(|_| EpochError::BadKey(*address))?,
                None => inner
                    .known
                    .get(address)
                    .cloned()
                    .ok_or(EpochError::UnknownKey(*address, epoch))?,
            };
            keys.push(key);
        }
        Ok(Set::from_iter_dedup(keys))
    }

    /// Registers `epoch` with the set `state` holds (no-op if registered) and notifies.
    fn register(&self, epoch: u64, state: &dyn StateRead) -> Result<(), EpochError> {
        let mut inner = self.lock();
        if inner.epochs.contains_key(&epoch) {
            return Ok(());
        }
        let set = Self::read_set(&inner, epoch, state)?;
        let signer = inner
            .key
            .clone()
            .and_then(|key| Scheme::signer(&inner.namespace, set.clone(), key));
        let (scheme, signs) = match signer {
            Some(scheme) => (scheme, true),
            None => (Scheme::verifier(&inner.namespace, set.clone()), false),
        };
        tracing::info!(
            epoch,
            validators = set.len(),
            member = signs,
            "epoch registered"
        );
        inner.epochs.insert(
            epoch,
            Registered {
                set,
                scheme: Arc::new(scheme),
                signer: signs,
            },
        );
        while inner
            .epochs
            .first_key_value()
            .is_some_and(|(oldest, _)| oldest + RETAINED_EPOCHS < epoch)
        {
            inner.epochs.pop_first();
        }
        inner
            .subscribers
            .retain(|subscriber| subscriber.unbounded_send(epoch).is_ok());
        Ok(())
    }

    /// Tells the epochs that the block at `height` was committed and `state` is the state after
    /// it: at an epoch's last block, registers the next epoch and returns it.
    pub fn on_committed(
        &self,
        height: u64,
        state: &dyn StateRead,
    ) -> Result<Option<u64>, EpochError> {
        let length = self.epoch_length();
        if length == 0 || height % length != length - 1 {
            return Ok(None);
        }
        let next = height / length + 1;
        self.register(next, state)?;
        Ok(Some(next))
    }

    /// Whether `key` is in the set of `epoch`.
    pub fn is_member(&self, epoch: u64, key: &ed25519::PublicKey) -> bool {
        self.lock()
            .epochs
            .get(&epoch)
            .is_some_and(|r| r.set.position(key).is_some())
    }

    /// The provider marshal verifies certificates with.
    pub fn provider(&self) -> EpochProvider {
        EpochProvider {
            epochs: self.clone(),
        }
    }

    /// The public key of the signing key, if any.
    pub fn public_key(&self) -> Option<ed25519::PublicKey> {
        self.lock().key.as_ref().map(|key| key.public_key())
    }
}

/// marshal's view of [`Epochs`]: a signing scope where this node is a member, a verifying one
/// elsewhere, nothing for an epoch not (or no longer) registered.
#[derive(Clone)]
pub struct EpochProvider {
    epochs: Epochs,
}

impl Provider for EpochProvider {
    type Scope = Epoch;
    type Scheme = Scheme;

    fn scoped(&self, scope: Epoch) -> Option<Scoped<Scheme>> {
        let (scheme, signer) = self.epochs.scheme(scope.get())?;
        Some(if signer {
            Scoped::scheme(scheme)
        } else {
            Scoped::verifier(scheme)
        })
    }

    fn scheme(&self, scope: Epoch) -> Option<Arc<Scheme>> {
        self.epochs.scheme(scope.get()).map(|(scheme, _)| scheme)
    }
}
