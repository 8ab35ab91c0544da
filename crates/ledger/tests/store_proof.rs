//! Inclusion and exclusion proofs: valid ones verify with only the root, tampered ones fail, and
//! the decoder is bounded and canonical.

use std::collections::BTreeMap;

use cairn_ledger::store::{
    verify_proof_bytes, ChangeSet, MemoryStore, Proof, ProofError, Terminal, MAX_PROOF_BYTES,
};
use proptest::prelude::*;

/// A store holding `count` keys `k0..k{count-1}` with values `v0..`.
fn store_with(count: u32) -> MemoryStore {
    let mut store = MemoryStore::new();
    let changes: ChangeSet = (0..count)
        .map(|i| {
            (
                format!("k{i}").into_bytes(),
                Some(format!("v{i}").into_bytes()),
            )
        })
        .collect();
    store.commit(0, &changes, b"").unwrap();
    store
}

#[test]
fn inclusion_proof_verifies_and_rejects_tampering() {
    let store = store_with(300);
    let root = store.root();
    let proof = store.prove(b"k42").unwrap();
    assert!(matches!(proof.terminal(), Terminal::Leaf { .. }));
    assert_eq!(proof.verify(&root, b"k42", Some(b"v42")), Ok(()));
    // Wrong value, wrong key, wrong root.
    assert_eq!(
        proof.verify(&root, b"k42", Some(b"v43")),
        Err(ProofError::ValueMismatch)
    );
    assert_eq!(
        proof.verify(&root, b"k43", Some(b"v42")),
        Err(ProofError::KeyAbsent)
    );
    assert_eq!(
        proof.verify(&root, b"k42", None),
        Err(ProofError::KeyPresent)
    );
    let mut other_root = root;
    other_root[5] ^= 1;
    assert_eq!(
        proof.verify(&other_root, b"k42", Some(b"v42")),
        Err(ProofError::RootMismatch)
    );
    // Every sibling matters: flip one bit in each in turn.
    let bytes = proof.to_bytes();
    let header = 1 + 1 + 64 + 2 + proof.siblings().len().div_ceil(8);
    assert!(
        bytes.len() > header,
        "a 300-key tree has non-empty siblings"
    );
    for offset in (header..bytes.len()).step_by(32) {
        let mut tampered = bytes.clone();
        tampered[offset] ^= 0x10;
        let result = verify_proof_bytes(&root, b"k42", Some(b"v42"), &tampered);
        assert!(
            result.is_err(),
            "tampered sibling at byte {offset} still verified"
        );
    }
    // The terminal leaf's key hash is bound too.
    let mut tampered = bytes.clone();
    tampered[2] ^= 1;
    assert!(verify_proof_bytes(&root, b"k42", Some(b"v42"), &tampered).is_err());
}

#[test]
fn exclusion_proofs_verify_for_absent_keys_and_cannot_hide_present_ones() {
    let store = store_with(300);
    let root = store.root();
    let mut leaf_terminals = 0;
    let mut empty_terminals = 0;
    for i in 1000..1200 {
        let key = format!("k{i}").into_bytes();
        let proof = store.prove(&key).unwrap();
        match proof.terminal() {
            Terminal::Leaf { .. } => leaf_terminals += 1,
            Terminal::Empty => empty_terminals += 1,
        }
        assert_eq!(proof.verify(&root, &key, None), Ok(()));
        assert_eq!(
            proof.verify(&root, &key, Some(b"anything")),
            Err(ProofError::KeyAbsent)
        );
        // An exclusion proof for one key says nothing about another.
        let present = b"k7";
        assert!(proof.verify(&root, present, None).is_err());
    }
    assert!(
        leaf_terminals > 0 && empty_terminals > 0,
        "both exclusion kinds exercised"
    );
}

#[test]
fn empty_state_proves_every_key_absent() {
    let store = MemoryStore::new();
    let proof = store.prove(b"anything").unwrap();
    assert_eq!(proof.verify(&store.root(), b"anything", None), Ok(()));
    assert_eq!(proof.to_bytes(), vec![1, 0, 0, 0]);
}

#[test]
fn decoder_rejects_truncation_trailing_bytes_and_unknown_tags() {
    let store = store_with(50);
    let bytes = store.prove(b"k3").unwrap().to_bytes();
    assert!(bytes.len() <= MAX_PROOF_BYTES);
    for len in 0..bytes.len() {
        assert!(
            matches!(
                Proof::from_bytes(&bytes[..len]),
                Err(ProofError::Truncated { .. })
            ),
            "prefix of {len} bytes decoded"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(Proof::from_bytes(&long), Err(ProofError::TrailingBytes(1)));
    let mut version = bytes.clone();
    version[0] = 9;
    assert_eq!(
        Proof::from_bytes(&version),
        Err(ProofError::UnknownVersion(9))
    );
    let mut terminal = bytes.clone();
    terminal[1] = 2;
    assert_eq!(
        Proof::from_bytes(&terminal),
        Err(ProofError::UnknownTerminal(2))
    );
    assert_eq!(
        Proof::from_bytes(&[1, 0, 1, 1]),
        Err(ProofError::TooDeep(257))
    );
    // Depth 1, bitmap with a stray bit past the only sibling.
    assert!(matches!(
        Proof::from_bytes(&[1, 0, 0, 1, 0xC0]),
        Err(ProofError::NonCanonical(_))
    ));
    // Depth 1, sibling not marked empty but written as the empty hash.
    let mut explicit_empty = vec![1, 0, 0, 1, 0];
    explicit_empty.extend_from_slice(&[0u8; 32]);
    assert!(matches!(
        Proof::from_bytes(&explicit_empty),
        Err(ProofError::NonCanonical(_))
    ));
}

/// Sets of up to 64 distinct keys with values, plus probe keys that may or may not be in them.
/// A state to prove against and the keys to probe it with.
type KeySet = (BTreeMap<Vec<u8>, Vec<u8>>, Vec<Vec<u8>>);

fn key_sets() -> impl Strategy<Value = KeySet> {
    let key = proptest::collection::vec(any::<u8>(), 0..12);
    (
        proptest::collection::btree_map(
            key.clone(),
            proptest::collection::vec(any::<u8>(), 0..16),
            0..64,
        ),
        proptest::collection::vec(key, 1..8),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Every key in a random set has a verifying inclusion proof, every probe outside it a
    /// verifying exclusion proof, and both survive encoding.
    #[test]
    fn proofs_over_random_key_sets_verify_and_round_trip((state, probes) in key_sets()) {
        let mut store = MemoryStore::new();
        let changes: ChangeSet = state.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        let root = store.commit(0, &changes, b"").unwrap();
        for (key, value) in &state {
            let proof = store.prove(key).unwrap();
            let decoded = Proof::from_bytes(&proof.to_bytes()).unwrap();
            prop_assert_eq!(&decoded, &proof);
            prop_assert_eq!(decoded.verify(&root, key, Some(value)), Ok(()));
            let mut wrong = value.clone();
            wrong.push(0);
            prop_assert!(decoded.verify(&root, key, Some(&wrong)).is_err());
        }
        for probe in probes.iter().filter(|p| !state.contains_key(*p)) {
            let proof = store.prove(probe).unwrap();
            prop_assert_eq!(proof.verify(&root, probe, None), Ok(()));
            prop_assert_eq!(verify_proof_bytes(&root, probe, None, &proof.to_bytes()), Ok(()));
        }
    }

    /// Arbitrary bytes never panic the decoder; whatever decodes re-encodes to the same bytes.
    #[test]
    fn decoder_is_total_and_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(proof) = Proof::from_bytes(&bytes) {
            prop_assert_eq!(proof.to_bytes(), bytes);
        }
    }

    /// Structured near-valid inputs (right version and terminal, random depth and body) too.
    #[test]
    fn decoder_is_total_on_near_valid_inputs(
        terminal in 0u8..3,
        depth in 0u16..300,
        body in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let mut bytes = vec![1, terminal];
        bytes.extend_from_slice(&depth.to_be_bytes());
        bytes.extend_from_slice(&body);
        if let Ok(proof) = Proof::from_bytes(&bytes) {
            prop_assert_eq!(proof.to_bytes(), bytes);
        }
    }

    /// Changing any single byte of a valid proof (inclusion or exclusion) makes it fail.
    #[test]
    fn any_single_byte_change_to_a_valid_proof_is_rejected(
        (state, probes) in key_sets(),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut store = MemoryStore::new();
        let changes: ChangeSet = state.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        let root = store.commit(0, &changes, b"").unwrap();
        let key = &probes[0];
        let value = state.get(key).map(Vec::as_slice);
        let mut bytes = store.prove(key).unwrap().to_bytes();
        prop_assert_eq!(verify_proof_bytes(&root, key, value, &bytes), Ok(()));
        let at = position.index(bytes.len());
        bytes[at] ^= flip;
        prop_assert!(verify_proof_bytes(&root, key, value, &bytes).is_err());
    }
}
