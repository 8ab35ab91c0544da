//! Bit-exact machine learning for Cairn: kernels, models, optimizers, datasets.
//!
//! Cairn checks a trainer's claimed work by re-executing it, so every function here gives the same
//! bits for the same inputs on any machine and any thread count. The rules that make that true:
//!
//! - every floating-point sum has a fixed order (explicit partial-sum lanes combined in a fixed
//!   tree), and no operation is fused (Rust never contracts `a * b + c` into an FMA);
//! - parallelism (rayon, within whatever thread pool the caller installs) splits independent
//!   outputs, never one sum;
//! - transcendental functions come from the pure-Rust `libm` crate, not the platform's C library;
//! - all randomness is a seeded ChaCha stream.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod data;
pub mod kernels;
pub mod model;
pub mod npy;
pub mod optim;
pub mod train;
