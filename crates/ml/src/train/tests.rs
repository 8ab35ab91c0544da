//! Unit tests of seeds, hashing, epochs and local training.

use super::*;
use crate::model::ModelSpec;
use crate::optim::OptimizerSpec;

/// Two well-separated classes in 2-D.
fn separable(samples: usize) -> Dataset {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for i in 0..samples {
        let label = (i % 2) as u32;
        let jitter = (i % 7) as f32 / 70.0;
        let (a, b) = if label == 0 {
            (0.2 + jitter, 0.8)
        } else {
            (0.8 - jitter, 0.2)
        };
        features.extend([a, b]);
        labels.push(label);
    }
    Dataset::new(features, labels, 2, (1, 1, 2)).unwrap()
}

#[test]
fn weights_hash_is_blake3_of_little_endian_bytes_across_buffer_chunks() {
    let params: Vec<f32> = (0..3001).map(|i| i as f32 * 0.25 - 7.0).collect();
    let bytes: Vec<u8> = params.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(weights_hash(&params), *blake3::hash(&bytes).as_bytes());
    assert_ne!(weights_hash(&params), weights_hash(&params[1..]));
}

#[test]
fn shuffled_order_is_a_seeded_permutation() {
    let order = shuffled_order(100, 4);
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    assert_eq!(order, shuffled_order(100, 4));
    assert_ne!(order, shuffled_order(100, 5));
    assert_ne!(derive_seed(1, "a", 0), derive_seed(1, "b", 0));
}

#[test]
fn train_epoch_learns_a_separable_problem_and_reports_every_batch() {
    let data = separable(64);
    let mut model = Model::init(
        ModelSpec::Logistic {
            inputs: 2,
            classes: 2,
        },
        1,
    )
    .unwrap();
    let mut optimizer = Optimizer::new(&OptimizerSpec::sgd(0.5), model.params().len()).unwrap();
    let before = model.evaluate(&data, 16).unwrap();
    let mut seen = Vec::new();
    let mut last = None;
    for epoch in 0..20 {
        let stats = train_epoch(&mut model, &mut optimizer, &data, 10, epoch, |p| {
            seen.push(p)
        })
        .unwrap();
        assert_eq!((stats.samples, stats.batches), (64, 7));
        last = Some(stats);
    }
    assert_eq!(seen.len(), 140);
    assert_eq!(seen[6].samples, 4);
    let after = model.evaluate(&data, 16).unwrap();
    assert!(after.loss < before.loss / 2.0, "{before:?} -> {after:?}");
    assert_eq!(after.accuracy, 1.0);
    assert!(last.unwrap().mean_loss < before.loss);
}

#[test]
fn step_batches_cover_an_epoch_without_repeats_then_reshuffle() {
    let config = LocalTrainConfig {
        steps: 6,
        batch_size: 3,
        seed: 8,
        trace_every: 2,
    };
    let mut first_epoch: Vec<usize> = (0..3)
        .flat_map(|s| step_batch(10, &config, s).unwrap())
        .collect();
    first_epoch.sort_unstable();
    first_epoch.dedup();
    assert_eq!(first_epoch.len(), 9);
    assert_ne!(
        step_batch(10, &config, 0).unwrap(),
        step_batch(10, &config, 3).unwrap()
    );
    assert_eq!(step_batch(2, &config, 5).unwrap().len(), 2);
    assert!(matches!(
        step_batch(0, &config, 0),
        Err(TrainError::InvalidConfig(_))
    ));
    let no_batch = LocalTrainConfig {
        batch_size: 0,
        ..config
    };
    assert!(matches!(
        step_batch(10, &no_batch, 0),
        Err(TrainError::InvalidConfig(_))
    ));
}

#[test]
fn local_train_traces_every_k_steps_and_rejects_bad_settings() {
    let data = separable(20);
    let model = Model::init(
        ModelSpec::Logistic {
            inputs: 2,
            classes: 2,
        },
        1,
    )
    .unwrap();
    let spec = OptimizerSpec::Sgd {
        lr: 0.1,
        momentum: 0.5,
        weight_decay: 0.0,
    };
    let mut optimizer = Optimizer::new(&spec, model.params().len()).unwrap();
    let config = LocalTrainConfig {
        steps: 7,
        batch_size: 4,
        seed: 3,
        trace_every: 3,
    };
    let outcome = local_train(&model, &mut optimizer, &data, &config).unwrap();
    assert_eq!(outcome.trace.len(), 2);
    assert_eq!(optimizer.steps(), 7);
    assert!(outcome.mean_loss.is_finite());
    assert_ne!(outcome.params, model.params());

    let mut fresh = Optimizer::new(&spec, model.params().len()).unwrap();
    for bad in [
        LocalTrainConfig { steps: 0, ..config },
        LocalTrainConfig {
            trace_every: 0,
            ..config
        },
        LocalTrainConfig {
            batch_size: 0,
            ..config
        },
    ] {
        assert!(matches!(
            local_train(&model, &mut fresh, &data, &bad),
            Err(TrainError::InvalidConfig(_))
        ));
    }
    let wrong = Model::init(
        ModelSpec::Logistic {
            inputs: 3,
            classes: 2,
        },
        1,
    )
    .unwrap();
    assert!(matches!(
        local_train(&wrong, &mut fresh, &data, &config),
        Err(TrainError::DatasetMismatch { .. })
    ));
    let mut other = Optimizer::new(&spec, 99).unwrap();
    assert!(matches!(
        local_train(&model, &mut other, &data, &config),
        Err(TrainError::Optimizer(_))
    ));
}

#[test]
fn divergence_is_reported_instead_of_returning_non_finite_weights() {
    let data = separable(8);
    let model = Model::init(
        ModelSpec::Logistic {
            inputs: 2,
            classes: 2,
        },
        1,
    )
    .unwrap();
    // A huge weight decay multiplies every weight by about -1e30 per step.
    let spec = OptimizerSpec::Sgd {
        lr: 1.0,
        momentum: 0.0,
        weight_decay: 1e30,
    };
    let mut optimizer = Optimizer::new(&spec, model.params().len()).unwrap();
    let config = LocalTrainConfig {
        steps: 50,
        batch_size: 4,
        seed: 1,
        trace_every: 1,
    };
    let result = local_train(&model, &mut optimizer, &data, &config);
    assert!(
        matches!(result, Err(TrainError::Diverged { .. })),
        "{result:?}"
    );
}
