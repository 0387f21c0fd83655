//! Full proofs (all AIRs of a sub-block) and AggProofs (all sub-blocks of a block).
//!
//! * [`reuse`]: the Bloom filter of partials reused from other authors ([`ReuseFilter`]).
//! * [`parts`]: the parts of a full proof ([`ProofPart`]) and their Merkle root ([`parts_root`]).
//! * [`full`]: the full proof ([`FullProof`]), its header, reports and structural checks.
//! * [`agg`]: the AggProof ([`AggProof`]), its header, report and block-level checks.
//! * [`verify`]: [`Prover::verify_full`](crate::Prover::verify_full) and
//!   [`Prover::verify_agg`](crate::Prover::verify_agg), and their `_reusing` forms that skip the
//!   STARKs of parts verified before.

mod agg;
mod full;
mod parts;
mod reuse;
mod verify;

#[cfg(test)]
mod tests;

pub use agg::{AggProof, AggProofHeader, AggProofReport, MAX_AGG_PROOF_SIZE, MAX_SUB_BLOCKS};
pub use full::{
    FullProof, FullProofHeader, FullProofReport, MAX_FULL_PROOF_SIZE, MAX_PARTS, PartReport,
};
pub use parts::{PartDigest, ProofPart, parts_root};
pub use reuse::{REUSE_FILTER_BITS, REUSE_FILTER_HASHES, ReuseFilter};
pub use verify::VerifiedBefore;
