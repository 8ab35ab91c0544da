//! A deployed node's standing offer to work: it joins every open task it can take part in and,
//! after a restart, picks its tasks up again from the ledger.
//!
//! A simulation knows its one task in advance and builds each node's agents for it. A real node
//! does not: tasks appear on the ledger while it runs. At every finalized block the
//! [`Volunteer`] looks at the tasks it has not decided on yet and builds an honest
//! [`Agent`] for each one it should work on:
//!
//! - an **open** task whose dataset this node holds and whose plan it can parse: it joins, as a
//!   trainer with the task's trainer bond, or as a validator locking its whole consensus stake
//!   (a task starts only once validators holding two thirds of all of it joined);
//! - a **running or finished** task the ledger already counts it a member of (a node that
//!   restarted lost its agents with its memory): it goes on with the rounds and disputes left.
//!
//! Tasks that are settled or cancelled, that it cannot parse, or that it did not join before
//! they started, are passed over once and never looked at again. A trainer that cannot afford a
//! task's bond is passed over too (it would only queue a transaction the ledger refuses).

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_ledger::state::{keys, Overlay, StateError};
use cairn_ledger::store::StateRead;
use cairn_ledger::{query, Address, Task, TaskStatus};
use cairn_round::dataset::DatasetRegistry;
use cairn_round::plan::TaskPlan;
use ed25519_dalek::SigningKey;

use super::{Agent, HonestTrainer, HonestValidator};

/// What a volunteer offers to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Trains on its shard in every task it joins.
    Trainer,
    /// Scores, aggregates and audits in every task it joins.
    Validator,
}

/// Joins open tasks and resumes the ones this node is a member of; see the module docs.
pub struct Volunteer {
    key: SigningKey,
    address: Address,
    offer: Offer,
    registry: Arc<DatasetRegistry>,
    /// Tasks decided on: an agent was built, or the task was passed over.
    decided: BTreeSet<u64>,
}

impl std::fmt::Debug for Volunteer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volunteer")
            .field("address", &self.address)
            .field("offer", &self.offer)
            .field("decided", &self.decided)
            .finish()
    }
}

/// How many of the newest tasks a volunteer looks at each block: a task older than this that it
/// never saw open is one it could not have joined anyway.
pub const VOLUNTEER_SCAN: u64 = 256;

impl Volunteer {
    /// A volunteer signing with `key`, working on the datasets of `registry`.
    pub fn new(key: &SigningKey, offer: Offer, registry: Arc<DatasetRegistry>) -> Self {
        Self {
            key: key.clone(),
            address: Address::from_public_key(&key.verifying_key()),
            offer,
            registry,
            decided: BTreeSet::new(),
        }
    }

    /// What it offers to be.
    pub fn offer(&self) -> Offer {
        self.offer
    }

    /// The agents to add after the block whose state is `state` (empty most blocks).
    pub fn on_block(&mut self, state: &dyn StateRead) -> Result<Vec<Agent>, StateError> {
        let next: u64 = Overlay::new(state).read(keys::NEXT_TASK)?.unwrap_or(0);
        let mut agents = Vec::new();
        for id in next.saturating_sub(VOLUNTEER_SCAN)..next {
            if self.decided.contains(&id) {
                continue;
            }
            let Some(task) = query::task(state, id)? else {
                continue;
            };
            match self.decide(&task, state)? {
                Decision::Join(agent) => {
                    tracing::info!(task = id, offer = ?self.offer, "volunteering for task");
                    agents.push(*agent);
                }
                Decision::Pass(reason) => {
                    tracing::debug!(task = id, reason, "task passed over");
                }
            }
            self.decided.insert(id);
        }
        Ok(agents)
    }

    fn decide(&self, task: &Task, state: &dyn StateRead) -> Result<Decision, StateError> {
        let member = match self.offer {
            Offer::Trainer => task.trainers.contains_key(&self.address),
            Offer::Validator => task.validators.contains_key(&self.address),
        };
        match task.status {
            TaskStatus::Open => {}
            TaskStatus::Running { .. } | TaskStatus::Finished if member => {}
            _ => return Ok(Decision::Pass("not open and not a member")),
        }
        if TaskPlan::from_spec(&task.spec, &self.registry).is_err() {
            return Ok(Decision::Pass(
                "its plan does not parse against this node's datasets",
            ));
        }
        let agent = match self.offer {
            Offer::Trainer => {
                let params = query::params(state)?;
                let bond = task
                    .spec
                    .verification
                    .min_trainer_bond
                    .max(task.spec.min_stake)
                    .max(params.min_bond);
                let stake = query::stake(state, &self.address)?;
                let balance = query::balance(state, &self.address)?;
                if !member && stake.free().saturating_add(balance) < bond {
                    return Ok(Decision::Pass("cannot afford the trainer bond"));
                }
                Agent::trainer(
                    &self.key,
                    task.id,
                    bond,
                    Box::new(HonestTrainer),
                    self.registry.clone(),
                )
            }
            Offer::Validator => {
                let consensus = query::consensus_validators(state)?;
                let Some(&stake) = consensus.get(&self.address) else {
                    return Ok(Decision::Pass("not a consensus validator"));
                };
                // Its whole consensus stake counts towards the task's validator quorum; the
                // agent bonds the challenge reserve on top from its balance.
                let bond = stake.max(task.spec.min_stake);
                Agent::validator(
                    &self.key,
                    task.id,
                    bond,
                    Box::new(HonestValidator),
                    self.registry.clone(),
                )
            }
        };
        Ok(Decision::Join(Box::new(agent)))
    }
}

enum Decision {
    Join(Box<Agent>),
    Pass(&'static str),
}
