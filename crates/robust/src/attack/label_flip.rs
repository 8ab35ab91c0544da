//! Label flipping: a data-side attack. The Byzantine trainer trains honestly on data whose labels
//! are mirrored, `y ↦ C − 1 − y` for `C` classes.

use super::AttackError;

/// The flipped label `classes − 1 − label`.
///
/// ```
/// assert_eq!(cairn_robust::attack::flip_label(0, 10).unwrap(), 9);
/// assert_eq!(cairn_robust::attack::flip_label(3, 10).unwrap(), 6);
/// ```
pub fn flip_label(label: u32, classes: u32) -> Result<u32, AttackError> {
    if label >= classes {
        return Err(AttackError::LabelOutOfRange { label, classes });
    }
    Ok(classes - 1 - label)
}

/// Flips every label of a slice in place; on an out-of-range label nothing is changed.
pub fn flip_labels(labels: &mut [u32], classes: u32) -> Result<(), AttackError> {
    if let Some(&label) = labels.iter().find(|&&label| label >= classes) {
        return Err(AttackError::LabelOutOfRange { label, classes });
    }
    for label in labels.iter_mut() {
        *label = classes - 1 - *label;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipping_twice_restores_the_labels() {
        let original = vec![0, 1, 2, 9, 5];
        let mut labels = original.clone();
        flip_labels(&mut labels, 10).unwrap();
        assert_eq!(labels, vec![9, 8, 7, 0, 4]);
        flip_labels(&mut labels, 10).unwrap();
        assert_eq!(labels, original);
    }

    #[test]
    fn out_of_range_labels_are_refused_and_left_untouched() {
        let mut labels = vec![1, 10, 2];
        assert_eq!(
            flip_labels(&mut labels, 10),
            Err(AttackError::LabelOutOfRange {
                label: 10,
                classes: 10
            })
        );
        assert_eq!(labels, vec![1, 10, 2]);
        assert!(flip_label(0, 0).is_err());
    }
}
