//! The canonical encoding: decode(encode(x)) == x for transactions and blocks, and decoders of
//! outside bytes return errors (never panic) on arbitrary, truncated or oversized input. This is
//! the short proptest version of the `ledger_transaction` and `ledger_block` fuzz targets.

use std::collections::BTreeMap;

use cairn_ledger::block::transactions_root;
use cairn_ledger::encoding::{MAX_SCORES_PER_ATTESTATION, MAX_TEXT_BYTES};
use cairn_ledger::round::Round;
use cairn_ledger::task::Task;
use cairn_ledger::{
    Address, Block, Genesis, Header, Payload, Role, SignedTransaction, TaskSpec, Transaction,
};
use commonware_codec::{Decode, DecodeExt, Encode};
use proptest::prelude::*;

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

fn text() -> impl Strategy<Value = String> {
    "[a-z0-9:=. -]{0,40}"
}

fn spec() -> impl Strategy<Value = TaskSpec> {
    (
        (text(), any::<[u8; 32]>(), any::<[u8; 32]>(), text()),
        (any::<u32>(), any::<u32>(), text(), text()),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u128>(),
            any::<u128>(),
        ),
    )
        .prop_map(
            |(
                (model, initial_model, dataset, partition),
                (rounds, local_steps, optimizer, robust_rule),
                (commit_window, reveal_window, attest_window, min_stake, reward_per_round),
            )| TaskSpec {
                model,
                initial_model,
                dataset,
                partition,
                rounds,
                local_steps,
                optimizer,
                robust_rule,
                commit_window,
                reveal_window,
                attest_window,
                min_stake,
                reward_per_round,
            },
        )
}

fn payload() -> impl Strategy<Value = Payload> {
    let hash = any::<[u8; 32]>();
    prop_oneof![
        (address(), any::<u128>()).prop_map(|(to, amount)| Payload::Transfer { to, amount }),
        any::<u128>().prop_map(|amount| Payload::Bond { amount }),
        any::<u128>().prop_map(|amount| Payload::Unbond { amount }),
        any::<u128>().prop_map(|amount| Payload::Burn { amount }),
        spec().prop_map(|spec| Payload::CreateTask { spec }),
        (any::<u64>(), any::<bool>(), any::<u128>()).prop_map(|(task, v, bond)| {
            Payload::JoinTask {
                task,
                role: if v { Role::Validator } else { Role::Trainer },
                bond,
            }
        }),
        any::<u64>().prop_map(|task| Payload::StartTask { task }),
        any::<u64>().prop_map(|task| Payload::CancelTask { task }),
        (any::<u64>(), any::<u32>(), hash, hash).prop_map(
            |(task, round, commitment, trace_root)| Payload::CommitUpdate {
                task,
                round,
                commitment,
                trace_root
            }
        ),
        (any::<u64>(), any::<u32>(), hash, hash).prop_map(|(task, round, update_hash, salt)| {
            Payload::RevealUpdate {
                task,
                round,
                update_hash,
                salt,
            }
        }),
        (any::<u64>(), any::<u32>(), hash).prop_map(|(task, round, commitment)| {
            Payload::CommitAttestation {
                task,
                round,
                commitment,
            }
        }),
        (
            any::<u64>(),
            any::<u32>(),
            hash,
            proptest::collection::btree_map(address(), any::<u32>(), 0..8),
            hash
        )
            .prop_map(|(task, round, model_hash, scores, salt)| {
                Payload::RevealAttestation {
                    task,
                    round,
                    model_hash,
                    scores,
                    salt,
                }
            }),
        (hash, text(), text(), any::<u128>()).prop_map(|(content_hash, schema, licence, price)| {
            Payload::ListDataset {
                content_hash,
                schema,
                licence,
                price,
            }
        }),
        hash.prop_map(|dataset| Payload::BuyAccess { dataset }),
    ]
}

fn signed() -> impl Strategy<Value = SignedTransaction> {
    (
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        payload(),
        proptest::collection::vec(any::<u8>(), 64),
    )
        .prop_map(
            |(chain_id, signer, nonce, payload, signature)| SignedTransaction {
                transaction: Transaction {
                    chain_id,
                    signer,
                    nonce,
                    payload,
                },
                signature: signature.try_into().expect("64 bytes"),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn transaction_decodes_to_what_was_encoded(tx in signed()) {
        let bytes = tx.encode();
        prop_assert_eq!(bytes.len(), commonware_codec::EncodeSize::encode_size(&tx));
        prop_assert_eq!(SignedTransaction::decode(bytes).unwrap(), tx);
    }

    #[test]
    fn block_decodes_to_what_was_encoded(transactions in proptest::collection::vec(signed(), 0..6), height in any::<u64>()) {
        let block = Block {
            header: Header {
                chain_id: 9,
                height,
                parent: [1; 32],
                transactions_root: transactions_root(&transactions),
                state_root: [2; 32],
            },
            transactions,
        };
        prop_assert_eq!(Block::decode(block.encode()).unwrap(), block);
    }

    #[test]
    fn truncated_transaction_is_an_error(tx in signed(), cut in any::<prop::sample::Index>()) {
        let bytes = tx.encode().to_vec();
        let cut = cut.index(bytes.len());
        prop_assert!(SignedTransaction::decode(bytes[..cut].to_vec()).is_err());
    }

    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SignedTransaction::decode(bytes.clone());
        let _ = Block::decode(bytes.clone());
        let _ = Genesis::decode(bytes.clone());
        let _ = Task::decode_cfg(bytes.clone(), &());
        let _ = Round::decode_cfg(bytes, &());
    }

    #[test]
    fn mutated_transaction_bytes_never_panic_the_decoder(tx in signed(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = tx.encode().to_vec();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(decoded) = SignedTransaction::decode(bytes.clone()) {
            // Whatever decodes re-encodes to the same bytes: the encoding is canonical.
            prop_assert_eq!(decoded.encode().to_vec(), bytes);
        }
    }
}

#[test]
fn oversized_fields_are_rejected_by_the_decoder() {
    let long = Payload::ListDataset {
        content_hash: [0; 32],
        schema: "x".repeat(MAX_TEXT_BYTES + 1),
        licence: "MIT".into(),
        price: 1,
    };
    let tx = SignedTransaction {
        transaction: Transaction {
            chain_id: 1,
            signer: [0; 32],
            nonce: 0,
            payload: long,
        },
        signature: [0; 64],
    };
    assert!(SignedTransaction::decode(tx.encode()).is_err());

    let scores: BTreeMap<Address, u32> = (0..=MAX_SCORES_PER_ATTESTATION)
        .map(|i| {
            (
                Address([
                    (i % 256) as u8,
                    (i / 256) as u8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ]),
                1,
            )
        })
        .collect();
    let tx = SignedTransaction {
        transaction: Transaction {
            chain_id: 1,
            signer: [0; 32],
            nonce: 0,
            payload: Payload::RevealAttestation {
                task: 0,
                round: 0,
                model_hash: [0; 32],
                scores,
                salt: [0; 32],
            },
        },
        signature: [0; 64],
    };
    assert!(SignedTransaction::decode(tx.encode()).is_err());
}

#[test]
fn unknown_payload_tag_is_rejected() {
    let mut bytes = SignedTransaction {
        transaction: Transaction {
            chain_id: 1,
            signer: [0; 32],
            nonce: 0,
            payload: Payload::Bond { amount: 1 },
        },
        signature: [0; 64],
    }
    .encode()
    .to_vec();
    bytes[8 + 32 + 8] = 200;
    assert!(matches!(
        SignedTransaction::decode(bytes),
        Err(commonware_codec::Error::InvalidEnum(200))
    ));
}

/// A fixed transaction of every payload kind, signed with a fixed key, inside a fixed block.
fn golden_block() -> Block {
    let key = cairn_ledger::ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let spec = TaskSpec {
        model: "mlp".into(),
        initial_model: [1; 32],
        dataset: [2; 32],
        partition: "iid".into(),
        rounds: 3,
        local_steps: 10,
        optimizer: "sgd:lr=0.1".into(),
        robust_rule: "median".into(),
        commit_window: 2,
        reveal_window: 3,
        attest_window: 4,
        min_stake: 5,
        reward_per_round: 6,
    };
    let payloads = vec![
        Payload::Transfer {
            to: Address([4; 20]),
            amount: 7,
        },
        Payload::Bond { amount: 8 },
        Payload::Unbond { amount: 9 },
        Payload::Burn { amount: 10 },
        Payload::CreateTask { spec },
        Payload::JoinTask {
            task: 1,
            role: Role::Validator,
            bond: 11,
        },
        Payload::StartTask { task: 1 },
        Payload::CancelTask { task: 2 },
        Payload::CommitUpdate {
            task: 1,
            round: 0,
            commitment: [5; 32],
            trace_root: [6; 32],
        },
        Payload::RevealUpdate {
            task: 1,
            round: 0,
            update_hash: [7; 32],
            salt: [8; 32],
        },
        Payload::CommitAttestation {
            task: 1,
            round: 0,
            commitment: [9; 32],
        },
        Payload::RevealAttestation {
            task: 1,
            round: 0,
            model_hash: [10; 32],
            scores: BTreeMap::from([(Address([4; 20]), 12)]),
            salt: [11; 32],
        },
        Payload::ListDataset {
            content_hash: [12; 32],
            schema: "csv".into(),
            licence: "MIT".into(),
            price: 13,
        },
        Payload::BuyAccess { dataset: [12; 32] },
    ];
    let transactions: Vec<SignedTransaction> = payloads
        .into_iter()
        .enumerate()
        .map(|(nonce, payload)| SignedTransaction::new(&key, 77, nonce as u64, payload))
        .collect();
    Block {
        header: Header {
            chain_id: 77,
            height: 5,
            parent: [13; 32],
            transactions_root: transactions_root(&transactions),
            state_root: [14; 32],
        },
        transactions,
    }
}

#[test]
fn canonical_encoding_matches_the_golden_hash() {
    // Pins the wire format of every payload, the signing message and the block: consensus peers
    // and stored blocks depend on it. Change only with a format version bump.
    let block = golden_block();
    let encoding = blake3::hash(&block.to_bytes());
    assert_eq!(
        encoding.to_hex().as_str(),
        "5b75741a597a3db9b5f57d48df00b6c57b7a472b684b43fb378ecab4911985c4",
        "block encoding changed"
    );
    assert!(block.transactions.iter().all(SignedTransaction::verify));
    assert_eq!(Block::from_bytes(&block.to_bytes()).unwrap(), block);
}
