//! Unit tests of full proofs and AggProofs: building, encoding, verification and rejections.

use std::sync::OnceLock;

use super::agg::{AGG, AggWire};
use super::full::FullWire;
use super::*;
use crate::ProofParams;
use crate::error::Error;
use crate::generation::run_chain;
use crate::partial::{Kind, PartialProof, Prover, seal};
use crate::types::Gas;
use crate::types::{AirIndex, AuthorKey, ChainState, PartsRoot, RoundDigest, SubBlockIndex};
use crate::workload::{BlockPlan, SegmentWorkload, SubBlockPlan, SubBlockWork, plan_block};

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

/// `part` with its author rewritten from Alice to Bob: it decodes, but its STARK fails.
fn forged_author(part: &PartialProof) -> PartialProof {
    let mut bytes = part.as_bytes().to_vec();
    let pos = bytes.windows(48).position(|w| w == ALICE.0).unwrap();
    bytes[pos..pos + 48].copy_from_slice(&BOB.0);
    PartialProof::from_bytes(&bytes).unwrap()
}

/// `full` re-sealed with another parts root in its header (and the same parts).
fn with_parts_root(full: &FullProof, parts_root: PartsRoot) -> FullProof {
    let mut header = full.header.clone();
    header.parts_root = parts_root;
    let parts = full.parts.iter().map(|p| p.as_bytes().to_vec()).collect();
    FullProof::from_wire(FullWire { header, parts }).unwrap()
}

/// Alice's full proof of every sub-block of the fixture, in order.
fn alice_fulls(f: &Fixture) -> Vec<FullProof> {
    f.plan
        .sub_blocks
        .iter()
        .zip(&f.alice)
        .map(|(sb, parts)| FullProof::build(ALICE, sb, parts.clone()).unwrap())
        .collect()
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
    let bad = with_parts_root(&raw, PartsRoot([0; 32]));
    assert!(matches!(prover().verify_full(&bad, sb), Err(Error::PartsRootMismatch)));
    // A part whose author was rewritten: decodes, but its STARK fails.
    let forged = forged_author(&a[1]);
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
    let fulls = alice_fulls(f);
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
        AggProof::from_bytes(&seal(&wire, Kind::Agg, AGG, MAX_AGG_PROOF_SIZE).unwrap()).unwrap();
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
    let reused: Vec<_> = report.reused().map(|p| (p.air_index, p.author, p.trace_root)).collect();
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
fn verdicts_of_parts_verified_before_are_reused_and_nothing_else_is_skipped() {
    let f = fixture();
    let sb = &f.plan.sub_blocks[0];
    let a = &f.alice[0];
    // A part whose author was rewritten: its STARK fails when verified.
    let forged = forged_author(&a[1]);
    let full =
        FullProof::build(ALICE, sb, vec![a[0].clone(), forged.clone(), a[2].clone()]).unwrap();
    let forged_digest = PartDigest::of(forged.as_bytes());
    let known =
        |sub: SubBlockIndex, d: &PartDigest| sub == sb.sub_block_index && *d == forged_digest;
    // Told that exactly these bytes were verified for this sub-block, the verifier skips their
    // STARK (which is how one sees that it did): the caller vouches for them.
    assert!(prover().verify_full_reusing(&full, sb, &known).is_ok());
    assert!(prover().verify_full(&full, sb).is_err());
    // The digest names bytes of one sub-block only.
    let elsewhere =
        |sub: SubBlockIndex, d: &PartDigest| sub != sb.sub_block_index && *d == forged_digest;
    assert!(prover().verify_full_reusing(&full, sb, &elsewhere).is_err());
    // Known parts skip only their STARKs: a wrong parts root still fails.
    let every_part = |_: SubBlockIndex, _: &PartDigest| true;
    let bad = with_parts_root(&full, PartsRoot([0; 32]));
    assert!(matches!(
        prover().verify_full_reusing(&bad, sb, &every_part),
        Err(Error::PartsRootMismatch)
    ));
    // An AggProof reuses the verdicts in each of its sub-blocks, with its block checks in full.
    let agg = AggProof::build(BOB, &f.plan, alice_fulls(f)).unwrap();
    let report = prover().verify_agg_reusing(&agg, &f.plan, &every_part).unwrap();
    assert_eq!(report, prover().verify_agg(&agg, &f.plan).unwrap());
    let mut plan = f.plan.clone();
    plan.sub_blocks[1].prev_state = ChainState::ZERO;
    assert!(matches!(
        prover().verify_agg_reusing(&agg, &plan, &every_part),
        Err(Error::BrokenBlockChain { sub_block: SubBlockIndex(1) })
    ));
}
