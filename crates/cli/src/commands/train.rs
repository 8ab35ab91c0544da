//! `cairn train`: centralized, bit-exact baseline training on a built-in dataset.
//!
//! The run is a pure function of its settings: the split, the initial weights, the batch order
//! and the dropout masks all derive from `--seed`, and the kernels give the same bits on any
//! thread count, so the printed weights hash is reproducible anywhere. Only `samples_per_second`
//! depends on the machine. The settings are resolved in [`settings`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use cairn_ml::checkpoint;
use cairn_ml::data::{
    default_data_dir, fashion_mnist_paths, find_fashion_mnist_dir, BuiltinDataset, TrainTest,
    FASHION_MNIST_DIR_ENV,
};
use cairn_ml::model::{Model, ModelSpec};
use cairn_ml::optim::{Optimizer, OptimizerSpec};
use cairn_ml::train::{derive_seed, train_epoch, weights_hash};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::output::{check_output, write_output};
pub use settings::TrainArgs;
use settings::{ModelArg, OptimizerArg, TrainSettings, DEFAULT_ADAM_LR, DEFAULT_SGD_LR};

mod settings;

/// Purpose string the per-epoch seeds are derived with (see `cairn_ml::train::derive_seed`).
const EPOCH_SEED_PURPOSE: &str = "cairn.train.epoch";
/// Samples per forward pass when evaluating on the test set (does not change the result).
const EVAL_BATCH: usize = 256;
/// Largest thread count accepted; more would only oversubscribe the machine.
const MAX_THREADS: usize = 1024;

/// Figures of one epoch, as printed and written to `--json`.
#[derive(Clone, Copy, Debug, Serialize)]
struct EpochReport {
    epoch: u64,
    train_loss: f32,
    test_loss: f32,
    test_accuracy: f32,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct RunReport {
    dataset: &'static str,
    model: ModelSpec,
    optimizer: OptimizerSpec,
    epochs: u64,
    batch_size: usize,
    seed: u64,
    threads: usize,
    train_samples: usize,
    test_samples: usize,
    epochs_detail: Vec<EpochReport>,
    samples_per_second: f64,
    weights_hash: String,
    final_test_accuracy: f32,
}

/// Runs `cairn train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let config = args.config.clone();
    let args = args.resolve()?;
    if let Err(error) = check_args(&args) {
        return Err(match &config {
            Some(path) => error.context(format!(
                "invalid settings from the flags and {}",
                path.display()
            )),
            None => error,
        });
    }
    let dataset = args.dataset.builtin();
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => default_data_dir()
            .context("cannot find the shipped datasets; pass --data-dir <repository>/data")?,
    };
    // Before the work: an output that cannot be written must not cost a whole run.
    let inputs = input_files(config.as_deref(), dataset, &data_dir);
    check_outputs(&args, &inputs)?;
    let split = dataset.load(&data_dir, args.seed).with_context(|| {
        let hint = match dataset {
            BuiltinDataset::FashionMnist => "see the cause below for how to install it",
            _ => "point --data-dir (or CAIRN_DATA_DIR) at the repository's data/ folder",
        };
        format!(
            "cannot load dataset {dataset} from {}; {hint}",
            data_dir.display()
        )
    })?;
    let spec = model_spec(&args, dataset);
    spec.validate()
        .context("the model settings are invalid; check --hidden and --dropout")?;
    let optimizer = optimizer_spec(&args);
    optimizer
        .validate()
        .context("the optimizer settings are invalid; check --lr, --momentum and --weight-decay")?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("cannot start the worker threads; try a smaller --threads")?;
    if let Some(path) = &config {
        println!("settings from {} (flags override it)", path.display());
    }
    println!(
        "training {} on {dataset} ({} train / {} test samples), {} epochs, seed {}, {} thread(s)",
        spec_label(&spec),
        split.train.len(),
        split.test.len(),
        args.epochs,
        args.seed,
        args.threads
    );
    let (model, report) = pool.install(|| train(&args, dataset, &split, spec, optimizer))?;
    println!(
        "final test accuracy {:.2}%, {:.0} samples/s, weights blake3 {}",
        100.0 * report.final_test_accuracy,
        report.samples_per_second,
        report.weights_hash
    );
    // Checked again: the files may have changed during the run.
    check_outputs(&args, &inputs)?;
    if let Some(path) = &args.json {
        write_json(path, &report)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.save {
        checkpoint::save(&model, path).context("cannot save the model; check the --save path")?;
        println!("saved model to {}", path.display());
    }
    Ok(())
}

/// The files a run reads, by the flag that names them: the config file and the dataset's files.
fn input_files(
    config: Option<&Path>,
    dataset: BuiltinDataset,
    data_dir: &Path,
) -> Vec<(&'static str, PathBuf)> {
    let mut inputs = Vec::new();
    if let Some(path) = config {
        inputs.push(("--config", path.to_path_buf()));
    }
    match dataset {
        BuiltinDataset::Digits | BuiltinDataset::Mnist5k => {
            inputs.push(("--data-dir", data_dir.join(format!("{dataset}.csv.gz"))));
        }
        BuiltinDataset::FashionMnist => {
            // A folder that is not found fails the load with its own message; nothing to guard.
            let env = std::env::var_os(FASHION_MNIST_DIR_ENV);
            if let Ok(dir) = find_fashion_mnist_dir(data_dir, env) {
                if let Ok(files) = fashion_mnist_paths(&dir) {
                    inputs.extend(files.into_iter().map(|path| ("--data-dir", path)));
                }
            }
        }
    }
    inputs
}

/// Refuses `--json` and `--save` paths that could not be written, or that name an input or each
/// other (see [`check_output`]).
fn check_outputs(args: &TrainSettings, inputs: &[(&'static str, PathBuf)]) -> anyhow::Result<()> {
    let mut taken: Vec<(&str, &Path)> = inputs
        .iter()
        .map(|(flag, path)| (*flag, path.as_path()))
        .collect();
    for (flag, output) in [("--json", &args.json), ("--save", &args.save)] {
        if let Some(path) = output {
            check_output(flag, path, &taken)?;
            taken.push((flag, path));
        }
    }
    Ok(())
}

fn check_args(args: &TrainSettings) -> anyhow::Result<()> {
    if args.threads == 0 || args.threads > MAX_THREADS {
        bail!(
            "--threads is {}; give a value from 1 to {MAX_THREADS}",
            args.threads
        );
    }
    if args.epochs == 0 {
        bail!("--epochs is 0; train for at least 1 epoch");
    }
    if args.batch_size == 0 {
        bail!("--batch-size is 0; give at least 1 sample per step");
    }
    if args.model == ModelArg::Mlp && args.hidden.is_empty() {
        bail!("--hidden is empty; give the MLP's hidden widths, e.g. --hidden 256,128");
    }
    Ok(())
}

fn model_spec(args: &TrainSettings, dataset: BuiltinDataset) -> ModelSpec {
    let (channels, height, width) = dataset.shape();
    let inputs = channels * height * width;
    let classes = dataset.classes();
    match args.model {
        ModelArg::Logistic => ModelSpec::Logistic { inputs, classes },
        ModelArg::Mlp => ModelSpec::Mlp {
            inputs,
            hidden: args.hidden.clone(),
            classes,
        },
        ModelArg::Cnn => ModelSpec::Cnn {
            channels,
            height,
            width,
            classes,
            dropout: args.dropout,
        },
    }
}

fn optimizer_spec(args: &TrainSettings) -> OptimizerSpec {
    match args.optimizer {
        OptimizerArg::Sgd => OptimizerSpec::Sgd {
            lr: args.lr.unwrap_or(DEFAULT_SGD_LR),
            momentum: args.momentum,
            weight_decay: args.weight_decay,
        },
        OptimizerArg::Adam => OptimizerSpec::Adam {
            lr: args.lr.unwrap_or(DEFAULT_ADAM_LR),
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: args.weight_decay,
        },
    }
}

fn spec_label(spec: &ModelSpec) -> String {
    match spec {
        ModelSpec::Logistic { .. } => "logistic regression".into(),
        ModelSpec::Mlp { hidden, .. } => format!("MLP {hidden:?}"),
        ModelSpec::Cnn { dropout, .. } => format!("CNN (dropout {dropout})"),
    }
}

/// The training loop: one epoch at a time, a progress bar over batches, a table row per epoch.
fn train(
    args: &TrainSettings,
    dataset: BuiltinDataset,
    split: &TrainTest,
    spec: ModelSpec,
    optimizer_spec: OptimizerSpec,
) -> anyhow::Result<(Model, RunReport)> {
    let mut model = Model::init(spec.clone(), args.seed).context("cannot build the model")?;
    let mut optimizer = Optimizer::new(&optimizer_spec, model.params().len())
        .context("cannot build the optimizer")?;
    let batches = split.train.len().div_ceil(args.batch_size) as u64;
    let bar = progress_bar(batches);
    println!(
        "{:>5}  {:>10}  {:>9}  {:>13}",
        "epoch", "train loss", "test loss", "test accuracy"
    );
    let mut detail = Vec::new();
    let mut samples = 0usize;
    let mut training_time = 0.0f64;
    for epoch in 1..=args.epochs {
        bar.reset();
        bar.set_message(format!("epoch {epoch}/{}", args.epochs));
        let epoch_seed = derive_seed(args.seed, EPOCH_SEED_PURPOSE, epoch - 1);
        let started = Instant::now();
        let stats = train_epoch(
            &mut model,
            &mut optimizer,
            &split.train,
            args.batch_size,
            epoch_seed,
            |progress| {
                bar.inc(1);
                if progress.batch % 16 == 0 {
                    bar.set_message(format!(
                        "epoch {epoch}/{} loss {:.4}",
                        args.epochs, progress.loss
                    ));
                }
            },
        )
        .with_context(|| format!("training failed in epoch {epoch}"))?;
        training_time += started.elapsed().as_secs_f64();
        samples += stats.samples;
        let evaluation = model
            .evaluate(&split.test, EVAL_BATCH)
            .with_context(|| format!("evaluating on the test set failed after epoch {epoch}"))?;
        let row = EpochReport {
            epoch,
            train_loss: stats.mean_loss,
            test_loss: evaluation.loss,
            test_accuracy: evaluation.accuracy,
        };
        bar.suspend(|| {
            println!(
                "{:>5}  {:>10.4}  {:>9.4}  {:>12.2}%",
                row.epoch,
                row.train_loss,
                row.test_loss,
                100.0 * row.test_accuracy
            )
        });
        detail.push(row);
    }
    bar.finish_and_clear();
    let final_test_accuracy = detail.last().map_or(0.0, |row| row.test_accuracy);
    let report = RunReport {
        dataset: dataset.name(),
        model: spec,
        optimizer: optimizer_spec,
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        threads: args.threads,
        train_samples: split.train.len(),
        test_samples: split.test.len(),
        epochs_detail: detail,
        samples_per_second: samples as f64 / training_time.max(f64::MIN_POSITIVE),
        weights_hash: checkpoint::hex(&weights_hash(model.params())),
        final_test_accuracy,
    };
    Ok((model, report))
}

/// A bar over the batches of one epoch on stderr, hidden when stderr is not a terminal.
fn progress_bar(batches: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(batches);
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} batches {msg} [{elapsed}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn write_json(path: &Path, report: &RunReport) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(report).context("cannot encode the results")?;
    text.push('\n');
    write_output("--json", path, text.as_bytes())
}
