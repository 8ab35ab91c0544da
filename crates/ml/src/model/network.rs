//! The forward and backward passes over a layer plan, with the reusable [`Workspace`] that holds
//! every activation so training steps do not allocate once buffers have grown to the batch size.

use super::spec::{Layer, CONV_KERNEL, CONV_PADDING};
use crate::kernels::{
    add_bias_rows, column_sums, conv2d_backward, conv2d_forward, dropout_mask, gemm,
    max_pool2_backward, max_pool2_forward, relu_backward, relu_forward, Conv2dShape, ConvScratch,
    Layout,
};

/// Whether a forward pass is for training (dropout active, seeded) or evaluation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    Eval,
    Train { dropout_seed: u64 },
}

/// Per-layer state the backward pass needs besides activations.
#[derive(Clone, Debug)]
enum Saved {
    None,
    Conv(ConvScratch),
    Pool(Vec<u32>),
    Dropout(Vec<f32>),
}

/// Reusable buffers for forward and backward passes of one model architecture.
///
/// Create it once per model (or per thread) and pass it to the `*_in` methods of
/// [`Model`](super::Model); buffers grow to the largest batch seen and are then reused.
#[derive(Clone, Debug)]
pub struct Workspace {
    outputs: Vec<Vec<f32>>,
    saved: Vec<Saved>,
    grad: Vec<f32>,
    grad_next: Vec<f32>,
}

impl Workspace {
    /// Empty buffers for a model with `layers` steps.
    pub(crate) fn for_layers(layers: &[Layer]) -> Workspace {
        Workspace {
            outputs: vec![Vec::new(); layers.len()],
            saved: layers
                .iter()
                .map(|layer| match layer {
                    Layer::Conv { .. } => Saved::Conv(ConvScratch::default()),
                    Layer::MaxPool { .. } => Saved::Pool(Vec::new()),
                    Layer::Dropout { .. } => Saved::Dropout(Vec::new()),
                    _ => Saved::None,
                })
                .collect(),
            grad: Vec::new(),
            grad_next: Vec::new(),
        }
    }

    /// Whether this workspace was made for a plan with `layers` steps of these kinds.
    pub(crate) fn fits(&self, layers: &[Layer]) -> bool {
        self.saved.len() == layers.len()
            && self.saved.iter().zip(layers).all(|(saved, layer)| {
                matches!(
                    (saved, layer),
                    (Saved::Conv(_), Layer::Conv { .. })
                        | (Saved::Pool(_), Layer::MaxPool { .. })
                        | (Saved::Dropout(_), Layer::Dropout { .. })
                        | (Saved::None, Layer::Dense { .. } | Layer::Relu { .. })
                )
            })
    }

    /// The logits of the last forward pass.
    pub(crate) fn logits(&self) -> &[f32] {
        self.outputs.last().map_or(&[], Vec::as_slice)
    }

    /// Logits and the logit-gradient buffer at once, for the loss kernel.
    pub(crate) fn logits_and_grad(&mut self) -> (&[f32], &mut [f32]) {
        let logits = self.outputs.last().map_or(&[][..], Vec::as_slice);
        self.grad.resize(logits.len(), 0.0);
        (logits, &mut self.grad)
    }
}

fn conv_shape(
    layer_batch: usize,
    in_channels: usize,
    out_channels: usize,
    height: usize,
    width: usize,
) -> Conv2dShape {
    Conv2dShape {
        batch: layer_batch,
        in_channels,
        out_channels,
        height,
        width,
        kernel: CONV_KERNEL,
        padding: CONV_PADDING,
    }
}

/// Runs every layer on `x` (`batch` samples), leaving each layer's output in the workspace.
pub(crate) fn forward(
    layers: &[Layer],
    params: &[f32],
    x: &[f32],
    batch: usize,
    mode: Mode,
    ws: &mut Workspace,
) {
    debug_assert!(ws.fits(layers));
    for (index, layer) in layers.iter().enumerate() {
        let (before, rest) = ws.outputs.split_at_mut(index);
        let input: &[f32] = if index == 0 { x } else { &before[index - 1] };
        let output = &mut rest[0];
        output.resize(batch * layer.output_len(), 0.0);
        match (*layer, &mut ws.saved[index]) {
            (
                Layer::Dense {
                    inputs,
                    outputs,
                    weight,
                    bias,
                },
                _,
            ) => {
                let w = &params[weight..weight + inputs * outputs];
                gemm(
                    batch,
                    outputs,
                    inputs,
                    input,
                    Layout::Normal,
                    w,
                    Layout::Transposed,
                    output,
                );
                add_bias_rows(output, &params[bias..bias + outputs]);
            }
            (
                Layer::Conv {
                    in_channels,
                    out_channels,
                    height,
                    width,
                    weight,
                    bias,
                },
                Saved::Conv(scratch),
            ) => {
                let shape = conv_shape(batch, in_channels, out_channels, height, width);
                let w = &params[weight..weight + shape.weight_len()];
                conv2d_forward(
                    &shape,
                    input,
                    w,
                    &params[bias..bias + out_channels],
                    scratch,
                    output,
                );
            }
            (Layer::Relu { .. }, _) => relu_forward(input, output),
            (
                Layer::MaxPool {
                    channels,
                    height,
                    width,
                },
                Saved::Pool(argmax),
            ) => {
                argmax.resize(output.len(), 0);
                max_pool2_forward(input, batch * channels, height, width, output, argmax);
            }
            (Layer::Dropout { p, stream, .. }, Saved::Dropout(mask)) => match mode {
                Mode::Eval => output.copy_from_slice(input),
                Mode::Train { dropout_seed } => {
                    mask.resize(output.len(), 0.0);
                    dropout_mask(dropout_seed, stream, p, mask);
                    for ((out, &value), &m) in output.iter_mut().zip(input).zip(mask.iter()) {
                        *out = value * m;
                    }
                }
            },
            _ => unreachable!("workspace checked to fit the layer plan"),
        }
    }
}

/// Backpropagates the logit gradient the caller left in the workspace, overwriting `grad`
/// (same layout as `params`) with the gradient of every parameter.
pub(crate) fn backward(
    layers: &[Layer],
    params: &[f32],
    x: &[f32],
    batch: usize,
    ws: &mut Workspace,
    grad: &mut [f32],
) {
    debug_assert!(ws.fits(layers));
    let mut dy = std::mem::take(&mut ws.grad);
    let mut dx = std::mem::take(&mut ws.grad_next);
    for (index, layer) in layers.iter().enumerate().rev() {
        let input: &[f32] = if index == 0 {
            x
        } else {
            &ws.outputs[index - 1]
        };
        let need_dx = index > 0;
        if need_dx {
            dx.resize(batch * layer.input_len(), 0.0);
        }
        match (*layer, &mut ws.saved[index]) {
            (
                Layer::Dense {
                    inputs,
                    outputs,
                    weight,
                    bias,
                },
                _,
            ) => {
                let w = &params[weight..weight + inputs * outputs];
                let dw = &mut grad[weight..weight + inputs * outputs];
                gemm(
                    outputs,
                    inputs,
                    batch,
                    &dy,
                    Layout::Transposed,
                    input,
                    Layout::Normal,
                    dw,
                );
                column_sums(&dy, &mut grad[bias..bias + outputs]);
                if need_dx {
                    gemm(
                        batch,
                        inputs,
                        outputs,
                        &dy,
                        Layout::Normal,
                        w,
                        Layout::Normal,
                        &mut dx,
                    );
                }
            }
            (
                Layer::Conv {
                    in_channels,
                    out_channels,
                    height,
                    width,
                    weight,
                    bias,
                },
                Saved::Conv(scratch),
            ) => {
                let shape = conv_shape(batch, in_channels, out_channels, height, width);
                let len = shape.weight_len();
                let (dw, rest) = grad[weight..].split_at_mut(len);
                let db_start = bias - weight - len;
                let db = &mut rest[db_start..db_start + out_channels];
                let dx_out = if need_dx { Some(&mut dx[..]) } else { None };
                conv2d_backward(
                    &shape,
                    &dy,
                    &params[weight..weight + len],
                    scratch,
                    dw,
                    db,
                    dx_out,
                );
            }
            (Layer::Relu { .. }, _) => {
                if need_dx {
                    relu_backward(input, &dy, &mut dx);
                }
            }
            (
                Layer::MaxPool {
                    channels,
                    height,
                    width,
                },
                Saved::Pool(argmax),
            ) => {
                if need_dx {
                    max_pool2_backward(&dy, argmax, batch * channels, height, width, &mut dx);
                }
            }
            (Layer::Dropout { .. }, Saved::Dropout(mask)) => {
                if need_dx {
                    for ((out, &g), &m) in dx.iter_mut().zip(&dy).zip(mask.iter()) {
                        *out = g * m;
                    }
                }
            }
            _ => unreachable!("workspace checked to fit the layer plan"),
        }
        std::mem::swap(&mut dy, &mut dx);
    }
    ws.grad = dy;
    ws.grad_next = dx;
}
