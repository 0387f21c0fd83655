//! Shared helpers.

use std::sync::OnceLock;

use plonky3_prover::{
    AuthorKey, BlockPlan, ChainState, Gas, ProofParams, Prover, RoundDigest, SegmentWorkload,
    SubBlockWork, plan_block,
};

/// One prover for all tests (building it computes the security table).
pub(crate) fn prover() -> &'static Prover {
    static P: OnceLock<Prover> = OnceLock::new();
    P.get_or_init(|| Prover::new(ProofParams::default(), SegmentWorkload::default()).unwrap())
}

pub(crate) fn alice() -> AuthorKey {
    AuthorKey([0xa1; 48])
}

pub(crate) fn bob() -> AuthorKey {
    AuthorKey([0xb0; 48])
}

pub(crate) fn carol() -> AuthorKey {
    AuthorKey([0xc3; 48])
}

/// A block of two sub-blocks: 3 AIRs of 2^10 rows, then 2 AIRs of 2^10 rows.
pub(crate) fn block_plan(round: u8) -> BlockPlan {
    let txs_a: Vec<Vec<u8>> = vec![b"tx-one".to_vec(), b"tx-two".to_vec()];
    let txs_b: Vec<Vec<u8>> = vec![b"tx-three".to_vec()];
    let work = [
        SubBlockWork { transactions: &txs_a[..], gas: Gas(3 * 250_000), num_airs: 3 },
        SubBlockWork { transactions: &txs_b[..], gas: Gas(2 * 250_000), num_airs: 2 },
    ];
    plan_block(prover().workload(), RoundDigest([round; 32]), ChainState::ZERO, &work).unwrap()
}
