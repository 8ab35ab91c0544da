//! `cairn simulate`: a whole network of trainers and validators, honest and Byzantine, run on one
//! machine on the deterministic runtime with the real node code, and a publishable report.
//!
//! The scenario comes from `--scenario FILE` (TOML, see `docs/simulate.md` and
//! `examples/simulate-*.toml`), then the flags override its main keys. The run is a pure function
//! of the scenario: `results.json` is byte-identical from run to run; only the wall time printed
//! at the end depends on the machine.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cairn_ml::data::BuiltinDataset;
use cairn_sim::runner::RunTiming;
use cairn_sim::scenario::{Scenario, ScenarioOverrides};
use cairn_sim::seeds::{run_seeds, SeedRange};
use cairn_sim::{summary_table, write_report, ProgressBarReporter};

/// Shown by `cairn simulate -h`.
const SHORT_HELP: &str = "\
Examples:
  cairn simulate                                    # the default scenario, report in cairn-sim-out/
  cairn simulate --scenario examples/simulate-attacks.toml --out attacks
  cairn simulate --attack ipm:0.5 --attackers 3 --rule krum --rounds 10
  cairn simulate --seeds 1..50 --out many           # 50 seeds in parallel, a 95% interval per group

`cairn simulate --help` explains scenarios, node names, the report and every key.";

/// Shown by `cairn simulate --help`: a newcomer's guide to scenarios.
const LONG_HELP: &str = "\
WHAT IT DOES
  Runs a training task on a simulated network: every node is the real Cairn node (consensus,
  round protocol, ledger), driven by commonware's deterministic runtime with a simulated network.
  Trainers train on their shard and commit, then reveal updates; validators aggregate them with
  the robust rule, score them, and attest; rounds finalize when 2/3 of validator stake agrees.
  A seed drawn after the reveals picks trainers to audit: two validators re-run each audited
  trainer's round exactly and challenge a trace that differs; the dispute is bisected on the
  ledger down to one step, which the ledger re-executes, and the liar is slashed. Rewards vest
  only after a round's audit window. The same scenario and seed give the same run, bit for bit.

THE DEFAULT SCENARIO
  mnist_5k (shipped in data/), model mlp:784-64-10, iid partition, 20 rounds of 20 local SGD steps
  (batch 32, sgd:lr=0.1,momentum=0.9), rule arc:2,nnm:2>centered_clipping:1:3+screen:2+sm:0.5 (the
  recommended defence of docs/robustness.md), 10 trainers of which 2 run ALIE, 4 honest
  validators, 40000 tokens staked per trainer and 1000 per validator, 10000 tokens of reward
  per round, a trace checkpoint every 5 steps, the deterrent audit rate (4.76%),
  50 ms latency with 10 ms jitter, no loss, seed 7.

SCENARIO FILES (--scenario FILE)
  TOML; every key is optional and defaults as above; unknown keys are errors. Print the scenario
  a command would run with --print-scenario, and start your own file from that. Main keys:
    seed, rounds, local_steps, batch_size, threads
    dataset = \"mnist_5k\" | \"digits\"      data_dir = \"path/to/data\"
    partition = \"iid\" | \"dirichlet:0.5\" | \"shards:2\"
    model = \"mlp:784-64-10\"     optimizer = \"sgd:lr=0.1,momentum=0.9\"
    rule = \"arc:2,nnm:2>centered_clipping:1:3+screen:2+sm:0.5\"
                                 (pre-aggregations > rule, as cairn aggregate names them; write f
                                  out: the task does not know n when it is created; +wm:B worker
                                  and +sm:B server momentum, docs/robustness.md)
    reward_per_round = 10000
    slash_fraction = 0.1         # bond share lost for a commitment never revealed
    [windows] commit = 5, reveal = 5, attest = 5   (blocks per phase of a round)
    [costs]                      # prices of the work each node really did, in tokens
    train_per_sample = 0.01      # per sample of a training step
    score_per_sample = 0.0033    # per held-out sample a validator evaluates
    audit_per_sample = 0.01      # per sample of a step re-executed in an audit or dispute
    stake_per_round = 0.0001     # share of its stake a node forgoes per round
    [verification]
    audit_rate = 0.05            # fraction of updates audited a round; leave out for the
                                 #   deterrent rate (docs/verification.md)
    trace_every = 5              # a trace checkpoint every 5 local steps
    audit_window = 6             # blocks after a round closes during which it can be challenged
    move_window = 8              # blocks per dispute move (silence loses)
    challenge_bond = 500         # tokens a challenger locks (lost to the trainer if wrong)

  Trainer groups, expanded in order into nodes t0, t1, ...:
    [[trainers]]
    count = 8
    behaviour = \"honest\"        # honest | attack | label_flip | free_rider | non_revealer
    stake = 40000                #   | malformed_blob | sybil | lazy | forged_trace | copier
                                 #   | noise_sybil | perturbed_stale | scaled
    [[trainers]]
    count = 2
    behaviour = \"attack\"
    attack = \"alie\"              # any cairn attack --kind: alie, ipm:0.5, min_max:std, ...
  free_rider takes free_ride = \"zero\" | \"stale\"; sybil takes identities = N and attack, and
  splits its stake among its N colluding identities. Cheats the audits catch: lazy (lazy =
  \"steps\" | \"shard\", fraction = 0.5 of the work done), forged_trace (one step scaled up and
  a made-up trace), copier (victim = \"t0\": recomputes that trainer's update), noise_sybil
  (identities = N, noise = 0.001: one run sold under N identities), perturbed_stale (the last
  global step plus noise), scaled (factor = 2: its honest update times factor).

  Validator groups, expanded in order into nodes v0, v1, ...:
    [[validators]]
    count = 4
    behaviour = \"honest\"        # honest | wrong_model_hash | copy_scores | silent
    stake = 1000                 #   | lazy_auditor | false_challenger
  Byzantine validators must be fewer than a third, by count and by stake.

  Network (times in simulated milliseconds from the start):
    [network]
    latency_ms = 50
    jitter_ms = 10
    success_rate = 1.0           # probability a message arrives
    [[network.partitions]]
    at_ms = 20000
    heal_ms = 40000
    groups = [[\"v0\", \"v1\", \"t0\"], [\"v2\", \"v3\"]]   # unnamed nodes keep all links
    [[network.crashes]]
    node = \"v3\"
    at_ms = 10000
    restart_ms = 30000           # leave out: it stays down
  Or random faults, drawn anew at every seed within what BFT survives (examples/simulate-faults.toml):
    [faults]
    validator_crashes = 1        # crash and restart (with Byzantine ones at most f = (n-1)/3)
    trainer_crashes = 1          # crash for good
    partitions = 1               # validators split in halves, neither with 2/3
    max_loss = 0.1               # messages lost, drawn up to this
    byzantine_validators = true  # honest validators drawn Byzantine (up to f)
    until_ms = 60000             # every fault heals by then

FLAGS OVERRIDE THE FILE
  --trainers N sets the total of trainer nodes and --validators N the total of validators; the
  honest groups absorb the difference. --attackers N and --attack NAME replace the attack groups
  by one group of N trainers running NAME.

THE REPORT (--out DIR, default cairn-sim-out)
  results.json    scenario, final accuracy, loss, model hash, state root, per-round and per-node
                  figures (token amounts as decimal strings); byte-identical run to run
  scenario.toml   the scenario that ran, every default filled in (rerun it with --scenario)
  rounds.csv      round, finalized, accuracy, loss, latency_ms, rewards_paid, slashed, model_hash
  nodes.csv       name, role, behaviour, address, stakes, balance, rewards, slashes, audits,
                  disputes won and lost, work done, its costs and the profit
                  (rewards - slashes - costs)
  accuracy.png/.svg   test accuracy per round (crosses: rounds that did not finalize)
  rewards.png/.svg    cumulative reward per node; honest and attacking nodes in different colours
  stake.png/.svg      final stake per node over an outline of its initial stake (slashing shows)
  A summary table goes to stdout. Full guide: docs/simulate.md.

MANY SEEDS (--seeds FIRST..LAST)
  Runs the same scenario at every seed of the range (inclusive), --threads runs at a time
  (default: every core), with a progress bar, and reports per node group (role and behaviour)
  the mean rewards, slashes, costs and profit per node with a 95% interval (Student's t), plus a
  verdict: `loses` when the whole interval of profit is below zero. Every run checks the
  invariants (no fork, supply conserved, finalized models the honest validators', no steady
  honest node slashed, rounds resuming after faults); a violation fails it with its seed.
  To sweep parameters (audit rate, slash fraction, rewards, attacker share, prices) and find
  where an attack turns profitable: cairn economics --help. --out then holds
  seeds.json (everything), groups.csv (one line per group), seeds.csv (one line per seed and
  group) and scenario.toml. The summary is the same bytes whatever --threads is.
    cairn simulate --scenario examples/simulate-free-riders.toml --seeds 1..50 --out free";

/// Arguments of `cairn simulate`.
#[derive(Debug, clap::Args)]
#[command(after_help = SHORT_HELP, after_long_help = LONG_HELP)]
pub struct SimulateArgs {
    /// TOML scenario file (see examples/simulate-*.toml); the flags below override its keys.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,

    /// Seed of every random choice (keys, data split, initial model, network, attacks) [default: 7].
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,

    /// Run the scenario at every seed of FIRST..LAST (inclusive), --threads seeds at a time, and
    /// report each node group's rewards, slashes, costs and profit with a 95% interval
    /// (groups.csv, seeds.csv, seeds.json in --out) instead of one run's report.
    #[arg(long, value_name = "FIRST..LAST")]
    pub seeds: Option<SeedRange>,

    /// Total trainer nodes; the honest group absorbs the change [default: 10].
    #[arg(long, value_name = "N")]
    pub trainers: Option<u32>,

    /// Trainers running --attack (they collude); the rest of --trainers stay honest [default: 2].
    #[arg(long, value_name = "N")]
    pub attackers: Option<u32>,

    /// Attack of the attacking trainers, as `cairn attack --kind` takes it: alie, alie:1.5,
    /// ipm:0.5, sign_flip, gaussian:1, min_max:std, min_sum:sign, mimic, optimized_alie,
    /// free_rider, stale, sybil:ATTACK, ... [default: alie].
    #[arg(long, value_name = "ATTACK")]
    pub attack: Option<String>,

    /// Total validator nodes; the honest group absorbs the change [default: 4].
    #[arg(long, value_name = "N")]
    pub validators: Option<u32>,

    /// Training rounds [default: 20].
    #[arg(long)]
    pub rounds: Option<u32>,

    /// SGD steps each trainer runs per round [default: 20].
    #[arg(long)]
    pub local_steps: Option<u32>,

    /// Robust rule with its pre-aggregation chain and momentum, e.g. `nnm:2>trimmed_mean:2`,
    /// `krum`, `bucketing:2>median+sm:0.5` [default: arc:2,nnm:2>centered_clipping:1:3+screen:2+sm:0.5].
    #[arg(long)]
    pub rule: Option<String>,

    /// Dataset: mnist_5k or digits, shipped in data/ [default: mnist_5k].
    #[arg(long, value_parser = protocol_dataset)]
    pub dataset: Option<BuiltinDataset>,

    /// Folder of the datasets [default: $CAIRN_DATA_DIR, else the repository's data/].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// How samples are split among trainers: iid, dirichlet:ALPHA, shards:PER_TRAINER [default: iid].
    #[arg(long)]
    pub partition: Option<String>,

    /// Model, e.g. mlp:784-64-10 [default: an MLP with one hidden layer of 64 sized for the dataset].
    #[arg(long)]
    pub model: Option<String>,

    /// One-way latency of every link, in simulated milliseconds [default: 50].
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<u64>,

    /// Worker threads; any value gives the same result, only faster [default: 1; with --seeds,
    /// the number of seeds run at once, default: every core].
    #[arg(long)]
    pub threads: Option<usize>,

    /// Fraction of revealed updates audited each round, in [0, 1] [default: the deterrent rate,
    /// the smallest at which cheating loses money; see docs/verification.md].
    #[arg(long, value_name = "RATE")]
    pub audit_rate: Option<f64>,

    /// Folder for the report (created; existing report files in it are replaced).
    #[arg(long, value_name = "DIR", default_value = "cairn-sim-out")]
    pub out: PathBuf,

    /// Print the scenario these settings give, as TOML, check it, and exit without running.
    #[arg(long)]
    pub print_scenario: bool,

    /// Also write where the wall-clock time went (training, validation, other), the blocks and
    /// the peak memory, as JSON, to FILE (machine-dependent, so never part of the report).
    #[arg(long, value_name = "FILE")]
    pub timing: Option<PathBuf>,
}

impl SimulateArgs {
    /// The scenario: the file (or the default), with the flags applied and the model filled in.
    fn scenario(&self) -> anyhow::Result<Scenario> {
        let mut scenario = match &self.scenario {
            Some(path) => Scenario::from_file(path)?,
            None => Scenario::default(),
        };
        let overrides = ScenarioOverrides {
            seed: self.seed,
            rounds: self.rounds,
            local_steps: self.local_steps,
            trainers: self.trainers,
            attackers: self.attackers,
            attack: self.attack.clone(),
            validators: self.validators,
            rule: self.rule.clone(),
            dataset: self.dataset,
            data_dir: self.data_dir.clone(),
            partition: self.partition.clone(),
            model: self.model.clone(),
            latency_ms: self.latency_ms,
            threads: self.threads,
            audit_rate: self.audit_rate,
        };
        overrides
            .apply(&mut scenario)
            .context("the flags do not fit the scenario")?;
        scenario.model = Some(scenario.model());
        scenario.validate().with_context(|| match &self.scenario {
            Some(path) => format!("invalid scenario from {} and the flags", path.display()),
            None => "invalid scenario from the flags".to_owned(),
        })?;
        Ok(scenario)
    }
}

/// Runs `cairn simulate`.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let scenario = args.scenario()?;
    // The whole plan (task spec as the ledger parses it, shards, rule) is checked before any
    // node starts, and by --print-scenario too: a run that cannot train is refused, not run.
    cairn_sim::runner::check(&scenario).context("the scenario cannot run")?;
    if args.print_scenario {
        print!("{}", scenario.to_toml_string()?);
        return Ok(());
    }
    if let Some(range) = args.seeds {
        return run_many(&args, &scenario, range);
    }
    check_outputs(&args, &REPORT_FILES)?;
    println!("{}", describe(&scenario)?);
    let mut progress = ProgressBarReporter::new(scenario.rounds);
    let started = Instant::now();
    let (result, timing) =
        cairn_sim::runner::run_timed(&scenario, &mut progress).context("the simulation failed")?;
    progress.finish();
    let wall = started.elapsed();
    let files = write_report(&result, &args.out)
        .with_context(|| format!("cannot write the report to {}", args.out.display()))?;
    print!("\n{}", summary_table(&result));
    println!(
        "\nreport in {}: results.json, scenario.toml, rounds.csv, nodes.csv and {} plots",
        args.out.display(),
        files.plots.len()
    );
    println!("wall time {:.1} s (not in the report)", wall.as_secs_f64());
    if let Some(path) = &args.timing {
        let json = serde_json::to_string_pretty(&timing).context("cannot encode the timing")?;
        crate::output::write_output("--timing", path, (json + "\n").as_bytes())?;
        println!("{}", timing_line(&timing, scenario.rounds));
    }
    Ok(())
}

/// The report files whose names are fixed (plots come on top).
const REPORT_FILES: [&str; 4] = ["results.json", "scenario.toml", "rounds.csv", "nodes.csv"];

/// The files a many-seed run writes.
const SEEDS_FILES: [&str; 4] = ["seeds.json", "scenario.toml", "groups.csv", "seeds.csv"];

/// `cairn simulate --seeds FIRST..LAST`: every seed, in parallel, summarized per node group.
fn run_many(args: &SimulateArgs, scenario: &Scenario, range: SeedRange) -> anyhow::Result<()> {
    check_outputs(args, &SEEDS_FILES)?;
    let workers = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    println!(
        "{}; seeds {}..{} ({} runs, {workers} at a time)",
        describe(scenario)?
            .split(", seed ")
            .next()
            .unwrap_or_default(),
        range.first,
        range.last,
        range.count()
    );
    let bar = runs_bar(range.count(), "seed");
    let started = Instant::now();
    let many = run_seeds(scenario, range, workers, &|_| bar.inc(1)).map_err(|(seed, error)| {
        anyhow::Error::new(error).context(format!("the run at seed {seed} failed"))
    })?;
    bar.finish_and_clear();
    let json = serde_json::to_string_pretty(&many).context("cannot encode the summary")?;
    let files: [(&str, String); 4] = [
        ("seeds.json", json + "\n"),
        ("scenario.toml", scenario.to_toml_string()?),
        ("groups.csv", many.groups_csv()),
        ("seeds.csv", many.seeds_csv()),
    ];
    for (name, text) in files {
        crate::output::write_output("--out", &args.out.join(name), text.as_bytes())?;
    }
    print!("\n{}", many.table());
    println!(
        "\nreport in {}: seeds.json, scenario.toml, groups.csv, seeds.csv",
        args.out.display()
    );
    println!(
        "wall time {:.1} s (not in the report)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A bar over `len` runs named `unit` (`seed`, `run`) on stderr, hidden when stderr is not a
/// terminal.
pub(crate) fn runs_bar(len: u64, unit: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let target = if std::io::stderr().is_terminal() {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    };
    let bar = indicatif::ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{unit} {{pos:>5}}/{{len}} [{{bar:30.cyan/blue}}] {{elapsed_precise}} eta {{eta}}"
    )) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Checks every output before the run, so that a bad path fails in a second, not after the
/// whole simulation: `--out` is created now (or must be a folder), no report file or `--timing`
/// may be the scenario file being read (a report's `scenario.toml` would overwrite it) or a
/// symbolic link or other non-regular file, and `--timing` must lie in an existing folder.
fn check_outputs(args: &SimulateArgs, files: &[&str]) -> anyhow::Result<()> {
    prepare_out(
        &args.out,
        args.scenario.as_deref(),
        args.timing.as_deref(),
        files,
    )
}

/// [`check_outputs`] for any command writing a report folder `out` read from `scenario`, with
/// an extra `--timing` file.
pub(crate) fn prepare_out(
    out: &Path,
    scenario: Option<&Path>,
    timing: Option<&Path>,
    files: &[&str],
) -> anyhow::Result<()> {
    if out.exists() && !out.is_dir() {
        anyhow::bail!(
            "--out {} exists and is not a folder; the report is a folder of files: choose \
             another --out",
            out.display()
        );
    }
    // The folders this check creates, deepest first, removed again if a later check fails: a
    // refused run leaves nothing behind.
    let created: Vec<PathBuf> = out
        .ancestors()
        .take_while(|folder| !folder.as_os_str().is_empty() && !folder.exists())
        .map(Path::to_path_buf)
        .collect();
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create the report folder", out.display()))?;
    let checked = check_report_files(out, scenario, timing, files);
    if checked.is_err() {
        for folder in &created {
            // Only empty folders go; anything else stays as it is.
            let _ = std::fs::remove_dir(folder);
        }
    }
    checked
}

/// The part of [`check_outputs`] that needs `--out` to exist.
fn check_report_files(
    out: &Path,
    scenario: Option<&Path>,
    timing: Option<&Path>,
    files: &[&str],
) -> anyhow::Result<()> {
    let mut taken: Vec<(&str, PathBuf)> = Vec::new();
    if let Some(scenario) = scenario {
        taken.push(("--scenario", scenario.to_path_buf()));
    }
    for name in files {
        let path = out.join(name);
        let inputs: Vec<(&str, &Path)> = taken.iter().map(|(f, p)| (*f, p.as_path())).collect();
        crate::output::check_output("--out", &path, &inputs)?;
        taken.push(("--out", path));
    }
    if let Some(timing) = timing {
        let inputs: Vec<(&str, &Path)> = taken.iter().map(|(f, p)| (*f, p.as_path())).collect();
        crate::output::check_output("--timing", timing, &inputs)?;
    }
    Ok(())
}

/// One line of a timed run: wall time, its split, blocks and peak memory.
fn timing_line(timing: &RunTiming, rounds: u32) -> String {
    let secs = |ms: u64| ms as f64 / 1000.0;
    let share = |ms: u64| 100.0 * ms as f64 / timing.wall_ms.max(1) as f64;
    let rss = match timing.peak_rss_bytes {
        Some(bytes) => format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0)),
        None => "unknown".to_owned(),
    };
    format!(
        "timing: wall {:.1} s ({:.2} s/round), training {:.1} s ({:.0}%), validation {:.1} s \
         ({:.0}%), other {:.1} s ({:.0}%), {} blocks, peak RSS {rss}",
        secs(timing.wall_ms),
        secs(timing.wall_ms) / f64::from(rounds.max(1)),
        secs(timing.training_ms),
        share(timing.training_ms),
        secs(timing.validation_ms),
        share(timing.validation_ms),
        secs(timing.other_ms),
        share(timing.other_ms),
        timing.blocks,
    )
}

/// One line saying what is about to run.
fn describe(scenario: &Scenario) -> anyhow::Result<String> {
    let validators = scenario.validator_nodes();
    let byzantine_validators = validators
        .iter()
        .filter(|v| v.behaviour.label() != "honest")
        .count();
    let trainers = scenario.trainer_nodes()?;
    let attackers = trainers.iter().filter(|t| !t.behaviour.is_honest()).count();
    Ok(format!(
        "simulating {} validators ({byzantine_validators} Byzantine) and {} trainers ({attackers} \
         not honest) on {} with {}, rule {}, {} rounds of {} local steps, seed {}",
        validators.len(),
        trainers.len(),
        scenario.dataset,
        scenario.model(),
        scenario.rule,
        scenario.rounds,
        scenario.local_steps,
        scenario.seed
    ))
}

/// Parses `--dataset`: the built-in datasets a protocol task can use (those shipped as files).
fn protocol_dataset(text: &str) -> Result<BuiltinDataset, String> {
    match text.parse::<BuiltinDataset>() {
        Ok(dataset) if dataset.csv_format().is_some() => Ok(dataset),
        _ => Err(format!(
            "`{text}` is not a dataset a simulated task can use; expected mnist_5k or digits"
        )),
    }
}
