//! Byzantine-robust aggregation for Cairn (being written).
