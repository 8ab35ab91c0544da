//! Limits and refused combinations: rules whose memory grows as `n²` (or `threads × n`) refuse
//! oversized inputs before allocating, and rules that index the original updates refuse to follow
//! bucketing, which replaces them by means of shuffled buckets.

use cairn_robust::{
    aggregate, Context, GmInit, KrumVariant, PreAggregation, RobustError, Rule, Updates,
    MAX_PAIRWISE_UPDATES, MAX_SORTED_UPDATES,
};

#[test]
fn monna_after_bucketing_in_cli_syntax_is_refused_instead_of_averaging_buckets() {
    // The reviewer's reproduction: around update 0, MoNNA averages the n - f = 7 nearest rows;
    // after bucketing, "reference 0" would be the mean of a shuffled bucket instead.
    let data = [0.0, 1.0, 2.0, 3.0, 1000.0, 1001.0, 1002.0, 1003.0];
    let updates = Updates::new(&data, 8, 1).unwrap();
    let rule: Rule = "monna:1:0".parse().unwrap();
    let plain = aggregate(&rule, &[], &updates, &Context::default()).unwrap();
    assert!((plain[0] - 3009.0 / 7.0).abs() < 1e-3, "{plain:?}");
    let pre = PreAggregation::parse_chain("bucketing:2:1", 0).unwrap();
    let err = aggregate(&rule, &pre, &updates, &Context::default()).unwrap_err();
    assert_eq!(
        err,
        RobustError::IncompatibleChain {
            rule: "monna",
            step: "bucketing",
            reason: "the reference indexes an original update, but bucketing replaces the updates \
                     by means of shuffled buckets; drop bucketing or use another rule",
        }
    );
    assert!(err
        .to_string()
        .contains("monna cannot follow the bucketing"));
}

#[test]
fn monna_and_weighted_mean_after_bucketing_are_refused() {
    // Rows 0..3 near 0..3, rows 4..7 near 1000: bucket means would be unrelated to the
    // original reference index and weights.
    let data = [0.0, 1.0, 2.0, 3.0, 1000.0, 1001.0, 1002.0, 1003.0];
    let updates = Updates::new(&data, 8, 1).unwrap();
    let bucketing = PreAggregation::Bucketing {
        bucket_size: 2,
        seed: 1,
    };
    let rules = [
        Rule::Monna { f: 1, reference: 0 },
        Rule::WeightedMean {
            weights: vec![1.0; 4],
        },
    ];
    for rule in rules {
        let pre = [PreAggregation::Nnm { f: 1 }, bucketing.clone()];
        let err = aggregate(&rule, &pre, &updates, &Context::default()).unwrap_err();
        assert!(
            matches!(
                err,
                RobustError::IncompatibleChain {
                    step: "bucketing",
                    ..
                }
            ),
            "{rule:?}: {err:?}"
        );
    }
}

#[test]
fn monna_and_weighted_mean_keep_row_identity_after_nnm_and_clipping() {
    let data = [0.0, 1.0, 2.0, 3.0, 1000.0, 1001.0, 1002.0, 1003.0];
    let updates = Updates::new(&data, 8, 1).unwrap();
    let pre = [
        PreAggregation::Nnm { f: 1 },
        PreAggregation::Arc { f: 1 },
        PreAggregation::StaticClip { threshold: 1e6 },
    ];
    let monna = Rule::Monna { f: 3, reference: 0 };
    let out = aggregate(&monna, &pre, &updates, &Context::default()).unwrap();
    assert!(out[0] < 500.0, "{out:?}");
    let mut weights = vec![0.0; 8];
    weights[7] = 1.0;
    let weighted = Rule::WeightedMean { weights };
    let out = aggregate(&weighted, &pre, &updates, &Context::default()).unwrap();
    assert!(out[0] > 500.0, "{out:?}");
}

#[test]
fn rules_refuse_more_updates_than_their_memory_bound() {
    let n = MAX_PAIRWISE_UPDATES + 1;
    let data = vec![0.0f32; n];
    let updates = Updates::new(&data, n, 1).unwrap();
    let ctx = Context::default();
    let pairwise = [
        Rule::Krum {
            f: 1,
            variant: KrumVariant::Textbook,
        },
        Rule::MultiKrum {
            f: 1,
            m: None,
            variant: KrumVariant::ByzFl,
        },
        Rule::Bulyan { f: 1 },
        Rule::Mda { f: 1 },
    ];
    for rule in pairwise {
        let err = aggregate(&rule, &[], &updates, &ctx).unwrap_err();
        assert_eq!(
            err,
            RobustError::TooManyUpdates {
                n,
                limit: MAX_PAIRWISE_UPDATES,
                rule: rule.name()
            }
        );
    }
    let err = aggregate(&Rule::Mean, &[PreAggregation::Nnm { f: 1 }], &updates, &ctx);
    assert!(matches!(
        err,
        Err(RobustError::TooManyUpdates { rule: "nnm", .. })
    ));
    let n = MAX_SORTED_UPDATES + 1;
    let data = vec![0.0f32; n];
    let updates = Updates::new(&data, n, 1).unwrap();
    let sorted = [
        Rule::Median,
        Rule::TrimmedMean { f: 1 },
        Rule::Meamed { f: 1 },
        Rule::GeometricMedian {
            nu: 0.1,
            iterations: 1,
            init: GmInit::Median,
        },
    ];
    for rule in sorted {
        let err = aggregate(&rule, &[], &updates, &ctx).unwrap_err();
        assert!(
            matches!(err, RobustError::TooManyUpdates { limit, .. } if limit == MAX_SORTED_UPDATES),
            "{rule:?}: {err:?}"
        );
    }
    // Rules with O(n + d) memory take any n; bucketing brings n under the bound.
    assert_eq!(
        aggregate(&Rule::Mean, &[], &updates, &ctx).unwrap(),
        vec![0.0]
    );
    let pre = [PreAggregation::Bucketing {
        bucket_size: 2,
        seed: 0,
    }];
    assert_eq!(
        aggregate(&Rule::Median, &pre, &updates, &ctx).unwrap(),
        vec![0.0]
    );
}
