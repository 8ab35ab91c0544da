//! Seeded parameter initialization with PyTorch's default bounds.

use super::spec::ModelSpec;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Draws every tensor, in flat-vector order, uniformly from `[-b, b)` with `b = 1/√fan_in`
/// (`fan_in` = inputs of a dense layer, `in_channels·kh·kw` of a convolution). This is what
/// PyTorch's `kaiming_uniform_(a=√5)` gives for weights and its default bias bound.
pub(crate) fn kaiming_uniform(spec: &ModelSpec, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut params = Vec::with_capacity(spec.param_count());
    let tensors = spec.tensors();
    let mut fan_in = 1;
    for tensor in &tensors {
        // A weight's fan-in is every dimension but the first; its bias follows it and shares it.
        if tensor.shape.len() > 1 {
            fan_in = tensor.shape[1..].iter().product::<usize>();
        }
        let bound = 1.0f32 / (fan_in as f32).sqrt();
        for _ in 0..tensor.len() {
            let unit = (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32);
            params.push((unit * 2.0 - 1.0) * bound);
        }
    }
    params
}
