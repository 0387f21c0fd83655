//! From a block to the STARK workload of its rounds: the one mapping that provers and verifiers
//! (and the simulator's real-proof mode) must share.
//!
//! * Round digest: the beacon block root.
//! * Initial chain state: [`ChainState::from_digest`] of the execution payload's `parent_hash`
//!   (so consecutive blocks chain through the execution chain).
//! * Sub-blocks: the engine splits a block of `g` gas into `k` sub-blocks, the first `g mod k`
//!   carrying one more gas unit (`phase_engine::plan_block`). The transactions are split the
//!   same way by count: sub-block `i` takes the next `n / k` transactions, plus one for the first
//!   `n mod k`, in payload order.
//! * AIRs per sub-block: as the engine planned them (`num_airs` of each round).
//!
//! The input is plain bytes, so this crate needs neither the beacon types nor the engine's.

use crate::error::{Error, Result};
use crate::types::{ChainState, Gas, RoundDigest};
use crate::workload::{BlockPlan, SubBlockWork, Workload, plan_block};

/// What a block's workload is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockInput {
    /// The beacon block root (the round digest).
    pub block_root: [u8; 32],
    /// The execution payload's parent hash (the initial chain state).
    pub parent_hash: [u8; 32],
    /// Gas used by the execution payload.
    pub gas_used: u64,
    /// The payload's transactions, opaque bytes in order.
    pub transactions: Vec<Vec<u8>>,
}

/// `n` split into `k` parts, the first `n mod k` one larger (`k >= 1`).
fn split(n: u64, k: u64, i: u64) -> u64 {
    let base = n.checked_div(k).unwrap_or(0);
    let rem = n.checked_rem(k).unwrap_or(0);
    base.saturating_add(u64::from(i < rem))
}

/// Plans the whole block: one sub-block per entry of `airs_per_sub_block` (the engine's
/// `num_airs` of sub-block 0, 1, ...), chained from the initial state. Runs the workload's
/// chain (CPU work: call it off async workers).
///
/// # Errors
/// [`Error::InvalidPlan`] for no sub-blocks, or the error of a plan the workload rejects.
pub fn block_plan<W: Workload>(
    workload: &W,
    input: &BlockInput,
    airs_per_sub_block: &[u32],
) -> Result<BlockPlan> {
    let k = u64::try_from(airs_per_sub_block.len()).unwrap_or(u64::MAX);
    if k == 0 {
        return Err(Error::InvalidPlan { reason: "a block has at least one sub-block" });
    }
    let n = u64::try_from(input.transactions.len()).unwrap_or(u64::MAX);
    let mut start = 0usize;
    let mut ranges = Vec::with_capacity(airs_per_sub_block.len());
    for i in 0..k {
        let count = usize::try_from(split(n, k, i)).unwrap_or(usize::MAX);
        let end = start.saturating_add(count).min(input.transactions.len());
        ranges.push((start, end, split(input.gas_used, k, i)));
        start = end;
    }
    let work: Vec<SubBlockWork<'_, Vec<u8>>> = ranges
        .iter()
        .zip(airs_per_sub_block)
        .map(|(&(s, e, gas), &num_airs)| SubBlockWork {
            transactions: input.transactions.get(s..e).unwrap_or(&[]),
            gas: Gas(gas),
            num_airs,
        })
        .collect();
    plan_block(
        workload,
        RoundDigest(input.block_root),
        ChainState::from_digest(&input.parent_hash),
        &work,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SegmentParams, SegmentWorkload};

    fn input(txs: usize, gas: u64) -> BlockInput {
        BlockInput {
            block_root: [7; 32],
            parent_hash: [9; 32],
            gas_used: gas,
            transactions: (0..txs).map(|i| vec![u8::try_from(i % 256).unwrap(); 40]).collect(),
        }
    }

    #[test]
    fn split_matches_the_engine_rule() {
        let parts: Vec<u64> = (0..3).map(|i| split(10, 3, i)).collect();
        assert_eq!(parts, [4, 3, 3]);
        assert_eq!((0..4).map(|i| split(3, 4, i)).sum::<u64>(), 3);
    }

    #[test]
    fn plan_is_deterministic_and_chained() {
        let w = SegmentWorkload::new(SegmentParams::default()).unwrap();
        let i = input(25, 1_000_000);
        let a = block_plan(&w, &i, &[2, 1, 1]).unwrap();
        let b = block_plan(&w, &i, &[2, 1, 1]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.sub_blocks.len(), 3);
        assert_eq!(a.sub_blocks[0].num_airs(), 2);
        assert_eq!(a.sub_blocks[1].prev_state, a.sub_blocks[0].output_state);
        assert_eq!(a.initial_state, ChainState::from_digest(&[9; 32]));
        // Other transactions, other plan.
        let mut j = i.clone();
        j.transactions[24][0] ^= 1;
        assert_ne!(block_plan(&w, &j, &[2, 1, 1]).unwrap().sub_blocks[2], a.sub_blocks[2]);
        assert_eq!(block_plan(&w, &j, &[2, 1, 1]).unwrap().sub_blocks[0], a.sub_blocks[0]);
    }

    #[test]
    fn no_sub_blocks_is_an_error() {
        let w = SegmentWorkload::default();
        assert!(matches!(block_plan(&w, &input(1, 10), &[]), Err(Error::InvalidPlan { .. })));
    }
}
