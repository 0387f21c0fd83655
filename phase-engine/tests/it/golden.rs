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
