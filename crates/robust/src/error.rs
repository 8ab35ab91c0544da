//! Typed errors for every way an aggregation request can be wrong.

/// Why an aggregation (or the parsing of a rule) was refused.
///
/// Every variant names what was wrong and, where it helps, what to do about it. No function of
/// this crate panics on bad input: it returns one of these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RobustError {
    /// There were no updates, or the updates have dimension zero.
    #[error("nothing to aggregate: got {n} updates of dimension {d}; supply at least one non-empty update")]
    Empty {
        /// Number of updates given.
        n: usize,
        /// Dimension given.
        d: usize,
    },
    /// The flat buffer does not hold `n * d` values.
    #[error("update buffer holds {actual} values but n * d = {n} * {d} = {expected}")]
    LengthMismatch {
        /// Number of updates declared.
        n: usize,
        /// Dimension declared.
        d: usize,
        /// `n * d`.
        expected: usize,
        /// Length of the buffer.
        actual: usize,
    },
    /// `n * d` does not fit in memory addresses.
    #[error("n * d overflows: {n} updates of dimension {d}")]
    TooLarge {
        /// Number of updates declared.
        n: usize,
        /// Dimension declared.
        d: usize,
    },
    /// An input value is NaN or infinite and the policy is [`crate::NonFinitePolicy::Reject`].
    #[error("update {row} has a non-finite value at coordinate {column}; reject the sender or use NonFinitePolicy::Drop")]
    NonFinite {
        /// Index of the offending update.
        row: usize,
        /// Coordinate of the first non-finite value in it.
        column: usize,
    },
    /// Too few updates for the rule's resilience requirement (e.g. Bulyan needs n >= 4f + 3).
    #[error("{rule} needs at least {required} updates ({requirement}) but got {n}; lower f or collect more updates")]
    NotEnoughUpdates {
        /// Rule or pre-aggregation that refused.
        rule: &'static str,
        /// Updates available (after dropping non-finite rows and pre-aggregation).
        n: usize,
        /// Minimum number of updates.
        required: usize,
        /// The requirement as a formula, e.g. `n >= 4f + 3`.
        requirement: &'static str,
    },
    /// A parameter is out of its domain (negative threshold, zero iterations, bad index...).
    #[error("invalid parameter for {rule}: {reason}")]
    InvalidParameter {
        /// Rule or pre-aggregation concerned.
        rule: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// A side input (weights, previous aggregate) has the wrong length.
    #[error("{what} has length {actual} but {expected} was expected")]
    SideInputLength {
        /// Which input: `weights` or `previous aggregate`.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// A side input (weights, previous aggregate) contains NaN or infinity.
    #[error("{what} contains a non-finite value at index {index}")]
    SideInputNonFinite {
        /// Which input: `weights` or `previous aggregate`.
        what: &'static str,
        /// Index of the first bad value.
        index: usize,
    },
    /// Minimum-diameter averaging would have to search more subsets than its bound allows.
    #[error("mda would search C({n}, {f}) subsets, over the limit of {limit}; use a smaller n or f, or another rule")]
    TooManySubsets {
        /// Number of updates.
        n: usize,
        /// Number of updates left out of each subset.
        f: usize,
        /// Largest number of subsets the search accepts.
        limit: u64,
    },
    /// More updates than the rule or pre-aggregation step can hold in bounded memory (an `n × n`
    /// distance matrix, or per-thread sort buffers that grow with `n`).
    #[error("{rule} accepts at most {limit} updates but got {n}; aggregate in smaller groups (e.g. `--pre bucketing`) or use a rule without that bound (mean, geometric_median, centered_clipping)")]
    TooManyUpdates {
        /// Updates that reached the rule or step.
        n: usize,
        /// Largest number of updates it accepts.
        limit: usize,
        /// Rule or pre-aggregation step that refused.
        rule: &'static str,
    },
    /// A rule cannot follow a pre-aggregation step in the chain.
    #[error("{rule} cannot follow the {step} pre-aggregation: {reason}")]
    IncompatibleChain {
        /// The rule concerned.
        rule: &'static str,
        /// The step it cannot follow.
        step: &'static str,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// The rule produced a non-finite value (only possible when finite inputs overflow f32).
    #[error("{rule} produced a non-finite value at coordinate {column}: the inputs overflow f32")]
    NonFiniteOutput {
        /// Rule concerned.
        rule: &'static str,
        /// Coordinate of the first bad output.
        column: usize,
    },
    /// A rule or pre-aggregation specification string could not be parsed.
    #[error("cannot parse {what} `{input}`: {reason}")]
    Parse {
        /// `rule` or `pre-aggregation`.
        what: &'static str,
        /// The text given.
        input: String,
        /// What is wrong and the accepted syntax.
        reason: String,
    },
}
