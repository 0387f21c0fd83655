//! The consensus specs' swap-or-not shuffle (`compute_shuffled_index`), and a [`Shuffler`] that
//! precomputes the per-round pivots so that shuffled positions can be computed lazily, one
//! candidate at a time, without shuffling a whole list.
//!
//! Every round of the shuffle reads one bit of `sha256(seed || round || position / 256)`, so a
//! list of `n` positions has only `rounds * (n / 256 + 1)` distinct digests — the cost of the
//! consensus specs' whole-list `shuffle_list`. For lists small enough that this table fits in
//! `MEMO_MAX_ENTRIES` (16,384 digests), a [`Shuffler`] memoises each digest the first time a query needs it, so
//! walking many candidates costs at most that many hashes (at most 360 for 1,000 positions,
//! instead of 90 per candidate) while a query still touches only the digests on its own path.
//! Larger lists (1,000,000 provers, where a selection reads a few hundred candidates) keep the
//! plain per-candidate evaluation. Both give exactly [`compute_shuffled_index`].

use std::cell::OnceCell;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Shuffle rounds of the consensus specs (`SHUFFLE_ROUND_COUNT`).
pub const SHUFFLE_ROUND_COUNT: u8 = 90;

// Largest digest table (`rounds * (index_count / 256 + 1)` entries of 32 bytes) a [`Shuffler`]
// memoises: 16,384 entries (about 0.5 MiB), i.e. lists of up to about 46,000 positions at 90
// rounds. Above it each query hashes afresh.
const MEMO_MAX_ENTRIES: u64 = 1 << 14;

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
    // One query: memoising would only cost the table's allocation.
    Shuffler::build(index_count, seed, rounds, false)?.shuffled_index(index)
}

/// The swap-or-not shuffle of `index_count` positions under one seed, with the pivots of every
/// round precomputed: each [`Shuffler::shuffled_index`] then costs at most one SHA-256 per
/// round, and for lists whose digest table fits in `MEMO_MAX_ENTRIES` (16,384 digests) each digest is computed
/// only once across all queries (see the module docs).
#[derive(Clone, Debug)]
pub struct Shuffler {
    seed: [u8; 32],
    index_count: u64,
    pivots: Vec<u64>,
    /// Chunks (256 positions each) per round: `index_count / 256 + 1`.
    chunks: u64,
    /// `memo[round * chunks + chunk]`: `sha256(seed || round || chunk)`, filled on first use;
    /// empty when the table would exceed `MEMO_MAX_ENTRIES` (16,384 digests).
    memo: Vec<OnceCell<[u8; 32]>>,
}

impl Shuffler {
    /// Precomputes the pivots (and prepares the digest memo for small lists). Errors on an
    /// empty list.
    pub fn new(index_count: u64, seed: &[u8; 32], rounds: u8) -> Result<Self> {
        Self::build(index_count, seed, rounds, true)
    }

    fn build(index_count: u64, seed: &[u8; 32], rounds: u8, memoise: bool) -> Result<Self> {
        if index_count == 0 {
            return Err(Error::ShuffleIndexOutOfRange { index: 0, index_count });
        }
        let pivots = (0..rounds).map(|r| pivot(seed, r, index_count)).collect();
        let chunks = (index_count / 256).saturating_add(1);
        let entries = chunks.saturating_mul(u64::from(rounds));
        let memo = if memoise && entries <= MEMO_MAX_ENTRIES {
            let len = usize::try_from(entries)
                .map_err(|_| Error::Overflow { context: "shuffle memo size" })?;
            vec![OnceCell::new(); len]
        } else {
            Vec::new()
        };
        Ok(Self { seed: *seed, index_count, pivots, chunks, memo })
    }

    /// `sha256(seed || round || chunk (u32 LE))`, from the memo when there is one.
    fn source(&self, round: u8, chunk: u32) -> [u8; 32] {
        let hash = || {
            let mut buf = [0u8; 37];
            buf[..32].copy_from_slice(&self.seed);
            buf[32] = round;
            buf[33..].copy_from_slice(&chunk.to_le_bytes());
            <[u8; 32]>::from(Sha256::digest(buf))
        };
        let slot = u64::from(round)
            .checked_mul(self.chunks)
            .and_then(|base| base.checked_add(u64::from(chunk)))
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.memo.get(i));
        match slot {
            Some(cell) => *cell.get_or_init(hash),
            None => hash(),
        }
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
        for (round, &pivot) in (0u8..).zip(&self.pivots) {
            // flip = (pivot + index_count - index) % index_count, without overflow: both
            // pivot and index are below n.
            let flip = if pivot >= index {
                pivot.saturating_sub(index)
            } else {
                n.saturating_sub(index.saturating_sub(pivot))
            };
            let position = index.max(flip);
            let chunk = u32::try_from(position / 256)
                .map_err(|_| Error::Overflow { context: "shuffle position" })?;
            let source = self.source(round, chunk);
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

    #[test]
    fn memo_only_for_small_tables() {
        assert_eq!(Shuffler::new(1_000, &[0; 32], 90).unwrap().memo.len(), 4 * 90);
        assert!(Shuffler::new(1_000_000, &[0; 32], 90).unwrap().memo.is_empty());
        assert!(Shuffler::build(1_000, &[0; 32], 90, false).unwrap().memo.is_empty());
    }

    proptest! {
        /// The memoised walk equals the specs' per-index `compute_shuffled_index`, whatever
        /// order the queries come in (the memo is filled by earlier queries).
        #[test]
        fn memoised_equals_compute_shuffled_index(
            seed in any::<[u8; 32]>(),
            count in 1u64..3_000,
            rounds in 1u8..=90,
            queries in proptest::collection::vec(any::<u64>(), 1..64),
        ) {
            let s = Shuffler::new(count, &seed, rounds).unwrap();
            prop_assert!(!s.memo.is_empty());
            for q in queries {
                let i = q % count;
                prop_assert_eq!(
                    s.shuffled_index(i).unwrap(),
                    compute_shuffled_index(i, count, &seed, rounds).unwrap()
                );
            }
        }

        /// The whole list, memoised, is the specs' mapping.
        #[test]
        fn memoised_whole_list_equals_mapping(seed in any::<[u8; 32]>(), count in 1u64..700) {
            let s = Shuffler::new(count, &seed, 90).unwrap();
            let memoised: Vec<u64> = (0..count).map(|i| s.shuffled_index(i).unwrap()).collect();
            prop_assert_eq!(memoised, mapping(seed, count));
        }

        #[test]
        fn is_a_permutation(seed in any::<[u8; 32]>(), count in 1u64..300) {
            let mut m = mapping(seed, count);
            m.sort_unstable();
            prop_assert_eq!(m, (0..count).collect::<Vec<_>>());
        }
    }
}
