//! The settings of `cairn train`: its flags, the `--config` TOML file with the same keys, and
//! the defaults, merged in that order of precedence.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cairn_ml::data::BuiltinDataset;
use serde::Deserialize;

/// Largest `--config` file read; a settings file is a few hundred bytes.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

// Defaults, applied after the flags are merged over the config file. The `[default: ...]` notes
// in the flags' help repeat them; a unit test keeps the two in step.
const DEFAULT_DATASET: DatasetArg = DatasetArg::Digits;
const DEFAULT_MODEL: ModelArg = ModelArg::Mlp;
const DEFAULT_HIDDEN: [usize; 2] = [256, 128];
const DEFAULT_DROPOUT: f32 = 0.25;
const DEFAULT_OPTIMIZER: OptimizerArg = OptimizerArg::Sgd;
pub(super) const DEFAULT_SGD_LR: f32 = 0.1;
pub(super) const DEFAULT_ADAM_LR: f32 = 0.001;
const DEFAULT_MOMENTUM: f32 = 0.9;
const DEFAULT_WEIGHT_DECAY: f32 = 0.0;
const DEFAULT_EPOCHS: u64 = 5;
const DEFAULT_BATCH_SIZE: usize = 64;
const DEFAULT_SEED: u64 = 7;
const DEFAULT_THREADS: usize = 1;

/// Arguments of `cairn train`, and the schema of its `--config` file.
///
/// Every setting is optional here so that a flag given on the command line can be told apart
/// from one left out: flags override the config file, and what neither sets takes its default.
#[derive(Debug, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
#[command(
    after_help = "Example:\n  cairn train --dataset mnist_5k --model mlp --epochs 20 \
                        --threads 2 --json out.json --save mnist.safetensors\n  \
                        cairn train --config examples/train-mnist.toml --threads 2\n\n\
                        The same settings give the same weights hash on any machine and with any \
                        --threads. See docs/train.md."
)]
pub struct TrainArgs {
    /// TOML file of settings, keyed like the flags (`batch_size = 32`); flags given here
    /// override it, and relative paths in it are relative to the file's folder.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Dataset to train and test on [default: digits]. digits and mnist_5k ship in data/ and
    /// are split 80/20 (stratified, seeded by --seed); fashion_mnist keeps its 60000/10000
    /// split and needs `apt-get install dataset-fashion-mnist`.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetArg>,

    /// Folder holding digits.csv.gz and mnist_5k.csv.gz [default: $CAIRN_DATA_DIR, else the
    /// first data/ folder in the working directory or its parents].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Architecture [default: mlp]: logistic regression, a ReLU MLP (widths from --hidden) or
    /// a small CNN (conv 32, conv 64, dense 128, dropout from --dropout).
    #[arg(long, value_enum)]
    pub model: Option<ModelArg>,

    /// Hidden-layer widths of the MLP, comma-separated [default: 256,128] (ignored by other
    /// models; in the config file, a list: `hidden = [256, 128]`).
    #[arg(long, value_delimiter = ',', value_name = "WIDTHS")]
    pub hidden: Option<Vec<usize>>,

    /// Drop probability of the CNN's dropout layer, in [0, 0.99] [default: 0.25] (ignored by
    /// other models).
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f32>,

    /// Optimizer [default: sgd], with PyTorch's semantics (weight decay is an L2 term added to
    /// the gradient).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,

    /// Learning rate [default: 0.1 for sgd, 0.001 for adam].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,

    /// SGD momentum, in [0, 1) [default: 0.9] (ignored by adam, which uses betas 0.9 and 0.999).
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f32>,

    /// L2 weight decay added to the gradient [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f32>,

    /// Passes over the training set [default: 5].
    #[arg(long)]
    pub epochs: Option<u64>,

    /// Samples per optimizer step [default: 64] (the last batch of an epoch may be smaller).
    #[arg(long)]
    pub batch_size: Option<usize>,

    /// Seed of the train/test split, the initial weights, the batch order and dropout
    /// [default: 7].
    #[arg(long)]
    pub seed: Option<u64>,

    /// Worker threads for the kernels [default: 1]. The result is bit-identical for every value.
    #[arg(long)]
    pub threads: Option<usize>,

    /// Write the run's settings, per-epoch figures and weights hash to this JSON file (checked
    /// before training: its folder must exist, and it must not be an input, a link or a special
    /// file).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Save the trained model to this safetensors file (PyTorch names; loads with
    /// safetensors.numpy or safetensors.torch). Checked before training, as --json is.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

/// The settings of one run: the flags merged over the config file, then the defaults.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct TrainSettings {
    pub(super) dataset: DatasetArg,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) model: ModelArg,
    pub(super) hidden: Vec<usize>,
    pub(super) dropout: f32,
    pub(super) optimizer: OptimizerArg,
    /// `None` takes the optimizer's default learning rate.
    pub(super) lr: Option<f32>,
    pub(super) momentum: f32,
    pub(super) weight_decay: f32,
    pub(super) epochs: u64,
    pub(super) batch_size: usize,
    pub(super) seed: u64,
    pub(super) threads: usize,
    pub(super) json: Option<PathBuf>,
    pub(super) save: Option<PathBuf>,
}

impl TrainArgs {
    /// Reads `--config` (if given), lays the flags over it and fills the rest with defaults.
    pub(super) fn resolve(self) -> anyhow::Result<TrainSettings> {
        let file = match &self.config {
            Some(path) => read_config(path)?,
            None => TrainArgs::default(),
        };
        Ok(self.over(file).with_defaults())
    }

    /// These settings, with those left out taken from `file`.
    fn over(self, file: TrainArgs) -> TrainArgs {
        TrainArgs {
            config: self.config,
            dataset: self.dataset.or(file.dataset),
            data_dir: self.data_dir.or(file.data_dir),
            model: self.model.or(file.model),
            hidden: self.hidden.or(file.hidden),
            dropout: self.dropout.or(file.dropout),
            optimizer: self.optimizer.or(file.optimizer),
            lr: self.lr.or(file.lr),
            momentum: self.momentum.or(file.momentum),
            weight_decay: self.weight_decay.or(file.weight_decay),
            epochs: self.epochs.or(file.epochs),
            batch_size: self.batch_size.or(file.batch_size),
            seed: self.seed.or(file.seed),
            threads: self.threads.or(file.threads),
            json: self.json.or(file.json),
            save: self.save.or(file.save),
        }
    }

    /// The settings, with the defaults for those still left out.
    fn with_defaults(self) -> TrainSettings {
        TrainSettings {
            dataset: self.dataset.unwrap_or(DEFAULT_DATASET),
            data_dir: self.data_dir,
            model: self.model.unwrap_or(DEFAULT_MODEL),
            hidden: self.hidden.unwrap_or_else(|| DEFAULT_HIDDEN.to_vec()),
            dropout: self.dropout.unwrap_or(DEFAULT_DROPOUT),
            optimizer: self.optimizer.unwrap_or(DEFAULT_OPTIMIZER),
            lr: self.lr,
            momentum: self.momentum.unwrap_or(DEFAULT_MOMENTUM),
            weight_decay: self.weight_decay.unwrap_or(DEFAULT_WEIGHT_DECAY),
            epochs: self.epochs.unwrap_or(DEFAULT_EPOCHS),
            batch_size: self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
            seed: self.seed.unwrap_or(DEFAULT_SEED),
            threads: self.threads.unwrap_or(DEFAULT_THREADS),
            json: self.json,
            save: self.save,
        }
    }
}

/// Reads a `--config` file, its relative paths made relative to the file's folder.
fn read_config(path: &Path) -> anyhow::Result<TrainArgs> {
    let size = std::fs::metadata(path)
        .with_context(|| {
            format!(
                "cannot read the config file {}; check the --config path",
                path.display()
            )
        })?
        .len();
    if size > MAX_CONFIG_BYTES {
        bail!(
            "the config file {} is {size} bytes, over the {MAX_CONFIG_BYTES}-byte limit; \
             is it the right file?",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the config file {}; check the --config path",
            path.display()
        )
    })?;
    let mut file: TrainArgs =
        toml::from_str(&text).map_err(|error| config_error(path, &text, &error))?;
    let folder = path.parent().unwrap_or(Path::new(""));
    for setting in [&mut file.data_dir, &mut file.json, &mut file.save] {
        if let Some(relative) = setting.as_mut() {
            *relative = folder.join(&*relative);
        }
    }
    Ok(file)
}

/// An error for a config file that does not parse, naming the file and each bad key.
fn config_error(path: &Path, text: &str, error: &toml::de::Error) -> anyhow::Error {
    let file = path.display();
    // TOML that parses as a table failed on the schema: try each key alone to name the culprits.
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        let before = error.span().and_then(|span| text.get(..span.start));
        let place = before.map_or(String::new(), |before| {
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(" at line {line}, column {column}")
        });
        return anyhow::anyhow!(
            "invalid config file {file}: not valid TOML{place}: {}",
            error.message().trim_end()
        );
    };
    let mut problems: Vec<(usize, String)> = table
        .into_iter()
        .filter_map(|(key, value)| {
            let line = text
                .lines()
                .position(|line| key_of_line(line) == Some(key.as_str()))
                .map(|i| i + 1);
            let alone = toml::Value::Table(toml::Table::from_iter([(key.clone(), value)]));
            let problem = alone.try_into::<TrainArgs>().err()?;
            let place = line.map_or(String::new(), |line| format!(" (line {line})"));
            let problem = format!("key `{key}`{place}: {}", problem.message().trim_end());
            Some((line.unwrap_or(usize::MAX), problem))
        })
        .collect();
    problems.sort(); // in the file's order; keys without a line (tables) last
    let problems: Vec<String> = problems.into_iter().map(|(_, problem)| problem).collect();
    if problems.is_empty() {
        return anyhow::anyhow!("invalid config file {file}: {}", error.message().trim_end());
    }
    anyhow::anyhow!(
        "invalid config file {file}: {}; the keys are the flags of `cairn train --help` with _ \
         for -",
        problems.join("; ")
    )
}

/// The key a `key = value` line sets, if it is one.
fn key_of_line(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    bare.then_some(key)
}

/// The datasets `--dataset` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
pub enum DatasetArg {
    /// UCI handwritten digits, 8x8, 1797 samples (shipped).
    #[serde(rename = "digits")]
    Digits,
    /// 5000 MNIST samples, 28x28 (shipped).
    #[value(name = "mnist_5k")]
    #[serde(rename = "mnist_5k")]
    Mnist5k,
    /// Fashion-MNIST, 28x28, 70000 samples (Debian package dataset-fashion-mnist).
    #[value(name = "fashion_mnist")]
    #[serde(rename = "fashion_mnist")]
    FashionMnist,
}

impl DatasetArg {
    pub(super) fn builtin(self) -> BuiltinDataset {
        match self {
            DatasetArg::Digits => BuiltinDataset::Digits,
            DatasetArg::Mnist5k => BuiltinDataset::Mnist5k,
            DatasetArg::FashionMnist => BuiltinDataset::FashionMnist,
        }
    }
}

/// The architectures `--model` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelArg {
    /// Multinomial logistic regression.
    Logistic,
    /// Dense layers with ReLU.
    Mlp,
    /// Two 3x3 convolutions with max pooling, then two dense layers.
    Cnn,
}

/// The optimizers `--optimizer` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerArg {
    /// Stochastic gradient descent with momentum.
    Sgd,
    /// Adam.
    Adam,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches, ValueEnum};

    fn command() -> clap::Command {
        TrainArgs::augment_args(clap::Command::new("train"))
    }

    fn parse_flags(flags: &[&str]) -> TrainArgs {
        let matches = command()
            .try_get_matches_from(std::iter::once("train").chain(flags.iter().copied()))
            .unwrap();
        TrainArgs::from_arg_matches(&matches).unwrap()
    }

    fn name<T: ValueEnum>(value: T) -> String {
        value.to_possible_value().unwrap().get_name().to_string()
    }

    #[test]
    fn help_states_every_default_that_resolve_applies() {
        let help = command().render_long_help().to_string();
        let hidden = DEFAULT_HIDDEN.map(|width| width.to_string()).join(",");
        for default in [
            name(DEFAULT_DATASET),
            name(DEFAULT_MODEL),
            hidden,
            DEFAULT_DROPOUT.to_string(),
            name(DEFAULT_OPTIMIZER),
            format!("{DEFAULT_SGD_LR} for sgd, {DEFAULT_ADAM_LR} for adam"),
            DEFAULT_MOMENTUM.to_string(),
            DEFAULT_WEIGHT_DECAY.to_string(),
            DEFAULT_EPOCHS.to_string(),
            DEFAULT_BATCH_SIZE.to_string(),
            DEFAULT_SEED.to_string(),
            DEFAULT_THREADS.to_string(),
        ] {
            let note = format!("[default: {default}]");
            assert!(help.contains(&note), "--help lacks {note}:\n{help}");
        }
        let none = parse_flags(&[]).resolve().unwrap();
        assert_eq!(none.epochs, DEFAULT_EPOCHS);
        assert_eq!(none.hidden, DEFAULT_HIDDEN);
        assert_eq!(none.lr, None);
    }

    #[test]
    fn flags_override_the_file_and_defaults_fill_what_neither_sets() {
        let file: TrainArgs =
            toml::from_str("epochs = 3\nseed = 11\nhidden = [32, 16]\nlr = 1\n").unwrap();
        let settings = parse_flags(&["--seed", "12", "--batch-size", "8"])
            .over(file)
            .with_defaults();
        assert_eq!(settings.seed, 12, "the flag wins over the file");
        assert_eq!(settings.batch_size, 8, "a flag alone is used");
        assert_eq!(settings.epochs, 3, "the file fills what no flag sets");
        assert_eq!(settings.hidden, [32, 16]);
        assert_eq!(
            settings.lr,
            Some(1.0),
            "an integer is accepted for a float key"
        );
        assert_eq!(settings.threads, DEFAULT_THREADS, "neither: the default");
        assert_eq!(settings.dataset, DEFAULT_DATASET);
    }

    #[test]
    fn relative_paths_in_the_file_are_relative_to_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        let absolute = dir.path().join("elsewhere.json");
        let text = format!(
            "data_dir = \"data\"\nsave = \"out/model.safetensors\"\njson = {:?}\n",
            absolute.to_str().unwrap()
        );
        std::fs::write(&path, text).unwrap();
        let file = read_config(&path).unwrap();
        assert_eq!(file.data_dir, Some(dir.path().join("data")));
        assert_eq!(file.save, Some(dir.path().join("out/model.safetensors")));
        assert_eq!(file.json, Some(absolute));
    }

    #[test]
    fn config_errors_name_the_file_and_every_bad_key_with_its_line() {
        let path = Path::new("settings/run.toml");
        let text = "epochs = \"twenty\"\n# a comment\ncolour = 1\ndataset = \"cifar\"\n";
        let error = toml::from_str::<TrainArgs>(text).unwrap_err();
        let message = config_error(path, text, &error).to_string();
        assert!(message.contains("settings/run.toml"), "{message}");
        assert!(message.contains("key `epochs` (line 1)"), "{message}");
        assert!(
            message.contains("key `colour` (line 3): unknown field"),
            "{message}"
        );
        assert!(message.contains("key `dataset` (line 4)"), "{message}");
        assert!(message.contains("mnist_5k"), "{message}");

        let text = "seed = 7\nepochs 20\n";
        let error = toml::from_str::<TrainArgs>(text).unwrap_err();
        let message = config_error(path, text, &error).to_string();
        assert!(message.contains("not valid TOML at line 2"), "{message}");
    }

    #[test]
    fn example_config_is_the_documented_mnist_run() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/train-mnist.toml");
        let settings = TrainArgs {
            config: Some(path),
            ..TrainArgs::default()
        }
        .resolve()
        .unwrap();
        // docs/train.md: `cairn train --dataset mnist_5k --epochs 20` reaches 95.00%.
        let flags = parse_flags(&["--dataset", "mnist_5k", "--epochs", "20", "--threads", "2"]);
        let mut documented = flags.resolve().unwrap();
        assert_eq!(documented.lr, None);
        documented.lr = Some(DEFAULT_SGD_LR); // the file spells out sgd's default rate
        assert_eq!(settings, documented);
    }
}
