//! Bias addition and bias gradients (sums over the batch in a fixed order).

/// Number of partial-sum lanes in [`row_sums`]; fixed so the result never depends on the CPU.
const LANES: usize = 8;

/// Adds `bias[j]` to column `j` of the row-major `rows x bias.len()` matrix `y` (dense layers).
pub fn add_bias_rows(y: &mut [f32], bias: &[f32]) {
    let width = bias.len();
    assert!(
        width > 0 && y.len() % width == 0,
        "add_bias_rows: {} values are not rows of {width}",
        y.len()
    );
    for row in y.chunks_exact_mut(width) {
        for (value, &b) in row.iter_mut().zip(bias) {
            *value += b;
        }
    }
}

/// Adds `bias[i]` to every value of row `i` of the row-major `bias.len() x cols` matrix `y`.
pub fn add_bias_columns(y: &mut [f32], bias: &[f32]) {
    let rows = bias.len();
    assert!(
        rows > 0 && y.len() % rows == 0,
        "add_bias_columns: {} values are not {rows} rows",
        y.len()
    );
    let cols = y.len() / rows;
    for (row, &b) in y.chunks_exact_mut(cols.max(1)).zip(bias) {
        for value in row {
            *value += b;
        }
    }
}

/// `sums[j] = Σ_r x[r][j]` over the rows of the row-major `rows x sums.len()` matrix `x`, adding
/// rows in increasing order starting from zero (dense bias gradient).
pub fn column_sums(x: &[f32], sums: &mut [f32]) {
    let width = sums.len();
    assert!(
        width > 0 && x.len() % width == 0,
        "column_sums: {} values are not rows of {width}",
        x.len()
    );
    sums.fill(0.0);
    for row in x.chunks_exact(width) {
        for (sum, &value) in sums.iter_mut().zip(row) {
            *sum += value;
        }
    }
}

/// `sums[i] = Σ_c x[i][c]` over row `i` of the row-major `sums.len() x cols` matrix `x`
/// (convolution bias gradient).
///
/// Each row is summed in [`LANES`] interleaved partial sums (value `c` goes to lane `c mod 8`,
/// for the longest prefix that is a multiple of 8), the lanes are combined in the fixed tree
/// `((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7))`, and the tail is added in order.
pub fn row_sums(x: &[f32], sums: &mut [f32]) {
    let rows = sums.len();
    assert!(
        rows > 0 && x.len() % rows == 0,
        "row_sums: {} values are not {rows} rows",
        x.len()
    );
    let cols = x.len() / rows;
    if cols == 0 {
        sums.fill(0.0);
        return;
    }
    for (sum, row) in sums.iter_mut().zip(x.chunks_exact(cols)) {
        let mut lanes = [0.0f32; LANES];
        let chunks = row.chunks_exact(LANES);
        let tail = chunks.remainder();
        for chunk in chunks {
            for (lane, &value) in lanes.iter_mut().zip(chunk) {
                *lane += value;
            }
        }
        let mut total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
            + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
        for &value in tail {
            total += value;
        }
        *sum = total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn biases_are_added_per_column_and_per_row() {
        let mut y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        add_bias_rows(&mut y, &[10.0, 20.0, 30.0]);
        assert_eq!(y, [11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
        add_bias_columns(&mut y, &[1.0, -1.0]);
        assert_eq!(y, [12.0, 23.0, 34.0, 13.0, 24.0, 35.0]);
    }

    #[test]
    fn column_sums_add_rows_in_order() {
        let mut sums = [0.0; 2];
        column_sums(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut sums);
        assert_eq!(sums, [9.0, 12.0]);
    }

    #[test]
    fn row_sums_follow_the_documented_lane_tree() {
        let row: Vec<f32> = (0..19).map(|i| 1.0 / (i as f32 + 1.0)).collect();
        let mut lanes = [0.0f32; 8];
        for (i, &v) in row[..16].iter().enumerate() {
            lanes[i % 8] += v;
        }
        let mut expected = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
            + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
        for &v in &row[16..] {
            expected += v;
        }
        let mut x = row.clone();
        x.extend(row.iter().map(|v| -v));
        let mut sums = [0.0; 2];
        row_sums(&x, &mut sums);
        assert_eq!(sums[0].to_bits(), expected.to_bits());
        assert_eq!(sums[1].to_bits(), (-expected).to_bits());
    }
}
