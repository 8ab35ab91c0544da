//! `cairn economics`: a parameter sweep of a scenario. Every point of a grid over one or two
//! parameters (audit rate, slash fraction, reward per round, attacker share, cost-model prices)
//! runs at every seed of a range; the report gives each node group's expected profit per point
//! with its 95% interval, and per attack the frontier where it turns profitable.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cairn_sim::scenario::{Scenario, ScenarioOverrides};
use cairn_sim::seeds::SeedRange;
use cairn_sim::sweep::{run_sweep, Axis};

/// Shown by `cairn economics -h`.
const SHORT_HELP: &str = "\
Examples:
  cairn economics --scenario examples/simulate-attacks.toml --vary audit_rate=0,0.02,0.05,0.1
  cairn economics --vary slash_fraction=0,0.05,0.1,0.5 --vary reward_per_round=5000,20000 \\
      --scenario examples/simulate-free-riders.toml --seeds 1..5 --out frontier

`cairn economics --help` explains the parameters, the frontier and the report.";

/// Shown by `cairn economics --help`.
const LONG_HELP: &str = "\
WHAT IT DOES
  Runs the scenario (the same files and defaults as `cairn simulate`) at every point of a grid
  of parameter values, each point at every seed of --seeds, and reports for every node group
  (role and behaviour) its expected profit per node: rewards − slashes − costs, the costs from
  the scenario's [costs] table. An attack is safe to leave open where its profit interval lies
  below zero; the frontier is where its mean profit crosses zero.

AXES (--vary KNOB=V1,V2,..., once or twice)
  audit_rate         fraction of updates audited per round, in [0, 1]
  slash_fraction     bond share lost for a commitment never revealed, in [0, 1]
  reward_per_round   tokens paid per finalized round (whole number)
  attacker_share     share of trainers attacking, in (0, 1): round(share x trainers) attackers
                     replace the attack groups, running the scenario's attack (alie if none)
  attackers          number of attacking trainers (as simulate --attackers)
  train_per_sample, score_per_sample, audit_per_sample, stake_per_round   the [costs] prices
  challenge_bond     tokens a challenger locks (whole number)
  The first axis is the one frontiers are read along; a second axis gives one frontier per
  value and a frontier plot. Every point is checked before any run starts.

THE REPORT (--out DIR, default cairn-economics-out)
  sweep.json     everything: axes, every point's groups with mean and 95% interval, frontiers
  sweep.csv      one line per point and node group: axis values, rewards, slashes, costs,
                 profit mean and interval, rounds finalized, final accuracy
  frontier.csv   per attack group (and second-axis value): never_profitable, always_profitable,
                 or profitable_above / profitable_below and the interpolated first-axis value
  scenario.toml  the scenario before the sweep set any parameter
  profit-GROUP.png/.svg   a group's profit along the first axis, 95% interval shaded
  frontier.png/.svg       (two axes) each attack's crossing value against the second axis
  The same bytes whatever --threads is. Runs take seconds each: the grid size times the seeds
  is the number of runs (a progress bar counts them).";

/// Arguments of `cairn economics`.
#[derive(Debug, clap::Args)]
#[command(after_help = SHORT_HELP, after_long_help = LONG_HELP)]
pub struct EconomicsArgs {
    /// TOML scenario file, as `cairn simulate --scenario` takes [default: the default scenario].
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,

    /// An axis of the grid, KNOB=V1,V2,... (once or twice; see --help for the knobs).
    #[arg(long = "vary", value_name = "KNOB=VALUES", required = true)]
    pub axes: Vec<Axis>,

    /// Seeds every point runs at, FIRST..LAST inclusive.
    #[arg(long, value_name = "FIRST..LAST", default_value = "1..10")]
    pub seeds: SeedRange,

    /// Training rounds of every run [default: the scenario's].
    #[arg(long)]
    pub rounds: Option<u32>,

    /// Runs at a time [default: every core]; any value gives the same report.
    #[arg(long)]
    pub threads: Option<usize>,

    /// Folder for the report (created; existing report files in it are replaced).
    #[arg(long, value_name = "DIR", default_value = "cairn-economics-out")]
    pub out: PathBuf,
}

/// Files every sweep writes (plots come on top).
const FILES: [&str; 4] = ["sweep.json", "sweep.csv", "frontier.csv", "scenario.toml"];

/// Runs `cairn economics`.
pub fn run(args: EconomicsArgs) -> anyhow::Result<()> {
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::from_file(path)?,
        None => Scenario::default(),
    };
    ScenarioOverrides {
        rounds: args.rounds,
        ..ScenarioOverrides::default()
    }
    .apply(&mut scenario)
    .context("--rounds does not fit the scenario")?;
    scenario.model = Some(scenario.model());
    scenario.validate().context("invalid scenario")?;
    cairn_sim::runner::check(&scenario).context("the scenario cannot run")?;
    let points = cairn_sim::sweep::check(&scenario, &args.axes).context("invalid sweep")?;
    super::simulate::prepare_out(&args.out, args.scenario.as_deref(), None, &FILES)?;
    let workers = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let runs = points.len() as u64 * args.seeds.count();
    println!(
        "sweeping {} over {} points x seeds {}..{} ({runs} runs, {workers} at a time)",
        args.axes
            .iter()
            .map(|a| a.knob.name())
            .collect::<Vec<_>>()
            .join(" and "),
        points.len(),
        args.seeds.first,
        args.seeds.last,
    );
    let bar = super::simulate::runs_bar(runs, "run");
    let started = Instant::now();
    let sweep = run_sweep(&scenario, args.axes.clone(), args.seeds, workers, &|_| {
        bar.inc(1)
    })
    .context("the sweep failed")?;
    bar.finish_and_clear();
    let json = serde_json::to_string_pretty(&sweep).context("cannot encode the sweep")?;
    let files: [(&str, String); 4] = [
        ("sweep.json", json + "\n"),
        ("sweep.csv", sweep.csv()),
        ("frontier.csv", sweep.frontier_csv()),
        ("scenario.toml", scenario.to_toml_string()?),
    ];
    for (name, text) in files {
        crate::output::write_output("--out", &args.out.join(name), text.as_bytes())?;
    }
    let plots = write_plots(&sweep, &args.out)?;
    print!("\n{}", sweep.table());
    println!(
        "\nreport in {}: sweep.json, sweep.csv, frontier.csv, scenario.toml and {} plots",
        args.out.display(),
        plots
    );
    println!(
        "wall time {:.1} s (not in the report)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Draws the plots once every plot path is checked like the other outputs; returns how many.
fn write_plots(sweep: &cairn_sim::sweep::Sweep, out: &Path) -> anyhow::Result<usize> {
    for name in cairn_sim::sweep_plot_files(sweep) {
        crate::output::check_output("--out", &out.join(name), &[])?;
    }
    let files = cairn_sim::render_sweep(sweep, out)
        .map_err(|(path, error)| anyhow::anyhow!("cannot draw {}: {error}", path.display()))?;
    Ok(files.len())
}
