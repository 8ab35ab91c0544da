//! Finite-difference checks of every layer's backward pass and of whole models' gradients.

// Index loops read best when comparing several parallel tensors coordinate by coordinate.
#![allow(clippy::needless_range_loop)]

use cairn_ml::kernels::{
    gemm, max_pool2_backward, max_pool2_forward, relu_backward, relu_forward, Layout,
};
use cairn_ml::model::{Model, ModelSpec};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

fn uniform(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| ((rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * scale)
        .collect()
}

/// Central difference of `f` at `x[i]` in f64.
fn central(f: &dyn Fn(&[f64]) -> f64, x: &[f64], i: usize, h: f64) -> f64 {
    let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
    plus[i] += h;
    minus[i] -= h;
    (f(&plus) - f(&minus)) / (2.0 * h)
}

fn to64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

#[test]
fn dense_layer_gradients_match_central_differences() {
    // loss = Σ probe ⊙ (x · Wᵀ + b), so d loss / d y = probe.
    let (batch, inputs, outputs) = (3, 5, 4);
    let x = uniform(batch * inputs, 1, 1.0);
    let w = uniform(outputs * inputs, 2, 1.0);
    let probe = uniform(batch * outputs, 3, 1.0);
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        let mut total = 0.0;
        for n in 0..batch {
            for o in 0..outputs {
                let mut y = b[o];
                for i in 0..inputs {
                    y += x[n * inputs + i] * w[o * inputs + i];
                }
                total += y * f64::from(probe[n * outputs + o]);
            }
        }
        total
    };
    let mut dw = vec![0.0; w.len()];
    let mut dx = vec![0.0; x.len()];
    gemm(
        outputs,
        inputs,
        batch,
        &probe,
        Layout::Transposed,
        &x,
        Layout::Normal,
        &mut dw,
    );
    gemm(
        batch,
        inputs,
        outputs,
        &probe,
        Layout::Normal,
        &w,
        Layout::Normal,
        &mut dx,
    );
    let mut db = vec![0.0; outputs];
    cairn_ml::kernels::column_sums(&probe, &mut db);
    let (x64, w64, b64) = (to64(&x), to64(&w), vec![0.1; outputs]);
    for i in 0..w.len() {
        let numeric = central(&|w: &[f64]| loss(&x64, w, &b64), &w64, i, 1e-4);
        assert!(
            (numeric - f64::from(dw[i])).abs() < 1e-4,
            "dW[{i}]: {numeric} vs {}",
            dw[i]
        );
    }
    for i in 0..x.len() {
        let numeric = central(&|x: &[f64]| loss(x, &w64, &b64), &x64, i, 1e-4);
        assert!(
            (numeric - f64::from(dx[i])).abs() < 1e-4,
            "dx[{i}]: {numeric} vs {}",
            dx[i]
        );
    }
    for i in 0..outputs {
        let numeric = central(&|b: &[f64]| loss(&x64, &w64, b), &b64, i, 1e-4);
        assert!(
            (numeric - f64::from(db[i])).abs() < 1e-4,
            "db[{i}]: {numeric} vs {}",
            db[i]
        );
    }
}

#[test]
fn relu_and_max_pool_gradients_match_central_differences() {
    // Values spaced apart so no difference step crosses a kink or changes a window's maximum.
    let (planes, height, width) = (2, 5, 4);
    let len = planes * height * width;
    let x: Vec<f32> = (0..len)
        .map(|i| ((i * 37) % len) as f32 * 0.1 - 1.95)
        .collect();
    let probe = uniform(len, 4, 1.0);
    let pooled = planes * (height / 2) * (width / 2);
    let pool_probe = uniform(pooled, 5, 1.0);
    let relu_loss = |x: &[f64]| -> f64 {
        x.iter()
            .zip(&probe)
            .map(|(v, p)| v.max(0.0) * f64::from(*p))
            .sum()
    };
    let pool_loss = |x: &[f64]| -> f64 {
        let mut total = 0.0;
        for p in 0..planes {
            for r in 0..height / 2 {
                for c in 0..width / 2 {
                    let at =
                        |dr: usize, dc: usize| x[(p * height + 2 * r + dr) * width + 2 * c + dc];
                    let m = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                    total += m * f64::from(pool_probe[(p * (height / 2) + r) * (width / 2) + c]);
                }
            }
        }
        total
    };
    let mut y = vec![0.0; len];
    relu_forward(&x, &mut y);
    let mut dx = vec![0.0; len];
    relu_backward(&x, &probe, &mut dx);
    let mut pooled_y = vec![0.0; pooled];
    let mut argmax = vec![0u32; pooled];
    max_pool2_forward(&x, planes, height, width, &mut pooled_y, &mut argmax);
    let mut pool_dx = vec![0.0; len];
    max_pool2_backward(&pool_probe, &argmax, planes, height, width, &mut pool_dx);
    let x64 = to64(&x);
    for i in 0..len {
        let numeric = central(&relu_loss, &x64, i, 1e-3);
        assert!(
            (numeric - f64::from(dx[i])).abs() < 1e-6,
            "relu dx[{i}]: {numeric} vs {}",
            dx[i]
        );
        let numeric = central(&pool_loss, &x64, i, 1e-3);
        assert!(
            (numeric - f64::from(pool_dx[i])).abs() < 1e-6,
            "pool dx[{i}]: {numeric} vs {}",
            pool_dx[i]
        );
    }
}

/// Checks `count` evenly spread coordinates of every tensor of the model's gradient against
/// central differences of the f32 loss (same dropout seed on both sides, so the mask is fixed).
fn check_model_gradient(spec: ModelSpec, batch: usize, seed: u64) {
    let model = Model::init(spec.clone(), seed).unwrap();
    let dim = spec.input_dim();
    let x = uniform(batch * dim, seed + 1, 1.0);
    let labels: Vec<u32> = (0..batch).map(|i| (i % spec.classes()) as u32).collect();
    let dropout_seed = 99;
    let mut grad = vec![0.0; model.params().len()];
    model
        .loss_and_gradient(&x, &labels, batch, dropout_seed, &mut grad)
        .unwrap();
    let loss_at = |params: Vec<f32>| -> f64 {
        let m = Model::new(spec.clone(), params).unwrap();
        let mut scratch = vec![0.0; m.params().len()];
        f64::from(
            m.loss_and_gradient(&x, &labels, batch, dropout_seed, &mut scratch)
                .unwrap(),
        )
    };
    let h = 1e-3f32;
    for tensor in spec.tensors() {
        let len = tensor.len();
        for k in 0..len.min(6) {
            let i = tensor.offset + k * len / len.min(6);
            let (mut plus, mut minus) = (model.params().to_vec(), model.params().to_vec());
            plus[i] += h;
            minus[i] -= h;
            let numeric = (loss_at(plus) - loss_at(minus)) / f64::from(2.0 * h);
            let analytic = f64::from(grad[i]);
            let tolerance = 2e-3 + 0.05 * analytic.abs();
            assert!(
                (numeric - analytic).abs() < tolerance,
                "{} [{k}]: numeric {numeric} vs analytic {analytic}",
                tensor.name
            );
        }
    }
}

#[test]
fn logistic_gradient_matches_central_differences() {
    check_model_gradient(
        ModelSpec::Logistic {
            inputs: 7,
            classes: 3,
        },
        5,
        11,
    );
}

#[test]
fn mlp_gradient_matches_central_differences() {
    check_model_gradient(
        ModelSpec::Mlp {
            inputs: 9,
            hidden: vec![8, 6],
            classes: 4,
        },
        6,
        12,
    );
}

#[test]
fn cnn_gradient_matches_central_differences_with_dropout_active() {
    check_model_gradient(
        ModelSpec::Cnn {
            channels: 2,
            height: 8,
            width: 6,
            classes: 3,
            dropout: 0.3,
        },
        3,
        13,
    );
}
