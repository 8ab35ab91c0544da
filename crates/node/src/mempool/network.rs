//! The mempool channel: receives transactions from peers into the pool and sends them out.

use std::sync::{Arc, Mutex};

use cairn_ledger::encoding::to_hex;
use cairn_ledger::transaction::SignedTransaction;
use commonware_cryptography::PublicKey;
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_runtime::{Handle, Spawner};
use tracing::{debug, warn};

use super::Mempool;
use crate::penalty::{Offence, Penalties, PenaltyConfig, Verdict};
use crate::wire::Message;

/// Sends a transaction on the mempool channel to `peers`; returns the peers it was handed to
/// (rate-limited or disconnected peers are skipped by the network).
pub fn broadcast<S: Sender>(
    sender: &mut S,
    transaction: &SignedTransaction,
    peers: Vec<S::PublicKey>,
) -> Vec<S::PublicKey> {
    if peers.is_empty() {
        return Vec::new();
    }
    let bytes = Message::Transaction(transaction.clone()).to_bytes();
    sender.send(Recipients::Some(peers), bytes, false)
}

/// Spawns the task that receives transactions on the mempool channel, inserts them into
/// `pool`, and blocks (through `blocker`) peers whose undecodable or invalid transactions pass
/// the penalty limit. The task ends when the channel closes.
pub fn start<E, R, B, P>(
    context: E,
    pool: Arc<Mutex<Mempool>>,
    penalties: PenaltyConfig,
    receiver: R,
    blocker: B,
) -> Handle<()>
where
    E: Spawner,
    P: PublicKey,
    R: Receiver<PublicKey = P>,
    B: Blocker<PublicKey = P>,
{
    context.spawn(move |_| receive(pool, Penalties::new(penalties), receiver, blocker))
}

async fn receive<P, R, B>(
    pool: Arc<Mutex<Mempool>>,
    mut penalties: Penalties<P>,
    mut receiver: R,
    mut blocker: B,
) where
    P: PublicKey,
    R: Receiver<PublicKey = P>,
    B: Blocker<PublicKey = P>,
{
    while let Ok((peer, bytes)) = receiver.recv().await {
        let offence = match Message::from_bytes(bytes.as_ref()) {
            Ok(Message::Transaction(transaction)) => {
                let result = pool
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert(transaction);
                match result {
                    Ok(hash) => {
                        debug!(peer = ?peer, tx = %to_hex(&hash), "transaction admitted");
                        None
                    }
                    Err(error) => {
                        debug!(peer = ?peer, %error, "transaction not admitted");
                        error.is_invalid().then_some(Offence::InvalidTransaction)
                    }
                }
            }
            Ok(_) => Some(Offence::Malformed),
            Err(error) if error.is_oversized() => Some(Offence::Oversized),
            Err(_) => Some(Offence::Malformed),
        };
        if let Some(offence) = offence {
            if penalties.mark(&peer, offence) == Verdict::Block {
                warn!(peer = ?peer, ?offence, "blocking peer on the mempool channel");
                let _ = blocker.block(peer);
            }
        }
    }
    debug!("mempool channel closed; mempool task stops");
}
