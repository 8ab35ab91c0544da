//! Validators answer for what they attest and for the audits they are drawn to: at a round's
//! close every revealed attestation the finalized round proves wrong (another model hash, or a
//! score for a counted trainer other than the one validators holding more than half of the stake
//! gave) is slashed a tenth of its task bond, rounded up, and earns nothing; what the round cannot
//! prove wrong (a missing score, a score on which no value has more than half of the stake, any
//! hash of a round that timed out) is not slashed. A drawn auditor that leaves an audit
//! unreported to the end of the audit window forfeits its reward and is slashed the same tenth.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use cairn_ledger::accountability;
use cairn_ledger::audit::AuditError;
use cairn_ledger::query;
use cairn_ledger::round::AuditStatus;
use cairn_ledger::store::MemoryStore;
use cairn_ledger::transaction::attestation_commitment;
use cairn_ledger::{Address, Chain, Hash, Outcome, Params, Payload, TaskSpec, TaskStatus, TxError};
use cairn_round::audit::{self as audit_rules, AuditReason};
use common::*;

const REWARD: u128 = 10_000;
/// Each trainer's task bond.
const TRAINER_BOND: u128 = 205;
/// Validators 4..=7 and their weights (= task bonds), 6 000 in all. None is a multiple of ten,
/// so every slash rounds up. 4 000 (validators 6 and 7) is exactly 2/3 and finalizes; 3 000
/// (4 and 7, or 5 and 6) is exactly half, and settles no score.
const VALIDATORS: [(usize, u128); 4] = [(4, 1_005), (5, 995), (6, 2_005), (7, 1_995)];
/// The model the honest validators compute.
const MODEL: Hash = [0xaa; 32];
/// Models nobody honest computes.
const OTHER: Hash = [0xbb; 32];
const THIRD: Hash = [0xcc; 32];
const SALT: Hash = [0x5a; 32];
/// Round 0 opens at height 3 and, with 2-block windows, closes at 14; its audit window ends at
/// 16 and it vests (the one-round task settles) at 17.
const OPENED: u64 = 3;
const CLOSES: u64 = OPENED + 11;
const AUDIT_DEADLINE: u64 = CLOSES + 2;
const VESTS: u64 = AUDIT_DEADLINE + 1;

/// The fixture's one-round task, auditing each counted update with probability `audit_ppm`.
fn task_spec(audit_ppm: u32) -> TaskSpec {
    let mut spec = spec(1, (2, 2, 2), REWARD);
    spec.verification.audit_ppm = audit_ppm;
    spec
}

/// Users: 0 creator, 1..=3 trainers, 4..=7 validators (see [`VALIDATORS`]). The task is started
/// at height 3 ([`OPENED`]).
fn started(spec: TaskSpec) -> (Chain<MemoryStore>, Vec<User>) {
    started_task(spec, &VALIDATORS, TRAINER_BOND)
}

fn update_hash(trainer: usize) -> Hash {
    [trainer as u8; 32]
}

/// Trainers 1..=3 commit and reveal, and every validator votes that it holds all three updates
/// (so all three count); the tip is left at the last block of the availability window.
fn serve_updates(chain: &mut Chain<MemoryStore>, users: &mut [User]) {
    let commits = (1..=3)
        .map(|t| {
            let payload = commit_update(&users[t], 0, 0, &update_hash(t), &SALT);
            users[t].sign(payload)
        })
        .collect();
    commit(chain, commits);
    advance_to(chain, OPENED + 2);
    let reveals = (1..=3)
        .map(|t| users[t].sign(reveal_update(0, 0, &update_hash(t), &SALT)))
        .collect();
    commit(chain, reveals);
    advance_to(chain, OPENED + 4);
    let trainers: Vec<Address> = users[1..=3].iter().map(|u| u.address).collect();
    let votes = VALIDATORS
        .iter()
        .map(|(v, _)| users[*v].sign(vote_availability(0, 0, trainers.iter().copied())))
        .collect();
    commit(chain, votes);
    advance_to(chain, OPENED + 6);
}

/// One validator's attestation: who, which model, which scores.
type Attesting = (usize, Hash, BTreeMap<Address, u32>);

/// Each validator commits (in the first block of the attestation-commit window) and reveals its
/// attestation; the tip is left at the round's closing height.
fn attest(chain: &mut Chain<MemoryStore>, users: &mut [User], attestations: &[Attesting]) {
    advance_to(chain, OPENED + 6);
    let commits = attestations
        .iter()
        .map(|(v, model, scores)| {
            let commitment = attestation_commitment(&users[*v].scope(0, 0), model, scores, &SALT);
            users[*v].sign(Payload::CommitAttestation {
                task: 0,
                round: 0,
                commitment,
            })
        })
        .collect();
    commit(chain, commits);
    advance_to(chain, OPENED + 8);
    let reveals = attestations
        .iter()
        .map(|(v, model, scores)| {
            users[*v].sign(Payload::RevealAttestation {
                task: 0,
                round: 0,
                model_hash: *model,
                scores: scores.clone(),
                salt: SALT,
            })
        })
        .collect();
    commit(chain, reveals);
    advance_to(chain, CLOSES);
}

/// Scores of trainers 1, 2 and 3, in that order.
fn scores(users: &[User], values: [u32; 3]) -> BTreeMap<Address, u32> {
    users[1..=3]
        .iter()
        .zip(values)
        .map(|(trainer, score)| (trainer.address, score))
        .collect()
}

/// What every honest validator computes for trainers 1, 2 and 3.
const HONEST: [u32; 3] = [600_000, 400_000, 500_000];

/// A one-round task with no audits in which every update counts and the validators attest as
/// given; the tip is left at the round's closing height. Returns the supply before the round.
fn play(
    attestations: impl FnOnce(&[User]) -> Vec<Attesting>,
) -> (Chain<MemoryStore>, Vec<User>, u128) {
    let (mut chain, mut users) = started(task_spec(0));
    let supply = query::supply(chain.store()).unwrap();
    serve_updates(&mut chain, &mut users);
    let attestations = attestations(&users);
    attest(&mut chain, &mut users, &attestations);
    (chain, users, supply)
}

fn round(chain: &Chain<MemoryStore>) -> cairn_ledger::Round {
    query::round(chain.store(), 0, 0).unwrap().unwrap()
}

fn task(chain: &Chain<MemoryStore>) -> cairn_ledger::Task {
    query::task(chain.store(), 0).unwrap().unwrap()
}

/// A finalized round's outcome.
struct Finalized {
    scores: BTreeMap<Address, u32>,
    trainer_rewards: BTreeMap<Address, u128>,
    validator_rewards: BTreeMap<Address, u128>,
    slashed: BTreeMap<Address, u128>,
}

/// The outcome of round 0, which must have finalized [`MODEL`].
fn finalized(chain: &Chain<MemoryStore>) -> Finalized {
    match round(chain).outcome {
        Some(Outcome::Finalized {
            model_hash,
            scores,
            trainer_rewards,
            validator_rewards,
            slashed,
        }) => {
            assert_eq!(model_hash, MODEL);
            Finalized {
                scores,
                trainer_rewards,
                validator_rewards,
                slashed,
            }
        }
        other => panic!("round 0 did not finalize: {other:?}"),
    }
}

/// A tenth of `bond`, rounded up (the default `slash_fraction_ppm`), computed here rather than
/// by the ledger's arithmetic.
fn tenth(bond: u128) -> u128 {
    assert_eq!(Params::default().slash_fraction_ppm, 100_000);
    bond.div_ceil(10)
}

/// The weight (= task bond) of validator `index`.
fn weight(index: usize) -> u128 {
    VALIDATORS
        .iter()
        .find(|(v, _)| *v == index)
        .map(|(_, w)| *w)
        .expect("a validator")
}

/// Asserts that each validator's task bond is its weight less what `slashed` says it lost, and
/// its stake (genesis weight plus the 1 000 bonded in [`started`]) likewise.
fn assert_validator_bonds(
    chain: &Chain<MemoryStore>,
    users: &[User],
    slashed: &BTreeMap<Address, u128>,
) {
    let task = task(chain);
    for (v, weight) in VALIDATORS {
        let address = users[v].address;
        let lost = slashed.get(&address).copied().unwrap_or(0);
        assert_eq!(task.validators[&address], weight - lost, "validator {v}");
        let stake = query::stake(chain.store(), &address).unwrap();
        assert_eq!(stake.bonded, weight + 1_000 - lost, "validator {v}");
    }
}

#[test]
fn a_validator_revealing_another_model_hash_is_slashed_a_rounded_up_tenth_and_earns_nothing() {
    // Validator 4 (1 005) attests another model; 5, 6 and 7 (4 995 of 6 000) finalize MODEL.
    let (mut chain, users, supply) = play(|users| {
        vec![
            (4, OTHER, scores(users, HONEST)),
            (5, MODEL, scores(users, HONEST)),
            (6, MODEL, scores(users, HONEST)),
            (7, MODEL, scores(users, HONEST)),
        ]
    });
    let outcome = finalized(&chain);
    let liar = users[4].address;
    let slash = tenth(weight(4));
    assert_eq!(slash, 101, "100.5 rounds up");
    assert_eq!(outcome.slashed, BTreeMap::from([(liar, slash)]));
    assert!(!outcome.validator_rewards.contains_key(&liar));
    for honest in [5, 6, 7] {
        assert!(outcome.validator_rewards[&users[honest].address] > 0);
    }
    assert_validator_bonds(&chain, &users, &outcome.slashed);
    // The slash is burned at the close.
    assert_conserved(&chain, supply - slash);

    // After the vesting and the settlement: nothing paid to the liar, its bond unlocked less the
    // slash, every token accounted for.
    advance_to(&mut chain, VESTS);
    assert_eq!(task(&chain).status, TaskStatus::Settled);
    assert_eq!(query::rewards(chain.store(), &liar).unwrap(), 0);
    let stake = query::stake(chain.store(), &liar).unwrap();
    assert_eq!((stake.bonded, stake.locked), (weight(4) + 1_000 - slash, 0));
    for honest in [5, 6, 7] {
        let address = users[honest].address;
        assert_eq!(
            query::rewards(chain.store(), &address).unwrap(),
            outcome.validator_rewards[&address]
        );
    }
    assert_conserved(&chain, supply - slash);
}

#[test]
fn a_validator_scoring_a_trainer_against_more_than_half_of_the_stake_is_slashed_and_earns_nothing()
{
    // Validators 6 and 7 (4 000 of 6 000, more than half) give the honest scores. Validator 5
    // inflates its friend (trainer 2) from 400 000 to 430 000, inside the 10% band the median's
    // clipping tolerates; validator 4 copies trainer 1's score for its friend trainer 3. Both
    // attest the right model.
    let (chain, users, supply) = play(|users| {
        vec![
            (4, MODEL, scores(users, [600_000, 400_000, 600_000])),
            (5, MODEL, scores(users, [600_000, 430_000, 500_000])),
            (6, MODEL, scores(users, HONEST)),
            (7, MODEL, scores(users, HONEST)),
        ]
    });
    let outcome = finalized(&chain);
    let (copier, inflater) = (users[4].address, users[5].address);
    let expected = BTreeMap::from([(copier, tenth(weight(4))), (inflater, tenth(weight(5)))]);
    assert_eq!(tenth(weight(5)), 100, "99.5 rounds up");
    assert_eq!(outcome.slashed, expected);
    // Only the honest validators are paid.
    let rewarded: BTreeSet<Address> = outcome.validator_rewards.keys().copied().collect();
    assert_eq!(
        rewarded,
        BTreeSet::from([users[6].address, users[7].address])
    );
    // Every trainer's consensus score is exactly the honest one: the wrong scores are not
    // counted at all, not even clipped.
    assert_eq!(outcome.scores, scores(&users, HONEST));
    let (first, second, third) = (users[1].address, users[2].address, users[3].address);
    assert!(outcome.trainer_rewards[&first] > outcome.trainer_rewards[&third]);
    assert!(outcome.trainer_rewards[&third] > outcome.trainer_rewards[&second]);
    assert_validator_bonds(&chain, &users, &outcome.slashed);
    assert_conserved(&chain, supply - expected.values().sum::<u128>());
}

#[test]
fn no_score_is_judged_where_no_value_has_more_than_half_of_the_stake() {
    // Trainer 1: the honest validators 6 and 7 (4 000) split 2 005 / 1 995 between two values,
    // 4 and 5 (2 000) give a third: no value has more than 3 000. Trainer 2: two values with
    // exactly half each (4 and 7, 5 and 6). Trainer 3: all agree, and nobody is wrong.
    let (chain, users, supply) = play(|users| {
        vec![
            (4, MODEL, scores(users, [480_000, 400_000, 500_000])),
            (5, MODEL, scores(users, [480_000, 410_000, 500_000])),
            (6, MODEL, scores(users, [500_000, 410_000, 500_000])),
            (7, MODEL, scores(users, [520_000, 400_000, 500_000])),
        ]
    });
    let outcome = finalized(&chain);
    assert!(outcome.slashed.is_empty(), "{:?}", outcome.slashed);
    assert!(round(&chain).penalties.is_empty());
    // Only trainer 3's score is settled.
    let task = task(&chain);
    assert_eq!(
        accountability::settled_scores(&task, &round(&chain), &MODEL),
        BTreeMap::from([(users[3].address, 500_000)])
    );
    assert!(accountability::provably_wrong(&task, &round(&chain), &MODEL).is_empty());
    assert_validator_bonds(&chain, &users, &BTreeMap::new());
    assert_conserved(&chain, supply);
}

#[test]
fn a_score_backed_by_just_over_half_of_the_stake_settles_and_the_rest_are_slashed() {
    // Trainer 2: 4 and 6 (3 010 of 6 000) give 400 000, 5 and 7 (2 990) give 410 000.
    let (chain, users, supply) = play(|users| {
        vec![
            (4, MODEL, scores(users, HONEST)),
            (5, MODEL, scores(users, [600_000, 410_000, 500_000])),
            (6, MODEL, scores(users, HONEST)),
            (7, MODEL, scores(users, [600_000, 410_000, 500_000])),
        ]
    });
    let outcome = finalized(&chain);
    let expected = BTreeMap::from([
        (users[5].address, tenth(weight(5))),
        (users[7].address, tenth(weight(7))),
    ]);
    assert_eq!(outcome.slashed, expected);
    assert_eq!(outcome.scores, scores(&users, HONEST));
    let rewarded: BTreeSet<Address> = outcome.validator_rewards.keys().copied().collect();
    assert_eq!(
        rewarded,
        BTreeSet::from([users[4].address, users[6].address])
    );
    assert_validator_bonds(&chain, &users, &outcome.slashed);
    assert_conserved(&chain, supply - expected.values().sum::<u128>());
}

#[test]
fn a_validator_that_omits_its_scores_is_not_slashed_and_earns_no_validator_reward() {
    // Validator 5 attests the model with no scores at all; validator 4 leaves out trainer 2.
    let (chain, users, supply) = play(|users| {
        let mut partial = scores(users, HONEST);
        partial.remove(&users[2].address);
        vec![
            (4, MODEL, partial),
            (5, MODEL, BTreeMap::new()),
            (6, MODEL, scores(users, HONEST)),
            (7, MODEL, scores(users, HONEST)),
        ]
    });
    let outcome = finalized(&chain);
    // A missing score is shirking, not a lie.
    assert!(outcome.slashed.is_empty(), "{:?}", outcome.slashed);
    assert_validator_bonds(&chain, &users, &BTreeMap::new());
    assert!(!outcome.validator_rewards.contains_key(&users[5].address));
    // The partial one earns, per unit of bond, less than a validator that scored everyone.
    let partial = outcome.validator_rewards[&users[4].address];
    let full = outcome.validator_rewards[&users[6].address];
    assert!(partial > 0);
    assert!(
        partial * weight(6) < full * weight(4),
        "{partial} vs {full}"
    );
    assert_eq!(outcome.scores, scores(&users, HONEST));
    assert_conserved(&chain, supply);
}

#[test]
fn a_timed_out_round_slashes_nobody_for_wrong_hashes() {
    // MODEL has 4 and 6 (3 010 of 6 000): a majority, not 2/3. 5 and 7 attest two other models.
    let (chain, users, supply) = play(|users| {
        vec![
            (4, MODEL, scores(users, HONEST)),
            (5, OTHER, scores(users, HONEST)),
            (6, MODEL, scores(users, HONEST)),
            (7, THIRD, scores(users, [0, 0, 1_000_000])),
        ]
    });
    let round = round(&chain);
    let Some(Outcome::TimedOut { slashed }) = &round.outcome else {
        panic!("the round did not time out: {:?}", round.outcome);
    };
    assert!(slashed.is_empty(), "{slashed:?}");
    assert_eq!(query::model_hash(chain.store(), 0, 0).unwrap(), None);
    assert_validator_bonds(&chain, &users, &BTreeMap::new());
    assert_conserved(&chain, supply);
}

/// The trainers each auditor was drawn to audit.
type Assignments = BTreeMap<Address, Vec<Address>>;

/// A one-round task auditing every counted update, played with every validator attesting the
/// honest model (so each earns a validator reward); the tip is left at the round's closing
/// height. Returns the supply before the round and, per auditor, the trainers it must audit.
fn audited_round() -> (Chain<MemoryStore>, Vec<User>, u128, Assignments) {
    let (mut chain, mut users) = started(task_spec(1_000_000));
    let supply = query::supply(chain.store()).unwrap();
    serve_updates(&mut chain, &mut users);
    let attestations: Vec<Attesting> = VALIDATORS
        .iter()
        .map(|(v, _)| (*v, MODEL, scores(&users, HONEST)))
        .collect();
    attest(&mut chain, &mut users, &attestations);
    let outcome = finalized(&chain);
    assert!(outcome.slashed.is_empty());
    for (v, _) in VALIDATORS {
        assert!(outcome.validator_rewards[&users[v].address] > 0);
    }

    // Every counted trainer is audited, by the validators `cairn_round::audit` draws.
    let round = round(&chain);
    let trainers: BTreeMap<Address, Hash> = (1..=3)
        .map(|t| (users[t].address, update_hash(t)))
        .collect();
    let validators: Vec<Address> = task(&chain).validators.keys().copied().collect();
    let seed = round.audit_seed.expect("drawn");
    let drawn = audit_rules::draw(&seed, &trainers, &BTreeSet::new(), &validators, 1_000_000);
    assert_eq!(
        round.audits.keys().collect::<Vec<_>>(),
        trainers.keys().collect::<Vec<_>>()
    );
    let mut assignments = Assignments::new();
    for (trainer, audit) in &round.audits {
        let (reason, auditors) = &drawn[trainer];
        assert_eq!(
            (audit.reason, *reason),
            (AuditReason::Drawn, AuditReason::Drawn)
        );
        assert_eq!(
            audit.auditors.keys().collect::<Vec<_>>(),
            auditors.iter().collect::<Vec<_>>()
        );
        assert_eq!(auditors.len(), audit_rules::AUDITORS_PER_TRAINER);
        for (auditor, status) in &audit.auditors {
            assert_eq!(*status, AuditStatus::Assigned);
            assignments.entry(*auditor).or_default().push(*trainer);
        }
    }
    (chain, users, supply, assignments)
}

fn report(auditor: &mut User, trainer: Address) -> cairn_ledger::SignedTransaction {
    auditor.sign(Payload::ReportAudit {
        task: 0,
        round: 0,
        trainer,
    })
}

/// The index in `users` of the validator with this address.
fn index_of(users: &[User], address: &Address) -> usize {
    users
        .iter()
        .position(|u| u.address == *address)
        .expect("a user")
}

/// Asserts the vesting of round 0 forfeited exactly the rewards of `slashed` auditors, paid
/// every other validator, penalized exactly `slashed` a rounded-up tenth of their bonds, and
/// (the task settled) returned the forfeited rewards to the creator.
fn assert_vested(
    chain: &Chain<MemoryStore>,
    users: &[User],
    supply: u128,
    slashed: &BTreeSet<Address>,
) {
    let outcome = finalized(chain);
    let round = round(chain);
    let penalties: BTreeMap<Address, u128> = slashed
        .iter()
        .map(|a| (*a, tenth(weight(index_of(users, a)))))
        .collect();
    assert_eq!(round.penalties, penalties);
    // Nothing was slashed at the close: the penalty is the audit's.
    assert!(outcome.slashed.is_empty());
    let vesting = round.vesting.expect("finalized");
    assert!(vesting.done);
    let forfeited: BTreeMap<Address, u128> = slashed
        .iter()
        .map(|a| (*a, outcome.validator_rewards[a]))
        .collect();
    assert_eq!(vesting.forfeited, forfeited);
    for (v, _) in VALIDATORS {
        let address = users[v].address;
        let earned = query::rewards(chain.store(), &address).unwrap();
        let expected = if slashed.contains(&address) {
            0
        } else {
            outcome.validator_rewards[&address]
        };
        assert_eq!(earned, expected, "validator {v}");
    }
    assert_validator_bonds(chain, users, &penalties);
    let burned: u128 = penalties.values().sum();
    assert_conserved(chain, supply - burned);
    // The task settled at the same height: the forfeited rewards went back to the creator.
    assert_eq!(task(chain).status, TaskStatus::Settled);
    let paid: u128 = outcome
        .trainer_rewards
        .values()
        .chain(outcome.validator_rewards.values())
        .sum();
    let refunded: u128 = forfeited.values().sum();
    assert_eq!(
        query::balance(chain.store(), &users[0].address).unwrap(),
        BALANCE - paid + refunded
    );
    for (v, _) in VALIDATORS {
        assert_eq!(
            query::stake(chain.store(), &users[v].address)
                .unwrap()
                .locked,
            0
        );
    }
}

#[test]
fn a_drawn_auditor_that_never_reports_forfeits_its_reward_and_is_slashed_and_one_that_reports_is_not(
) {
    let (mut chain, mut users, supply, assignments) = audited_round();
    // The first auditor drawn for trainer 1 never reports; every other auditor reports each of
    // its audits in the last block of the audit window. (Six audits among four validators: the
    // silent one has at most three, so at least one other validator reports.)
    let silent = *round(&chain).audits[&users[1].address]
        .auditors
        .keys()
        .next()
        .expect("two auditors");
    assert!(assignments.keys().any(|a| *a != silent));
    advance_to(&mut chain, AUDIT_DEADLINE - 1);
    let reports = assignments
        .iter()
        .filter(|(auditor, _)| **auditor != silent)
        .flat_map(|(auditor, trainers)| trainers.iter().map(|t| (*auditor, *t)))
        .map(|(auditor, trainer)| {
            let index = index_of(&users, &auditor);
            report(&mut users[index], trainer)
        })
        .collect();
    commit(&mut chain, reports);
    assert_eq!(chain.tip().height, AUDIT_DEADLINE);
    // Nothing is decided before the vesting.
    assert!(round(&chain).penalties.is_empty());
    assert_validator_bonds(&chain, &users, &BTreeMap::new());

    advance_to(&mut chain, VESTS);
    assert_vested(&chain, &users, supply, &BTreeSet::from([silent]));

    // Reporting after the window is refused: the penalty stands.
    let index = index_of(&users, &silent);
    let late = users[index].sign_with_nonce(
        users[index].nonce,
        Payload::ReportAudit {
            task: 0,
            round: 0,
            trainer: users[1].address,
        },
    );
    let error = expect_rejected(&mut chain, vec![late]);
    assert!(
        matches!(&error, TxError::Audit(AuditError::WindowClosed(deadline)) if *deadline == AUDIT_DEADLINE),
        "{error:?}"
    );
    assert_vested(&chain, &users, supply, &BTreeSet::from([silent]));
}

#[test]
fn an_auditor_that_reports_only_some_of_its_audits_is_slashed_once() {
    let (mut chain, mut users, supply, assignments) = audited_round();
    // Six audits among four validators: some validator has at least two. It reports all but its
    // last one; every other auditor reports everything.
    let (partial, trainers) = assignments
        .iter()
        .max_by_key(|(_, trainers)| trainers.len())
        .map(|(a, t)| (*a, t.clone()))
        .expect("auditors");
    assert!(trainers.len() >= 2);
    let skipped = *trainers.last().expect("two audits");
    let reports = assignments
        .iter()
        .flat_map(|(auditor, trainers)| trainers.iter().map(|t| (*auditor, *t)))
        .filter(|(auditor, trainer)| (*auditor, *trainer) != (partial, skipped))
        .map(|(auditor, trainer)| {
            let index = index_of(&users, &auditor);
            report(&mut users[index], trainer)
        })
        .collect();
    commit(&mut chain, reports);
    let audits = round(&chain).audits;
    assert_eq!(audits[&skipped].auditors[&partial], AuditStatus::Assigned);
    let passed = audits
        .values()
        .flat_map(|audit| audit.auditors.values())
        .filter(|status| **status == AuditStatus::Passed)
        .count();
    assert_eq!(passed, 2 * 3 - 1);

    advance_to(&mut chain, VESTS);
    assert_vested(&chain, &users, supply, &BTreeSet::from([partial]));
}
