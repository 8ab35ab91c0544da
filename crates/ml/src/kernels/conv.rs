//! 2-D convolution (NCHW, square kernel, stride 1, zero padding) as im2col + matrix product.
//!
//! The whole batch is unfolded into one `(C·k·k) x (B·OH·OW)` column matrix so a single product
//! does the work. Each output sums over `(channel, kernel row, kernel column)` in that order; each
//! weight gradient sums over `(sample, output row, output column)` in that order.

use super::bias::row_sums;
use super::matmul::{gemm, Layout};
use rayon::prelude::*;

/// The shape of one convolution over a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
    /// Samples in the batch.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (filters).
    pub out_channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Kernel side length.
    pub kernel: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

impl Conv2dShape {
    /// Output height: `height + 2·padding - kernel + 1`.
    pub fn out_height(&self) -> usize {
        self.height + 2 * self.padding + 1 - self.kernel
    }

    /// Output width: `width + 2·padding - kernel + 1`.
    pub fn out_width(&self) -> usize {
        self.width + 2 * self.padding + 1 - self.kernel
    }

    /// Values in the input batch.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.height * self.width
    }

    /// Values in the output batch.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_height() * self.out_width()
    }

    /// Values in the weight tensor `[out_channels, in_channels, kernel, kernel]`.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch_len()
    }

    /// Rows of the column matrix: `in_channels · kernel²`.
    fn patch_len(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    /// Columns of the column matrix: `batch · out_height · out_width`.
    fn positions(&self) -> usize {
        self.batch * self.out_height() * self.out_width()
    }

    fn check(&self) {
        assert!(self.kernel > 0, "conv2d: kernel side is zero");
        assert!(
            self.height + 2 * self.padding >= self.kernel
                && self.width + 2 * self.padding >= self.kernel,
            "conv2d: kernel larger than padded input"
        );
    }
}

/// Buffers a convolution reuses between calls; the forward pass leaves the column matrix here
/// for the backward pass.
#[derive(Clone, Debug, Default)]
pub struct ConvScratch {
    columns: Vec<f32>,
    product: Vec<f32>,
    column_grad: Vec<f32>,
}

/// `y = conv(x, weight) + bias` with `x` `[B, C, H, W]`, `weight` `[O, C, k, k]`, `y` `[B, O, OH, OW]`.
pub fn conv2d_forward(
    shape: &Conv2dShape,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    scratch: &mut ConvScratch,
    y: &mut [f32],
) {
    shape.check();
    assert_eq!(x.len(), shape.input_len(), "conv2d_forward: input shape");
    assert_eq!(
        weight.len(),
        shape.weight_len(),
        "conv2d_forward: weight shape"
    );
    assert_eq!(bias.len(), shape.out_channels, "conv2d_forward: bias shape");
    assert_eq!(y.len(), shape.output_len(), "conv2d_forward: output shape");
    let (patch, positions) = (shape.patch_len(), shape.positions());
    scratch.columns.resize(patch * positions, 0.0);
    im2col(shape, x, &mut scratch.columns);
    scratch.product.resize(shape.out_channels * positions, 0.0);
    gemm(
        shape.out_channels,
        positions,
        patch,
        weight,
        Layout::Normal,
        &scratch.columns,
        Layout::Normal,
        &mut scratch.product,
    );
    let plane = shape.out_height() * shape.out_width();
    if plane == 0 {
        return;
    }
    for (sample, y_sample) in y.chunks_exact_mut(shape.out_channels * plane).enumerate() {
        for ((y_plane, row), &b) in y_sample
            .chunks_exact_mut(plane)
            .zip(scratch.product.chunks_exact(positions))
            .zip(bias)
        {
            for (out, &value) in y_plane
                .iter_mut()
                .zip(&row[sample * plane..(sample + 1) * plane])
            {
                *out = value + b;
            }
        }
    }
}

/// Gradients of a convolution from `dy` `[B, O, OH, OW]`, using the column matrix the last
/// [`conv2d_forward`] left in `scratch`: `dweight` and `dbias` are overwritten, and `dx`, when
/// given, receives the input gradient `[B, C, H, W]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    shape: &Conv2dShape,
    dy: &[f32],
    weight: &[f32],
    scratch: &mut ConvScratch,
    dweight: &mut [f32],
    dbias: &mut [f32],
    dx: Option<&mut [f32]>,
) {
    shape.check();
    let (patch, positions) = (shape.patch_len(), shape.positions());
    assert_eq!(
        dy.len(),
        shape.output_len(),
        "conv2d_backward: output gradient shape"
    );
    assert_eq!(
        weight.len(),
        shape.weight_len(),
        "conv2d_backward: weight shape"
    );
    assert_eq!(
        dweight.len(),
        shape.weight_len(),
        "conv2d_backward: weight gradient shape"
    );
    assert_eq!(
        dbias.len(),
        shape.out_channels,
        "conv2d_backward: bias gradient shape"
    );
    assert_eq!(
        scratch.columns.len(),
        patch * positions,
        "conv2d_backward: run the forward pass first"
    );
    // Regroup dy from [B, O, plane] to [O, B·plane] so the batch becomes part of one sum.
    let plane = shape.out_height() * shape.out_width();
    scratch.product.resize(shape.out_channels * positions, 0.0);
    if plane > 0 {
        for (sample, dy_sample) in dy.chunks_exact(shape.out_channels * plane).enumerate() {
            for (dy_plane, row) in dy_sample
                .chunks_exact(plane)
                .zip(scratch.product.chunks_exact_mut(positions))
            {
                row[sample * plane..(sample + 1) * plane].copy_from_slice(dy_plane);
            }
        }
    }
    gemm(
        shape.out_channels,
        patch,
        positions,
        &scratch.product,
        Layout::Normal,
        &scratch.columns,
        Layout::Transposed,
        dweight,
    );
    row_sums(&scratch.product, dbias);
    if let Some(dx) = dx {
        assert_eq!(
            dx.len(),
            shape.input_len(),
            "conv2d_backward: input gradient shape"
        );
        scratch.column_grad.resize(patch * positions, 0.0);
        gemm(
            patch,
            positions,
            shape.out_channels,
            weight,
            Layout::Transposed,
            &scratch.product,
            Layout::Normal,
            &mut scratch.column_grad,
        );
        col2im(shape, &scratch.column_grad, dx);
    }
}

/// Unfolds `x` into `columns[(c·k + ki)·k + kj][b·OH·OW + oh·OW + ow] = x[b, c, oh+ki-p, ow+kj-p]`
/// (zero outside the input).
fn im2col(shape: &Conv2dShape, x: &[f32], columns: &mut [f32]) {
    let (k, p) = (shape.kernel, shape.padding);
    let (h, w) = (shape.height, shape.width);
    let (oh, ow) = (shape.out_height(), shape.out_width());
    let positions = shape.positions();
    if positions == 0 {
        return;
    }
    columns
        .par_chunks_mut(positions)
        .enumerate()
        .for_each(|(row, out)| {
            let channel = row / (k * k);
            let (ki, kj) = ((row / k) % k, row % k);
            for (sample, out_sample) in out.chunks_exact_mut(oh * ow).enumerate() {
                let plane = &x[(sample * shape.in_channels + channel) * h * w..][..h * w];
                for (r, out_row) in out_sample.chunks_exact_mut(ow).enumerate() {
                    let src_r = r + ki;
                    if src_r < p || src_r - p >= h {
                        out_row.fill(0.0);
                        continue;
                    }
                    let src = &plane[(src_r - p) * w..][..w];
                    for (c, value) in out_row.iter_mut().enumerate() {
                        let src_c = c + kj;
                        *value = if src_c < p || src_c - p >= w {
                            0.0
                        } else {
                            src[src_c - p]
                        };
                    }
                }
            }
        });
}

/// Folds column gradients back onto the input: each input gradient adds its contributions in
/// increasing `(kernel row, kernel column)` order, starting from zero.
fn col2im(shape: &Conv2dShape, columns: &[f32], dx: &mut [f32]) {
    let (k, p) = (shape.kernel, shape.padding);
    let (h, w) = (shape.height, shape.width);
    let (oh, ow) = (shape.out_height(), shape.out_width());
    let positions = shape.positions();
    let sample_len = shape.in_channels * h * w;
    if sample_len == 0 {
        return;
    }
    dx.par_chunks_mut(sample_len)
        .enumerate()
        .for_each(|(sample, dx_sample)| {
            dx_sample.fill(0.0);
            for (channel, dx_plane) in dx_sample.chunks_exact_mut(h * w).enumerate() {
                for ki in 0..k {
                    for kj in 0..k {
                        let row = (channel * k + ki) * k + kj;
                        let src = &columns[row * positions + sample * oh * ow..][..oh * ow];
                        for r in 0..oh {
                            let dst_r = r + ki;
                            if dst_r < p || dst_r - p >= h {
                                continue;
                            }
                            let dst = &mut dx_plane[(dst_r - p) * w..][..w];
                            for c in 0..ow {
                                let dst_c = c + kj;
                                if dst_c >= p && dst_c - p < w {
                                    dst[dst_c - p] += src[r * ow + c];
                                }
                            }
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Direct convolution in f64.
    #[allow(clippy::needless_range_loop)]
    fn reference(shape: &Conv2dShape, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f64> {
        let (oh, ow) = (shape.out_height(), shape.out_width());
        let (k, p) = (shape.kernel as isize, shape.padding as isize);
        let mut y = Vec::new();
        for n in 0..shape.batch {
            for o in 0..shape.out_channels {
                for r in 0..oh {
                    for c in 0..ow {
                        let mut sum = b[o] as f64;
                        for ch in 0..shape.in_channels {
                            for ki in 0..k {
                                for kj in 0..k {
                                    let (sr, sc) = (r as isize + ki - p, c as isize + kj - p);
                                    if sr < 0
                                        || sc < 0
                                        || sr >= shape.height as isize
                                        || sc >= shape.width as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((n * shape.in_channels + ch) * shape.height
                                        + sr as usize)
                                        * shape.width
                                        + sc as usize;
                                    let wi = ((o * shape.in_channels + ch) * shape.kernel
                                        + ki as usize)
                                        * shape.kernel
                                        + kj as usize;
                                    sum += x[xi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                        y.push(sum);
                    }
                }
            }
        }
        y
    }

    const SHAPE: Conv2dShape = Conv2dShape {
        batch: 2,
        in_channels: 3,
        out_channels: 5,
        height: 7,
        width: 6,
        kernel: 3,
        padding: 1,
    };

    #[test]
    fn forward_matches_direct_convolution_on_odd_sizes() {
        for shape in [
            SHAPE,
            Conv2dShape {
                padding: 0,
                kernel: 2,
                ..SHAPE
            },
        ] {
            let x = values(shape.input_len(), 1);
            let w = values(shape.weight_len(), 2);
            let b = values(shape.out_channels, 3);
            let mut y = vec![0.0; shape.output_len()];
            conv2d_forward(&shape, &x, &w, &b, &mut ConvScratch::default(), &mut y);
            for (got, want) in y.iter().zip(reference(&shape, &x, &w, &b)) {
                assert!((*got as f64 - want).abs() < 1e-5, "{got} vs {want}");
            }
        }
    }

    #[test]
    fn backward_matches_central_differences_of_a_weighted_sum() {
        let shape = SHAPE;
        let x = values(shape.input_len(), 4);
        let w = values(shape.weight_len(), 5);
        let b = values(shape.out_channels, 6);
        let probe = values(shape.output_len(), 7);
        // loss = Σ probe · conv(x, w, b); its gradient with respect to y is `probe`.
        let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
            reference(&shape, x, w, b)
                .iter()
                .zip(&probe)
                .map(|(y, p)| y * *p as f64)
                .sum()
        };
        let mut scratch = ConvScratch::default();
        let mut y = vec![0.0; shape.output_len()];
        conv2d_forward(&shape, &x, &w, &b, &mut scratch, &mut y);
        let (mut dw, mut db, mut dx) = (vec![0.0; w.len()], vec![0.0; b.len()], vec![0.0; x.len()]);
        conv2d_backward(
            &shape,
            &probe,
            &w,
            &mut scratch,
            &mut dw,
            &mut db,
            Some(&mut dx),
        );
        let h = 1e-2f32;
        let check = |analytic: &[f32], which: usize| {
            for (i, &g) in analytic.iter().enumerate() {
                let (mut xp, mut wp, mut bp) = (x.clone(), w.clone(), b.clone());
                let (mut xm, mut wm, mut bm) = (x.clone(), w.clone(), b.clone());
                match which {
                    0 => {
                        xp[i] += h;
                        xm[i] -= h;
                    }
                    1 => {
                        wp[i] += h;
                        wm[i] -= h;
                    }
                    _ => {
                        bp[i] += h;
                        bm[i] -= h;
                    }
                }
                let numeric = (loss(&xp, &wp, &bp) - loss(&xm, &wm, &bm)) / (2.0 * h as f64);
                assert!(
                    (numeric - g as f64).abs() < 1e-3,
                    "tensor {which} index {i}: {numeric} vs {g}"
                );
            }
        };
        check(&dx, 0);
        check(&dw, 1);
        check(&db, 2);
    }
}
