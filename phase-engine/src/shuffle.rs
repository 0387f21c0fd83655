//! The consensus specs' swap-or-not shuffle (`compute_shuffled_index`), and a [`Shuffler`] that
//! precomputes the per-round pivots so that shuffled positions can be computed lazily, one
//! candidate at a time, without shuffling a whole list.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Shuffle rounds of the consensus specs (`SHUFFLE_ROUND_COUNT`).
pub const SHUFFLE_ROUND_COUNT: u8 = 90;

fn pivot(seed: &[u8; 32], round: u8, index_count: u64) -> u64 {
    let mut h = Sha256::new();
    h.update(seed);
    h.update([round]);
    let digest: [u8; 32] = h.finalize().into();
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(first).checked_rem(index_count).unwrap_or(0)
}

/// `compute_shuffled_index(index, index_count, seed)` of the consensus specs, with the number
/// of rounds as a parameter (90 in the specs). Errors if `index >= index_count`.
pub fn compute_shuffled_index(
    index: u64,
    index_count: u64,
    seed: &[u8; 32],
    rounds: u8,
) -> Result<u64> {
    Shuffler::new(index_count, seed, rounds)?.shuffled_index(index)
}

/// The swap-or-not shuffle of `index_count` positions under one seed, with the pivots of every
/// round precomputed: each [`Shuffler::shuffled_index`] then costs one SHA-256 per round.
#[derive(Clone, Debug)]
pub struct Shuffler {
    seed: [u8; 32],
    index_count: u64,
    pivots: Vec<u64>,
}

impl Shuffler {
    /// Precomputes the pivots. Errors on an empty list.
    pub fn new(index_count: u64, seed: &[u8; 32], rounds: u8) -> Result<Self> {
        if index_count == 0 {
            return Err(Error::ShuffleIndexOutOfRange { index: 0, index_count });
        }
        let pivots = (0..rounds).map(|r| pivot(seed, r, index_count)).collect();
        Ok(Self { seed: *seed, index_count, pivots })
    }

    /// Number of positions.
    pub fn index_count(&self) -> u64 {
        self.index_count
    }

    /// The position `index` moves to (identical to [`compute_shuffled_index`]).
    pub fn shuffled_index(&self, index: u64) -> Result<u64> {
        let n = self.index_count;
        if index >= n {
            return Err(Error::ShuffleIndexOutOfRange { index, index_count: n });
        }
        let mut index = index;
        let mut buf = [0u8; 37];
        buf[..32].copy_from_slice(&self.seed);
        for (round, &pivot) in (0u8..).zip(&self.pivots) {
            // flip = (pivot + index_count - index) % index_count, without overflow: both
            // pivot and index are below n.
            let flip = if pivot >= index {
                pivot.saturating_sub(index)
            } else {
                n.saturating_sub(index.saturating_sub(pivot))
            };
            let position = index.max(flip);
            buf[32] = round;
            let chunk = u32::try_from(position / 256)
                .map_err(|_| Error::Overflow { context: "shuffle position" })?;
            buf[33..].copy_from_slice(&chunk.to_le_bytes());
            let source: [u8; 32] = Sha256::digest(buf).into();
            let byte = source.get(((position % 256) / 8) as usize).copied().unwrap_or(0);
            if (byte >> (position % 8)) & 1 == 1 {
                index = flip;
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::hex;
    use proptest::prelude::*;

    use super::*;

    fn mapping(seed: [u8; 32], count: u64) -> Vec<u64> {
        (0..count).map(|i| compute_shuffled_index(i, count, &seed, 90).unwrap()).collect()
    }

    #[test]
    fn rejects_out_of_range() {
        assert!(compute_shuffled_index(3, 3, &[0; 32], 90).is_err());
        assert!(compute_shuffled_index(0, 0, &[0; 32], 90).is_err());
        assert_eq!(compute_shuffled_index(0, 1, &[0; 32], 90).unwrap(), 0);
    }

    #[test]
    fn golden_small_vectors() {
        // consensus-spec-tests shuffling vectors (seed, count, mapping).
        assert_eq!(
            mapping(hex!("01b4f6bd5d6a06a7b74a8565ceb4f845afe0ae96a0ac05cf5e86066bf7b538ec"), 10),
            [2, 7, 8, 5, 4, 1, 6, 0, 9, 3]
        );
        assert_eq!(
            mapping(hex!("23bcd11624a07465b1c2fc1a0fe52996daae4bf87b0fb6bed45926096c644843"), 33),
            [
                32, 23, 31, 19, 28, 29, 24, 26, 3, 0, 27, 6, 15, 18, 13, 25, 1, 21, 12, 7, 11, 5,
                22, 8, 20, 17, 16, 30, 10, 2, 9, 14, 4
            ]
        );
    }

    proptest! {
        #[test]
        fn is_a_permutation(seed in any::<[u8; 32]>(), count in 1u64..300) {
            let mut m = mapping(seed, count);
            m.sort_unstable();
            prop_assert_eq!(m, (0..count).collect::<Vec<_>>());
        }
    }
}
