//! `cairn aggregate`: combine an `(n, d)` array of updates with a Byzantine-robust rule.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use cairn_ml::npy::{self, NpyArray};
use cairn_robust::{
    aggregate, Context, GmInit, KrumVariant, NonFinitePolicy, PreAggregation, RobustError, Rule,
    Updates,
};

use crate::output::{check_output, write_output};

const EXAMPLE: &str = "\
Example (from Python):
  import numpy as np, subprocess
  np.save('updates.npy', np.random.default_rng(0).normal(size=(10, 1000)).astype(np.float32))
  subprocess.run(['cairn', 'aggregate', '--rule', 'krum', '--f', '2', '--pre', 'nnm',
                  '--input', 'updates.npy', '--output', 'aggregate.npy'], check=True)
  x = np.load('aggregate.npy')   # shape (1000,), float32

Rules (--rule, parameters after ':' are optional and default to the flags below):
  mean | weighted_mean:W1,W2,... | median | trimmed_mean[:F] | krum[:F[:textbook|byzfl]]
  multi_krum[:F[:M|auto[:textbook|byzfl]]] | bulyan[:F] | mda[:F] | monna[:F[:REFERENCE]] | meamed[:F]
  geometric_median[:NU[:ITERATIONS[:zeros|mean|median]]] | centered_clipping[:TAU[:ITERATIONS]]
Pre-aggregation steps (--pre, comma-separated, applied in order):
  nnm[:F] | bucketing:SIZE[:SEED] | clip:THRESHOLD | arc[:F]
Formulas and requirements on n: docs/aggregate.md.";

/// Arguments of `cairn aggregate`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLE)]
pub struct AggregateArgs {
    /// The `(n, d)` updates, one per row: a .npy file of float32 (float64 is rounded to float32).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,

    /// Where to write the aggregate: a `(d,)` float32 .npy file (replaced if it exists; it must
    /// not be an input, a link or a special file, and its folder must exist).
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,

    /// The aggregation rule, e.g. `median`, `krum`, `krum:2:byzfl`, `trimmed_mean:1`.
    #[arg(long, value_name = "RULE", default_value = "median")]
    pub rule: String,

    /// Byzantine updates to tolerate: the `f` of rules and steps whose text does not give one.
    #[arg(long, value_name = "F", default_value_t = 0)]
    pub f: usize,

    /// Pre-aggregation chain applied before the rule, e.g. `nnm`, `nnm,bucketing:2`, `clip:5`.
    #[arg(long, value_name = "STEPS", default_value = "")]
    pub pre: String,

    /// Multi-Krum: how many updates to average [default: n - f].
    #[arg(long, value_name = "M")]
    pub m: Option<usize>,

    /// Krum, Multi-Krum: neighbour count of the score, `textbook` (n - f - 2, Blanchard et al.)
    /// or `byzfl` (n - f - 1, as ByzFL) [default: textbook, or the one in --rule].
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,

    /// Centered clipping: clipping radius tau [default: 100, ByzFL's].
    #[arg(long, value_name = "TAU")]
    pub tau: Option<f32>,

    /// Geometric median: smoothing nu, distances below it count as nu [default: 0.1, ByzFL's].
    #[arg(long, value_name = "NU")]
    pub nu: Option<f32>,

    /// Geometric median, centered clipping: iterations [default: 3 and 1, ByzFL's].
    #[arg(long, value_name = "COUNT")]
    pub iterations: Option<usize>,

    /// Geometric median: starting point, `zeros`, `mean` or `median` [default: zeros].
    #[arg(long, value_name = "INIT")]
    pub init: Option<String>,

    /// MoNNA: index of the trusted reference update [default: 0].
    #[arg(long, value_name = "INDEX")]
    pub reference: Option<usize>,

    /// The previous aggregate, a `(d,)` .npy file: centered clipping starts from it [default:
    /// the zero vector].
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,

    /// What to do with updates holding NaN or infinity: `reject` (fail, naming the first one)
    /// or `drop` (aggregate the others).
    #[arg(long, value_name = "POLICY", default_value = "reject")]
    pub non_finite: String,
}

/// Runs `cairn aggregate`.
pub fn run(args: AggregateArgs) -> anyhow::Result<()> {
    let rule = Rule::parse(&args.rule, args.f).context("--rule")?;
    let rule = apply_overrides(rule, &args)?;
    let pre = PreAggregation::parse_chain(&args.pre, args.f).context("--pre")?;
    let non_finite = match args.non_finite.to_ascii_lowercase().as_str() {
        "reject" => NonFinitePolicy::Reject,
        "drop" => NonFinitePolicy::Drop,
        other => bail!("--non-finite `{other}` must be `reject` or `drop`"),
    };
    let mut inputs = vec![("--input", args.input.as_path())];
    if let Some(previous) = &args.previous {
        inputs.push(("--previous", previous.as_path()));
    }
    check_output("--output", &args.output, &inputs)?;
    let input = read_array("--input", &args.input)?;
    let (n, d) = matrix_shape(&input, "--input")?;
    let updates = Updates::new(&input.data, n, d)
        .with_context(|| format!("--input {}", args.input.display()))?;
    let previous = match &args.previous {
        Some(path) => {
            let array = read_array("--previous", path)?;
            if array.shape.len() != 1 {
                bail!(
                    "--previous {} has shape {:?}; it must be a (d,) vector",
                    path.display(),
                    array.shape
                );
            }
            if array.data.len() != d {
                bail!(
                    "--previous {} has {} values, but the updates of --input {} have dimension \
                     {d}",
                    path.display(),
                    array.data.len(),
                    args.input.display()
                );
            }
            Some(array.data)
        }
        None => None,
    };
    let ctx = Context {
        previous: previous.as_deref(),
        non_finite,
    };
    tracing::info!(rule = %rule, n, d, pre = %args.pre, "aggregating");
    // Timing is reported in the log only (for `bench/byzfl_compare.py`); it never steers the result.
    let started = std::time::Instant::now();
    let output = aggregate(&rule, &pre, &updates, &ctx).map_err(|error| match error {
        // The library's message names its own `NonFinitePolicy`; say which flag does that here.
        RobustError::NonFinite { row, column } => anyhow!(
            "--input {}: update {row} of {n} (rows count from 0) has a non-finite value (NaN or \
             infinity) at coordinate {column}; fix or remove that update, or pass \
             `--non-finite drop` to aggregate the others without it",
            args.input.display()
        ),
        RobustError::SideInputNonFinite {
            what: "previous aggregate",
            index,
        } => anyhow!(
            "--previous {} has a non-finite value (NaN or infinity) at index {index}",
            args.previous.as_deref().unwrap_or(Path::new("")).display()
        ),
        other => anyhow::Error::new(other).context(format!(
            "aggregating {n} updates of dimension {d} with {rule}"
        )),
    })?;
    tracing::info!(elapsed_s = started.elapsed().as_secs_f64(), "aggregated");
    let bytes = npy::encode(&NpyArray::vector(output))?;
    write_output("--output", &args.output, &bytes)?;
    println!(
        "{}: {rule} of {n} updates (d = {d}) -> {}",
        args.input.display(),
        args.output.display()
    );
    Ok(())
}

/// Reads the `.npy` file that `flag` gave; its errors name the flag and the file.
pub(crate) fn read_array(flag: &str, path: &Path) -> anyhow::Result<NpyArray> {
    npy::read(path).with_context(|| format!("cannot read {flag} {}", path.display()))
}

/// The `(n, d)` of a 2-D array.
pub(crate) fn matrix_shape(array: &NpyArray, flag: &str) -> anyhow::Result<(usize, usize)> {
    match array.shape.as_slice() {
        [n, d] => Ok((*n, *d)),
        shape => {
            bail!("{flag} has shape {shape:?}; it must be a 2-D (n, d) array, one update per row")
        }
    }
}

/// Applies `--m`, `--variant`, `--tau`, `--nu`, `--iterations`, `--init` and `--reference` to the
/// rule, refusing flags the rule does not take.
fn apply_overrides(rule: Rule, args: &AggregateArgs) -> anyhow::Result<Rule> {
    let variant = args
        .variant
        .as_deref()
        .map(|text| match text.to_ascii_lowercase().as_str() {
            "textbook" => Ok(KrumVariant::Textbook),
            "byzfl" => Ok(KrumVariant::ByzFl),
            other => bail!("--variant `{other}` must be `textbook` or `byzfl`"),
        })
        .transpose()?;
    let init = args
        .init
        .as_deref()
        .map(|text| match text.to_ascii_lowercase().as_str() {
            "zeros" => Ok(GmInit::Zeros),
            "mean" => Ok(GmInit::Mean),
            "median" => Ok(GmInit::Median),
            other => bail!("--init `{other}` must be `zeros`, `mean` or `median`"),
        })
        .transpose()?;
    let name = rule.name();
    let mut unused = Vec::new();
    let rule = match rule {
        Rule::Krum { f, variant: v } => Rule::Krum {
            f,
            variant: variant.unwrap_or(v),
        },
        Rule::MultiKrum { f, m, variant: v } => Rule::MultiKrum {
            f,
            m: args.m.or(m),
            variant: variant.unwrap_or(v),
        },
        Rule::GeometricMedian {
            nu,
            iterations,
            init: i,
        } => Rule::GeometricMedian {
            nu: args.nu.unwrap_or(nu),
            iterations: args.iterations.unwrap_or(iterations),
            init: init.unwrap_or(i),
        },
        Rule::CenteredClipping { tau, iterations } => Rule::CenteredClipping {
            tau: args.tau.unwrap_or(tau),
            iterations: args.iterations.unwrap_or(iterations),
        },
        Rule::Monna { f, reference } => Rule::Monna {
            f,
            reference: args.reference.unwrap_or(reference),
        },
        other => other,
    };
    let takes = |flag: &str| match flag {
        "--m" => name == "multi_krum",
        "--variant" => name == "krum" || name == "multi_krum",
        "--tau" => name == "centered_clipping",
        "--nu" | "--init" => name == "geometric_median",
        "--iterations" => name == "geometric_median" || name == "centered_clipping",
        "--reference" => name == "monna",
        _ => false,
    };
    let given = [
        ("--m", args.m.is_some()),
        ("--variant", args.variant.is_some()),
        ("--tau", args.tau.is_some()),
        ("--nu", args.nu.is_some()),
        ("--iterations", args.iterations.is_some()),
        ("--init", args.init.is_some()),
        ("--reference", args.reference.is_some()),
    ];
    for (flag, present) in given {
        if present && !takes(flag) {
            unused.push(flag);
        }
    }
    if !unused.is_empty() {
        bail!("{} do(es) not apply to rule `{name}`", unused.join(", "));
    }
    Ok(rule)
}
