//! Cairn ledger (being written).
