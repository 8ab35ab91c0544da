//! `cairn task create|status`: tasks on a running network, through a node's API.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cairn_daemon::client::{closed_rounds, Client};
use serde_json::Value;

const HELP: &str = "\
Examples:
  cairn task create --node 127.0.0.1:30301 --dataset digits --rounds 3 --trainers 4 --validators 4
  cairn task create --node 127.0.0.1:30301 --scenario examples/simulate-default.toml
  cairn task status --node 127.0.0.1:30301                 # every task
  cairn task status --node 127.0.0.1:30301 --task 0 --wait-round 3 --timeout 600

`create` asks the node to post the task with its own key (it pays the reward budget) and to
start it once the members joined; the task is described in `cairn simulate`'s scenario format
(its task fields: dataset, model, partition, rounds, local_steps, optimizer, rule, windows,
verification, and the trainer and validator counts it waits for).";

/// Arguments of `cairn task`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct TaskArgs {
    #[command(subcommand)]
    command: TaskCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TaskCommand {
    /// Ask a node to create a task (with its key) and start it once its members joined.
    Create(CreateArgs),
    /// Show the tasks on the ledger, or one task; optionally wait for a round to close.
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The node's API (HOST:PORT or http://HOST:PORT).
    #[arg(long, env = "CAIRN_NODE")]
    node: String,
    /// A scenario file describing the task (flags below are ignored then).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Dataset.
    #[arg(long, default_value = "digits")]
    dataset: String,
    /// Rounds.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Trainers the creator waits for (it starts with 2/3 of them after 40 blocks).
    #[arg(long, default_value_t = 4)]
    trainers: u32,
    /// Validators the creator waits for.
    #[arg(long, default_value_t = 4)]
    validators: u32,
    /// Robust rule with its pre-aggregation chain and remedies (one Byzantine trainer tolerated
    /// by default, which a handful of trainers allows; the simulator's default tolerates two).
    #[arg(
        long,
        default_value = "arc:1,nnm:1>centered_clipping:1:3+screen:1+sm:0.5"
    )]
    rule: String,
    /// Partition of the training data among trainers.
    #[arg(long, default_value = "iid")]
    partition: String,
    /// Local SGD steps per round.
    #[arg(long, default_value_t = 20)]
    local_steps: u32,
    /// Tokens paid per round.
    #[arg(long, default_value_t = 10_000)]
    reward_per_round: u64,
    /// Stake each trainer bonds (its trainer bond).
    #[arg(long, default_value_t = 40_000)]
    trainer_stake: u64,
    /// The node's API token (needed unless the node is on loopback and has none).
    #[arg(long, env = "CAIRN_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// The node's API.
    #[arg(long, env = "CAIRN_NODE")]
    node: String,
    /// One task.
    #[arg(long)]
    task: Option<u64>,
    /// Wait until this many rounds of --task have closed (a task not there yet is waited for).
    #[arg(long, requires = "task")]
    wait_round: Option<u32>,
    /// Seconds to wait at most.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn scenario_text(args: &CreateArgs) -> anyhow::Result<String> {
    if let Some(path) = &args.scenario {
        return std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()));
    }
    let mut text = format!(
        "dataset = {:?}\nrounds = {}\nlocal_steps = {}\npartition = {:?}\nreward_per_round = {}\n",
        args.dataset, args.rounds, args.local_steps, args.partition, args.reward_per_round
    );
    text.push_str(&format!("rule = {:?}\n", args.rule));
    text.push_str(&format!(
        "[[trainers]]\ncount = {}\nstake = {}\n[[validators]]\ncount = {}\n",
        args.trainers, args.trainer_stake, args.validators
    ));
    Ok(text)
}

/// Runs `cairn task`.
pub fn run(args: TaskArgs) -> anyhow::Result<()> {
    match args.command {
        TaskCommand::Create(create) => {
            let client = Client::new(&create.node).with_token(create.api_token.clone());
            let text = scenario_text(&create)?;
            let answer = client.post_text("/tasks", &text)?;
            println!(
                "{}: creator {} posts the task and starts it once {} trainers and {} validators \
                 joined",
                client.base(),
                answer["creator"].as_str().unwrap_or("?"),
                answer["trainers"],
                answer["validators"]
            );
            println!("follow it: cairn task status --node {}", create.node);
        }
        TaskCommand::Status(status) => {
            let client = Client::new(&status.node);
            match status.task {
                None => {
                    let tasks = client.get_json("/tasks")?;
                    if status.json {
                        println!("{}", serde_json::to_string_pretty(&tasks)?);
                        return Ok(());
                    }
                    println!(
                        "{:>4} {:<10} {:>9} {:>8} {:>10}  {:<18}",
                        "id", "status", "round", "trainers", "validators", "model"
                    );
                    for task in tasks.as_array().into_iter().flatten() {
                        let model = task["model_hash"].as_str().unwrap_or("");
                        println!(
                            "{:>4} {:<10} {:>9} {:>8} {:>10}  {}…",
                            task["id"].as_u64().unwrap_or(0),
                            task["status"].as_str().unwrap_or("?"),
                            format!(
                                "{}/{}",
                                task["round"].as_u64().map_or("-".into(), |r| r.to_string()),
                                task["rounds"].as_u64().unwrap_or(0)
                            ),
                            task["trainers"].as_u64().unwrap_or(0),
                            task["validators"].as_u64().unwrap_or(0),
                            &model[..model.len().min(16)]
                        );
                    }
                }
                Some(id) => {
                    let started = Instant::now();
                    let task = loop {
                        let path = format!("/tasks/{id}");
                        let Some(wanted) = status.wait_round else {
                            break client.get_json(&path)?;
                        };
                        // A task just asked for appears a block later: waiting covers that.
                        let Some(task) = client.get_json_if_found(&path)? else {
                            if started.elapsed() >= Duration::from_secs(status.timeout) {
                                bail!("task {id} did not appear in {} s", status.timeout);
                            }
                            std::thread::sleep(Duration::from_millis(500));
                            continue;
                        };
                        if closed_rounds(&task) >= u64::from(wanted) {
                            break task;
                        }
                        if started.elapsed() >= Duration::from_secs(status.timeout) {
                            bail!(
                                "task {id}: {} rounds closed after {} s, {wanted} wanted",
                                closed_rounds(&task),
                                status.timeout
                            );
                        }
                        std::thread::sleep(Duration::from_millis(500));
                    };
                    if status.json {
                        println!("{}", serde_json::to_string_pretty(&task)?);
                    } else {
                        println!(
                            "task {id}: {} · {} of {} rounds closed · {} trainers · {} validators · model {}",
                            match &task["status"] {
                                Value::String(s) => s.to_lowercase(),
                                _ => "running".to_string(),
                            },
                            closed_rounds(&task),
                            task["spec"]["rounds"],
                            task["trainers"].as_object().map_or(0, |m| m.len()),
                            task["validators"].as_object().map_or(0, |m| m.len()),
                            task["model_hash"].as_str().unwrap_or("?")
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
