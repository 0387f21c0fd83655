//! What a block's proving work is: the [`Workload`] trait and the built-in segment workload.

use p3_matrix::dense::RowMajorMatrix;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::air::{SegmentAir, StarkAir};
use crate::config::Val;
use crate::error::{Error, Result};
use crate::generation::{generate_segment_trace, run_chain};
use crate::types::{
    AirIndex, ChainState, Gas, InputDigest, KeyDigest, RoundDigest, SegmentSpec, SubBlockIndex,
};

/// Domain separator of [`input_digest`].
const INPUT_DOMAIN: &[u8] = b"plonky3-prover/segment-input/v1";

/// The input digest of a sub-block:
/// `sha256(DOMAIN || prev_state || u64le(n) || (u64le(len) || tx) for each of the n transactions)`,
/// where `prev_state` is the output state of the previous sub-block (or the block's initial state
/// for sub-block 0). Cheap for anyone holding the transactions.
pub fn input_digest<T: AsRef<[u8]>>(prev_state: &ChainState, transactions: &[T]) -> InputDigest {
    let mut h = Sha256::new();
    h.update(INPUT_DOMAIN);
    h.update(prev_state.as_bytes());
    h.update((transactions.len() as u64).to_le_bytes());
    for tx in transactions {
        let tx = tx.as_ref();
        h.update((tx.len() as u64).to_le_bytes());
        h.update(tx);
    }
    InputDigest(h.finalize().into())
}

/// The number of AIR instances for `gas`: `ceil(gas / gas_per_air)`, at least 1. (The protocol
/// core decides this; the helper is here for tools and tests.)
#[must_use]
pub fn num_airs_for_gas(gas: Gas, gas_per_air: Gas) -> u32 {
    let per = gas_per_air.0.max(1);
    u32::try_from(gas.0.div_ceil(per).max(1)).unwrap_or(u32::MAX)
}

/// One sub-block's proving request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubBlockInput {
    /// The block (round) digest.
    pub round_digest: RoundDigest,
    /// The sub-block's index.
    pub sub_block_index: SubBlockIndex,
    /// The state the sub-block starts from (the previous sub-block's output state).
    pub prev_state: ChainState,
    /// [`input_digest`] of `prev_state` and the sub-block's transactions.
    pub input_digest: InputDigest,
    /// Gas used by the sub-block.
    pub gas: Gas,
    /// Number of AIR instances (decided by the protocol core, `ceil(gas / gas_per_air)`).
    pub num_airs: u32,
}

/// A sub-block split into segments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubBlockPlan {
    /// The block (round) digest.
    pub round_digest: RoundDigest,
    /// The sub-block's index.
    pub sub_block_index: SubBlockIndex,
    /// The state the sub-block starts from.
    pub prev_state: ChainState,
    /// Its input digest.
    pub input_digest: InputDigest,
    /// Chain state at the start of AIR 0 (derived from the input digest).
    pub input_state: ChainState,
    /// Chain state at the end of the last AIR.
    pub output_state: ChainState,
    /// The segments, by AIR index.
    pub segments: Vec<SegmentSpec>,
}

impl SubBlockPlan {
    /// The segment of `air`, if any.
    #[must_use]
    pub fn segment(&self, air: AirIndex) -> Option<&SegmentSpec> {
        self.segments.get(usize::try_from(air.0).ok()?)
    }

    /// Number of AIR instances.
    #[must_use]
    pub fn num_airs(&self) -> u32 {
        u32::try_from(self.segments.len()).unwrap_or(u32::MAX)
    }
}

/// A whole block: its sub-block plans, chained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockPlan {
    /// The block (round) digest.
    pub round_digest: RoundDigest,
    /// The state before sub-block 0.
    pub initial_state: ChainState,
    /// The sub-blocks in order.
    pub sub_blocks: Vec<SubBlockPlan>,
}

/// One sub-block's data for [`plan_block`].
#[derive(Clone, Copy, Debug)]
pub struct SubBlockWork<'a, T> {
    /// The sub-block's transactions (opaque bytes).
    pub transactions: &'a [T],
    /// Gas used.
    pub gas: Gas,
    /// Number of AIR instances.
    pub num_airs: u32,
}

/// Plans a block: each sub-block starts from the previous one's output state.
pub fn plan_block<W: Workload, T: AsRef<[u8]>>(
    workload: &W,
    round_digest: RoundDigest,
    initial_state: ChainState,
    sub_blocks: &[SubBlockWork<'_, T>],
) -> Result<BlockPlan> {
    let mut prev = initial_state;
    let mut plans = Vec::with_capacity(sub_blocks.len());
    for (i, sb) in sub_blocks.iter().enumerate() {
        let input = SubBlockInput {
            round_digest,
            sub_block_index: SubBlockIndex(
                u32::try_from(i)
                    .map_err(|_| Error::InvalidPlan { reason: "too many sub-blocks" })?,
            ),
            prev_state: prev,
            input_digest: input_digest(&prev, sb.transactions),
            gas: sb.gas,
            num_airs: sb.num_airs,
        };
        let plan = workload.plan_sub_block(&input)?;
        prev = plan.output_state;
        plans.push(plan);
    }
    Ok(BlockPlan { round_digest, initial_state, sub_blocks: plans })
}

/// A block's proving work: how a sub-block splits into AIR instances and how a segment's trace is
/// generated. Implement it to plug in another segment prover (e.g. a zkVM's); the built-in one is
/// [`SegmentWorkload`].
pub trait Workload: Send + Sync {
    /// The AIR every segment is proven with.
    type Air: StarkAir;

    /// The AIR.
    fn air(&self) -> &Self::Air;

    /// Smallest and largest supported `log2` trace height.
    fn log_rows_range(&self) -> (u8, u8);

    /// Splits a sub-block into `input.num_airs` segments chaining from the input state to the
    /// output state.
    fn plan_sub_block(&self, input: &SubBlockInput) -> Result<SubBlockPlan>;

    /// Generates the trace of `spec` for the author with key digest `key`, checking that the
    /// spec's end state is what its start state leads to.
    fn generate_trace(&self, spec: &SegmentSpec, key: &KeyDigest) -> Result<RowMajorMatrix<Val>>;
}

/// Parameters of the built-in segment workload: the mapping gas -> trace rows.
///
/// A sub-block of `gas` with `n` AIRs gives each segment `ceil(gas / n)` gas and
/// `2^ceil(log2(ceil(segment_gas / gas_per_row)))` rows, clamped to
/// `[2^min_log_rows, 2^max_log_rows]`; the segment runs one round per row transition.
/// With the defaults (256 gas per row) and the protocol default of 4M gas per AIR, a segment is
/// 2^14 rows, so a 36M-gas block is 9 AIRs of 2^14 rows: 0.4-0.6 s of proving on 2 cores for all
/// of them (measured, BENCHMARKS.md), well within a 12 s slot even for a prover holding every AIR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentParams {
    /// Gas represented by one trace row (one round of the chain).
    pub gas_per_row: u64,
    /// Smallest segment, `log2` rows.
    pub min_log_rows: u8,
    /// Largest segment, `log2` rows.
    pub max_log_rows: u8,
}

impl Default for SegmentParams {
    fn default() -> Self {
        Self { gas_per_row: 256, min_log_rows: 6, max_log_rows: 18 }
    }
}

impl SegmentParams {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if self.gas_per_row == 0 {
            return Err(Error::InvalidParams { key: "gas_per_row", reason: "must be positive" });
        }
        if self.min_log_rows < 4 || self.max_log_rows > 24 || self.min_log_rows > self.max_log_rows
        {
            return Err(Error::InvalidParams {
                key: "min_log_rows",
                reason: "need 4 <= min_log_rows <= max_log_rows <= 24",
            });
        }
        Ok(())
    }

    /// `log2` rows of a segment carrying `gas`.
    #[must_use]
    pub fn log_rows_for_gas(&self, gas: Gas) -> u8 {
        let rows = gas.0.div_ceil(self.gas_per_row.max(1)).max(1);
        let log = rows.next_power_of_two().trailing_zeros();
        u8::try_from(log).unwrap_or(u8::MAX).clamp(self.min_log_rows, self.max_log_rows)
    }
}

/// The built-in workload: a chain of the segment AIR's round function, `gas / gas_per_row`
/// rounds, split into equal segments.
#[derive(Clone, Debug, Default)]
pub struct SegmentWorkload {
    params: SegmentParams,
    air: SegmentAir,
}

impl SegmentWorkload {
    /// A workload with `params` (validated).
    pub fn new(params: SegmentParams) -> Result<Self> {
        params.validate()?;
        Ok(Self { params, air: SegmentAir })
    }

    /// The parameters.
    #[must_use]
    pub fn params(&self) -> &SegmentParams {
        &self.params
    }
}

impl Workload for SegmentWorkload {
    type Air = SegmentAir;

    fn air(&self) -> &SegmentAir {
        &self.air
    }

    fn log_rows_range(&self) -> (u8, u8) {
        (self.params.min_log_rows, self.params.max_log_rows)
    }

    fn plan_sub_block(&self, input: &SubBlockInput) -> Result<SubBlockPlan> {
        if input.num_airs == 0 {
            return Err(Error::InvalidPlan { reason: "a sub-block has at least one AIR" });
        }
        if input.num_airs > crate::bundle::MAX_PARTS {
            return Err(Error::InvalidPlan { reason: "more AIRs than a full proof can hold" });
        }
        let seg_gas = Gas(input.gas.0.div_ceil(u64::from(input.num_airs)));
        let log_rows = self.params.log_rows_for_gas(seg_gas);
        let rounds = (1u64 << log_rows) - 1;
        let input_state = ChainState::from_digest(&input.input_digest.0);
        let mut state = input_state;
        let segments = (0..input.num_airs)
            .map(|i| {
                let end = run_chain(state, rounds);
                let spec = SegmentSpec {
                    round_digest: input.round_digest,
                    sub_block_index: input.sub_block_index,
                    air_index: AirIndex(i),
                    log_rows,
                    start_state: state,
                    end_state: end,
                };
                state = end;
                spec
            })
            .collect();
        Ok(SubBlockPlan {
            round_digest: input.round_digest,
            sub_block_index: input.sub_block_index,
            prev_state: input.prev_state,
            input_digest: input.input_digest,
            input_state,
            output_state: state,
            segments,
        })
    }

    fn generate_trace(&self, spec: &SegmentSpec, key: &KeyDigest) -> Result<RowMajorMatrix<Val>> {
        let (min, max) = self.log_rows_range();
        if !(min..=max).contains(&spec.log_rows) {
            return Err(Error::UnsupportedSize { log_rows: spec.log_rows, min, max });
        }
        let (trace, end) = generate_segment_trace(spec, key);
        if end != spec.end_state {
            return Err(Error::InconsistentSpec { air_index: spec.air_index });
        }
        Ok(trace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gas_to_rows_mapping() {
        let p = SegmentParams::default();
        assert_eq!(p.log_rows_for_gas(Gas(4_000_000)), 14);
        assert_eq!(p.log_rows_for_gas(Gas(0)), 6);
        assert_eq!(p.log_rows_for_gas(Gas(u64::MAX)), 18);
        assert_eq!(num_airs_for_gas(Gas(36_000_000), Gas(4_000_000)), 9);
        assert_eq!(num_airs_for_gas(Gas(36_000_001), Gas(4_000_000)), 10);
        assert_eq!(num_airs_for_gas(Gas(0), Gas(4_000_000)), 1);
    }

    #[test]
    fn plan_chains_segments_and_sub_blocks() {
        let w = SegmentWorkload::default();
        let txs: Vec<Vec<u8>> = vec![vec![1, 2, 3], vec![4]];
        let work = [
            SubBlockWork { transactions: &txs[..], gas: Gas(100_000), num_airs: 3 },
            SubBlockWork { transactions: &txs[..1], gas: Gas(50_000), num_airs: 2 },
        ];
        let plan = plan_block(&w, RoundDigest([9; 32]), ChainState::ZERO, &work).unwrap();
        assert_eq!(plan.sub_blocks.len(), 2);
        for sb in &plan.sub_blocks {
            assert_eq!(sb.segments[0].start_state, sb.input_state);
            for pair in sb.segments.windows(2) {
                assert_eq!(pair[0].end_state, pair[1].start_state);
            }
            assert_eq!(sb.segments.last().unwrap().end_state, sb.output_state);
        }
        assert_eq!(plan.sub_blocks[1].prev_state, plan.sub_blocks[0].output_state);
        // Different transactions give a different input digest.
        assert_ne!(
            input_digest(&ChainState::ZERO, &txs),
            input_digest(&ChainState::ZERO, &txs[..1])
        );
        // Length-prefixing: [[1,2],[3]] differs from [[1],[2,3]].
        assert_ne!(
            input_digest(&ChainState::ZERO, &[vec![1u8, 2], vec![3]]),
            input_digest(&ChainState::ZERO, &[vec![1u8], vec![2, 3]])
        );
    }
}
