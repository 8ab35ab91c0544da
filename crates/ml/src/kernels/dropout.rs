//! Inverted dropout with a mask drawn from a seeded ChaCha stream.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Largest drop probability accepted (a probability of 1 would divide by zero).
pub const DROPOUT_P_MAX: f32 = 0.99;

/// Fills `mask` with `1 / (1 - p)` for kept units and `0` for dropped ones.
///
/// Unit `i` is dropped when the `i`-th `u32` of the ChaCha20 stream `stream` seeded with
/// `seed` (via `seed_from_u64`) is below `p · 2³²`; multiplying activations and their gradients
/// by the mask is the forward and backward pass of dropout.
pub fn dropout_mask(seed: u64, stream: u64, p: f32, mask: &mut [f32]) {
    assert!(
        (0.0..=DROPOUT_P_MAX).contains(&p),
        "dropout_mask: probability {p} out of range"
    );
    let threshold = (f64::from(p) * 4_294_967_296.0) as u64;
    let keep_scale = 1.0f32 / (1.0f32 - p);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    for value in mask.iter_mut() {
        *value = if u64::from(rng.next_u32()) < threshold {
            0.0
        } else {
            keep_scale
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_is_seeded_scaled_and_drops_about_p() {
        let mut a = vec![0.0; 10_000];
        let mut b = vec![0.0; 10_000];
        dropout_mask(42, 3, 0.25, &mut a);
        dropout_mask(42, 3, 0.25, &mut b);
        assert_eq!(a, b);
        dropout_mask(42, 4, 0.25, &mut b);
        assert_ne!(a, b);
        let dropped = a.iter().filter(|&&v| v == 0.0).count();
        assert!((2300..2700).contains(&dropped), "dropped {dropped}");
        assert!(a.iter().all(|&v| v == 0.0 || v == 1.0 / 0.75));
        dropout_mask(1, 0, 0.0, &mut a);
        assert!(a.iter().all(|&v| v == 1.0));
    }
}
