//! Offline proof files (`sidecar prove`, `sidecar verify`).
//!
//! A **workload file** (JSON, [`ProveInput`]) names one sub-block: its round digest (the block
//! root), index, the chain state it starts from, its gas, its number of AIRs and its
//! transactions (hex). A **proof file** (JSON, [`ProofFile`]) is
//! `{"format": "sidecar-proof/v1", "input": <the workload>, "builder": "0x<48-byte BLS key>",
//! "full_proof": "0x<plonky3-prover full proof encoding>"}`: self-contained, so `verify` needs
//! nothing but the file. Verification re-plans the sub-block from the input (running its chain),
//! checks that the proof's builder is the named key, and verifies every part's STARK.

use std::path::Path;

use phase_engine::{BlsPublicKey, Root, bls};
use plonky3_prover::{
    AuthorKey, ChainState, Gas, Prover, RoundDigest, SegmentWorkload, SubBlockIndex, SubBlockInput,
    SubBlockPlan, Workload, input_digest,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::{ProverError, ProverResult};

/// The `format` tag of proof files written by this version.
pub const PROOF_FILE_FORMAT: &str = "sidecar-proof/v1";

/// A sub-block to prove offline (the workload file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProveInput {
    /// The block (round) digest, normally the beacon block root.
    pub round_digest: Root,
    /// The sub-block's index.
    pub sub_block_index: u32,
    /// The chain state it starts from (32 bytes, canonical KoalaBear limbs; zero for a block's
    /// first sub-block in tools).
    pub prev_state: Root,
    /// Gas used by the sub-block.
    pub gas: u64,
    /// Number of AIRs (segments) to split it into.
    pub num_airs: u32,
    /// The transactions, as 0x-prefixed hex.
    pub transactions: Vec<alloy_primitives::Bytes>,
}

impl ProveInput {
    /// The sub-block's plan under `workload` (runs its chain: CPU work).
    ///
    /// # Errors
    /// A non-canonical `prev_state` or a plan the workload rejects.
    pub fn plan<W: Workload>(&self, workload: &W) -> ProverResult<SubBlockPlan> {
        let prev_state = ChainState::from_bytes(self.prev_state.0)
            .map_err(|e| ProverError::Plan { reason: format!("prev_state: {e}") })?;
        let input = SubBlockInput {
            round_digest: RoundDigest(self.round_digest.0),
            sub_block_index: SubBlockIndex(self.sub_block_index),
            prev_state,
            input_digest: input_digest(&prev_state, &self.transactions),
            gas: Gas(self.gas),
            num_airs: self.num_airs,
        };
        workload.plan_sub_block(&input).map_err(|e| ProverError::Plan { reason: e.to_string() })
    }
}

/// A proof file: the workload, the builder's key and the full proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofFile {
    /// Always [`PROOF_FILE_FORMAT`].
    pub format: String,
    /// What was proven.
    pub input: ProveInput,
    /// The key of the prover that built it (bound into every part's public values).
    pub builder: BlsPublicKey,
    /// The full proof (plonky3-prover encoding, version 1).
    pub full_proof: alloy_primitives::Bytes,
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The builder's key.
    pub builder: BlsPublicKey,
    /// Number of AIRs covered.
    pub num_airs: u32,
    /// Parts authored by someone else than the builder.
    pub reused: usize,
    /// Size of the full proof in bytes.
    pub proof_bytes: usize,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &'static str) -> ProverResult<T> {
    let text = std::fs::read_to_string(path).map_err(|source| ProverError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ProverError::FileFormat {
        path: path.to_path_buf(),
        what,
        reason: e.to_string(),
    })
}

impl ProofFile {
    /// Reads a proof file.
    ///
    /// # Errors
    /// I/O, malformed JSON or an unknown format tag.
    pub fn read(path: &Path) -> ProverResult<Self> {
        let file: Self = read_json(path, "proof file")?;
        if file.format != PROOF_FILE_FORMAT {
            return Err(ProverError::FileFormat {
                path: path.to_path_buf(),
                what: "proof file",
                reason: format!("format `{}`, expected `{PROOF_FILE_FORMAT}`", file.format),
            });
        }
        Ok(file)
    }

    /// Writes it as pretty JSON.
    ///
    /// # Errors
    /// I/O.
    pub fn write(&self, path: &Path) -> ProverResult<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| ProverError::FileFormat {
            path: path.to_path_buf(),
            what: "proof file",
            reason: e.to_string(),
        })?;
        std::fs::write(path, json).map_err(|source| ProverError::Io {
            action: "writing",
            path: path.to_path_buf(),
            source,
        })
    }

    /// Verifies the file's proof with `prover`.
    ///
    /// # Errors
    /// [`ProverError::Stark`] for an invalid proof, [`ProverError::Plan`] for a bad input.
    pub fn verify(&self, prover: &Prover<SegmentWorkload>) -> ProverResult<VerifyReport> {
        let plan = self.input.plan(prover.workload())?;
        let full = plonky3_prover::FullProof::from_bytes(&self.full_proof)
            .map_err(ProverError::stark("decoding the full proof"))?;
        if full.header().builder != AuthorKey(self.builder.0) {
            return Err(ProverError::Plan {
                reason: "the proof was built by another key than the file names".into(),
            });
        }
        let report = prover.verify_full(&full, &plan).map_err(ProverError::stark("verifying"))?;
        Ok(VerifyReport {
            builder: self.builder,
            num_airs: plan.num_airs(),
            reused: report.reused().count(),
            proof_bytes: self.full_proof.len(),
        })
    }
}

/// Proves every AIR of the workload file at `input` with `key` (in parallel) and returns the
/// proof file.
///
/// # Errors
/// A malformed workload or a failing prover.
pub fn prove_file(
    prover: &Prover<SegmentWorkload>,
    input: &Path,
    key: &bls::SecretKey,
) -> ProverResult<ProofFile> {
    let input: ProveInput = read_json(input, "workload file")?;
    let plan = input.plan(prover.workload())?;
    let pubkey = key.public_key();
    let author = AuthorKey(pubkey.0);
    let partials = plan
        .segments
        .par_iter()
        .map(|s| prover.prove_partial(s, &author))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ProverError::stark("proving"))?;
    let full = plonky3_prover::FullProof::build(author, &plan, partials)
        .map_err(ProverError::stark("building the full proof"))?;
    Ok(ProofFile {
        format: PROOF_FILE_FORMAT.into(),
        input,
        builder: pubkey,
        full_proof: full.as_bytes().to_vec().into(),
    })
}

/// Reads and verifies the proof file at `path`.
///
/// # Errors
/// As [`ProofFile::read`] and [`ProofFile::verify`].
pub fn verify_file(prover: &Prover<SegmentWorkload>, path: &Path) -> ProverResult<VerifyReport> {
    ProofFile::read(path)?.verify(prover)
}
