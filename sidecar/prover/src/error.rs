//! Errors of the prover worker and the offline proof tools.

use std::path::PathBuf;

/// What can go wrong while proving, submitting or checking proofs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProverError {
    /// A call to the beacon node or a sidecar's proving API failed.
    #[error("{what}: {source}")]
    Api {
        /// What was asked.
        what: &'static str,
        /// The client's error.
        #[source]
        source: beacon_api::Error,
    },
    /// The STARK prover or verifier rejected something.
    #[error("{what}: {source}")]
    Stark {
        /// What was being done.
        what: &'static str,
        /// The prover's error.
        #[source]
        source: plonky3_prover::Error,
    },
    /// The block's workload cannot be planned.
    #[error("cannot plan the block's workload: {reason}")]
    Plan {
        /// Why.
        reason: String,
    },
    /// A block has no execution payload, so nothing to prove.
    #[error("block {block_root} has no execution payload")]
    NoPayload {
        /// The block.
        block_root: phase_engine::Root,
    },
    /// The sidecar's round view does not match the duty.
    #[error("round view of block {block_root}: {reason}")]
    RoundView {
        /// The block.
        block_root: phase_engine::Root,
        /// What is wrong.
        reason: &'static str,
    },
    /// A message could not be built (a field over its SSZ bound).
    #[error("cannot build the {what}: {reason}")]
    Message {
        /// Which message.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The registration was not answered with a prover index.
    #[error("the sidecar did not assign a prover index to our registration")]
    NoProverIndex,
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A proof or workload file is malformed.
    #[error("{path} is not a valid {what}: {reason}")]
    FileFormat {
        /// The file.
        path: PathBuf,
        /// What it should be.
        what: &'static str,
        /// Why it is not.
        reason: String,
    },
    /// A proving job panicked or its thread pool is gone.
    #[error("a proving job did not complete: {reason}")]
    Job {
        /// Why.
        reason: String,
    },
}

/// Result of the prover module.
pub type ProverResult<T> = std::result::Result<T, ProverError>;

impl ProverError {
    pub(crate) fn api(what: &'static str) -> impl FnOnce(beacon_api::Error) -> Self {
        move |source| Self::Api { what, source }
    }

    pub(crate) fn stark(what: &'static str) -> impl FnOnce(plonky3_prover::Error) -> Self {
        move |source| Self::Stark { what, source }
    }
}
