//! The witness of one disputed step: the state the referee re-executes from.
//!
//! ```text
//! magic "CRNW" | version u8 = 1 | step u32 LE
//!   | weights   (a parameter blob, crate::params)
//!   | optimizer (an optimizer-state blob, crate::optimizer)
//!   | flag u8   | model (a parameter blob: M_r), present exactly when step + 1 = T
//!   [ | flag u8 | carried (a parameter blob) ]   only when step + 1 = T and the task has
//!                                                worker momentum; flag 1 when the trainer
//!                                                carried a vector into the round, else 0
//! ```
//!
//! Every length follows from the task's plan and the step, so the decoder knows how many bytes
//! to expect before it reads a value. The batch is not carried: the referee derives it from the
//! dataset, the shard and the seed, exactly as the trainer had to.

use cairn_ml::model::ModelSpec;
use cairn_ml::optim::{Optimizer, OptimizerSpec};

use crate::plan::TaskPlan;
use crate::{optimizer, params};

/// First bytes of every witness.
pub const MAGIC: [u8; 4] = *b"CRNW";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the weights blob.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + 4;
/// Largest witness the referee accepts (8 MiB): the CNN on 28x28 images with Adam, the largest
/// built-in model and optimizer, needs about 6.8 MB at the last step.
pub const MAX_WITNESS_BYTES: u64 = 8 << 20;

/// The state behind one checkpoint, as a trainer hands it to the referee.
#[derive(Clone, Debug, PartialEq)]
pub struct Witness {
    /// Steps taken (the referee re-executes step `step`, producing state `step + 1`).
    pub step: u32,
    /// The weights after `step` steps.
    pub params: Vec<f32>,
    /// The optimizer state after `step` steps.
    pub optimizer: Optimizer,
    /// The round's input weights `M_r`, needed to compute the update at the last step.
    pub model: Option<Vec<f32>>,
    /// Whether the task has worker momentum (then a last-step witness has a carried section).
    pub momentum: bool,
    /// With worker momentum, at the last step: the vector the trainer carried into the round
    /// (what it sent in its previous round), whose hash the ledger knows.
    pub carried: Option<Vec<f32>>,
}

/// Why bytes are not the witness a dispute expects.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WitnessError {
    /// Fewer bytes than the header.
    #[error("witness of {0} bytes is shorter than its header")]
    TooShort(usize),
    /// The magic is not `CRNW`.
    #[error("not a witness (magic {0:02x?}, expected \"CRNW\")")]
    BadMagic([u8; 4]),
    /// A version this code does not read.
    #[error("witness version {0} is not supported (this node reads version {VERSION})")]
    UnsupportedVersion(u8),
    /// The witness is for another step than the one disputed.
    #[error("witness is for step {got}; the dispute needs step {expected}")]
    WrongStep {
        /// The disputed step.
        expected: u32,
        /// The witness's step.
        got: u32,
    },
    /// The byte count is not what the task's model and optimizer dictate.
    #[error("witness is {got} bytes; the task's model and optimizer need exactly {expected}")]
    Length {
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// The input-model flag is not 1 exactly at the last step.
    #[error("witness input-model flag is {0}; it must be 1 exactly at the last step, else 0")]
    BadFlag(u8),
    /// The weights or the input model do not decode.
    #[error("witness weights: {0}")]
    Params(#[from] params::ParamsError),
    /// The optimizer state does not decode.
    #[error("witness optimizer state: {0}")]
    Optimizer(#[from] optimizer::StateError),
}

fn params_len(count: usize) -> u64 {
    params::HEADER_LEN as u64 + 4 * count as u64
}

/// Exact bytes of the witness of `step` in a run of `steps` steps, for a trainer that carried
/// a vector into the round (`carried`; only read at the last step of a task with worker
/// momentum).
pub fn encoded_len(plan: &TaskPlan, step: u32, carried: bool) -> u64 {
    let count = plan.param_count();
    let last = step + 1 == plan.local_steps;
    let model = if last { params_len(count) } else { 0 };
    let momentum = match (last && plan.worker_momentum != 0.0, carried) {
        (false, _) => 0,
        (true, false) => 1,
        (true, true) => 1 + params_len(count),
    };
    HEADER_LEN as u64
        + params_len(count)
        + optimizer::encoded_len(&plan.optimizer, count) as u64
        + 1
        + model
        + momentum
}

/// The largest witness a task with this model and optimizer can need (at its last step;
/// `carries`: the task has worker momentum).
pub fn max_len(model: &ModelSpec, optimizer: &OptimizerSpec, carries: bool) -> u64 {
    let count = model.param_count();
    let carried = if carries { 1 + params_len(count) } else { 0 };
    HEADER_LEN as u64
        + 2 * params_len(count)
        + optimizer::encoded_len(optimizer, count) as u64
        + 1
        + carried
}

impl Witness {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.step.to_le_bytes());
        out.extend_from_slice(&params::encode(&self.params));
        out.extend_from_slice(&optimizer::encode(&self.optimizer));
        match &self.model {
            Some(model) => {
                out.push(1);
                out.extend_from_slice(&params::encode(model));
            }
            None => out.push(0),
        }
        // Only a last-step witness of a worker-momentum task has the carried section; the
        // decoder knows from the plan whether to expect it.
        if self.model.is_some() && self.momentum {
            match &self.carried {
                Some(carried) => {
                    out.push(1);
                    out.extend_from_slice(&params::encode(carried));
                }
                None => out.push(0),
            }
        }
        out
    }

    /// Decodes the witness of step `step` of `plan`'s run: the total length is checked against
    /// the plan before any value is read, then each part by its own decoder.
    pub fn decode(bytes: &[u8], plan: &TaskPlan, step: u32) -> Result<Witness, WitnessError> {
        if bytes.len() < HEADER_LEN {
            return Err(WitnessError::TooShort(bytes.len()));
        }
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&bytes[..4]);
        if magic != MAGIC {
            return Err(WitnessError::BadMagic(magic));
        }
        if bytes[4] != VERSION {
            return Err(WitnessError::UnsupportedVersion(bytes[4]));
        }
        let got = u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
        if got != step {
            return Err(WitnessError::WrongStep {
                expected: step,
                got,
            });
        }
        let count = plan.param_count();
        let last = step + 1 == plan.local_steps;
        let section = last && plan.worker_momentum != 0.0;
        // Where the carried section's flag sits, when the witness has one: read it (if
        // present) to know the exact length before any value is read.
        let flag_at = encoded_len(plan, step, false) as usize - usize::from(section);
        let carried = section && bytes.get(flag_at) == Some(&1);
        let expected = encoded_len(plan, step, carried);
        if bytes.len() as u64 != expected {
            return Err(WitnessError::Length {
                expected,
                got: bytes.len() as u64,
            });
        }
        let weights_end = HEADER_LEN + params_len(count) as usize;
        let params = params::decode(&bytes[HEADER_LEN..weights_end], count)?;
        let optimizer_end = weights_end + optimizer::encoded_len(&plan.optimizer, count);
        let optimizer =
            optimizer::decode(&bytes[weights_end..optimizer_end], &plan.optimizer, count)?;
        let model_end = optimizer_end + 1 + if last { params_len(count) as usize } else { 0 };
        let model = match (bytes[optimizer_end], last) {
            (1, true) => Some(params::decode(&bytes[optimizer_end + 1..model_end], count)?),
            (0, false) => None,
            (flag, _) => return Err(WitnessError::BadFlag(flag)),
        };
        let carried = match (section, bytes.get(model_end)) {
            (false, _) => None,
            (true, Some(1)) => Some(params::decode(&bytes[model_end + 1..], count)?),
            (true, Some(0)) => None,
            (true, flag) => return Err(WitnessError::BadFlag(flag.copied().unwrap_or(0))),
        };
        Ok(Witness {
            step,
            params,
            optimizer,
            model,
            momentum: plan.worker_momentum != 0.0,
            carried,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::training::Trajectory;
    use proptest::prelude::*;

    #[test]
    fn the_largest_built_in_model_with_adam_fits_the_limit() {
        // The CNN on 28x28 single-channel images (mnist, Fashion-MNIST): 421 642 parameters.
        let cnn = ModelSpec::Cnn {
            channels: 1,
            height: 28,
            width: 28,
            classes: 10,
            dropout: 0.25,
        };
        assert_eq!(cnn.param_count(), 421_642);
        let largest = max_len(&cnn, &OptimizerSpec::adam(0.001), false);
        assert!(largest <= MAX_WITNESS_BYTES, "{largest}");
        // Every witness fits in at most 8 chunks of a transaction.
        assert!(MAX_WITNESS_BYTES.div_ceil(1 << 20) <= 8);
    }

    #[test]
    fn every_malformation_is_a_typed_error() {
        let plan = fixtures::plan_for("mlp:4-8-2", "adam:lr=0.01,batch=8", 6, 2);
        let assignment = fixtures::assignment(&plan, 1, [3; 32]);
        let bytes = assignment.witness(2).unwrap().encode();
        assert!(matches!(
            Witness::decode(&bytes[..3], &plan, 2),
            Err(WitnessError::TooShort(3))
        ));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(matches!(
            Witness::decode(&bad, &plan, 2),
            Err(WitnessError::BadMagic(_))
        ));
        let mut bad = bytes.clone();
        bad[4] = 7;
        assert!(matches!(
            Witness::decode(&bad, &plan, 2),
            Err(WitnessError::UnsupportedVersion(7))
        ));
        assert!(matches!(
            Witness::decode(&bytes, &plan, 3),
            Err(WitnessError::WrongStep {
                expected: 3,
                got: 2
            })
        ));
        assert!(matches!(
            Witness::decode(&bytes[..bytes.len() - 1], &plan, 2),
            Err(WitnessError::Length { .. })
        ));
        let mut flagged = bytes.clone();
        let flag = flagged.len() - 1;
        flagged[flag] = 1;
        assert!(matches!(
            Witness::decode(&flagged, &plan, 2),
            Err(WitnessError::BadFlag(1))
        ));
        let mut nan = bytes.clone();
        nan[HEADER_LEN + params::HEADER_LEN..HEADER_LEN + params::HEADER_LEN + 4]
            .copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(matches!(
            Witness::decode(&nan, &plan, 2),
            Err(WitnessError::Params(_))
        ));
    }

    #[test]
    fn a_worker_momentum_witness_has_its_carried_section_only_at_the_last_step() {
        let plan = fixtures::plan_for("logistic:4-2", "sgd:lr=0.1,batch=8", 4, 2);
        let plan = std::sync::Arc::new(TaskPlan {
            worker_momentum: 0.9,
            ..(*plan).clone()
        });
        let carried: Vec<f32> = vec![0.25; plan.param_count()];
        let assignment = fixtures::assignment(&plan, 1, [5; 32]).carrying(Some(carried.into()));
        let last = assignment.witness(3).unwrap();
        let bytes = last.encode();
        assert_eq!(Witness::decode(&bytes, &plan, 3).unwrap(), last);
        // Cut the carried section off, or flag it absent while its bytes follow: refused.
        let without = bytes.len() - params_len(plan.param_count()) as usize;
        assert!(matches!(
            Witness::decode(&bytes[..without], &plan, 3),
            Err(WitnessError::Length { .. })
        ));
        let mut unflagged = bytes.clone();
        unflagged[without - 1] = 0;
        assert!(matches!(
            Witness::decode(&unflagged, &plan, 3),
            Err(WitnessError::Length { .. })
        ));
        let mut flag_two = bytes[..without].to_vec();
        flag_two[without - 1] = 2;
        assert!(matches!(
            Witness::decode(&flag_two, &plan, 3),
            Err(WitnessError::BadFlag(2))
        ));
        // Not at an earlier step.
        let early = assignment.witness(1).unwrap();
        assert!(early.carried.is_none());
        assert_eq!(Witness::decode(&early.encode(), &plan, 1).unwrap(), early);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_a_worker_momentum_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512), step in 0u32..4) {
            let plan = fixtures::plan_for("logistic:4-2", "sgd:lr=0.1,batch=8", 4, 2);
            let plan = TaskPlan { worker_momentum: 0.5, ..(*plan).clone() };
            let _ = Witness::decode(&bytes, &plan, step);
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256), step in 0u32..6) {
            let plan = fixtures::plan_for("logistic:4-2", "adam:lr=0.01,batch=8", 6, 2);
            let _ = Witness::decode(&bytes, &plan, step);
        }

        #[test]
        fn a_witness_of_any_step_round_trips(step in 0u32..6, seed in any::<u8>()) {
            let plan = fixtures::plan_for("logistic:4-2", "sgd:lr=0.1,momentum=0.9,batch=8", 6, 2);
            let witness = fixtures::assignment(&plan, 2, [seed; 32]).witness(step).unwrap();
            let bytes = witness.encode();
            prop_assert_eq!(Witness::decode(&bytes, &plan, step).unwrap(), witness);
        }
    }
}
