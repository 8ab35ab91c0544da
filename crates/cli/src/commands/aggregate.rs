//! `cairn aggregate` (being written).

/// Arguments of `cairn aggregate`.
#[derive(Debug, clap::Args)]
pub struct AggregateArgs {}

/// Runs `cairn aggregate`.
pub fn run(_args: AggregateArgs) -> anyhow::Result<()> {
    anyhow::bail!("cairn aggregate is being written")
}
