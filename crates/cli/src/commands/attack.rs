//! `cairn attack` (being written).

/// Arguments of `cairn attack`.
#[derive(Debug, clap::Args)]
pub struct AttackArgs {}

/// Runs `cairn attack`.
pub fn run(_args: AttackArgs) -> anyhow::Result<()> {
    anyhow::bail!("cairn attack is being written")
}
