//! One module per `cairn` subcommand: its arguments (clap derive) and its `run`.

pub mod aggregate;
pub mod attack;
pub mod devnet;
pub mod economics;
pub mod genesis;
pub mod keys;
pub mod ledger;
pub mod model;
pub mod node;
pub mod replay;
pub mod robustness;
pub mod simulate;
pub mod task;
pub mod train;
pub mod validator;
