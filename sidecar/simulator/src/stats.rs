//! Confidence intervals over seeds: the two-sided 95% Student-t interval of a mean.
//!
//! The deviation analysis runs every deviation once per seed and summarises the per-seed values
//! (for instance the difference between the deviators' and the honest provers' mean reward) by
//! their mean and its 95% interval `mean ± t(0.975, n − 1) · s / √n`, `s` the sample standard
//! deviation. The quantiles of Student's t distribution come from a table (the standard values
//! to three decimals, e.g. Abramowitz & Stegun table 26.10): exact for 1–30 degrees of freedom,
//! then 40, 60 and 120; between entries the next smaller tabled degrees of freedom are used
//! (a slightly wider, conservative interval), and above 120 the normal quantile 1.960.

use serde::Serialize;

/// `t(0.975, df)` for `df` = 1..=30.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 0.975 quantile of Student's t distribution with `df` degrees of freedom (see the
/// module documentation for the table and its interpolation); `None` for `df = 0`.
pub(crate) fn t975(df: u64) -> Option<f64> {
    match df {
        0 => None,
        1..=30 => usize::try_from(df - 1).ok().and_then(|i| T975.get(i)).copied(),
        31..=39 => Some(2.042),
        40..=59 => Some(2.021),
        60..=119 => Some(2.000),
        120 => Some(1.980),
        _ => Some(1.960),
    }
}

/// The mean of some per-seed values and its 95% confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MeanCi {
    /// The mean.
    pub mean: f64,
    /// Lower bound of the 95% interval.
    pub low: f64,
    /// Upper bound of the 95% interval.
    pub high: f64,
}

impl MeanCi {
    /// The mean of `values` and its two-sided 95% t-interval; `None` with fewer than two values
    /// (no interval can be given) or a value that is not finite.
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len() as u64;
        let t = t975(n.checked_sub(1)?)?;
        if values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let nf = values.len() as f64;
        let mean = values.iter().sum::<f64>() / nf;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (nf - 1.0);
        let half = t * (var / nf).sqrt();
        Some(Self { mean, low: mean - half, high: mean + half })
    }

    /// Whether the whole interval lies above zero.
    pub fn above_zero(&self) -> bool {
        self.low > 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_follow_the_table() {
        assert_eq!(t975(0), None);
        assert_eq!(t975(1), Some(12.706));
        assert_eq!(t975(4), Some(2.776));
        assert_eq!(t975(30), Some(2.042));
        assert_eq!(t975(35), Some(2.042));
        assert_eq!(t975(45), Some(2.021));
        assert_eq!(t975(1_000), Some(1.960));
        // Decreasing in the degrees of freedom.
        let mut last = f64::INFINITY;
        for df in 1..200 {
            let t = t975(df).unwrap();
            assert!(t <= last, "df {df}");
            last = t;
        }
    }

    /// Five values 1..=5: mean 3, sample variance 2.5, standard error sqrt(0.5) = 0.70711,
    /// t(0.975, 4) = 2.776, half-width 1.96293.
    #[test]
    fn interval_of_five_values_by_hand() {
        let ci = MeanCi::of(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(ci.mean, 3.0);
        assert!((ci.high - ci.mean - 2.776 * 0.5f64.sqrt()).abs() < 1e-12);
        assert!((ci.low - 1.037_07).abs() < 1e-5, "{ci:?}");
        assert!(ci.above_zero());
        let ci = MeanCi::of(&[-1.0, 1.0]).unwrap();
        assert!(!ci.above_zero() && ci.high > 0.0);
    }

    #[test]
    fn degenerate_inputs_give_no_interval() {
        assert_eq!(MeanCi::of(&[]), None);
        assert_eq!(MeanCi::of(&[1.0]), None);
        assert_eq!(MeanCi::of(&[1.0, f64::NAN]), None);
        let ci = MeanCi::of(&[2.0, 2.0, 2.0]).unwrap();
        assert_eq!((ci.low, ci.mean, ci.high), (2.0, 2.0, 2.0));
    }
}
