//! What every simulated run must satisfy, checked at its end: a violation fails the run (with
//! its seed, by [`crate::runner`]'s error) instead of reporting figures from a broken network.
//!
//! - honest nodes never fork: every node's state root agrees at the highest common height
//!   (checked by the runner before this);
//! - no tokens appear: the supply never exceeds genesis, and every token of it is held
//!   somewhere (balances, stakes, escrows);
//! - every finalized model hash is the one each honest validator that stayed up attested;
//! - rounds resume: one of the first [`RECOVERY_ROUNDS`] rounds opened after the last fault
//!   healed finalizes ([`recovery`], checked by the runner, which knows when rounds opened);
//! - no honest node that stayed up is slashed. (A node that crashes between a commitment and its
//!   reveal loses the slash for a hidden commitment: the ledger cannot tell the two apart.)

use cairn_ledger::query::{self, Snapshot};
use cairn_ledger::store::StateStore;
use cairn_ledger::{Address, Outcome};

use crate::result::{NodeRecord, NodeRole};
use crate::scenario::Scenario;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The supply grew past genesis.
    #[error("the supply grew from {genesis} at genesis to {now}")]
    Minted {
        /// Supply at genesis.
        genesis: u128,
        /// Supply at the end.
        now: u128,
    },
    /// Tokens the supply counts are held nowhere (or more are held than exist).
    #[error("the supply is {supply} but balances, stakes and escrows hold {holdings:?}")]
    Unaccounted {
        /// Recorded supply.
        supply: u128,
        /// What the state holds (`None`: overflows).
        holdings: Option<u128>,
    },
    /// A finalized round's model hash is not what an honest validator computed.
    #[error("round {round} finalized model {finalized} but honest validator {validator} attested {attested}")]
    ForeignModel {
        /// The round.
        round: u32,
        /// Finalized hash, hex.
        finalized: String,
        /// The honest validator.
        validator: String,
        /// What it attested, hex.
        attested: String,
    },
    /// An honest node that never went down lost tokens to a slash.
    #[error("honest node {node}, never down, was slashed {amount}")]
    HonestSlashed {
        /// The node.
        node: String,
        /// Tokens slashed.
        amount: u128,
    },
    /// Rounds kept failing long after the network's faults healed.
    #[error("the faults healed at {healed_ms} ms but none of the {rounds} rounds opened after that finalized")]
    NoRecovery {
        /// When the last fault healed (simulated milliseconds).
        healed_ms: u64,
        /// Rounds opened after it, none finalized.
        rounds: usize,
    },
    /// The ledger state could not be read.
    #[error("the final state could not be read: {0}")]
    Unreadable(String),
}

/// Checks the invariants on the final state of a run of task `task`. `nodes` are the run's node
/// records with their addresses; `genesis_supply` what genesis minted.
pub fn check<S: StateStore>(
    store: &S,
    task: u64,
    scenario: &Scenario,
    genesis_supply: u128,
    nodes: &[(Address, &NodeRecord)],
) -> Result<(), Violation> {
    let unreadable =
        |error: cairn_ledger::state::StateError| Violation::Unreadable(error.to_string());
    let snapshot = Snapshot::read(store).map_err(unreadable)?;
    if snapshot.supply > genesis_supply {
        return Err(Violation::Minted {
            genesis: genesis_supply,
            now: snapshot.supply,
        });
    }
    let holdings = snapshot.holdings();
    if holdings != Some(snapshot.supply) {
        return Err(Violation::Unaccounted {
            supply: snapshot.supply,
            holdings,
        });
    }
    let crashed = |name: &str| scenario.network.crashes.iter().any(|c| c.node == name);
    let steady = |node: &NodeRecord| node.is_honest() && !crashed(&node.name);
    for (_, node) in nodes {
        if steady(node) && node.slashed_total > 0 {
            return Err(Violation::HonestSlashed {
                node: node.name.clone(),
                amount: node.slashed_total,
            });
        }
    }
    let honest_validators: Vec<(Address, &str)> = nodes
        .iter()
        .filter(|(_, n)| n.role == NodeRole::Validator && steady(n))
        .map(|(address, n)| (*address, n.name.as_str()))
        .collect();
    for number in 0..scenario.rounds {
        let Some(round) = query::round(store, task, number).map_err(unreadable)? else {
            break;
        };
        let Some(Outcome::Finalized { model_hash, .. }) = &round.outcome else {
            continue;
        };
        for (address, name) in &honest_validators {
            let attested = round
                .attestations
                .get(address)
                .and_then(|a| a.reveal.as_ref())
                .map(|reveal| reveal.model_hash);
            if let Some(attested) = attested.filter(|hash| hash != model_hash) {
                return Err(Violation::ForeignModel {
                    round: number,
                    finalized: cairn_ledger::encoding::to_hex(model_hash),
                    validator: (*name).to_owned(),
                    attested: cairn_ledger::encoding::to_hex(&attested),
                });
            }
        }
    }
    Ok(())
}

/// Rounds that may open after the faults heal before one of them must finalize.
pub const RECOVERY_ROUNDS: usize = 3;

/// Liveness after faults: of the rounds opened at or after `healed_ms` (each given as its
/// opening time in simulated milliseconds and whether it finalized, in round order), one of the
/// first [`RECOVERY_ROUNDS`] finalizes. Runs whose faults last to the end (fewer rounds opened
/// after them) are checked on the rounds there are only when there are that many.
pub fn recovery(healed_ms: u64, rounds: &[(u64, bool)]) -> Result<(), Violation> {
    let after: Vec<bool> = rounds
        .iter()
        .filter(|(opened, _)| *opened >= healed_ms)
        .map(|(_, finalized)| *finalized)
        .take(RECOVERY_ROUNDS)
        .collect();
    if after.len() < RECOVERY_ROUNDS || after.iter().any(|f| *f) {
        return Ok(());
    }
    Err(Violation::NoRecovery {
        healed_ms,
        rounds: after.len(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cairn_ledger::store::MemoryStore;
    use cairn_ledger::{Chain, Genesis, Params};

    use super::*;

    fn chain() -> (Chain<MemoryStore>, u128) {
        let genesis = Genesis {
            chain_id: 1,
            params: Params::default(),
            balances: BTreeMap::from([(Address([1; 20]), 5_000)]),
            validators: BTreeMap::from([(Address([2; 20]), 1_000)]),
            datasets: Default::default(),
        };
        let supply = genesis.validate().unwrap();
        let chain = Chain::create(MemoryStore::new(), &genesis, Default::default()).unwrap();
        (chain, supply)
    }

    fn node(name: &str, role: NodeRole, behaviour: &str, slashed: u128) -> NodeRecord {
        NodeRecord {
            name: name.into(),
            role,
            behaviour: behaviour.into(),
            address: String::new(),
            stake_initial: 0,
            stake_final: 0,
            balance_final: 0,
            rewards_total: 0,
            slashed_total: slashed,
            forfeited_total: 0,
            revealed: 0,
            audited: 0,
            disputes_won: 0,
            disputes_lost: 0,
            rewards_per_round: Vec::new(),
            work: Default::default(),
            costs: Default::default(),
        }
    }

    #[test]
    fn rounds_must_resume_within_a_bound_once_faults_heal() {
        // Healed at 100: rounds opened at 120, 150, 180 all failed.
        let stuck = [
            (10, true),
            (50, false),
            (120, false),
            (150, false),
            (180, false),
        ];
        assert_eq!(
            recovery(100, &stuck),
            Err(Violation::NoRecovery {
                healed_ms: 100,
                rounds: 3
            })
        );
        let resumed = [(50, false), (120, false), (150, true), (180, false)];
        assert_eq!(recovery(100, &resumed), Ok(()));
        // Too few rounds after the heal to judge; no faults at all.
        assert_eq!(recovery(100, &[(50, false), (120, false)]), Ok(()));
        assert_eq!(recovery(0, &[(0, true), (5, false)]), Ok(()));
    }

    #[test]
    fn a_sound_state_passes_and_each_broken_invariant_is_named() {
        let (chain, supply) = chain();
        let scenario = Scenario::default();
        let honest = node("v0", NodeRole::Validator, "honest", 0);
        let nodes = [(Address([2; 20]), &honest)];
        check(chain.store(), 0, &scenario, supply, &nodes).unwrap();

        // A genesis that minted less than the state holds: tokens appeared.
        assert!(matches!(
            check(chain.store(), 0, &scenario, supply - 1, &nodes),
            Err(Violation::Minted { .. })
        ));

        // An honest node that never went down was slashed; one that crashed may be.
        let slashed = node("t3", NodeRole::Trainer, "honest", 40);
        let nodes = [(Address([3; 20]), &slashed)];
        assert_eq!(
            check(chain.store(), 0, &scenario, supply, &nodes),
            Err(Violation::HonestSlashed {
                node: "t3".into(),
                amount: 40
            })
        );
        let mut crashed = scenario.clone();
        crashed.network.crashes.push(crate::scenario::CrashEvent {
            node: "t3".into(),
            at_ms: 1_000,
            restart_ms: None,
        });
        check(chain.store(), 0, &crashed, supply, &nodes).unwrap();
        // A slashed attacker is no violation.
        let attacker = node("t4", NodeRole::Trainer, "attack:alie:auto", 40_000);
        check(
            chain.store(),
            0,
            &scenario,
            supply,
            &[(Address([4; 20]), &attacker)],
        )
        .unwrap();
    }
}
