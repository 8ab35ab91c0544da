//! The syntax of a task spec's strings: model, optimizer, partition and robust rule. Each
//! parser returns a [`PlanError`] naming the field, what is wrong and the expected syntax.

use cairn_ml::data::Partition;
use cairn_ml::model::ModelSpec;
use cairn_ml::optim::OptimizerSpec;
use cairn_robust::{PreAggregation, Rule};

use crate::dataset::RegisteredDataset;
use crate::plan::{PlanError, DEFAULT_BATCH_SIZE};

fn model_error(text: &str, reason: impl Into<String>) -> PlanError {
    PlanError::Model {
        text: text.to_string(),
        reason: reason.into(),
    }
}

/// Parses `logistic:IN-OUT`, `mlp:IN-H1-...-OUT` or `cnn[:DROPOUT]` and checks it fits the data.
pub(crate) fn parse_model(text: &str, dataset: &RegisteredDataset) -> Result<ModelSpec, PlanError> {
    let data = &dataset.split.train;
    let (name, args) = text.split_once(':').unwrap_or((text, ""));
    let widths = || -> Result<Vec<usize>, PlanError> {
        args.split('-')
            .map(|w| {
                w.trim()
                    .parse::<usize>()
                    .map_err(|_| model_error(text, format!("width `{w}` is not a whole number")))
            })
            .collect()
    };
    let spec = match name.trim() {
        "logistic" => match widths()?.as_slice() {
            [inputs, classes] => ModelSpec::Logistic {
                inputs: *inputs,
                classes: *classes,
            },
            _ => return Err(model_error(text, "logistic takes exactly IN-OUT")),
        },
        "mlp" => match widths()?.as_slice() {
            [inputs, hidden @ .., classes] if !hidden.is_empty() => ModelSpec::Mlp {
                inputs: *inputs,
                hidden: hidden.to_vec(),
                classes: *classes,
            },
            _ => {
                return Err(model_error(
                    text,
                    "mlp needs IN, at least one hidden width, OUT",
                ))
            }
        },
        "cnn" => {
            let dropout = if args.is_empty() {
                0.25
            } else {
                args.parse::<f32>()
                    .map_err(|_| model_error(text, format!("dropout `{args}` is not a number")))?
            };
            let (channels, height, width) = data.shape();
            ModelSpec::Cnn {
                channels,
                height,
                width,
                classes: data.classes(),
                dropout,
            }
        }
        other => return Err(model_error(text, format!("unknown model `{other}`"))),
    };
    spec.validate()
        .map_err(|error| model_error(text, error.to_string()))?;
    if spec.input_dim() != data.dim() || spec.classes() < data.classes() {
        return Err(model_error(
            text,
            format!(
                "dataset {} has {} features and {} classes",
                dataset.name,
                data.dim(),
                data.classes()
            ),
        ));
    }
    Ok(spec)
}

/// Parses `sgd:lr=..[,momentum=..][,weight_decay=..][,batch=..]` or `adam:lr=..[,beta1=..]
/// [,beta2=..][,eps=..][,weight_decay=..][,batch=..]`.
pub(crate) fn parse_optimizer(text: &str) -> Result<(OptimizerSpec, usize), PlanError> {
    let error = |reason: String| PlanError::Optimizer {
        text: text.to_string(),
        reason,
    };
    let (name, args) = text.split_once(':').unwrap_or((text, ""));
    let mut spec = match name.trim() {
        "sgd" => OptimizerSpec::sgd(0.01),
        "adam" => OptimizerSpec::adam(0.001),
        other => return Err(error(format!("unknown optimizer `{other}`"))),
    };
    let mut batch = DEFAULT_BATCH_SIZE;
    let mut has_lr = false;
    for pair in args.split(',').filter(|p| !p.trim().is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| error(format!("`{pair}` is not KEY=VALUE")))?;
        let key = key.trim();
        if key == "batch" {
            batch = value
                .trim()
                .parse()
                .ok()
                .filter(|b| *b > 0)
                .ok_or_else(|| error(format!("batch `{value}` is not a positive integer")))?;
            continue;
        }
        let number: f32 = value
            .trim()
            .parse()
            .map_err(|_| error(format!("{key} `{value}` is not a number")))?;
        let slot = match (&mut spec, key) {
            (OptimizerSpec::Sgd { lr, .. } | OptimizerSpec::Adam { lr, .. }, "lr") => {
                has_lr = true;
                lr
            }
            (OptimizerSpec::Sgd { momentum, .. }, "momentum") => momentum,
            (
                OptimizerSpec::Sgd { weight_decay, .. } | OptimizerSpec::Adam { weight_decay, .. },
                "weight_decay",
            ) => weight_decay,
            (OptimizerSpec::Adam { beta1, .. }, "beta1") => beta1,
            (OptimizerSpec::Adam { beta2, .. }, "beta2") => beta2,
            (OptimizerSpec::Adam { eps, .. }, "eps") => eps,
            _ => return Err(error(format!("unknown key `{key}` for {}", name.trim()))),
        };
        *slot = number;
    }
    if !has_lr {
        return Err(error("lr is required".into()));
    }
    spec.validate().map_err(|e| error(e.to_string()))?;
    Ok((spec, batch))
}

/// Parses `iid`, `dirichlet:ALPHA[:MIN]`, `shards:K`, `quantity_dirichlet:ALPHA[:MIN]` or
/// `quantity_power_law:EXP[:MIN]`.
pub(crate) fn parse_partition(text: &str) -> Result<Partition, PlanError> {
    let error = |reason: String| PlanError::Partition {
        text: text.to_string(),
        reason,
    };
    let mut parts = text.trim().split(':');
    let name = parts.next().unwrap_or("").trim();
    let args: Vec<&str> = parts.map(str::trim).collect();
    let float = |i: usize, what: &str| -> Result<f64, PlanError> {
        let raw = args
            .get(i)
            .ok_or_else(|| error(format!("{what} is required")))?;
        raw.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| error(format!("{what} `{raw}` is not a finite number")))
    };
    // A concentration must be positive (the partitioner's own floor): refused here, at task
    // creation, rather than by every trainer when the first round opens.
    let alpha = |i: usize| -> Result<f64, PlanError> {
        let value = float(i, "alpha")?;
        if value >= cairn_ml::data::MIN_ALPHA {
            Ok(value)
        } else {
            Err(error(format!("alpha {value} must be greater than 0")))
        }
    };
    let count = |i: usize, what: &str| -> Result<usize, PlanError> {
        match args.get(i) {
            None => Ok(0),
            Some(raw) => raw
                .parse::<usize>()
                .map_err(|_| error(format!("{what} `{raw}` is not a whole number"))),
        }
    };
    let most = |n: usize| -> Result<(), PlanError> {
        if args.len() > n {
            Err(error(format!("{name} takes at most {n} argument(s)")))
        } else {
            Ok(())
        }
    };
    let partition = match name {
        "iid" => {
            most(0)?;
            Partition::Iid
        }
        "dirichlet" => {
            most(2)?;
            Partition::Dirichlet {
                alpha: alpha(0)?,
                min_samples: count(1, "min_samples")?,
            }
        }
        "shards" => {
            most(1)?;
            let shards = count(0, "shards per client")?;
            if shards == 0 {
                return Err(error("shards per client must be at least 1".into()));
            }
            Partition::Shards {
                shards_per_client: shards,
            }
        }
        "quantity_dirichlet" => {
            most(2)?;
            Partition::QuantityDirichlet {
                alpha: alpha(0)?,
                min_samples: count(1, "min_samples")?,
            }
        }
        "quantity_power_law" => {
            most(2)?;
            Partition::QuantityPowerLaw {
                exponent: float(0, "exponent").and_then(|exponent| {
                    if exponent >= 0.0 {
                        Ok(exponent)
                    } else {
                        Err(error(format!("exponent {exponent} must be at least 0")))
                    }
                })?,
                min_samples: count(1, "min_samples")?,
            }
        }
        "private" => return Err(error("private-data tasks are not supported yet".into())),
        other => return Err(error(format!("unknown partition `{other}`"))),
    };
    Ok(partition)
}

/// The remedies a defence names after its rule (`RULE+screen:5+wm:0.9+sm:0.5`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Remedies {
    /// The most updates the validators' held-out guard may leave out of the rule
    /// (`+screen:K`; 0: no guard), see [`crate::aggregation::screen`].
    pub screen: usize,
    /// Worker momentum `β` across rounds (`+wm:β`; 0: none), see
    /// [`crate::training::carry_momentum`].
    pub worker_momentum: f32,
    /// Server heavy-ball momentum `β` (`+sm:β`; 0: none), see
    /// [`crate::aggregation::server_step`].
    pub server_momentum: f32,
}

/// Splits `RULE[+screen:K][+wm:β][+sm:β]` into the rule (with its pre-aggregation chain) and the
/// remedies; each `β` must lie in `[0, 1)`, `K` is a count of updates (at most 1000).
pub fn split_remedies(text: &str) -> Result<(&str, Remedies), String> {
    let mut parts = text.split('+');
    let rule = parts.next().unwrap_or_default().trim();
    if rule.is_empty() {
        return Err(format!("`{text}` names no rule before its remedies"));
    }
    let mut remedies = Remedies::default();
    for remedy in parts {
        let (key, value) = remedy.trim().split_once(':').ok_or_else(|| {
            format!("remedy `{remedy}` of `{text}` is not KEY:VALUE (screen:5, wm:0.9 or sm:0.5)")
        })?;
        if key.trim() == "screen" {
            remedies.screen = value
                .trim()
                .parse()
                .ok()
                .filter(|k: &usize| (1..=MAX_SCREENED).contains(k))
                .ok_or_else(|| {
                    format!("`screen:{value}` of `{text}` is not a count from 1 to {MAX_SCREENED}")
                })?;
            continue;
        }
        let beta: f32 = value
            .trim()
            .parse()
            .ok()
            .filter(|b: &f32| (0.0..1.0).contains(b))
            .ok_or_else(|| format!("momentum `{value}` of `{text}` is not in [0, 1)"))?;
        match key.trim() {
            "wm" => remedies.worker_momentum = beta,
            "sm" => remedies.server_momentum = beta,
            other => {
                return Err(format!(
                    "unknown remedy `{other}` in `{text}`: screen (held-out guard), wm \
                     (worker momentum) or sm (server momentum)"
                ))
            }
        }
    }
    Ok((rule, remedies))
}

/// The largest `K` of `+screen:K`.
pub const MAX_SCREENED: usize = 1000;

/// Parses `[STEP,STEP,...>]RULE[+screen:K][+wm:β][+sm:β]`: an optional pre-aggregation chain
/// (`PreAggregation::parse_chain` syntax), `>`, then the rule (`Rule::parse` syntax), then
/// optionally the worker and server momentum ([`Remedies`]). `f` must be written out where a
/// rule or step takes one: the number of trainers is not known when a task is created.
pub(crate) fn parse_rule(text: &str) -> Result<(Vec<PreAggregation>, Rule, Remedies), PlanError> {
    let error = |source| PlanError::Rule {
        text: text.to_string(),
        source,
    };
    let parse_error = |reason: String| {
        error(cairn_robust::RobustError::Parse {
            what: "remedy",
            input: text.to_string(),
            reason,
        })
    };
    let (text, remedies) = split_remedies(text).map_err(parse_error)?;
    let (chain, rule) = text.rsplit_once('>').unwrap_or(("", text));
    if text.contains('>') && chain.trim().is_empty() {
        // `>median` is a typo (a step left out), not a way to say "no steps": refuse it, as a
        // rule missing after `nnm:2>` is refused.
        return Err(error(cairn_robust::RobustError::Parse {
            what: "pre-aggregation",
            input: chain.to_string(),
            reason: "nothing before `>`; name the steps (e.g. nnm:2>median) or drop the `>`".into(),
        }));
    }
    let pre = PreAggregation::parse_chain(chain, 0).map_err(error)?;
    let rule = Rule::parse(rule.trim(), 0).map_err(error)?;
    rule.check_chain(&pre).map_err(error)?;
    Ok((pre, rule, remedies))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A task's rule is text anyone can submit: any string parses or is a typed error.
        #[test]
        fn any_rule_text_parses_or_is_an_error(text in "[a-z_:0-9.,>+ -]{0,40}") {
            if let Ok((_, _, remedies)) = parse_rule(&text) {
                prop_assert!(remedies.screen <= MAX_SCREENED);
                prop_assert!((0.0..1.0).contains(&remedies.server_momentum));
                prop_assert!((0.0..1.0).contains(&remedies.worker_momentum));
            }
        }

        #[test]
        fn a_screen_count_round_trips(k in 1usize..=MAX_SCREENED) {
            let (_, remedies) = split_remedies(&format!("median+screen:{k}")).unwrap();
            prop_assert_eq!(remedies.screen, k);
        }
    }

    #[test]
    fn the_screen_remedy_is_a_count() {
        let (rule, remedies) = split_remedies("nnm:2>median+screen:2+sm:0.5").unwrap();
        assert_eq!(rule, "nnm:2>median");
        assert_eq!(remedies.screen, 2);
        assert_eq!(remedies.server_momentum, 0.5);
        for bad in [
            "median+screen:0",
            "median+screen:x",
            "median+screen:1001",
            "median+screen:-1",
        ] {
            assert!(split_remedies(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn optimizer_syntax_reads_every_key_and_the_batch() {
        let (spec, batch) = parse_optimizer("sgd:lr=0.05,momentum=0.9,batch=16").unwrap();
        assert_eq!(
            spec,
            OptimizerSpec::Sgd {
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 0.0
            }
        );
        assert_eq!(batch, 16);
        assert!(parse_optimizer("sgd:momentum=0.9").is_err());
        assert!(parse_optimizer("adam:lr=0.01,momentum=0.9").is_err());
        assert!(parse_optimizer("sgd:lr=-1").is_err());
        assert!(parse_optimizer("rmsprop:lr=0.1").is_err());
    }

    #[test]
    fn partition_syntax_covers_every_scheme_and_rejects_bad_numbers() {
        assert_eq!(parse_partition("iid").unwrap(), Partition::Iid);
        assert_eq!(
            parse_partition("dirichlet:0.5:10").unwrap(),
            Partition::Dirichlet {
                alpha: 0.5,
                min_samples: 10
            }
        );
        assert_eq!(
            parse_partition("shards:2").unwrap(),
            Partition::Shards {
                shards_per_client: 2
            }
        );
        assert!(parse_partition("quantity_power_law:1.5").is_ok());
        assert!(parse_partition("dirichlet:nan").is_err());
        for zero_or_negative in ["dirichlet:0", "dirichlet:-1", "quantity_dirichlet:0"] {
            let error = parse_partition(zero_or_negative).unwrap_err().to_string();
            assert!(error.contains("must be greater than 0"), "{error}");
        }
        assert!(parse_partition("quantity_power_law:-0.5").is_err());
        assert!(parse_partition("shards:0").is_err());
        assert!(parse_partition("iid:3").is_err());
        assert!(parse_partition("private").is_err());
    }

    #[test]
    fn rule_syntax_splits_the_chain_from_the_rule() {
        let (pre, rule, _) = parse_rule("nnm:2,arc:1>trimmed_mean:2").unwrap();
        assert_eq!(
            pre,
            vec![PreAggregation::Nnm { f: 2 }, PreAggregation::Arc { f: 1 }]
        );
        assert_eq!(rule, Rule::TrimmedMean { f: 2 });
        let (pre, rule, remedies) = parse_rule("median").unwrap();
        assert_eq!(remedies, Remedies::default());
        assert!(pre.is_empty());
        assert_eq!(rule, Rule::Median);
        assert!(parse_rule("nnm:1>no_such_rule").is_err());
        assert!(parse_rule("bucketing:2>monna:1").is_err());
        assert!(parse_rule(">median").is_err());
        assert!(parse_rule(" > median").is_err());
        assert!(parse_rule("nnm:2>").is_err());
    }
}
