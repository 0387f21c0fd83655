//! Full proofs (all AIRs of a sub-block) and AggProofs (all sub-blocks of a block).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::batch::BatchPartialProof;
use crate::error::{Error, Result};
use crate::partial::{
    Kind, MAX_PROOF_SIZE, PartialProof, Prover, compare_spec, decode_canonical, open_envelope, seal,
};
use crate::types::{
    AirIndex, AuthorKey, ChainState, PartsRoot, RoundDigest, SegmentSpec, SubBlockIndex, TraceRoot,
};
use crate::workload::{BlockPlan, SubBlockPlan, Workload};

/// Most AIR instances (partial proofs) in one full proof.
pub const MAX_PARTS: u32 = 128;
/// Maximum size of an encoded full proof: [`MAX_PARTS`] partial proofs of [`MAX_PROOF_SIZE`] plus
/// headers. (Recursive aggregation, which would shrink it to one proof, is not published for
/// Plonky3 0.8.0; a full proof is a bundle of partial proofs.)
pub const MAX_FULL_PROOF_SIZE: usize = MAX_PARTS as usize * MAX_PROOF_SIZE + 64 * 1024;
/// Most sub-blocks in one AggProof.
pub const MAX_SUB_BLOCKS: u32 = 64;
/// Maximum size of an encoded AggProof.
pub const MAX_AGG_PROOF_SIZE: usize = 256 * 1024 * 1024;

/// Bits of the reuse Bloom filter.
pub const REUSE_FILTER_BITS: usize = 2048;
/// Hash functions (bit positions per item) of the reuse Bloom filter.
pub const REUSE_FILTER_HASHES: usize = 4;
const REUSE_DOMAIN: &[u8] = b"plonky3-prover/reuse/v1";

/// Bloom filter of the partial proofs a full proof reused from other authors.
///
/// Parameters: `m = 2048` bits (256 bytes), `k = 4`. An item is
/// `sha256("plonky3-prover/reuse/v1" || round_digest || u32le(sub_block) || u32le(air) || author)`;
/// its bit positions are the first four little-endian `u16`s of that hash modulo 2048.
/// False-positive rate `(1 - e^(-k n / m))^k`: about `1e-7` for the 9 AIRs of a 36M-gas block,
/// `2.4e-3` for the maximum of 128. There are no false negatives; verification requires every
/// reused partial to be in the filter.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReuseFilter(Vec<u8>);

impl core::fmt::Debug for ReuseFilter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ReuseFilter({} bits set)", self.0.iter().map(|b| b.count_ones()).sum::<u32>())
    }
}

impl Default for ReuseFilter {
    fn default() -> Self {
        Self(vec![0; REUSE_FILTER_BITS / 8])
    }
}

impl ReuseFilter {
    fn positions(
        round: &RoundDigest,
        sub_block: SubBlockIndex,
        air: AirIndex,
        author: &AuthorKey,
    ) -> [usize; REUSE_FILTER_HASHES] {
        let mut h = Sha256::new();
        h.update(REUSE_DOMAIN);
        h.update(round.0);
        h.update(sub_block.0.to_le_bytes());
        h.update(air.0.to_le_bytes());
        h.update(author.0);
        let d: [u8; 32] = h.finalize().into();
        core::array::from_fn(|i| {
            usize::from(u16::from_le_bytes([d[2 * i], d[2 * i + 1]])) % REUSE_FILTER_BITS
        })
    }

    /// Adds the partial proof of `air` by `author`.
    pub fn insert(
        &mut self,
        round: &RoundDigest,
        sub_block: SubBlockIndex,
        air: AirIndex,
        author: &AuthorKey,
    ) {
        for p in Self::positions(round, sub_block, air, author) {
            if let Some(b) = self.0.get_mut(p / 8) {
                *b |= 1 << (p % 8);
            }
        }
    }

    /// Whether the partial proof of `air` by `author` may be in the filter.
    #[must_use]
    pub fn contains(
        &self,
        round: &RoundDigest,
        sub_block: SubBlockIndex,
        air: AirIndex,
        author: &AuthorKey,
    ) -> bool {
        Self::positions(round, sub_block, air, author)
            .iter()
            .all(|p| self.0.get(p / 8).is_some_and(|b| b & (1 << (p % 8)) != 0))
    }

    /// The filter's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// SHA-256 Merkle root over encoded parts: leaf `sha256(0x00 || bytes)`, node
/// `sha256(0x01 || left || right)`, an odd last node is carried up unchanged.
#[must_use]
pub fn parts_root<B: AsRef<[u8]>>(parts: &[B]) -> PartsRoot {
    let mut level: Vec<[u8; 32]> = parts
        .iter()
        .map(|p| {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(p.as_ref());
            h.finalize().into()
        })
        .collect();
    if level.is_empty() {
        return PartsRoot(Sha256::digest([0u8]).into());
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => {
                    let mut h = Sha256::new();
                    h.update([1u8]);
                    h.update(l);
                    h.update(r);
                    h.finalize().into()
                }
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    PartsRoot(level[0])
}

/// One part of a full proof: a partial proof of one AIR, or a batch proof of several AIRs by one
/// author.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofPart {
    /// One AIR.
    Partial(PartialProof),
    /// Several AIRs in one `p3-batch-stark` proof.
    Batch(BatchPartialProof),
}

impl From<PartialProof> for ProofPart {
    fn from(p: PartialProof) -> Self {
        Self::Partial(p)
    }
}

impl From<BatchPartialProof> for ProofPart {
    fn from(p: BatchPartialProof) -> Self {
        Self::Batch(p)
    }
}

impl ProofPart {
    /// Decodes either kind, by the kind byte. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        match bytes.get(1) {
            Some(k) if *k == Kind::Batch as u8 => {
                BatchPartialProof::from_bytes(bytes).map(Self::Batch)
            }
            _ => PartialProof::from_bytes(bytes).map(Self::Partial),
        }
    }

    /// The encoding.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Partial(p) => p.as_bytes(),
            Self::Batch(b) => b.as_bytes(),
        }
    }

    /// The segments proven.
    #[must_use]
    pub fn statements(&self) -> &[SegmentSpec] {
        match self {
            Self::Partial(p) => core::slice::from_ref(p.statement()),
            Self::Batch(b) => b.statements(),
        }
    }

    /// The author.
    #[must_use]
    pub fn author(&self) -> &AuthorKey {
        match self {
            Self::Partial(p) => p.author(),
            Self::Batch(b) => b.author(),
        }
    }

    /// The trace commitment (joint for a batch).
    #[must_use]
    pub fn trace_root(&self) -> TraceRoot {
        match self {
            Self::Partial(p) => p.trace_root(),
            Self::Batch(b) => b.trace_root(),
        }
    }

    fn first_air(&self) -> AirIndex {
        self.statements().first().map_or(AirIndex(u32::MAX), |s| s.air_index)
    }
}

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
struct FullWire {
    header: FullProofHeader,
    parts: Vec<Vec<u8>>,
}

const FULL: &str = "full proof";
const AGG: &str = "AggProof";

/// A full proof: parts (partial or batch proofs) covering every AIR of a sub-block exactly once,
/// ordered by their first AIR, with an unbroken chain of segment states from the input state to
/// the output state.
///
/// Encoding (version 1): `0x01`, `0x02` (kind: full), postcard of
/// `(FullProofHeader, Vec<encoded part>)`; at most [`MAX_FULL_PROOF_SIZE`] bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullProof {
    header: FullProofHeader,
    parts: Vec<ProofPart>,
    bytes: Vec<u8>,
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
fn check_parts(plan: &SubBlockPlan, parts: &[ProofPart]) -> Result<()> {
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

fn check_header(h: &FullProofHeader, plan: &SubBlockPlan) -> Result<()> {
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
    /// STARKs themselves are checked by [`Prover::verify_full`]).
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

    fn from_wire(wire: FullWire) -> Result<Self> {
        let bytes = seal(&wire, Kind::Full, FULL, MAX_FULL_PROOF_SIZE)?;
        let parts = wire.parts.iter().map(|b| ProofPart::from_bytes(b)).collect::<Result<_>>()?;
        Ok(Self { header: wire.header, parts, bytes })
    }

    /// Decodes a full proof and every part in it. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let body = open_envelope(bytes, Kind::Full, FULL, MAX_FULL_PROOF_SIZE)?;
        let wire: FullWire = decode_canonical(body, FULL)?;
        if wire.header.reuse_filter.0.len() != REUSE_FILTER_BITS / 8 {
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

/// The deterministic head of an AggProof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggProofHeader {
    /// The block (round).
    pub round_digest: RoundDigest,
    /// The state before sub-block 0.
    pub initial_state: ChainState,
    /// Chain state after the last sub-block.
    pub output_state: ChainState,
    /// Who assembled it.
    pub builder: AuthorKey,
    /// Number of sub-blocks.
    pub num_sub_blocks: u32,
}

#[derive(Serialize, Deserialize)]
struct AggWire {
    header: AggProofHeader,
    sub_blocks: Vec<Vec<u8>>,
}

/// An AggProof: the full proofs of all sub-blocks of a block, in order.
///
/// Encoding (version 1): `0x01`, `0x03` (kind: AggProof), postcard of
/// `(AggProofHeader, Vec<encoded full proof>)`; at most [`MAX_AGG_PROOF_SIZE`] bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggProof {
    header: AggProofHeader,
    sub_blocks: Vec<FullProof>,
    bytes: Vec<u8>,
}

/// The result of verifying an AggProof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggProofReport {
    /// Who assembled it.
    pub builder: AuthorKey,
    /// One report per sub-block, in order.
    pub sub_blocks: Vec<FullProofReport>,
}

/// Checks that a block plan's sub-blocks are numbered in order and chain.
fn check_block_plan(plan: &BlockPlan) -> Result<()> {
    let mut prev = plan.initial_state;
    for (i, sb) in plan.sub_blocks.iter().enumerate() {
        if usize::try_from(sb.sub_block_index.0).ok() != Some(i)
            || sb.round_digest != plan.round_digest
        {
            return Err(Error::InvalidPlan { reason: "sub-blocks are not numbered in order" });
        }
        if sb.prev_state != prev {
            return Err(Error::BrokenBlockChain { sub_block: sb.sub_block_index });
        }
        prev = sb.output_state;
    }
    Ok(())
}

impl AggProof {
    /// Assembles the AggProof of `plan` from one full proof per sub-block (in any order).
    pub fn build(builder: AuthorKey, plan: &BlockPlan, mut full: Vec<FullProof>) -> Result<Self> {
        check_block_plan(plan)?;
        full.sort_by_key(|f| f.header.sub_block_index);
        Self::check_structure(plan, full.len(), full.iter().map(|f| &f.header))?;
        let header = AggProofHeader {
            round_digest: plan.round_digest,
            initial_state: plan.initial_state,
            output_state: plan.sub_blocks.last().map_or(plan.initial_state, |s| s.output_state),
            builder,
            num_sub_blocks: u32::try_from(full.len()).unwrap_or(u32::MAX),
        };
        let wire = AggWire { header, sub_blocks: full.iter().map(|f| f.bytes.clone()).collect() };
        let bytes = seal(&wire, Kind::Agg, AGG, MAX_AGG_PROOF_SIZE)?;
        Ok(Self { header: wire.header, sub_blocks: full, bytes })
    }

    fn check_structure<'a>(
        plan: &BlockPlan,
        count: usize,
        headers: impl Iterator<Item = &'a FullProofHeader>,
    ) -> Result<()> {
        if count != plan.sub_blocks.len() {
            return Err(Error::SubBlockCount { expected: plan.sub_blocks.len(), got: count });
        }
        let mut prev_out = plan.initial_state;
        for ((position, h), sb) in headers.enumerate().zip(&plan.sub_blocks) {
            if h.sub_block_index != sb.sub_block_index {
                return Err(Error::SubBlockOutOfOrder { position, got: h.sub_block_index });
            }
            // Block-level chain: each sub-block starts where the previous one ended.
            if sb.prev_state != prev_out {
                return Err(Error::BrokenBlockChain { sub_block: sb.sub_block_index });
            }
            check_header(h, sb).map_err(|e| Error::SubBlock {
                sub_block: sb.sub_block_index,
                source: Box::new(e),
            })?;
            prev_out = h.output_state;
        }
        Ok(())
    }

    /// Decodes an AggProof and everything in it. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let body = open_envelope(bytes, Kind::Agg, AGG, MAX_AGG_PROOF_SIZE)?;
        let wire: AggWire = decode_canonical(body, AGG)?;
        if wire.sub_blocks.len() > MAX_SUB_BLOCKS as usize
            || wire.sub_blocks.len() != wire.header.num_sub_blocks as usize
        {
            return Err(Error::Malformed { kind: AGG, reason: "sub-block count" });
        }
        let sub_blocks = wire
            .sub_blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                FullProof::from_bytes(b).map_err(|e| Error::SubBlock {
                    sub_block: SubBlockIndex(u32::try_from(i).unwrap_or(u32::MAX)),
                    source: Box::new(e),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { header: wire.header, sub_blocks, bytes: bytes.to_vec() })
    }

    /// The encoding.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The header.
    #[must_use]
    pub fn header(&self) -> &AggProofHeader {
        &self.header
    }

    /// The sub-blocks' full proofs, in order.
    #[must_use]
    pub fn sub_blocks(&self) -> &[FullProof] {
        &self.sub_blocks
    }
}

impl<W: Workload> Prover<W> {
    /// Verifies a full proof against the sub-block's plan: header, coverage of every AIR exactly
    /// once, the unbroken chain, the parts root, the reuse filter (every partial by another author
    /// than the builder must be in it), then every partial STARK in parallel. Reports each part's
    /// author and trace root and which were reused.
    pub fn verify_full(&self, full: &FullProof, plan: &SubBlockPlan) -> Result<FullProofReport> {
        let h = &full.header;
        check_header(h, plan)?;
        check_parts(plan, &full.parts)?;
        if parts_root(&full.parts.iter().map(ProofPart::as_bytes).collect::<Vec<_>>())
            != h.parts_root
        {
            return Err(Error::PartsRootMismatch);
        }
        for p in full.parts.iter().filter(|p| *p.author() != h.builder) {
            for s in p.statements() {
                if !h.reuse_filter.contains(
                    &s.round_digest,
                    s.sub_block_index,
                    s.air_index,
                    p.author(),
                ) {
                    return Err(Error::ReuseNotDeclared { air_index: s.air_index });
                }
            }
        }
        // `check_parts` matched every statement to the plan, so indexing by AIR is in range.
        let planned = |s: &SegmentSpec| plan.segment(s.air_index).copied().unwrap_or(*s);
        full.parts.par_iter().try_for_each(|part| {
            let res = match part {
                ProofPart::Partial(p) => {
                    self.verify_partial(p, &planned(p.statement()), p.author(), None)
                }
                ProofPart::Batch(b) => {
                    let expected: Vec<SegmentSpec> = b.statements().iter().map(planned).collect();
                    self.verify_batch(b, &expected, b.author(), None)
                }
            };
            res.map_err(|e| Error::Part { air_index: part.first_air(), source: Box::new(e) })
        })?;
        let mut parts: Vec<PartReport> = full
            .parts
            .iter()
            .flat_map(|p| {
                p.statements().iter().map(move |s| PartReport {
                    air_index: s.air_index,
                    author: *p.author(),
                    trace_root: p.trace_root(),
                    reused: *p.author() != h.builder,
                })
            })
            .collect();
        parts.sort_by_key(|r| r.air_index);
        Ok(FullProofReport { sub_block_index: h.sub_block_index, builder: h.builder, parts })
    }

    /// Verifies an AggProof against the block's plan: the block-level chain (sub-block `k` starts
    /// from sub-block `k - 1`'s output state), one full proof per sub-block in order, and each
    /// full proof (in parallel).
    pub fn verify_agg(&self, agg: &AggProof, plan: &BlockPlan) -> Result<AggProofReport> {
        check_block_plan(plan)?;
        let h = &agg.header;
        if h.round_digest != plan.round_digest {
            return Err(Error::WrongPublicValues { field: "round_digest" });
        }
        if h.initial_state != plan.initial_state {
            return Err(Error::WrongPublicValues { field: "initial_state" });
        }
        AggProof::check_structure(
            plan,
            agg.sub_blocks.len(),
            agg.sub_blocks.iter().map(|f| &f.header),
        )?;
        if h.output_state != plan.sub_blocks.last().map_or(plan.initial_state, |s| s.output_state) {
            return Err(Error::WrongPublicValues { field: "output_state" });
        }
        let sub_blocks = agg
            .sub_blocks
            .par_iter()
            .zip(plan.sub_blocks.par_iter())
            .map(|(f, sb)| {
                self.verify_full(f, sb).map_err(|e| Error::SubBlock {
                    sub_block: sb.sub_block_index,
                    source: Box::new(e),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AggProofReport { builder: h.builder, sub_blocks })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::ProofParams;
    use crate::generation::run_chain;
    use crate::types::Gas;
    use crate::workload::{SegmentWorkload, SubBlockWork, plan_block};

    fn prover() -> &'static Prover {
        static P: OnceLock<Prover> = OnceLock::new();
        P.get_or_init(|| Prover::new(ProofParams::default(), SegmentWorkload::default()).unwrap())
    }

    const ALICE: AuthorKey = AuthorKey([0xa1; 48]);
    const BOB: AuthorKey = AuthorKey([0xb0; 48]);

    struct Fixture {
        plan: BlockPlan,
        /// Alice's proofs of every segment, per sub-block.
        alice: Vec<Vec<PartialProof>>,
        /// Bob's proof of sub-block 0, AIR 1.
        bob_1: PartialProof,
    }

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let txs = [b"a".to_vec(), b"bb".to_vec()];
            let work = [
                SubBlockWork { transactions: &txs[..], gas: Gas(600_000), num_airs: 3 },
                SubBlockWork { transactions: &txs[..1], gas: Gas(100_000), num_airs: 2 },
            ];
            let plan =
                plan_block(prover().workload(), RoundDigest([0x42; 32]), ChainState::ZERO, &work)
                    .unwrap();
            let alice = plan
                .sub_blocks
                .iter()
                .map(|sb| {
                    sb.segments.iter().map(|s| prover().prove_partial(s, &ALICE).unwrap()).collect()
                })
                .collect();
            let bob_1 = prover().prove_partial(&plan.sub_blocks[0].segments[1], &BOB).unwrap();
            Fixture { plan, alice, bob_1 }
        })
    }

    /// Encodes a full proof without any of `build`'s checks.
    fn raw_full(
        plan: &SubBlockPlan,
        builder: AuthorKey,
        parts: &[&PartialProof],
        filter: ReuseFilter,
    ) -> FullProof {
        let encoded: Vec<Vec<u8>> = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
        let header = FullProofHeader {
            round_digest: plan.round_digest,
            sub_block_index: plan.sub_block_index,
            num_airs: plan.num_airs(),
            input_state: plan.input_state,
            output_state: plan.output_state,
            builder,
            parts_root: parts_root(&encoded),
            reuse_filter: filter,
        };
        FullProof::from_wire(FullWire { header, parts: encoded }).unwrap()
    }

    #[test]
    fn full_proof_verifies_and_reports_reuse() {
        let f = fixture();
        let sb = &f.plan.sub_blocks[0];
        let parts = vec![f.alice[0][2].clone(), f.bob_1.clone(), f.alice[0][0].clone()];
        let full = FullProof::build(ALICE, sb, parts).unwrap();
        let decoded = FullProof::from_bytes(full.as_bytes()).unwrap();
        assert_eq!(decoded, full);
        let report = prover().verify_full(&decoded, sb).unwrap();
        let reused: Vec<_> = report.reused().map(|p| (p.air_index, p.author)).collect();
        assert_eq!(reused, vec![(AirIndex(1), BOB)]);
        assert_eq!(report.parts[1].trace_root, f.bob_1.trace_root());
        assert!(full.header().reuse_filter.contains(
            &sb.round_digest,
            sb.sub_block_index,
            AirIndex(1),
            &BOB
        ));
        assert!(!full.header().reuse_filter.contains(
            &sb.round_digest,
            sb.sub_block_index,
            AirIndex(0),
            &ALICE
        ));
        // Against another sub-block's plan: wrong public values.
        assert!(matches!(
            prover().verify_full(&full, &f.plan.sub_blocks[1]),
            Err(Error::WrongPublicValues { .. })
        ));
    }

    #[test]
    fn missing_duplicate_and_unexpected_airs_are_rejected() {
        let f = fixture();
        let sb = &f.plan.sub_blocks[0];
        let a = &f.alice[0];
        let missing = vec![a[0].clone(), a[2].clone()];
        assert!(matches!(
            FullProof::build(ALICE, sb, missing),
            Err(Error::MissingAir { air_index: AirIndex(1) })
        ));
        let raw = raw_full(sb, ALICE, &[&a[0], &a[2]], ReuseFilter::default());
        assert!(matches!(
            prover().verify_full(&raw, sb),
            Err(Error::MissingAir { air_index: AirIndex(1) })
        ));

        let dup = vec![a[0].clone(), a[1].clone(), f.bob_1.clone(), a[2].clone()];
        assert!(matches!(
            FullProof::build(ALICE, sb, dup),
            Err(Error::DuplicateAir { air_index: AirIndex(1) })
        ));
        let raw = raw_full(sb, ALICE, &[&a[0], &a[1], &a[1], &a[2]], ReuseFilter::default());
        assert!(matches!(
            prover().verify_full(&raw, sb),
            Err(Error::DuplicateAir { air_index: AirIndex(1) })
        ));

        // A part of another sub-block (AIR index 1 exists there too, but sub-block 1 has 2 AIRs):
        let other = &f.alice[1][1];
        let raw = raw_full(
            &f.plan.sub_blocks[1],
            ALICE,
            &[&f.alice[1][0], other, &a[2]],
            ReuseFilter::default(),
        );
        assert!(matches!(
            prover().verify_full(&raw, &f.plan.sub_blocks[1]),
            Err(Error::UnexpectedAir { air_index: AirIndex(2), num_airs: 2 })
        ));
    }

    #[test]
    fn broken_chain_is_rejected() {
        let f = fixture();
        let sb = &f.plan.sub_blocks[0];
        // A valid proof of AIR 1 that starts from the wrong state.
        let mut spec = sb.segments[1];
        spec.start_state = ChainState::from_digest(&[0x55; 32]);
        spec.end_state = run_chain(spec.start_state, (1u64 << spec.log_rows) - 1);
        let stray = prover().prove_partial(&spec, &ALICE).unwrap();
        prover().verify_partial(&stray, &spec, &ALICE, None).unwrap();
        let parts = vec![f.alice[0][0].clone(), stray.clone(), f.alice[0][2].clone()];
        assert!(matches!(
            FullProof::build(ALICE, sb, parts),
            Err(Error::BrokenChain { air_index: AirIndex(1) })
        ));
        let raw =
            raw_full(sb, ALICE, &[&f.alice[0][0], &stray, &f.alice[0][2]], ReuseFilter::default());
        assert!(matches!(
            prover().verify_full(&raw, sb),
            Err(Error::BrokenChain { air_index: AirIndex(1) })
        ));
    }

    #[test]
    fn parts_root_reuse_filter_and_bad_parts_are_checked() {
        let f = fixture();
        let sb = &f.plan.sub_blocks[0];
        let a = &f.alice[0];
        // Bob's partial reused but not declared.
        let raw = raw_full(sb, ALICE, &[&a[0], &f.bob_1, &a[2]], ReuseFilter::default());
        assert!(matches!(
            prover().verify_full(&raw, sb),
            Err(Error::ReuseNotDeclared { air_index: AirIndex(1) })
        ));
        // Wrong parts root.
        let mut wire_header = raw.header.clone();
        wire_header.parts_root = PartsRoot([0; 32]);
        let bad = FullProof::from_wire(FullWire {
            header: wire_header,
            parts: raw.parts.iter().map(|p| p.as_bytes().to_vec()).collect(),
        })
        .unwrap();
        assert!(matches!(prover().verify_full(&bad, sb), Err(Error::PartsRootMismatch)));
        // A part whose author was rewritten: decodes, but its STARK fails.
        let mut bytes = a[1].as_bytes().to_vec();
        let pos = bytes.windows(48).position(|w| w == ALICE.0).unwrap();
        bytes[pos..pos + 48].copy_from_slice(&BOB.0);
        let forged = PartialProof::from_bytes(&bytes).unwrap();
        let full = FullProof::build(ALICE, sb, vec![a[0].clone(), forged, a[2].clone()]).unwrap();
        match prover().verify_full(&full, sb) {
            Err(Error::Part { air_index: AirIndex(1), source }) => {
                assert!(matches!(*source, Error::InvalidProof { .. }));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn agg_proof_verifies_with_block_level_checks() {
        let f = fixture();
        let fulls: Vec<FullProof> = f
            .plan
            .sub_blocks
            .iter()
            .zip(&f.alice)
            .map(|(sb, parts)| FullProof::build(ALICE, sb, parts.clone()).unwrap())
            .collect();
        let agg = AggProof::build(BOB, &f.plan, vec![fulls[1].clone(), fulls[0].clone()]).unwrap();
        let decoded = AggProof::from_bytes(agg.as_bytes()).unwrap();
        let report = prover().verify_agg(&decoded, &f.plan).unwrap();
        assert_eq!(report.sub_blocks.len(), 2);
        assert_eq!(report.builder, BOB);
        assert_eq!(report.sub_blocks[0].reused().count(), 0);

        // Missing sub-block.
        assert!(matches!(
            AggProof::build(BOB, &f.plan, vec![fulls[0].clone()]),
            Err(Error::SubBlockCount { expected: 2, got: 1 })
        ));
        // Out of order (hand-made).
        let wire = AggWire {
            header: agg.header.clone(),
            sub_blocks: vec![fulls[1].as_bytes().to_vec(), fulls[0].as_bytes().to_vec()],
        };
        let swapped =
            AggProof::from_bytes(&seal(&wire, Kind::Agg, AGG, MAX_AGG_PROOF_SIZE).unwrap())
                .unwrap();
        assert!(matches!(
            prover().verify_agg(&swapped, &f.plan),
            Err(Error::SubBlockOutOfOrder { position: 0, got: SubBlockIndex(1) })
        ));
        // A plan whose sub-blocks do not chain.
        let mut plan = f.plan.clone();
        plan.sub_blocks[1].prev_state = ChainState::ZERO;
        assert!(matches!(
            prover().verify_agg(&agg, &plan),
            Err(Error::BrokenBlockChain { sub_block: SubBlockIndex(1) })
        ));
        // A full proof of another block's sub-block.
        let txs = [b"other".to_vec()];
        let other_plan = plan_block(
            prover().workload(),
            RoundDigest([0x42; 32]),
            ChainState::ZERO,
            &[SubBlockWork { transactions: &txs[..], gas: Gas(100_000), num_airs: 1 }],
        )
        .unwrap();
        assert!(matches!(prover().verify_agg(&agg, &other_plan), Err(Error::SubBlockCount { .. })));
    }

    #[test]
    fn full_proof_with_a_batch_part() {
        let f = fixture();
        let sb = &f.plan.sub_blocks[0];
        let batch = prover().prove_batch(&[sb.segments[2], sb.segments[0]], &ALICE).unwrap();
        let root = batch.trace_root();
        let parts: Vec<ProofPart> = vec![f.bob_1.clone().into(), batch.clone().into()];
        let full = FullProof::build(BOB, sb, parts).unwrap();
        let full = FullProof::from_bytes(full.as_bytes()).unwrap();
        let report = prover().verify_full(&full, sb).unwrap();
        let reused: Vec<_> =
            report.reused().map(|p| (p.air_index, p.author, p.trace_root)).collect();
        assert_eq!(reused, vec![(AirIndex(0), ALICE, root), (AirIndex(2), ALICE, root)]);
        assert_eq!(report.parts[1].trace_root, f.bob_1.trace_root());
        // An AIR in both the batch and a partial.
        let dup: Vec<ProofPart> =
            vec![f.alice[0][0].clone().into(), f.bob_1.clone().into(), batch.into()];
        assert!(matches!(
            FullProof::build(BOB, sb, dup),
            Err(Error::DuplicateAir { air_index: AirIndex(0) })
        ));
    }

    #[test]
    fn parts_root_is_order_sensitive_and_handles_odd_counts() {
        let r1 = parts_root(&[b"a".as_slice(), b"b", b"c"]);
        let r2 = parts_root(&[b"b".as_slice(), b"a", b"c"]);
        assert_ne!(r1, r2);
        assert_ne!(parts_root(&[b"a".as_slice()]), parts_root(&[b"a".as_slice(), b"a"]));
    }
}
