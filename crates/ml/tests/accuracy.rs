//! Accuracy: the bit-exact models, optimizers and training loop learn real data as well as the
//! usual float frameworks do. The settings here are the `cairn train` defaults (docs/train.md).

use cairn_ml::data::{default_data_dir, BuiltinDataset};
use cairn_ml::model::{Evaluation, Model, ModelSpec};
use cairn_ml::optim::{Optimizer, OptimizerSpec};
use cairn_ml::train::{derive_seed, train_epoch};

/// Trains `spec` on `dataset` (split with `seed`) and returns the test evaluation after each epoch.
fn train(
    dataset: BuiltinDataset,
    spec: ModelSpec,
    optimizer: OptimizerSpec,
    epochs: u64,
    batch_size: usize,
    seed: u64,
) -> Vec<Evaluation> {
    let data_dir = default_data_dir().unwrap();
    let split = dataset.load(&data_dir, seed).unwrap();
    let mut model = Model::init(spec, seed).unwrap();
    let mut optimizer = Optimizer::new(&optimizer, model.params().len()).unwrap();
    let mut history = Vec::new();
    for epoch in 0..epochs {
        let epoch_seed = derive_seed(seed, "cairn.train.epoch", epoch);
        let stats = train_epoch(
            &mut model,
            &mut optimizer,
            &split.train,
            batch_size,
            epoch_seed,
            |_| {},
        )
        .unwrap();
        let evaluation = model.evaluate(&split.test, 256).unwrap();
        eprintln!(
            "{dataset} epoch {}: train loss {:.4}, test loss {:.4}, test accuracy {:.4}",
            epoch + 1,
            stats.mean_loss,
            evaluation.loss,
            evaluation.accuracy
        );
        history.push(evaluation);
    }
    history
}

fn sgd(lr: f32) -> OptimizerSpec {
    OptimizerSpec::Sgd {
        lr,
        momentum: 0.9,
        weight_decay: 0.0,
    }
}

#[test]
fn mlp_reaches_95_percent_on_digits() {
    let spec = ModelSpec::Mlp {
        inputs: 64,
        hidden: vec![256, 128],
        classes: 10,
    };
    let history = train(BuiltinDataset::Digits, spec, sgd(0.1), 20, 32, 7);
    let last = history.last().unwrap();
    assert!(last.accuracy >= 0.95, "test accuracy {}", last.accuracy);
}

#[test]
fn mlp_reaches_92_percent_on_mnist_5k() {
    let spec = ModelSpec::Mlp {
        inputs: 784,
        hidden: vec![256, 128],
        classes: 10,
    };
    let history = train(BuiltinDataset::Mnist5k, spec, sgd(0.1), 20, 64, 7);
    let last = history.last().unwrap();
    assert!(last.accuracy >= 0.92, "test accuracy {}", last.accuracy);
}

#[test]
#[ignore = "needs `apt-get install dataset-fashion-mnist` and minutes of CPU"]
fn cnn_reaches_89_percent_on_fashion_mnist() {
    let spec = ModelSpec::Cnn {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
        dropout: 0.25,
    };
    let history = train(
        BuiltinDataset::FashionMnist,
        spec,
        OptimizerSpec::adam(0.001),
        5,
        64,
        7,
    );
    let last = history.last().unwrap();
    assert!(last.accuracy >= 0.89, "test accuracy {}", last.accuracy);
}
