//! Nearest-neighbour mixing (Allouah et al. 2023; ByzFL `NNM`).
//!
//! `NNM_f(x_1..x_n) = (y_1..y_n)`, `y_i = (1/(n − f)) Σ_{j ∈ N_i} x_j`, `N_i` the `n − f`
//! nearest neighbours of `x_i` (itself included; ties by index), summed in index order.
//! Requirement: `n >= 2f + 1`. Memory: the `n × n` distance matrix, the `n × d` output and one
//! `n × d` staging copy (blocks are computed coordinate-block by coordinate-block so every input
//! row is read once per block, then scattered into rows).

use rayon::prelude::*;

use crate::distance::{nearest, pairwise_squared_distances};
use crate::updates::{Matrix, Updates};
use crate::RobustError;

const SPAN: usize = 2048;

/// Mixes every update with its `n − f` nearest neighbours.
pub(crate) fn mix(updates: &Updates<'_>, f: usize) -> Result<Matrix, RobustError> {
    let n = updates.n();
    let d = updates.d();
    let distances = pairwise_squared_distances(updates)?;
    let neighbourhoods: Vec<Vec<usize>> = (0..n)
        .map(|i| nearest(&distances[i * n..(i + 1) * n], n - f))
        .collect();
    let count = (n - f) as f64;
    let blocks: Vec<Vec<f32>> = (0..d.div_ceil(SPAN))
        .into_par_iter()
        .map(|block| {
            let start = block * SPAN;
            let width = SPAN.min(d - start);
            let mut out = vec![0.0f32; n * width];
            let mut sums = vec![0.0f64; width];
            for (i, neighbours) in neighbourhoods.iter().enumerate() {
                sums.iter_mut().for_each(|s| *s = 0.0);
                for &j in neighbours {
                    let row = &updates.row(j)[start..start + width];
                    for (sum, &x) in sums.iter_mut().zip(row) {
                        *sum += f64::from(x);
                    }
                }
                for (slot, sum) in out[i * width..(i + 1) * width].iter_mut().zip(&sums) {
                    *slot = (sum / count) as f32;
                }
            }
            out
        })
        .collect();
    let mut data = vec![0.0f32; n * d];
    data.par_chunks_mut(d).enumerate().for_each(|(i, row)| {
        for (block, staged) in blocks.iter().enumerate() {
            let start = block * SPAN;
            let width = SPAN.min(d - start);
            row[start..start + width].copy_from_slice(&staged[i * width..(i + 1) * width]);
        }
    });
    Ok(Matrix { data, n, d })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fixture::BYZFL_3X3;

    #[test]
    fn nnm_matches_byzfl_documentation_example() {
        let updates = Updates::new(&BYZFL_3X3, 3, 3).unwrap();
        let mixed = mix(&updates, 1).unwrap();
        assert_eq!(
            mixed.data,
            vec![2.5, 3.5, 4.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]
        );
    }
}
