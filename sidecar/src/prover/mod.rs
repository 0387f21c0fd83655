//! Prover mode: the worker that turns duties into commitments and STARK proofs
//! ([`ProverWorker`]), the block → workload mapping shared with verifiers ([`block_plan`]), and
//! the offline proof files of `sidecar prove` / `sidecar verify` ([`ProofFile`]).

mod error;
mod file;
mod worker;
mod workload;

pub use error::{ProverError, ProverResult};
pub use file::{PROOF_FILE_FORMAT, ProofFile, ProveInput, VerifyReport, prove_file, verify_file};
pub use worker::{
    Behaviour, ProverWorker, REJECTIONS_KEPT, REUSE_BLOOM_BYTES, Rejection, WorkerConfig,
    WorkerStats,
};
pub use workload::{BlockInput, block_plan};
