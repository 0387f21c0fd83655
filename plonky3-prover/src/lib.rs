//! Real STARK proofs for the proving sidecar, as a library that knows nothing of rounds or
//! rewards.
//!
//! * [`Workload`]: what a (sub-)block's proving work is. The built-in [`SegmentWorkload`] derives
//!   an [`InputDigest`] from the transactions' bytes ([`input_digest`], SHA-256), turns it into a
//!   [`ChainState`], and runs a chain of an expensive round function, one round per trace row,
//!   `gas / gas_per_row` rounds, split into AIR instances (segments) chaining
//!   `start_state -> end_state` ([`SegmentParams`] documents the gas -> rows mapping).
//! * The segment AIR ([`SegmentAir`], columns [`SegmentCols`], public values [`SegmentPublics`]):
//!   round digest, sub-block index, AIR index, start and end state, author key digest. Key-bound
//!   columns make each author's trace commitment different.
//! * [`Prover`]: Plonky3 0.8.0 uni-STARK over KoalaBear with Poseidon2 Merkle trees and FRI,
//!   parameters from [`ProofParams`] (serde), conjectured security from `p3-uni-stark`.
//!   [`Prover::commit`] gives the T1 [`TraceRoot`] without proving; [`Prover::prove_partial`] /
//!   [`Prover::verify_partial`] make and check [`PartialProof`]s.
//! * [`FullProof`]: every AIR of a sub-block, chained, with a Merkle root over the parts and a
//!   Bloom filter ([`ReuseFilter`]) of partials reused from other authors; [`Prover::verify_full`]
//!   checks it in parallel and reports reuse. [`AggProof`]: the full proofs of all sub-blocks of a
//!   block, with block-level chain checks ([`Prover::verify_agg`]).
//! * [`BatchPartialProof`]: a prover may pack its own assigned AIRs into one `p3-batch-stark`
//!   proof ([`Prover::commit_batch`] gives its joint T1 root, [`Prover::prove_batch`],
//!   [`Prover::verify_batch`]); measured 1.5x faster to prove, 5x faster to verify and 5x smaller
//!   than separate proofs (BENCHMARKS.md). Full proofs accept both kinds of parts ([`ProofPart`]).
//! * Encodings start with [`FORMAT_VERSION`] and a kind byte; partial proofs are capped at
//!   [`MAX_PROOF_SIZE`] (300 KiB); decoding never panics.
//!
//! The workspace is compiled with AVX2 (`.cargo/config.toml`); binaries call [`check_cpu`] first
//! to fail with a clear error instead of `SIGILL` on an older CPU.

mod air;
mod batch;
mod block;
mod bundle;
mod config;
mod cpu;
mod error;
mod generation;
mod partial;
mod types;
mod workload;

pub use air::{
    KEY_WIDTH, NUM_SEGMENT_COLS, NUM_SEGMENT_PUBLICS, SegmentAir, SegmentCols, SegmentPublics,
    StarkAir,
};
pub use batch::{BatchHeader, BatchPartialProof, MAX_BATCH_AIRS};
pub use block::{BlockInput, block_plan};
pub use bundle::{
    AggProof, AggProofHeader, AggProofReport, FullProof, FullProofHeader, FullProofReport,
    MAX_AGG_PROOF_SIZE, MAX_FULL_PROOF_SIZE, MAX_PARTS, MAX_SUB_BLOCKS, PartDigest, PartReport,
    ProofPart, REUSE_FILTER_BITS, REUSE_FILTER_HASHES, ReuseFilter, VerifiedBefore, parts_root,
};
pub use config::{Challenge, ProofParams, StarkCfg, Val};
pub use cpu::check_cpu;
pub use error::{Error, Result};
pub use generation::segment_public_values;
pub use partial::{FORMAT_VERSION, MAX_PROOF_SIZE, PartialHeader, PartialProof, Prover};
pub use types::{
    AirIndex, AuthorKey, ChainState, Gas, InputDigest, KeyDigest, PartsRoot, RoundDigest,
    STATE_WIDTH, SegmentSpec, SubBlockIndex, TraceRoot,
};
pub use workload::{
    BlockPlan, SegmentParams, SegmentWorkload, SubBlockInput, SubBlockPlan, SubBlockWork, Workload,
    input_digest, num_airs_for_gas, plan_block,
};
