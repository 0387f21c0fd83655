//! `--sweep KEY=FROM..TO:STEP`: rerun a scenario with one constant of the reward table varied.

use std::fmt;

use serde::Serialize;

use super::error::{SimError, SimResult};

/// Most points a sweep may have.
pub const MAX_SWEEP_POINTS: u64 = 1_000;

/// A parsed `--sweep` argument: the dotted key of `configs/rewards.toml` and the values it takes,
/// `from`, `from + step`, ... up to and including `to` (or the last step before it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sweep {
    /// Dotted key in the reward config, e.g. `REWARD_T2_PROVER` or `phases.t2_ms`.
    pub key: String,
    /// First value.
    pub from: i64,
    /// Last value (inclusive bound).
    pub to: i64,
    /// Increment (> 0).
    pub step: i64,
}

impl Sweep {
    /// The values of the sweep, ascending.
    pub fn values(&self) -> Vec<i64> {
        let mut out = Vec::new();
        let mut v = self.from;
        while v <= self.to {
            out.push(v);
            match v.checked_add(self.step) {
                Some(next) => v = next,
                None => break,
            }
        }
        out
    }
}

impl fmt::Display for Sweep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}..{}:{}", self.key, self.from, self.to, self.step)
    }
}

impl Sweep {
    /// Parses `KEY=FROM..TO:STEP` (`_` separators allowed in the numbers).
    ///
    /// # Errors
    /// [`SimError::SweepSyntax`] saying what is wrong.
    pub fn parse(arg: &str) -> SimResult<Self> {
        let err =
            |reason: &str| SimError::SweepSyntax { arg: arg.to_owned(), reason: reason.to_owned() };
        let (key, range) = arg.split_once('=').ok_or_else(|| err("missing `=`"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(err("empty key"));
        }
        if !key.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }) {
            return Err(err("the key must be a dotted TOML key of bare words"));
        }
        let (range, step) = range.rsplit_once(':').ok_or_else(|| err("missing `:STEP`"))?;
        let (from, to) =
            range.split_once("..").ok_or_else(|| err("missing `..` between FROM and TO"))?;
        let num = |s: &str, what: &str| -> SimResult<i64> {
            s.trim()
                .replace('_', "")
                .parse::<i64>()
                .map_err(|_| err(&format!("{what} `{s}` is not an integer")))
        };
        let from = num(from, "FROM")?;
        let to = num(to, "TO")?;
        let step = num(step, "STEP")?;
        if step <= 0 {
            return Err(err("STEP must be positive"));
        }
        if from > to {
            return Err(err("FROM is greater than TO"));
        }
        let points = (i128::from(to) - i128::from(from)) / i128::from(step) + 1;
        if points > i128::from(MAX_SWEEP_POINTS) {
            return Err(err(&format!("{points} points; at most {MAX_SWEEP_POINTS} are allowed")));
        }
        Ok(Self { key: key.to_owned(), from, to, step })
    }
}

impl std::str::FromStr for Sweep {
    type Err = SimError;

    fn from_str(s: &str) -> SimResult<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_enumerates() {
        let s: Sweep = "REWARD_T2_PROVER=0..200:50".parse().unwrap();
        assert_eq!(s.key, "REWARD_T2_PROVER");
        assert_eq!(s.values(), vec![0, 50, 100, 150, 200]);
        let s: Sweep = "PENALTY_T1_PROVER=-10..-1:4".parse().unwrap();
        assert_eq!(s.values(), vec![-10, -6, -2]);
        let s: Sweep = "phases.t2_ms=1_000..4_000:1_500".parse().unwrap();
        assert_eq!(s.key, "phases.t2_ms");
        assert_eq!(s.values(), vec![1_000, 2_500, 4_000]);
        assert_eq!(s.to_string(), "phases.t2_ms=1000..4000:1500");
        let s: Sweep = "X=5..5:1".parse().unwrap();
        assert_eq!(s.values(), vec![5]);
        let s: Sweep = format!("X={}..{}:{}", i64::MAX - 1, i64::MAX, 1).parse().unwrap();
        assert_eq!(s.values().len(), 2);
    }

    #[test]
    fn rejects_malformed_arguments_with_a_reason() {
        for (arg, reason) in [
            ("REWARD", "missing `=`"),
            ("=1..2:1", "empty key"),
            ("A B=1..2:1", "dotted TOML key"),
            ("A..B=1..2:1", "dotted TOML key"),
            ("A=1..2", "missing `:STEP`"),
            ("A=1-2:1", "missing `..`"),
            ("A=x..2:1", "FROM `x`"),
            ("A=1..2:0", "STEP must be positive"),
            ("A=3..2:1", "FROM is greater"),
            ("A=0..1000000:1", "at most"),
        ] {
            let err = arg.parse::<Sweep>().expect_err(arg).to_string();
            assert!(err.contains(reason), "{arg}: {err}");
        }
    }
}
