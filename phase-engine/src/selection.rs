//! Prover selection: seeds from the RANDAO mix, the swap-or-not shuffle walked lazily, bounded
//! reputation weighting by acceptance sampling (as `compute_proposer_index`), busy provers
//! skipped.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::{
    config::ReputationBounds,
    error::{Error, Result},
    shuffle::Shuffler,
    signing::{DOMAIN_AGGREGATOR_SELECTION, DOMAIN_AIR_ASSIGNMENT, DOMAIN_PROVER_SELECTION},
    types::{Attempt, ProverIndex, Root, SubBlockIndex},
};

/// A 32-byte selection seed.
pub type Seed = [u8; 32];

/// The seed of a sub-block round:
/// `sha256(DOMAIN_PROVER_SELECTION || randao_mix || block_root || sub_block (u32 LE) || attempt (u32 LE))`.
pub fn selection_seed(
    randao_mix: &Root,
    block_root: &Root,
    sub_block: SubBlockIndex,
    attempt: Attempt,
) -> Seed {
    let mut h = Sha256::new();
    h.update(DOMAIN_PROVER_SELECTION.0);
    h.update(randao_mix);
    h.update(block_root);
    h.update(sub_block.0.to_le_bytes());
    h.update(attempt.0.to_le_bytes());
    h.finalize().into()
}

/// The seed of a block's aggregator group:
/// `sha256(DOMAIN_AGGREGATOR_SELECTION || randao_mix || block_root)`.
pub fn aggregator_seed(randao_mix: &Root, block_root: &Root) -> Seed {
    let mut h = Sha256::new();
    h.update(DOMAIN_AGGREGATOR_SELECTION.0);
    h.update(randao_mix);
    h.update(block_root);
    h.finalize().into()
}

/// The seed of a round's AIR assignment: `sha256(DOMAIN_AIR_ASSIGNMENT || selection_seed)`.
pub fn assignment_seed(selection_seed: &Seed) -> Seed {
    let mut h = Sha256::new();
    h.update(DOMAIN_AIR_ASSIGNMENT.0);
    h.update(selection_seed);
    h.finalize().into()
}

/// `num_provers_selected = min(PROVERS_PER_PROOF, available / 2)`, but at least one when any
/// prover is available (the spec's formula would select nobody out of a single prover and
/// stall the chain).
pub fn selection_size(provers_per_proof: u32, available: u64) -> u64 {
    let half = available / 2;
    let n = half.min(u64::from(provers_per_proof));
    if n == 0 && available > 0 && provers_per_proof > 0 { 1 } else { n }
}

/// Selection weight of a prover with reputation `score`: `base + min(score, base * (max_boost - 1))`,
/// so always within `[base, base * max_boost]`.
pub fn selection_weight(bounds: &ReputationBounds, score: u64) -> u64 {
    let max = bounds.base_weight.saturating_mul(bounds.max_boost.max(1));
    bounds.base_weight.saturating_add(score).min(max)
}

/// Selects up to `count` distinct provers from the shuffled `active` list.
///
/// Walks `i = 0, 1, 2, ...`; the candidate is `active[shuffled(i mod len)]`. A candidate for
/// which `eligible` returns `None` (busy, or otherwise not eligible) is skipped, as is one
/// already selected. Otherwise `eligible` returns its reputation score and, during the first two
/// passes over the list (`i < 2 * len`), the candidate is accepted iff
/// `weight * 255 >= max_weight * random_byte` with `random_byte = sha256(seed || (i / 32) as u64 LE)[i % 32]`
/// (`compute_proposer_index`'s acceptance test); from the third pass on every eligible candidate
/// is accepted, so the walk ends after at most three passes. Returns fewer than `count` only
/// when fewer are eligible. The order of the result is the selection order.
pub fn select_provers<F>(
    active: &[ProverIndex],
    count: u64,
    seed: &Seed,
    rounds: u8,
    bounds: &ReputationBounds,
    eligible: F,
) -> Result<Vec<ProverIndex>>
where
    F: FnMut(ProverIndex) -> Option<u64>,
{
    if active.is_empty() || count == 0 {
        return Ok(Vec::new());
    }
    let shuffler = Shuffler::new(active.len() as u64, seed, rounds)?;
    select_provers_with(active, count, &shuffler, bounds, eligible)
}

/// [`select_provers`] with the shuffle already built: `shuffler` is the shuffle of
/// `active.len()` positions under the selection seed (its [`Shuffler::seed`], also the seed of
/// the acceptance bytes) and its [`Shuffler::rounds`], e.g. built ahead of time with
/// [`Shuffler::from_spec`]. When it carries its whole permutation
/// ([`Shuffler::with_whole_list`]) the walk reads it instead of computing it. The result is
/// [`select_provers`]'s with the same seed and rounds. Errors with
/// [`Error::ShufflerLengthMismatch`] when `active` is not empty, `count` is not 0 and the
/// shuffler is not of `active.len()` positions.
pub fn select_provers_with<F>(
    active: &[ProverIndex],
    count: u64,
    shuffler: &Shuffler,
    bounds: &ReputationBounds,
    eligible: F,
) -> Result<Vec<ProverIndex>>
where
    F: FnMut(ProverIndex) -> Option<u64>,
{
    let len = active.len() as u64;
    if len == 0 || count == 0 {
        return Ok(Vec::new());
    }
    if shuffler.index_count() != len {
        return Err(Error::ShufflerLengthMismatch {
            expected: len,
            index_count: shuffler.index_count(),
        });
    }
    let mut eligible = eligible;
    let seed = shuffler.seed();
    let mut selected = Vec::new();
    let max_weight = selection_weight(bounds, u64::MAX);
    // Chosen, by position in `active` (a position is chosen at most once).
    let mut chosen = vec![false; active.len()];
    let mut random_block: Option<(u64, [u8; 32])> = None;
    let limit = len.saturating_mul(3);
    // Shuffled positions are computed ahead and kept (the walk's later passes over the list,
    // `i >= len`, reuse them). With a table: the whole list at once when the walk is expected
    // to visit a good part of it (the specs' whole-list algorithm is the cheapest per position),
    // otherwise in growing batches (whose walks overlap in the CPU) until a quarter of the list
    // is known, then the whole list. Without a table (huge lists): one at a time. A whole
    // list the shuffler carries (computed ahead of time) is read as it is.
    let tabled = shuffler.has_table();
    let mut positions: Cow<'_, [u64]> = Cow::Borrowed(&[]);
    if let Some(whole) = shuffler.carried_whole_list() {
        positions = Cow::Borrowed(whole);
    } else if tabled && count.saturating_mul(8) >= len {
        positions = Cow::Owned(shuffler.whole_list().unwrap_or_default());
    }
    let mut i = 0u64;
    while (selected.len() as u64) < count && i < limit {
        let k = i.checked_rem(len).unwrap_or(0);
        let known = positions.len() as u64;
        if k >= known {
            if tabled && known >= len / 4 {
                positions = Cow::Owned(shuffler.whole_list().unwrap_or_default());
            } else {
                let grow = if tabled { known.max(64) } else { 1 };
                let end = known.saturating_add(grow).min(len);
                let mut batch: Vec<u64> = (known..end).collect();
                shuffler.shuffle_many(&mut batch)?;
                positions.to_mut().extend(batch);
            }
        }
        let position = usize::try_from(k).ok().and_then(|k| positions.get(k)).copied().unwrap_or(0);
        let Some(&prover) = usize::try_from(position).ok().and_then(|p| active.get(p)) else {
            i = i.saturating_add(1);
            continue;
        };
        let was_chosen = usize::try_from(position).ok().and_then(|p| chosen.get_mut(p));
        let Some(was_chosen) = was_chosen else {
            i = i.saturating_add(1);
            continue;
        };
        if !*was_chosen && let Some(score) = eligible(prover) {
            let accept = if i < len.saturating_mul(2) {
                let block = i / 32;
                let bytes = match random_block {
                    Some((b, bytes)) if b == block => bytes,
                    _ => {
                        let mut h = Sha256::new();
                        h.update(seed);
                        h.update(block.to_le_bytes());
                        let bytes: [u8; 32] = h.finalize().into();
                        random_block = Some((block, bytes));
                        bytes
                    }
                };
                let random_byte = u64::from(bytes.get((i % 32) as usize).copied().unwrap_or(0));
                let weight = selection_weight(bounds, score);
                weight.saturating_mul(255) >= max_weight.saturating_mul(random_byte)
            } else {
                true
            };
            if accept {
                *was_chosen = true;
                selected.push(prover);
            }
        }
        i = i.saturating_add(1);
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn provers(n: u64) -> Vec<ProverIndex> {
        (0..n).map(ProverIndex).collect()
    }

    /// The selection rule of [`select_provers`]' documentation, written out naively: one
    /// `compute_shuffled_index` and one SHA-256 per visited candidate, nothing cached.
    fn reference_selection(
        active: &[ProverIndex],
        count: u64,
        seed: &Seed,
        rounds: u8,
        bounds: &ReputationBounds,
        eligible: impl Fn(ProverIndex) -> Option<u64>,
    ) -> Vec<ProverIndex> {
        let len = active.len() as u64;
        let mut selected: Vec<ProverIndex> = Vec::new();
        let max_weight = selection_weight(bounds, u64::MAX);
        let mut i = 0;
        while len > 0 && (selected.len() as u64) < count && i < 3 * len {
            let position = crate::compute_shuffled_index(i % len, len, seed, rounds).unwrap();
            let prover = active[position as usize];
            if !selected.contains(&prover)
                && let Some(score) = eligible(prover)
            {
                let accept = i >= 2 * len || {
                    let mut h = Sha256::new();
                    h.update(seed);
                    h.update((i / 32).to_le_bytes());
                    let random_byte = u64::from(h.finalize()[(i % 32) as usize]);
                    selection_weight(bounds, score) * 255 >= max_weight * random_byte
                };
                if accept {
                    selected.push(prover);
                }
            }
            i += 1;
        }
        selected
    }

    #[test]
    fn size_rule() {
        assert_eq!(selection_size(200, 0), 0);
        assert_eq!(selection_size(200, 1), 1);
        assert_eq!(selection_size(200, 3), 1);
        assert_eq!(selection_size(200, 10), 5);
        assert_eq!(selection_size(200, 1_000_000), 200);
    }

    #[test]
    fn weights_are_bounded() {
        let b = ReputationBounds { base_weight: 128, max_boost: 2 };
        assert_eq!(selection_weight(&b, 0), 128);
        assert_eq!(selection_weight(&b, 100), 228);
        assert_eq!(selection_weight(&b, 10_000), 256);
    }

    #[test]
    fn reputation_raises_but_bounds_the_chance() {
        let bounds = ReputationBounds { base_weight: 128, max_boost: 2 };
        let active = provers(100);
        let mut boosted = 0u32;
        let mut plain = 0u32;
        for s in 0u8..100 {
            let seed = [s; 32];
            let sel = select_provers(&active, 10, &seed, 90, &bounds, |p| {
                Some(if p.0 < 50 { 1_000 } else { 0 })
            })
            .unwrap();
            boosted += sel.iter().filter(|p| p.0 < 50).count() as u32;
            plain += sel.iter().filter(|p| p.0 >= 50).count() as u32;
        }
        // Expected ratio 2:1; bounded, so the unboosted half is still selected often.
        assert!(boosted > plain, "{boosted} vs {plain}");
        assert!(plain * 4 > boosted, "{boosted} vs {plain}");
    }

    #[test]
    fn prebuilt_shuffler_of_another_size_is_rejected() {
        let bounds = ReputationBounds::default();
        let shuffler = Shuffler::new(11, &[3; 32], 90).unwrap();
        let err = select_provers_with(&provers(10), 4, &shuffler, &bounds, |_| Some(0));
        assert!(matches!(
            err,
            Err(Error::ShufflerLengthMismatch { expected: 10, index_count: 11 })
        ));
        // Nothing to select: the shuffler is not looked at.
        assert!(select_provers_with(&[], 4, &shuffler, &bounds, |_| Some(0)).unwrap().is_empty());
        assert!(
            select_provers_with(&provers(10), 0, &shuffler, &bounds, |_| Some(0))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn prebuilt_shuffler_of_a_large_list_selects_the_same() {
        let bounds = ReputationBounds::default();
        let active = provers(60_000);
        let seed = [9; 32];
        let eligible = |p: ProverIndex| (!p.0.is_multiple_of(5)).then_some(p.0 % 7);
        let plain = select_provers(&active, 200, &seed, 90, &bounds, eligible).unwrap();
        let shuffler = Shuffler::new(60_000, &seed, 90).unwrap().with_whole_list();
        assert!(shuffler.carried_whole_list().is_none());
        let with = select_provers_with(&active, 200, &shuffler, &bounds, eligible).unwrap();
        assert_eq!(with, plain);
        assert_eq!(with.len(), 200);
    }

    proptest! {
        /// `select_provers` follows its documented rule (a naive reference), and a shuffler
        /// built ahead of time (carrying its whole list or not) selects exactly the same,
        /// whatever the count and the busy provers.
        #[test]
        fn prebuilt_shuffler_selects_the_same(
            n in 1u64..1_500,
            count in 0u64..300,
            seed in any::<[u8; 32]>(),
            rounds in 1u8..=90,
            busy_mask in any::<u64>(),
        ) {
            let active = provers(n);
            let bounds = ReputationBounds { base_weight: 64, max_boost: 3 };
            let eligible = |p: ProverIndex| ((busy_mask >> (p.0 % 64)) & 1 == 0).then_some(p.0 % 97);
            let plain = select_provers(&active, count, &seed, rounds, &bounds, eligible).unwrap();
            prop_assert_eq!(
                &plain,
                &reference_selection(&active, count, &seed, rounds, &bounds, eligible)
            );
            let shuffler = Shuffler::new(n, &seed, rounds).unwrap();
            let with = select_provers_with(&active, count, &shuffler, &bounds, eligible).unwrap();
            prop_assert_eq!(&with, &plain);
            let whole = shuffler.with_whole_list();
            prop_assert!(whole.carried_whole_list().is_some());
            let with_whole = select_provers_with(&active, count, &whole, &bounds, eligible).unwrap();
            prop_assert_eq!(&with_whole, &plain);
        }

        #[test]
        fn selection_is_distinct_deterministic_and_skips_busy(
            n in 1u64..200,
            seed in any::<[u8; 32]>(),
            busy_mask in any::<u64>(),
        ) {
            let active = provers(n);
            let bounds = ReputationBounds::default();
            let is_busy = |p: ProverIndex| (busy_mask >> (p.0 % 64)) & 1 == 1;
            let available = active.iter().filter(|p| !is_busy(**p)).count() as u64;
            let count = selection_size(200, available);
            let eligible = |p: ProverIndex| (!is_busy(p)).then_some(p.0 % 3);
            let a = select_provers(&active, count, &seed, 90, &bounds, eligible).unwrap();
            let b = select_provers(&active, count, &seed, 90, &bounds, eligible).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.len() as u64, count);
            prop_assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), a.len());
            prop_assert!(a.iter().all(|p| !is_busy(*p)));
        }
    }
}
