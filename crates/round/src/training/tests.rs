use cairn_ml::model::Model;
use cairn_ml::optim::Optimizer;
use cairn_ml::train::{local_train, LocalTrainConfig};

use super::*;
use crate::fixtures;
use crate::trace::{leaf_index, leaf_steps};

#[test]
fn training_matches_the_ml_local_run_step_for_step() {
    let plan = fixtures::toy_plan("sgd:lr=0.5,momentum=0.9,batch=16", 23, 5);
    let assignment = fixtures::assignment(&plan, 2, [3; 32]);
    let work = assignment.train().unwrap();
    let model = Model::new(plan.model.clone(), assignment.start.to_vec()).unwrap();
    let mut optimizer = Optimizer::new(&plan.optimizer, plan.param_count()).unwrap();
    let config = LocalTrainConfig {
        steps: 23,
        batch_size: 16,
        seed: assignment.run.seed,
        trace_every: 5,
    };
    let reference =
        local_train(&model, &mut optimizer, &assignment.run.shard.data, &config).unwrap();
    assert_eq!(
        delta(&reference.params, &assignment.start).unwrap(),
        work.update
    );
}

#[test]
fn the_trace_holds_the_start_every_kth_step_and_the_update() {
    let plan = fixtures::toy_plan("adam:lr=0.05,batch=8", 12, 5);
    let assignment = fixtures::assignment(&plan, 1, [9; 32]);
    let work = assignment.train().unwrap();
    assert_eq!(work.leaves.len(), 4, "steps 0, 5, 10, 12");
    let start = Checkpoint::start(
        crate::params::hash(&assignment.start),
        assignment.run.fresh_optimizer_hash().unwrap(),
    );
    assert_eq!(work.leaves[0], start.hash());
    for step in leaf_steps(12, 5) {
        let index = leaf_index(step, 12, 5).unwrap();
        assert_eq!(
            assignment.checkpoint(step).unwrap().hash(),
            work.leaves[index],
            "step {step}"
        );
    }
    assert_eq!(work.last.step, 12);
    assert_eq!(work.last.update, crate::params::hash(&work.update));
    assert_eq!(*work.leaves.last().unwrap(), work.last.hash());
    assert!(trace::verify(
        &work.trace_root(),
        work.leaves.len(),
        work.leaves.len() - 1,
        &work.last.hash(),
        &work.last_proof()
    ));
    // Between leaves, a checkpoint is a step's own claim, not a leaf.
    let middle = assignment.checkpoint(7).unwrap();
    assert_eq!(middle.step, 7);
    assert_eq!(middle.update, ZERO_HASH);
    assert_eq!(middle.batch, assignment.run.batch_hash(6).unwrap());
}

#[test]
fn work_is_a_function_of_the_inputs_alone() {
    let plan = fixtures::toy_plan("sgd:lr=0.5,batch=16", 10, 3);
    let first = fixtures::assignment(&plan, 1, [1; 32]).train().unwrap();
    assert_eq!(
        fixtures::assignment(&plan, 1, [1; 32]).train().unwrap(),
        first
    );
    let other_round = fixtures::assignment(&plan, 1, [2; 32]).train().unwrap();
    let other_trainer = fixtures::assignment(&plan, 3, [1; 32]).train().unwrap();
    assert_ne!(other_round.trace_root(), first.trace_root());
    assert_ne!(other_trainer.trace_root(), first.trace_root());
}

#[test]
fn witnesses_carry_the_state_and_the_input_model_only_at_the_last_step() {
    let plan = fixtures::toy_plan("adam:lr=0.05,batch=8", 6, 2);
    let assignment = fixtures::assignment(&plan, 4, [5; 32]);
    for step in 0..6 {
        let witness = assignment.witness(step).unwrap();
        assert_eq!(witness.model.is_some(), step == 5);
        let bytes = witness.encode();
        assert_eq!(
            bytes.len() as u64,
            crate::witness::encoded_len(&plan, step, false)
        );
        assert_eq!(Witness::decode(&bytes, &plan, step).unwrap(), witness);
        let state = assignment.state_at(step).unwrap();
        assert_eq!(witness.params, state.model.params());
    }
    assert!(matches!(
        assignment.witness(6),
        Err(TrainerError::StepOutOfRange { step: 6, steps: 6 })
    ));
    assert!(assignment.state_at(7).is_err());
}

#[test]
fn shards_split_the_train_split_among_sorted_trainers() {
    let plan = fixtures::toy_plan("sgd:lr=0.5", 4, 2);
    let trainers = fixtures::trainers();
    let parts = shards(&plan, 0, &trainers).unwrap();
    let mut all: Vec<usize> = parts.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..plan.dataset.split.train.len()).collect::<Vec<_>>());
    let shard = shard_of(&plan, 0, &trainers, &trainers[1]).unwrap();
    assert_eq!(shard.indices, parts[1]);
    assert!(matches!(
        shard_of(&plan, 0, &trainers, &Address([9; 20])),
        Err(TrainerError::NotMember(_))
    ));
}

#[test]
fn batch_seeds_differ_between_trainers_and_rounds() {
    let one = Address([1; 20]);
    let two = Address([2; 20]);
    assert_ne!(batch_seed(&[0; 32], &one), batch_seed(&[0; 32], &two));
    assert_ne!(batch_seed(&[0; 32], &one), batch_seed(&[1; 32], &one));
}

#[test]
fn replays_start_from_remembered_states_and_give_the_same_checkpoints() {
    let plan = fixtures::toy_plan("adam:lr=0.05,batch=8", 40, 5);
    let fresh = |at: u32| {
        fixtures::assignment(&plan, 1, [4; 32])
            .checkpoint(at)
            .unwrap()
    };
    let assignment = fixtures::assignment(&plan, 1, [4; 32]);
    // A bisection's claims: 20 (agreed), 30 (disputed), 25, 22, 21, then the witness at 21.
    let mut expected_steps = 0;
    for (at, from) in [(20, 0), (30, 20), (25, 20), (22, 20), (21, 20)] {
        assert_eq!(assignment.checkpoint(at).unwrap(), fresh(at), "step {at}");
        expected_steps += at - from;
        assert_eq!(assignment.replayed_steps(), u64::from(expected_steps));
    }
    let witness = assignment.witness(21).unwrap();
    assert_eq!(
        witness,
        fixtures::assignment(&plan, 1, [4; 32]).witness(21).unwrap()
    );
    assert_eq!(assignment.replayed_steps(), u64::from(expected_steps));
    // A clone remembers nothing and still agrees.
    let clone = assignment.clone();
    assert_eq!(clone.checkpoint(7).unwrap(), fresh(7));
    assert_eq!(clone.replayed_steps(), 7);
    // More states than the memo keeps: the oldest go, answers stay exact.
    for at in 1..=REPLAY_MEMO as u32 + 3 {
        assert_eq!(assignment.checkpoint(at).unwrap(), fresh(at));
    }
    assert_eq!(assignment.checkpoint(40).unwrap(), fresh(40));
}

#[test]
fn worker_momentum_is_delta_first_then_an_exact_moving_average() {
    let delta = [1.0f32, -2.0, 0.5];
    // A trainer's first round, or no momentum: the update itself.
    assert_eq!(carry_momentum(None, &delta, 0.9), delta.to_vec());
    assert_eq!(
        carry_momentum(Some(&[7.0, 7.0, 7.0]), &delta, 0.0),
        delta.to_vec()
    );
    // Then β m + (1 − β) Δ, element by element, in f32 as written.
    let previous = [3.0f32, 1.0, -1.0];
    let beta = 0.75f32;
    let carried = carry_momentum(Some(&previous), &delta, beta);
    let expected: Vec<f32> = previous
        .iter()
        .zip(&delta)
        .map(|(m, d)| beta * m + (1.0 - beta) * d)
        .collect();
    assert_eq!(carried, expected);
    assert_eq!(carried, vec![2.5, 0.25, -0.625]);
    // A previous vector of another length (another task's) is not carried.
    assert_eq!(carry_momentum(Some(&[1.0]), &delta, beta), delta.to_vec());
}

#[test]
fn worker_momentum_over_rounds_replays_bit_for_bit_from_the_public_updates() {
    // A trainer's momentum is a function of its own deltas, which audits re-execute: carrying
    // it again from the replayed deltas gives the very bytes sent.
    let plan = fixtures::toy_plan("sgd:lr=0.5,momentum=0.9,batch=16", 12, 4);
    let mut sent: Option<Vec<f32>> = None;
    let mut model = fixtures::initial(&plan);
    let mut history = Vec::new();
    for round in 0u8..3 {
        let assignment = fixtures::assignment(&plan, 1, [round; 32]);
        let assignment = Assignment::new(
            plan.clone(),
            assignment.run.shard.clone(),
            &[round; 32],
            &fixtures::trainers()[1],
            model.clone().into(),
        );
        let work = assignment.train().unwrap();
        let vector = carry_momentum(sent.as_deref(), &work.update, 0.9);
        history.push((model.clone(), vector.clone()));
        model = model.iter().zip(&vector).map(|(m, v)| m + v).collect();
        sent = Some(vector);
    }
    let mut replayed: Option<Vec<f32>> = None;
    for (round, (start, vector)) in history.iter().enumerate() {
        let assignment = Assignment::new(
            plan.clone(),
            fixtures::assignment(&plan, 1, [0; 32]).run.shard.clone(),
            &[round as u8; 32],
            &fixtures::trainers()[1],
            start.clone().into(),
        );
        let again = carry_momentum(
            replayed.as_deref(),
            &assignment.train().unwrap().update,
            0.9,
        );
        assert_eq!(
            crate::params::hash(&again),
            crate::params::hash(vector),
            "round {round}"
        );
        replayed = Some(again);
    }
}
