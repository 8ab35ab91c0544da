//! 2x2 max pooling with stride 2 (odd trailing rows and columns are dropped, as in PyTorch).

/// Pools each of `planes` `height x width` planes of `x` into `y` (`height/2 x width/2` each),
/// recording in `argmax` the index within its plane of the input each output came from.
///
/// Ties go to the first maximum in the order (0,0), (0,1), (1,0), (1,1).
pub fn max_pool2_forward(
    x: &[f32],
    planes: usize,
    height: usize,
    width: usize,
    y: &mut [f32],
    argmax: &mut [u32],
) {
    let (out_h, out_w) = (height / 2, width / 2);
    assert_eq!(
        x.len(),
        planes * height * width,
        "max_pool2_forward: input shape"
    );
    assert_eq!(
        y.len(),
        planes * out_h * out_w,
        "max_pool2_forward: output shape"
    );
    assert_eq!(argmax.len(), y.len(), "max_pool2_forward: argmax shape");
    if y.is_empty() {
        return;
    }
    let outputs = y
        .chunks_exact_mut(out_h * out_w)
        .zip(argmax.chunks_exact_mut(out_h * out_w));
    for (plane, (y_plane, arg_plane)) in x.chunks_exact(height * width).zip(outputs) {
        for oh in 0..out_h {
            for ow in 0..out_w {
                let top = 2 * oh * width + 2 * ow;
                let mut best = top;
                for candidate in [top + 1, top + width, top + width + 1] {
                    if plane[candidate] > plane[best] {
                        best = candidate;
                    }
                }
                y_plane[oh * out_w + ow] = plane[best];
                arg_plane[oh * out_w + ow] = best as u32;
            }
        }
    }
}

/// Routes each output gradient to the input the forward pass took it from; all else is zero.
pub fn max_pool2_backward(
    dy: &[f32],
    argmax: &[u32],
    planes: usize,
    height: usize,
    width: usize,
    dx: &mut [f32],
) {
    let pooled = (height / 2) * (width / 2);
    assert_eq!(
        dx.len(),
        planes * height * width,
        "max_pool2_backward: input shape"
    );
    assert_eq!(
        dy.len(),
        planes * pooled,
        "max_pool2_backward: output shape"
    );
    assert_eq!(argmax.len(), dy.len(), "max_pool2_backward: argmax shape");
    dx.fill(0.0);
    if pooled == 0 {
        return;
    }
    let inputs = dy.chunks_exact(pooled).zip(argmax.chunks_exact(pooled));
    for (dx_plane, (dy_plane, arg_plane)) in dx.chunks_exact_mut(height * width).zip(inputs) {
        for (&grad, &index) in dy_plane.iter().zip(arg_plane) {
            dx_plane[index as usize] = grad;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_picks_window_maxima_and_routes_gradients_back() {
        // One 3x4 plane; the last row is dropped.
        let x = [1.0, 5.0, 2.0, 2.0, 3.0, 4.0, 0.0, -1.0, 9.0, 9.0, 9.0, 9.0];
        let mut y = [0.0; 2];
        let mut arg = [0u32; 2];
        max_pool2_forward(&x, 1, 3, 4, &mut y, &mut arg);
        assert_eq!(y, [5.0, 2.0]);
        assert_eq!(arg, [1, 2]);
        let mut dx = [7.0; 12];
        max_pool2_backward(&[0.5, -2.0], &arg, 1, 3, 4, &mut dx);
        let mut expected = [0.0; 12];
        expected[1] = 0.5;
        expected[2] = -2.0;
        assert_eq!(dx, expected);
    }
}
