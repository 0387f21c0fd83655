//! Full proofs and AggProofs through the public API.

use plonky3_prover::{AggProof, Error, FullProof, PartialProof};

use crate::common::{alice, block_plan, bob, carol, prover};

#[test]
fn block_proven_by_three_authors_verifies() {
    let p = prover();
    let plan = block_plan(9);
    let authors = [alice(), bob(), carol()];
    let fulls: Vec<FullProof> = plan
        .sub_blocks
        .iter()
        .map(|sb| {
            let parts: Vec<PartialProof> = sb
                .segments
                .iter()
                .enumerate()
                .map(|(i, s)| p.prove_partial(s, &authors[i % 3]).unwrap())
                .collect();
            FullProof::build(carol(), sb, parts).unwrap()
        })
        .collect();
    let report = p.verify_full(&fulls[0], &plan.sub_blocks[0]).unwrap();
    let reused: Vec<_> = report.reused().map(|r| r.author).collect();
    assert_eq!(reused, vec![alice(), bob()]);
    let agg = AggProof::build(alice(), &plan, fulls.clone()).unwrap();
    let agg = AggProof::from_bytes(agg.as_bytes()).unwrap();
    let report = p.verify_agg(&agg, &plan).unwrap();
    assert_eq!(report.sub_blocks.len(), 2);
    // The AggProof of another round does not verify against this block.
    let other = block_plan(10);
    assert!(matches!(
        p.verify_agg(&agg, &other),
        Err(Error::WrongPublicValues { field: "round_digest" })
    ));
    // A full proof's encoding is not an AggProof's.
    assert!(AggProof::from_bytes(fulls[0].as_bytes()).is_err());
}
