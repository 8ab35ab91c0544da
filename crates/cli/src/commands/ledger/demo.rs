//! `cairn ledger genesis` and `demo`: development keys, a new chain, and the scripted history.
//!
//! The demo's task is real: the trainers train a logistic regression on `digits` with the
//! round's functions, the validators aggregate and score what was revealed, and in the last
//! round one trainer reveals a scaled update, a validator's audit catches it, and the dispute is
//! played move by move until the ledger's referee re-runs the disputed step and slashes it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{bail, Context};
use cairn_ledger::dispute::{next_claim, Stage};
use cairn_ledger::ed25519_dalek::SigningKey;
use cairn_ledger::encoding::MAX_WITNESS_CHUNK;
use cairn_ledger::store::Store;
use cairn_ledger::transaction::{
    attestation_commitment, update_commitment, CommitmentScope, LastCheckpoint,
};
use cairn_ledger::{
    query, Address, Chain, DatasetRegistry, Genesis, Params, Payload, Role, SignedTransaction,
    TaskSpec, Verification,
};
use cairn_ml::data::{default_data_dir, BuiltinDataset};
use cairn_round::aggregation::{aggregate_round, Revealed};
use cairn_round::plan::seal_initial_model;
use cairn_round::scoring::{held_out, score_updates};
use cairn_round::training::{shard_of, Assignment, Trajectory};
use cairn_round::{params, trace, TaskPlan};
use cairn_sim::adversary::trajectory::Replaced;

use super::{store_path, GenesisArgs};

/// The datasets of a development chain: `digits` from the data folder.
pub(super) fn datasets() -> anyhow::Result<Arc<DatasetRegistry>> {
    let dir = default_data_dir().context("finding the data/ folder (set CAIRN_DATA_DIR)")?;
    let mut registry = DatasetRegistry::new();
    registry
        .load_builtin(BuiltinDataset::Digits, &dir)
        .context("loading digits")?;
    Ok(Arc::new(registry))
}

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

/// Each demo validator's consensus weight, which is also its bond in the demo task.
const VALIDATOR_WEIGHT: u128 = 10_000;

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
    let datasets = datasets()?;
    let genesis = Genesis {
        chain_id: args.chain_id,
        params: Params::default(),
        balances: keys.iter().map(|k| (address(k), 1_000_000)).collect(),
        validators: keys[4..7]
            .iter()
            .map(|k| (address(k), VALIDATOR_WEIGHT))
            .collect(),
        datasets: datasets.iter().map(|d| d.hash).collect::<BTreeSet<_>>(),
    };
    // The chain is created under a temporary name and moved into place once its genesis block
    // is committed, so a creation killed half way never leaves a `ledger.redb` that holds no
    // block. Blocks after genesis are each atomic: a later kill leaves a committed prefix.
    let partial = path.with_extension("redb.partial");
    if partial.exists() {
        // Left by an interrupted creation of this same directory: nothing committed to keep.
        std::fs::remove_file(&partial)
            .with_context(|| format!("removing the unfinished {}", partial.display()))?;
    }
    let store = Store::open(&partial).with_context(|| format!("creating {}", partial.display()))?;
    drop(Chain::create(store, &genesis, datasets.clone())?);
    std::fs::rename(&partial, &path)
        .with_context(|| format!("moving {} to {}", partial.display(), path.display()))?;
    let store = Store::open(&path).with_context(|| format!("opening {}", path.display()))?;
    Ok(Chain::open(store, datasets)?)
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

/// The demo task: a logistic regression on `digits`, two rounds of 20 steps, a trace leaf every
/// 5 steps, windows of 2 blocks.
fn demo_spec(registry: &DatasetRegistry) -> anyhow::Result<TaskSpec> {
    let mut spec = TaskSpec {
        model: "logistic:64-10".into(),
        initial_model: [0; 32],
        dataset: registry.hash_of("digits").context("digits is loaded")?,
        partition: "iid".into(),
        rounds: 2,
        local_steps: 20,
        optimizer: "sgd:lr=0.1,momentum=0.9,batch=32".into(),
        robust_rule: "median".into(),
        commit_window: 2,
        reveal_window: 2,
        availability_window: 2,
        attest_window: 2,
        min_stake: 1_000,
        reward_per_round: 60_000,
        verification: Verification {
            trace_every: 5,
            audit_ppm: 0,
            audit_window: 2,
            move_window: 2,
            challenge_bond: 500,
            min_trainer_bond: 2_000,
        },
    };
    seal_initial_model(&mut spec, registry)?;
    Ok(spec)
}

/// A trainer's round as the demo plays it: the update it reveals and the trajectory it answers
/// a dispute with.
struct Played {
    update: Vec<f32>,
    leaves: Vec<[u8; 32]>,
    last: trace::Checkpoint,
    trajectory: Arc<dyn Trajectory>,
}

/// Trainer `t`'s round from `model`: honest, or with its update scaled by `scale`.
fn train(
    plan: &Arc<TaskPlan>,
    trainers: &[Address],
    trainer: Address,
    seed: &[u8; 32],
    model: &[f32],
    scale: Option<f32>,
) -> anyhow::Result<Played> {
    let shard = shard_of(plan, 0, trainers, &trainer)?;
    let assignment = Assignment::new(plan.clone(), Arc::new(shard), seed, &trainer, model.into());
    let work = assignment.train()?;
    let Some(scale) = scale else {
        return Ok(Played {
            update: work.update,
            leaves: work.leaves,
            last: work.last,
            trajectory: Arc::new(assignment),
        });
    };
    let update: Vec<f32> = work.update.iter().map(|v| v * scale).collect();
    let replaced: Arc<dyn Trajectory> = Arc::new(Replaced::new(
        Arc::new(assignment),
        plan.local_steps,
        &update,
    ));
    let mut leaves = work.leaves.clone();
    let last = replaced.checkpoint(plan.local_steps)?;
    if let Some(leaf) = leaves.last_mut() {
        *leaf = last.hash();
    }
    Ok(Played {
        update,
        leaves,
        last,
        trajectory: replaced,
    })
}

/// The scripted history: accounts 0 creator, 1..=3 trainers, 4..=6 validators, 7 data owner.
/// Round 0: trainer 3 commits and never reveals; validator 6 attests another model. Round 1:
/// trainer 3 reveals its update doubled; validator 4 re-runs it, challenges, and wins.
pub(super) fn play_demo(chain: &mut Chain<Store>, args: &GenesisArgs) -> anyhow::Result<()> {
    let keys = dev_keys(args.seed, args.accounts);
    let addresses: Vec<Address> = keys.iter().map(address).collect();
    let mut signer = Signer {
        keys: &keys,
        chain_id: args.chain_id,
        nonces: BTreeMap::new(),
    };
    let registry = chain.datasets().clone();
    let spec = demo_spec(&registry)?;
    let plan = Arc::new(TaskPlan::from_spec(&spec, &registry)?);
    let listed = *blake3::hash(b"cairn demo dataset for sale").as_bytes();

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
                content_hash: listed,
                schema: "csv.gz: label u8, 64 pixels u8".into(),
                licence: "CC-BY-4.0".into(),
                price: 2_500,
            },
        ),
        signer.sign(0, Payload::CreateTask { spec: spec.clone() }),
    ];
    for member in 1..=6 {
        block.push(signer.sign(member, Payload::Bond { amount: 5_000 }));
    }
    apply(chain, block)?;

    let mut block = vec![signer.sign(0, Payload::BuyAccess { dataset: listed })];
    for member in 1..=6 {
        // Trainers lock 2 000; validators validate with their whole consensus weight.
        let (role, bond) = if member <= 3 {
            (Role::Trainer, 2_000)
        } else {
            (Role::Validator, VALIDATOR_WEIGHT)
        };
        block.push(signer.sign(
            member,
            Payload::JoinTask {
                task: 0,
                role,
                bond,
            },
        ));
    }
    apply(chain, block)?;
    apply(chain, vec![signer.sign(0, Payload::StartTask { task: 0 })])?;

    let trainers: Vec<Address> = {
        let mut sorted: Vec<Address> = addresses[1..=3].to_vec();
        sorted.sort_unstable();
        sorted
    };
    let mut model = plan.initial_params(&spec)?;
    // `M_{r−1}`: the task's server step (centered clipping's reference, server momentum) uses it.
    let mut previous: Option<Vec<f32>> = None;
    let mut cheat = None;
    for round in 0..2u32 {
        let opened = chain.tip().height;
        let record = query::round(chain.store(), 0, round)?.context("the round is open")?;
        let salt = *blake3::hash(&[round as u8]).as_bytes();
        let scope = |member: usize| CommitmentScope {
            chain_id: args.chain_id,
            task: 0,
            round,
            member: addresses[member],
        };
        let mut played = BTreeMap::new();
        for (t, address) in addresses.iter().enumerate().take(4).skip(1) {
            let scale = (round == 1 && t == 3).then_some(2.0);
            let run = train(&plan, &trainers, *address, &record.seed, &model, scale)?;
            played.insert(t, run);
        }
        let commits = played
            .iter()
            .map(|(t, run)| {
                let hash = params::hash(&run.update);
                signer.sign(
                    *t,
                    Payload::CommitUpdate {
                        task: 0,
                        round,
                        commitment: update_commitment(&scope(*t), &hash, &salt),
                        trace_root: trace::root(&run.leaves),
                    },
                )
            })
            .collect();
        apply(chain, commits)?;
        advance_to(chain, opened + 2)?;
        let revealing: Vec<usize> = if round == 0 {
            vec![1, 2]
        } else {
            vec![1, 2, 3]
        };
        let reveals = revealing
            .iter()
            .map(|t| {
                let run = &played[t];
                signer.sign(
                    *t,
                    Payload::RevealUpdate {
                        task: 0,
                        round,
                        update_hash: params::hash(&run.update),
                        salt,
                        last: LastCheckpoint {
                            weights: run.last.weights,
                            optimizer: run.last.optimizer,
                            batch: run.last.batch,
                        },
                        proof: trace::proof(&run.leaves, run.leaves.len() - 1).unwrap_or_default(),
                    },
                )
            })
            .collect();
        apply(chain, reveals)?;
        advance_to(chain, opened + 4)?;
        // Every validator holds every revealed update and votes so.
        let held: BTreeSet<Address> = revealing.iter().map(|t| addresses[*t]).collect();
        let votes = (4..=6)
            .map(|v| {
                signer.sign(
                    v,
                    Payload::VoteAvailability {
                        task: 0,
                        round,
                        held: held.clone(),
                    },
                )
            })
            .collect();
        apply(chain, votes)?;
        advance_to(chain, opened + 6)?;
        // Every validator aggregates and scores the revealed updates on the held-out test split.
        let blobs: Vec<(Address, Vec<u8>)> = revealing
            .iter()
            .map(|t| (addresses[*t], params::encode(&played[t].update)))
            .collect();
        let inputs = Revealed::all(&blobs);
        let aggregated = aggregate_round(&plan, &model, previous.as_deref(), &inputs);
        let held_out = held_out(&plan)?;
        let attestations: Vec<(usize, [u8; 32], BTreeMap<Address, u32>)> = (4..=6)
            .map(|v| {
                let scores =
                    score_updates(&plan, &model, &aggregated, &held_out, &BTreeSet::new())?;
                let dissent = round == 0 && v == 6;
                let model_hash = if dissent {
                    [0xde; 32]
                } else {
                    aggregated.model_hash
                };
                Ok((v, model_hash, scores))
            })
            .collect::<anyhow::Result<_>>()?;
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
        advance_to(chain, opened + 8)?;
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
        advance_to(chain, opened + 11)?;
        if round == 1 {
            cheat = played.remove(&3).map(|run| (record, run, model.clone()));
        }
        previous = Some(std::mem::replace(&mut model, aggregated.next_params));
    }

    // Validator 4 re-runs trainer 3's last round (its audit), finds another trace root, and
    // disputes it; both sides then move until the referee decides.
    let (record, run, input) = cheat.context("trainer 3 played round 1")?;
    let honest = train(&plan, &trainers, addresses[3], &record.seed, &input, None)?;
    apply(
        chain,
        vec![signer.sign(
            4,
            Payload::Challenge {
                task: 0,
                round: 1,
                trainer: addresses[3],
                trace_root: trace::root(&honest.leaves),
            },
        )],
    )?;
    play_dispute(chain, &mut signer, &plan, (&run, &honest))?;
    // Let the task settle and the dataset escrow release.
    let settle = chain.tip().height + spec.verification.audit_window + 2;
    let release = chain.tip().height + Params::default().access_escrow_blocks;
    advance_to(chain, settle.max(release))?;
    Ok(())
}

/// Plays dispute 0 to its end: the trainer claims from its trajectory, the challenger answers
/// from its own honest run, one move per block; at the last step the trainer posts its witness.
fn play_dispute(
    chain: &mut Chain<Store>,
    signer: &mut Signer<'_>,
    plan: &TaskPlan,
    (trainer, challenger): (&Played, &Played),
) -> anyhow::Result<()> {
    for _ in 0..64 {
        let dispute = query::dispute(chain.store(), 0)?.context("the dispute is open")?;
        let payloads: Vec<(usize, Payload)> = match dispute.stage {
            Stage::Claim { step } => {
                let leaf = next_claim(
                    dispute.low.step,
                    dispute.high.step,
                    plan.local_steps,
                    plan.trace_every,
                )
                .and_then(|(_, leaf)| leaf);
                let proof = leaf
                    .and_then(|index| trace::proof(&trainer.leaves, index))
                    .unwrap_or_default();
                vec![(
                    3,
                    Payload::DisputeClaim {
                        dispute: 0,
                        checkpoint: trainer.trajectory.checkpoint(step)?.hash(),
                        proof,
                    },
                )]
            }
            Stage::Answer { claim } => {
                let mine = challenger.trajectory.checkpoint(claim.step)?.hash();
                vec![(
                    4,
                    Payload::DisputeAnswer {
                        dispute: 0,
                        agree: mine == claim.checkpoint,
                    },
                )]
            }
            Stage::Witness { received, .. } => {
                let bytes = trainer.trajectory.witness(dispute.low.step)?.encode();
                bytes[received as usize..]
                    .chunks(MAX_WITNESS_CHUNK)
                    .enumerate()
                    .map(|(i, chunk)| {
                        (
                            3,
                            Payload::DisputeWitness {
                                dispute: 0,
                                offset: received + (i * MAX_WITNESS_CHUNK) as u64,
                                bytes: chunk.to_vec(),
                            },
                        )
                    })
                    .collect()
            }
            Stage::Resolved(_) => return Ok(()),
        };
        let transactions = payloads
            .into_iter()
            .map(|(member, payload)| signer.sign(member, payload))
            .collect();
        apply(chain, transactions)?;
    }
    bail!("the demo dispute did not end within 64 blocks")
}
