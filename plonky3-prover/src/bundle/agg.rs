//! AggProofs: the full proofs of all sub-blocks of a block, with the block-level chain checks.

use serde::{Deserialize, Serialize};

use super::full::{FullProof, FullProofHeader, FullProofReport, check_header};
use crate::error::{Error, Result};
use crate::partial::{Kind, decode_canonical, open_envelope, seal};
use crate::types::{AuthorKey, ChainState, RoundDigest, SubBlockIndex};
use crate::workload::BlockPlan;

/// Most sub-blocks in one AggProof.
pub const MAX_SUB_BLOCKS: u32 = 64;
/// Maximum size of an encoded AggProof.
pub const MAX_AGG_PROOF_SIZE: usize = 256 * 1024 * 1024;

pub(super) const AGG: &str = "AggProof";

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
pub(super) struct AggWire {
    pub(super) header: AggProofHeader,
    pub(super) sub_blocks: Vec<Vec<u8>>,
}

/// An AggProof: the full proofs of all sub-blocks of a block, in order.
///
/// Encoding (version 1): `0x01`, `0x03` (kind: AggProof), postcard of
/// `(AggProofHeader, Vec<encoded full proof>)`; at most [`MAX_AGG_PROOF_SIZE`] bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggProof {
    pub(super) header: AggProofHeader,
    pub(super) sub_blocks: Vec<FullProof>,
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
pub(super) fn check_block_plan(plan: &BlockPlan) -> Result<()> {
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

    pub(super) fn check_structure<'a>(
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
