//! The witness of one disputed step: the state the referee re-executes from.
//!
//! ```text
//! magic "CRNW" | version u8 = 1 | step u32 LE
//!   | weights   (a parameter blob, crate::params)
//!   | optimizer (an optimizer-state blob, crate::optimizer)
//!   | flag u8   | model (a parameter blob: M_r), present exactly when step + 1 = T
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

/// Exact bytes of the witness of `step` in a run of `steps` steps.
pub fn encoded_len(plan: &TaskPlan, step: u32) -> u64 {
    let count = plan.param_count();
    let model = if step + 1 == plan.local_steps {
        params_len(count)
    } else {
        0
    };
    HEADER_LEN as u64
        + params_len(count)
        + optimizer::encoded_len(&plan.optimizer, count) as u64
        + 1
        + model
}

/// The largest witness a task with this model and optimizer can need (at its last step).
pub fn max_len(model: &ModelSpec, optimizer: &OptimizerSpec) -> u64 {
    let count = model.param_count();
    HEADER_LEN as u64 + 2 * params_len(count) + optimizer::encoded_len(optimizer, count) as u64 + 1
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
        let expected = encoded_len(plan, step);
        if bytes.len() as u64 != expected {
            return Err(WitnessError::Length {
                expected,
                got: bytes.len() as u64,
            });
        }
        let count = plan.param_count();
        let weights_end = HEADER_LEN + params_len(count) as usize;
        let params = params::decode(&bytes[HEADER_LEN..weights_end], count)?;
        let optimizer_end = weights_end + optimizer::encoded_len(&plan.optimizer, count);
        let optimizer =
            optimizer::decode(&bytes[weights_end..optimizer_end], &plan.optimizer, count)?;
        let last = step + 1 == plan.local_steps;
        let model = match (bytes[optimizer_end], last) {
            (1, true) => Some(params::decode(&bytes[optimizer_end + 1..], count)?),
            (0, false) => None,
            (flag, _) => return Err(WitnessError::BadFlag(flag)),
        };
        Ok(Witness {
            step,
            params,
            optimizer,
            model,
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
        let largest = max_len(&cnn, &OptimizerSpec::adam(0.001));
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
