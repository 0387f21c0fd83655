//! The consensus specs' swap-or-not shuffle (`compute_shuffled_index`), and a [`Shuffler`] that
//! precomputes the per-round pivots so that shuffled positions can be computed lazily, one
//! candidate at a time, without shuffling a whole list.
//!
//! Every round of the shuffle reads one bit of `sha256(seed || round || position / 256)`, so a
//! list of `n` positions has only `rounds * (n / 256 + 1)` distinct digests — the cost of the
//! consensus specs' whole-list `shuffle_list`. For lists small enough that this table fits in
//! `MEMO_MAX_ENTRIES` (16,384 digests), a [`Shuffler`] computes the whole table up front as a
//! table of bits (at most 360 hashes for 1,000 positions, instead of 90 per candidate), and each
//! query is then a walk of table lookups, without hashing or division.
//! Larger lists (1,000,000 provers, where a selection reads a few hundred candidates) keep the
//! plain per-candidate evaluation. Both give exactly [`compute_shuffled_index`].

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What determines a shuffle: the list size, the seed and the number of rounds. Two
/// [`Shuffler`]s with equal specs give the same positions; a spec is the key under which
/// [`crate::Engine::prepare_shuffler`] keeps a shuffler built ahead of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ShuffleSpec {
    /// Number of positions (at least 1 for a shuffler to exist).
    pub index_count: u64,
    /// The seed.
    pub seed: [u8; 32],
    /// Number of rounds ([`SHUFFLE_ROUND_COUNT`] in the specs).
    pub rounds: u8,
}

/// Shuffle rounds of the consensus specs (`SHUFFLE_ROUND_COUNT`).
pub const SHUFFLE_ROUND_COUNT: u8 = 90;

// Largest digest table (`rounds * (index_count / 256 + 1)` entries of 32 bytes) a [`Shuffler`]
// precomputes: 16,384 entries (about 0.5 MiB), i.e. lists of up to about 46,000 positions at 90
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
/// round. For lists whose digest table fits in `MEMO_MAX_ENTRIES` (16,384 digests) the whole
/// table is computed up front (the cost of the specs' whole-list `shuffle_list`) as a bit table,
/// and a query costs no hash at all (see the module docs).
///
/// A shuffler is a pure function of its [`ShuffleSpec`], so it can be built ahead of time (on
/// another thread) and handed to the [`crate::Engine`] with [`crate::Engine::prepare_shuffler`].
/// [`Shuffler::with_whole_list`] also computes and carries the whole permutation, which the
/// selection then reads instead of computing it.
#[derive(Clone, Debug)]
pub struct Shuffler {
    seed: [u8; 32],
    index_count: u64,
    rounds: u8,
    pivots: Vec<u64>,
    /// The bit of every position in every round, round-major: round `r`'s bits are the
    /// `words` 64-bit words from `r * words`, position `p`'s bit is bit `p % 64` of word
    /// `p / 64` (little-endian words of the digests `sha256(seed || r || chunk)`, which is the
    /// specs' `byte[(p % 256) / 8] >> (p % 8)`). Empty when the table would exceed
    /// `MEMO_MAX_ENTRIES`.
    bits: Vec<u64>,
    /// Words per round: 4 per chunk of 256 positions.
    words: usize,
    /// `shuffled_index(i)` for every `i`, when computed by [`Shuffler::with_whole_list`]
    /// (`index_count` entries).
    whole: Option<Vec<u64>>,
}

impl Shuffler {
    /// Precomputes the pivots (and the digest table for small lists). Errors on an empty list.
    pub fn new(index_count: u64, seed: &[u8; 32], rounds: u8) -> Result<Self> {
        Self::build(index_count, seed, rounds, true)
    }

    /// The shuffler of `spec`: the same as [`Shuffler::new`] with its fields. Errors on an
    /// empty list.
    pub fn from_spec(spec: ShuffleSpec) -> Result<Self> {
        Self::new(spec.index_count, &spec.seed, spec.rounds)
    }

    /// What determines this shuffle (list size, seed, rounds).
    pub fn spec(&self) -> ShuffleSpec {
        ShuffleSpec { index_count: self.index_count, seed: self.seed, rounds: self.rounds }
    }

    /// The seed.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// Number of rounds.
    pub fn rounds(&self) -> u8 {
        self.rounds
    }

    /// This shuffler carrying its whole permutation (`shuffled_index(i)` for every `i`), the
    /// specs' whole-list algorithm over the digest table: queries then read the list. Unchanged
    /// for lists too large for a digest table (above about 46,000 positions at 90 rounds),
    /// whose selection reads only a few candidates.
    #[must_use]
    pub fn with_whole_list(mut self) -> Self {
        if self.whole.is_none() {
            self.whole = self.whole_list();
        }
        self
    }

    /// The whole permutation, when carried (see [`Shuffler::with_whole_list`]).
    pub fn carried_whole_list(&self) -> Option<&[u64]> {
        self.whole.as_deref()
    }

    fn build(index_count: u64, seed: &[u8; 32], rounds: u8, memoise: bool) -> Result<Self> {
        if index_count == 0 {
            return Err(Error::ShuffleIndexOutOfRange { index: 0, index_count });
        }
        let pivots = (0..rounds).map(|r| pivot(seed, r, index_count)).collect();
        let chunks = (index_count / 256).saturating_add(1);
        let entries = chunks.saturating_mul(u64::from(rounds));
        let mut shuffler = Self {
            seed: *seed,
            index_count,
            rounds,
            pivots,
            bits: Vec::new(),
            words: 0,
            whole: None,
        };
        if memoise && entries <= MEMO_MAX_ENTRIES {
            let chunks = u32::try_from(chunks)
                .map_err(|_| Error::Overflow { context: "shuffle table size" })?;
            let mut bits =
                Vec::with_capacity(usize::try_from(entries.saturating_mul(4)).unwrap_or(0));
            for round in 0..rounds {
                for chunk in 0..chunks {
                    let digest = shuffler.source(round, chunk);
                    bits.extend(digest.chunks_exact(8).map(|w| {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(w);
                        u64::from_le_bytes(b)
                    }));
                }
            }
            shuffler.words = usize::try_from(chunks)
                .ok()
                .and_then(|c| c.checked_mul(4))
                .ok_or(Error::Overflow { context: "shuffle table size" })?;
            shuffler.bits = bits;
        }
        Ok(shuffler)
    }

    /// `sha256(seed || round || chunk (u32 LE))`.
    fn source(&self, round: u8, chunk: u32) -> [u8; 32] {
        let mut buf = [0u8; 37];
        let (seed, rest) = buf.split_at_mut(32);
        seed.copy_from_slice(&self.seed);
        let (r, c) = rest.split_at_mut(1);
        r.copy_from_slice(&[round]);
        c.copy_from_slice(&chunk.to_le_bytes());
        <[u8; 32]>::from(Sha256::digest(buf))
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
        if let Some(&position) =
            self.whole.as_deref().and_then(|w| usize::try_from(index).ok().and_then(|i| w.get(i)))
        {
            return Ok(position);
        }
        if !self.bits.is_empty() {
            return Ok(self.table_walk(index));
        }
        let mut index = index;
        for (round, &pivot) in (0u8..).zip(&self.pivots) {
            let flip = Self::flip(pivot, index, n);
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

    /// `(pivot + index_count - index) % index_count` without overflow, division or branch:
    /// both `pivot` and `index` are below `n`.
    #[inline(always)]
    fn flip(pivot: u64, index: u64, n: u64) -> u64 {
        let wrap = u64::from(pivot < index).wrapping_neg() & n;
        pivot.wrapping_sub(index).wrapping_add(wrap)
    }

    /// One round of the walk over the bit table, without branches (the bit is random, so a
    /// branch would be mispredicted half the time).
    #[inline(always)]
    fn table_step(bits: &[u64], pivot: u64, index: u64, n: u64) -> u64 {
        let flip = Self::flip(pivot, index, n);
        let position = index.max(flip);
        let word = bits.get((position / 64) as usize).copied().unwrap_or(0);
        let take = ((word >> (position % 64)) & 1).wrapping_neg();
        (flip & take) | (index & !take)
    }

    /// The walk over the bit table (`index < index_count`, table present).
    fn table_walk(&self, mut index: u64) -> u64 {
        let n = self.index_count;
        for (&pivot, bits) in self.pivots.iter().zip(self.bits.chunks_exact(self.words.max(1))) {
            index = Self::table_step(bits, pivot, index, n);
        }
        index
    }

    /// `shuffled_index(i)` for every `i` of the list at once, computed with the table (`None`
    /// without one; the carried list is not consulted): the specs' whole-list algorithm (`shuffle_list` run backwards, rounds from last to
    /// first, each round swapping the mirrored pairs of `[0, pivot]` and of `(pivot, n)`), half
    /// a swap per position and round, without branches on the random bits.
    pub(crate) fn whole_list(&self) -> Option<Vec<u64>> {
        if !self.has_table() {
            return None;
        }
        let n = self.index_count;
        let mut list: Vec<u64> = (0..n).collect();
        let rounds = self.pivots.iter().zip(self.bits.chunks_exact(self.words.max(1))).rev();
        for (&pivot, bits) in rounds {
            let bit = |j: u64| {
                let word = bits.get((j / 64) as usize).copied().unwrap_or(0);
                ((word >> (j % 64)) & 1).wrapping_neg()
            };
            let pivot_len = usize::try_from(pivot).ok()?.checked_add(1)?;
            let len = list.len();
            let (head, tail) = list.split_at_mut(pivot_len.min(len));
            // Pairs (i, pivot - i) of [0, pivot], and (pivot + 1 + k, n - 1 - k) of (pivot, n):
            // the bit is read at the larger position, the second of each pair.
            for (segment, last) in [(head, pivot), (tail, n.wrapping_sub(1))] {
                let half = segment.len() / 2;
                let (left, right) = segment.split_at_mut(half);
                let mut j = last;
                for (a, b) in left.iter_mut().zip(right.iter_mut().rev()) {
                    let swap = (*a ^ *b) & bit(j);
                    *a ^= swap;
                    *b ^= swap;
                    j = j.wrapping_sub(1);
                }
            }
        }
        Some(list)
    }

    /// Whether queries walk a precomputed table (cheap enough to compute ahead in batches).
    pub(crate) fn has_table(&self) -> bool {
        !self.bits.is_empty()
    }

    /// Replaces every index of `indices` by its shuffled position, as
    /// [`Shuffler::shuffled_index`] does one at a time. With a table the walks advance round by
    /// round over the whole batch, so that the independent walks overlap in the CPU.
    pub(crate) fn shuffle_many(&self, indices: &mut [u64]) -> Result<()> {
        let n = self.index_count;
        if let Some(&index) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::ShuffleIndexOutOfRange { index, index_count: n });
        }
        if self.whole.is_some() || !self.has_table() {
            for i in indices.iter_mut() {
                *i = self.shuffled_index(*i)?;
            }
            return Ok(());
        }
        for (&pivot, bits) in self.pivots.iter().zip(self.bits.chunks_exact(self.words.max(1))) {
            for i in indices.iter_mut() {
                *i = Self::table_step(bits, pivot, *i, n);
            }
        }
        Ok(())
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
        assert_eq!(Shuffler::new(1_000, &[0; 32], 90).unwrap().bits.len(), 4 * 4 * 90);
        assert!(Shuffler::new(1_000_000, &[0; 32], 90).unwrap().bits.is_empty());
        assert!(Shuffler::build(1_000, &[0; 32], 90, false).unwrap().bits.is_empty());
    }

    #[test]
    fn spec_constructor_checks_and_large_lists_carry_nothing() {
        let empty = ShuffleSpec { index_count: 0, seed: [0; 32], rounds: 90 };
        assert!(Shuffler::from_spec(empty).is_err());
        let large = ShuffleSpec { index_count: 1_000_000, seed: [7; 32], rounds: 90 };
        let s = Shuffler::from_spec(large).unwrap().with_whole_list();
        assert!(s.carried_whole_list().is_none());
        assert_eq!(s.spec(), large);
        assert_eq!(
            s.shuffled_index(123_456).unwrap(),
            compute_shuffled_index(123_456, 1_000_000, &[7; 32], 90).unwrap()
        );
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
            prop_assert!(!s.bits.is_empty());
            for q in queries {
                let i = q % count;
                prop_assert_eq!(
                    s.shuffled_index(i).unwrap(),
                    compute_shuffled_index(i, count, &seed, rounds).unwrap()
                );
            }
        }

        /// A batch gives what the queries give one by one, with a table and without.
        #[test]
        fn batches_equal_single_queries(
            seed in any::<[u8; 32]>(),
            count in 1u64..2_000,
            queries in proptest::collection::vec(any::<u64>(), 0..80),
        ) {
            for s in [Shuffler::new(count, &seed, 90).unwrap(), Shuffler::build(count, &seed, 90, false).unwrap()] {
                let mut batch: Vec<u64> = queries.iter().map(|q| q % count).collect();
                let single: Vec<u64> = batch.iter().map(|&i| s.shuffled_index(i).unwrap()).collect();
                s.shuffle_many(&mut batch).unwrap();
                prop_assert_eq!(batch, single);
            }
        }

        /// The whole-list algorithm gives every query's answer.
        #[test]
        fn whole_list_equals_mapping(seed in any::<[u8; 32]>(), count in 1u64..1_500, rounds in 1u8..=90) {
            let s = Shuffler::new(count, &seed, rounds).unwrap();
            let single: Vec<u64> = (0..count).map(|i| s.shuffled_index(i).unwrap()).collect();
            prop_assert_eq!(s.whole_list().unwrap(), single);
            prop_assert!(Shuffler::build(count, &seed, rounds, false).unwrap().whole_list().is_none());
        }

        /// The whole list, memoised, is the specs' mapping.
        #[test]
        fn memoised_whole_list_equals_mapping(seed in any::<[u8; 32]>(), count in 1u64..700) {
            let s = Shuffler::new(count, &seed, 90).unwrap();
            let memoised: Vec<u64> = (0..count).map(|i| s.shuffled_index(i).unwrap()).collect();
            prop_assert_eq!(memoised, mapping(seed, count));
        }

        /// A shuffler built from a spec is `Shuffler::new`'s: same spec, same position for every
        /// index, same whole list; carrying the whole list changes no answer.
        #[test]
        fn from_spec_equals_new(seed in any::<[u8; 32]>(), count in 1u64..1_200, rounds in 1u8..=90) {
            let spec = ShuffleSpec { index_count: count, seed, rounds };
            let built = Shuffler::new(count, &seed, rounds).unwrap();
            let from = Shuffler::from_spec(spec).unwrap();
            prop_assert_eq!(built.spec(), spec);
            prop_assert_eq!(from.spec(), spec);
            prop_assert_eq!(from.seed(), &seed);
            prop_assert_eq!(from.rounds(), rounds);
            prop_assert!(from.carried_whole_list().is_none());
            let carrying = from.clone().with_whole_list();
            prop_assert_eq!(carrying.spec(), spec);
            let single: Vec<u64> = (0..count).map(|i| built.shuffled_index(i).unwrap()).collect();
            let from_single: Vec<u64> = (0..count).map(|i| from.shuffled_index(i).unwrap()).collect();
            let carried_single: Vec<u64> =
                (0..count).map(|i| carrying.shuffled_index(i).unwrap()).collect();
            prop_assert_eq!(&from_single, &single);
            prop_assert_eq!(&carried_single, &single);
            prop_assert_eq!(carrying.carried_whole_list(), Some(single.as_slice()));
            prop_assert_eq!(from.whole_list(), built.whole_list());
            let mut batch: Vec<u64> = (0..count).rev().collect();
            carrying.shuffle_many(&mut batch).unwrap();
            prop_assert_eq!(batch, single.iter().rev().copied().collect::<Vec<_>>());
            prop_assert!(carrying.shuffled_index(count).is_err());
        }

        #[test]
        fn is_a_permutation(seed in any::<[u8; 32]>(), count in 1u64..300) {
            let mut m = mapping(seed, count);
            m.sort_unstable();
            prop_assert_eq!(m, (0..count).collect::<Vec<_>>());
        }
    }
}
