//! From a beacon block to the input of its STARK workload: the block root and the execution
//! payload's parent hash, gas used and transactions, in payload order. The mapping from that
//! input to the workload itself is [`plonky3_prover::block_plan`], shared with verifiers.

use beacon_api::ExecutionPayload;
use phase_engine::Root;
use plonky3_prover::BlockInput;

/// The workload input of the block with this root and execution payload.
#[must_use]
pub fn block_input(block_root: Root, payload: &ExecutionPayload) -> BlockInput {
    BlockInput {
        block_root: block_root.0,
        parent_hash: payload.parent_hash.0,
        gas_used: payload.gas_used,
        transactions: payload.transactions.iter().map(|t| t.to_vec()).collect(),
    }
}
