//! `cairn model export`: a finalized model of a running network as safetensors.

use std::path::PathBuf;

use anyhow::{bail, Context};
use cairn_daemon::client::Client;
use cairn_ledger::encoding::{from_hex, to_hex};
use cairn_ledger::DatasetRegistry;
use cairn_ml::model::Model;
use cairn_round::plan::TaskPlan;

const HELP: &str = "\
Examples:
  cairn model export --node 127.0.0.1:30301 --task 0 --out digits.safetensors
  python -c \"from safetensors.torch import load_file; print(load_file('digits.safetensors').keys())\"

Exports the task's latest model (the one the ledger records for the task) after checking its
bytes hash to the recorded hash. The file loads in PyTorch with safetensors (docs/formats.md).";

/// Arguments of `cairn model`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ModelCommand {
    /// Write a task's latest finalized model as safetensors.
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The node's API.
    #[arg(long, env = "CAIRN_NODE")]
    node: String,
    /// Task id.
    #[arg(long)]
    task: u64,
    /// Output file.
    #[arg(long, default_value = "model.safetensors")]
    out: PathBuf,
    /// Directory of the built-in datasets (to parse the task's plan).
    #[arg(long, env = "CAIRN_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

/// Runs `cairn model`.
pub fn run(args: ModelArgs) -> anyhow::Result<()> {
    let ModelCommand::Export(args) = args.command;
    let client = Client::new(&args.node);
    let task = client.get_json(&format!("/tasks/{}", args.task))?;
    let hash_hex = task["model_hash"]
        .as_str()
        .context("the task has no model hash")?;
    let hash: [u8; 32] = from_hex(hash_hex).context("the model hash is not 32 bytes of hex")?;
    let bytes = client.get_bytes(&format!("/blobs/{hash_hex}"))?;
    if cairn_round::params::blob_hash(&bytes) != hash {
        bail!("the node served bytes that do not hash to {hash_hex}");
    }
    // The task's plan names the model architecture; read the spec through the ledger record.
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => cairn_ml::data::default_data_dir()?,
    };
    let registry = DatasetRegistry::with_builtins(&data_dir)?;
    let spec = cairn_daemon::replay::task_spec(&client, args.task)?;
    let plan = TaskPlan::from_spec(&spec, &registry)?;
    let params = cairn_round::params::decode(&bytes, plan.param_count())?;
    let model = Model::new(plan.model.clone(), params)?;
    cairn_ml::checkpoint::save(&model, &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {}: task {} model {} ({} parameters)",
        args.out.display(),
        args.task,
        to_hex(&hash),
        plan.param_count()
    );
    Ok(())
}
