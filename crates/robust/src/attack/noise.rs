//! Attacks that send noise: Gaussian vectors and non-finite values.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use super::normal::standard_normal;

/// The non-finite value sent by [`super::Attack::NonFinite`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFiniteValue {
    /// Not a number.
    Nan,
    /// Positive infinity (ByzFL's `Inf` attack).
    Inf,
    /// Negative infinity.
    NegInf,
}

impl NonFiniteValue {
    /// The value as an `f32`.
    pub fn as_f32(self) -> f32 {
        match self {
            NonFiniteValue::Nan => f32::NAN,
            NonFiniteValue::Inf => f32::INFINITY,
            NonFiniteValue::NegInf => f32::NEG_INFINITY,
        }
    }
}

/// `f` independent vectors of dimension `d` with coordinates `mu + sigma · N(0, 1)`, row-major,
/// from a ChaCha20 stream seeded with `seed`.
pub(crate) fn gaussian(f: usize, d: usize, mu: f32, sigma: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (mu, sigma) = (f64::from(mu), f64::from(sigma));
    (0..f * d)
        .map(|_| (mu + sigma * standard_normal(&mut rng)) as f32)
        .collect()
}
