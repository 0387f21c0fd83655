//! [`Prover::verify_full`] and [`Prover::verify_agg`]: checking full proofs and AggProofs
//! against their plans, the STARKs of their parts in parallel; the `_reusing` forms skip the
//! STARK of a part whose exact encoding the caller verified before against the same sub-block
//! (a partial proof gossiped in T2 and verified then), leaving the structural checks.

use rayon::prelude::*;

use super::agg::{AggProof, AggProofReport, check_block_plan};
use super::full::{FullProof, FullProofReport, PartReport, check_header, check_parts};
use super::parts::{PartDigest, ProofPart, parts_root};
use crate::error::{Error, Result};
use crate::partial::Prover;
use crate::types::{SegmentSpec, SubBlockIndex};
use crate::workload::{BlockPlan, SubBlockPlan, Workload};

/// What a caller has verified before: whether the part with this encoding digest was verified
/// as a valid partial of the sub-block with this index. Sound whatever plan it was verified
/// against: the encoding holds the part's statement, author and proof, a partial verifies only
/// if its statement is the planned segment, and `check_parts` matches every statement of a full
/// proof to the current plan before any verdict is reused.
pub type VerifiedBefore<'a> = &'a (dyn Fn(SubBlockIndex, &PartDigest) -> bool + Sync);

impl<W: Workload> Prover<W> {
    /// Verifies a full proof against the sub-block's plan: header, coverage of every AIR exactly
    /// once, the unbroken chain, the parts root, the reuse filter (every partial by another author
    /// than the builder must be in it), then every partial STARK in parallel. Reports each part's
    /// author and trace root and which were reused.
    pub fn verify_full(&self, full: &FullProof, plan: &SubBlockPlan) -> Result<FullProofReport> {
        self.verify_full_reusing(full, plan, &|_, _| false)
    }

    /// [`Self::verify_full`], except that the STARK of a part whose encoding `verified_before`
    /// names (for this sub-block) is not verified again: its verdict is reused. Every other check
    /// (header, coverage, chain, parts root, reuse filter) runs in full.
    pub fn verify_full_reusing(
        &self,
        full: &FullProof,
        plan: &SubBlockPlan,
        verified_before: VerifiedBefore<'_>,
    ) -> Result<FullProofReport> {
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
            if verified_before(plan.sub_block_index, &PartDigest::of(part.as_bytes())) {
                return Ok(());
            }
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
        self.verify_agg_reusing(agg, plan, &|_, _| false)
    }

    /// [`Self::verify_agg`], reusing the verdicts of parts verified before as
    /// [`Self::verify_full_reusing`] does, in every sub-block.
    pub fn verify_agg_reusing(
        &self,
        agg: &AggProof,
        plan: &BlockPlan,
        verified_before: VerifiedBefore<'_>,
    ) -> Result<AggProofReport> {
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
                self.verify_full_reusing(f, sb, verified_before).map_err(|e| Error::SubBlock {
                    sub_block: sb.sub_block_index,
                    source: Box::new(e),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AggProofReport { builder: h.builder, sub_blocks })
    }
}
