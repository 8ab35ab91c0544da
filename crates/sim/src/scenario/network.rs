//! Network conditions of a scenario: link latency, jitter and loss, partitions at given simulated
//! times, and nodes that crash and restart.

use serde::{Deserialize, Serialize};

/// Default one-way latency of every link (simulated milliseconds).
pub const DEFAULT_LATENCY_MS: u64 = 50;
/// Default jitter added to the latency (simulated milliseconds, standard deviation).
pub const DEFAULT_JITTER_MS: u64 = 10;

/// The `[network]` table: how every link behaves, and the events that cut links or stop nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConditions {
    /// One-way delay of every message (simulated milliseconds).
    pub latency_ms: u64,
    /// Jitter of that delay (simulated milliseconds).
    pub jitter_ms: u64,
    /// Probability in [0, 1] that a message arrives (1 = no loss).
    pub success_rate: f64,
    /// Partitions: while one holds, nodes in different groups cannot reach each other.
    pub partitions: Vec<PartitionEvent>,
    /// Crashes: the node stops at `at_ms` and, if `restart_ms` is set, restarts from its disk.
    pub crashes: Vec<CrashEvent>,
}

impl Default for NetworkConditions {
    fn default() -> Self {
        Self {
            latency_ms: DEFAULT_LATENCY_MS,
            jitter_ms: DEFAULT_JITTER_MS,
            success_rate: 1.0,
            partitions: Vec::new(),
            crashes: Vec::new(),
        }
    }
}

/// A `[[network.partitions]]` table: from `at_ms` until `heal_ms` the links between nodes of
/// different `groups` are cut. A node named in no group keeps all its links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionEvent {
    /// When the partition starts (simulated milliseconds from the start of the run).
    pub at_ms: u64,
    /// When it heals (after `at_ms`).
    pub heal_ms: u64,
    /// Two or more disjoint lists of node names (`v0`, `t3`, ...).
    pub groups: Vec<Vec<String>>,
}

impl PartitionEvent {
    /// The group holding `node`, if any.
    pub fn group_of(&self, node: &str) -> Option<usize> {
        self.groups
            .iter()
            .position(|group| group.iter().any(|name| name == node))
    }

    /// Whether the link between `a` and `b` is cut while this partition holds: both are named
    /// and in different groups.
    pub fn separates(&self, a: &str, b: &str) -> bool {
        matches!((self.group_of(a), self.group_of(b)), (Some(x), Some(y)) if x != y)
    }

    /// Whether the partition holds at simulated time `ms` (`at_ms <= ms < heal_ms`).
    pub fn active_at(&self, ms: u64) -> bool {
        self.at_ms <= ms && ms < self.heal_ms
    }
}

/// A `[[network.crashes]]` table: `node` stops at `at_ms`; with `restart_ms` it starts again then,
/// from what it had written to its disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashEvent {
    /// The node (`v2`, `t5`, ...).
    pub node: String,
    /// When it stops (simulated milliseconds).
    pub at_ms: u64,
    /// When it restarts (after `at_ms`); absent: it stays down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_ms: Option<u64>,
}

impl CrashEvent {
    /// Whether the node is down at simulated time `ms`.
    pub fn down_at(&self, ms: u64) -> bool {
        self.at_ms <= ms && self.restart_ms.is_none_or(|restart| ms < restart)
    }
}
