//! `cairn ledger prove`: prints and checks the Merkle proof of a round's finalized model hash.

use anyhow::Context;
use cairn_ledger::encoding::{from_hex, to_hex};
use cairn_ledger::query;
use cairn_ledger::state::keys;
use cairn_ledger::store::Proof;

use super::{open_existing, ProveArgs};

/// Runs `cairn ledger prove`.
pub(super) fn prove(args: &ProveArgs) -> anyhow::Result<()> {
    let store = open_existing(&args.data_dir)?;
    let stored = query::model_hash(&store, args.task, args.round)?;
    let expected = match &args.expect {
        Some(text) => Some(
            from_hex::<32>(text)
                .with_context(|| format!("--expect `{text}` is not 64 hex digits"))?,
        ),
        None => stored,
    };
    let key = keys::model(args.task, args.round);
    let proof_bytes = store.prove(&key)?.to_bytes();
    let root = store.root();
    println!("state root  {}", to_hex(&root));
    println!("key         {}", to_hex(&key));
    println!(
        "proof       {} bytes: {}",
        proof_bytes.len(),
        to_hex(&proof_bytes)
    );
    let proof = Proof::from_bytes(&proof_bytes)?;
    match expected {
        Some(hash) => {
            proof
                .verify(&root, &key, Some(&hash))
                .with_context(|| match &args.expect {
                    Some(_) => format!(
                        "--expect {}: the proof does not show this model hash for task {} \
                         round {}",
                        to_hex(&hash),
                        args.task,
                        args.round
                    ),
                    None => format!("proof does not show model hash {}", to_hex(&hash)),
                })?;
            println!(
                "verified: task {} round {} finalized model {}",
                args.task,
                args.round,
                to_hex(&hash)
            );
        }
        None => {
            proof.verify(&root, &key, None)?;
            println!(
                "verified: task {} round {} has no finalized model",
                args.task, args.round
            );
        }
    }
    Ok(())
}
