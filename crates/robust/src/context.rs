//! What an aggregation may know besides the updates: the previous aggregate and the policy for
//! non-finite inputs.

use serde::{Deserialize, Serialize};

/// What to do with updates that contain NaN or an infinity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// Refuse the whole aggregation with [`crate::RobustError::NonFinite`] naming the first bad
    /// update. The default: a validator wants to know, and to mark the sender.
    #[default]
    Reject,
    /// Remove every update holding a non-finite value, then aggregate the rest. The rule's
    /// requirement (e.g. `n >= 2f + 3` for Krum) is checked again on the updates that remain, and
    /// `weighted_mean` drops the matching weights.
    Drop,
}

/// Side information for one aggregation. Rules keep no hidden state between calls: anything
/// carried from round to round comes in here.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    /// The previous round's aggregate, of dimension `d`. Centered clipping starts from it; when
    /// absent it starts from the zero vector.
    pub previous: Option<&'a [f32]>,
    /// Treatment of updates that contain NaN or infinity.
    pub non_finite: NonFinitePolicy,
}
