//! Seeded train/test splits, plain and stratified by label.
//!
//! Both take `n_test = round(len * test_fraction)` samples (round half away from zero) for the
//! test side and need both sides non-empty. Both return each side in a seeded random order (the
//! shipped `mnist_5k` rows are sorted by label, so keeping file order would hand a trainer one
//! class at a time).

use thiserror::Error;

use super::sampling::{rng, shuffle, STREAM_SPLIT, STREAM_STRATIFIED};
use super::{Dataset, DatasetError};

/// Errors from splitting a dataset.
#[derive(Debug, Error, PartialEq)]
pub enum SplitError {
    /// The test fraction is not strictly between 0 and 1.
    #[error("test fraction {0} is not strictly between 0 and 1")]
    BadFraction(f64),
    /// The fraction rounds to an empty train or test side.
    #[error(
        "a test fraction of {fraction} of {samples} samples gives {test} test samples; \
         train and test must both be non-empty"
    )]
    EmptySide {
        /// The test fraction asked for.
        fraction: f64,
        /// Samples in the dataset.
        samples: usize,
        /// Test samples it rounds to.
        test: usize,
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
    /// Building the train or test dataset failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

/// Which samples go to training and which to testing, as indices into the original dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitIndices {
    /// Training samples, in a seeded random order.
    pub train: Vec<usize>,
    /// Test samples, in a seeded random order.
    pub test: Vec<usize>,
}

/// A dataset split into training and held-out test samples.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainTest {
    /// The training samples.
    pub train: Dataset,
    /// The test samples.
    pub test: Dataset,
}

impl TrainTest {
    /// Builds both sides from `dataset` by the given indices.
    pub fn from_indices(dataset: &Dataset, split: &SplitIndices) -> Result<Self, DatasetError> {
        Ok(Self {
            train: dataset.subset(&split.train)?,
            test: dataset.subset(&split.test)?,
        })
    }
}

/// The number of test samples for `samples` and `fraction`, checking both sides are non-empty.
fn test_count(samples: usize, fraction: f64) -> Result<usize, SplitError> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(SplitError::BadFraction(fraction));
    }
    let test = (samples as f64 * fraction).round() as usize;
    if test == 0 || test >= samples {
        return Err(SplitError::EmptySide {
            fraction,
            samples,
            test,
        });
    }
    Ok(test)
}

/// Splits `0..samples` at random: a seeded Fisher-Yates shuffle of all indices, the first
/// `round(samples * test_fraction)` of it to test, the rest to train.
pub fn split_indices(
    samples: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<SplitIndices, SplitError> {
    let test = test_count(samples, test_fraction)?;
    let mut order: Vec<usize> = (0..samples).collect();
    shuffle(&mut rng(seed, STREAM_SPLIT), &mut order);
    let train = order.split_off(test);
    Ok(SplitIndices { train, test: order })
}

/// Splits samples by label so each class keeps its share on both sides.
///
/// The `n_test = round(len * test_fraction)` test places are apportioned to classes by the
/// largest-remainder method on exact integers: class `c` with `n_c` samples gets
/// `floor(n_c * n_test / len)`, and the places left go one each to the classes with the largest
/// remainders `n_c * n_test mod len` (ties to the lower class). Then, with one seeded stream, each
/// class's indices (ascending) are shuffled in class order and the first of them go to test; last,
/// the test side and then the train side are shuffled.
pub fn stratified_split_indices(
    labels: &[u32],
    classes: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<SplitIndices, SplitError> {
    let samples = labels.len();
    let test = test_count(samples, test_fraction)?;
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes)
    {
        return Err(SplitError::LabelOutOfRange {
            index,
            label,
            classes,
        });
    }
    // Sized by the labels present (empty classes get no test places and draw nothing).
    let present = labels.iter().max().map_or(0, |&l| l as usize + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); present];
    for (index, &label) in labels.iter().enumerate() {
        by_class[label as usize].push(index);
    }
    let quotas = largest_remainder(&by_class.iter().map(Vec::len).collect::<Vec<_>>(), test);
    let mut rng = rng(seed, STREAM_STRATIFIED);
    let mut split = SplitIndices {
        train: Vec::with_capacity(samples - test),
        test: Vec::with_capacity(test),
    };
    for (mut members, quota) in by_class.into_iter().zip(quotas) {
        shuffle(&mut rng, &mut members);
        split.test.extend_from_slice(&members[..quota]);
        split.train.extend_from_slice(&members[quota..]);
    }
    shuffle(&mut rng, &mut split.test);
    shuffle(&mut rng, &mut split.train);
    Ok(split)
}

/// Apportions `places` among groups of the given sizes in proportion to size (largest remainder,
/// ties to the lower group). `places` must not exceed the total size.
pub(crate) fn largest_remainder(sizes: &[usize], places: usize) -> Vec<usize> {
    let total: u128 = sizes.iter().map(|&s| s as u128).sum();
    if total == 0 {
        return vec![0; sizes.len()];
    }
    let exact: Vec<u128> = sizes.iter().map(|&s| s as u128 * places as u128).collect();
    let mut quotas: Vec<usize> = exact.iter().map(|&e| (e / total) as usize).collect();
    let given: usize = quotas.iter().sum();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    // Stable sort keeps lower groups first among equal remainders.
    order.sort_by(|&a, &b| (exact[b] % total).cmp(&(exact[a] % total)));
    for &group in order.iter().take(places.saturating_sub(given)) {
        quotas[group] += 1;
    }
    quotas
}

/// Splits a dataset at random; see [`split_indices`] for the exact procedure.
pub fn train_test_split(
    dataset: &Dataset,
    test_fraction: f64,
    seed: u64,
) -> Result<TrainTest, SplitError> {
    let split = split_indices(dataset.len(), test_fraction, seed)?;
    Ok(TrainTest::from_indices(dataset, &split)?)
}

/// Splits a dataset keeping each class's share on both sides; see [`stratified_split_indices`].
pub fn stratified_split(
    dataset: &Dataset,
    test_fraction: f64,
    seed: u64,
) -> Result<TrainTest, SplitError> {
    let split = stratified_split_indices(dataset.labels(), dataset.classes(), test_fraction, seed)?;
    Ok(TrainTest::from_indices(dataset, &split)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_remainder_gives_exact_totals_and_breaks_ties_low() {
        assert_eq!(largest_remainder(&[500; 10], 1000 / 5), vec![20; 10]);
        assert_eq!(largest_remainder(&[1, 1, 1], 2), vec![1, 1, 0]);
        assert_eq!(largest_remainder(&[6, 3, 1], 5), vec![3, 2, 0]);
        assert_eq!(largest_remainder(&[0, 0], 0), vec![0, 0]);
    }

    #[test]
    fn fractions_outside_zero_one_or_rounding_to_empty_sides_are_rejected() {
        assert_eq!(split_indices(10, 0.0, 1), Err(SplitError::BadFraction(0.0)));
        assert!(matches!(
            split_indices(10, f64::NAN, 1),
            Err(SplitError::BadFraction(_))
        ));
        assert!(matches!(
            split_indices(10, 0.01, 1),
            Err(SplitError::EmptySide { test: 0, .. })
        ));
        assert!(matches!(
            split_indices(10, 0.99, 1),
            Err(SplitError::EmptySide { test: 10, .. })
        ));
    }

    #[test]
    fn plain_split_partitions_all_indices() {
        let split = split_indices(101, 0.3, 9).unwrap();
        assert_eq!(split.test.len(), 30);
        let mut all: Vec<usize> = split.train.iter().chain(&split.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..101).collect::<Vec<_>>());
        assert_eq!(split, split_indices(101, 0.3, 9).unwrap());
        assert_ne!(split, split_indices(101, 0.3, 10).unwrap());
    }

    #[test]
    fn stratified_split_keeps_class_shares_of_sorted_labels() {
        let labels: Vec<u32> = (0..10).flat_map(|c| std::iter::repeat_n(c, 500)).collect();
        let split = stratified_split_indices(&labels, 10, 0.2, 3).unwrap();
        let mut per_class = [0usize; 10];
        for &i in &split.test {
            per_class[labels[i] as usize] += 1;
        }
        assert_eq!(per_class, [100; 10]);
        assert_eq!(split.train.len(), 4000);
        // The test side is shuffled, not grouped by class.
        let first_ten: Vec<u32> = split.test[..10].iter().map(|&i| labels[i]).collect();
        assert!(first_ten.windows(2).any(|w| w[0] != w[1]), "{first_ten:?}");
    }

    #[test]
    fn stratified_split_rejects_labels_past_classes() {
        assert_eq!(
            stratified_split_indices(&[0, 1, 5, 1], 3, 0.5, 0),
            Err(SplitError::LabelOutOfRange {
                index: 2,
                label: 5,
                classes: 3
            })
        );
    }
}
