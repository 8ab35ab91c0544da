//! The text syntax of rules and pre-aggregation chains used on the command line:
//! `name[:arg[:arg...]]`, e.g. `krum:2:byzfl`, `trimmed_mean:1`, `bucketing:2:7`, `clip:5.0`.

use std::fmt;
use std::str::FromStr;

use crate::rule::{GmInit, KrumVariant, Rule};
use crate::{PreAggregation, RobustError};

/// Default smoothing of the geometric median (ByzFL's `nu`).
pub const DEFAULT_GM_NU: f32 = 0.1;
/// Default Weiszfeld iterations (ByzFL's `T`).
pub const DEFAULT_GM_ITERATIONS: usize = 3;
/// Default centered-clipping radius (ByzFL's `tau`).
pub const DEFAULT_CC_TAU: f32 = 100.0;
/// Default centered-clipping iterations (ByzFL's `L`).
pub const DEFAULT_CC_ITERATIONS: usize = 1;

const RULE_SYNTAX: &str = "mean | weighted_mean:W1,W2,... | median | trimmed_mean[:F] | \
krum[:F[:textbook|byzfl]] | multi_krum[:F[:M|auto[:textbook|byzfl]]] | bulyan[:F] | \
geometric_median[:NU[:ITERATIONS[:zeros|mean|median]]] | centered_clipping[:TAU[:ITERATIONS]] | \
mda[:F] | monna[:F[:REFERENCE]] | meamed[:F]";

const PRE_SYNTAX: &str = "nnm[:F] | bucketing:SIZE[:SEED] | clip:THRESHOLD | arc[:F]";

struct Spec<'a> {
    what: &'static str,
    input: &'a str,
    name: String,
    args: Vec<&'a str>,
}

impl<'a> Spec<'a> {
    fn split(what: &'static str, input: &'a str) -> Self {
        let mut parts = input.trim().split(':');
        let name = parts
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .replace('-', "_");
        Self {
            what,
            input,
            name,
            args: parts.map(str::trim).collect(),
        }
    }

    fn error(&self, reason: String) -> RobustError {
        RobustError::Parse {
            what: self.what,
            input: self.input.to_string(),
            reason,
        }
    }

    fn at_most(&self, count: usize, syntax: &str) -> Result<(), RobustError> {
        if self.args.len() > count {
            return Err(self.error(format!(
                "too many arguments ({} given, at most {count}); syntax: {syntax}",
                self.args.len()
            )));
        }
        Ok(())
    }

    fn arg<T: FromStr>(&self, index: usize, label: &str, default: T) -> Result<T, RobustError> {
        match self.args.get(index) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| self.error(format!("{label} `{text}` is not a valid value"))),
        }
    }

    fn required<T: FromStr>(
        &self,
        index: usize,
        label: &str,
        syntax: &str,
    ) -> Result<T, RobustError> {
        let text = self
            .args
            .get(index)
            .ok_or_else(|| self.error(format!("{label} is required; syntax: {syntax}")))?;
        text.parse()
            .map_err(|_| self.error(format!("{label} `{text}` is not a valid value")))
    }

    fn variant(&self, index: usize) -> Result<KrumVariant, RobustError> {
        match self.args.get(index).map(|s| s.to_ascii_lowercase()) {
            None => Ok(KrumVariant::Textbook),
            Some(v) if v == "textbook" => Ok(KrumVariant::Textbook),
            Some(v) if v == "byzfl" => Ok(KrumVariant::ByzFl),
            Some(v) => Err(self.error(format!("variant `{v}` is not textbook or byzfl"))),
        }
    }
}

impl Rule {
    /// Parses the CLI syntax of a rule; `default_f` is used when the text gives no `f`.
    ///
    /// ```
    /// use cairn_robust::{KrumVariant, Rule};
    /// assert_eq!(
    ///     Rule::parse("krum:2:byzfl", 0).unwrap(),
    ///     Rule::Krum { f: 2, variant: KrumVariant::ByzFl }
    /// );
    /// assert_eq!(Rule::parse("trimmed_mean", 3).unwrap(), Rule::TrimmedMean { f: 3 });
    /// ```
    pub fn parse(text: &str, default_f: usize) -> Result<Rule, RobustError> {
        let spec = Spec::split("rule", text);
        let f = || spec.arg(0, "f", default_f);
        let rule = match spec.name.as_str() {
            "mean" | "average" => {
                spec.at_most(0, "mean")?;
                Rule::Mean
            }
            "weighted_mean" => {
                spec.at_most(1, "weighted_mean:W1,W2,...")?;
                let list: String = spec.required(0, "weights", "weighted_mean:W1,W2,...")?;
                let weights = list
                    .split(',')
                    .map(|w| {
                        w.trim()
                            .parse::<f32>()
                            .map_err(|_| spec.error(format!("weight `{w}` is not a number")))
                    })
                    .collect::<Result<Vec<f32>, RobustError>>()?;
                Rule::WeightedMean { weights }
            }
            "median" => {
                spec.at_most(0, "median")?;
                Rule::Median
            }
            "trimmed_mean" | "trmean" => {
                spec.at_most(1, "trimmed_mean[:F]")?;
                Rule::TrimmedMean { f: f()? }
            }
            "krum" => {
                spec.at_most(2, "krum[:F[:textbook|byzfl]]")?;
                Rule::Krum {
                    f: f()?,
                    variant: spec.variant(1)?,
                }
            }
            "multi_krum" | "multikrum" => {
                spec.at_most(3, "multi_krum[:F[:M|auto[:textbook|byzfl]]]")?;
                let m = match spec.args.get(1) {
                    None => None,
                    Some(text) if text.eq_ignore_ascii_case("auto") => None,
                    Some(_) => Some(spec.required(1, "m", "multi_krum:F:M")?),
                };
                Rule::MultiKrum {
                    f: f()?,
                    m,
                    variant: spec.variant(2)?,
                }
            }
            "bulyan" => {
                spec.at_most(1, "bulyan[:F]")?;
                Rule::Bulyan { f: f()? }
            }
            "geometric_median" | "gm" => {
                spec.at_most(3, "geometric_median[:NU[:ITERATIONS[:zeros|mean|median]]]")?;
                let init = match spec.args.get(2).map(|s| s.to_ascii_lowercase()) {
                    None => GmInit::Zeros,
                    Some(v) if v == "zeros" => GmInit::Zeros,
                    Some(v) if v == "mean" => GmInit::Mean,
                    Some(v) if v == "median" => GmInit::Median,
                    Some(v) => {
                        return Err(spec.error(format!("init `{v}` is not zeros, mean or median")))
                    }
                };
                Rule::GeometricMedian {
                    nu: spec.arg(0, "nu", DEFAULT_GM_NU)?,
                    iterations: spec.arg(1, "iterations", DEFAULT_GM_ITERATIONS)?,
                    init,
                }
            }
            "centered_clipping" | "cc" => {
                spec.at_most(2, "centered_clipping[:TAU[:ITERATIONS]]")?;
                Rule::CenteredClipping {
                    tau: spec.arg(0, "tau", DEFAULT_CC_TAU)?,
                    iterations: spec.arg(1, "iterations", DEFAULT_CC_ITERATIONS)?,
                }
            }
            "mda" => {
                spec.at_most(1, "mda[:F]")?;
                Rule::Mda { f: f()? }
            }
            "monna" => {
                spec.at_most(2, "monna[:F[:REFERENCE]]")?;
                Rule::Monna {
                    f: f()?,
                    reference: spec.arg(1, "reference", 0)?,
                }
            }
            "meamed" => {
                spec.at_most(1, "meamed[:F]")?;
                Rule::Meamed { f: f()? }
            }
            other => {
                return Err(spec.error(format!(
                    "unknown rule `{other}`; expected one of: {RULE_SYNTAX}"
                )))
            }
        };
        Ok(rule)
    }
}

impl FromStr for Rule {
    type Err = RobustError;

    /// Parses the CLI syntax with `f = 0` where the text gives none.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Rule::parse(text, 0)
    }
}

impl fmt::Display for Rule {
    /// Writes the full CLI syntax, which [`Rule::parse`] reads back to the same rule.
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = |v: &KrumVariant| match v {
            KrumVariant::Textbook => "textbook",
            KrumVariant::ByzFl => "byzfl",
        };
        match self {
            Rule::Mean | Rule::Median => write!(out, "{}", self.name()),
            Rule::WeightedMean { weights } => {
                let list: Vec<String> = weights.iter().map(|w| w.to_string()).collect();
                write!(out, "weighted_mean:{}", list.join(","))
            }
            Rule::TrimmedMean { f } | Rule::Bulyan { f } | Rule::Mda { f } | Rule::Meamed { f } => {
                write!(out, "{}:{f}", self.name())
            }
            Rule::Krum { f, variant: v } => write!(out, "krum:{f}:{}", variant(v)),
            Rule::MultiKrum { f, m, variant: v } => match m {
                Some(m) => write!(out, "multi_krum:{f}:{m}:{}", variant(v)),
                None => write!(out, "multi_krum:{f}:auto:{}", variant(v)),
            },
            Rule::GeometricMedian {
                nu,
                iterations,
                init,
            } => {
                let init = match init {
                    GmInit::Zeros => "zeros",
                    GmInit::Mean => "mean",
                    GmInit::Median => "median",
                };
                write!(out, "geometric_median:{nu}:{iterations}:{init}")
            }
            Rule::CenteredClipping { tau, iterations } => {
                write!(out, "centered_clipping:{tau}:{iterations}")
            }
            Rule::Monna { f, reference } => write!(out, "monna:{f}:{reference}"),
        }
    }
}

impl PreAggregation {
    /// Parses the CLI syntax of one step; `default_f` is used when `nnm` or `arc` give no `f`.
    ///
    /// ```
    /// use cairn_robust::PreAggregation;
    /// assert_eq!(PreAggregation::parse("nnm", 2).unwrap(), PreAggregation::Nnm { f: 2 });
    /// assert_eq!(
    ///     PreAggregation::parse("bucketing:2", 0).unwrap(),
    ///     PreAggregation::Bucketing { bucket_size: 2, seed: 0 }
    /// );
    /// ```
    pub fn parse(text: &str, default_f: usize) -> Result<PreAggregation, RobustError> {
        let spec = Spec::split("pre-aggregation", text);
        let step = match spec.name.as_str() {
            "nnm" => {
                spec.at_most(1, "nnm[:F]")?;
                PreAggregation::Nnm {
                    f: spec.arg(0, "f", default_f)?,
                }
            }
            "bucketing" => {
                spec.at_most(2, "bucketing:SIZE[:SEED]")?;
                PreAggregation::Bucketing {
                    bucket_size: spec.required(0, "bucket size", "bucketing:SIZE[:SEED]")?,
                    seed: spec.arg(1, "seed", 0)?,
                }
            }
            "clip" | "static_clip" => {
                spec.at_most(1, "clip:THRESHOLD")?;
                PreAggregation::StaticClip {
                    threshold: spec.required(0, "threshold", "clip:THRESHOLD")?,
                }
            }
            "arc" => {
                spec.at_most(1, "arc[:F]")?;
                PreAggregation::Arc {
                    f: spec.arg(0, "f", default_f)?,
                }
            }
            other => {
                return Err(spec.error(format!(
                    "unknown pre-aggregation `{other}`; expected one of: {PRE_SYNTAX}"
                )))
            }
        };
        Ok(step)
    }

    /// Parses a comma-separated chain (`"nnm,arc"`, `"clip:5,bucketing:2:9"`); an empty text or
    /// `"none"` is the empty chain.
    pub fn parse_chain(text: &str, default_f: usize) -> Result<Vec<PreAggregation>, RobustError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
            return Ok(Vec::new());
        }
        trimmed
            .split(',')
            .map(|step| PreAggregation::parse(step, default_f))
            .collect()
    }
}

impl FromStr for PreAggregation {
    type Err = RobustError;

    /// Parses the CLI syntax with `f = 0` where the text gives none.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        PreAggregation::parse(text, 0)
    }
}

impl fmt::Display for PreAggregation {
    /// Writes the full CLI syntax, which [`PreAggregation::parse`] reads back.
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreAggregation::Nnm { f } => write!(out, "nnm:{f}"),
            PreAggregation::Bucketing { bucket_size, seed } => {
                write!(out, "bucketing:{bucket_size}:{seed}")
            }
            PreAggregation::StaticClip { threshold } => write!(out, "clip:{threshold}"),
            PreAggregation::Arc { f } => write!(out, "arc:{f}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_display_parses_back_to_itself() {
        let rules = [
            Rule::Mean,
            Rule::WeightedMean {
                weights: vec![1.0, 0.5, 2.0],
            },
            Rule::Median,
            Rule::TrimmedMean { f: 2 },
            Rule::Krum {
                f: 1,
                variant: KrumVariant::ByzFl,
            },
            Rule::MultiKrum {
                f: 1,
                m: Some(3),
                variant: KrumVariant::Textbook,
            },
            Rule::MultiKrum {
                f: 2,
                m: None,
                variant: KrumVariant::ByzFl,
            },
            Rule::Bulyan { f: 1 },
            Rule::GeometricMedian {
                nu: 0.25,
                iterations: 7,
                init: GmInit::Median,
            },
            Rule::CenteredClipping {
                tau: 3.5,
                iterations: 2,
            },
            Rule::Mda { f: 1 },
            Rule::Monna { f: 1, reference: 4 },
            Rule::Meamed { f: 3 },
        ];
        for rule in rules {
            assert_eq!(Rule::parse(&rule.to_string(), 9).unwrap(), rule);
        }
    }

    #[test]
    fn short_forms_take_the_default_f_and_byzfl_defaults() {
        assert_eq!(
            Rule::parse("krum", 2).unwrap(),
            Rule::Krum {
                f: 2,
                variant: KrumVariant::Textbook
            }
        );
        assert_eq!(
            "geometric_median".parse::<Rule>().unwrap(),
            Rule::GeometricMedian {
                nu: 0.1,
                iterations: 3,
                init: GmInit::Zeros
            }
        );
        assert_eq!(
            "centered_clipping".parse::<Rule>().unwrap(),
            Rule::CenteredClipping {
                tau: 100.0,
                iterations: 1
            }
        );
        assert_eq!(
            Rule::parse("Trimmed-Mean", 1).unwrap(),
            Rule::TrimmedMean { f: 1 }
        );
    }

    #[test]
    fn pre_aggregation_chains_parse_in_order() {
        let chain = PreAggregation::parse_chain("nnm, clip:5.0 ,bucketing:2:9,arc", 3).unwrap();
        assert_eq!(
            chain,
            vec![
                PreAggregation::Nnm { f: 3 },
                PreAggregation::StaticClip { threshold: 5.0 },
                PreAggregation::Bucketing {
                    bucket_size: 2,
                    seed: 9
                },
                PreAggregation::Arc { f: 3 },
            ]
        );
        assert!(PreAggregation::parse_chain("none", 1).unwrap().is_empty());
        for step in chain {
            assert_eq!(PreAggregation::parse(&step.to_string(), 0).unwrap(), step);
        }
    }

    #[test]
    fn bad_specifications_explain_the_syntax() {
        for text in [
            "krumm",
            "krum:x",
            "krum:1:fast",
            "bucketing",
            "clip",
            "median:3",
            "mean:1",
        ] {
            let err = Rule::parse(text, 0)
                .err()
                .or_else(|| PreAggregation::parse(text, 0).err());
            assert!(matches!(err, Some(RobustError::Parse { .. })), "{text}");
        }
        let message = Rule::parse("krumm", 0).unwrap_err().to_string();
        assert!(
            message.contains("unknown rule `krumm`") && message.contains("bulyan"),
            "{message}"
        );
    }

    #[test]
    fn rules_round_trip_through_serde_json_with_a_rule_tag() {
        let rule = Rule::Krum {
            f: 1,
            variant: KrumVariant::ByzFl,
        };
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(json, r#"{"rule":"krum","f":1,"variant":"byzfl"}"#);
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), rule);
        let pre: PreAggregation =
            serde_json::from_str(r#"{"pre":"clip","threshold":2.0}"#).unwrap();
        assert_eq!(pre, PreAggregation::StaticClip { threshold: 2.0 });
    }
}
