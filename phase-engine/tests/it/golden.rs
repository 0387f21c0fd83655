//! Golden vectors of spec-defined computations.

use alloy_primitives::hex;
use phase_engine::{Shuffler, compute_shuffled_index};

fn mapping(seed: [u8; 32], count: u64) -> Vec<u64> {
    (0..count).map(|i| compute_shuffled_index(i, count, &seed, 90).unwrap()).collect()
}

/// consensus-spec-tests `shuffling/core/shuffle`: `mapping[i] = compute_shuffled_index(i)`.
#[test]
fn consensus_spec_shuffle_vectors() {
    assert_eq!(
        mapping(hex!("01b4f6bd5d6a06a7b74a8565ceb4f845afe0ae96a0ac05cf5e86066bf7b538ec"), 10),
        [2, 7, 8, 5, 4, 1, 6, 0, 9, 3]
    );
    assert_eq!(
        mapping(hex!("23bcd11624a07465b1c2fc1a0fe52996daae4bf87b0fb6bed45926096c644843"), 33),
        [
            32, 23, 31, 19, 28, 29, 24, 26, 3, 0, 27, 6, 15, 18, 13, 25, 1, 21, 12, 7, 11, 5, 22,
            8, 20, 17, 16, 30, 10, 2, 9, 14, 4
        ]
    );
}

#[test]
fn shuffler_matches_spec_function() {
    let seed = hex!("23bcd11624a07465b1c2fc1a0fe52996daae4bf87b0fb6bed45926096c644843");
    let s = Shuffler::new(1_000_003, &seed, 90).unwrap();
    for i in [0u64, 1, 255, 256, 999_999, 1_000_002] {
        assert_eq!(
            s.shuffled_index(i).unwrap(),
            compute_shuffled_index(i, 1_000_003, &seed, 90).unwrap()
        );
    }
}

/// consensus-spec-tests `bls/sign` cases (the Ethereum DST, min-pk).
#[test]
fn consensus_spec_bls_sign_vectors() {
    use phase_engine::{Root, bls};
    let cases = [
        (
            hex!("263dbd792f5b1be47ed85f8938c0f29586af0d3ac7b977f21c278fe1462040e3"),
            [0u8; 32],
            hex!(
                "b6ed936746e01f8ecf281f020953fbf1f01debd5657c4a383940b020b26507f6076334f91e2366c96e9ab279fb5158090352ea1c5b0c9274504f4f0e7053af24802e51e4568d164fe986834f41e55c8e850ce1f98458c0cfc9ab380b55285a55"
            ),
        ),
        (
            hex!("328388aff0d4a5b7dc9205abd374e7e98f3cd9f3418edb4eafda5fb16473d216"),
            [0x56u8; 32],
            hex!(
                "a4efa926610b8bd1c8330c918b7a5e9bf374e53435ef8b7ec186abf62e1b1f65aeaaeb365677ac1d1172a1f5b44b4e6d022c252c58486c0a759fbdc7de15a756acc4d343064035667a594b4c2a6f0b0b421975977f297dba63ee2f63ffe47bb6"
            ),
        ),
    ];
    for (sk, msg, sig) in cases {
        let key = bls::SecretKey::from_bytes(&sk).unwrap();
        let root = Root::from(msg);
        assert_eq!(key.sign(&root).0, sig);
        assert!(bls::verify(&key.public_key(), &root, &phase_engine::BlsSignature::from(sig)));
    }
    let key = bls::SecretKey::from_bytes(&cases[0].0).unwrap();
    assert_eq!(
        key.public_key().0,
        hex!(
            "a491d1b0ecd9bb917989f0e74f0dea0422eac4a873e5e2644f368dffb9a6e20fd6e10c1b77654d067c0618f6e5a7f79a"
        )
    );
}

/// Stored signing roots of fixed messages: they change only if the wire format (SSZ layout,
/// domains, signing context) changes, which must be deliberate.
#[test]
fn signing_root_fixtures() {
    use phase_engine::{
        AirCommitment, AirIndex, Attempt, Commitment, Decline, ProverIndex, Root, RoundRef,
        SignedContent, Slot, SubBlockIndex, test_utils::signing_context,
    };
    let ctx = signing_context();
    let round = RoundRef {
        slot: Slot(7),
        block_root: Root::repeat_byte(0xab),
        sub_block: SubBlockIndex(1),
        attempt: Attempt(0),
    };
    let decline = Decline { round, prover: ProverIndex(42) };
    let commitment = Commitment {
        round,
        prover: ProverIndex(42),
        trace_roots: vec![AirCommitment { air: AirIndex(3), trace_root: Root::repeat_byte(0x11) }]
            .try_into()
            .unwrap(),
        full_proof: Default::default(),
    };
    let got = [decline.signing_root(&ctx), commitment.signing_root(&ctx)];
    // Cross-checked with an independent plain-Python SSZ merkleization of the same containers
    // (ForkData, SigningData, RoundRef, Decline, Commitment with a one-element list).
    let expected = [
        Root::from(hex!("7790e20b97551f7857ca6ca464de41cce5021579c26a068ca18f1a97829f202b")),
        Root::from(hex!("1d214076e79c00618eb4da19c55463063a5d1dd97849b39542ca61cc48b98a5e")),
    ];
    assert_eq!(got, expected, "{got:?}");
}
