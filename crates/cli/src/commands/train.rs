//! `cairn train` (being written).

/// Arguments of `cairn train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {}

/// Runs `cairn train`.
pub fn run(_args: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("cairn train is being written")
}
