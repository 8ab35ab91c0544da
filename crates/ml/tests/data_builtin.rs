//! The shipped datasets (and Fashion-MNIST when installed) load with the documented counts,
//! shapes, label histograms and splits.

use std::path::PathBuf;

use cairn_ml::data::{
    find_data_dir, find_fashion_mnist_dir, label_counts, read_csv, BuiltinDataset, Dataset,
    FASHION_MNIST_DIR_ENV,
};

fn data_dir() -> PathBuf {
    find_data_dir(None, &PathBuf::from(env!("CARGO_MANIFEST_DIR"))).expect("repository data dir")
}

fn histogram(dataset: &Dataset) -> Vec<usize> {
    let all: Vec<usize> = (0..dataset.len()).collect();
    label_counts(dataset.labels(), dataset.classes(), &[all]).remove(0)
}

fn assert_scaled(dataset: &Dataset) {
    let features = dataset.features();
    assert!(features.iter().all(|x| (0.0..=1.0).contains(x)));
    assert!(
        features.contains(&1.0),
        "the brightest pixel should scale to exactly 1"
    );
}

#[test]
fn digits_file_holds_1797_samples_of_8x8_with_the_known_histogram() {
    let dataset = read_csv(
        &data_dir().join("digits.csv.gz"),
        &BuiltinDataset::Digits.csv_format().unwrap(),
    )
    .unwrap();
    assert_eq!(dataset.len(), 1797);
    assert_eq!(dataset.shape(), (1, 8, 8));
    assert_eq!(dataset.dim(), 64);
    assert_eq!(
        histogram(&dataset),
        vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    );
    assert_scaled(&dataset);
    // First row of the file: 0,0,5,13,9,1,0,0,... label 0.
    assert_eq!(
        &dataset.sample(0).unwrap()[..4],
        &[0.0, 0.0, 5.0 / 16.0, 13.0 / 16.0]
    );
    assert_eq!(dataset.labels()[0], 0);
}

#[test]
fn digits_split_is_stratified_1438_to_359_and_seeded() {
    let split = BuiltinDataset::Digits.load(&data_dir(), 7).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (1438, 359));
    assert_eq!(split.train.shape(), (1, 8, 8));
    let test = histogram(&split.test);
    // Largest remainder of 359 places over the class sizes: each class gets 35 to 37.
    assert_eq!(test.iter().sum::<usize>(), 359);
    assert!(test.iter().all(|&c| (35..=37).contains(&c)), "{test:?}");
    let again = BuiltinDataset::Digits.load(&data_dir(), 7).unwrap();
    assert_eq!(split, again);
    let other = BuiltinDataset::Digits.load(&data_dir(), 8).unwrap();
    assert_ne!(split.test.labels(), other.test.labels());
}

#[test]
fn mnist_5k_splits_4000_to_1000_with_100_test_samples_per_class() {
    let split = BuiltinDataset::Mnist5k.load(&data_dir(), 1).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (4000, 1000));
    assert_eq!(split.train.shape(), (1, 28, 28));
    assert_eq!(split.train.dim(), 784);
    assert_eq!(histogram(&split.train), vec![400; 10]);
    assert_eq!(histogram(&split.test), vec![100; 10]);
    assert_scaled(&split.train);
    // The file is sorted by label; the split's order is not.
    let first: Vec<u32> = split.train.labels()[..20].to_vec();
    assert!(first.windows(2).any(|w| w[0] != w[1]), "{first:?}");
}

#[test]
fn fashion_mnist_loads_60000_train_and_10000_test_when_installed() {
    let env = std::env::var_os(FASHION_MNIST_DIR_ENV);
    let dir = match find_fashion_mnist_dir(&data_dir(), env) {
        Ok(dir) => dir,
        Err(err) => {
            eprintln!("skipping the Fashion-MNIST test: {err}");
            return;
        }
    };
    let split = cairn_ml::data::load_fashion_mnist(&dir).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (60_000, 10_000));
    assert_eq!(split.train.shape(), (1, 28, 28));
    assert_eq!(split.test.shape(), (1, 28, 28));
    assert_eq!(histogram(&split.train), vec![6000; 10]);
    assert_eq!(histogram(&split.test), vec![1000; 10]);
    assert_scaled(&split.train);
    // The first training image is an ankle boot (class 9), the first test image too.
    assert_eq!(split.train.labels()[0], 9);
    assert_eq!(split.test.labels()[0], 9);
}
