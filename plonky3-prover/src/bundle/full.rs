//! Full proofs: every AIR of a sub-block, chained, with the parts root and the reuse filter; the
//! structural checks against a sub-block's plan and the verification reports.

use serde::{Deserialize, Serialize};

use super::parts::{ProofPart, parts_root};
use super::reuse::{REUSE_FILTER_BITS, ReuseFilter};
use crate::error::{Error, Result};
use crate::partial::{Kind, MAX_PROOF_SIZE, compare_spec, decode_canonical, open_envelope, seal};
use crate::types::{
    AirIndex, AuthorKey, ChainState, PartsRoot, RoundDigest, SegmentSpec, SubBlockIndex, TraceRoot,
};
use crate::workload::SubBlockPlan;

/// Most AIR instances (partial proofs) in one full proof.
pub const MAX_PARTS: u32 = 128;
/// Maximum size of an encoded full proof: [`MAX_PARTS`] partial proofs of [`MAX_PROOF_SIZE`] plus
/// headers. (Recursive aggregation, which would shrink it to one proof, is not published for
/// Plonky3 0.8.0; a full proof is a bundle of partial proofs.)
pub const MAX_FULL_PROOF_SIZE: usize = MAX_PARTS as usize * MAX_PROOF_SIZE + 64 * 1024;

/// The deterministic head of a full proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullProofHeader {
    /// The block (round).
    pub round_digest: RoundDigest,
    /// The sub-block.
    pub sub_block_index: SubBlockIndex,
    /// Number of AIRs covered.
    pub num_airs: u32,
    /// Chain state at the start of AIR 0.
    pub input_state: ChainState,
    /// Chain state at the end of the last AIR.
    pub output_state: ChainState,
    /// Who assembled the full proof.
    pub builder: AuthorKey,
    /// Merkle root over the parts' encodings.
    pub parts_root: PartsRoot,
    /// The partials reused from other authors.
    pub reuse_filter: ReuseFilter,
}

#[derive(Serialize, Deserialize)]
pub(super) struct FullWire {
    pub(super) header: FullProofHeader,
    pub(super) parts: Vec<Vec<u8>>,
}

const FULL: &str = "full proof";

/// A full proof: parts (partial or batch proofs) covering every AIR of a sub-block exactly once,
/// ordered by their first AIR, with an unbroken chain of segment states from the input state to
/// the output state.
///
/// Encoding (version 1): `0x01`, `0x02` (kind: full), postcard of
/// `(FullProofHeader, Vec<encoded part>)`; at most [`MAX_FULL_PROOF_SIZE`] bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullProof {
    pub(super) header: FullProofHeader,
    pub(super) parts: Vec<ProofPart>,
    pub(super) bytes: Vec<u8>,
}

/// What verifying one part of a full proof found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartReport {
    /// The AIR.
    pub air_index: AirIndex,
    /// Its author.
    pub author: AuthorKey,
    /// Its trace commitment, to compare with the author's T1 commitment (for an AIR proven in a
    /// batch: the batch's joint root).
    pub trace_root: TraceRoot,
    /// Whether the author is not the full proof's builder (a reused partial).
    pub reused: bool,
}

/// The result of verifying a full proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullProofReport {
    /// The sub-block.
    pub sub_block_index: SubBlockIndex,
    /// Who assembled it.
    pub builder: AuthorKey,
    /// One entry per AIR, in order.
    pub parts: Vec<PartReport>,
}

impl FullProofReport {
    /// The partials the builder reused from other authors.
    pub fn reused(&self) -> impl Iterator<Item = &PartReport> {
        self.parts.iter().filter(|p| p.reused)
    }
}

/// Checks that `parts` cover each AIR of `plan` exactly once, ordered by first AIR, with an
/// unbroken chain, each proving its planned statement. Does not verify the STARKs.
pub(super) fn check_parts(plan: &SubBlockPlan, parts: &[ProofPart]) -> Result<()> {
    let num_airs = plan.num_airs();
    let mut by_air: Vec<Option<&SegmentSpec>> = vec![None; plan.segments.len()];
    for s in parts.iter().flat_map(ProofPart::statements) {
        let air = s.air_index;
        let slot = usize::try_from(air.0)
            .ok()
            .and_then(|i| by_air.get_mut(i))
            .ok_or(Error::UnexpectedAir { air_index: air, num_airs })?;
        if slot.replace(s).is_some() {
            return Err(Error::DuplicateAir { air_index: air });
        }
    }
    if let Some(missing) = by_air.iter().position(Option::is_none) {
        return Err(Error::MissingAir {
            air_index: AirIndex(u32::try_from(missing).unwrap_or(u32::MAX)),
        });
    }
    if parts.windows(2).any(|w| w[0].first_air() >= w[1].first_air()) {
        return Err(Error::Malformed { kind: FULL, reason: "parts are not ordered by first AIR" });
    }
    let mut prev_end = plan.input_state;
    for s in by_air.iter().flatten() {
        if s.start_state != prev_end {
            return Err(Error::BrokenChain { air_index: s.air_index });
        }
        prev_end = s.end_state;
    }
    if prev_end != plan.output_state {
        return Err(Error::BrokenChain { air_index: AirIndex(num_airs.saturating_sub(1)) });
    }
    for (s, spec) in by_air.iter().flatten().zip(&plan.segments) {
        compare_spec(s, spec)
            .map_err(|e| Error::Part { air_index: spec.air_index, source: Box::new(e) })?;
    }
    Ok(())
}

pub(super) fn check_header(h: &FullProofHeader, plan: &SubBlockPlan) -> Result<()> {
    let field = if h.round_digest != plan.round_digest {
        "round_digest"
    } else if h.sub_block_index != plan.sub_block_index {
        "sub_block_index"
    } else if h.num_airs != plan.num_airs() {
        "num_airs"
    } else if h.input_state != plan.input_state {
        "input_state"
    } else if h.output_state != plan.output_state {
        "output_state"
    } else {
        return Ok(());
    };
    Err(Error::WrongPublicValues { field })
}

impl FullProof {
    /// Assembles a full proof by `builder` from partial proofs (in any order) covering `plan`.
    /// Parts by other authors are recorded in the reuse filter. Checks coverage and the chain (the
    /// STARKs themselves are checked by [`Prover::verify_full`](crate::Prover::verify_full)).
    pub fn build<P: Into<ProofPart>>(
        builder: AuthorKey,
        plan: &SubBlockPlan,
        parts: Vec<P>,
    ) -> Result<Self> {
        let mut parts: Vec<ProofPart> = parts.into_iter().map(Into::into).collect();
        parts.sort_by_key(ProofPart::first_air);
        check_parts(plan, &parts)?;
        let mut reuse_filter = ReuseFilter::default();
        for p in parts.iter().filter(|p| *p.author() != builder) {
            for s in p.statements() {
                reuse_filter.insert(&s.round_digest, s.sub_block_index, s.air_index, p.author());
            }
        }
        let encoded: Vec<Vec<u8>> = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
        let header = FullProofHeader {
            round_digest: plan.round_digest,
            sub_block_index: plan.sub_block_index,
            num_airs: plan.num_airs(),
            input_state: plan.input_state,
            output_state: plan.output_state,
            builder,
            parts_root: parts_root(&encoded),
            reuse_filter,
        };
        Self::from_wire(FullWire { header, parts: encoded })
    }

    pub(super) fn from_wire(wire: FullWire) -> Result<Self> {
        let bytes = seal(&wire, Kind::Full, FULL, MAX_FULL_PROOF_SIZE)?;
        let parts = wire.parts.iter().map(|b| ProofPart::from_bytes(b)).collect::<Result<_>>()?;
        Ok(Self { header: wire.header, parts, bytes })
    }

    /// Decodes a full proof and every part in it. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let body = open_envelope(bytes, Kind::Full, FULL, MAX_FULL_PROOF_SIZE)?;
        let wire: FullWire = decode_canonical(body, FULL)?;
        if wire.header.reuse_filter.as_bytes().len() != REUSE_FILTER_BITS / 8 {
            return Err(Error::Malformed { kind: FULL, reason: "reuse filter has the wrong size" });
        }
        if wire.parts.len() > MAX_PARTS as usize {
            return Err(Error::Malformed { kind: FULL, reason: "too many parts" });
        }
        let parts = wire
            .parts
            .iter()
            .enumerate()
            .map(|(i, b)| {
                ProofPart::from_bytes(b).map_err(|e| Error::Part {
                    air_index: AirIndex(u32::try_from(i).unwrap_or(u32::MAX)),
                    source: Box::new(e),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { header: wire.header, parts, bytes: bytes.to_vec() })
    }

    /// The encoding.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The header.
    #[must_use]
    pub fn header(&self) -> &FullProofHeader {
        &self.header
    }

    /// The parts, ordered by first AIR.
    #[must_use]
    pub fn parts(&self) -> &[ProofPart] {
        &self.parts
    }
}
