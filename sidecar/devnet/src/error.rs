//! Errors of the devnet: what can stop it or fail its check.

use std::path::PathBuf;

use sidecar_node::NodeError;
use sidecar_prover::ProverError;

/// Everything that can stop the devnet or fail its check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// An option is out of range.
    #[error("invalid argument {arg} = {value}: {reason}")]
    InvalidArgument {
        /// The flag.
        arg: &'static str,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The reward config file could not be read or is invalid.
    #[error("reward config {path}: {reason}")]
    Rewards {
        /// The file (or `(default)` for the built-in table).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The devnet beacon node failed to start or serve.
    #[error("devnet beacon node: {source}")]
    Beacon {
        /// The beacon-api error.
        #[source]
        source: beacon_api::Error,
    },
    /// A sidecar failed to start or stopped with an error.
    #[error("sidecar {index}: {source}")]
    Node {
        /// Which sidecar (0-based).
        index: usize,
        /// The node's error.
        #[source]
        source: Box<NodeError>,
    },
    /// The sidecars' gossip network could not be set up.
    #[error("gossip between the sidecars: {reason}")]
    Gossip {
        /// What failed.
        reason: String,
    },
    /// A prover worker could not be built.
    #[error("prover {index}: {source}")]
    Prover {
        /// Which prover (0-based).
        index: usize,
        /// The worker's error.
        #[source]
        source: ProverError,
    },
    /// A file or the terminal could not be written, or the data directory made.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file (`-` for the output stream).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The run was interrupted before the requested number of blocks.
    #[error("interrupted after {done} of {requested} blocks")]
    Interrupted {
        /// Blocks reported.
        done: u64,
        /// Blocks requested with `--blocks`.
        requested: u64,
    },
    /// Some blocks were not fully proven, or not settled identically everywhere.
    #[error("{failed} of {blocks} blocks failed the check: {details}")]
    CheckFailed {
        /// Blocks that failed.
        failed: usize,
        /// Blocks reported.
        blocks: usize,
        /// One clause per failed block (slot and what went wrong).
        details: String,
    },
    /// The fresh sidecar of `--catch-up` did not settle every block as the others did.
    #[error("catch-up: {reason}")]
    CatchUpFailed {
        /// What it missed or settled differently.
        reason: String,
    },
}

/// The result type of this module.
pub type DevnetResult<T> = std::result::Result<T, DevnetError>;

pub(crate) fn out_err(source: std::io::Error) -> DevnetError {
    DevnetError::Io { action: "writing", path: PathBuf::from("-"), source }
}
