//! Trajectories of trainers that did not do the work they commit to, as they answer for it in a
//! dispute: each is self-consistent (a liar repeats its lie), so a dispute against it is decided
//! by the referee, not by the liar forgetting its story.

use std::sync::Arc;

use cairn_ml::model::Model;
use cairn_ml::train::StepBuffers;
use cairn_round::encoding::{domain_hash, Hash, ZERO_HASH};
use cairn_round::trace::Checkpoint;
use cairn_round::training::{Assignment, TrainState, TrainerError, Trajectory};
use cairn_round::{params, Witness};

/// What a dishonest run does to the honest state after a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Deviation {
    /// Stops training after this many steps: later checkpoints repeat that state (a lazy
    /// trainer that did a fraction of its steps).
    FreezeAfter(u32),
    /// Adds `amount` to the first weight right after step `at`, then trains on honestly from
    /// the wrong state (a trainer whose trace is wrong from that step on).
    Perturb {
        /// The step after which the state is wrong.
        at: u32,
        /// What is added to the first weight.
        amount: f32,
    },
}

/// The honest run of an assignment with one deviation.
#[derive(Debug)]
pub struct Deviated {
    run: Assignment,
    deviation: Deviation,
}

impl Deviated {
    /// `run` with `deviation`.
    pub fn new(run: Assignment, deviation: Deviation) -> Self {
        Self { run, deviation }
    }

    /// The state this trajectory claims after `step` steps.
    fn state(&self, step: u32) -> Result<TrainState, TrainerError> {
        let steps = self.run.run.steps();
        if step > steps {
            return Err(TrainerError::StepOutOfRange { step, steps });
        }
        let mut state = self.run.run.initial_state(self.run.start.to_vec())?;
        let mut buffers = StepBuffers::new(&state.model);
        while state.step < step {
            if let Deviation::FreezeAfter(after) = self.deviation {
                if state.step >= after {
                    break;
                }
            }
            self.run.run.advance(&mut state, &mut buffers)?;
            if let Deviation::Perturb { at, amount } = self.deviation {
                if state.step == at {
                    let mut params = state.model.params().to_vec();
                    if let Some(first) = params.first_mut() {
                        *first += amount;
                    }
                    state.model = Model::new(self.run.run.plan.model.clone(), params)?;
                }
            }
        }
        state.step = step;
        Ok(state)
    }

    /// The update this trajectory's last state gives.
    pub fn update(&self) -> Result<Vec<f32>, TrainerError> {
        let last = self.state(self.run.run.steps())?;
        let (_, update) =
            self.run
                .run
                .checkpoint(&last, Some(&self.run.start), self.run.carried.as_deref())?;
        update.ok_or(TrainerError::Train(cairn_ml::train::TrainError::Diverged {
            step: 0,
        }))
    }
}

impl Trajectory for Deviated {
    fn checkpoint(&self, step: u32) -> Result<Checkpoint, TrainerError> {
        let state = self.state(step)?;
        Ok(self
            .run
            .run
            .checkpoint(&state, Some(&self.run.start), self.run.carried.as_deref())?
            .0)
    }

    fn witness(&self, step: u32) -> Result<Witness, TrainerError> {
        let steps = self.run.run.steps();
        if step >= steps {
            return Err(TrainerError::StepOutOfRange { step, steps });
        }
        let state = self.state(step)?;
        Ok(Witness {
            step,
            params: state.model.into_params(),
            optimizer: state.optimizer,
            model: (step + 1 == steps).then(|| self.run.start.to_vec()),
            momentum: self.run.run.plan.worker_momentum != 0.0,
            carried: (step + 1 == steps && self.run.run.plan.worker_momentum != 0.0)
                .then(|| self.run.carried.as_deref().map(<[f32]>::to_vec))
                .flatten(),
        })
    }
}

/// Another trajectory whose last checkpoint names a different update: a trainer that trained
/// (or pretends to) and then reveals an update of its own making (crafted, scaled, noised).
#[derive(Debug)]
pub struct Replaced {
    inner: Arc<dyn Trajectory>,
    steps: u32,
    update: Hash,
}

impl Replaced {
    /// `inner`, except that step `steps` names the update with hash `update`.
    pub fn new(inner: Arc<dyn Trajectory>, steps: u32, update: &[f32]) -> Self {
        Self {
            inner,
            steps,
            update: params::hash(update),
        }
    }
}

impl Trajectory for Replaced {
    fn checkpoint(&self, step: u32) -> Result<Checkpoint, TrainerError> {
        let mut checkpoint = self.inner.checkpoint(step)?;
        if step == self.steps {
            checkpoint.update = self.update;
        }
        Ok(checkpoint)
    }

    fn witness(&self, step: u32) -> Result<Witness, TrainerError> {
        self.inner.witness(step)
    }
}

/// A made-up trace: every checkpoint after the start is a hash with nothing behind it, except
/// that the last one names the committed update so that the reveal opens. The start is the
/// honest one (anyone can state it), so in a dispute the forger can show the start and nothing
/// else.
#[derive(Debug)]
pub struct Forged {
    start: Assignment,
    seed: Hash,
    last: Checkpoint,
}

impl Forged {
    /// A forged trace for `start`'s round naming `update`, its made-up hashes drawn from `seed`.
    pub fn new(start: Assignment, seed: Hash, update: &[f32]) -> Self {
        let steps = start.run.steps();
        let made_up = |tag: &[u8]| domain_hash(b"cairn/sim/forged", &[&seed, tag]);
        let last = Checkpoint {
            step: steps,
            weights: made_up(b"weights"),
            optimizer: made_up(b"optimizer"),
            batch: made_up(b"batch"),
            update: params::hash(update),
        };
        Self { start, seed, last }
    }
}

impl Trajectory for Forged {
    fn checkpoint(&self, step: u32) -> Result<Checkpoint, TrainerError> {
        let steps = self.start.run.steps();
        if step == 0 {
            return self.start.checkpoint(0);
        }
        if step == steps {
            return Ok(self.last);
        }
        let made_up = domain_hash(b"cairn/sim/forged", &[&self.seed, &step.to_be_bytes()]);
        Ok(Checkpoint {
            step,
            weights: made_up,
            optimizer: made_up,
            batch: made_up,
            update: ZERO_HASH,
        })
    }

    fn witness(&self, step: u32) -> Result<Witness, TrainerError> {
        // Nothing stands behind a made-up checkpoint; an honest challenger never agrees with
        // one, so a dispute only ever asks the forger for the start.
        match step {
            0 => self.start.witness(0),
            _ => Err(TrainerError::StepOutOfRange { step, steps: 0 }),
        }
    }
}
