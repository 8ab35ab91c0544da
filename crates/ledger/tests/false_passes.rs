//! Auditors answer for the audits they pass: when the ledger's referee re-executes a disputed
//! step and finds a trainer's update wrong, every auditor of that update that had reported its
//! re-run as matching (`ReportAudit`) is slashed a tenth of its task bond, rounded up, since an
//! honest re-run could not have matched. A trainer that loses by silence may have done honest
//! work, and one that wins proves its auditors right: neither touches the auditors that passed
//! it.

mod common;
mod trained_round;

use std::collections::{BTreeMap, BTreeSet};

use cairn_ledger::dispute::{DisputeError, Party, Reason};
use cairn_ledger::query::{self, Snapshot};
use cairn_ledger::round::AuditStatus;
use cairn_ledger::{Address, Params, Payload, Round, TaskStatus, TxError};
use cairn_round::audit::{self as audit_rules, AuditReason};
use cairn_round::params;
use common::*;
use trained_round::*;

/// Every counted update is audited.
const ALWAYS: u32 = 1_000_000;

/// A tenth of `bond`, rounded up (the default `slash_fraction_ppm`), computed here rather than
/// by the ledger's arithmetic.
fn tenth(bond: u128) -> u128 {
    assert_eq!(Params::default().slash_fraction_ppm, 100_000);
    bond.div_ceil(10)
}

fn round(fixture: &Fixture) -> Round {
    query::round(fixture.chain.store(), 0, 0).unwrap().unwrap()
}

/// Moves to the block that draws the audits and returns, for each trainer (1 and 2), the user
/// indices of the validators drawn to audit it, checked against `cairn_round::audit::draw`.
fn draw(fixture: &mut Fixture) -> BTreeMap<usize, Vec<usize>> {
    let height = fixture.chain.tip().height;
    advance_to(&mut fixture.chain, height + 1);
    let round = round(fixture);
    let seed = round.audit_seed.expect("audits drawn");
    let revealed: BTreeMap<Address, cairn_ledger::Hash> = (1..=2)
        .map(|t| {
            let update = &fixture.work[t - 1].update;
            (fixture.users[t].address, params::hash(update))
        })
        .collect();
    let task = query::task(fixture.chain.store(), 0).unwrap().unwrap();
    let validators: Vec<Address> = task.validators.keys().copied().collect();
    let drawn = audit_rules::draw(&seed, &revealed, &BTreeSet::new(), &validators, ALWAYS);
    assert_eq!(
        round.audits.keys().collect::<Vec<_>>(),
        revealed.keys().collect::<Vec<_>>(),
        "every counted trainer is audited"
    );
    let mut auditors = BTreeMap::new();
    for t in 1..=2 {
        let audit = &round.audits[&fixture.users[t].address];
        let (reason, expected) = &drawn[&fixture.users[t].address];
        assert_eq!(
            (audit.reason, *reason),
            (AuditReason::Drawn, AuditReason::Drawn)
        );
        assert_eq!(
            audit.auditors.keys().collect::<Vec<_>>(),
            expected.iter().collect::<Vec<_>>()
        );
        assert!(audit
            .auditors
            .values()
            .all(|status| *status == AuditStatus::Assigned));
        let indices: Vec<usize> = audit.auditors.keys().map(|a| fixture.index_of(a)).collect();
        auditors.insert(t, indices);
    }
    auditors
}

/// The two validators drawn to audit `trainer`: (the one that will challenge, the one that will
/// report a pass).
fn challenger_and_passer(auditors: &BTreeMap<usize, Vec<usize>>, trainer: usize) -> (usize, usize) {
    match auditors[&trainer][..] {
        [challenger, passer] => (challenger, passer),
        ref other => panic!("trainer {trainer} has auditors {other:?}, not two"),
    }
}

/// Validator `auditor` reports that its re-run of trainer `trainer`'s round matched, in a block
/// of its own (it did not re-run anything).
fn report_pass(fixture: &mut Fixture, auditor: usize, trainer: usize) {
    let address = fixture.users[trainer].address;
    let report = fixture.users[auditor].sign(Payload::ReportAudit {
        task: 0,
        round: 0,
        trainer: address,
    });
    commit(&mut fixture.chain, vec![report]);
    assert_eq!(
        round(fixture).audits[&address].auditors[&fixture.users[auditor].address],
        AuditStatus::Passed
    );
}

/// Asserts validator `v`'s task bond and stake (genesis weight plus [`BONDED`]) are what they
/// were less `lost`, and that `locked` of it is locked.
fn assert_validator(fixture: &Fixture, v: usize, lost: u128, locked: u128) {
    let address = fixture.users[v].address;
    let task = query::task(fixture.chain.store(), 0).unwrap().unwrap();
    assert_eq!(
        task.validators[&address],
        VALIDATOR_BOND - lost,
        "validator {v}"
    );
    let stake = query::stake(fixture.chain.store(), &address).unwrap();
    assert_eq!(
        (stake.bonded, stake.locked),
        (VALIDATOR_BOND + BONDED - lost, locked),
        "validator {v}"
    );
}

/// Asserts that the supply is `supply` and every token of it is held somewhere.
fn assert_conserved(fixture: &Fixture, supply: u128) {
    let snapshot = Snapshot::read(fixture.chain.store()).unwrap();
    let height = fixture.chain.tip().height;
    assert_eq!(snapshot.supply, supply, "supply at height {height}");
    assert_eq!(
        snapshot.holdings(),
        Some(snapshot.supply),
        "holdings differ from the supply at height {height}"
    );
}

#[test]
fn an_auditor_that_passed_an_update_the_referee_proves_wrong_is_slashed_a_rounded_up_tenth() {
    let mut fixture = fixture_auditing(ALWAYS);
    let supply = query::supply(fixture.chain.store()).unwrap();
    let auditors = draw(&mut fixture);
    // Trainer 2 revealed its update doubled. One of its auditors reports a pass without
    // re-running; the other re-runs, challenges, and plays the dispute to the referee.
    let (challenger, passer) = challenger_and_passer(&auditors, 2);
    report_pass(&mut fixture, passer, 2);
    // It passed honest trainer 1 too, if drawn for it: that pass stays unpunished.
    if auditors[&1].contains(&passer) {
        report_pass(&mut fixture, passer, 1);
    }
    let root = fixture.work[1].honest_root;
    let id = challenge(&mut fixture, challenger, 2, root);
    let (dispute, _) = play_out(&mut fixture, id, Silent::Nobody);
    let ended = resolution(&dispute);
    assert_eq!(
        (ended.winner, ended.reason),
        (Party::Challenger, Reason::Referee)
    );

    let (liar, passer_address) = (fixture.users[2].address, fixture.users[passer].address);
    let slash = tenth(VALIDATOR_BOND);
    assert_eq!(slash, 41, "40.5 rounds up");
    let penalties = BTreeMap::from([(liar, TRAINER_BOND), (passer_address, slash)]);
    let record = round(&fixture);
    assert_eq!(record.penalties, penalties);
    assert_eq!(
        record.audits[&liar].auditors,
        BTreeMap::from([
            (passer_address, AuditStatus::Passed),
            (fixture.users[challenger].address, AuditStatus::Challenged),
        ])
    );
    // The passer loses the tenth from its task bond and its locked stake; the challenger has its
    // challenge bond back and keeps everything.
    assert_validator(&fixture, passer, slash, VALIDATOR_BOND - slash);
    assert_validator(&fixture, challenger, 0, VALIDATOR_BOND);
    // Both slashes are burned.
    assert_conserved(&fixture, supply - TRAINER_BOND - slash);

    // The task settles: the passer's remaining bond is unlocked, and nothing more is taken.
    advance_to(&mut fixture.chain, dispute.deadline + 20);
    let task = query::task(fixture.chain.store(), 0).unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Settled);
    let stake = query::stake(fixture.chain.store(), &passer_address).unwrap();
    assert_eq!(
        (stake.bonded, stake.locked),
        (VALIDATOR_BOND + BONDED - slash, 0)
    );
    assert_eq!(round(&fixture).penalties, penalties);
    assert_conserved(&fixture, supply - TRAINER_BOND - slash);
}

#[test]
fn an_auditor_that_passed_a_trainer_that_loses_by_silence_is_not_slashed() {
    let mut fixture = fixture_auditing(ALWAYS);
    let supply = query::supply(fixture.chain.store()).unwrap();
    let auditors = draw(&mut fixture);
    let (challenger, passer) = challenger_and_passer(&auditors, 2);
    report_pass(&mut fixture, passer, 2);
    let root = fixture.work[1].honest_root;
    let id = challenge(&mut fixture, challenger, 2, root);
    let (dispute, _) = play_out(&mut fixture, id, Silent::Trainer);
    let ended = resolution(&dispute);
    assert_eq!(
        (ended.winner, ended.reason),
        (Party::Challenger, Reason::Silence)
    );
    assert_eq!(ended.referee_steps, 0, "no step was re-executed");

    // The trainer loses its bond; the pass stands on the record, unpunished.
    let liar = fixture.users[2].address;
    let record = round(&fixture);
    assert_eq!(record.penalties, BTreeMap::from([(liar, TRAINER_BOND)]));
    assert_eq!(
        record.audits[&liar].auditors[&fixture.users[passer].address],
        AuditStatus::Passed
    );
    assert_validator(&fixture, passer, 0, VALIDATOR_BOND);
    assert_validator(&fixture, challenger, 0, VALIDATOR_BOND);
    assert_conserved(&fixture, supply - TRAINER_BOND);
}

#[test]
fn an_auditor_that_passed_an_honest_trainer_that_wins_a_challenge_is_not_slashed() {
    let mut fixture = fixture_auditing(ALWAYS);
    let supply = query::supply(fixture.chain.store()).unwrap();
    let auditors = draw(&mut fixture);
    // Trainer 1 is honest and its pass is right. The other auditor challenges it with a root
    // that is not its trace's, then answers every claim honestly: the bisection ends at the last
    // step, which the referee confirms.
    let (challenger, passer) = challenger_and_passer(&auditors, 1);
    report_pass(&mut fixture, passer, 1);
    let trainer = fixture.users[1].address;
    let before = query::balance(fixture.chain.store(), &trainer).unwrap();
    let false_root = [0xcc; 32];
    assert_ne!(false_root, fixture.work[0].honest_root);
    let id = challenge(&mut fixture, challenger, 1, false_root);
    let (dispute, _) = play_out(&mut fixture, id, Silent::Nobody);
    let ended = resolution(&dispute);
    assert_eq!(
        (ended.winner, ended.reason),
        (Party::Trainer, Reason::Referee)
    );
    assert_eq!(ended.referee_steps, 1);

    // Only the challenger pays: its challenge bond, to the trainer.
    let record = round(&fixture);
    let challenger_address = fixture.users[challenger].address;
    assert_eq!(
        record.penalties,
        BTreeMap::from([(challenger_address, CHALLENGE_BOND)])
    );
    assert_eq!(
        record.audits[&trainer].auditors[&fixture.users[passer].address],
        AuditStatus::Passed
    );
    assert_validator(&fixture, passer, 0, VALIDATOR_BOND);
    let stake = query::stake(fixture.chain.store(), &challenger_address).unwrap();
    assert_eq!(
        (stake.bonded, stake.locked),
        (VALIDATOR_BOND + BONDED - CHALLENGE_BOND, VALIDATOR_BOND)
    );
    assert_eq!(
        query::balance(fixture.chain.store(), &trainer).unwrap(),
        before + CHALLENGE_BOND
    );
    // Nothing is burned: the challenge bond changed hands.
    assert_conserved(&fixture, supply);
}

/// Plays every dispute in `ids` at once ([`next_move`]: the trainer must move in each, or lose
/// one by silence), until none is open. A move in a dispute that an earlier transaction of the
/// same block ended is refused, and only that is allowed.
fn play_together(fixture: &mut Fixture, ids: &[u64]) {
    for _ in 0..200 {
        let disputes: Vec<_> = ids
            .iter()
            .map(|id| query::dispute(fixture.chain.store(), *id).unwrap().unwrap())
            .collect();
        if disputes.iter().all(|d| !d.is_open()) {
            return;
        }
        let moves: Vec<_> = disputes
            .iter()
            .filter_map(|d| next_move(fixture, d, Silent::Nobody))
            .collect();
        let transactions = moves
            .into_iter()
            .map(|(user, payload)| fixture.users[user].sign(payload))
            .collect();
        let (_, rejected) = fixture.chain.propose_and_apply(transactions).unwrap();
        for (_, error) in &rejected {
            assert!(
                matches!(error, TxError::Dispute(DisputeError::Resolved(_))),
                "{error:?}"
            );
        }
    }
    panic!("the disputes did not end");
}

#[test]
fn an_auditor_that_passed_cannot_escape_its_slash_by_challenging_after_another_auditor() {
    let mut fixture = fixture_auditing(ALWAYS);
    let supply = query::supply(fixture.chain.store()).unwrap();
    let auditors = draw(&mut fixture);
    let (challenger, passer) = challenger_and_passer(&auditors, 2);
    report_pass(&mut fixture, passer, 2);
    let root = fixture.work[1].honest_root;
    let first = challenge(&mut fixture, challenger, 2, root);
    // Once the other auditor's challenge is on the ledger, the passer challenges too, with any
    // root but the committed one, in the block of the trainer's first move.
    let opened = query::dispute(fixture.chain.store(), first)
        .unwrap()
        .unwrap();
    let (user, payload) = next_move(&fixture, &opened, Silent::Nobody).expect("a claim is due");
    let trainer = fixture.users[2].address;
    let moves = vec![
        fixture.users[user].sign(payload),
        fixture.users[passer].sign(Payload::Challenge {
            task: 0,
            round: 0,
            trainer,
            trace_root: [0x77; 32],
        }),
    ];
    commit(&mut fixture.chain, moves);
    let ids: Vec<u64> = round(&fixture).disputes.into_iter().collect();
    assert_eq!(ids.len(), 2);
    play_together(&mut fixture, &ids);
    let ended = resolution(
        &query::dispute(fixture.chain.store(), first)
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        (ended.winner, ended.reason),
        (Party::Challenger, Reason::Referee)
    );

    // Its pass was on the record before it challenged, and it pays for it.
    let slash = tenth(VALIDATOR_BOND);
    let passer_address = fixture.users[passer].address;
    assert_eq!(
        round(&fixture).penalties,
        BTreeMap::from([(trainer, TRAINER_BOND), (passer_address, slash)])
    );
    assert_validator(&fixture, passer, slash, VALIDATOR_BOND - slash);
    assert_conserved(&fixture, supply - TRAINER_BOND - slash);
}
