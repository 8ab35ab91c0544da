//! Byzantine-robust aggregation for Cairn: rules, pre-aggregation steps and attacks over flat
//! `f32` update vectors.
//!
//! Everything goes through [`aggregate`]: a [`Rule`], a chain of [`PreAggregation`] steps, the
//! [`Updates`] (row-major `n × d`) and a [`Context`] (previous aggregate, non-finite policy).
//! Results are bit-for-bit deterministic on any machine and rayon thread count: parallel work
//! splits independent outputs (coordinate blocks, rows, pairs) and every floating-point sum has a
//! fixed order. Formulas, requirements and memory use of every rule are in `docs/robust.md`.
//!
//! ```
//! use cairn_robust::{aggregate, Context, PreAggregation, Rule, Updates};
//! let data = [1.0, 0.0, 1.2, 0.1, 0.9, -0.1, 100.0, 100.0, 1.1, 0.0];
//! let updates = Updates::new(&data, 5, 2).unwrap();
//! let rule: Rule = "trimmed_mean:1".parse().unwrap();
//! let pre = PreAggregation::parse_chain("nnm:1", 0).unwrap();
//! let out = aggregate(&rule, &pre, &updates, &Context::default()).unwrap();
//! assert!(out[0] < 2.0 && out[1] < 2.0);
//! ```

#![warn(missing_docs)]

mod aggregate;
pub mod attack;
mod context;
mod coordinate;
pub mod distance;
mod error;
mod pipeline;
pub mod preaggregate;
mod rule;
mod simd;
mod syntax;
mod updates;

pub use aggregate::MDA_MAX_SUBSETS;
pub use context::{Context, NonFinitePolicy};
pub use error::RobustError;
pub use pipeline::{aggregate, aggregate_into};
pub use preaggregate::PreAggregation;
pub use rule::{
    GmInit, KrumVariant, Rule, MAX_ITERATIONS, MAX_PAIRWISE_UPDATES, MAX_SORTED_UPDATES,
};
pub use syntax::{DEFAULT_CC_ITERATIONS, DEFAULT_CC_TAU, DEFAULT_GM_ITERATIONS, DEFAULT_GM_NU};
pub use updates::Updates;
