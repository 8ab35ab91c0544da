//! The robustness benchmark: federated training with a Byzantine minority, measured like a paper
//! over a grid of data partitions × defences × attacks × seeds.
//!
//! Each cell trains the task the way the protocol does — the same shards
//! ([`cairn_round::training::shards`]), the same bit-exact local runs ([`Assignment::train`]),
//! the validators' own aggregation ([`aggregate_round`]: robust pipeline and server step) —
//! but without consensus, ledger or audits: it measures what the robust rule
//! alone holds off, the case of private data where audits cannot re-execute the work. Attackers
//! are omniscient (they see every honest vector of the round, as in the papers), except label
//! flippers, which train honestly on their shard with every label flipped.
//!
//! A defence is a robust rule with its pre-aggregation chain plus remedies from the
//! heterogeneity literature, each written as a `+` suffix:
//! - `+wm:β` worker momentum across rounds ([`cairn_round::training::carry_momentum`]):
//!   honest trainers send `m_r = β m_{r−1} + (1 − β) Δ_r` instead of `Δ_r`, as their traces
//!   commit it;
//! - `+sm:β` server heavy-ball momentum ([`cairn_round::aggregation::server_step`]):
//!   `M_{r+1} = M_r + a + β (M_r − M_{r−1})`, which a task names in its rule as well.
//!
//! and the validators' held-out guard `+screen:K` ([`cairn_round::aggregation::screen`]),
//! which runs inside [`aggregate_round`] like the rest of the rule.
//!
//! Centered clipping always starts from the last global step `M_r − M_{r−1}`.
//!
//! Every cell is deterministic: the same grid gives the same bytes at any `threads`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use cairn_ml::data::BuiltinDataset;
use cairn_ml::model::Model;
use cairn_robust::attack::{craft, Attack, Setting};
use cairn_round::aggregation::{
    aggregate_round, reference_step, screening_set, AggregationOutcome, Revealed,
};
use cairn_round::params;
use cairn_round::syntax::split_remedies;
use cairn_round::training::{shards, Shard};
use cairn_round::{Address, Assignment, DatasetRegistry, TaskPlan, TaskSpec, Verification};
use rayon::prelude::*;
use serde::Serialize;

use crate::report::field;
use crate::seeds::SeedRange;

/// Why a grid cannot run.
#[derive(Debug, thiserror::Error)]
pub enum RobustnessError {
    /// A defence, attack or partition string does not parse, or the grid is empty.
    #[error("{0}")]
    Grid(String),
    /// The dataset could not be loaded.
    #[error("dataset: {0}")]
    Data(String),
    /// A cell failed (e.g. a partition that cannot be cut for this many trainers).
    #[error("{cell}: {reason}")]
    Cell {
        /// The cell, as `partition / defence / attack / seed`.
        cell: String,
        /// What went wrong.
        reason: String,
    },
}

/// A robust rule with its pre-aggregation chain, and the momentum remedies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Defence {
    /// As written (`nnm:5>trimmed_mean:5+wm:0.9`).
    pub name: String,
    /// The rule with its pre-aggregation chain, as a task spec names it.
    pub rule: String,
    /// Worker momentum `β` across rounds (0: none).
    pub worker_momentum: f32,
    /// Server heavy-ball momentum `β` (0: none).
    pub server_momentum: f32,
}

impl FromStr for Defence {
    type Err = String;

    /// `RULE[+screen:K][+wm:β][+sm:β]`, the syntax of a task's `robust_rule`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (_, remedies) = split_remedies(text.trim())?;
        Ok(Defence {
            name: text.trim().to_string(),
            rule: text.trim().to_string(),
            worker_momentum: remedies.worker_momentum,
            server_momentum: remedies.server_momentum,
        })
    }
}

/// What the `f` Byzantine trainers do.
#[derive(Clone, Debug, PartialEq)]
pub enum Threat {
    /// Nothing: they train honestly (the reference every attack is compared with).
    None,
    /// They train honestly on their shard with every label `y` flipped to `C − 1 − y`.
    LabelFlip,
    /// They send the vectors `cairn_robust::attack::craft` makes from every honest vector.
    Crafted(Attack),
    /// Inner-product manipulation aimed past the held-out guard (`guard_ipm:ε`): the
    /// attackers compute the validators' reference step `r` themselves (public data, a seed
    /// from `M_r`'s hash) and send `−ε · (μ − ⟨μ, r̂⟩ r̂) + 10⁻³ |μ| r̂`, the IPM vector with its
    /// component along `r` replaced by a small positive one, so that its cosine with `r` is
    /// positive and the guard never screens it.
    GuardIpm(f32),
}

/// An attack of the grid, as written and parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreatSpec {
    /// As written (`none`, `label_flip`, `ipm:0.5`, ...).
    pub name: String,
    /// What it does.
    pub threat: Threat,
}

impl FromStr for ThreatSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let name = text.trim().to_string();
        let threat = match name.as_str() {
            "none" => Threat::None,
            "label_flip" => Threat::LabelFlip,
            other if other.starts_with("guard_ipm:") => {
                let epsilon = other["guard_ipm:".len()..]
                    .parse::<f32>()
                    .ok()
                    .filter(|e| e.is_finite() && *e > 0.0)
                    .ok_or_else(|| format!("`{other}`: guard_ipm:ε needs a positive ε"))?;
                Threat::GuardIpm(epsilon)
            }
            other => Threat::Crafted(Attack::from_str(other).map_err(|e| e.to_string())?),
        };
        Ok(ThreatSpec { name, threat })
    }
}

/// The training every cell runs.
#[derive(Clone, Debug, Serialize)]
pub struct Training {
    /// Dataset name (`mnist_5k`, `digits`).
    pub dataset: String,
    /// Folder of the datasets (`None`: the default one).
    #[serde(skip)]
    pub data_dir: Option<PathBuf>,
    /// Model (`mlp:784-64-10`).
    pub model: String,
    /// Local optimizer with its batch (`sgd:lr=0.1,momentum=0.9,batch=32`).
    pub optimizer: String,
    /// Local steps per round.
    pub local_steps: u32,
    /// Rounds.
    pub rounds: u32,
    /// Trainers in all.
    pub trainers: usize,
    /// Byzantine trainers among them (`f`).
    pub byzantine: usize,
}

impl Default for Training {
    /// The setting of the issue that started this benchmark: `mnist_5k`, an MLP 784-64-10, 25
    /// trainers of which 5 attack, 20 rounds of 20 local SGD steps, batch 32.
    fn default() -> Self {
        Self {
            dataset: "mnist_5k".into(),
            data_dir: None,
            model: "mlp:784-64-10".into(),
            optimizer: "sgd:lr=0.1,momentum=0.9,batch=32".into(),
            local_steps: 20,
            rounds: 20,
            trainers: 25,
            byzantine: 5,
        }
    }
}

/// The grid: every partition × defence × attack × seed is one run.
#[derive(Clone, Debug)]
pub struct Grid {
    /// The training every cell runs.
    pub training: Training,
    /// Data partitions (`iid`, `dirichlet:0.1`, `shards:2`, ...).
    pub partitions: Vec<String>,
    /// Defences.
    pub defences: Vec<Defence>,
    /// Attacks (`none` is the no-attack reference).
    pub attacks: Vec<ThreatSpec>,
    /// Seeds.
    pub seeds: SeedRange,
}

/// The partitions of the default grid.
pub const DEFAULT_PARTITIONS: [&str; 4] = ["iid", "dirichlet:0.5", "dirichlet:0.1", "shards:2"];

/// The attacks of the default grid: every crafted attack of `cairn-robust` that steers a robust
/// rule, plus label flipping, and the no-attack reference (the optimized searches are left out
/// of the default grid for time; name them with `--attacks`).
pub const DEFAULT_ATTACKS: [&str; 10] = [
    "none",
    "sign_flip",
    "gaussian",
    "ipm:0.1",
    "ipm:0.5",
    "alie",
    "mimic",
    "min_max:std",
    "min_sum:std",
    "label_flip",
];

/// The defences of the default grid (f = 5 of 25): every rule with the pre-aggregation the
/// literature pairs it with (centered clipping at radius 1 with 3 iterations: the default
/// radius of 100 never clips these updates). The remedies run with `--defences`.
pub const DEFAULT_DEFENCES: [&str; 11] = [
    "mean",
    "trimmed_mean:5",
    "median",
    "krum:5",
    "nnm:5>trimmed_mean:5",
    "nnm:5>median",
    "nnm:5>krum:5",
    "nnm:5>geometric_median",
    "nnm:5>centered_clipping:1:3",
    "arc:5,nnm:5>centered_clipping:1:3",
    "bucketing:2>centered_clipping:1:3",
];

impl Grid {
    /// The default grid at `seeds`, every string parsed.
    pub fn default_at(seeds: SeedRange) -> Result<Self, RobustnessError> {
        let parse = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Self::parse(
            Training::default(),
            parse(&DEFAULT_PARTITIONS),
            &parse(&DEFAULT_DEFENCES),
            &parse(&DEFAULT_ATTACKS),
            seeds,
        )
    }

    /// A grid from strings; every one is checked.
    pub fn parse(
        training: Training,
        partitions: Vec<String>,
        defences: &[String],
        attacks: &[String],
        seeds: SeedRange,
    ) -> Result<Self, RobustnessError> {
        let defences = defences
            .iter()
            .map(|d| d.parse())
            .collect::<Result<Vec<Defence>, String>>()
            .map_err(RobustnessError::Grid)?;
        let attacks = attacks
            .iter()
            .map(|a| a.parse())
            .collect::<Result<Vec<ThreatSpec>, String>>()
            .map_err(RobustnessError::Grid)?;
        if partitions.is_empty() || defences.is_empty() || attacks.is_empty() {
            return Err(RobustnessError::Grid(
                "the grid needs at least one partition, defence and attack".into(),
            ));
        }
        if training.byzantine >= training.trainers {
            return Err(RobustnessError::Grid(format!(
                "{} Byzantine trainers of {} leaves no honest one",
                training.byzantine, training.trainers
            )));
        }
        Ok(Grid {
            training,
            partitions,
            defences,
            attacks,
            seeds,
        })
    }

    /// Runs in the grid.
    pub fn len(&self) -> usize {
        self.partitions.len()
            * self.defences.len()
            * self.attacks.len()
            * self.seeds.count() as usize
    }

    /// Whether the grid has no run (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every cell, partition-major, then defence, attack and seed.
    fn cells(&self) -> Vec<(usize, usize, usize, u64)> {
        let mut cells = Vec::with_capacity(self.len());
        for p in 0..self.partitions.len() {
            for d in 0..self.defences.len() {
                for a in 0..self.attacks.len() {
                    for seed in self.seeds.seeds() {
                        cells.push((p, d, a, seed));
                    }
                }
            }
        }
        cells
    }
}

/// One run's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CellResult {
    /// Partition.
    pub partition: String,
    /// Defence.
    pub defence: String,
    /// Attack.
    pub attack: String,
    /// Seed.
    pub seed: u64,
    /// Test accuracy of the final model, in percent.
    pub final_accuracy: f64,
    /// Test loss of the final model.
    pub final_loss: f64,
    /// Test accuracy after every round, in percent.
    pub curve: Vec<f64>,
    /// Rounds whose rule refused the vectors (the model kept).
    pub refused_rounds: u32,
}

/// Mean and sample standard deviation over the seeds of one (partition, defence, attack).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Partition.
    pub partition: String,
    /// Defence.
    pub defence: String,
    /// Attack.
    pub attack: String,
    /// Seeds.
    pub runs: usize,
    /// Mean final accuracy, percent.
    pub mean: f64,
    /// Sample standard deviation (0 with one seed).
    pub std: f64,
    /// Lowest final accuracy over the seeds.
    pub min: f64,
}

/// The whole benchmark's results.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The training every cell ran.
    pub training: Training,
    /// Partitions, in grid order.
    pub partitions: Vec<String>,
    /// Defences, in grid order.
    pub defences: Vec<String>,
    /// Attacks, in grid order.
    pub attacks: Vec<String>,
    /// Every run, in grid order.
    pub runs: Vec<CellResult>,
    /// Every (partition, defence, attack) over the seeds, in grid order.
    pub summary: Vec<Summary>,
}

/// The dataset and the spec every cell's plan is parsed from.
struct Base {
    registry: DatasetRegistry,
    spec: TaskSpec,
}

impl Base {
    fn new(training: &Training) -> Result<Self, RobustnessError> {
        let data_dir = match &training.data_dir {
            Some(dir) => dir.clone(),
            None => cairn_ml::data::default_data_dir()
                .map_err(|e| RobustnessError::Data(e.to_string()))?,
        };
        let builtin = BuiltinDataset::from_str(&training.dataset)
            .map_err(|e| RobustnessError::Data(e.to_string()))?;
        let mut registry = DatasetRegistry::new();
        let dataset = registry
            .load_builtin(builtin, &data_dir)
            .map_err(|e| RobustnessError::Data(e.to_string()))?;
        let spec = TaskSpec {
            model: training.model.clone(),
            initial_model: [0; 32],
            dataset,
            partition: "iid".into(),
            rounds: training.rounds,
            local_steps: training.local_steps,
            optimizer: training.optimizer.clone(),
            robust_rule: "mean".into(),
            commit_window: 1,
            reveal_window: 1,
            availability_window: 1,
            attest_window: 1,
            min_stake: 1,
            reward_per_round: 0,
            verification: Verification::with_audit_ppm(0, 0),
        };
        Ok(Base { registry, spec })
    }

    fn plan(&self, partition: &str, rule: &str) -> Result<(TaskPlan, TaskSpec), String> {
        let mut spec = self.spec.clone();
        spec.partition = partition.to_string();
        spec.robust_rule = rule.to_string();
        let plan = TaskPlan::from_spec(&spec, &self.registry).map_err(|e| e.to_string())?;
        Ok((plan, spec))
    }
}

/// Checks that every partition and defence parses into a plan the trainers can run, before
/// any cell starts.
pub fn check(grid: &Grid) -> Result<(), RobustnessError> {
    let base = Base::new(&grid.training)?;
    for partition in &grid.partitions {
        for defence in &grid.defences {
            base.plan(partition, &defence.rule)
                .map_err(|reason| RobustnessError::Cell {
                    cell: format!("{partition} / {}", defence.name),
                    reason,
                })?;
        }
    }
    Ok(())
}

/// Runs every cell of `grid`, `threads` at a time, calling `done` after each; the report is the
/// same at any `threads`.
pub fn run_grid(
    grid: &Grid,
    threads: usize,
    done: &(dyn Fn() + Sync),
) -> Result<Report, RobustnessError> {
    let base = Base::new(&grid.training)?;
    let cells = grid.cells();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| RobustnessError::Grid(e.to_string()))?;
    let runs: Vec<CellResult> = pool.install(|| {
        cells
            .par_iter()
            .map(|&(p, d, a, seed)| {
                let partition = &grid.partitions[p];
                let defence = &grid.defences[d];
                let attack = &grid.attacks[a];
                let result = run_cell(&base, &grid.training, partition, defence, attack, seed)
                    .map_err(|reason| RobustnessError::Cell {
                        cell: format!(
                            "{partition} / {} / {} / seed {seed}",
                            defence.name, attack.name
                        ),
                        reason,
                    });
                done();
                result
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    let summary = summarize(&runs);
    Ok(Report {
        training: grid.training.clone(),
        partitions: grid.partitions.clone(),
        defences: grid.defences.iter().map(|d| d.name.clone()).collect(),
        attacks: grid.attacks.iter().map(|a| a.name.clone()).collect(),
        runs,
        summary,
    })
}

/// Runs one cell (also what tests call).
pub fn run_one(
    training: &Training,
    partition: &str,
    defence: &Defence,
    attack: &ThreatSpec,
    seed: u64,
) -> Result<CellResult, RobustnessError> {
    let base = Base::new(training)?;
    run_cell(&base, training, partition, defence, attack, seed).map_err(|reason| {
        RobustnessError::Cell {
            cell: format!(
                "{partition} / {} / {} / seed {seed}",
                defence.name, attack.name
            ),
            reason,
        }
    })
}

/// `blake3(tag || seed || index)`: the seeds of a cell's addresses and rounds.
fn derive(tag: &[u8], seed: u64, index: u64) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cairn/robustness/v1/");
    hasher.update(tag);
    hasher.update(&seed.to_be_bytes());
    hasher.update(&index.to_be_bytes());
    *hasher.finalize().as_bytes()
}

fn run_cell(
    base: &Base,
    training: &Training,
    partition: &str,
    defence: &Defence,
    attack: &ThreatSpec,
    seed: u64,
) -> Result<CellResult, String> {
    let (plan, spec) = base.plan(partition, &defence.rule)?;
    let plan = Arc::new(plan);
    let n = training.trainers;
    let f = match attack.threat {
        Threat::None => 0,
        _ => training.byzantine,
    };
    // Addresses from the seed; the first `f` drawn are Byzantine, so their shards (which
    // follow address order) change with the seed.
    let drawn: Vec<Address> = (0..n as u64)
        .map(|i| {
            let mut bytes = [0u8; 20];
            bytes.copy_from_slice(&derive(b"address", seed, i)[..20]);
            Address(bytes)
        })
        .collect();
    let byzantine: Vec<Address> = drawn[..f].to_vec();
    let mut trainers = drawn.clone();
    trainers.sort();
    let parts = shards(&plan, seed, &trainers).map_err(|e| e.to_string())?;
    let mut shard_of = BTreeMap::new();
    for (trainer, indices) in trainers.iter().zip(parts) {
        let data = plan
            .dataset
            .split
            .train
            .subset(&indices)
            .map_err(|e| e.to_string())?;
        if data.is_empty() {
            return Err(format!(
                "partition {partition} leaves trainer {trainer} without a sample"
            ));
        }
        let mut shard = Shard { indices, data };
        if attack.threat == Threat::LabelFlip && byzantine.contains(trainer) {
            shard = crate::adversary::trainer::flipped(&shard)?;
        }
        shard_of.insert(*trainer, Arc::new(shard));
    }
    let d = plan.param_count();
    let mut model = plan.initial_params(&spec).map_err(|e| e.to_string())?;
    let mut previous: Option<Vec<f32>> = None;
    let mut sent: BTreeMap<Address, Arc<[f32]>> = BTreeMap::new();
    let mut curve = Vec::with_capacity(training.rounds as usize);
    let mut refused_rounds = 0;
    let mut last = (0.0, 0.0);
    for round in 0..training.rounds {
        let round_seed = derive(b"round", seed, u64::from(round));
        let start: Arc<[f32]> = model.clone().into();
        let crafted = matches!(attack.threat, Threat::Crafted(_) | Threat::GuardIpm(_));
        // Every trainer that trains: all of them, except crafting attackers.
        let mut vectors: BTreeMap<Address, Vec<f32>> = BTreeMap::new();
        for trainer in &trainers {
            if crafted && byzantine.contains(trainer) {
                continue;
            }
            // The task's own local run: with worker momentum its update carries what this
            // trainer sent last round, exactly as its trace commits it.
            let assignment = Assignment::new(
                plan.clone(),
                shard_of[trainer].clone(),
                &round_seed,
                trainer,
                start.clone(),
            )
            .carrying(sent.get(trainer).cloned());
            let work = assignment.train().map_err(|e| e.to_string())?;
            sent.insert(*trainer, work.update.clone().into());
            vectors.insert(*trainer, work.update);
        }
        if let Threat::Crafted(kind) = &attack.threat {
            let honest: Vec<f32> = vectors.values().flat_map(|v| v.iter().copied()).collect();
            let setting = Setting {
                n,
                f,
                rule: plan.rule.clone(),
                pre: plan.pre.clone(),
                seed: u64::from_le_bytes(round_seed[..8].try_into().unwrap_or_default()),
                stale: None,
            };
            let rows = craft(kind, &honest, d, &setting).map_err(|e| e.to_string())?;
            for (rank, trainer) in byzantine.iter().enumerate() {
                vectors.insert(*trainer, rows[rank * d..(rank + 1) * d].to_vec());
            }
        }
        if let Threat::GuardIpm(epsilon) = attack.threat {
            let row = guard_ipm(&plan, &model, &vectors, epsilon)?;
            for trainer in &byzantine {
                vectors.insert(*trainer, row.clone());
            }
        }
        // The validators' own aggregation: blobs in ascending trainer order, the task's rule,
        // centered clipping from the last global step, the server step.
        let blobs: Vec<(Address, Vec<u8>)> = vectors
            .iter()
            .map(|(trainer, vector)| (*trainer, params::encode(vector)))
            .collect();
        let inputs = Revealed::all(&blobs);
        let aggregated = aggregate_round(&plan, &model, previous.as_deref(), &inputs);
        if !matches!(aggregated.outcome, AggregationOutcome::Applied(_)) {
            tracing::debug!(outcome = ?aggregated.outcome, round, "the rule refused the round");
            refused_rounds += 1;
        }
        previous = Some(std::mem::replace(&mut model, aggregated.next_params));
        let evaluation = Model::new(plan.model.clone(), model.clone())
            .and_then(|m| m.evaluate(&plan.dataset.split.test, 256))
            .map_err(|e| e.to_string())?;
        last = (
            100.0 * f64::from(evaluation.accuracy),
            f64::from(evaluation.loss),
        );
        curve.push(last.0);
    }
    Ok(CellResult {
        partition: partition.to_string(),
        defence: defence.name.clone(),
        attack: attack.name.clone(),
        seed,
        final_accuracy: last.0,
        final_loss: last.1,
        curve,
        refused_rounds,
    })
}

/// The vector of [`Threat::GuardIpm`] from the honest vectors of the round.
fn guard_ipm(
    plan: &cairn_round::TaskPlan,
    model: &[f32],
    honest: &BTreeMap<Address, Vec<f32>>,
    epsilon: f32,
) -> Result<Vec<f32>, String> {
    let d = model.len();
    let count = honest.len().max(1) as f64;
    let mut mean = vec![0.0f64; d];
    for vector in honest.values() {
        for (m, v) in mean.iter_mut().zip(vector) {
            *m += f64::from(*v) / count;
        }
    }
    let data = screening_set(plan);
    let reference = reference_step(plan, model, &data)
        .ok_or_else(|| "the attackers could not compute the reference step".to_string())?;
    let reference_norm = reference
        .iter()
        .map(|r| f64::from(*r) * f64::from(*r))
        .sum::<f64>()
        .sqrt();
    if reference_norm == 0.0 {
        return Ok(mean
            .iter()
            .map(|m| (-f64::from(epsilon) * m) as f32)
            .collect());
    }
    let unit: Vec<f64> = reference
        .iter()
        .map(|r| f64::from(*r) / reference_norm)
        .collect();
    let along: f64 = mean.iter().zip(&unit).map(|(m, u)| m * u).sum();
    let mean_norm = mean.iter().map(|m| m * m).sum::<f64>().sqrt();
    Ok(mean
        .iter()
        .zip(&unit)
        .map(|(m, u)| (-f64::from(epsilon) * (m - along * u) + 1e-3 * mean_norm * u) as f32)
        .collect())
}

/// Mean, sample standard deviation and minimum over the seeds of every (partition, defence,
/// attack), in the order the runs came (grid order).
pub fn summarize(runs: &[CellResult]) -> Vec<Summary> {
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    for run in runs {
        let key = (
            run.partition.clone(),
            run.defence.clone(),
            run.attack.clone(),
        );
        let values = groups.entry(key.clone()).or_default();
        if values.is_empty() {
            order.push(key);
        }
        values.push(run.final_accuracy);
    }
    order
        .into_iter()
        .map(|key| {
            let values = &groups[&key];
            let count = values.len();
            let mean = values.iter().sum::<f64>() / count as f64;
            let std = if count > 1 {
                (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1) as f64).sqrt()
            } else {
                0.0
            };
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            Summary {
                partition: key.0,
                defence: key.1,
                attack: key.2,
                runs: count,
                mean,
                std,
                min,
            }
        })
        .collect()
}

impl Report {
    /// One line per run: partition, defence, attack, seed, final accuracy and loss, refused
    /// rounds.
    pub fn runs_csv(&self) -> String {
        let mut out = String::from(
            "partition,defence,attack,seed,final_accuracy,final_loss,refused_rounds\n",
        );
        for run in &self.runs {
            let _ = writeln!(
                out,
                "{},{},{},{},{:.2},{:.4},{}",
                field(&run.partition),
                field(&run.defence),
                field(&run.attack),
                run.seed,
                run.final_accuracy,
                run.final_loss,
                run.refused_rounds
            );
        }
        out
    }

    /// One line per (partition, defence, attack): runs, mean, standard deviation, minimum and
    /// the drop from the same defence's no-attack mean (empty without a `none` column).
    pub fn summary_csv(&self) -> String {
        let mut out = String::from("partition,defence,attack,runs,mean,std,min,drop\n");
        for s in &self.summary {
            let drop = self
                .mean_of(&s.partition, &s.defence, "none")
                .map(|clean| format!("{:.2}", clean - s.mean))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{},{},{},{},{:.2},{:.2},{:.2},{}",
                field(&s.partition),
                field(&s.defence),
                field(&s.attack),
                s.runs,
                s.mean,
                s.std,
                s.min,
                drop
            );
        }
        out
    }

    /// The mean of one (partition, defence, attack), if it ran.
    pub fn mean_of(&self, partition: &str, defence: &str, attack: &str) -> Option<f64> {
        self.summary
            .iter()
            .find(|s| s.partition == partition && s.defence == defence && s.attack == attack)
            .map(|s| s.mean)
    }

    /// The worst mean accuracy of a defence on a partition over every attack but `none`, with
    /// that attack.
    pub fn worst(&self, partition: &str, defence: &str) -> Option<(f64, String)> {
        self.summary
            .iter()
            .filter(|s| s.partition == partition && s.defence == defence && s.attack != "none")
            .min_by(|a, b| a.mean.total_cmp(&b.mean))
            .map(|s| (s.mean, s.attack.clone()))
    }

    /// Markdown tables, one per partition: a row per defence, a column per attack
    /// (`mean ± std` of the final accuracy in percent), then the worst attack's accuracy and
    /// its drop from no attack.
    pub fn markdown(&self) -> String {
        let t = &self.training;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Final test accuracy (%), mean ± standard deviation over {} seed(s); {} of {} \
             trainers Byzantine; {} on {}, {} rounds of {} local steps ({}).\n",
            self.runs
                .iter()
                .map(|r| r.seed)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            t.byzantine,
            t.trainers,
            t.model,
            t.dataset,
            t.rounds,
            t.local_steps,
            t.optimizer
        );
        for partition in &self.partitions {
            let _ = writeln!(out, "### `{partition}`\n");
            let mut header = String::from("| defence |");
            let mut rule = String::from("|---|");
            for attack in &self.attacks {
                let _ = write!(header, " {attack} |");
                rule.push_str("---|");
            }
            let has_clean = self.attacks.iter().any(|a| a == "none");
            if has_clean {
                header.push_str(" worst | drop |");
                rule.push_str("---|---|");
            }
            let _ = writeln!(out, "{header}\n{rule}");
            for defence in &self.defences {
                let _ = write!(out, "| `{defence}` |");
                for attack in &self.attacks {
                    match self.summary.iter().find(|s| {
                        &s.partition == partition && &s.defence == defence && &s.attack == attack
                    }) {
                        Some(s) if s.runs > 1 => {
                            let _ = write!(out, " {:.1} ± {:.1} |", s.mean, s.std);
                        }
                        Some(s) => {
                            let _ = write!(out, " {:.1} |", s.mean);
                        }
                        None => out.push_str(" |"),
                    }
                }
                if has_clean {
                    match (
                        self.worst(partition, defence),
                        self.mean_of(partition, defence, "none"),
                    ) {
                        (Some((worst, attack)), Some(clean)) => {
                            let _ = write!(out, " {worst:.1} ({attack}) | {:.1} |", clean - worst);
                        }
                        _ => out.push_str(" | |"),
                    }
                }
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_round::aggregation::{screen, DecodedUpdate};

    #[test]
    fn defences_parse_with_their_remedies() {
        let d: Defence = "nnm:5>centered_clipping+wm:0.9+sm:0.5".parse().unwrap();
        assert_eq!(d.rule, "nnm:5>centered_clipping+wm:0.9+sm:0.5");
        assert_eq!(d.worker_momentum, 0.9);
        assert_eq!(d.server_momentum, 0.5);
        let plain: Defence = "median".parse().unwrap();
        assert_eq!((plain.worker_momentum, plain.server_momentum), (0.0, 0.0));
        for bad in [
            "",
            "+wm:0.5",
            "median+wm",
            "median+wm:1",
            "median+xx:0.5",
            "median+sm:-1",
        ] {
            assert!(bad.parse::<Defence>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn attacks_parse_including_label_flip_and_none() {
        assert_eq!("none".parse::<ThreatSpec>().unwrap().threat, Threat::None);
        assert_eq!(
            "label_flip".parse::<ThreatSpec>().unwrap().threat,
            Threat::LabelFlip
        );
        assert!(matches!(
            "ipm:0.5".parse::<ThreatSpec>().unwrap().threat,
            Threat::Crafted(Attack::Ipm { .. })
        ));
        assert!("nonsense".parse::<ThreatSpec>().is_err());
        assert_eq!(
            "guard_ipm:0.5".parse::<ThreatSpec>().unwrap().threat,
            Threat::GuardIpm(0.5)
        );
        for bad in [
            "guard_ipm:0",
            "guard_ipm:-1",
            "guard_ipm:x",
            "guard_ipm:inf",
        ] {
            assert!(bad.parse::<ThreatSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_guard_aware_vector_points_along_the_reference_and_is_never_screened() {
        let training = Training {
            dataset: "digits".into(),
            model: "mlp:64-32-10".into(),
            optimizer: "sgd:lr=0.1,momentum=0.9,batch=16".into(),
            local_steps: 5,
            ..Training::default()
        };
        let base = Base::new(&training).unwrap();
        let (plan, spec) = base.plan("iid", "mean+screen:3").unwrap();
        let model = plan.initial_params(&spec).unwrap();
        let d = model.len();
        // Three "honest" vectors: the reference step itself, scaled.
        let reference = reference_step(&plan, &model, &screening_set(&plan)).unwrap();
        let honest: BTreeMap<Address, Vec<f32>> = (1..=3u8)
            .map(|i| {
                let scale = f32::from(i);
                (
                    Address([i; 20]),
                    reference.iter().map(|r| r * scale).collect(),
                )
            })
            .collect();
        let crafted = guard_ipm(&plan, &model, &honest, 1.0).unwrap();
        assert_eq!(crafted.len(), d);
        let dot: f64 = crafted
            .iter()
            .zip(&reference)
            .map(|(c, r)| f64::from(*c) * f64::from(*r))
            .sum();
        assert!(
            dot > 0.0,
            "the crafted vector points along the reference: {dot}"
        );
        let updates: Vec<DecodedUpdate> = (0..3u8)
            .map(|i| DecodedUpdate {
                trainer: Address([10 + i; 20]),
                hash: [i; 32],
                values: crafted.clone(),
            })
            .collect();
        assert!(screen(3, &reference, &updates).is_empty());
        // Plain IPM (−μ) is screened.
        let ipm: Vec<f32> = reference.iter().map(|r| -2.0 * r).collect();
        let updates = vec![DecodedUpdate {
            trainer: Address([20; 20]),
            hash: [0; 32],
            values: ipm,
        }];
        assert_eq!(screen(3, &reference, &updates), vec![Address([20; 20])]);
    }

    #[test]
    fn the_default_grid_parses() {
        let grid = Grid::default_at(SeedRange { first: 1, last: 3 }).unwrap();
        assert_eq!(
            grid.len(),
            4 * DEFAULT_DEFENCES.len() * DEFAULT_ATTACKS.len() * 3
        );
        check(&grid).unwrap();
    }

    #[test]
    fn summaries_give_mean_sample_std_and_min() {
        let run = |seed, accuracy| CellResult {
            partition: "iid".into(),
            defence: "mean".into(),
            attack: "none".into(),
            seed,
            final_accuracy: accuracy,
            final_loss: 0.0,
            curve: vec![accuracy],
            refused_rounds: 0,
        };
        let summary = summarize(&[run(1, 80.0), run(2, 90.0), run(3, 100.0)]);
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].mean, 90.0);
        assert_eq!(summary[0].std, 10.0);
        assert_eq!(summary[0].min, 80.0);
    }
}
