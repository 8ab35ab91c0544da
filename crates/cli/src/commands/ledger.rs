//! `cairn ledger` (being written).

/// Arguments of `cairn ledger`.
#[derive(Debug, clap::Args)]
pub struct LedgerArgs {}

/// Runs `cairn ledger`.
pub fn run(_args: LedgerArgs) -> anyhow::Result<()> {
    anyhow::bail!("cairn ledger is being written")
}
