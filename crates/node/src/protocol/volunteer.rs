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
//!
//! Anyone can post a task, so a node that joined every one could be made to lock its bonds and
//! spend its compute on tasks that pay nothing. A [`Policy`] screens open tasks first: a floor on
//! the reward per round, a cap on the bond a trainer locks, and a cap on the tasks it works on at
//! once. Tasks it is already a member of are always resumed (its bond is locked there).

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

/// Which open tasks a volunteer joins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Tasks paying less per round are passed over.
    pub min_reward_per_round: u128,
    /// The largest bond a trainer locks for one task (`None`: any it can afford).
    pub max_trainer_bond: Option<u128>,
    /// Most tasks joined and not finished at once.
    pub max_active: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_reward_per_round: 1_000,
            max_trainer_bond: None,
            max_active: 4,
        }
    }
}

impl Policy {
    /// Whether an open task paying `reward_per_round` and asking `bond` of a trainer may be
    /// joined while `active` joined tasks are unfinished; the reason when not.
    pub fn screen(
        &self,
        offer: Offer,
        reward_per_round: u128,
        bond: u128,
        active: usize,
    ) -> Result<(), &'static str> {
        if reward_per_round < self.min_reward_per_round {
            return Err("its reward per round is below this node's floor");
        }
        if offer == Offer::Trainer && self.max_trainer_bond.is_some_and(|max| bond > max) {
            return Err("its trainer bond is above this node's cap");
        }
        if active >= self.max_active {
            return Err("this node works on as many tasks as it takes at once");
        }
        Ok(())
    }
}

/// Joins open tasks and resumes the ones this node is a member of; see the module docs.
pub struct Volunteer {
    key: SigningKey,
    address: Address,
    offer: Offer,
    registry: Arc<DatasetRegistry>,
    policy: Policy,
    /// Tasks decided on: an agent was built, or the task was passed over.
    decided: BTreeSet<u64>,
    /// Tasks it joined or resumed.
    joined: BTreeSet<u64>,
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
    /// A volunteer signing with `key`, working on the datasets of `registry`, with the default
    /// [`Policy`].
    pub fn new(key: &SigningKey, offer: Offer, registry: Arc<DatasetRegistry>) -> Self {
        Self {
            key: key.clone(),
            address: Address::from_public_key(&key.verifying_key()),
            offer,
            registry,
            policy: Policy::default(),
            decided: BTreeSet::new(),
            joined: BTreeSet::new(),
        }
    }

    /// The same volunteer with another policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// What it offers to be.
    pub fn offer(&self) -> Offer {
        self.offer
    }

    /// The agents to add after the block whose state is `state` (empty most blocks).
    pub fn on_block(&mut self, state: &dyn StateRead) -> Result<Vec<Agent>, StateError> {
        let next: u64 = Overlay::new(state).read(keys::NEXT_TASK)?.unwrap_or(0);
        let mut agents = Vec::new();
        // Joined tasks still open or running.
        let mut active = 0;
        for id in &self.joined {
            if let Some(task) = query::task(state, *id)? {
                if matches!(task.status, TaskStatus::Open | TaskStatus::Running { .. }) {
                    active += 1;
                }
            }
        }
        for id in next.saturating_sub(VOLUNTEER_SCAN)..next {
            if self.decided.contains(&id) {
                continue;
            }
            let Some(task) = query::task(state, id)? else {
                continue;
            };
            match self.decide(&task, state, active)? {
                Decision::Join(agent) => {
                    tracing::info!(task = id, offer = ?self.offer, "volunteering for task");
                    agents.push(*agent);
                    self.joined.insert(id);
                    if task.status == TaskStatus::Open {
                        active += 1;
                    }
                }
                Decision::Pass(reason) => {
                    tracing::debug!(task = id, reason, "task passed over");
                }
            }
            self.decided.insert(id);
        }
        Ok(agents)
    }

    fn decide(
        &self,
        task: &Task,
        state: &dyn StateRead,
        active: usize,
    ) -> Result<Decision, StateError> {
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
                if !member {
                    if let Err(reason) =
                        self.policy
                            .screen(self.offer, task.spec.reward_per_round, bond, active)
                    {
                        return Ok(Decision::Pass(reason));
                    }
                    if stake.free().saturating_add(balance) < bond {
                        return Ok(Decision::Pass("cannot afford the trainer bond"));
                    }
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
                if !member {
                    if let Err(reason) =
                        self.policy
                            .screen(self.offer, task.spec.reward_per_round, 0, active)
                    {
                        return Ok(Decision::Pass(reason));
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_passes_over_tasks_that_pay_too_little_or_ask_too_much() {
        let policy = Policy {
            min_reward_per_round: 1_000,
            max_trainer_bond: Some(50_000),
            max_active: 2,
        };
        assert!(policy.screen(Offer::Trainer, 10_000, 40_000, 0).is_ok());
        // A griefer's task: almost no reward for a locked bond and the compute.
        assert!(policy.screen(Offer::Trainer, 999, 40_000, 0).is_err());
        assert!(policy.screen(Offer::Validator, 1, 0, 0).is_err());
        // A bond above the cap, for a trainer only (validators lock their consensus stake).
        assert!(policy.screen(Offer::Trainer, 10_000, 50_001, 0).is_err());
        assert!(policy.screen(Offer::Validator, 10_000, 50_001, 0).is_ok());
        // A flood of tasks: at most `max_active` at once.
        assert!(policy.screen(Offer::Trainer, 10_000, 1, 1).is_ok());
        assert!(policy.screen(Offer::Trainer, 10_000, 1, 2).is_err());
        assert!(Policy::default()
            .screen(Offer::Trainer, 1_000, u128::MAX, 3)
            .is_ok());
    }
}
