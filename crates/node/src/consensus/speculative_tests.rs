//! Unit tests of the speculative ledger state: forks, verdicts, commits and redelivery.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cairn_ledger::block::Block;
use cairn_ledger::genesis::{Genesis, Params};
use cairn_ledger::store::MemoryStore;
use cairn_ledger::transaction::{Payload, SignedTransaction};

use super::{ConsensusError, LedgerState, Standing, Verdict};
use crate::consensus::validator::init_store;
use crate::keys::NodeKey;

const CHAIN: u64 = 5;

fn key(index: u64) -> NodeKey {
    NodeKey::derive(3, index)
}

fn transfer(from: u64, nonce: u64) -> SignedTransaction {
    SignedTransaction::new(
        &key(from).ledger_key(),
        CHAIN,
        nonce,
        Payload::Transfer {
            to: key(9).address(),
            amount: 5,
        },
    )
}

fn ledger() -> (LedgerState<MemoryStore>, Block) {
    let mut balances = BTreeMap::new();
    balances.insert(key(0).address(), 100u128);
    balances.insert(key(1).address(), 100u128);
    let mut validators = BTreeMap::new();
    validators.insert(key(2).address(), 100u128);
    let genesis = Genesis {
        chain_id: CHAIN,
        params: Params::default(),
        balances,
        validators,
        datasets: Default::default(),
    };
    let (store, block) = init_store(MemoryStore::new(), &genesis, Arc::default()).unwrap();
    (
        LedgerState::open(Arc::new(Mutex::new(store)), Arc::default()).unwrap(),
        block,
    )
}

fn standing(ledger: &LedgerState<MemoryStore>, block: &Block) -> Standing {
    ledger
        .standing(&block.hash(), block.header.height, &block.header.parent)
        .unwrap()
}

#[test]
fn a_verifier_accepts_what_a_proposer_built_and_refuses_a_wrong_root() {
    let (proposer, genesis) = ledger();
    let (verifier, _) = ledger();
    let block = proposer
        .build(&genesis.hash(), vec![transfer(0, 0)])
        .unwrap()
        .unwrap();
    assert_eq!(standing(&verifier, &block), Standing::ParentKnown);

    let mut lying = block.clone();
    lying.header.state_root = [1; 32];
    assert_eq!(verifier.execute(&lying).unwrap(), Verdict::Invalid);
    assert_eq!(verifier.pending_len().unwrap(), 0);

    assert_eq!(verifier.execute(&block).unwrap(), Verdict::Valid);
    assert_eq!(standing(&verifier, &block), Standing::Known);
    // A child of an unexecuted block has no known parent state.
    let child = proposer
        .build(&block.hash(), vec![transfer(0, 1)])
        .unwrap()
        .unwrap();
    let (fresh, _) = ledger();
    assert_eq!(standing(&fresh, &child), Standing::Unknown);
    assert_eq!(fresh.execute(&child).unwrap(), Verdict::Unknown);
}

#[test]
fn finalizing_one_branch_makes_the_competing_branch_conflicting() {
    let (ledger, genesis) = ledger();
    let a1 = ledger
        .build(&genesis.hash(), vec![transfer(0, 0)])
        .unwrap()
        .unwrap();
    let b1 = ledger
        .build(&genesis.hash(), vec![transfer(1, 0)])
        .unwrap()
        .unwrap();
    let a2 = ledger
        .build(&a1.hash(), vec![transfer(0, 1)])
        .unwrap()
        .unwrap();
    let b2 = ledger
        .build(&b1.hash(), vec![transfer(1, 1)])
        .unwrap()
        .unwrap();
    assert_eq!(ledger.pending_len().unwrap(), 4);

    assert!(ledger.commit_finalized(&b1).unwrap());
    assert_eq!(standing(&ledger, &a1), Standing::Conflicting);
    assert_eq!(standing(&ledger, &a2), Standing::Unknown);
    assert_eq!(ledger.execute(&a2).unwrap(), Verdict::Unknown);
    assert_eq!(standing(&ledger, &b2), Standing::Known);

    // The surviving branch commits from its pending changes, to the root its header names.
    assert!(ledger.commit_finalized(&b2).unwrap());
    let store = ledger.store().lock().unwrap();
    assert_eq!(store.height(), Some(2));
    assert_eq!(store.root(), b2.header.state_root);
}

#[test]
fn redelivered_blocks_are_acknowledged_and_conflicts_and_gaps_are_errors() {
    let (ledger, genesis) = ledger();
    let a1 = ledger
        .build(&genesis.hash(), vec![transfer(0, 0)])
        .unwrap()
        .unwrap();
    let b1 = ledger
        .build(&genesis.hash(), vec![transfer(1, 0)])
        .unwrap()
        .unwrap();
    let a2 = ledger
        .build(&a1.hash(), vec![transfer(0, 1)])
        .unwrap()
        .unwrap();
    let a3 = ledger.build(&a2.hash(), vec![]).unwrap().unwrap();

    assert!(matches!(
        ledger.commit_finalized(&a2),
        Err(ConsensusError::HeightGap { tip: 0, got: 2 })
    ));
    assert!(ledger.commit_finalized(&a1).unwrap());
    assert!(
        !ledger.commit_finalized(&a1).unwrap(),
        "redelivery is not applied twice"
    );
    assert!(!ledger.commit_finalized(&genesis).unwrap());
    assert!(matches!(
        ledger.commit_finalized(&b1),
        Err(ConsensusError::Conflict { height: 1, .. })
    ));
    assert_eq!(standing(&ledger, &a1), Standing::Known);
    assert!(ledger.commit_finalized(&a2).unwrap());
    assert_eq!(standing(&ledger, &a1), Standing::Committed);
    assert!(ledger.commit_finalized(&a3).unwrap());
    assert_eq!(ledger.pending_len().unwrap(), 0);
    assert_eq!(ledger.tip().unwrap(), a3.header);
}

#[test]
fn a_block_executed_without_pending_changes_commits_by_re_execution() {
    let (proposer, genesis) = ledger();
    let (follower, _) = ledger();
    let block = proposer
        .build(&genesis.hash(), vec![transfer(0, 0), transfer(1, 0)])
        .unwrap()
        .unwrap();
    assert_eq!(block.transactions.len(), 2);
    assert!(follower.commit_finalized(&block).unwrap());
    assert_eq!(
        follower.store().lock().unwrap().root(),
        block.header.state_root
    );
    let mut lying = proposer
        .build(&block.hash(), vec![transfer(0, 1)])
        .unwrap()
        .unwrap();
    lying.header.state_root = [7; 32];
    let before = follower.store().lock().unwrap().root();
    assert!(follower.commit_finalized(&lying).is_err());
    assert_eq!(follower.store().lock().unwrap().root(), before);
}
