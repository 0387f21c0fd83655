//! Partial proofs: commit, prove, verify and every rejection.

use plonky3_prover::{Error, PartialProof, ProofParams, Prover, SegmentWorkload, TraceRoot};

use crate::common::{alice, block_plan, bob, prover};

#[test]
fn proof_verifies_and_matches_commitment() {
    let p = prover();
    let plan = block_plan(1);
    let spec = &plan.sub_blocks[0].segments[1];
    assert_eq!(spec.log_rows, 10);
    let root = p.commit(spec, &alice()).unwrap();
    let proof = p.prove_partial(spec, &alice()).unwrap();
    assert_eq!(proof.trace_root(), root, "T1 commitment equals the proof's trace commitment");
    p.verify_partial(&proof, spec, &alice(), Some(&root)).unwrap();
    // Decoding the bytes gives the same proof, which still verifies.
    let decoded = PartialProof::from_bytes(proof.as_bytes()).unwrap();
    assert_eq!(decoded, proof);
    p.verify_partial(&decoded, spec, &alice(), Some(&root)).unwrap();
    assert!(p.security_bits(10).unwrap() >= 100);
}

#[test]
fn trace_roots_differ_per_author() {
    let p = prover();
    let plan = block_plan(1);
    let spec = &plan.sub_blocks[0].segments[0];
    let a = p.commit(spec, &alice()).unwrap();
    let b = p.commit(spec, &bob()).unwrap();
    assert_ne!(a, b);
    // Deterministic.
    assert_eq!(a, p.commit(spec, &alice()).unwrap());
}

#[test]
fn stolen_proof_is_rejected() {
    let p = prover();
    let plan = block_plan(2);
    let spec = &plan.sub_blocks[0].segments[0];
    let proof = p.prove_partial(spec, &alice()).unwrap();
    // Checked against Bob's key: wrong key.
    assert!(matches!(p.verify_partial(&proof, spec, &bob(), None), Err(Error::WrongKey { .. })));
    // Bob rewrites the author in the header: the public values (Bob's key digest) no longer match
    // what the STARK was proven with.
    let mut bytes = proof.as_bytes().to_vec();
    let pos = bytes.windows(48).position(|w| w == alice().0).unwrap();
    bytes[pos..pos + 48].copy_from_slice(&bob().0);
    let forged = PartialProof::from_bytes(&bytes).unwrap();
    assert_eq!(forged.author(), &bob());
    assert!(matches!(
        p.verify_partial(&forged, spec, &bob(), None),
        Err(Error::InvalidProof { .. })
    ));
}

#[test]
fn wrong_commitment_and_public_values_are_rejected() {
    let p = prover();
    let plan = block_plan(3);
    let spec = &plan.sub_blocks[0].segments[0];
    let proof = p.prove_partial(spec, &alice()).unwrap();
    // Another author's T1 root.
    let bob_root = p.commit(spec, &bob()).unwrap();
    assert!(matches!(
        p.verify_partial(&proof, spec, &alice(), Some(&bob_root)),
        Err(Error::WrongCommitment { .. })
    ));
    assert!(matches!(
        p.verify_partial(&proof, spec, &alice(), Some(&TraceRoot([0; 32]))),
        Err(Error::WrongCommitment { .. })
    ));
    // Swapped public values: checked against the next segment's statement.
    let other = &plan.sub_blocks[0].segments[1];
    assert!(matches!(
        p.verify_partial(&proof, other, &alice(), None),
        Err(Error::WrongPublicValues { field: "air_index" })
    ));
    let mut swapped = *spec;
    swapped.end_state = other.end_state;
    assert!(matches!(
        p.verify_partial(&proof, &swapped, &alice(), None),
        Err(Error::WrongPublicValues { field: "end_state" })
    ));
    // Header swapped to claim the other statement: the STARK fails.
    let mut bytes = proof.as_bytes().to_vec();
    let pos = bytes.windows(32).position(|w| w == spec.end_state.as_bytes()).unwrap();
    bytes[pos..pos + 32].copy_from_slice(other.end_state.as_bytes());
    let forged = PartialProof::from_bytes(&bytes).unwrap();
    let mut claimed = *spec;
    claimed.end_state = other.end_state;
    assert!(matches!(
        p.verify_partial(&forged, &claimed, &alice(), None),
        Err(Error::InvalidProof { .. })
    ));
}

#[test]
fn tampered_bytes_are_rejected() {
    let p = prover();
    let plan = block_plan(4);
    let spec = &plan.sub_blocks[1].segments[0];
    let proof = p.prove_partial(spec, &alice()).unwrap();
    let bytes = proof.as_bytes();
    // Flip bytes across the STARK body: each either fails to decode or fails to verify.
    let header_len = 2 + 151;
    let step = (bytes.len() - header_len) / 40;
    for i in (header_len..bytes.len()).step_by(step.max(1)) {
        let mut t = bytes.to_vec();
        t[i] ^= 0x01;
        match PartialProof::from_bytes(&t) {
            Err(_) => {}
            Ok(pp) => {
                let res = p.verify_partial(&pp, spec, &alice(), None);
                assert!(res.is_err(), "flip at {i} accepted");
            }
        }
    }
}

#[test]
fn inconsistent_spec_is_refused_by_the_prover() {
    let p = prover();
    let plan = block_plan(5);
    let mut spec = plan.sub_blocks[0].segments[0];
    spec.end_state = plan.sub_blocks[0].segments[1].end_state;
    assert!(matches!(p.prove_partial(&spec, &alice()), Err(Error::InconsistentSpec { .. })));
    let mut big = plan.sub_blocks[0].segments[0];
    big.log_rows = 30;
    assert!(matches!(p.commit(&big, &alice()), Err(Error::UnsupportedSize { .. })));
}

#[test]
fn weak_parameters_are_refused() {
    let weak = ProofParams { num_queries: 20, ..ProofParams::default() };
    assert!(matches!(
        Prover::new(weak, SegmentWorkload::default()),
        Err(Error::InsecureParams { min: 100, .. })
    ));
    let bad = ProofParams { max_log_arity: 0, ..ProofParams::default() };
    assert!(matches!(
        Prover::new(bad, SegmentWorkload::default()),
        Err(Error::InvalidParams { key: "max_log_arity", .. })
    ));
}
