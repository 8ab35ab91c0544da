//! The report folder a run leaves behind, and the summary printed after it.
//!
//! | file | contents |
//! | --- | --- |
//! | `results.json` | the whole [`RunResult`]: scenario, final figures, rounds, nodes |
//! | `scenario.toml` | the scenario with every default filled in (`cairn simulate --scenario` it to rerun) |
//! | `rounds.csv` | one row per round: accuracy, loss, latency, rewards, slashes, audits, disputes, model hash |
//! | `nodes.csv` | one row per node: role, behaviour, stake, rewards, slashes, forfeits, audits, disputes |
//! | `accuracy.{png,svg}` | test accuracy per round |
//! | `rewards.{png,svg}` | cumulative reward per node, honest and attackers in different colours |
//! | `stake.{png,svg}` | final stake per node |
//!
//! Every file is a function of the [`RunResult`] alone: the same result gives the same bytes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::plots::{ensure_font, render, Plot};
use crate::result::RunResult;
use crate::scenario::ScenarioError;

/// Header of `rounds.csv`.
pub const ROUNDS_CSV_HEADER: &str =
    "round,finalized,accuracy,loss,latency_ms,rewards_paid,slashed,audited,disputes,model_hash";
/// Header of `nodes.csv`.
pub const NODES_CSV_HEADER: &str = "name,role,behaviour,address,stake_initial,stake_final,\
balance_final,rewards_total,slashed_total,forfeited_total,revealed,audited,disputes_won,disputes_lost,\
steps_trained,samples_evaluated,steps_audited,cost_training,cost_scoring,cost_auditing,cost_stake,\
costs_total,profit";

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The output folder could not be created.
    #[error("cannot create the report folder {}; choose another --out", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A report file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The result could not be encoded as JSON.
    #[error("cannot encode the results as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The scenario could not be encoded as TOML.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The plot font could not be loaded.
    #[error("cannot load the plot font: {0}")]
    Font(String),
    /// A plot could not be drawn or saved.
    #[error("cannot draw {}: {message}", path.display())]
    Plot {
        /// The plot file.
        path: PathBuf,
        /// The plotting error.
        message: String,
    },
}

/// The files [`write_report`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFiles {
    /// `results.json`.
    pub results_json: PathBuf,
    /// `scenario.toml`.
    pub scenario_toml: PathBuf,
    /// `rounds.csv`.
    pub rounds_csv: PathBuf,
    /// `nodes.csv`.
    pub nodes_csv: PathBuf,
    /// The plots: `accuracy`, `rewards` and `stake`, each as `.png` then `.svg`.
    pub plots: Vec<PathBuf>,
}

impl ReportFiles {
    /// Every file written, in the order above.
    pub fn all(&self) -> Vec<&Path> {
        let mut files = vec![
            self.results_json.as_path(),
            self.scenario_toml.as_path(),
            self.rounds_csv.as_path(),
            self.nodes_csv.as_path(),
        ];
        files.extend(self.plots.iter().map(PathBuf::as_path));
        files
    }
}

/// Writes the report folder `out` (created if missing; existing report files are replaced).
pub fn write_report(result: &RunResult, out: &Path) -> Result<ReportFiles, ReportError> {
    std::fs::create_dir_all(out).map_err(|source| ReportError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    let results_json = write(out, "results.json", results_json(result)?)?;
    let scenario_toml = write(out, "scenario.toml", scenario_toml(result)?)?;
    let rounds_csv = write(out, "rounds.csv", rounds_csv(result))?;
    let nodes_csv = write(out, "nodes.csv", nodes_csv(result))?;
    ensure_font().map_err(ReportError::Font)?;
    let mut plots = Vec::new();
    for plot in Plot::ALL {
        let files = render(plot, result, out)
            .map_err(|(path, message)| ReportError::Plot { path, message })?;
        plots.extend(files);
    }
    tracing::info!(out = %out.display(), files = plots.len() + 4, "wrote the report");
    Ok(ReportFiles {
        results_json,
        scenario_toml,
        rounds_csv,
        nodes_csv,
        plots,
    })
}

fn write(out: &Path, name: &str, contents: String) -> Result<PathBuf, ReportError> {
    let path = out.join(name);
    std::fs::write(&path, contents).map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// `results.json`: the result, pretty-printed with fields in declaration order, ending in a newline.
pub fn results_json(result: &RunResult) -> Result<String, ReportError> {
    let mut text = serde_json::to_string_pretty(result)?;
    text.push('\n');
    Ok(text)
}

/// `scenario.toml`: the scenario that ran, with a comment saying how to rerun it.
pub fn scenario_toml(result: &RunResult) -> Result<String, ReportError> {
    let body = result.scenario.to_toml_string()?;
    Ok(format!(
        "# The scenario of this run, every default filled in.\n\
         # Rerun it: cairn simulate --scenario scenario.toml --out <another folder>\n\n{body}"
    ))
}

/// A float for the CSV files: shortest exact form, `NaN` when not finite.
fn number(value: f64) -> String {
    if value.is_finite() {
        format!("{value}")
    } else {
        "NaN".to_owned()
    }
}

/// `rounds.csv`: [`ROUNDS_CSV_HEADER`], then one row per round (latency empty when the round did
/// not finalize).
pub fn rounds_csv(result: &RunResult) -> String {
    let mut csv = format!("{ROUNDS_CSV_HEADER}\n");
    for round in &result.rounds {
        let latency = round
            .finalization_latency_ms
            .map_or(String::new(), |ms| ms.to_string());
        let _ = writeln!(
            csv,
            "{},{},{},{},{latency},{},{},{},{},{}",
            round.round,
            round.finalized,
            number(round.accuracy),
            number(round.loss),
            round.rewards_paid,
            round.slashed,
            round.audited,
            round.disputes,
            round.model_hash
        );
    }
    csv
}

/// Quotes a CSV field when it holds a comma, a quote or a line break.
/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub(crate) fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// `nodes.csv`: [`NODES_CSV_HEADER`], then one row per node.
pub fn nodes_csv(result: &RunResult) -> String {
    let mut csv = format!("{NODES_CSV_HEADER}\n");
    for node in &result.nodes {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            field(&node.name),
            node.role.label(),
            field(&node.behaviour),
            field(&node.address),
            node.stake_initial,
            node.stake_final,
            node.balance_final,
            node.rewards_total,
            node.slashed_total,
            node.forfeited_total,
            node.revealed,
            node.audited,
            node.disputes_won,
            node.disputes_lost,
            node.work.steps_trained,
            node.work.samples_evaluated,
            node.work.steps_audited,
            node.costs.training,
            node.costs.scoring,
            node.costs.auditing,
            node.costs.stake,
            node.costs.total(),
            node.profit()
        );
    }
    csv
}

/// The summary printed after a run: one aligned row per node, then the final figures.
pub fn summary_table(result: &RunResult) -> String {
    let headers = [
        "node",
        "role",
        "behaviour",
        "stake start",
        "stake end",
        "rewards",
        "slashed",
        "costs",
        "profit",
        "disputes won/lost",
    ];
    let rows: Vec<[String; 10]> = result
        .nodes
        .iter()
        .map(|n| {
            [
                n.name.clone(),
                n.role.label().to_owned(),
                n.behaviour.clone(),
                n.stake_initial.to_string(),
                n.stake_final.to_string(),
                n.rewards_total.to_string(),
                n.slashed_total.to_string(),
                n.costs.total().to_string(),
                n.profit().to_string(),
                format!("{}/{}", n.disputes_won, n.disputes_lost),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    let line = |cells: &[&str], table: &mut String| {
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let sep = if i == 0 { "" } else { "  " };
            // Text columns align left, amounts right.
            if i < 3 {
                let _ = write!(table, "{sep}{cell:<width$}");
            } else {
                let _ = write!(table, "{sep}{cell:>width$}");
            }
        }
        let trimmed = table.trim_end_matches(' ').len();
        table.truncate(trimmed);
        table.push('\n');
    };
    line(&headers, &mut table);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(
        &rule.iter().map(String::as_str).collect::<Vec<_>>(),
        &mut table,
    );
    for row in &rows {
        line(
            &row.iter().map(String::as_str).collect::<Vec<_>>(),
            &mut table,
        );
    }
    table.push('\n');
    let _ = writeln!(
        table,
        "rounds finalized     {}/{}",
        result.finalized_rounds(),
        result.rounds.len()
    );
    let _ = writeln!(
        table,
        "final accuracy       {}",
        percent(result.final_accuracy)
    );
    if let Some(reference) = result.centralized_accuracy {
        let _ = writeln!(table, "centralized baseline {}", percent(reference));
    }
    let _ = writeln!(table, "final loss           {}", number(result.final_loss));
    let verification = &result.verification;
    let _ = writeln!(
        table,
        "audits               {} trainer-rounds at {:.2}% ({} forced by duplicates or replays), \
         {} passed reports",
        verification.audited,
        f64::from(verification.audit_ppm) / 1e4,
        verification.forced_audits,
        verification.audits_passed
    );
    let _ = writeln!(
        table,
        "disputes             {} ({} won by the trainer, {} by the challenger, {} moot), \
         {} referee steps",
        verification.disputes,
        verification.trainer_won,
        verification.challenger_won,
        verification.moot,
        verification.referee_steps
    );
    let _ = writeln!(table, "final model (blake3) {}", result.final_model_hash);
    let _ = writeln!(table, "final state root     {}", result.final_state_root);
    let _ = writeln!(
        table,
        "simulated time       {:.1} s",
        result.simulated_ms as f64 / 1000.0
    );
    table
}

fn percent(value: f64) -> String {
    if value.is_finite() {
        format!("{:.2}%", 100.0 * value)
    } else {
        "NaN".to_owned()
    }
}
