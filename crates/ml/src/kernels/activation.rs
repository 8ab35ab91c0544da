//! Rectified linear unit, forward and backward.

/// `y = max(x, 0)`, element by element (a NaN input gives 0).
pub fn relu_forward(x: &[f32], y: &mut [f32]) {
    assert_eq!(
        x.len(),
        y.len(),
        "relu_forward: input and output lengths differ"
    );
    for (out, &value) in y.iter_mut().zip(x) {
        *out = if value > 0.0 { value } else { 0.0 };
    }
}

/// `dx = dy` where the forward input was positive, else 0.
pub fn relu_backward(x: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert_eq!(
        x.len(),
        dy.len(),
        "relu_backward: input and gradient lengths differ"
    );
    assert_eq!(
        x.len(),
        dx.len(),
        "relu_backward: input and output lengths differ"
    );
    for ((out, &value), &grad) in dx.iter_mut().zip(x).zip(dy) {
        *out = if value > 0.0 { grad } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_clamps_negatives_and_gates_gradients() {
        let x = [-1.0, 0.0, 2.5, f32::NAN];
        let mut y = [9.0; 4];
        relu_forward(&x, &mut y);
        assert_eq!(y, [0.0, 0.0, 2.5, 0.0]);
        let mut dx = [9.0; 4];
        relu_backward(&x, &[1.0, 2.0, 3.0, 4.0], &mut dx);
        assert_eq!(dx, [0.0, 0.0, 3.0, 0.0]);
    }
}
