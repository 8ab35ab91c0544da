//! Cairn scenarios: a whole network of trainers and validators, honest and Byzantine, run on one
//! machine on the deterministic runtime, and the report a researcher can publish.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`adversary`] | trainers and validators that cheat, as conducts wrapping the honest agent |
//! | [`scenario`] | the TOML scenario: data, model, rule, node groups and behaviours, network |
//! | [`result`] | what a run produced: per round and per node figures ([`RunResult`]) |
//! | [`report`] | the report folder: `results.json`, `rounds.csv`, plots, the summary table |
//! | [`progress`] | live feedback while rounds finish ([`Progress`], [`ProgressBarReporter`]) |
//! | [`runner`] | runs a scenario on the real node code and fills the [`RunResult`] |
//! | [`seeds`] | one scenario at many seeds: a mean and 95% interval per node group |
//! | [`sweep`] | a grid of parameter values, each at many seeds: profit surfaces and frontiers |
//! | [`robustness`] | partitions × defences × attacks × seeds of federated training: the robustness benchmark |
//! | [`invariants`] | what must hold at the end of every run |
#![warn(missing_docs)]

pub mod adversary;
pub mod invariants;
mod plots;
pub mod progress;
pub mod report;
pub mod result;
pub mod robustness;
pub mod scenario;
pub mod seeds;
pub mod sweep;
mod sweep_plots;
mod tally;

pub use progress::{NoProgress, Progress, ProgressBarReporter};
pub use report::{summary_table, write_report, ReportError, ReportFiles};
pub use result::{NodeRecord, NodeRole, RoundRecord, RunResult};
pub use scenario::{Scenario, ScenarioError, ScenarioOverrides};
pub use sweep_plots::{render_sweep, sweep_plot_files};
pub mod runner;
