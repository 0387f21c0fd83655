//! The simulator's error type.

use std::path::PathBuf;

/// A `Result` whose error is the simulator's [`SimError`].
pub type SimResult<T, E = SimError> = std::result::Result<T, E>;

/// Everything that can go wrong while loading a scenario, simulating or writing results.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A scenario file is not valid TOML or does not match the schema (the message names the
    /// key and the line).
    #[error("scenario {origin}: {source}")]
    ScenarioParse {
        /// Where the scenario came from (a path, or `<string>`).
        origin: String,
        /// The TOML error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A scenario value is out of range or inconsistent with another.
    #[error("scenario key `{key}`: {reason}")]
    ScenarioInvalid {
        /// The dotted key, for example `group[1].latency.per_air.sigma`.
        key: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The reward config, a `--set` override or a swept value is invalid (the message names the
    /// key).
    #[error("{context}: {source}")]
    Rewards {
        /// Which file or argument.
        context: String,
        /// The reward crate's error.
        #[source]
        source: rewards::Error,
    },
    /// A `--sweep` argument is malformed.
    #[error(
        "--sweep `{arg}`: {reason} (expected KEY=FROM..TO:STEP, e.g. REWARD_T2_PROVER=0..200:50)"
    )]
    SweepSyntax {
        /// The argument as given.
        arg: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing CSV failed.
    #[error("writing CSV {path}: {source}")]
    Csv {
        /// The file being written.
        path: PathBuf,
        /// The CSV error.
        #[source]
        source: csv::Error,
    },
    /// Writing JSON failed.
    #[error("writing JSON {path}: {source}")]
    Json {
        /// The file being written.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Drawing a plot failed.
    #[error("drawing plot {path}: {reason}")]
    Plot {
        /// The image being drawn.
        path: PathBuf,
        /// The drawing backend's message.
        reason: String,
    },
    /// The engine or the reward settlement refused something the simulator drove: a bug in a
    /// behaviour model, or a reward table / scenario combination the protocol cannot run.
    #[error("block {block}: {reason}")]
    Protocol {
        /// The simulated block (0-based) at which it happened.
        block: u64,
        /// What went wrong.
        reason: String,
    },
    /// `--real-proofs` was asked for a scenario above its size limits.
    #[error(
        "--real-proofs is for small runs: this scenario has {what}; use modelled proving, or a \
         smaller scenario (`--blocks`, fewer provers, less gas)"
    )]
    RealProofsTooLarge {
        /// The quantity over its limit, and the limit.
        what: String,
    },
}

impl SimError {
    /// Shorthand for [`SimError::ScenarioInvalid`].
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::ScenarioInvalid { key: key.into(), reason: reason.into() }
    }
}
