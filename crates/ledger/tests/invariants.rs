//! Invariants over random transaction sequences: supply changes only by explicit burns (genesis
//! is the only mint), every token is held somewhere, no stake is locked beyond what is bonded,
//! and replaying the same blocks from genesis gives the same root at every height.

mod common;

use cairn_ledger::query::{self, Snapshot};
use cairn_ledger::{Block, Params, Payload, Role, SignedTransaction};
use common::*;
use proptest::prelude::*;

/// One random action: who acts, what, and a size.
#[derive(Clone, Debug)]
enum Action {
    Transfer(usize, usize, u128),
    Bond(usize, u128),
    Unbond(usize, u128),
    Burn(usize, u128),
    CreateTask(usize, u32, u128),
    Join(usize, u64, bool, u128),
    Start(usize, u64),
    Cancel(usize, u64),
    List(usize, u8, u128),
    Buy(usize, u8),
    Wait,
}

const USERS: usize = 4;

/// Every user is a consensus validator; user 0 alone holds 2/3 of the weight, so a task it
/// validates can start (and so rounds do run).
fn weight(user: usize) -> u128 {
    if user == 0 {
        6_000
    } else {
        1_000
    }
}

fn action() -> impl Strategy<Value = Action> {
    let user = 0..USERS;
    let amount = prop_oneof![0u128..2_000, Just(BALANCE), Just(u128::MAX)];
    prop_oneof![
        1 => (user.clone(), user.clone(), amount.clone())
            .prop_map(|(a, b, n)| Action::Transfer(a, b, n)),
        1 => (user.clone(), amount.clone()).prop_map(|(a, n)| Action::Bond(a, n)),
        1 => (user.clone(), amount.clone()).prop_map(|(a, n)| Action::Unbond(a, n)),
        1 => (user.clone(), amount.clone()).prop_map(|(a, n)| Action::Burn(a, n)),
        1 => (user.clone(), 1u32..4, 0u128..500).prop_map(|(a, r, n)| Action::CreateTask(a, r, n)),
        4 => (user.clone(), 0u64..2, any::<bool>(), 0u128..600)
            .prop_map(|(a, t, v, n)| Action::Join(a, t, v, n)),
        3 => (user.clone(), 0u64..2).prop_map(|(a, t)| Action::Start(a, t)),
        1 => (user.clone(), 0u64..3).prop_map(|(a, t)| Action::Cancel(a, t)),
        1 => (user.clone(), 0u8..3, 0u128..300).prop_map(|(a, d, n)| Action::List(a, d, n)),
        1 => (user, 0u8..3).prop_map(|(a, d)| Action::Buy(a, d)),
        1 => Just(Action::Wait),
    ]
}

fn payload(action: &Action, users: &[User]) -> Option<(usize, Payload)> {
    Some(match *action {
        Action::Transfer(from, to, amount) => (
            from,
            Payload::Transfer {
                to: users[to].address,
                amount,
            },
        ),
        Action::Bond(who, amount) => (who, Payload::Bond { amount }),
        Action::Unbond(who, amount) => (who, Payload::Unbond { amount }),
        Action::Burn(who, amount) => (who, Payload::Burn { amount }),
        Action::CreateTask(who, rounds, reward) => (
            who,
            Payload::CreateTask {
                spec: spec(rounds, (1, 1, 1), reward),
            },
        ),
        Action::Join(who, task, validator, bond) => (
            who,
            Payload::JoinTask {
                task,
                role: if validator {
                    Role::Validator
                } else {
                    Role::Trainer
                },
                // Validators mostly offer their weight, as they must; sometimes another bond.
                bond: if validator && bond < 450 {
                    weight(who)
                } else {
                    bond
                },
            },
        ),
        Action::Start(who, task) => (who, Payload::StartTask { task }),
        Action::Cancel(who, task) => (who, Payload::CancelTask { task }),
        Action::List(who, dataset, price) => (
            who,
            Payload::ListDataset {
                content_hash: [dataset; 32],
                schema: "csv".into(),
                licence: "MIT".into(),
                price,
            },
        ),
        Action::Buy(who, dataset) => (
            who,
            Payload::BuyAccess {
                dataset: [dataset; 32],
            },
        ),
        Action::Wait => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn supply_is_conserved_and_replay_reproduces_every_root(actions in proptest::collection::vec(action(), 1..80)) {
        let users = users(USERS as u8);
        let params = Params { unbond_delay: 3, access_escrow_blocks: 2, ..Params::default() };
        // Everyone starts with bonded stake, so joins (and so task starts) happen often.
        let weights: Vec<(usize, u128)> = (0..USERS).map(|u| (u, weight(u))).collect();
        let genesis = genesis_with_validators(&users, &weights, params);
        let mut chain = chain(&genesis);
        let mut supply = query::supply(chain.store()).unwrap();
        prop_assert_eq!(supply, USERS as u128 * BALANCE + 9_000);
        let mut blocks: Vec<Block> = Vec::new();
        let mut roots = Vec::new();
        for action in &actions {
            let mut candidates: Vec<SignedTransaction> = Vec::new();
            if let Some((mut who, payload)) = payload(action, &users) {
                // Starting and cancelling are the creator's: usually let the creator act, so
                // tasks do start and run their rounds (and sometimes let someone else try).
                if let Action::Start(actor, task) | Action::Cancel(actor, task) = action {
                    if let Some(task) = query::task(chain.store(), *task).unwrap() {
                        if *actor != 0 {
                            who = users.iter().position(|u| u.address == task.creator).unwrap_or(who);
                        }
                    }
                }
                let nonce = query::account(chain.store(), &users[who].address).unwrap().nonce;
                candidates.push(users[who].sign_with_nonce(nonce, payload));
            }
            let (block, _rejected) = chain.propose_and_apply(candidates).unwrap();
            if let (Action::Burn(_, amount), 1) = (action, block.transactions.len()) {
                supply -= amount;
            }
            let snapshot = Snapshot::read(chain.store()).unwrap();
            prop_assert_eq!(snapshot.supply, supply);
            prop_assert_eq!(snapshot.holdings(), Some(supply));
            for stake in snapshot.stakes.values() {
                prop_assert!(stake.locked <= stake.bonded);
            }
            roots.push(chain.store().root());
            blocks.push(block);
        }

        let mut replay = common::chain(&genesis);
        for (block, root) in blocks.iter().zip(&roots) {
            replay.apply(block).unwrap();
            prop_assert_eq!(&replay.store().root(), root);
        }
    }
}
