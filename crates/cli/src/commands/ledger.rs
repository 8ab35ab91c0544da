//! `cairn ledger`: create, fill and read a ledger data directory.
//!
//! `genesis` starts a chain of deterministic development accounts; `demo` also plays a scripted
//! history (transfers, staking, a dataset sale, a two-round training task with a dissenting
//! validator and a trainer that never reveals) so there is something to look at; `inspect`
//! prints balances, stakes, tasks, rounds, scores and rewards; `prove` shows and checks the
//! Merkle proof that a round finalized a given model hash.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cairn_ledger::ed25519_dalek::SigningKey;
use cairn_ledger::encoding::{from_hex, to_hex};
use cairn_ledger::query::{self, Snapshot};
use cairn_ledger::state::keys;
use cairn_ledger::store::{Proof, Store};
use cairn_ledger::transaction::{attestation_commitment, update_commitment};
use cairn_ledger::{
    Address, Chain, Genesis, Outcome, Params, Payload, Role, SignedTransaction, TaskSpec,
};

/// File name of the state database inside a data directory.
const STORE_FILE: &str = "ledger.redb";

/// Arguments of `cairn ledger`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  cairn ledger demo --data-dir /tmp/ledger\n  \
                  cairn ledger inspect --data-dir /tmp/ledger\n  \
                  cairn ledger prove --data-dir /tmp/ledger --task 0 --round 0\n\n\
                  See docs/ledger.md."
)]
pub struct LedgerArgs {
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LedgerCommand {
    /// Start a chain of development accounts (deterministic keys) in a new data directory.
    Genesis(GenesisArgs),
    /// Start a chain and play a scripted history on it, to have something to inspect.
    Demo(GenesisArgs),
    /// Print the state: balances, stakes, tasks, rounds, scores, rewards, datasets.
    Inspect(InspectArgs),
    /// Print and verify the Merkle proof of a round's finalized model hash.
    Prove(ProveArgs),
}

#[derive(Debug, clap::Args)]
struct GenesisArgs {
    /// Directory to create the ledger in (it must not already hold one).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Chain id written into genesis; transactions for other chains are rejected.
    #[arg(long, default_value_t = 1)]
    chain_id: u64,
    /// Number of development accounts (keys derived from --seed and the account index).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(8..=10_000))]
    accounts: u32,
    /// Seed of the development keys.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Ledger data directory (made by `cairn ledger genesis` or `demo`, or by a node).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Print the whole state as JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ProveArgs {
    /// Ledger data directory.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Task id.
    #[arg(long)]
    task: u64,
    /// Round number.
    #[arg(long)]
    round: u32,
    /// Model hash (64 hex digits) to check the proof against [default: the stored one].
    #[arg(long, value_name = "HEX")]
    expect: Option<String>,
}

/// Runs `cairn ledger`.
pub fn run(args: LedgerArgs) -> anyhow::Result<()> {
    match args.command {
        LedgerCommand::Genesis(args) => {
            let chain = create(&args)?;
            println!(
                "created chain {} at {} (root {})",
                args.chain_id,
                store_path(&args.data_dir).display(),
                to_hex(&chain.store().root())
            );
            for (index, key) in dev_keys(args.seed, args.accounts).iter().enumerate() {
                println!("account {index:>4}  {}", address(key));
            }
            Ok(())
        }
        LedgerCommand::Demo(args) => {
            let mut chain = create(&args)?;
            play_demo(&mut chain, &args)?;
            println!(
                "demo chain at {}: height {}, root {}",
                store_path(&args.data_dir).display(),
                chain.tip().height,
                to_hex(&chain.store().root())
            );
            println!(
                "next: cairn ledger inspect --data-dir {}",
                args.data_dir.display()
            );
            Ok(())
        }
        LedgerCommand::Inspect(args) => inspect(&args),
        LedgerCommand::Prove(args) => prove(&args),
    }
}

fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

/// Opens an existing ledger (never creates one).
fn open_existing(data_dir: &Path) -> anyhow::Result<Store> {
    let path = store_path(data_dir);
    if !path.is_file() {
        bail!(
            "no ledger at {}; create one with `cairn ledger demo --data-dir {}`",
            path.display(),
            data_dir.display()
        );
    }
    Store::open(&path).with_context(|| format!("opening {}", path.display()))
}

/// Development key `index` of `seed`: blake3 of a label, the seed and the index.
fn dev_keys(seed: u64, count: u32) -> Vec<SigningKey> {
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

fn address(key: &SigningKey) -> Address {
    Address::from_public_key(&key.verifying_key())
}

fn create(args: &GenesisArgs) -> anyhow::Result<Chain<Store>> {
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
fn play_demo(chain: &mut Chain<Store>, args: &GenesisArgs) -> anyhow::Result<()> {
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
        let commits = (1..=3)
            .map(|t| {
                signer.sign(
                    t,
                    Payload::CommitUpdate {
                        task: 0,
                        round,
                        commitment: update_commitment(&update(t), &salt),
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
                        commitment: attestation_commitment(model, scores, &salt),
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

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
fn emit(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    let store = open_existing(&args.data_dir)?;
    let snapshot = Snapshot::read(&store)?;
    let mut out = String::new();
    if args.json {
        return emit(&(serde_json::to_string_pretty(&snapshot)? + "\n"));
    }
    let height = snapshot
        .height
        .map_or("none".to_string(), |h| h.to_string());
    writeln!(
        out,
        "chain {}  height {height}  state root {}",
        snapshot.chain_id, snapshot.state_root
    )?;
    writeln!(
        out,
        "supply {}  (accounted for in balances, stakes and escrows: {})",
        snapshot.supply,
        snapshot
            .holdings()
            .map_or("overflow".to_string(), |h| h.to_string())
    )?;
    writeln!(out, "\naccounts ({}):", snapshot.accounts.len())?;
    for (address, account) in &snapshot.accounts {
        let stake = snapshot.stakes.get(address).copied().unwrap_or_default();
        let earned = snapshot.rewards.get(address).copied().unwrap_or(0);
        writeln!(
        out,
            "  {address}  balance {:>10}  nonce {:>3}  bonded {:>7} (locked {:>6}, unbonding {:>6})  rewards {earned}",
            account.balance, account.nonce, stake.bonded, stake.locked, stake.unbonding
        )?;
    }
    writeln!(out, "\ntasks ({}):", snapshot.tasks.len())?;
    for task in &snapshot.tasks {
        writeln!(
            out,
            "  task {}  {:?}  model {}  creator {}  escrow {}  trainers {}  validators {}",
            task.id,
            task.status,
            task.spec.model,
            task.creator,
            task.escrow,
            task.trainers.len(),
            task.validators.len()
        )?;
        for round in snapshot.rounds.iter().filter(|r| r.task == task.id) {
            print_round(&mut out, round)?;
        }
    }
    writeln!(out, "\ndatasets ({}):", snapshot.datasets.len())?;
    for entry in &snapshot.datasets {
        let listing = &entry.listing;
        writeln!(
            out,
            "  {}  owner {}  price {}  sales {}  licence {}",
            entry.content_hash, listing.owner, listing.price, listing.sales, listing.licence
        )?;
    }
    writeln!(out, "  payments in escrow: {}", snapshot.access_escrow)?;
    emit(&out)
}

fn print_round(out: &mut String, round: &cairn_ledger::Round) -> std::fmt::Result {
    let status = match &round.outcome {
        None => "open".to_string(),
        Some(Outcome::TimedOut { slashed }) => format!("timed out, slashed {slashed:?}"),
        Some(Outcome::Finalized {
            model_hash,
            slashed,
            ..
        }) => {
            format!(
                "finalized model {}, {} slashed",
                to_hex(model_hash),
                slashed.len()
            )
        }
    };
    writeln!(
        out,
        "    round {} opened at {}: {} commits, {} attestations, {status}",
        round.number,
        round.opened_at,
        round.commits.len(),
        round.attestations.len()
    )?;
    if let Some(Outcome::Finalized {
        scores,
        trainer_rewards,
        validator_rewards,
        slashed,
        ..
    }) = &round.outcome
    {
        for (trainer, score) in scores {
            let paid = trainer_rewards.get(trainer).copied().unwrap_or(0);
            writeln!(
                out,
                "      trainer   {trainer}  score {score:>7} ppm  paid {paid}"
            )?;
        }
        for (validator, paid) in validator_rewards {
            writeln!(out, "      validator {validator}  paid {paid}")?;
        }
        for (trainer, amount) in slashed {
            writeln!(
                out,
                "      slashed   {trainer}  {amount} (commit never revealed)"
            )?;
        }
    }
    Ok(())
}

fn prove(args: &ProveArgs) -> anyhow::Result<()> {
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
                .with_context(|| format!("proof does not show model hash {}", to_hex(&hash)))?;
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
