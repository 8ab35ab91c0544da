//! Test-set accuracy and loss of a model blob: how simulations and reports measure a task's
//! progress (validators score updates by their gain on the same test split, see
//! [`crate::scoring`]).

use cairn_ml::model::{Evaluation, Model};

use crate::params::{self, ParamsError};
use crate::plan::TaskPlan;

/// Why a model blob could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// The blob is not a parameter vector of the task's model.
    #[error("model blob: {0}")]
    Blob(#[from] ParamsError),
    /// The model rejected the parameters or the data.
    #[error("model: {0}")]
    Model(#[from] cairn_ml::model::ModelError),
}

/// Evaluates the model in `blob` on the task dataset's test split, `batch` samples at a time.
pub fn evaluate_model(
    plan: &TaskPlan,
    blob: &[u8],
    batch: usize,
) -> Result<Evaluation, EvaluateError> {
    let values = params::decode(blob, plan.param_count())?;
    let model = Model::new(plan.model.clone(), values)?;
    Ok(model.evaluate(&plan.dataset.split.test, batch.max(1))?)
}
