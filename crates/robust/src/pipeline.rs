//! The single entry point: screen non-finite updates, run the pre-aggregation chain, apply the
//! rule, check the output.

use crate::context::{Context, NonFinitePolicy};
use crate::updates::{Matrix, Updates};
use crate::{aggregate as rules, PreAggregation, RobustError, Rule};

/// Aggregates `updates` with `rule` after the pre-aggregation steps `pre`, in order.
///
/// Deterministic: the same inputs give the same bits on any machine and any number of rayon
/// threads. The output has dimension `d` and never contains NaN or infinity.
///
/// ```
/// use cairn_robust::{aggregate, Context, Rule, Updates};
/// let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
/// let updates = Updates::new(&data, 3, 3).unwrap();
/// let median = aggregate(&Rule::Median, &[], &updates, &Context::default()).unwrap();
/// assert_eq!(median, vec![4.0, 5.0, 6.0]);
/// ```
pub fn aggregate(
    rule: &Rule,
    pre: &[PreAggregation],
    updates: &Updates<'_>,
    ctx: &Context<'_>,
) -> Result<Vec<f32>, RobustError> {
    validate(rule, pre, updates, ctx)?;
    if let Some(output) = one_pass(rule, pre, updates, ctx) {
        return Ok(output);
    }
    general(rule, pre, updates, ctx)
}

/// [`aggregate`], written into `out` (length `d`) instead of a new vector, for callers that
/// aggregate round after round into one buffer. The result's bits are those of [`aggregate`].
///
/// The median and trimmed mean without pre-aggregation write straight into `out`, so a large
/// output skips the fresh pages a new vector needs from the operating system (at n = 10,
/// d = 10⁷ the page faults of a new 40 MB output were about 29% of the median's time); every
/// other rule computes its output as [`aggregate`] does and copies it in.
///
/// Errors are those of [`aggregate`], in the same order, preceded by the length of `out`
/// (`SideInputLength` for the "output buffer", with `out` untouched). After any other error
/// `out` may have been partly overwritten.
///
/// ```
/// use cairn_robust::{aggregate_into, Context, Rule, Updates};
/// let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
/// let updates = Updates::new(&data, 3, 3).unwrap();
/// let mut out = vec![0.0; 3];
/// aggregate_into(&Rule::Median, &[], &updates, &Context::default(), &mut out).unwrap();
/// assert_eq!(out, [4.0, 5.0, 6.0]);
/// ```
pub fn aggregate_into(
    rule: &Rule,
    pre: &[PreAggregation],
    updates: &Updates<'_>,
    ctx: &Context<'_>,
    out: &mut [f32],
) -> Result<(), RobustError> {
    if out.len() != updates.d() {
        return Err(RobustError::SideInputLength {
            what: "output buffer",
            expected: updates.d(),
            actual: out.len(),
        });
    }
    validate(rule, pre, updates, ctx)?;
    let output = match in_place(rule, pre, updates, out) {
        Some(true) => return Ok(()),
        // A non-finite input: screening decides, as in `aggregate`.
        Some(false) => general(rule, pre, updates, ctx)?,
        None => match one_pass(rule, pre, updates, ctx) {
            Some(output) => output,
            None => general(rule, pre, updates, ctx)?,
        },
    };
    out.copy_from_slice(&output);
    Ok(())
}

/// The checks of the side inputs and of the pre-aggregation chain, which come before any work.
fn validate(
    rule: &Rule,
    pre: &[PreAggregation],
    updates: &Updates<'_>,
    ctx: &Context<'_>,
) -> Result<(), RobustError> {
    let d = updates.d();
    if let Some(previous) = ctx.previous {
        if previous.len() != d {
            return Err(RobustError::SideInputLength {
                what: "previous aggregate",
                expected: d,
                actual: previous.len(),
            });
        }
        if let Some(index) = previous.iter().position(|v| !v.is_finite()) {
            return Err(RobustError::SideInputNonFinite {
                what: "previous aggregate",
                index,
            });
        }
    }
    rule.check_chain(pre)
}

/// Screening, the pre-aggregation chain, the rule and the check of its output: the path of every
/// case [`one_pass`] does not take.
fn general(
    rule: &Rule,
    pre: &[PreAggregation],
    updates: &Updates<'_>,
    ctx: &Context<'_>,
) -> Result<Vec<f32>, RobustError> {
    let d = updates.d();
    let (screened, rule) = screen(rule, updates, ctx.non_finite)?;
    // Before the pre-aggregation runs, so that an oversized request costs nothing; the rule's
    // full check repeats it on the count that reaches it.
    let kept = screened.as_ref().map_or(updates.n(), |matrix| matrix.n);
    let reaching = pre.iter().fold(kept, |n, step| step.output_n(n));
    rule.check_size(reaching)?;
    let mut current: Option<Matrix> = screened;
    for step in pre {
        let view = match &current {
            Some(matrix) => matrix.view()?,
            None => *updates,
        };
        let next = step.apply(&view)?;
        tracing::debug!(
            step = step.name(),
            n_in = view.n(),
            n_out = next.n,
            "pre-aggregation"
        );
        current = Some(next);
    }
    let view = match &current {
        Some(matrix) => matrix.view()?,
        None => *updates,
    };
    rule.check(view.n())?;
    let output = rules::apply(&rule, &view, ctx.previous)?;
    debug_assert_eq!(output.len(), d);
    if let Some(column) = first_non_finite(&output) {
        return Err(RobustError::NonFiniteOutput {
            rule: rule.name(),
            column,
        });
    }
    Ok(output)
}

/// The mean, weighted mean, median, trimmed mean, Krum and Multi-Krum without the screening
/// pass, when that gives the same answer.
///
/// Screening reads every input value once, as much memory traffic as these rules themselves, so
/// they check the input as they read it instead. The median and trimmed mean test each value's
/// exponent bits while copying it into their sort buffers. The mean needs no test: a finite
/// output proves a finite input, because the sums run in `f64`, where finite `f32` terms cannot
/// overflow, and an infinity or NaN in any row, at any weight (`0 · ∞` is NaN), makes its
/// coordinate's sum, and so its output, non-finite. Krum and Multi-Krum test their pairwise
/// distances, which are all finite only for an all-finite input. Any other case
/// (pre-aggregation, invalid parameters, a non-finite input or output) returns `None` and takes
/// the general path, which screens and reports exactly as before.
fn one_pass(
    rule: &Rule,
    pre: &[PreAggregation],
    updates: &Updates<'_>,
    ctx: &Context<'_>,
) -> Option<Vec<f32>> {
    if !pre.is_empty() {
        return None;
    }
    if let Rule::Median | Rule::TrimmedMean { .. } = rule {
        let mut output = vec![0.0f32; updates.d()];
        return in_place(rule, pre, updates, &mut output)?.then_some(output);
    }
    if !matches!(
        rule,
        Rule::Mean | Rule::WeightedMean { .. } | Rule::Krum { .. } | Rule::MultiKrum { .. }
    ) {
        return None;
    }
    rule.check(updates.n()).ok()?;
    let output = match rule {
        Rule::Krum { f, variant } => rules::krum::krum_if_finite(updates, *f, None, *variant)?,
        Rule::MultiKrum { f, m, variant } => {
            let m = rules::krum::selected(updates.n(), *f, *m);
            rules::krum::krum_if_finite(updates, *f, Some(m), *variant)?
        }
        _ => rules::apply(rule, updates, ctx.previous).ok()?,
    };
    first_non_finite(&output).is_none().then_some(output)
}

/// The median or trimmed mean without pre-aggregation, written straight into `out` while the
/// input is checked as it is read: `Some(true)` when it was all finite, `Some(false)` (and `out`
/// meaningless) when not, `None` for any other rule or chain, or a count the rule refuses.
///
/// No output check follows. Each output lies between the smallest and the largest value of its
/// coordinate (an `f64` mean of one, two or `n − 2f` of them, rounded to the nearest `f32`:
/// rounding is monotone and `j · f32::MAX` is exact in `f64` for `j < 2²⁹`, far above
/// `MAX_SORTED_UPDATES`), so a finite input gives a finite output. The serial pass that used to
/// check it was 7% of the median's time at n = 10, d = 1e7.
fn in_place(
    rule: &Rule,
    pre: &[PreAggregation],
    updates: &Updates<'_>,
    out: &mut [f32],
) -> Option<bool> {
    if !pre.is_empty() || rule.check(updates.n()).is_err() {
        return None;
    }
    match rule {
        Rule::Median => Some(rules::median::median_if_finite(updates, out)),
        Rule::TrimmedMean { f } => Some(rules::trimmed_mean::trimmed_mean_if_finite(
            updates, *f, out,
        )),
        _ => None,
    }
}

/// The index of the first infinite or NaN value of `values`, if any.
///
/// The common all-finite case is one branch-free pass (the largest exponent-and-mantissa bits,
/// which the compiler vectorizes): an early-exit scan of a 10⁷-coordinate output took 6% of the
/// median's time.
fn first_non_finite(values: &[f32]) -> Option<usize> {
    let largest = values
        .iter()
        .fold(0u32, |acc, v| acc.max(v.to_bits() & 0x7fff_ffff));
    if largest < 0x7f80_0000 {
        return None;
    }
    values.iter().position(|v| !v.is_finite())
}

/// Applies the non-finite policy. Returns the kept rows when some were dropped, and the rule with
/// its weights restricted to them.
fn screen(
    rule: &Rule,
    updates: &Updates<'_>,
    policy: NonFinitePolicy,
) -> Result<(Option<Matrix>, Rule), RobustError> {
    let Some((row, column)) = updates.first_non_finite() else {
        return Ok((None, rule.clone()));
    };
    match policy {
        NonFinitePolicy::Reject => Err(RobustError::NonFinite { row, column }),
        NonFinitePolicy::Drop => {
            let kept: Vec<usize> = (0..updates.n())
                .filter(|&i| updates.row(i).iter().all(|v| v.is_finite()))
                .collect();
            tracing::warn!(
                dropped = updates.n() - kept.len(),
                kept = kept.len(),
                "dropping updates with non-finite values"
            );
            let rule = match rule {
                Rule::WeightedMean { weights } if weights.len() == updates.n() => {
                    Rule::WeightedMean {
                        weights: kept.iter().map(|&i| weights[i]).collect(),
                    }
                }
                Rule::Monna { f, reference } if *reference < updates.n() => {
                    // The reference keeps pointing at the same update once others are dropped.
                    let position = kept.binary_search(reference).map_err(|_| {
                        RobustError::InvalidParameter {
                            rule: "monna",
                            reason: format!(
                                "the reference update {reference} has non-finite values and was dropped"
                            ),
                        }
                    })?;
                    Rule::Monna {
                        f: *f,
                        reference: position,
                    }
                }
                other => other.clone(),
            };
            if kept.is_empty() {
                let (required, requirement) = rule.requirement();
                return Err(RobustError::NotEnoughUpdates {
                    rule: rule.name(),
                    n: 0,
                    required: required.max(1),
                    requirement,
                });
            }
            Ok((Some(Matrix::from_rows(updates, &kept)), rule))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KrumVariant;

    const DATA: [f32; 10] = [0.0, 1.0, 0.1, 1.1, -0.1, 0.9, 0.2, 1.0, 50.0, -50.0];

    fn five() -> Updates<'static> {
        Updates::new(&DATA, 5, 2).unwrap()
    }

    #[test]
    fn one_pass_rules_refuse_or_drop_every_non_finite_value_like_screening() {
        // 5 updates of dimension 5000: more than one run of coordinates, so a non-finite value
        // late in a row is seen by another task than the first.
        let (n, d) = (5usize, 5000usize);
        let clean: Vec<f32> = (0..n * d)
            .map(|i| ((i * 37) % 101) as f32 * 0.01 - 0.5)
            .collect();
        let rules = [
            Rule::Mean,
            Rule::WeightedMean {
                weights: vec![1.0, 0.0, 2.0, 0.5, 1.0],
            },
            Rule::Median,
            Rule::TrimmedMean { f: 1 },
            // The ByzFL variant still applies to the four updates left after a drop.
            Rule::Krum {
                f: 1,
                variant: KrumVariant::ByzFl,
            },
            Rule::MultiKrum {
                f: 1,
                m: Some(2),
                variant: KrumVariant::ByzFl,
            },
            // The default m = n − f: 4 of the five, 3 of the four left after a drop.
            Rule::MultiKrum {
                f: 1,
                m: None,
                variant: KrumVariant::ByzFl,
            },
        ];
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for (row, column) in [(0, 0), (1, 4999), (3, 2500)] {
                let mut data = clean.clone();
                data[row * d + column] = bad;
                let updates = Updates::new(&data, n, d).unwrap();
                let kept: Vec<usize> = (0..n).filter(|&r| r != row).collect();
                let kept_data: Vec<f32> =
                    kept.iter().flat_map(|&r| updates.row(r).to_vec()).collect();
                let kept_updates = Updates::new(&kept_data, n - 1, d).unwrap();
                for rule in &rules {
                    // Row 1 has weight 0 in the weighted mean: 0 · ∞ and 0 · NaN are NaN.
                    let refused = aggregate(rule, &[], &updates, &Context::default());
                    assert!(
                        matches!(refused, Err(RobustError::NonFinite { row: r, column: c }) if r == row && c == column),
                        "{bad} at ({row}, {column}), {rule:?}: {refused:?}"
                    );
                    let mut out = vec![0.0; d];
                    let refused_into =
                        aggregate_into(rule, &[], &updates, &Context::default(), &mut out);
                    assert_eq!(refused_into.unwrap_err(), refused.unwrap_err());
                    let drop = Context {
                        non_finite: NonFinitePolicy::Drop,
                        ..Context::default()
                    };
                    let restricted = match rule {
                        Rule::WeightedMean { weights } => Rule::WeightedMean {
                            weights: kept.iter().map(|&r| weights[r]).collect(),
                        },
                        other => other.clone(),
                    };
                    aggregate_into(rule, &[], &updates, &drop, &mut out).unwrap();
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&out),
                        bits(
                            &aggregate(&restricted, &[], &kept_updates, &Context::default())
                                .unwrap()
                        ),
                        "{bad} at ({row}, {column}), {rule:?} (into)"
                    );
                    assert_eq!(
                        aggregate(rule, &[], &updates, &drop).unwrap(),
                        aggregate(&restricted, &[], &kept_updates, &Context::default()).unwrap(),
                        "{bad} at ({row}, {column}), {rule:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn krum_without_screening_still_refuses_lone_and_cancelling_non_finite_updates() {
        let krum = Rule::Krum {
            f: 0,
            variant: KrumVariant::ByzFl,
        };
        // One update: no pair, so no distance can reveal the NaN; the screened path must. And
        // the same infinity at the same coordinate of two updates: ∞ − ∞ is NaN, not 0.
        let lone = [1.0, f32::NAN, 2.0];
        let twins = [f32::INFINITY, 1.0, f32::INFINITY, 1.0, 0.0, 1.0];
        for (data, n, d, bad) in [(&lone[..], 1, 3, (0, 1)), (&twins[..], 3, 2, (0, 0))] {
            let updates = Updates::new(data, n, d).unwrap();
            let refused = aggregate(&krum, &[], &updates, &Context::default());
            assert!(
                matches!(refused, Err(RobustError::NonFinite { row, column }) if (row, column) == bad),
                "n = {n}: {refused:?}"
            );
        }
    }

    #[test]
    fn an_output_buffer_of_the_wrong_length_is_refused_and_left_alone() {
        let updates = five();
        for len in [0, 1, 3] {
            let mut out = vec![7.0; len];
            let err = aggregate_into(&Rule::Median, &[], &updates, &Context::default(), &mut out)
                .unwrap_err();
            assert_eq!(
                err,
                RobustError::SideInputLength {
                    what: "output buffer",
                    expected: 2,
                    actual: len
                }
            );
            assert!(out.iter().all(|&v| v == 7.0));
        }
    }

    #[test]
    fn wrong_buffer_length_is_a_length_mismatch() {
        let err = Updates::new(&DATA, 3, 3).unwrap_err();
        assert!(matches!(
            err,
            RobustError::LengthMismatch {
                expected: 9,
                actual: 10,
                ..
            }
        ));
    }

    #[test]
    fn empty_input_is_refused() {
        assert!(matches!(
            Updates::new(&[], 0, 4),
            Err(RobustError::Empty { n: 0, d: 4 })
        ));
        assert!(matches!(
            Updates::new(&[], 3, 0),
            Err(RobustError::Empty { n: 3, d: 0 })
        ));
    }

    #[test]
    fn too_few_updates_for_bulyan_names_the_requirement() {
        let err = aggregate(&Rule::Bulyan { f: 1 }, &[], &five(), &Context::default()).unwrap_err();
        assert_eq!(
            err,
            RobustError::NotEnoughUpdates {
                rule: "bulyan",
                n: 5,
                required: 7,
                requirement: "n >= 4f + 3"
            }
        );
    }

    #[test]
    fn textbook_krum_needs_two_f_plus_three() {
        let rule = Rule::Krum {
            f: 2,
            variant: KrumVariant::Textbook,
        };
        assert!(matches!(
            aggregate(&rule, &[], &five(), &Context::default()),
            Err(RobustError::NotEnoughUpdates { required: 7, .. })
        ));
        let rule = Rule::Krum {
            f: 1,
            variant: KrumVariant::Textbook,
        };
        assert!(aggregate(&rule, &[], &five(), &Context::default()).is_ok());
    }

    #[test]
    fn non_finite_input_is_rejected_by_default_with_its_position() {
        let mut data = DATA;
        data[7] = f32::NAN;
        let updates = Updates::new(&data, 5, 2).unwrap();
        let err = aggregate(&Rule::Median, &[], &updates, &Context::default()).unwrap_err();
        assert_eq!(err, RobustError::NonFinite { row: 3, column: 1 });
    }

    #[test]
    fn drop_policy_removes_non_finite_rows_and_rechecks_the_requirement() {
        let mut data = DATA;
        data[8] = f32::INFINITY;
        let updates = Updates::new(&data, 5, 2).unwrap();
        let ctx = Context {
            previous: None,
            non_finite: NonFinitePolicy::Drop,
        };
        let out = aggregate(&Rule::Mean, &[], &updates, &ctx).unwrap();
        assert!(
            (out[0] - 0.05).abs() < 1e-6 && (out[1] - 1.0).abs() < 1e-6,
            "{out:?}"
        );
        let err = aggregate(&Rule::TrimmedMean { f: 2 }, &[], &updates, &ctx).unwrap_err();
        assert!(matches!(
            err,
            RobustError::NotEnoughUpdates {
                n: 4,
                required: 5,
                ..
            }
        ));
    }

    #[test]
    fn drop_policy_drops_the_matching_weights() {
        let data = [1.0, f32::NAN, 3.0];
        let updates = Updates::new(&data, 3, 1).unwrap();
        let ctx = Context {
            previous: None,
            non_finite: NonFinitePolicy::Drop,
        };
        let rule = Rule::WeightedMean {
            weights: vec![1.0, 100.0, 3.0],
        };
        assert_eq!(aggregate(&rule, &[], &updates, &ctx).unwrap(), vec![2.5]);
    }

    #[test]
    fn drop_policy_keeps_the_monna_reference_on_the_same_update() {
        let data = [0.0, f32::NAN, 10.0, 11.0, 12.0];
        let updates = Updates::new(&data, 5, 1).unwrap();
        let ctx = Context {
            previous: None,
            non_finite: NonFinitePolicy::Drop,
        };
        let rule = Rule::Monna { f: 1, reference: 4 };
        assert_eq!(aggregate(&rule, &[], &updates, &ctx).unwrap(), vec![11.0]);
        let rule = Rule::Monna { f: 1, reference: 1 };
        let err = aggregate(&rule, &[], &updates, &ctx).unwrap_err();
        assert!(matches!(
            err,
            RobustError::InvalidParameter { rule: "monna", .. }
        ));
    }

    #[test]
    fn weights_of_the_wrong_length_are_refused() {
        let rule = Rule::WeightedMean {
            weights: vec![1.0; 4],
        };
        let err = aggregate(&rule, &[], &five(), &Context::default()).unwrap_err();
        assert!(matches!(
            err,
            RobustError::SideInputLength {
                what: "weights",
                expected: 5,
                actual: 4
            }
        ));
    }

    #[test]
    fn previous_aggregate_of_the_wrong_length_is_refused() {
        let previous = [0.0f32; 3];
        let ctx = Context {
            previous: Some(&previous),
            non_finite: NonFinitePolicy::Reject,
        };
        let rule = Rule::CenteredClipping {
            tau: 1.0,
            iterations: 1,
        };
        let err = aggregate(&rule, &[], &five(), &ctx).unwrap_err();
        assert!(matches!(
            err,
            RobustError::SideInputLength {
                expected: 2,
                actual: 3,
                ..
            }
        ));
    }

    #[test]
    fn invalid_parameters_are_refused() {
        let ctx = Context::default();
        let bad = [
            Rule::GeometricMedian {
                nu: 0.0,
                iterations: 3,
                init: crate::GmInit::Zeros,
            },
            Rule::GeometricMedian {
                nu: 0.1,
                iterations: 0,
                init: crate::GmInit::Zeros,
            },
            Rule::CenteredClipping {
                tau: f32::NAN,
                iterations: 1,
            },
            Rule::Monna { f: 1, reference: 5 },
            Rule::MultiKrum {
                f: 1,
                m: Some(0),
                variant: KrumVariant::Textbook,
            },
            Rule::WeightedMean {
                weights: vec![0.0; 5],
            },
            Rule::WeightedMean {
                weights: vec![1.0, -1.0, 1.0, 1.0, 1.0],
            },
        ];
        for rule in bad {
            let err = aggregate(&rule, &[], &five(), &ctx).unwrap_err();
            assert!(
                matches!(err, RobustError::InvalidParameter { .. }),
                "{rule:?}: {err:?}"
            );
        }
        let pre = [PreAggregation::StaticClip { threshold: -1.0 }];
        assert!(aggregate(&Rule::Mean, &pre, &five(), &ctx).is_err());
        let pre = [PreAggregation::Bucketing {
            bucket_size: 0,
            seed: 1,
        }];
        assert!(aggregate(&Rule::Mean, &pre, &five(), &ctx).is_err());
    }

    #[test]
    fn bucketing_reduces_n_before_the_rule_requirement_is_checked() {
        let pre = [PreAggregation::Bucketing {
            bucket_size: 2,
            seed: 4,
        }];
        let err = aggregate(
            &Rule::TrimmedMean { f: 2 },
            &pre,
            &five(),
            &Context::default(),
        );
        assert!(matches!(
            err,
            Err(RobustError::NotEnoughUpdates {
                n: 3,
                required: 5,
                ..
            })
        ));
        let ok = aggregate(
            &Rule::TrimmedMean { f: 1 },
            &pre,
            &five(),
            &Context::default(),
        );
        assert_eq!(ok.unwrap().len(), 2);
    }

    #[test]
    fn nnm_then_trimmed_mean_resists_the_outlier() {
        let pre = [PreAggregation::Nnm { f: 1 }, PreAggregation::Arc { f: 1 }];
        let out = aggregate(
            &Rule::TrimmedMean { f: 1 },
            &pre,
            &five(),
            &Context::default(),
        )
        .unwrap();
        assert!(out[0].abs() < 1.0 && (out[1] - 1.0).abs() < 1.0, "{out:?}");
    }

    #[test]
    fn overflowing_mean_is_reported_not_returned() {
        let data = [3.0e38f32, 3.0e38];
        let updates = Updates::new(&data, 2, 1).unwrap();
        let rule = Rule::WeightedMean {
            weights: vec![1.0, 1.0],
        };
        assert_eq!(
            aggregate(&rule, &[], &updates, &Context::default()).unwrap(),
            vec![3.0e38]
        );
        let pre = [PreAggregation::StaticClip { threshold: 1.0 }];
        assert_eq!(
            aggregate(&Rule::Mean, &pre, &updates, &Context::default()).unwrap(),
            vec![1.0]
        );
    }

    /// The one-pass median and trimmed mean skip the check of their output: every output must
    /// still be finite and within its coordinate's range for inputs at the edges of `f32`.
    #[test]
    fn median_and_trimmed_mean_of_extreme_finite_values_stay_finite_and_in_range() {
        let edges = [
            f32::MAX,
            -f32::MAX,
            f32::MAX.next_down(),
            -f32::MAX.next_down(),
            f32::MIN_POSITIVE,
            -1.0e-45,
            1.0e-45,
            0.0,
            -0.0,
            1.0,
        ];
        let mut state = 0x5eed_u64;
        for n in [1, 2, 3, 4, 10, 16, 17, 33] {
            let d = 300;
            let data: Vec<f32> = (0..n * d)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    edges[(state >> 33) as usize % edges.len()]
                })
                .collect();
            let updates = Updates::new(&data, n, d).unwrap();
            let rules = [
                Rule::Median,
                Rule::TrimmedMean { f: 0 },
                Rule::TrimmedMean { f: (n - 1) / 2 },
            ];
            for rule in rules {
                let out = aggregate(&rule, &[], &updates, &Context::default()).unwrap();
                let mut into = vec![f32::NAN; d];
                aggregate_into(&rule, &[], &updates, &Context::default(), &mut into).unwrap();
                assert_eq!(
                    into.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{rule:?}, n = {n}: aggregate_into differs"
                );
                for (k, &v) in out.iter().enumerate() {
                    let column = (0..n).map(|i| data[i * d + k]);
                    let low = column.clone().fold(f32::INFINITY, f32::min);
                    let high = column.fold(f32::NEG_INFINITY, f32::max);
                    assert!(
                        v.is_finite() && low <= v && v <= high,
                        "{rule:?}, n = {n}, column {k}: {v} outside [{low}, {high}]"
                    );
                }
            }
        }
    }
}
