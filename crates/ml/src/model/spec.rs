//! Model architectures: what a [`ModelSpec`] describes, how its flat parameter vector is laid
//! out, and the layer plan the forward and backward passes walk.

use super::ModelError;
use crate::kernels::DROPOUT_P_MAX;
use serde::{Deserialize, Serialize};

/// Most parameters a model may have (keeps every size computation far from overflow).
pub const MAX_PARAMS: usize = 1 << 30;
/// Largest single dimension (inputs, hidden width, classes, channels, height, width) accepted.
pub const MAX_DIM: usize = 1 << 24;
/// Most hidden layers an MLP may have.
pub const MAX_HIDDEN_LAYERS: usize = 64;

/// Filters in the CNN's first and second convolutions, and width of its hidden dense layer.
const CNN_CONV1: usize = 32;
const CNN_CONV2: usize = 64;
const CNN_HIDDEN: usize = 128;

/// A model architecture; together with one flat `Vec<f32>` of parameters it is a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSpec {
    /// Multinomial logistic regression: one dense layer `fc`.
    Logistic {
        /// Features per sample.
        inputs: usize,
        /// Output classes.
        classes: usize,
    },
    /// Dense layers `fc1 … fcN` with ReLU between them.
    Mlp {
        /// Features per sample.
        inputs: usize,
        /// Widths of the hidden layers, in order.
        hidden: Vec<usize>,
        /// Output classes.
        classes: usize,
    },
    /// The small CNN of robust federated learning papers: conv3x3(pad 1) 32 → ReLU → maxpool2 →
    /// conv3x3(pad 1) 64 → ReLU → maxpool2 → flatten → fc 128 → ReLU → dropout(p) → fc classes.
    Cnn {
        /// Input channels.
        channels: usize,
        /// Input height (at least 4).
        height: usize,
        /// Input width (at least 4).
        width: usize,
        /// Output classes.
        classes: usize,
        /// Drop probability of the dropout layer, in `[0, 0.99]`.
        dropout: f32,
    },
}

/// One named tensor inside a model's flat parameter vector (PyTorch naming and layout).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamTensor {
    /// PyTorch-style name, e.g. `fc1.weight`.
    pub name: String,
    /// Shape: dense weights `[out, in]`, conv weights `[out_c, in_c, kh, kw]`, biases `[out]`.
    pub shape: Vec<usize>,
    /// Index of the tensor's first value in the flat vector.
    pub offset: usize,
}

impl ParamTensor {
    /// Number of values in the tensor.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One step of the forward pass, with the offsets of its parameters in the flat vector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Layer {
    /// `y = x · Wᵀ + b`, `W` `[outputs, inputs]`.
    Dense {
        inputs: usize,
        outputs: usize,
        weight: usize,
        bias: usize,
    },
    /// 3x3 convolution with padding 1, `W` `[out_channels, in_channels, 3, 3]`.
    Conv {
        in_channels: usize,
        out_channels: usize,
        height: usize,
        width: usize,
        weight: usize,
        bias: usize,
    },
    /// Elementwise `max(x, 0)` over `size` values per sample.
    Relu { size: usize },
    /// 2x2 max pooling of `channels` planes of `height x width`.
    MaxPool {
        channels: usize,
        height: usize,
        width: usize,
    },
    /// Inverted dropout over `size` values per sample; `stream` picks its ChaCha stream.
    Dropout { size: usize, p: f32, stream: u64 },
}

/// Conv kernel side and padding of the CNN.
pub(crate) const CONV_KERNEL: usize = 3;
pub(crate) const CONV_PADDING: usize = 1;

impl Layer {
    /// Values per sample going in.
    pub(crate) fn input_len(&self) -> usize {
        match *self {
            Layer::Dense { inputs, .. } => inputs,
            Layer::Conv {
                in_channels,
                height,
                width,
                ..
            } => in_channels * height * width,
            Layer::Relu { size } | Layer::Dropout { size, .. } => size,
            Layer::MaxPool {
                channels,
                height,
                width,
            } => channels * height * width,
        }
    }

    /// Values per sample coming out.
    pub(crate) fn output_len(&self) -> usize {
        match *self {
            Layer::Dense { outputs, .. } => outputs,
            Layer::Conv {
                out_channels,
                height,
                width,
                ..
            } => out_channels * height * width,
            Layer::Relu { size } | Layer::Dropout { size, .. } => size,
            Layer::MaxPool {
                channels,
                height,
                width,
            } => channels * (height / 2) * (width / 2),
        }
    }
}

/// Builds the layers and named tensors of a spec, assigning offsets in order (weight then bias
/// per layer). Arithmetic saturates so an absurd spec cannot panic here; `validate` rejects it.
fn plan(spec: &ModelSpec) -> (Vec<Layer>, Vec<ParamTensor>) {
    let mut layers = Vec::new();
    let mut tensors = Vec::new();
    let mut offset = 0usize;
    let mut tensor = |name: String, shape: Vec<usize>| {
        let start = offset;
        let len = shape.iter().fold(1usize, |a, &d| a.saturating_mul(d));
        offset = offset.saturating_add(len);
        tensors.push(ParamTensor {
            name,
            shape,
            offset: start,
        });
        start
    };
    let mut dense = |layers: &mut Vec<Layer>, name: &str, inputs: usize, outputs: usize| {
        let weight = tensor(format!("{name}.weight"), vec![outputs, inputs]);
        let bias = tensor(format!("{name}.bias"), vec![outputs]);
        layers.push(Layer::Dense {
            inputs,
            outputs,
            weight,
            bias,
        });
    };
    match spec {
        ModelSpec::Logistic { inputs, classes } => dense(&mut layers, "fc", *inputs, *classes),
        ModelSpec::Mlp {
            inputs,
            hidden,
            classes,
        } => {
            let mut width = *inputs;
            for (i, &next) in hidden.iter().enumerate() {
                dense(&mut layers, &format!("fc{}", i + 1), width, next);
                layers.push(Layer::Relu { size: next });
                width = next;
            }
            dense(
                &mut layers,
                &format!("fc{}", hidden.len() + 1),
                width,
                *classes,
            );
        }
        ModelSpec::Cnn {
            channels,
            height,
            width,
            classes,
            dropout,
        } => {
            let (c, h, w) = (*channels, *height, *width);
            let conv = |tensor: &mut dyn FnMut(String, Vec<usize>) -> usize,
                        name: &str,
                        i: usize,
                        o: usize,
                        h: usize,
                        w: usize| {
                let weight = tensor(
                    format!("{name}.weight"),
                    vec![o, i, CONV_KERNEL, CONV_KERNEL],
                );
                let bias = tensor(format!("{name}.bias"), vec![o]);
                Layer::Conv {
                    in_channels: i,
                    out_channels: o,
                    height: h,
                    width: w,
                    weight,
                    bias,
                }
            };
            let conv1 = conv(&mut tensor, "conv1", c, CNN_CONV1, h, w);
            let conv2 = conv(&mut tensor, "conv2", CNN_CONV1, CNN_CONV2, h / 2, w / 2);
            let flat = CNN_CONV2.saturating_mul(h / 4).saturating_mul(w / 4);
            let fc1_weight = tensor("fc1.weight".into(), vec![CNN_HIDDEN, flat]);
            let fc1_bias = tensor("fc1.bias".into(), vec![CNN_HIDDEN]);
            let fc2_weight = tensor("fc2.weight".into(), vec![*classes, CNN_HIDDEN]);
            let fc2_bias = tensor("fc2.bias".into(), vec![*classes]);
            layers.extend([
                conv1,
                Layer::Relu {
                    size: CNN_CONV1.saturating_mul(h).saturating_mul(w),
                },
                Layer::MaxPool {
                    channels: CNN_CONV1,
                    height: h,
                    width: w,
                },
                conv2,
                Layer::Relu {
                    size: CNN_CONV2.saturating_mul(h / 2).saturating_mul(w / 2),
                },
                Layer::MaxPool {
                    channels: CNN_CONV2,
                    height: h / 2,
                    width: w / 2,
                },
                Layer::Dense {
                    inputs: flat,
                    outputs: CNN_HIDDEN,
                    weight: fc1_weight,
                    bias: fc1_bias,
                },
                Layer::Relu { size: CNN_HIDDEN },
                Layer::Dropout {
                    size: CNN_HIDDEN,
                    p: *dropout,
                    stream: 0,
                },
                Layer::Dense {
                    inputs: CNN_HIDDEN,
                    outputs: *classes,
                    weight: fc2_weight,
                    bias: fc2_bias,
                },
            ]);
        }
    }
    (layers, tensors)
}

impl ModelSpec {
    /// Checks that every size is positive and bounded and the parameter count fits [`MAX_PARAMS`].
    pub fn validate(&self) -> Result<(), ModelError> {
        let dim = |what: &str, value: usize, min: usize| {
            if value < min || value > MAX_DIM {
                Err(ModelError::InvalidSpec(format!(
                    "{what} is {value}; it must be between {min} and {MAX_DIM}"
                )))
            } else {
                Ok(())
            }
        };
        match self {
            ModelSpec::Logistic { inputs, classes } => {
                dim("inputs", *inputs, 1)?;
                dim("classes", *classes, 1)?;
            }
            ModelSpec::Mlp {
                inputs,
                hidden,
                classes,
            } => {
                dim("inputs", *inputs, 1)?;
                dim("classes", *classes, 1)?;
                if hidden.len() > MAX_HIDDEN_LAYERS {
                    return Err(ModelError::InvalidSpec(format!(
                        "{} hidden layers; at most {MAX_HIDDEN_LAYERS} are allowed",
                        hidden.len()
                    )));
                }
                for &width in hidden {
                    dim("a hidden layer width", width, 1)?;
                }
            }
            ModelSpec::Cnn {
                channels,
                height,
                width,
                classes,
                dropout,
            } => {
                dim("channels", *channels, 1)?;
                dim("height", *height, 4)?;
                dim("width", *width, 4)?;
                dim("classes", *classes, 1)?;
                if !(0.0..=DROPOUT_P_MAX).contains(dropout) {
                    return Err(ModelError::InvalidSpec(format!(
                        "dropout is {dropout}; it must be between 0 and {DROPOUT_P_MAX}"
                    )));
                }
                let pixels = height
                    .saturating_mul(*width)
                    .saturating_mul(CNN_CONV2.max(*channels));
                if pixels > MAX_PARAMS {
                    return Err(ModelError::InvalidSpec(format!(
                        "a {height}x{width} image is too large for the CNN"
                    )));
                }
            }
        }
        let count = self.param_count();
        if count >= MAX_PARAMS {
            return Err(ModelError::InvalidSpec(format!(
                "the model would have {count} parameters; at most {MAX_PARAMS} are allowed"
            )));
        }
        Ok(())
    }

    /// Length of the flat parameter vector.
    pub fn param_count(&self) -> usize {
        plan(self)
            .1
            .last()
            .map_or(0, |t| t.offset.saturating_add(t.len()))
    }

    /// Named tensors in the flat vector, in order, with PyTorch names and layouts.
    pub fn tensors(&self) -> Vec<ParamTensor> {
        plan(self).1
    }

    /// Features per input sample.
    pub fn input_dim(&self) -> usize {
        match self {
            ModelSpec::Logistic { inputs, .. } | ModelSpec::Mlp { inputs, .. } => *inputs,
            ModelSpec::Cnn {
                channels,
                height,
                width,
                ..
            } => channels.saturating_mul(*height).saturating_mul(*width),
        }
    }

    /// Number of output classes (logits per sample).
    pub fn classes(&self) -> usize {
        match self {
            ModelSpec::Logistic { classes, .. }
            | ModelSpec::Mlp { classes, .. }
            | ModelSpec::Cnn { classes, .. } => *classes,
        }
    }

    /// The layers the forward pass walks, in order.
    pub(crate) fn layers(&self) -> Vec<Layer> {
        plan(self).0
    }
}
