//! `cairn ledger genesis` and `demo`: development keys, a new chain, and the scripted history.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use cairn_ledger::ed25519_dalek::SigningKey;
use cairn_ledger::store::Store;
use cairn_ledger::transaction::{attestation_commitment, update_commitment, CommitmentScope};
use cairn_ledger::{Address, Chain, Genesis, Params, Payload, Role, SignedTransaction, TaskSpec};

use super::{store_path, GenesisArgs};

/// Development key `index` of `seed`: blake3 of a label, the seed and the index.
pub(super) fn dev_keys(seed: u64, count: u32) -> Vec<SigningKey> {
    (0..count)
        .map(|index| {
            let mut hasher = blake3::Hasher::new();
            hasher.update(b"cairn/dev-key");
            hasher.update(&seed.to_be_bytes());
            hasher.update(&index.to_be_bytes());
            SigningKey::from_bytes(hasher.finalize().as_bytes())
        })
        .collect()
}

pub(super) fn address(key: &SigningKey) -> Address {
    Address::from_public_key(&key.verifying_key())
}

pub(super) fn create(args: &GenesisArgs) -> anyhow::Result<Chain<Store>> {
    let path = store_path(&args.data_dir);
    if path.exists() {
        bail!(
            "{} already exists; choose another --data-dir or delete it",
            path.display()
        );
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let keys = dev_keys(args.seed, args.accounts);
    // Accounts 4, 5 and 6 are the demo's validators; they also validate the chain.
    let genesis = Genesis {
        chain_id: args.chain_id,
        params: Params::default(),
        balances: keys.iter().map(|k| (address(k), 1_000_000)).collect(),
        validators: keys[4..7].iter().map(|k| (address(k), 10_000)).collect(),
    };
    let store = Store::open(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(Chain::create(store, &genesis)?)
}

/// Signs for account `index` with the nonce the state expects next.
struct Signer<'a> {
    keys: &'a [SigningKey],
    chain_id: u64,
    nonces: BTreeMap<usize, u64>,
}

impl Signer<'_> {
    fn sign(&mut self, index: usize, payload: Payload) -> SignedTransaction {
        let nonce = self.nonces.entry(index).or_insert(0);
        let tx = SignedTransaction::new(&self.keys[index], self.chain_id, *nonce, payload);
        *nonce += 1;
        tx
    }
}

fn apply(chain: &mut Chain<Store>, transactions: Vec<SignedTransaction>) -> anyhow::Result<()> {
    let (_, rejected) = chain.propose_and_apply(transactions)?;
    if let Some((index, error)) = rejected.first() {
        bail!("demo transaction {index} was rejected: {error}");
    }
    Ok(())
}

fn advance_to(chain: &mut Chain<Store>, height: u64) -> anyhow::Result<()> {
    while chain.tip().height < height {
        apply(chain, Vec::new())?;
    }
    Ok(())
}

/// The scripted history: accounts 0 creator, 1..=3 trainers, 4..=6 validators, 7 data owner.
pub(super) fn play_demo(chain: &mut Chain<Store>, args: &GenesisArgs) -> anyhow::Result<()> {
    let keys = dev_keys(args.seed, args.accounts);
    let addresses: Vec<Address> = keys.iter().map(address).collect();
    let mut signer = Signer {
        keys: &keys,
        chain_id: args.chain_id,
        nonces: BTreeMap::new(),
    };
    let dataset = *blake3::hash(b"cairn demo dataset: mnist_5k.csv.gz").as_bytes();
    let spec = TaskSpec {
        model: "mlp-784-64-10".into(),
        initial_model: *blake3::hash(b"cairn demo initial model").as_bytes(),
        dataset,
        partition: "iid".into(),
        rounds: 2,
        local_steps: 50,
        optimizer: "sgd:lr=0.05".into(),
        robust_rule: "trimmed-mean:0.2".into(),
        commit_window: 2,
        reveal_window: 2,
        attest_window: 2,
        min_stake: 1_000,
        reward_per_round: 60_000,
    };

    let mut block = vec![
        signer.sign(
            0,
            Payload::Transfer {
                to: addresses[7],
                amount: 5_000,
            },
        ),
        signer.sign(
            7,
            Payload::ListDataset {
                content_hash: dataset,
                schema: "csv.gz: label u8, 784 pixels u8".into(),
                licence: "CC-BY-SA-3.0".into(),
                price: 2_500,
            },
        ),
        signer.sign(0, Payload::CreateTask { spec }),
    ];
    for trainer in 1..=3 {
        block.push(signer.sign(trainer, Payload::Bond { amount: 5_000 }));
    }
    apply(chain, block)?;

    let mut block = vec![signer.sign(0, Payload::BuyAccess { dataset })];
    for member in 1..=6 {
        let role = if member <= 3 {
            Role::Trainer
        } else {
            Role::Validator
        };
        block.push(signer.sign(
            member,
            Payload::JoinTask {
                task: 0,
                role,
                bond: 2_000,
            },
        ));
    }
    apply(chain, block)?;
    apply(chain, vec![signer.sign(0, Payload::StartTask { task: 0 })])?;

    // Round 0: trainer 3 commits and never reveals; validator 6 disagrees on the model.
    // Round 1: everyone behaves.
    for round in 0..2u32 {
        let opened = chain.tip().height;
        let salt = *blake3::hash(&[round as u8]).as_bytes();
        let update = |trainer: usize| *blake3::hash(&[b'u', trainer as u8, round as u8]).as_bytes();
        let scope = |member: usize| CommitmentScope {
            chain_id: args.chain_id,
            task: 0,
            round,
            member: addresses[member],
        };
        let commits = (1..=3)
            .map(|t| {
                signer.sign(
                    t,
                    Payload::CommitUpdate {
                        task: 0,
                        round,
                        commitment: update_commitment(&scope(t), &update(t), &salt),
                        trace_root: *blake3::hash(&[b't', t as u8, round as u8]).as_bytes(),
                    },
                )
            })
            .collect();
        apply(chain, commits)?;
        advance_to(chain, opened + 2)?;
        let revealing = if round == 0 { 1..=2 } else { 1..=3 };
        let reveals = revealing
            .map(|t| {
                signer.sign(
                    t,
                    Payload::RevealUpdate {
                        task: 0,
                        round,
                        update_hash: update(t),
                        salt,
                    },
                )
            })
            .collect();
        apply(chain, reveals)?;
        advance_to(chain, opened + 4)?;
        let model = *blake3::hash(&[b'm', round as u8]).as_bytes();
        let attestations: Vec<(usize, [u8; 32], BTreeMap<Address, u32>)> = (4..=6)
            .map(|v| {
                let dissent = round == 0 && v == 6;
                let model = if dissent { [0xde; 32] } else { model };
                let scores = (1..=if round == 0 { 2 } else { 3 })
                    .map(|t| {
                        let score = if dissent {
                            1_000_000
                        } else {
                            200_000 * t as u32 + 10_000 * v as u32
                        };
                        (addresses[t], score)
                    })
                    .collect();
                (v, model, scores)
            })
            .collect();
        let commits = attestations
            .iter()
            .map(|(v, model, scores)| {
                signer.sign(
                    *v,
                    Payload::CommitAttestation {
                        task: 0,
                        round,
                        commitment: attestation_commitment(&scope(*v), model, scores, &salt),
                    },
                )
            })
            .collect();
        apply(chain, commits)?;
        advance_to(chain, opened + 6)?;
        let reveals = attestations
            .into_iter()
            .map(|(v, model_hash, scores)| {
                signer.sign(
                    v,
                    Payload::RevealAttestation {
                        task: 0,
                        round,
                        model_hash,
                        scores,
                        salt,
                    },
                )
            })
            .collect();
        apply(chain, reveals)?;
        advance_to(chain, opened + 9)?;
    }
    // Let the dataset escrow release.
    let release = chain.tip().height + Params::default().access_escrow_blocks;
    advance_to(chain, release)?;
    Ok(())
}
