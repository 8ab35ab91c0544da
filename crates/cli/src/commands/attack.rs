//! `cairn attack`: craft the updates of `f` Byzantine trainers from the honest ones.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use cairn_ml::npy::{self, NpyArray};
use cairn_robust::attack::{craft, Attack, AttackError, Setting};
use cairn_robust::{PreAggregation, RobustError, Rule};

use super::aggregate::{matrix_shape, read_array};
use crate::output::{check_output, write_output};

const EXAMPLE: &str = "\
Example (from Python):
  import numpy as np, subprocess
  honest = np.random.default_rng(0).normal(1.0, 0.5, size=(20, 100)).astype(np.float32)
  np.save('honest.npy', honest)
  subprocess.run(['cairn', 'attack', '--kind', 'alie', '--f', '5', '--input', 'honest.npy',
                  '--output', 'byzantine.npy'], check=True)
  np.save('updates.npy', np.concatenate([honest, np.load('byzantine.npy')]))   # (25, 100)
  subprocess.run(['cairn', 'aggregate', '--rule', 'median', '--input', 'updates.npy',
                  '--output', 'aggregate.npy'], check=True)

Attacks (--kind, parameters after ':' are optional):
  sign_flip[:SCALE=1]            -SCALE * honest mean
  gaussian[:SIGMA=1[:MU=0]]      N(MU, SIGMA^2) per coordinate, seeded by --seed
  nan | inf | neg_inf            every coordinate non-finite
  ipm[:EPSILON=0.1]              -EPSILON * honest mean (Xie et al. 2020)
  alie[:Z|auto]                  mean - Z * std per coordinate; auto = z_max(n, f) (Baruch et al. 2019)
  optimized_ipm[:START=0[:DELTA=10[:RATIO=0.8[:EVALUATIONS=20]]]]
  optimized_alie[:START[:DELTA[:RATIO[:EVALUATIONS]]]]
                                 strength searched to move --rule's output furthest from the mean
  mimic[:INDEX|seeded|heuristic] copy one honest update (default: heuristic, Karimireddy et al.)
  min_max[:std|unit_mean|sign]   Shejwalkar & Houmansadr 2021 (default perturbation: std)
  min_sum[:std|unit_mean|sign]
  free_rider                     the zero update
  stale                          the update given by --stale
  sybil:ATTACK                   all f submit the first vector ATTACK crafts
Formulas: docs/attacks.md.";

/// Arguments of `cairn attack`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct AttackArgs {
    /// The honest updates the attackers know, `(h, d)`, one per row: a float32 .npy file
    /// (float64 is rounded to float32).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,

    /// Where to write the `(f, d)` float32 Byzantine updates (replaced if it exists; it must not
    /// be an input, a link or a special file, and its folder must exist).
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,

    /// The attack, e.g. `alie`, `alie:1.5`, `ipm:0.5`, `min_max:sign`, `sybil:gaussian:5`.
    #[arg(long, value_name = "ATTACK")]
    pub kind: String,

    /// Number of Byzantine updates to craft.
    #[arg(long, value_name = "F")]
    pub f: usize,

    /// Total number of updates the aggregator receives [default: h + f].
    #[arg(long, value_name = "N")]
    pub n: Option<usize>,

    /// The rule under attack (the optimized attacks evaluate it), in `cairn aggregate --rule`
    /// syntax; its `f` defaults to --f.
    #[arg(long, value_name = "RULE", default_value = "median")]
    pub rule: String,

    /// The pre-aggregation chain in use, in `cairn aggregate --pre` syntax.
    #[arg(long, value_name = "STEPS", default_value = "")]
    pub pre: String,

    /// Seed of every random choice (Gaussian noise, seeded mimic, power iteration start).
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    pub seed: u64,

    /// A stale `(d,)` update for `--kind stale`, e.g. the previous round's.
    #[arg(long, value_name = "FILE")]
    pub stale: Option<PathBuf>,
}

/// Runs `cairn attack`.
pub fn run(args: AttackArgs) -> anyhow::Result<()> {
    let attack: Attack = args.kind.parse().context("--kind")?;
    let rule = Rule::parse(&args.rule, args.f).context("--rule")?;
    let pre = PreAggregation::parse_chain(&args.pre, args.f).context("--pre")?;
    let mut inputs = vec![("--input", args.input.as_path())];
    if let Some(stale) = &args.stale {
        inputs.push(("--stale", stale.as_path()));
    }
    check_output("--output", &args.output, &inputs)?;
    let honest = read_array("--input", &args.input)?;
    let (rows, d) = matrix_shape(&honest, "--input")?;
    let n = match args.n {
        Some(n) => n,
        None => rows
            .checked_add(args.f)
            .context("number of honest updates plus --f overflows")?,
    };
    let stale = match &args.stale {
        Some(path) => {
            let array = read_array("--stale", path)?;
            if array.shape.len() != 1 {
                bail!(
                    "--stale {} has shape {:?}; it must be a (d,) vector",
                    path.display(),
                    array.shape
                );
            }
            if array.data.len() != d {
                bail!(
                    "--stale {} has {} values, but the updates of --input {} have dimension {d}",
                    path.display(),
                    array.data.len(),
                    args.input.display()
                );
            }
            Some(array.data)
        }
        None => None,
    };
    let setting = Setting {
        n,
        f: args.f,
        rule,
        pre,
        seed: args.seed,
        stale: stale.as_deref(),
    };
    tracing::info!(attack = %attack, n, f = args.f, d, "crafting");
    let byzantine = craft(&attack, &honest.data, d, &setting).map_err(|error| match error {
        // The library's message suggests its own `NonFinitePolicy`, which this command has no
        // flag for: the crafted values themselves overflowed.
        AttackError::Aggregate(RobustError::NonFinite { row, column }) => anyhow!(
            "crafting {} updates with {attack}: the rule under attack (--rule) refused update \
             {row}, non-finite at coordinate {column} (the crafted values overflow float32); use \
             a smaller attack strength or smaller inputs",
            args.f
        ),
        other => anyhow::Error::new(other).context(format!(
            "crafting --f {} updates with {attack} from the {rows} honest updates of --input {}",
            args.f,
            args.input.display()
        )),
    })?;
    let bytes = npy::encode(&NpyArray::matrix(args.f, d, byzantine)?)?;
    write_output("--output", &args.output, &bytes)?;
    println!(
        "{}: {attack} crafted {} Byzantine updates (d = {d}) -> {}",
        args.input.display(),
        args.f,
        args.output.display()
    );
    Ok(())
}
