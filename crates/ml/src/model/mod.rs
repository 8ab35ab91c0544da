//! Models: an architecture ([`ModelSpec`]) plus one flat `Vec<f32>` of parameters.
//!
//! Updates, aggregation and checkpoints all work on the flat vector; [`ModelSpec::tensors`] says
//! which slice of it is which PyTorch-named tensor.

mod init;
mod network;
mod spec;
#[cfg(test)]
mod tests;

pub use network::Workspace;
pub use spec::{ModelSpec, ParamTensor, MAX_DIM, MAX_HIDDEN_LAYERS, MAX_PARAMS};

use crate::data::Dataset;
use crate::kernels::{cross_entropy_rows, softmax_cross_entropy};
use network::{backward, forward, Mode};
use spec::Layer;
use thiserror::Error;

/// Errors from building a model or feeding it input.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ModelError {
    /// The architecture is unusable; the message says which size is wrong.
    #[error("invalid model spec: {0}")]
    InvalidSpec(String),
    /// The parameter vector has the wrong length for the spec.
    #[error("the model has {expected} parameters but {got} values were given")]
    ParamCount {
        /// Parameters the spec needs.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// A parameter is NaN or infinite.
    #[error("parameter {index} is {value}, which is not finite")]
    NonFiniteParam {
        /// Index in the flat vector.
        index: usize,
        /// The offending value.
        value: f32,
    },
    /// A batch of zero samples was given.
    #[error("the batch is empty")]
    EmptyBatch,
    /// The input does not hold `batch x input_dim` values.
    #[error("input holds {got} values but {batch} samples of {dim} features need {expected}")]
    InputShape {
        /// Values given.
        got: usize,
        /// Values needed.
        expected: usize,
        /// Samples in the batch.
        batch: usize,
        /// Features per sample.
        dim: usize,
    },
    /// The number of labels is not the batch size.
    #[error("{labels} labels were given for a batch of {batch}")]
    LabelCount {
        /// Labels given.
        labels: usize,
        /// Samples in the batch.
        batch: usize,
    },
    /// A label is not below the number of classes.
    #[error("label {label} of sample {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// Sample index within the batch.
        index: usize,
        /// The label.
        label: u32,
        /// Classes of the model.
        classes: usize,
    },
    /// The gradient buffer does not have one value per parameter.
    #[error("the gradient buffer holds {got} values but the model has {expected} parameters")]
    GradientLength {
        /// Parameters of the model.
        expected: usize,
        /// Values in the buffer.
        got: usize,
    },
    /// The dataset's samples or labels do not fit the model.
    #[error("dataset of {dim} features and {classes} classes does not fit a model of {model_dim} inputs and {model_classes} classes")]
    DatasetMismatch {
        /// Features per dataset sample.
        dim: usize,
        /// Classes of the dataset.
        classes: usize,
        /// Inputs of the model.
        model_dim: usize,
        /// Classes of the model.
        model_classes: usize,
    },
    /// Evaluation was asked of an empty dataset or with a zero batch size.
    #[error("nothing to evaluate: {samples} samples with batch size {batch_size}")]
    NothingToEvaluate {
        /// Samples in the dataset.
        samples: usize,
        /// Batch size asked for.
        batch_size: usize,
    },
}

/// Loss and accuracy of a model on a dataset.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// Mean cross-entropy over all samples.
    pub loss: f32,
    /// Fraction of samples whose largest logit is the label (ties go to the lower class).
    pub accuracy: f32,
}

/// A model: its architecture and its flat parameter vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    spec: ModelSpec,
    params: Vec<f32>,
    layers: Vec<Layer>,
}

impl Model {
    /// Wraps `params` as a model of `spec`, checking the spec, the length and that every value is
    /// finite.
    pub fn new(spec: ModelSpec, params: Vec<f32>) -> Result<Model, ModelError> {
        spec.validate()?;
        let expected = spec.param_count();
        if params.len() != expected {
            return Err(ModelError::ParamCount {
                expected,
                got: params.len(),
            });
        }
        if let Some((index, &value)) = params.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ModelError::NonFiniteParam { index, value });
        }
        let layers = spec.layers();
        Ok(Model {
            spec,
            params,
            layers,
        })
    }

    /// A freshly initialized model: every weight and bias drawn uniformly from
    /// `±1/√fan_in` (PyTorch's default for `Linear` and `Conv2d`) from a ChaCha20 stream seeded
    /// with `seed`.
    pub fn init(spec: ModelSpec, seed: u64) -> Result<Model, ModelError> {
        spec.validate()?;
        let params = init::kaiming_uniform(&spec, seed);
        Model::new(spec, params)
    }

    /// The architecture.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The flat parameter vector.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The flat parameter vector, for optimizers and aggregation to update in place.
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// Gives up the model, keeping its parameters.
    pub fn into_params(self) -> Vec<f32> {
        self.params
    }

    /// Fresh buffers for the `*_in` methods.
    pub fn workspace(&self) -> Workspace {
        Workspace::for_layers(&self.layers)
    }

    /// Logits (`batch x classes`, row-major) for `batch` samples of `x`, in evaluation mode.
    pub fn forward(&self, x: &[f32], batch: usize) -> Result<Vec<f32>, ModelError> {
        let mut ws = self.workspace();
        Ok(self.forward_in(&mut ws, x, batch)?.to_vec())
    }

    /// [`Model::forward`] reusing `ws`; the logits live in the workspace until its next use.
    pub fn forward_in<'w>(
        &self,
        ws: &'w mut Workspace,
        x: &[f32],
        batch: usize,
    ) -> Result<&'w [f32], ModelError> {
        self.check_input(ws, x, batch)?;
        forward(&self.layers, &self.params, x, batch, Mode::Eval, ws);
        Ok(ws.logits())
    }

    /// Mean softmax cross-entropy of `batch` samples against `labels` in training mode (dropout
    /// drawn from `dropout_seed`), with its gradient written into `grad` (one value per
    /// parameter, same layout).
    pub fn loss_and_gradient(
        &self,
        x: &[f32],
        labels: &[u32],
        batch: usize,
        dropout_seed: u64,
        grad: &mut [f32],
    ) -> Result<f32, ModelError> {
        let mut ws = self.workspace();
        self.loss_and_gradient_in(&mut ws, x, labels, batch, dropout_seed, grad)
    }

    /// [`Model::loss_and_gradient`] reusing `ws`, so a training loop does not allocate per step.
    pub fn loss_and_gradient_in(
        &self,
        ws: &mut Workspace,
        x: &[f32],
        labels: &[u32],
        batch: usize,
        dropout_seed: u64,
        grad: &mut [f32],
    ) -> Result<f32, ModelError> {
        self.check_input(ws, x, batch)?;
        self.check_labels(labels, batch)?;
        if grad.len() != self.params.len() {
            return Err(ModelError::GradientLength {
                expected: self.params.len(),
                got: grad.len(),
            });
        }
        forward(
            &self.layers,
            &self.params,
            x,
            batch,
            Mode::Train { dropout_seed },
            ws,
        );
        let (logits, logit_grad) = ws.logits_and_grad();
        let loss = softmax_cross_entropy(logits, labels, self.spec.classes(), logit_grad);
        backward(&self.layers, &self.params, x, batch, ws, grad);
        Ok(loss)
    }

    /// Mean loss and accuracy over all of `data`, in order, `batch_size` samples at a time.
    ///
    /// Per-sample losses are summed in sample order in f64, then divided by the sample count.
    pub fn evaluate(&self, data: &Dataset, batch_size: usize) -> Result<Evaluation, ModelError> {
        let classes = self.spec.classes();
        if data.dim() != self.spec.input_dim() || data.classes() > classes {
            return Err(ModelError::DatasetMismatch {
                dim: data.dim(),
                classes: data.classes(),
                model_dim: self.spec.input_dim(),
                model_classes: classes,
            });
        }
        if data.is_empty() || batch_size == 0 {
            return Err(ModelError::NothingToEvaluate {
                samples: data.len(),
                batch_size,
            });
        }
        let mut ws = self.workspace();
        let mut losses = vec![0.0f32; batch_size];
        let mut total = 0.0f64;
        let mut correct = 0usize;
        let dim = data.dim();
        for (x, labels) in data
            .features()
            .chunks(batch_size * dim)
            .zip(data.labels().chunks(batch_size))
        {
            let batch = labels.len();
            let logits = self.forward_in(&mut ws, x, batch)?;
            cross_entropy_rows(logits, labels, classes, &mut losses[..batch]);
            total = losses[..batch]
                .iter()
                .fold(total, |sum, &l| sum + f64::from(l));
            for (row, &label) in logits.chunks_exact(classes).zip(labels) {
                let predicted =
                    row.iter()
                        .enumerate()
                        .fold(0, |best, (j, &v)| if v > row[best] { j } else { best });
                if predicted == label as usize && row[predicted].is_finite() {
                    correct += 1;
                }
            }
        }
        let samples = data.len() as f64;
        Ok(Evaluation {
            loss: (total / samples) as f32,
            accuracy: (correct as f64 / samples) as f32,
        })
    }

    fn check_input(&self, ws: &Workspace, x: &[f32], batch: usize) -> Result<(), ModelError> {
        assert!(
            ws.fits(&self.layers),
            "workspace was made for another architecture"
        );
        if batch == 0 {
            return Err(ModelError::EmptyBatch);
        }
        let dim = self.spec.input_dim();
        let expected = batch.saturating_mul(dim);
        if x.len() != expected {
            return Err(ModelError::InputShape {
                got: x.len(),
                expected,
                batch,
                dim,
            });
        }
        Ok(())
    }

    fn check_labels(&self, labels: &[u32], batch: usize) -> Result<(), ModelError> {
        if labels.len() != batch {
            return Err(ModelError::LabelCount {
                labels: labels.len(),
                batch,
            });
        }
        let classes = self.spec.classes();
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= classes)
        {
            return Err(ModelError::LabelOutOfRange {
                index,
                label,
                classes,
            });
        }
        Ok(())
    }
}
