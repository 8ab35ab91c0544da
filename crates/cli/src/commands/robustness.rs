//! `cairn robustness`: the robustness benchmark. Federated training with a Byzantine minority
//! over a grid of data partitions × defences × attacks × seeds, reported like a paper's table.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use cairn_sim::robustness::{
    check, run_grid, Grid, Training, DEFAULT_ATTACKS, DEFAULT_DEFENCES, DEFAULT_PARTITIONS,
};
use cairn_sim::seeds::SeedRange;

/// Shown by `cairn robustness -h`.
const SHORT_HELP: &str = "\
Examples:
  cairn robustness                                  # the whole default grid, seeds 1..3
  cairn robustness --partitions shards:2 --defences 'arc:5,nnm:5>centered_clipping:1:3+screen:5+sm:0.5' \\
      --attacks none,ipm:0.5,alie --seeds 1..5 --out cc-shards

`cairn robustness --help` explains defences, attacks and the report.";

/// Shown by `cairn robustness --help`.
const LONG_HELP: &str = "\
WHAT IT DOES
  Trains the task the protocol trains (the same shards, bit-exact local runs, robust pipeline
  and server step) for every cell of a grid, without consensus, ledger or audits: it measures
  what the robust rule alone holds off, the case of private data that audits cannot re-execute.
  Attackers are omniscient: each round they see every honest vector, then send what the attack
  crafts. label_flip attackers instead train honestly on their shard with labels y -> 9 - y.
  none runs every trainer honestly: the reference each attack's drop is measured from.

DEFENCES (--defences, separated by ';': a comma belongs to a pre-aggregation chain)
  A robust rule with its pre-aggregation chain, as a task names it, plus optional remedies:
    RULE+screen:K  the validators' held-out guard: leave out at most K updates pointing against
                a reference step trained on 512 samples of the train split, when that lowers
                the loss on those samples (docs/robustness.md)
    RULE+wm:B   worker momentum across rounds: honest trainers send m = B m_prev + (1-B) delta
    RULE+sm:B   server heavy-ball momentum: M_next = M + aggregate + B (M - M_prev)
  e.g. nnm:5>trimmed_mean:5, arc:5,nnm:5>centered_clipping, nnm:5>centered_clipping+wm:0.5+sm:0.5.
  Centered clipping always starts from the last global step M - M_prev.

ATTACKS (--attacks)
  none, label_flip, or any `cairn attack --kind`: sign_flip, gaussian, ipm:0.5, alie, mimic,
  min_max:std, min_sum:std, optimized_alie, optimized_ipm, ...; guard_ipm:EPS is IPM aimed
  past the guard (the attackers compute the validators' reference step and remove their
  vector's component along it).

THE REPORT (--out DIR, default cairn-robustness-out)
  runs.csv        one line per run: partition, defence, attack, seed, final accuracy and loss
  summary.csv     per (partition, defence, attack): runs, mean, std, min, drop from no attack
  robustness.json everything, with each run's accuracy after every round
  robustness.md   one table per partition: mean +- std per defence and attack, the worst attack
                  and the drop from no attack
  The same bytes whatever --threads is. The default grid (4 x 11 x 10 x 3 = 1320 runs) takes
  about 38 minutes on 2 cores (37.5 measured on 2026-12-06).";

/// Arguments of `cairn robustness`.
#[derive(Debug, clap::Args)]
#[command(after_help = SHORT_HELP, after_long_help = LONG_HELP)]
pub struct RobustnessArgs {
    /// Data partitions, comma-separated [default: iid,dirichlet:0.5,dirichlet:0.1,shards:2].
    #[arg(long, value_delimiter = ',', env = "CAIRN_ROBUSTNESS_PARTITIONS")]
    pub partitions: Vec<String>,

    /// Defences, separated by ';' (a comma belongs to a pre-aggregation chain), or the flag
    /// given once per defence [default: every rule with its pre-aggregation; see --help].
    #[arg(long, value_delimiter = ';', env = "CAIRN_ROBUSTNESS_DEFENCES")]
    pub defences: Vec<String>,

    /// Attacks, comma-separated [default: none and every attack, label_flip included].
    #[arg(long, value_delimiter = ',', env = "CAIRN_ROBUSTNESS_ATTACKS")]
    pub attacks: Vec<String>,

    /// Seeds, FIRST..LAST inclusive.
    #[arg(
        long,
        value_name = "FIRST..LAST",
        default_value = "1..3",
        env = "CAIRN_ROBUSTNESS_SEEDS"
    )]
    pub seeds: SeedRange,

    /// Dataset: mnist_5k or digits.
    #[arg(long, default_value = "mnist_5k")]
    pub dataset: String,

    /// Folder of the datasets [default: $CAIRN_DATA_DIR, else the repository's data/].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Model.
    #[arg(long, default_value = "mlp:784-64-10")]
    pub model: String,

    /// Local optimizer with its batch size.
    #[arg(long, default_value = "sgd:lr=0.1,momentum=0.9,batch=32")]
    pub optimizer: String,

    /// Local SGD steps per round.
    #[arg(long, default_value_t = 20)]
    pub local_steps: u32,

    /// Rounds.
    #[arg(long, default_value_t = 20)]
    pub rounds: u32,

    /// Trainers in all.
    #[arg(long, default_value_t = 25)]
    pub trainers: usize,

    /// Byzantine trainers among them (they run the attack; with `none` they train honestly).
    #[arg(long, default_value_t = 5)]
    pub byzantine: usize,

    /// Runs at a time [default: every core]; any value gives the same report.
    #[arg(long)]
    pub threads: Option<usize>,

    /// Folder for the report (created; existing report files in it are replaced).
    #[arg(long, value_name = "DIR", default_value = "cairn-robustness-out")]
    pub out: PathBuf,
}

/// Files the benchmark writes.
const FILES: [&str; 4] = [
    "runs.csv",
    "summary.csv",
    "robustness.json",
    "robustness.md",
];

fn or_default(given: Vec<String>, default: &[&str]) -> Vec<String> {
    if given.is_empty() {
        default.iter().map(|s| s.to_string()).collect()
    } else {
        given
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Runs `cairn robustness`.
pub fn run(args: RobustnessArgs) -> anyhow::Result<()> {
    let training = Training {
        dataset: args.dataset.clone(),
        data_dir: args.data_dir.clone(),
        model: args.model.clone(),
        optimizer: args.optimizer.clone(),
        local_steps: args.local_steps,
        rounds: args.rounds,
        trainers: args.trainers,
        byzantine: args.byzantine,
    };
    let grid = Grid::parse(
        training,
        or_default(args.partitions, &DEFAULT_PARTITIONS),
        &or_default(args.defences, &DEFAULT_DEFENCES),
        &or_default(args.attacks, &DEFAULT_ATTACKS),
        args.seeds,
    )
    .context("invalid grid")?;
    check(&grid).context("the grid cannot run")?;
    super::simulate::prepare_out(&args.out, None, None, &FILES)?;
    let workers = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    println!(
        "{} partitions x {} defences x {} attacks x seeds {}..{} ({} runs, {workers} at a time)",
        grid.partitions.len(),
        grid.defences.len(),
        grid.attacks.len(),
        args.seeds.first,
        args.seeds.last,
        grid.len()
    );
    let bar = super::simulate::runs_bar(grid.len() as u64, "run");
    let started = Instant::now();
    let report = run_grid(&grid, workers, &|| bar.inc(1)).context("the benchmark failed")?;
    bar.finish_and_clear();
    let json = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
    let markdown = report.markdown();
    let files: [(&str, String); 4] = [
        ("runs.csv", report.runs_csv()),
        ("summary.csv", report.summary_csv()),
        ("robustness.json", json + "\n"),
        ("robustness.md", markdown.clone()),
    ];
    for (name, text) in files {
        crate::output::write_output("--out", &args.out.join(name), text.as_bytes())?;
    }
    print!("\n{markdown}");
    println!(
        "report in {}: runs.csv, summary.csv, robustness.json, robustness.md",
        args.out.display()
    );
    println!(
        "wall time {:.1} s (not in the report)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
