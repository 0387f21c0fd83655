//! Decoding untrusted bytes never panics.

use std::sync::OnceLock;

use plonky3_prover::{
    AggProof, BatchPartialProof, Error, FORMAT_VERSION, FullProof, MAX_PROOF_SIZE, PartialProof,
};
use proptest::prelude::*;

use crate::common::{alice, block_plan, prover};

fn sample() -> &'static Vec<u8> {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| {
        let plan = block_plan(7);
        prover()
            .prove_partial(&plan.sub_blocks[0].segments[0], &alice())
            .unwrap()
            .as_bytes()
            .to_vec()
    })
}

#[test]
fn header_errors() {
    assert!(matches!(PartialProof::from_bytes(&[]), Err(Error::Malformed { .. })));
    assert!(matches!(PartialProof::from_bytes(&[FORMAT_VERSION]), Err(Error::Malformed { .. })));
    assert!(matches!(
        PartialProof::from_bytes(&[FORMAT_VERSION + 1, 1, 0]),
        Err(Error::UnsupportedVersion { got: 2, expected: 1 })
    ));
    assert!(matches!(
        PartialProof::from_bytes(&[FORMAT_VERSION, 2, 0]),
        Err(Error::Malformed { .. })
    ));
    let big = vec![0u8; MAX_PROOF_SIZE + 1];
    assert!(matches!(PartialProof::from_bytes(&big), Err(Error::Oversize { .. })));
    // A valid partial proof is not a full proof.
    assert!(FullProof::from_bytes(sample()).is_err());
    // Trailing bytes are refused.
    let mut t = sample().clone();
    t.push(0);
    assert!(matches!(
        PartialProof::from_bytes(&t),
        Err(Error::Malformed { reason: "trailing bytes", .. })
    ));
}

#[test]
fn every_truncation_is_rejected() {
    let s = sample();
    let step = (s.len() / 300).max(1);
    for len in (0..s.len()).step_by(step).chain([s.len() - 1]) {
        assert!(PartialProof::from_bytes(&s[..len]).is_err(), "truncated to {len} accepted");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = PartialProof::from_bytes(&bytes);
        let _ = FullProof::from_bytes(&bytes);
        let _ = AggProof::from_bytes(&bytes);
        let _ = BatchPartialProof::from_bytes(&bytes);
    }

    #[test]
    fn garbage_after_valid_header_never_panics(
        kind in 1u8..=4,
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let mut b = vec![FORMAT_VERSION, kind];
        b.extend(bytes);
        let _ = PartialProof::from_bytes(&b);
        let _ = FullProof::from_bytes(&b);
        let _ = AggProof::from_bytes(&b);
        let _ = BatchPartialProof::from_bytes(&b);
    }

    #[test]
    fn mutated_proof_never_panics_and_never_verifies(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut b = sample().clone();
        for (i, v) in &edits {
            let i = i.index(b.len());
            if b[i] == *v { b[i] ^= 0x80 } else { b[i] = *v }
        }
        if truncate {
            b.truncate(cut.index(b.len()));
        }
        if let Ok(pp) = PartialProof::from_bytes(&b) {
            let plan = block_plan(7);
            prop_assert!(prover().verify_partial(&pp, &plan.sub_blocks[0].segments[0], &alice(), None).is_err());
        }
    }
}
