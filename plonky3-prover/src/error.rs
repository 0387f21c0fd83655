//! The crate's error type.

use crate::types::{AirIndex, KeyDigest, SubBlockIndex, TraceRoot};

/// Result alias of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything that can go wrong when planning, proving, encoding or verifying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CPU lacks an instruction-set extension the binary was compiled for.
    #[error(
        "unsupported CPU: this build needs {missing} (rebuild without `-C target-feature=+{missing}` in .cargo/config.toml to run on this CPU, about 5-10x slower)"
    )]
    UnsupportedCpu {
        /// The missing feature, e.g. `avx2`.
        missing: &'static str,
    },
    /// A configuration value is out of range.
    #[error("invalid proof parameter `{key}`: {reason}")]
    InvalidParams {
        /// The config key.
        key: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The proof parameters give less conjectured security than required.
    #[error(
        "proof parameters give {bits} conjectured bits at 2^{log_rows} rows, below the minimum {min}"
    )]
    InsecureParams {
        /// Conjectured security in bits.
        bits: usize,
        /// The configured minimum.
        min: usize,
        /// The trace size at which it was computed.
        log_rows: u8,
    },
    /// A chain state element is not below the KoalaBear modulus.
    #[error("chain state element is not canonical")]
    NonCanonicalState,
    /// A segment's size is outside the supported range.
    #[error("segment of 2^{log_rows} rows is outside the supported 2^{min}..=2^{max}")]
    UnsupportedSize {
        /// Requested `log2` rows.
        log_rows: u8,
        /// Smallest supported.
        min: u8,
        /// Largest supported.
        max: u8,
    },
    /// A plan request is invalid (e.g. zero segments).
    #[error("invalid plan: {reason}")]
    InvalidPlan {
        /// Why.
        reason: &'static str,
    },
    /// A segment spec's end state is not what its start state leads to.
    #[error("segment {air_index:?}: the end state does not follow from the start state")]
    InconsistentSpec {
        /// The segment.
        air_index: AirIndex,
    },
    /// Plonky3 failed to commit or prove.
    #[error("proving failed: {detail}")]
    Proving {
        /// Plonky3's error, formatted.
        detail: String,
    },
    /// Encoded bytes exceed the cap for their kind.
    #[error("{kind} is {size} bytes, above the maximum {max}")]
    Oversize {
        /// What was being encoded or decoded.
        kind: &'static str,
        /// Its size.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// The version byte is not one this build understands.
    #[error("unsupported encoding version {got} (expected {expected})")]
    UnsupportedVersion {
        /// Version byte found.
        got: u8,
        /// Version this build writes.
        expected: u8,
    },
    /// Bytes do not decode to the expected structure.
    #[error("malformed {kind}: {reason}")]
    Malformed {
        /// What was being decoded.
        kind: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The proof was made by another author than the one it is checked against.
    #[error("proof is by key {got}, expected key {expected}")]
    WrongKey {
        /// Digest of the expected author's key.
        expected: KeyDigest,
        /// Digest of the key in the proof.
        got: KeyDigest,
    },
    /// The proof's trace commitment is not the committed (T1) root.
    #[error("trace commitment {got} does not match the committed root {expected}")]
    WrongCommitment {
        /// The committed root.
        expected: TraceRoot,
        /// The root inside the proof.
        got: TraceRoot,
    },
    /// The proof's public values are not the expected statement.
    #[error("public value `{field}` does not match the expected statement")]
    WrongPublicValues {
        /// Which field differs.
        field: &'static str,
    },
    /// The STARK does not verify.
    #[error("invalid proof: {detail}")]
    InvalidProof {
        /// Plonky3's verification error, formatted.
        detail: String,
    },
    /// A full proof lacks a partial proof for an AIR.
    #[error("full proof has no partial proof for AIR {air_index:?}")]
    MissingAir {
        /// The missing AIR.
        air_index: AirIndex,
    },
    /// A full proof holds two partial proofs for one AIR.
    #[error("full proof has two partial proofs for AIR {air_index:?}")]
    DuplicateAir {
        /// The duplicated AIR.
        air_index: AirIndex,
    },
    /// A full proof holds a partial proof for an AIR the sub-block does not have.
    #[error(
        "full proof has a partial proof for AIR {air_index:?}, beyond the sub-block's {num_airs}"
    )]
    UnexpectedAir {
        /// The AIR index found.
        air_index: AirIndex,
        /// The number of AIRs of the sub-block.
        num_airs: u32,
    },
    /// The chain of segment states is broken at an AIR.
    #[error("chain broken at AIR {air_index:?}: its start state is not the previous end state")]
    BrokenChain {
        /// The AIR whose start state does not match.
        air_index: AirIndex,
    },
    /// A full proof's Merkle root does not commit to its parts.
    #[error("parts root does not match the parts")]
    PartsRootMismatch,
    /// A partial proof reused from another author is missing from the Bloom filter.
    #[error("reused partial proof for AIR {air_index:?} is not in the reuse filter")]
    ReuseNotDeclared {
        /// The AIR.
        air_index: AirIndex,
    },
    /// A partial proof inside a full proof fails.
    #[error("partial proof for AIR {air_index:?}: {source}")]
    Part {
        /// The AIR.
        air_index: AirIndex,
        /// Why it fails.
        source: Box<Error>,
    },
    /// An AggProof does not have one full proof per sub-block in order.
    #[error("AggProof has a full proof for sub-block {got:?} at position {position}")]
    SubBlockOutOfOrder {
        /// Position in the AggProof.
        position: usize,
        /// Sub-block index found.
        got: SubBlockIndex,
    },
    /// An AggProof has the wrong number of sub-blocks.
    #[error("AggProof has {got} sub-blocks, the block has {expected}")]
    SubBlockCount {
        /// Expected.
        expected: usize,
        /// Found.
        got: usize,
    },
    /// The sub-blocks of a block plan do not chain.
    #[error("block chain broken at sub-block {sub_block:?}")]
    BrokenBlockChain {
        /// The sub-block whose previous state does not match.
        sub_block: SubBlockIndex,
    },
    /// A sub-block's full proof inside an AggProof fails.
    #[error("sub-block {sub_block:?}: {source}")]
    SubBlock {
        /// The sub-block.
        sub_block: SubBlockIndex,
        /// Why it fails.
        source: Box<Error>,
    },
}
