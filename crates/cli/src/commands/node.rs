//! `cairn node`: run one node of a real network.

use std::net::SocketAddr;
use std::path::PathBuf;

use cairn_daemon::home::{Home, NetworkProfile, NodeRole};

const HELP: &str = "\
Examples:
  cairn node --home node0                                   # settings from node0/config.toml
  cairn node --home node0 --role validator --listen 0.0.0.0:30300 --external 10.0.0.1:30300 \\
      --http-addr 127.0.0.1:30301
  CAIRN_HOME=node2 CAIRN_ROLE=trainer cairn node --log-format json

`cairn node --help` explains the home, the roles and the API. docs/deploy.md walks through a
two-machine network.";

const LONG_HELP: &str = "\
THE HOME (--home)
  key.json      the node's key (cairn keys generate --home HOME)
  genesis.json  the chain file, the same on every node (cairn genesis)
  config.toml   optional: the settings below as TOML keys (role, listen, external, http,
                bootstrappers, network, block_interval_ms, worker_threads, compute_workers,
                job_queue, data_dir, ...); a flag or its CAIRN_* variable overrides the file
  The node keeps its ledger (ledger.redb), consensus journals and blobs (storage/) there, and
  binds the home to its key and chain at first start (identity.json): a later start with another
  key or another chain file is refused.

ROLES
  validator  votes in simplex consensus (its key must be a validator of the chain file) and
             validates every task it can: scores, aggregates, audits
  trainer    follows the chain and trains in every open task it can afford to join
  Anyone can post a task: a node joins one only if it pays at least --min-reward-per-round,
  asks a trainer bond up to --max-trainer-bond, and the node works on fewer than --max-tasks.
  creator    follows the chain and posts the tasks asked through its API (cairn task create)

THE API (--http-addr)
  /healthz, /metrics (Prometheus), /status, /tasks, /tasks/ID, /tasks/ID/rounds/R,
  /blocks/H, /blobs/HASH, /state/KEY; POST /tasks, which spends the node's tokens: it needs
  --api-token's value as a bearer token, or, without a token, a caller on loopback. Serve the
  API on loopback or a private network.

STOPPING
  SIGTERM or Ctrl-C stops gracefully. After a crash (even SIGKILL) start it again with the
  same home: it resumes from what it synced and catches up from its peers.

LOGS
  stderr, filtered by RUST_LOG (default info), as text or JSON (--log-format json).";

/// Log format of a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Arguments of `cairn node`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP, after_long_help = LONG_HELP)]
pub struct NodeArgs {
    /// The node's home directory.
    #[arg(long, env = "CAIRN_HOME")]
    pub home: PathBuf,
    /// validator, trainer or creator [config: role; default trainer].
    #[arg(long, env = "CAIRN_ROLE")]
    pub role: Option<NodeRole>,
    /// p2p listen address [config: listen; default 0.0.0.0:30300].
    #[arg(long, env = "CAIRN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address peers dial [config: external; default the listen address].
    #[arg(long, env = "CAIRN_EXTERNAL")]
    pub external: Option<SocketAddr>,
    /// HTTP API, /metrics and /healthz address [config: http; default 127.0.0.1:30301].
    #[arg(long, alias = "metrics-addr", env = "CAIRN_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Bootstrapper PUBLIC_KEY@HOST:PORT (repeat) [config: bootstrappers; default the chain
    /// file's validators].
    #[arg(
        long = "bootstrapper",
        env = "CAIRN_BOOTSTRAPPERS",
        value_delimiter = ','
    )]
    pub bootstrappers: Vec<String>,
    /// p2p settings: recommended (internet) or local (loopback, private networks)
    /// [config: network; default recommended].
    #[arg(long, env = "CAIRN_NETWORK")]
    pub network: Option<NetworkProfile>,
    /// Pause before each proposal, ms (validators) [config: block_interval_ms; default 400].
    #[arg(long, env = "CAIRN_BLOCK_INTERVAL_MS")]
    pub block_interval_ms: Option<u64>,
    /// Runtime worker threads [config: worker_threads; default the number of cores].
    #[arg(long, env = "CAIRN_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Threads for training, aggregation, scoring and audits, which run off the consensus path
    /// [config: compute_workers; default the number of cores less one, at least 1].
    #[arg(long, env = "CAIRN_COMPUTE_WORKERS")]
    pub compute_workers: Option<usize>,
    /// Slow jobs that may wait for a compute worker; more are refused and decided again at the
    /// next block [config: job_queue; default 16].
    #[arg(long, env = "CAIRN_JOB_QUEUE")]
    pub job_queue: Option<usize>,
    /// Directory of the built-in datasets [config: data_dir; default CAIRN_DATA_DIR or data/].
    #[arg(long, env = "CAIRN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Open tasks paying less per round are not joined [config: min_reward_per_round; default
    /// 1000].
    #[arg(long, env = "CAIRN_MIN_REWARD_PER_ROUND")]
    pub min_reward_per_round: Option<u64>,
    /// Largest bond locked as a trainer for one task [config: max_trainer_bond; default none].
    #[arg(long, env = "CAIRN_MAX_TRAINER_BOND")]
    pub max_trainer_bond: Option<u64>,
    /// Most tasks worked on at once [config: max_tasks; default 4].
    #[arg(long, env = "CAIRN_MAX_TASKS")]
    pub max_tasks: Option<usize>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "CAIRN_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Token `POST /tasks` requires (Authorization: Bearer TOKEN); without one, only callers on
    /// loopback may create tasks. Prefer the environment variable to the flag.
    #[arg(long, env = "CAIRN_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

/// Runs `cairn node`.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    let home = Home::new(&args.home);
    let mut settings = home.settings()?;
    if let Some(role) = args.role {
        settings.role = role;
    }
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if let Some(external) = args.external {
        settings.external = Some(external);
    }
    if let Some(http) = args.http_addr {
        settings.http = Some(http);
    }
    if !args.bootstrappers.is_empty() {
        settings.bootstrappers = args.bootstrappers;
    }
    if let Some(network) = args.network {
        settings.network = network;
    }
    if let Some(interval) = args.block_interval_ms {
        settings.block_interval_ms = interval;
    }
    if let Some(threads) = args.worker_threads {
        settings.worker_threads = Some(threads);
    }
    if let Some(workers) = args.compute_workers {
        settings.compute_workers = Some(workers);
    }
    if let Some(queue) = args.job_queue {
        settings.job_queue = queue;
    }
    if let Some(dir) = args.data_dir {
        settings.data_dir = Some(dir);
    }
    if let Some(reward) = args.min_reward_per_round {
        settings.min_reward_per_round = reward;
    }
    if let Some(bond) = args.max_trainer_bond {
        settings.max_trainer_bond = Some(bond);
    }
    if let Some(tasks) = args.max_tasks {
        settings.max_tasks = tasks;
    }
    cairn_daemon::run::run(&home, settings, args.api_token)?;
    Ok(())
}
