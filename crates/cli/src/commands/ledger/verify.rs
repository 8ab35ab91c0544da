//! `cairn ledger verify`: checks every stored record and recomputes the state root.

use std::fmt::Write as _;

use anyhow::bail;
use cairn_ledger::encoding::to_hex;

use super::{emit, open_existing, store_path, InspectArgs};

/// Runs `cairn ledger verify`: prints the report, fails if anything is damaged.
pub(super) fn verify(args: &InspectArgs) -> anyhow::Result<()> {
    let store = open_existing(&args.data_dir)?;
    let report = store.verify()?;
    if args.json {
        emit(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        let mut out = String::new();
        let height = report.height.map_or("none".to_string(), |h| h.to_string());
        writeln!(
            out,
            "{}: height {height}, {} values, {} roots, {} block records",
            store_path(&args.data_dir).display(),
            report.values,
            report.roots,
            report.blocks
        )?;
        writeln!(out, "state root        {}", to_hex(&report.root))?;
        writeln!(out, "recomputed root   {}", to_hex(&report.recomputed_root))?;
        for damage in &report.damage {
            writeln!(
                out,
                "damaged  {}  {}: {}",
                damage.table, damage.record, damage.problem
            )?;
        }
        if report.unlisted_damage > 0 {
            writeln!(
                out,
                "damaged  ... and {} more records",
                report.unlisted_damage
            )?;
        }
        if report.is_intact() {
            writeln!(
                out,
                "intact: every record passes its checksum and the values give the state root"
            )?;
        }
        emit(&out)?;
    }
    if !report.is_intact() {
        bail!(
            "the ledger at {} is damaged ({} damaged records{}); restore it from a peer or a backup",
            store_path(&args.data_dir).display(),
            report.damage.len() as u64 + report.unlisted_damage,
            if report.recomputed_root == report.root {
                ""
            } else {
                ", and its values do not give its state root"
            }
        );
    }
    Ok(())
}
