//! A block's validity depends on each signature alone: a signature that `verify_strict` rejects
//! makes the block invalid whatever other transactions it carries (batch verification, being
//! cofactorless with random coefficients, would accept some of them depending on the others).

mod common;

use cairn_ledger::{Params, Payload, SignedTransaction, TxError};
use common::*;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::Scalar;
use sha2::{Digest, Sha512};

/// Signs `transaction` with a nonce point `R = rB + T` where `T` has small order, and
/// `s = r + H(R || A || M) a` computed for that `R`: the cofactorless equation misses by `T`.
fn mixed_torsion_signature(user: &User, transaction: &mut SignedTransaction, torsion: usize) {
    let secret = user.key.to_scalar();
    let public = user.key.verifying_key().to_bytes();
    let r = Scalar::from_bytes_mod_order([0x17; 32]);
    let nonce_point = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[torsion]).compress();
    let mut hasher = Sha512::new();
    hasher.update(nonce_point.as_bytes());
    hasher.update(public);
    hasher.update(transaction.transaction.signing_message());
    let challenge = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
    let s = r + challenge * secret;
    transaction.signature[..32].copy_from_slice(nonce_point.as_bytes());
    transaction.signature[32..].copy_from_slice(s.as_bytes());
}

fn rejected_whatever_the_other_transactions(torsion: usize) {
    let users = users(8);
    let mut chain = chain(&genesis(&users, Params::default()));
    let mut forged = users[0].sign_with_nonce(
        0,
        Payload::Transfer {
            to: users[1].address,
            amount: 5,
        },
    );
    mixed_torsion_signature(&users[0], &mut forged, torsion);
    assert!(!forged.verify(), "verify_strict must reject the forgery");
    // Different companions give the batch equation different random weights; each block must
    // be rejected, and always because of the forged transaction.
    for variant in 0..24u128 {
        let companions = 1 + (variant as usize % 7);
        let mut block = Vec::new();
        for (offset, user) in users[1..=companions].iter().enumerate() {
            block.push(user.sign_with_nonce(
                0,
                Payload::Transfer {
                    to: users[0].address,
                    amount: 1 + variant + offset as u128,
                },
            ));
        }
        block.insert(variant as usize % (companions + 1), forged.clone());
        let error = expect_rejected(&mut chain, block);
        assert!(
            matches!(error, TxError::BadSignature),
            "variant {variant}: {error:?}"
        );
    }
}

#[test]
fn signature_with_order_two_torsion_in_r_rejects_the_block_whatever_else_it_holds() {
    // EIGHT_TORSION[4] is (0, -1), the point of order 2.
    rejected_whatever_the_other_transactions(4);
}

#[test]
fn signature_with_order_eight_torsion_in_r_rejects_the_block_whatever_else_it_holds() {
    rejected_whatever_the_other_transactions(1);
}

#[test]
fn honest_signatures_alongside_each_other_are_accepted() {
    let mut users = users(4);
    let mut chain = chain(&genesis(&users, Params::default()));
    let to = users[0].address;
    let block: Vec<SignedTransaction> = users[1..]
        .iter_mut()
        .map(|user| user.sign(Payload::Transfer { to, amount: 3 }))
        .collect();
    commit(&mut chain, block);
    assert_eq!(chain.tip().height, 1);
}
