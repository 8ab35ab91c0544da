//! Softmax cross-entropy: the training loss and its gradient with respect to the logits.
//!
//! Each row is shifted by its maximum before exponentiating (so no `exp` overflows), the
//! exponentials are summed in class order, and `exp`/`ln` come from the pure-Rust `libm` crate so
//! every platform rounds them the same way.

/// Mean cross-entropy of `batch` rows of `classes` logits against `labels`, writing
/// `d loss / d logits = (softmax - onehot) / batch` into `grad`.
///
/// Row losses are added in row order and the sum is divided by `batch`.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    grad: &mut [f32],
) -> f32 {
    let batch = labels.len();
    assert!(
        batch > 0 && classes > 0,
        "softmax_cross_entropy: empty batch or no classes"
    );
    assert_eq!(
        logits.len(),
        batch * classes,
        "softmax_cross_entropy: logits are not {batch}x{classes}"
    );
    assert_eq!(
        grad.len(),
        logits.len(),
        "softmax_cross_entropy: gradient length differs"
    );
    let scale = batch as f32;
    let mut total = 0.0f32;
    for ((row, out), &label) in logits
        .chunks_exact(classes)
        .zip(grad.chunks_exact_mut(classes))
        .zip(labels)
    {
        let label = label as usize;
        assert!(
            label < classes,
            "softmax_cross_entropy: label {label} >= {classes} classes"
        );
        let max = row_max(row);
        let mut sum = 0.0f32;
        for (g, &z) in out.iter_mut().zip(row) {
            let e = libm::expf(z - max);
            *g = e;
            sum += e;
        }
        for (j, g) in out.iter_mut().enumerate() {
            let target = if j == label { 1.0 } else { 0.0 };
            *g = (*g / sum - target) / scale;
        }
        total += (max + libm::logf(sum)) - row[label];
    }
    total / scale
}

/// Cross-entropy of each row of `classes` logits against its label, written to `losses`.
pub fn cross_entropy_rows(logits: &[f32], labels: &[u32], classes: usize, losses: &mut [f32]) {
    let batch = labels.len();
    assert!(classes > 0, "cross_entropy_rows: no classes");
    assert_eq!(
        logits.len(),
        batch * classes,
        "cross_entropy_rows: logits are not {batch}x{classes}"
    );
    assert_eq!(
        losses.len(),
        batch,
        "cross_entropy_rows: losses length differs"
    );
    for ((row, loss), &label) in logits
        .chunks_exact(classes)
        .zip(losses.iter_mut())
        .zip(labels)
    {
        let label = label as usize;
        assert!(
            label < classes,
            "cross_entropy_rows: label {label} >= {classes} classes"
        );
        let max = row_max(row);
        let mut sum = 0.0f32;
        for &z in row {
            sum += libm::expf(z - max);
        }
        *loss = (max + libm::logf(sum)) - row[label];
    }
}

/// The largest value of a row, scanning left to right.
fn row_max(row: &[f32]) -> f32 {
    row.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_matches_f64_reference_and_gradient_rows_sum_to_zero() {
        let logits = [2.0f32, -1.0, 0.5, 100.0, 99.0, -50.0];
        let labels = [0u32, 1];
        let mut grad = [0.0; 6];
        let loss = softmax_cross_entropy(&logits, &labels, 3, &mut grad);
        let mut expected = 0.0f64;
        for (row, &label) in logits.chunks(3).zip(&labels) {
            let max = row.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
            let lse = max
                + row
                    .iter()
                    .map(|&v| (v as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
            expected += lse - row[label as usize] as f64;
        }
        expected /= 2.0;
        assert!(
            (loss as f64 - expected).abs() < 1e-5,
            "{loss} vs {expected}"
        );
        for row in grad.chunks(3) {
            assert!(row.iter().sum::<f32>().abs() < 1e-6);
        }
        let mut rows = [0.0; 2];
        cross_entropy_rows(&logits, &labels, 3, &mut rows);
        assert_eq!(((rows[0] + rows[1]) / 2.0).to_bits(), loss.to_bits());
    }

    #[test]
    fn gradient_matches_central_differences() {
        let logits = [0.3f32, -0.7, 1.1, 0.0, 0.25, -0.4, 0.9, -1.3];
        let labels = [2u32, 0];
        let mut grad = [0.0; 8];
        softmax_cross_entropy(&logits, &labels, 4, &mut grad);
        let loss64 = |z: &[f64]| -> f64 {
            z.chunks(4)
                .zip(&labels)
                .map(|(row, &l)| {
                    let max = row.iter().fold(f64::MIN, |m, &v| m.max(v));
                    max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln() - row[l as usize]
                })
                .sum::<f64>()
                / 2.0
        };
        let base: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
        for i in 0..8 {
            let h = 1e-6;
            let mut plus = base.clone();
            plus[i] += h;
            let mut minus = base.clone();
            minus[i] -= h;
            let numeric = (loss64(&plus) - loss64(&minus)) / (2.0 * h);
            assert!(
                (numeric - grad[i] as f64).abs() < 1e-5,
                "logit {i}: {numeric} vs {}",
                grad[i]
            );
        }
    }
}
