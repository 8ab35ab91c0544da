//! Unit tests of [`super::craft`]: input checks, determinism, and each attack's defining property.

use super::*;

fn honest() -> Vec<f32> {
    // 6 honest updates of dimension 3.
    vec![
        1.0, 2.0, -1.0, //
        1.5, 2.5, -0.5, //
        0.5, 1.5, -1.5, //
        1.2, 2.2, -0.8, //
        0.8, 1.8, -1.2, //
        1.0, 2.0, -1.0,
    ]
}

fn setting(n: usize, f: usize) -> Setting<'static> {
    Setting::new(n, f, Rule::Median)
}

#[test]
fn zero_byzantine_gives_no_vectors() {
    let out = craft(&Attack::FreeRider, &honest(), 3, &setting(6, 0)).unwrap();
    assert!(out.is_empty());
}

#[test]
fn invalid_inputs_are_typed_errors() {
    let h = honest();
    let attack = Attack::SignFlip { scale: 1.0 };
    assert_eq!(
        craft(&attack, &h, 3, &setting(8, 8)),
        Err(AttackError::TooManyByzantine { n: 8, f: 8 })
    );
    assert_eq!(
        craft(&attack, &[], 3, &setting(8, 2)),
        Err(AttackError::NoHonest)
    );
    assert_eq!(
        craft(&attack, &h, 4, &setting(8, 2)),
        Err(AttackError::Dimension { len: 18, d: 4 })
    );
    assert_eq!(
        craft(&attack, &h, 0, &setting(8, 2)),
        Err(AttackError::Dimension { len: 18, d: 0 })
    );
    assert_eq!(
        craft(&attack, &h, 3, &setting(7, 2)),
        Err(AttackError::TooManyHonest {
            rows: 6,
            n: 7,
            f: 2
        })
    );
    let mut bad = h.clone();
    bad[4] = f32::NAN;
    assert_eq!(
        craft(&attack, &bad, 3, &setting(8, 2)),
        Err(AttackError::NonFiniteHonest { row: 1, column: 1 })
    );
    assert_eq!(
        craft(&Attack::Stale, &h, 3, &setting(8, 2)),
        Err(AttackError::MissingStale)
    );
    assert!(matches!(
        craft(
            &Attack::Gaussian {
                mu: 0.0,
                sigma: -1.0
            },
            &h,
            3,
            &setting(8, 2)
        ),
        Err(AttackError::InvalidParameter { .. })
    ));
    assert!(matches!(
        craft(
            &Attack::Mimic {
                target: MimicTarget::Index(6)
            },
            &h,
            3,
            &setting(8, 2)
        ),
        Err(AttackError::InvalidParameter { .. })
    ));
}

#[test]
fn rule_refusal_during_search_is_reported() {
    let mut s = setting(8, 2);
    s.rule = Rule::Bulyan { f: 2 }; // needs n >= 11
    let result = craft(
        &Attack::OptimizedIpm {
            search: StrengthSearch::default(),
        },
        &honest(),
        3,
        &s,
    );
    assert!(
        matches!(result, Err(AttackError::Aggregate(_))),
        "{result:?}"
    );
}

#[test]
fn sign_flip_ipm_and_alie_follow_their_formulas() {
    let h = honest();
    let s = setting(8, 2);
    // Mean of the honest updates is (1, 2, -1).
    let flip = craft(&Attack::SignFlip { scale: 2.0 }, &h, 3, &s).unwrap();
    assert_eq!(flip, vec![-2.0, -4.0, 2.0, -2.0, -4.0, 2.0]);
    let ipm = craft(&Attack::Ipm { epsilon: 0.5 }, &h, 3, &s).unwrap();
    assert_eq!(&ipm[..3], &[-0.5, -1.0, 0.5]);
    // Every coordinate has the same spread: deviations 0, .5, -.5, .2, -.2, 0 → σ² = 0.58/5.
    let sigma = (0.58f64 / 5.0).sqrt();
    let alie = craft(&Attack::Alie { z: Some(1.5) }, &h, 3, &s).unwrap();
    let expected = [1.0 - 1.5 * sigma, 2.0 - 1.5 * sigma, -1.0 - 1.5 * sigma];
    for (got, want) in alie[..3].iter().zip(expected) {
        assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
    }
    // Default z is the paper's z_max(8, 2) = Φ⁻¹(5/8).
    let auto = craft(&Attack::Alie { z: None }, &h, 3, &s).unwrap();
    let z = inverse_normal_cdf(5.0 / 8.0);
    assert!((f64::from(auto[0]) - (1.0 - z * sigma)).abs() < 1e-6);
}

#[test]
fn gaussian_and_seeded_mimic_are_deterministic_for_a_seed() {
    let h = honest();
    let mut s = setting(8, 2);
    s.seed = 42;
    let attack = Attack::Gaussian {
        mu: 0.0,
        sigma: 3.0,
    };
    let a = craft(&attack, &h, 3, &s).unwrap();
    let b = craft(&attack, &h, 3, &s).unwrap();
    assert_eq!(a, b);
    assert_ne!(
        &a[..3],
        &a[3..],
        "each Byzantine update draws its own noise"
    );
    s.seed = 43;
    assert_ne!(craft(&attack, &h, 3, &s).unwrap(), a);
    let mimic = Attack::Mimic {
        target: MimicTarget::Seeded,
    };
    let copied = craft(&mimic, &h, 3, &s).unwrap();
    assert!(h.chunks(3).any(|row| row == &copied[..3]));
}

#[test]
fn mimic_heuristic_copies_the_update_furthest_along_the_main_direction() {
    // Spread is along the first axis; row 2 is the extreme one.
    let h = vec![0.0, 0.0, 1.0, 0.1, -3.0, 0.0, 0.5, -0.1, 0.2, 0.0];
    let out = craft(
        &Attack::Mimic {
            target: MimicTarget::Heuristic,
        },
        &h,
        2,
        &setting(7, 2),
    )
    .unwrap();
    assert_eq!(out, vec![-3.0, 0.0, -3.0, 0.0]);
}

#[test]
fn min_max_and_min_sum_stay_within_the_honest_distance_budgets() {
    let h = honest();
    let rows: Vec<&[f32]> = h.chunks(3).collect();
    let dist2 = |a: &[f32], b: &[f32]| -> f64 {
        a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum()
    };
    let max_pair = rows
        .iter()
        .flat_map(|a| rows.iter().map(move |b| dist2(a, b)))
        .fold(0.0, f64::max);
    let max_sum = rows
        .iter()
        .map(|a| rows.iter().map(|b| dist2(a, b)).sum::<f64>())
        .fold(0.0, f64::max);
    for perturbation in [
        Perturbation::Std,
        Perturbation::UnitMean,
        Perturbation::Sign,
    ] {
        let m = craft(&Attack::MinMax { perturbation }, &h, 3, &setting(8, 2)).unwrap();
        let worst = rows.iter().map(|r| dist2(r, &m[..3])).fold(0.0, f64::max);
        assert!(
            worst <= max_pair * (1.0 + 1e-5),
            "{perturbation:?}: {worst} > {max_pair}"
        );
        assert!(
            worst >= max_pair * 0.99,
            "{perturbation:?}: gamma not maximal ({worst} vs {max_pair})"
        );
        let s = craft(&Attack::MinSum { perturbation }, &h, 3, &setting(8, 2)).unwrap();
        let total: f64 = rows.iter().map(|r| dist2(r, &s[..3])).sum();
        assert!(
            total <= max_sum * (1.0 + 1e-5),
            "{perturbation:?}: {total} > {max_sum}"
        );
        assert!(
            total >= max_sum * 0.99,
            "{perturbation:?}: gamma not maximal"
        );
    }
}

#[test]
fn free_rider_stale_and_sybil_vectors() {
    let h = honest();
    let stale = [9.0, 8.0, 7.0];
    let mut s = setting(8, 2);
    assert_eq!(craft(&Attack::FreeRider, &h, 3, &s).unwrap(), vec![0.0; 6]);
    s.stale = Some(&stale);
    assert_eq!(
        craft(&Attack::Stale, &h, 3, &s).unwrap(),
        [stale, stale].concat()
    );
    s.stale = Some(&stale[..2]);
    assert_eq!(
        craft(&Attack::Stale, &h, 3, &s),
        Err(AttackError::StaleDimension {
            expected: 3,
            actual: 2
        })
    );
    let sybil = Attack::Sybil {
        of: Box::new(Attack::Gaussian {
            mu: 0.0,
            sigma: 1.0,
        }),
    };
    let out = craft(&sybil, &h, 3, &s).unwrap();
    assert_eq!(&out[..3], &out[3..]);
}

#[test]
fn non_finite_attack_sends_only_non_finite_values() {
    let out = craft(
        &Attack::NonFinite {
            value: NonFiniteValue::NegInf,
        },
        &honest(),
        3,
        &setting(8, 2),
    )
    .unwrap();
    assert_eq!(out, vec![f32::NEG_INFINITY; 6]);
}

#[test]
fn attack_text_round_trips_through_display_and_parse() {
    let attacks = [
        "sign_flip:2",
        "gaussian:3:0.5",
        "nan",
        "inf",
        "neg_inf",
        "ipm:0.1",
        "alie:auto",
        "alie:1.5",
        "optimized_ipm:0:10:0.8:20",
        "optimized_alie:0:-10:0.8:30",
        "mimic:3",
        "mimic:seeded",
        "mimic:heuristic",
        "min_max:std",
        "min_sum:unit_mean",
        "min_max:sign",
        "free_rider",
        "stale",
        "sybil:gaussian:5:0",
        "sybil:sybil:ipm:2",
    ];
    for text in attacks {
        let attack: Attack = text.parse().unwrap();
        assert_eq!(attack.to_string(), text);
        let json = serde_json::to_string(&attack).unwrap();
        assert_eq!(serde_json::from_str::<Attack>(&json).unwrap(), attack);
    }
    assert_eq!("alie".parse::<Attack>().unwrap(), Attack::Alie { z: None });
    assert_eq!(
        "min_max".parse::<Attack>().unwrap(),
        Attack::MinMax {
            perturbation: Perturbation::Std
        }
    );
    for bad in [
        "",
        "bogus",
        "ipm:x",
        "alie:1:2",
        "sybil",
        "min_max:up",
        "optimized_ipm:0:1:0.8:2:9",
    ] {
        assert!(
            matches!(bad.parse::<Attack>(), Err(AttackError::Parse { .. })),
            "{bad}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn every_attack_returns_f_finite_rows_or_a_typed_error(
        rows in 1usize..7,
        d in 1usize..5,
        f in 0usize..4,
        extra in 0usize..3,
        seed in proptest::prelude::any::<u64>(),
        values in proptest::collection::vec(-1e3f32..1e3, 28),
    ) {
        let honest = &values[..rows * d];
        let stale = vec![0.5f32; d];
        let mut setting = Setting::new(rows + f + extra, f, Rule::TrimmedMean { f });
        setting.seed = seed;
        setting.stale = Some(&stale);
        for text in [
            "sign_flip:3", "gaussian:2", "ipm:0.5", "alie", "alie:2", "optimized_ipm",
            "optimized_alie:0:-10:0.8:10", "mimic", "mimic:seeded", "min_max", "min_sum:sign",
            "free_rider", "stale", "sybil:gaussian:1",
        ] {
            let attack: Attack = text.parse().unwrap();
            match craft(&attack, honest, d, &setting) {
                Ok(out) => {
                    proptest::prop_assert_eq!(out.len(), f * d, "{}", text);
                    proptest::prop_assert!(out.iter().all(|v| v.is_finite()), "{}", text);
                    // Deterministic for a seed.
                    proptest::prop_assert_eq!(&craft(&attack, honest, d, &setting).unwrap(), &out);
                }
                // Only the documented refusals: z_max with an attacker majority, or the trimmed
                // mean refusing too few updates during a search.
                Err(AttackError::InvalidParameter { attack: "alie", .. })
                | Err(AttackError::Aggregate(_)) => {}
                Err(other) => proptest::prop_assert!(false, "{}: {}", text, other),
            }
        }
    }
}

#[test]
fn absurd_f_is_refused_before_allocating() {
    // n x d past the limit: refused whatever the attack, without overflow or allocation.
    let huge = usize::MAX / 2;
    for attack in [
        Attack::FreeRider,
        Attack::NonFinite {
            value: NonFiniteValue::Nan,
        },
    ] {
        let err = craft(&attack, &honest(), 3, &setting(huge, huge - 6)).unwrap_err();
        assert!(
            matches!(
                err,
                AttackError::TooLarge {
                    limit: MAX_OUTPUT_VALUES,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn pairwise_attacks_refuse_more_honest_rows_than_their_matrix_allows() {
    let rows = MAX_PAIRWISE_ROWS + 1;
    let honest = vec![0.5f32; rows];
    let attack = Attack::MinMax {
        perturbation: Perturbation::Std,
    };
    let err = craft(&attack, &honest, 1, &setting(rows + 1, 1)).unwrap_err();
    assert_eq!(
        err,
        AttackError::TooLarge {
            what: "honest rows for a pairwise-distance attack",
            size: rows,
            limit: MAX_PAIRWISE_ROWS,
        }
    );
}
