//! One module per `cairn` subcommand: its arguments (clap derive) and its `run`.

pub mod aggregate;
pub mod attack;
pub mod economics;
pub mod ledger;
pub mod robustness;
pub mod simulate;
pub mod train;
