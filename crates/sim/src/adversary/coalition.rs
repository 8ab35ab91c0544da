//! Side channels between colluding trainers: a coalition that crafts one attack together from
//! its members' honest updates, and the identities of a noise Sybil sharing one training run.

use std::collections::{BTreeMap, BTreeSet};

use cairn_node::protocol::Submission;
use cairn_robust::attack::{craft, Attack, AttackError, Setting};
use cairn_round::{Address, Hash, TaskPlan};

/// The colluders' shared pool for one attack: honest updates in, crafted updates out.
#[derive(Debug, Default)]
pub struct Coalition {
    members: BTreeSet<Address>,
    deposits: BTreeMap<(u64, u32), BTreeMap<Address, Vec<f32>>>,
    crafted: BTreeMap<(u64, u32), Result<Vec<f32>, AttackError>>,
    /// The lowest member's honest update of the coalition's last crafted round: what a `stale`
    /// attack replays (zeros before any round was crafted).
    last_honest: BTreeMap<u64, Vec<f32>>,
}

/// Rounds a coalition remembers (older ones are dropped).
const COALITION_MEMORY: u32 = 4;

impl Coalition {
    /// A coalition of these members.
    pub fn new(members: impl IntoIterator<Item = Address>) -> Self {
        Self {
            members: members.into_iter().collect(),
            ..Self::default()
        }
    }

    /// The colluding addresses.
    pub fn members(&self) -> &BTreeSet<Address> {
        &self.members
    }

    /// Deposits `member`'s honest update for (`task`, `round`) and, once every member still in
    /// the task (not in `expelled`) has, crafts the `f = active members` Byzantine updates
    /// against the task's rule (`n` = trainers in the task, seed from the round seed). Members
    /// the ledger expelled drop out, so the others go on attacking rather than wait for them.
    /// Returns `member`'s row when available: `None` while deposits are missing, the attack's
    /// error if crafting failed.
    #[allow(clippy::too_many_arguments)]
    pub fn exchange(
        &mut self,
        (task, round): (u64, u32),
        member: Address,
        honest: &[f32],
        plan: &TaskPlan,
        attack: &Attack,
        (n, round_seed): (usize, &Hash),
        expelled: &BTreeSet<Address>,
    ) -> Option<Result<Vec<f32>, AttackError>> {
        let active: Vec<Address> = self.members.difference(expelled).copied().collect();
        let rank = active.iter().position(|m| *m == member)?;
        let key = (task, round);
        if !self.crafted.contains_key(&key) {
            let pool = self.deposits.entry(key).or_default();
            pool.insert(member, honest.to_vec());
            if pool.len() < active.len() {
                return None;
            }
            let d = honest.len();
            // Colluders know only their own honest updates. To craft against the whole network
            // (and let optimized attacks simulate the rule on `n` updates) they stand these in
            // for the `n - f` honest trainers, repeating them whole (as many whole copies as fit
            // in `n - f` rows, so the stand-ins' mean is their own mean).
            let known: Vec<&Vec<f32>> = pool.values().collect();
            let copies = (n.saturating_sub(active.len()) / known.len().max(1)).max(1);
            let stand_ins = copies * known.len();
            let flat: Vec<f32> = known
                .iter()
                .cycle()
                .take(stand_ins)
                .flat_map(|u| u.iter().copied())
                .collect();
            let mut seed = [0u8; 8];
            seed.copy_from_slice(&round_seed[..8]);
            let zeros = vec![0.0; d];
            let stale = self
                .last_honest
                .get(&task)
                .filter(|previous| previous.len() == d)
                .cloned()
                .unwrap_or(zeros);
            let setting = Setting {
                n,
                f: active.len(),
                rule: plan.rule.clone(),
                pre: plan.pre.clone(),
                seed: u64::from_le_bytes(seed),
                stale: Some(&stale),
            };
            let result = craft(attack, &flat, d, &setting);
            if let Some(first) = known.first() {
                self.last_honest.insert(task, (*first).clone());
            }
            self.crafted.insert(key, result);
            self.deposits.remove(&key);
            self.crafted
                .retain(|(t, r), _| *t != task || r + COALITION_MEMORY > round);
        }
        let d = honest.len();
        Some(match self.crafted.get(&key)? {
            Ok(rows) => Ok(rows[rank * d..(rank + 1) * d].to_vec()),
            Err(error) => Err(error.clone()),
        })
    }
}

/// The identities of one noise Sybil: the first trains, the others take its submission.
#[derive(Debug, Default)]
pub struct SybilPool {
    runs: BTreeMap<(u64, u32), Submission>,
}

/// Rounds a Sybil pool remembers.
const SYBIL_MEMORY: u32 = 2;

impl SybilPool {
    /// The primary identity's submission for (`task`, `round`), once deposited.
    pub fn take(&self, task: u64, round: u32) -> Option<Submission> {
        self.runs.get(&(task, round)).cloned()
    }

    /// The primary identity deposits its run.
    pub fn deposit(&mut self, task: u64, round: u32, submission: Submission) {
        self.runs
            .retain(|(t, r), _| *t != task || r + SYBIL_MEMORY > round);
        self.runs.insert((task, round), submission);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use cairn_ml::data::Dataset;
    use cairn_round::spec::{TaskSpec, Verification};
    use cairn_round::DatasetRegistry;

    fn plan() -> TaskPlan {
        let labels: Vec<u32> = (0..20).map(|i| i % 2).collect();
        let features = (0..20).map(|i| i as f32 / 20.0).collect();
        let data = Dataset::new(features, labels, 2, (1, 1, 1)).unwrap();
        let mut registry = DatasetRegistry::new();
        let dataset = registry.insert("toy", &data).unwrap();
        let spec = TaskSpec {
            model: "logistic:1-2".into(),
            initial_model: [0; 32],
            dataset,
            partition: "iid".into(),
            rounds: 1,
            local_steps: 1,
            optimizer: "sgd:lr=0.1".into(),
            robust_rule: "median".into(),
            commit_window: 2,
            reveal_window: 1,
            availability_window: 1,
            attest_window: 1,
            min_stake: 1,
            reward_per_round: 1,
            verification: Verification::with_audit_ppm(0, 1),
        };
        TaskPlan::from_spec(&spec, &registry).unwrap()
    }

    #[test]
    fn a_coalition_crafts_only_once_every_member_deposited() {
        let plan = plan();
        let (a, b) = (Address([1; 20]), Address([2; 20]));
        let coalition = Arc::new(std::sync::Mutex::new(Coalition::new([b, a])));
        let attack = Attack::SignFlip { scale: 1.0 };
        let mut pool = coalition.lock().unwrap();
        let context = (5, &[0u8; 32]);
        let none = BTreeSet::new();
        assert!(pool
            .exchange((0, 0), a, &[1.0, 2.0], &plan, &attack, context, &none)
            .is_none());
        let for_b = pool.exchange((0, 0), b, &[3.0, 4.0], &plan, &attack, context, &none);
        assert_eq!(for_b, Some(Ok(vec![-2.0, -3.0])));
        let for_a = pool.exchange((0, 0), a, &[1.0, 2.0], &plan, &attack, context, &none);
        assert_eq!(for_a, Some(Ok(vec![-2.0, -3.0])));
        let outsider = pool.exchange(
            (0, 0),
            Address([3; 20]),
            &[1.0, 2.0],
            &plan,
            &attack,
            context,
            &none,
        );
        assert!(outsider.is_none());
    }

    #[test]
    fn an_expelled_member_drops_out_and_the_rest_go_on_attacking() {
        let plan = plan();
        let (a, b) = (Address([1; 20]), Address([2; 20]));
        let mut pool = Coalition::new([a, b]);
        let attack = Attack::SignFlip { scale: 1.0 };
        let context = (5, &[0u8; 32]);
        let expelled = BTreeSet::from([b]);
        // b lost a dispute: a crafts alone at once, and b gets nothing.
        let for_a = pool.exchange((0, 1), a, &[1.0, 2.0], &plan, &attack, context, &expelled);
        assert_eq!(for_a, Some(Ok(vec![-1.0, -2.0])));
        let for_b = pool.exchange((0, 1), b, &[3.0, 4.0], &plan, &attack, context, &expelled);
        assert!(for_b.is_none());
    }
}
