//! Typed errors for every way an attack request can be wrong.

use crate::RobustError;

/// Why an attack could not be crafted (or parsed).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AttackError {
    /// `f >= n`: the Byzantine updates would be all of them.
    #[error("f = {f} Byzantine updates out of n = {n}: f must be < n")]
    TooManyByzantine {
        /// Total number of updates.
        n: usize,
        /// Byzantine updates requested.
        f: usize,
    },
    /// No honest update was given.
    #[error("no honest updates given: attacks are computed from at least one honest update")]
    NoHonest,
    /// The honest buffer is not a whole number of rows of dimension `d` (or `d == 0`).
    #[error("{len} honest values do not form rows of dimension d = {d} (d must be > 0 and divide the length)")]
    Dimension {
        /// Values given.
        len: usize,
        /// Dimension given.
        d: usize,
    },
    /// More honest rows than `n − f`.
    #[error("{rows} honest updates but n - f = {n} - {f} leaves room for at most {max}", max = n - f)]
    TooManyHonest {
        /// Honest rows given.
        rows: usize,
        /// Total number of updates.
        n: usize,
        /// Byzantine updates requested.
        f: usize,
    },
    /// An honest update holds NaN or an infinity.
    #[error("honest update {row} has a non-finite value at coordinate {column}")]
    NonFiniteHonest {
        /// Row of the bad value.
        row: usize,
        /// Column of the bad value.
        column: usize,
    },
    /// A parameter is out of its domain.
    #[error("invalid parameter for {attack}: {reason}")]
    InvalidParameter {
        /// The attack concerned.
        attack: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// [`crate::attack::Attack::Stale`] needs [`crate::attack::Setting::stale`].
    #[error("the stale attack needs a stale update (Setting::stale, or --stale FILE on the command line)")]
    MissingStale,
    /// The stale update does not have dimension `d`.
    #[error("the stale update has dimension {actual} but the honest updates have {expected}")]
    StaleDimension {
        /// Dimension of the honest updates.
        expected: usize,
        /// Dimension of the stale update.
        actual: usize,
    },
    /// A label is not below the number of classes.
    #[error("label {label} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// The label.
        label: u32,
        /// Number of classes.
        classes: u32,
    },
    /// The rule under attack refused the honest and Byzantine updates combined.
    #[error("the rule under attack refused the combined updates: {0}")]
    Aggregate(#[from] RobustError),
    /// An attack specification could not be parsed.
    #[error("cannot parse attack `{input}`: {reason}")]
    Parse {
        /// The text given.
        input: String,
        /// What is wrong and the accepted syntax.
        reason: String,
    },
    /// The request would need more memory than an attack is allowed to use.
    #[error("{what} = {size} exceeds the limit of {limit}: use fewer or smaller updates")]
    TooLarge {
        /// What grew too large (e.g. "f x d output values").
        what: &'static str,
        /// The size asked for (saturating at `usize::MAX`).
        size: usize,
        /// The largest size allowed.
        limit: usize,
    },
}
