//! Coordinate-wise mean and sample standard deviation of the honest updates, in `f64`, summed in
//! row order so that every machine gets the same bits.

use super::Honest;

/// Coordinate-wise mean `μ_j = (1/h) Σ_i x_ij`.
pub(crate) fn mean(honest: &Honest<'_>) -> Vec<f64> {
    let mut sum = vec![0.0f64; honest.d];
    for i in 0..honest.rows {
        for (s, &x) in sum.iter_mut().zip(honest.row(i)) {
            *s += f64::from(x);
        }
    }
    let rows = honest.rows as f64;
    sum.iter().map(|s| s / rows).collect()
}

/// Coordinate-wise mean and sample standard deviation
/// `σ_j = sqrt(Σ_i (x_ij − μ_j)² / (h − 1))` (ByzFL's `ddof = 1`); with a single honest update
/// the spread is taken as zero.
pub(crate) fn mean_and_std(honest: &Honest<'_>) -> (Vec<f64>, Vec<f64>) {
    let mean = mean(honest);
    let mut squares = vec![0.0f64; honest.d];
    for i in 0..honest.rows {
        for ((s, &x), m) in squares.iter_mut().zip(honest.row(i)).zip(&mean) {
            let delta = f64::from(x) - m;
            *s += delta * delta;
        }
    }
    let std = if honest.rows < 2 {
        vec![0.0; honest.d]
    } else {
        let dof = (honest.rows - 1) as f64;
        squares.iter().map(|s| (s / dof).sqrt()).collect()
    };
    (mean, std)
}

/// Squared Euclidean distance between two vectors, in `f64`.
pub(crate) fn squared_distance(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, y)| {
            let delta = f64::from(x) - y;
            delta * delta
        })
        .sum()
}
