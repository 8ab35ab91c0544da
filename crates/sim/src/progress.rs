//! Live feedback while a simulation runs: the runner reports each finished round.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::result::RoundRecord;

/// Receives each round as it finishes (finalized or not), in round order.
pub trait Progress {
    /// Round `round` has closed; `of` is the number of rounds in the run.
    fn round_finished(&mut self, round: &RoundRecord, of: u32);
}

/// Ignores every report (tests, `--quiet` runs).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn round_finished(&mut self, _round: &RoundRecord, _of: u32) {}
}

/// A terminal progress bar over rounds whose message shows the latest accuracy and latency.
/// Hidden when stderr is not a terminal, so logs and pipes stay clean.
#[derive(Debug)]
pub struct ProgressBarReporter {
    bar: ProgressBar,
    finalized: u64,
}

impl ProgressBarReporter {
    /// A bar over `rounds` rounds, drawn on stderr when it is a terminal.
    pub fn new(rounds: u32) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self::with_target(rounds, target)
    }

    /// A bar over `rounds` rounds drawn on `target` (e.g. hidden, for tests).
    pub fn with_target(rounds: u32, target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(u64::from(rounds)), target);
        let style = ProgressStyle::with_template(
            "round {pos:>4}/{len} [{bar:30.cyan/blue}] {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message("waiting for the first round");
        Self { bar, finalized: 0 }
    }

    /// The message shown for `round` (what the bar displays after it).
    pub fn message(round: &RoundRecord, finalized: u64) -> String {
        let latency = match round.finalization_latency_ms {
            Some(ms) => format!("finalized in {:.1} s simulated", ms as f64 / 1000.0),
            None => "not finalized".to_owned(),
        };
        format!(
            "accuracy {:.2}%  loss {:.4}  {latency}  ({finalized} finalized)",
            100.0 * round.accuracy,
            round.loss
        )
    }

    /// Rounds reported so far.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Removes the bar from the terminal (call before printing the summary).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for ProgressBarReporter {
    fn round_finished(&mut self, round: &RoundRecord, of: u32) {
        self.finalized += u64::from(round.finalized);
        if self.bar.length() != Some(u64::from(of)) {
            self.bar.set_length(u64::from(of));
        }
        self.bar.set_message(Self::message(round, self.finalized));
        self.bar.inc(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(round: u32, finalized: bool) -> RoundRecord {
        RoundRecord {
            round,
            finalized,
            accuracy: 0.9123,
            loss: 0.25,
            model_hash: String::new(),
            finalization_latency_ms: finalized.then_some(2500),
            rewards_paid: 0,
            slashed: 0,
            audited: 0,
            disputes: 0,
        }
    }

    #[test]
    fn progress_bar_advances_one_step_per_round_and_counts_finalized_rounds() {
        let mut bar = ProgressBarReporter::with_target(3, ProgressDrawTarget::hidden());
        bar.round_finished(&round(1, true), 3);
        bar.round_finished(&round(2, false), 3);
        assert_eq!(bar.position(), 2);
        assert_eq!(bar.finalized, 1);
        assert_eq!(
            bar.bar.message(),
            ProgressBarReporter::message(&round(2, false), 1)
        );
        bar.finish();
    }

    #[test]
    fn progress_message_shows_live_accuracy_and_simulated_latency() {
        let message = ProgressBarReporter::message(&round(4, true), 4);
        assert_eq!(
            message,
            "accuracy 91.23%  loss 0.2500  finalized in 2.5 s simulated  (4 finalized)"
        );
        assert!(ProgressBarReporter::message(&round(5, false), 4).contains("not finalized"));
    }
}
