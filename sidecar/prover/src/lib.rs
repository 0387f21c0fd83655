//! Prover mode: the worker that turns duties into commitments and STARK proofs
//! ([`ProverWorker`]), the beacon block → workload input ([`block_input`]; the workload itself is
//! [`plonky3_prover::block_plan`], shared with verifiers), and the offline proof files of
//! `sidecar prove` / `sidecar verify` ([`ProofFile`]).
//!
//! A crate of its own because a prover operator's program needs the beacon client, the STARK
//! prover and the proving API client, but none of the validator node's store, gossip or engine
//! driver: it depends on no sibling but the metrics registry.

mod block_input;
mod error;
mod file;
mod worker;

pub use block_input::block_input;
pub use error::{ProverError, ProverResult};
pub use file::{PROOF_FILE_FORMAT, ProofFile, ProveInput, VerifyReport, prove_file, verify_file};
pub use worker::{
    Behaviour, ProverWorker, REJECTIONS_KEPT, REUSE_BLOOM_BYTES, Rejection, WorkerConfig,
    WorkerStats,
};
