//! The text syntax of attacks used by `cairn attack --kind`: `name[:arg[:arg...]]`, e.g.
//! `alie`, `alie:1.5`, `ipm:0.5`, `min_max:sign`, `optimized_alie:0:10:0.8:20`,
//! `sybil:gaussian:5`.

use std::fmt;
use std::str::FromStr;

use super::{
    Attack, AttackError, MimicTarget, NonFiniteValue, Perturbation, StrengthSearch,
    DEFAULT_GAUSSIAN_SIGMA, DEFAULT_IPM_EPSILON,
};

/// Every accepted form, shown in parse errors and in `cairn attack --help`.
pub const ATTACK_SYNTAX: &str =
    "sign_flip[:SCALE] | gaussian[:SIGMA[:MU]] | nan | inf | neg_inf | \
ipm[:EPSILON] | alie[:Z|auto] | optimized_ipm[:START[:DELTA[:RATIO[:EVALUATIONS]]]] | \
optimized_alie[:START[:DELTA[:RATIO[:EVALUATIONS]]]] | mimic[:INDEX|seeded|heuristic] | \
min_max[:std|unit_mean|sign] | min_sum[:std|unit_mean|sign] | free_rider | stale | sybil:ATTACK";

struct Spec<'a> {
    input: &'a str,
    args: Vec<&'a str>,
}

impl Spec<'_> {
    fn error(&self, reason: String) -> AttackError {
        AttackError::Parse {
            input: self.input.to_string(),
            reason,
        }
    }

    fn at_most(&self, count: usize) -> Result<(), AttackError> {
        if self.args.len() > count {
            return Err(self.error(format!(
                "too many arguments ({} given, at most {count}); syntax: {ATTACK_SYNTAX}",
                self.args.len()
            )));
        }
        Ok(())
    }

    fn arg<T: FromStr>(&self, index: usize, label: &str, default: T) -> Result<T, AttackError> {
        match self.args.get(index) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| self.error(format!("{label} `{text}` is not a valid value"))),
        }
    }

    fn search(&self) -> Result<StrengthSearch, AttackError> {
        self.at_most(4)?;
        let default = StrengthSearch::default();
        Ok(StrengthSearch {
            start: self.arg(0, "start", default.start)?,
            delta: self.arg(1, "delta", default.delta)?,
            ratio: self.arg(2, "ratio", default.ratio)?,
            evaluations: self.arg(3, "evaluations", default.evaluations)?,
        })
    }

    fn perturbation(&self) -> Result<Perturbation, AttackError> {
        self.at_most(1)?;
        match self.args.first().map(|s| s.to_ascii_lowercase()) {
            None => Ok(Perturbation::Std),
            Some(p) if p == "std" => Ok(Perturbation::Std),
            Some(p) if p == "unit_mean" || p == "unit" => Ok(Perturbation::UnitMean),
            Some(p) if p == "sign" => Ok(Perturbation::Sign),
            Some(p) => Err(self.error(format!("perturbation `{p}` is not std, unit_mean or sign"))),
        }
    }
}

impl FromStr for Attack {
    type Err = AttackError;

    /// Parses the CLI syntax (see [`ATTACK_SYNTAX`]); missing arguments take their defaults.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = input.trim();
        let (head, rest) = match trimmed.split_once(':') {
            Some((head, rest)) => (head, Some(rest)),
            None => (trimmed, None),
        };
        let name = head.trim().to_ascii_lowercase().replace('-', "_");
        if name == "sybil" {
            let inner = rest.ok_or_else(|| AttackError::Parse {
                input: input.to_string(),
                reason: "sybil needs the attack its members copy, e.g. sybil:gaussian:5".into(),
            })?;
            return Ok(Attack::Sybil {
                of: Box::new(inner.parse()?),
            });
        }
        let spec = Spec {
            input,
            args: rest
                .map(|r| r.split(':').map(str::trim).collect())
                .unwrap_or_default(),
        };
        let attack = match name.as_str() {
            "sign_flip" | "signflip" => {
                spec.at_most(1)?;
                Attack::SignFlip {
                    scale: spec.arg(0, "scale", 1.0)?,
                }
            }
            "gaussian" => {
                spec.at_most(2)?;
                Attack::Gaussian {
                    sigma: spec.arg(0, "sigma", DEFAULT_GAUSSIAN_SIGMA)?,
                    mu: spec.arg(1, "mu", 0.0)?,
                }
            }
            "nan" | "inf" | "neg_inf" => {
                spec.at_most(0)?;
                let value = match name.as_str() {
                    "nan" => NonFiniteValue::Nan,
                    "inf" => NonFiniteValue::Inf,
                    _ => NonFiniteValue::NegInf,
                };
                Attack::NonFinite { value }
            }
            "ipm" => {
                spec.at_most(1)?;
                Attack::Ipm {
                    epsilon: spec.arg(0, "epsilon", DEFAULT_IPM_EPSILON)?,
                }
            }
            "alie" => {
                spec.at_most(1)?;
                let z = match spec.args.first() {
                    None => None,
                    Some(text) if text.eq_ignore_ascii_case("auto") => None,
                    Some(_) => Some(spec.arg(0, "z", 0.0)?),
                };
                Attack::Alie { z }
            }
            "optimized_ipm" | "opt_ipm" => Attack::OptimizedIpm {
                search: spec.search()?,
            },
            "optimized_alie" | "opt_alie" => Attack::OptimizedAlie {
                search: spec.search()?,
            },
            "mimic" => {
                spec.at_most(1)?;
                let target = match spec.args.first().map(|s| s.to_ascii_lowercase()) {
                    None => MimicTarget::Heuristic,
                    Some(t) if t == "heuristic" => MimicTarget::Heuristic,
                    Some(t) if t == "seeded" => MimicTarget::Seeded,
                    Some(_) => MimicTarget::Index(spec.arg(0, "index", 0)?),
                };
                Attack::Mimic { target }
            }
            "min_max" | "minmax" => Attack::MinMax {
                perturbation: spec.perturbation()?,
            },
            "min_sum" | "minsum" => Attack::MinSum {
                perturbation: spec.perturbation()?,
            },
            "free_rider" => {
                spec.at_most(0)?;
                Attack::FreeRider
            }
            "stale" => {
                spec.at_most(0)?;
                Attack::Stale
            }
            other => {
                return Err(spec.error(format!(
                    "unknown attack `{other}`; expected one of: {ATTACK_SYNTAX}"
                )))
            }
        };
        Ok(attack)
    }
}

impl fmt::Display for Attack {
    /// Writes the full CLI syntax, which [`Attack::from_str`] reads back to the same attack.
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let perturbation = |p: &Perturbation| match p {
            Perturbation::Std => "std",
            Perturbation::UnitMean => "unit_mean",
            Perturbation::Sign => "sign",
        };
        let search =
            |s: &StrengthSearch| format!("{}:{}:{}:{}", s.start, s.delta, s.ratio, s.evaluations);
        match self {
            Attack::SignFlip { scale } => write!(out, "sign_flip:{scale}"),
            Attack::Gaussian { mu, sigma } => write!(out, "gaussian:{sigma}:{mu}"),
            Attack::NonFinite { value } => match value {
                NonFiniteValue::Nan => write!(out, "nan"),
                NonFiniteValue::Inf => write!(out, "inf"),
                NonFiniteValue::NegInf => write!(out, "neg_inf"),
            },
            Attack::Ipm { epsilon } => write!(out, "ipm:{epsilon}"),
            Attack::Alie { z: None } => write!(out, "alie:auto"),
            Attack::Alie { z: Some(z) } => write!(out, "alie:{z}"),
            Attack::OptimizedIpm { search: s } => write!(out, "optimized_ipm:{}", search(s)),
            Attack::OptimizedAlie { search: s } => write!(out, "optimized_alie:{}", search(s)),
            Attack::Mimic { target } => match target {
                MimicTarget::Index(index) => write!(out, "mimic:{index}"),
                MimicTarget::Seeded => write!(out, "mimic:seeded"),
                MimicTarget::Heuristic => write!(out, "mimic:heuristic"),
            },
            Attack::MinMax { perturbation: p } => write!(out, "min_max:{}", perturbation(p)),
            Attack::MinSum { perturbation: p } => write!(out, "min_sum:{}", perturbation(p)),
            Attack::FreeRider => write!(out, "free_rider"),
            Attack::Stale => write!(out, "stale"),
            Attack::Sybil { of } => write!(out, "sybil:{of}"),
        }
    }
}
