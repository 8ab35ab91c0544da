//! The in-memory labelled dataset every reader produces and every model consumes.

use thiserror::Error;

/// Errors from building or slicing a [`Dataset`].
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DatasetError {
    /// `features.len()` is not `labels.len() * dim`.
    #[error("dataset has {features} feature values for {labels} labels of dimension {dim}")]
    ShapeMismatch {
        /// Number of feature values given.
        features: usize,
        /// Number of labels given.
        labels: usize,
        /// Feature dimension per sample.
        dim: usize,
    },
    /// A label is not below the number of classes.
    #[error("label {label} of sample {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// Index of the offending sample.
        index: usize,
        /// The label found.
        label: u32,
        /// Number of classes.
        classes: usize,
    },
    /// `shape` does not multiply out to `dim`.
    #[error("image shape {shape:?} does not hold {dim} features")]
    BadImageShape {
        /// The (channels, height, width) given.
        shape: (usize, usize, usize),
        /// Feature dimension per sample.
        dim: usize,
    },
    /// A sample index is past the end of the dataset.
    #[error("sample index {index} is out of range for a dataset of {len} samples")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// Number of samples in the dataset.
        len: usize,
    },
}

/// A labelled dataset held in memory: `len` samples of `dim` features each, row-major.
///
/// Features are f32 scaled to `[0, 1]` by the readers; labels are class indices below `classes`.
/// `shape` is the (channels, height, width) of one sample, so image models know its layout
/// (`(1, 1, dim)` for data that is not an image).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    features: Vec<f32>,
    labels: Vec<u32>,
    dim: usize,
    classes: usize,
    shape: (usize, usize, usize),
}

impl Dataset {
    /// Builds a dataset, checking that every length and label is consistent.
    pub fn new(
        features: Vec<f32>,
        labels: Vec<u32>,
        classes: usize,
        shape: (usize, usize, usize),
    ) -> Result<Self, DatasetError> {
        let dim = shape
            .0
            .checked_mul(shape.1)
            .and_then(|d| d.checked_mul(shape.2))
            .ok_or(DatasetError::BadImageShape {
                shape,
                dim: usize::MAX,
            })?;
        if dim == 0 {
            return Err(DatasetError::BadImageShape { shape, dim });
        }
        if Some(features.len()) != labels.len().checked_mul(dim) {
            return Err(DatasetError::ShapeMismatch {
                features: features.len(),
                labels: labels.len(),
                dim,
            });
        }
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= classes)
        {
            return Err(DatasetError::LabelOutOfRange {
                index,
                label,
                classes,
            });
        }
        Ok(Self {
            features,
            labels,
            dim,
            classes,
            shape,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset holds no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Features per sample.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of classes labels are drawn from.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// (channels, height, width) of one sample.
    pub fn shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    /// All features, row-major `len x dim`.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// All labels.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// The features of sample `index`.
    pub fn sample(&self, index: usize) -> Option<&[f32]> {
        let start = index.checked_mul(self.dim)?;
        self.features.get(start..start.checked_add(self.dim)?)
    }

    /// A new dataset of the samples at `indices`, in that order (repeats allowed).
    pub fn subset(&self, indices: &[usize]) -> Result<Self, DatasetError> {
        let mut features = Vec::with_capacity(indices.len() * self.dim);
        let mut labels = Vec::with_capacity(indices.len());
        for &index in indices {
            let row = self.sample(index).ok_or(DatasetError::IndexOutOfRange {
                index,
                len: self.len(),
            })?;
            features.extend_from_slice(row);
            labels.push(self.labels[index]);
        }
        Ok(Self {
            features,
            labels,
            dim: self.dim,
            classes: self.classes,
            shape: self.shape,
        })
    }

    /// Copies the samples at `indices` into `x` (row-major) and their labels into `y`, replacing
    /// what the buffers held; used to assemble mini-batches without reallocating.
    pub fn gather(
        &self,
        indices: &[usize],
        x: &mut Vec<f32>,
        y: &mut Vec<u32>,
    ) -> Result<(), DatasetError> {
        x.clear();
        y.clear();
        for &index in indices {
            let row = self.sample(index).ok_or(DatasetError::IndexOutOfRange {
                index,
                len: self.len(),
            })?;
            x.extend_from_slice(row);
            y.push(self.labels[index]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rejects_label_out_of_range() {
        let err = Dataset::new(vec![0.0; 4], vec![0, 3], 3, (1, 1, 2)).unwrap_err();
        assert_eq!(
            err,
            DatasetError::LabelOutOfRange {
                index: 1,
                label: 3,
                classes: 3
            }
        );
    }

    #[test]
    fn new_rejects_feature_count_mismatch() {
        let err = Dataset::new(vec![0.0; 5], vec![0, 1], 3, (1, 1, 2)).unwrap_err();
        assert!(matches!(
            err,
            DatasetError::ShapeMismatch { features: 5, .. }
        ));
    }

    #[test]
    fn overflowing_shape_and_index_are_errors_not_wraps() {
        let err = Dataset::new(Vec::new(), Vec::new(), 2, (usize::MAX, 2, 1)).unwrap_err();
        assert!(matches!(err, DatasetError::BadImageShape { .. }));
        let ds = Dataset::new(vec![0.0, 1.0], vec![0], 2, (1, 1, 2)).unwrap();
        assert_eq!(ds.sample(usize::MAX), None);
        assert_eq!(ds.sample(usize::MAX / 2 + 1), None);
    }

    #[test]
    fn subset_and_gather_copy_rows_in_order() {
        let ds = Dataset::new(
            vec![0.0, 0.1, 1.0, 1.1, 2.0, 2.1],
            vec![0, 1, 2],
            3,
            (1, 1, 2),
        )
        .unwrap();
        let sub = ds.subset(&[2, 0]).unwrap();
        assert_eq!(sub.features(), &[2.0, 2.1, 0.0, 0.1]);
        assert_eq!(sub.labels(), &[2, 0]);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        ds.gather(&[1, 1], &mut x, &mut y).unwrap();
        assert_eq!(x, vec![1.0, 1.1, 1.0, 1.1]);
        assert_eq!(y, vec![1, 1]);
        assert_eq!(
            ds.subset(&[3]).unwrap_err(),
            DatasetError::IndexOutOfRange { index: 3, len: 3 }
        );
    }
}
