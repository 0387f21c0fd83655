//! Probability distributions of the scenario: proving latencies and block gas.

use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use serde::{Deserialize, Serialize};

use super::error::{SimError, SimResult};

/// A distribution of durations in milliseconds.
///
/// ```toml
/// per_air = { kind = "fixed", ms = 300 }
/// per_air = { kind = "uniform", min_ms = 200, max_ms = 800 }
/// per_air = { kind = "lognormal", median_ms = 400, sigma = 0.5 }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Latency {
    /// Always the same duration.
    Fixed {
        /// The duration.
        ms: u64,
    },
    /// Uniform between two bounds (inclusive).
    Uniform {
        /// Lower bound.
        min_ms: u64,
        /// Upper bound.
        max_ms: u64,
    },
    /// Log-normal: `median_ms * exp(sigma * N(0, 1))`, the usual shape of service times (a
    /// long right tail of slow runs).
    Lognormal {
        /// The median duration.
        median_ms: u64,
        /// Shape: standard deviation of the underlying normal distribution (0 is fixed).
        sigma: f64,
    },
}

/// Longest duration a latency sample may take (one hour): keeps virtual time far from overflow.
pub const MAX_LATENCY_MS: u64 = 3_600_000;

impl Latency {
    /// Checks the parameters; `key` names this distribution in errors.
    ///
    /// # Errors
    /// [`SimError::ScenarioInvalid`] naming the offending key.
    pub fn validate(&self, key: &str) -> SimResult<()> {
        match *self {
            Self::Fixed { ms } if ms > MAX_LATENCY_MS => {
                Err(SimError::invalid(format!("{key}.ms"), too_long(ms)))
            }
            Self::Uniform { min_ms, max_ms } if min_ms > max_ms => Err(SimError::invalid(
                format!("{key}.min_ms"),
                format!("min_ms ({min_ms}) is greater than max_ms ({max_ms})"),
            )),
            Self::Uniform { max_ms, .. } if max_ms > MAX_LATENCY_MS => {
                Err(SimError::invalid(format!("{key}.max_ms"), too_long(max_ms)))
            }
            Self::Lognormal { median_ms, .. } if median_ms > MAX_LATENCY_MS => {
                Err(SimError::invalid(format!("{key}.median_ms"), too_long(median_ms)))
            }
            Self::Lognormal { sigma, .. } if !(0.0..=5.0).contains(&sigma) => {
                Err(SimError::invalid(format!("{key}.sigma"), format!("{sigma} is not in [0, 5]")))
            }
            _ => Ok(()),
        }
    }

    /// Draws one duration in milliseconds (at most [`MAX_LATENCY_MS`]).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match *self {
            Self::Fixed { ms } => ms,
            Self::Uniform { min_ms, max_ms } => rng.random_range(min_ms..=max_ms),
            Self::Lognormal { median_ms, sigma } => {
                if sigma == 0.0 {
                    return median_ms;
                }
                // `validate` keeps sigma finite and non-negative, so this cannot fail.
                let Ok(dist) = LogNormal::new(0.0, sigma) else { return median_ms };
                let factor: f64 = dist.sample(rng);
                // Saturating float-to-int conversion, then the cap.
                ((median_ms as f64) * factor).round().min(MAX_LATENCY_MS as f64) as u64
            }
        }
    }

    /// The median of the distribution (used to describe scenarios).
    pub fn median_ms(&self) -> u64 {
        match *self {
            Self::Fixed { ms } => ms,
            Self::Uniform { min_ms, max_ms } => min_ms + (max_ms - min_ms) / 2,
            Self::Lognormal { median_ms, .. } => median_ms,
        }
    }
}

fn too_long(ms: u64) -> String {
    format!("{ms} ms is longer than the maximum of {MAX_LATENCY_MS} ms")
}

/// Gas used by the simulated blocks.
///
/// ```toml
/// [gas]
/// kind = "fixed"
/// gas = 30_000_000
///
/// [gas]
/// kind = "uniform"
/// min = 10_000_000
/// max = 36_000_000
///
/// [gas]
/// kind = "mix"
/// components = [
///   { weight = 95, min = 10_000_000, max = 36_000_000 },
///   { weight = 5, gas = 1_000_000_000 },   # gigagas blocks, split into sub-blocks
/// ]
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum GasDistribution {
    /// Every block uses the same gas.
    Fixed {
        /// Gas of every block.
        gas: u64,
    },
    /// Uniform between two bounds (inclusive).
    Uniform {
        /// Lower bound.
        min: u64,
        /// Upper bound.
        max: u64,
    },
    /// A weighted mix of fixed values and uniform ranges.
    Mix {
        /// The components; a block draws one by weight, then its gas from it.
        components: Vec<GasComponent>,
    },
}

/// One component of [`GasDistribution::Mix`]: either `gas` (fixed) or `min` and `max` (uniform).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasComponent {
    /// Relative weight (> 0).
    pub weight: u32,
    /// Fixed gas of this component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas: Option<u64>,
    /// Lower bound of a uniform component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// Upper bound of a uniform component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

impl Default for GasDistribution {
    fn default() -> Self {
        Self::Fixed { gas: 30_000_000 }
    }
}

impl GasDistribution {
    /// Checks the parameters; errors name the key under `gas`.
    ///
    /// # Errors
    /// [`SimError::ScenarioInvalid`] naming the offending key.
    pub fn validate(&self) -> SimResult<()> {
        match self {
            Self::Fixed { .. } => Ok(()),
            Self::Uniform { min, max } => check_range("gas.min", *min, *max),
            Self::Mix { components } => {
                if components.is_empty() {
                    return Err(SimError::invalid(
                        "gas.components",
                        "needs at least one component",
                    ));
                }
                let mut total = 0u64;
                for (i, c) in components.iter().enumerate() {
                    let key = format!("gas.components[{i}]");
                    if c.weight == 0 {
                        return Err(SimError::invalid(format!("{key}.weight"), "must be > 0"));
                    }
                    total += u64::from(c.weight);
                    match (c.gas, c.min, c.max) {
                        (Some(_), None, None) => {}
                        (None, Some(min), Some(max)) => {
                            check_range(&format!("{key}.min"), min, max)?;
                        }
                        _ => {
                            return Err(SimError::invalid(
                                key,
                                "give either `gas` (a fixed value) or both `min` and `max`",
                            ));
                        }
                    }
                }
                if total > u64::from(u32::MAX) {
                    return Err(SimError::invalid("gas.components", "weights add up to too much"));
                }
                Ok(())
            }
        }
    }

    /// Draws the gas of one block.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match self {
            Self::Fixed { gas } => *gas,
            Self::Uniform { min, max } => rng.random_range(*min..=*max),
            Self::Mix { components } => {
                let total: u64 = components.iter().map(|c| u64::from(c.weight)).sum();
                let mut pick = rng.random_range(0..total.max(1));
                for c in components {
                    let w = u64::from(c.weight);
                    if pick < w {
                        return match (c.gas, c.min, c.max) {
                            (Some(gas), _, _) => gas,
                            (None, Some(min), Some(max)) => rng.random_range(min..=max),
                            _ => 0,
                        };
                    }
                    pick -= w;
                }
                0
            }
        }
    }
}

fn check_range(key: &str, min: u64, max: u64) -> SimResult<()> {
    if min > max {
        return Err(SimError::invalid(key, format!("min ({min}) is greater than max ({max})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn latency_samples_stay_in_bounds_and_are_deterministic() {
        let uniform = Latency::Uniform { min_ms: 10, max_ms: 20 };
        let logn = Latency::Lognormal { median_ms: 400, sigma: 0.5 };
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        let mut below = 0;
        for _ in 0..2_000 {
            let u = uniform.sample(&mut a);
            assert!((10..=20).contains(&u));
            assert_eq!(u, uniform.sample(&mut b));
            let l = logn.sample(&mut a);
            assert_eq!(l, logn.sample(&mut b));
            if l < 400 {
                below += 1;
            }
        }
        // The median of a log-normal is its `median_ms`: about half the samples fall below it.
        assert!((800..1200).contains(&below), "{below} of 2000 below the median");
        assert_eq!(Latency::Fixed { ms: 5 }.sample(&mut a), 5);
        assert_eq!(Latency::Lognormal { median_ms: 9, sigma: 0.0 }.sample(&mut a), 9);
    }

    #[test]
    fn latency_validation_names_the_key() {
        let err = Latency::Uniform { min_ms: 5, max_ms: 1 }.validate("latency.per_air");
        assert!(err.unwrap_err().to_string().contains("`latency.per_air.min_ms`"));
        let err = Latency::Lognormal { median_ms: 5, sigma: -1.0 }.validate("x");
        assert!(err.unwrap_err().to_string().contains("`x.sigma`"));
        let err = Latency::Fixed { ms: MAX_LATENCY_MS + 1 }.validate("y");
        assert!(err.unwrap_err().to_string().contains("`y.ms`"));
    }

    #[test]
    fn gas_mix_draws_each_component_by_weight() {
        let gas = GasDistribution::Mix {
            components: vec![
                GasComponent { weight: 3, gas: None, min: Some(1), max: Some(10) },
                GasComponent { weight: 1, gas: Some(1_000_000_000), min: None, max: None },
            ],
        };
        gas.validate().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws: Vec<u64> = (0..4_000).map(|_| gas.sample(&mut rng)).collect();
        let giga = draws.iter().filter(|&&g| g == 1_000_000_000).count();
        assert!((800..1200).contains(&giga), "{giga} gigagas blocks of 4000");
        assert!(draws.iter().all(|&g| g == 1_000_000_000 || (1..=10).contains(&g)));
    }

    #[test]
    fn gas_validation_names_the_key() {
        let bad = GasDistribution::Mix {
            components: vec![GasComponent { weight: 1, gas: Some(1), min: Some(1), max: None }],
        };
        assert!(bad.validate().unwrap_err().to_string().contains("`gas.components[0]`"));
        let bad = GasDistribution::Uniform { min: 2, max: 1 };
        assert!(bad.validate().unwrap_err().to_string().contains("`gas.min`"));
        let zero = GasDistribution::Mix {
            components: vec![GasComponent { weight: 0, gas: Some(1), min: None, max: None }],
        };
        assert!(zero.validate().unwrap_err().to_string().contains("`gas.components[0].weight`"));
    }
}
