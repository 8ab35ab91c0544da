//! `cairn ledger inspect`: a summary (or JSON) of the whole state.

use std::fmt::Write as _;

use cairn_ledger::dispute::{Dispute, Party, Stage};
use cairn_ledger::encoding::to_hex;
use cairn_ledger::query::Snapshot;
use cairn_ledger::Outcome;

use super::{emit, open_existing, InspectArgs};

/// Runs `cairn ledger inspect`.
pub(super) fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    let store = open_existing(&args.data_dir)?;
    let snapshot = Snapshot::read(&store)?;
    let mut out = String::new();
    if args.json {
        return emit(&(serde_json::to_string_pretty(&snapshot)? + "\n"));
    }
    let height = snapshot
        .height
        .map_or("none".to_string(), |h| h.to_string());
    writeln!(
        out,
        "chain {}  height {height}  state root {}",
        snapshot.chain_id, snapshot.state_root
    )?;
    writeln!(
        out,
        "supply {}  (accounted for in balances, stakes and escrows: {})",
        snapshot.supply,
        snapshot
            .holdings()
            .map_or("overflow".to_string(), |h| h.to_string())
    )?;
    writeln!(out, "\naccounts ({}):", snapshot.accounts.len())?;
    for (address, account) in &snapshot.accounts {
        let stake = snapshot.stakes.get(address).cloned().unwrap_or_default();
        let earned = snapshot.rewards.get(address).copied().unwrap_or(0);
        writeln!(
        out,
            "  {address}  balance {:>10}  nonce {:>3}  bonded {:>7} (locked {:>6}, unbonding {:>6})  rewards {earned}",
            account.balance, account.nonce, stake.bonded, stake.locked, stake.unbonding
        )?;
    }
    writeln!(out, "\ntasks ({}):", snapshot.tasks.len())?;
    for task in &snapshot.tasks {
        writeln!(
            out,
            "  task {}  {:?}  model {}  creator {}  escrow {}  trainers {}  validators {}",
            task.id,
            task.status,
            task.spec.model,
            task.creator,
            task.escrow,
            task.trainers.len(),
            task.validators.len()
        )?;
        for round in snapshot.rounds.iter().filter(|r| r.task == task.id) {
            print_round(&mut out, round, &snapshot.disputes)?;
        }
    }
    writeln!(out, "\ndatasets ({}):", snapshot.datasets.len())?;
    for entry in &snapshot.datasets {
        let listing = &entry.listing;
        writeln!(
            out,
            "  {}  owner {}  price {}  sales {}  licence {}",
            entry.content_hash, listing.owner, listing.price, listing.sales, listing.licence
        )?;
    }
    writeln!(out, "  payments in escrow: {}", snapshot.access_escrow)?;
    emit(&out)
}

fn print_round(
    out: &mut String,
    round: &cairn_ledger::Round,
    disputes: &[Dispute],
) -> std::fmt::Result {
    let status = match &round.outcome {
        None => "open".to_string(),
        Some(Outcome::TimedOut { slashed }) => format!("timed out, slashed {slashed:?}"),
        Some(Outcome::Finalized {
            model_hash,
            slashed,
            ..
        }) => {
            format!(
                "finalized model {}, {} slashed",
                to_hex(model_hash),
                slashed.len()
            )
        }
    };
    writeln!(
        out,
        "    round {} opened at {}: {} commits, {} attestations, {status}",
        round.number,
        round.opened_at,
        round.commits.len(),
        round.attestations.len()
    )?;
    if let Some(Outcome::Finalized {
        scores,
        trainer_rewards,
        validator_rewards,
        slashed,
        ..
    }) = &round.outcome
    {
        let forfeited = round.vesting.as_ref().map(|v| &v.forfeited);
        for (trainer, score) in scores {
            let awarded = trainer_rewards.get(trainer).copied().unwrap_or(0);
            let fate = match (
                round.vesting.as_ref(),
                forfeited.and_then(|f| f.get(trainer)),
            ) {
                (_, Some(_)) => "forfeited",
                (Some(vesting), None) if vesting.withheld.contains(trainer) => {
                    "withheld (disputed)"
                }
                (Some(vesting), None) if vesting.done => "vested",
                _ => "vesting",
            };
            writeln!(
                out,
                "      trainer   {trainer}  score {score:>7} ppm  awarded {awarded} ({fate})"
            )?;
        }
        for (validator, paid) in validator_rewards {
            writeln!(out, "      validator {validator}  awarded {paid}")?;
        }
        for (trainer, amount) in slashed {
            writeln!(
                out,
                "      slashed   {trainer}  {amount} (commit never revealed)"
            )?;
        }
    }
    for (trainer, audit) in &round.audits {
        let auditors: Vec<String> = audit
            .auditors
            .iter()
            .map(|(auditor, status)| format!("{auditor} {status:?}"))
            .collect();
        writeln!(
            out,
            "      audited   {trainer}  ({:?})  by {}",
            audit.reason,
            auditors.join(", ")
        )?;
    }
    for dispute in disputes.iter().filter(|d| {
        d.task == round.task && d.round == round.number && round.disputes.contains(&d.id)
    }) {
        let state = match &dispute.stage {
            Stage::Resolved(resolution) => format!(
                "won by the {} ({:?}, {} referee step(s), at {})",
                match resolution.winner {
                    Party::Trainer => "trainer",
                    Party::Challenger => "challenger",
                },
                resolution.reason,
                resolution.referee_steps,
                resolution.height
            ),
            open => format!(
                "open at steps {}..{} ({open:?}), deadline {}",
                dispute.low.step, dispute.high.step, dispute.deadline
            ),
        };
        writeln!(
            out,
            "      dispute   {}  trainer {}  challenger {}  bond {}: {state}",
            dispute.id, dispute.trainer, dispute.challenger, dispute.bond
        )?;
    }
    for (member, amount) in &round.penalties {
        writeln!(out, "      penalty   {member}  {amount} (lost a dispute)")?;
    }
    Ok(())
}
