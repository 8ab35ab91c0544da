//! Unit tests of model specs and layouts, construction, input checking, the forward pass and
//! evaluation.

use super::*;
use crate::model::spec::MAX_DIM;

fn dataset(samples: usize, dim: usize, classes: usize) -> Dataset {
    let features = (0..samples * dim)
        .map(|i| ((i * 13) % 17) as f32 / 17.0)
        .collect();
    let labels = (0..samples).map(|i| (i % classes) as u32).collect();
    Dataset::new(features, labels, classes, (1, 1, dim)).unwrap()
}

#[test]
fn new_checks_length_and_finiteness() {
    let spec = ModelSpec::Logistic {
        inputs: 2,
        classes: 2,
    };
    assert_eq!(
        Model::new(spec.clone(), vec![0.0; 5]).unwrap_err(),
        ModelError::ParamCount {
            expected: 6,
            got: 5
        }
    );
    let mut params = vec![0.0; 6];
    params[4] = f32::INFINITY;
    assert!(matches!(
        Model::new(spec.clone(), params),
        Err(ModelError::NonFiniteParam { index: 4, .. })
    ));
    let model = Model::new(spec, vec![1.0, 0.0, 0.0, 1.0, 0.5, -0.5]).unwrap();
    assert_eq!(model.params()[4], 0.5);
    assert_eq!(model.clone().into_params().len(), 6);
}

#[test]
fn init_is_seeded_and_within_pytorch_bounds() {
    let spec = ModelSpec::Mlp {
        inputs: 16,
        hidden: vec![9],
        classes: 3,
    };
    let a = Model::init(spec.clone(), 5).unwrap();
    assert_eq!(a, Model::init(spec.clone(), 5).unwrap());
    assert_ne!(a.params(), Model::init(spec.clone(), 6).unwrap().params());
    for tensor in spec.tensors() {
        let fan_in = if tensor.name.starts_with("fc1") {
            16.0f32
        } else {
            9.0
        };
        let bound = 1.0 / fan_in.sqrt();
        let values = &a.params()[tensor.offset..tensor.offset + tensor.len()];
        assert!(values.iter().all(|v| v.abs() <= bound), "{}", tensor.name);
    }
}

#[test]
fn logistic_forward_is_x_times_weight_transpose_plus_bias() {
    // fc.weight = [[1, 2], [3, 4], [5, 6]] (3 classes x 2 inputs), fc.bias = [0.5, 0, -1].
    let params = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.5, 0.0, -1.0];
    let model = Model::new(
        ModelSpec::Logistic {
            inputs: 2,
            classes: 3,
        },
        params,
    )
    .unwrap();
    let logits = model.forward(&[1.0, -1.0, 0.0, 2.0], 2).unwrap();
    assert_eq!(logits, vec![-0.5, -1.0, -2.0, 4.5, 8.0, 11.0]);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let model = Model::init(
        ModelSpec::Logistic {
            inputs: 3,
            classes: 2,
        },
        1,
    )
    .unwrap();
    let mut grad = vec![0.0; model.params().len()];
    assert_eq!(
        model.forward(&[0.0; 3], 0).unwrap_err(),
        ModelError::EmptyBatch
    );
    assert!(matches!(
        model.forward(&[0.0; 5], 2),
        Err(ModelError::InputShape { expected: 6, .. })
    ));
    assert!(matches!(
        model.loss_and_gradient(&[0.0; 3], &[2], 1, 0, &mut grad),
        Err(ModelError::LabelOutOfRange { label: 2, .. })
    ));
    assert!(matches!(
        model.loss_and_gradient(&[0.0; 3], &[0, 1], 1, 0, &mut grad),
        Err(ModelError::LabelCount { .. })
    ));
    assert!(matches!(
        model.loss_and_gradient(&[0.0; 3], &[0], 1, 0, &mut grad[1..]),
        Err(ModelError::GradientLength { .. })
    ));
    assert!(matches!(
        model.evaluate(&dataset(4, 5, 2), 2),
        Err(ModelError::DatasetMismatch { .. })
    ));
    assert!(matches!(
        model.evaluate(&dataset(4, 3, 2), 0),
        Err(ModelError::NothingToEvaluate { .. })
    ));
}

#[test]
fn evaluate_does_not_depend_on_batch_size_and_zero_model_has_chance_loss() {
    let data = dataset(10, 4, 3);
    let model = Model::init(
        ModelSpec::Mlp {
            inputs: 4,
            hidden: vec![5],
            classes: 3,
        },
        2,
    )
    .unwrap();
    let whole = model.evaluate(&data, 10).unwrap();
    assert_eq!(whole, model.evaluate(&data, 3).unwrap());
    assert!((0.0..=1.0).contains(&whole.accuracy));
    let zero = Model::new(model.spec().clone(), vec![0.0; model.params().len()]).unwrap();
    let eval = zero.evaluate(&data, 4).unwrap();
    assert!((eval.loss - 3.0f32.ln()).abs() < 1e-6);
    // All logits tie, so class 0 is predicted: 4 of the 10 labels are 0.
    assert!((eval.accuracy - 0.4).abs() < 1e-6);
}

#[test]
fn eval_mode_skips_dropout_and_training_mode_applies_the_seeded_mask() {
    let spec = ModelSpec::Cnn {
        channels: 1,
        height: 4,
        width: 4,
        classes: 2,
        dropout: 0.5,
    };
    let model = Model::init(spec, 3).unwrap();
    let x: Vec<f32> = (0..32).map(|i| i as f32 / 32.0).collect();
    assert_eq!(model.forward(&x, 2).unwrap(), model.forward(&x, 2).unwrap());
    let mut g1 = vec![0.0; model.params().len()];
    let mut g2 = g1.clone();
    let mut g3 = g1.clone();
    let l1 = model
        .loss_and_gradient(&x, &[0, 1], 2, 10, &mut g1)
        .unwrap();
    let l2 = model
        .loss_and_gradient(&x, &[0, 1], 2, 10, &mut g2)
        .unwrap();
    model
        .loss_and_gradient(&x, &[0, 1], 2, 11, &mut g3)
        .unwrap();
    assert_eq!(l1.to_bits(), l2.to_bits());
    assert_eq!(g1, g2);
    assert_ne!(g1, g3);
}

#[test]
fn cnn_tensors_follow_pytorch_names_shapes_and_order() {
    let spec = ModelSpec::Cnn {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
        dropout: 0.5,
    };
    spec.validate().unwrap();
    let tensors = spec.tensors();
    let names: Vec<_> = tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias"
        ]
    );
    assert_eq!(tensors[2].shape, vec![64, 32, 3, 3]);
    assert_eq!(tensors[4].shape, vec![128, 64 * 7 * 7]);
    let mut offset = 0;
    for t in &tensors {
        assert_eq!(t.offset, offset);
        offset += t.len();
    }
    assert_eq!(spec.param_count(), offset);
    assert_eq!(
        offset,
        32 * 9 + 32 + 64 * 32 * 9 + 64 + 128 * 3136 + 128 + 10 * 128 + 10
    );
}

#[test]
fn mlp_layout_and_serde_tag() {
    let spec = ModelSpec::Mlp {
        inputs: 4,
        hidden: vec![3, 2],
        classes: 5,
    };
    assert_eq!(spec.param_count(), (4 * 3 + 3) + (3 * 2 + 2) + (2 * 5 + 5));
    assert_eq!(spec.tensors()[4].name, "fc3.weight");
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(
        json,
        r#"{"kind":"mlp","inputs":4,"hidden":[3,2],"classes":5}"#
    );
    assert_eq!(serde_json::from_str::<ModelSpec>(&json).unwrap(), spec);
}

#[test]
fn validate_rejects_degenerate_and_huge_specs() {
    assert!(ModelSpec::Logistic {
        inputs: 0,
        classes: 2
    }
    .validate()
    .is_err());
    assert!(ModelSpec::Mlp {
        inputs: 3,
        hidden: vec![0],
        classes: 2
    }
    .validate()
    .is_err());
    assert!(ModelSpec::Mlp {
        inputs: MAX_DIM,
        hidden: vec![MAX_DIM],
        classes: 2
    }
    .validate()
    .is_err());
    assert!(ModelSpec::Cnn {
        channels: 1,
        height: 3,
        width: 8,
        classes: 2,
        dropout: 0.0
    }
    .validate()
    .is_err());
    assert!(ModelSpec::Cnn {
        channels: 1,
        height: 8,
        width: 8,
        classes: 2,
        dropout: 1.0
    }
    .validate()
    .is_err());
    assert!(ModelSpec::Cnn {
        channels: 1,
        height: 8,
        width: 8,
        classes: 2,
        dropout: f32::NAN
    }
    .validate()
    .is_err());
    assert!(ModelSpec::Logistic {
        inputs: usize::MAX,
        classes: usize::MAX
    }
    .validate()
    .is_err());
}
