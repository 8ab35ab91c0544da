//! Row-major views of the update vectors an aggregation consumes.

use rayon::prelude::*;

use crate::RobustError;

/// Row-major view of `n` updates of dimension `d`: update `i` is `data[i * d..(i + 1) * d]`.
///
/// Construction checks the shape only; finiteness is checked by [`crate::aggregate`] according to
/// the [`crate::NonFinitePolicy`] of its [`crate::Context`].
#[derive(Clone, Copy, Debug)]
pub struct Updates<'a> {
    data: &'a [f32],
    n: usize,
    d: usize,
}

impl<'a> Updates<'a> {
    /// Wraps a flat buffer of `n * d` values as `n` updates of dimension `d`.
    ///
    /// ```
    /// let data = [1.0, 2.0, 3.0, 4.0];
    /// let updates = cairn_robust::Updates::new(&data, 2, 2).unwrap();
    /// assert_eq!(updates.row(1), &[3.0, 4.0]);
    /// ```
    pub fn new(data: &'a [f32], n: usize, d: usize) -> Result<Self, RobustError> {
        if n == 0 || d == 0 {
            return Err(RobustError::Empty { n, d });
        }
        let expected = n.checked_mul(d).ok_or(RobustError::TooLarge { n, d })?;
        if data.len() != expected {
            return Err(RobustError::LengthMismatch {
                n,
                d,
                expected,
                actual: data.len(),
            });
        }
        Ok(Self { data, n, d })
    }

    /// Number of updates.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Dimension of every update.
    pub fn d(&self) -> usize {
        self.d
    }

    /// Update `i`. Panics if `i >= n` (an index bug in the caller, not bad input).
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// The whole flat buffer, row-major.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    /// Position `(row, column)` of the first non-finite value, scanning rows in order.
    pub fn first_non_finite(&self) -> Option<(usize, usize)> {
        (0..self.n).into_par_iter().find_map_first(|i| {
            let row = self.row(i);
            // Branch-free scan (vectorizes); locate the value only in a row that has one.
            let finite = row
                .chunks(256)
                .all(|chunk| chunk.iter().fold(true, |ok, v| ok & v.is_finite()));
            if finite {
                None
            } else {
                row.iter()
                    .position(|v| !v.is_finite())
                    .map(|column| (i, column))
            }
        })
    }
}

/// Owned row-major matrix produced by pre-aggregation steps.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Matrix {
    pub(crate) data: Vec<f32>,
    pub(crate) n: usize,
    pub(crate) d: usize,
}

impl Matrix {
    /// Copies the rows of `updates` whose indices are listed, in that order.
    pub(crate) fn from_rows(updates: &Updates<'_>, rows: &[usize]) -> Self {
        let mut data = Vec::with_capacity(rows.len() * updates.d());
        for &i in rows {
            data.extend_from_slice(updates.row(i));
        }
        Self {
            data,
            n: rows.len(),
            d: updates.d(),
        }
    }

    /// Borrows the matrix as [`Updates`].
    pub(crate) fn view(&self) -> Result<Updates<'_>, RobustError> {
        Updates::new(&self.data, self.n, self.d)
    }
}
