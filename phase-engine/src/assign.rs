//! AIR assignment: every AIR to `min(redundancy_factor, n)` distinct selected provers, balanced.

use crate::{
    error::{Error, Result},
    selection::Seed,
    shuffle::{ShuffleSpec, Shuffler},
    types::AirIndex,
};

/// Assigns `num_airs` AIRs to `num_provers` selected provers (by position in the selection).
/// Returns, per prover position, its AIRs ascending.
///
/// With `r = min(redundancy, num_provers)`, the `num_airs * r` slots are dealt round-robin:
/// slot `s` holds AIR `air_perm[s / r]` and goes to prover position `prover_perm[s mod n]`, where
/// both permutations are the swap-or-not shuffle: provers under `seed` (the round's
/// [`crate::assignment_seed`]), AIRs under its byte-wise complement. Consecutive slots go to
/// distinct provers (`r <= n`), so an AIR's `r`
/// copies land on `r` distinct provers, and every prover holds `ceil(num_airs * r / n)` or one
/// less.
pub fn assign_airs(
    num_airs: u32,
    num_provers: usize,
    redundancy: u32,
    seed: &Seed,
    rounds: u8,
) -> Result<Vec<Vec<AirIndex>>> {
    let Some((provers, airs)) = assignment_shuffle_specs(num_airs, num_provers, seed, rounds)
    else {
        return Ok(vec![Vec::new(); num_provers]);
    };
    let prover_perm = Shuffler::from_spec(provers)?;
    let air_perm = Shuffler::from_spec(airs)?;
    assign_airs_with(num_airs, num_provers, redundancy, &prover_perm, &air_perm)
}

/// The two shuffles [`assign_airs`] uses: the provers' (`num_provers` positions under `seed`)
/// and the AIRs' (`num_airs` positions under the byte-wise complement of `seed`). `None` when
/// there is nothing to assign (no prover or no AIR): then no shuffle is used.
pub(crate) fn assignment_shuffle_specs(
    num_airs: u32,
    num_provers: usize,
    seed: &Seed,
    rounds: u8,
) -> Option<(ShuffleSpec, ShuffleSpec)> {
    if num_provers == 0 || num_airs == 0 {
        return None;
    }
    let provers = ShuffleSpec { index_count: num_provers as u64, seed: *seed, rounds };
    let airs = ShuffleSpec { index_count: u64::from(num_airs), seed: seed.map(|b| !b), rounds };
    Some((provers, airs))
}

/// [`assign_airs`] with both shuffles already built (e.g. ahead of time with
/// [`Shuffler::from_spec`]): `prover_perm` of `num_provers` positions under the round's
/// assignment seed, `air_perm` of `num_airs` positions under its byte-wise complement, both with
/// the same rounds. The result is [`assign_airs`]'s with that seed and rounds. Errors with
/// [`Error::ShufflerLengthMismatch`] when there is something to assign and a shuffler is of
/// another size; with no prover or no AIR the shufflers are not looked at.
pub fn assign_airs_with(
    num_airs: u32,
    num_provers: usize,
    redundancy: u32,
    prover_perm: &Shuffler,
    air_perm: &Shuffler,
) -> Result<Vec<Vec<AirIndex>>> {
    if num_provers == 0 || num_airs == 0 {
        return Ok(vec![Vec::new(); num_provers]);
    }
    for (shuffler, expected) in [(prover_perm, num_provers as u64), (air_perm, u64::from(num_airs))]
    {
        if shuffler.index_count() != expected {
            return Err(Error::ShufflerLengthMismatch {
                expected,
                index_count: shuffler.index_count(),
            });
        }
    }
    let mut out = vec![Vec::new(); num_provers];
    let n = num_provers as u64;
    let r = u64::from(redundancy.max(1)).min(n);
    let slots = u64::from(num_airs).saturating_mul(r);
    for s in 0..slots {
        let air = air_perm.shuffled_index(s.checked_div(r).unwrap_or(0))?;
        let prover = prover_perm.shuffled_index(s.checked_rem(n).unwrap_or(0))?;
        if let Some(list) = usize::try_from(prover).ok().and_then(|p| out.get_mut(p)) {
            list.push(AirIndex(u32::try_from(air).unwrap_or(u32::MAX)));
        }
    }
    for list in &mut out {
        list.sort_unstable();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn prebuilt_shufflers_of_other_sizes_are_rejected() {
        let p = Shuffler::new(5, &[1; 32], 90).unwrap();
        let a = Shuffler::new(8, &[!1; 32], 90).unwrap();
        assert_eq!(
            assign_airs_with(8, 5, 2, &p, &a).unwrap(),
            assign_airs(8, 5, 2, &[1; 32], 90).unwrap()
        );
        assert!(matches!(
            assign_airs_with(8, 6, 2, &p, &a),
            Err(Error::ShufflerLengthMismatch { expected: 6, index_count: 5 })
        ));
        assert!(matches!(
            assign_airs_with(9, 5, 2, &p, &a),
            Err(Error::ShufflerLengthMismatch { expected: 9, index_count: 8 })
        ));
        assert_eq!(assign_airs_with(0, 3, 2, &p, &a).unwrap(), vec![Vec::new(); 3]);
        assert!(assign_airs_with(8, 0, 2, &p, &a).unwrap().is_empty());
        assert_eq!(assignment_shuffle_specs(0, 3, &[1; 32], 90), None);
        assert_eq!(assignment_shuffle_specs(3, 0, &[1; 32], 90), None);
    }

    /// The dealing of [`assign_airs`]' documentation, written out naively: slot `s` holds AIR
    /// `shuffled(s / r)` under the complemented seed and goes to prover position
    /// `shuffled(s mod n)` under the seed.
    fn reference_assignment(
        num_airs: u32,
        n: usize,
        redundancy: u32,
        seed: &Seed,
        rounds: u8,
    ) -> Vec<Vec<AirIndex>> {
        let shuffled = |i: u64, count: u64, seed: &Seed| {
            crate::compute_shuffled_index(i, count, seed, rounds).unwrap()
        };
        let r = u64::from(redundancy.max(1)).min(n as u64);
        let air_seed = seed.map(|b| !b);
        let mut out = vec![Vec::new(); n];
        for s in 0..u64::from(num_airs) * r {
            let air = shuffled(s / r, u64::from(num_airs), &air_seed);
            out[shuffled(s % n as u64, n as u64, seed) as usize].push(AirIndex(air as u32));
        }
        out.iter_mut().for_each(|l| l.sort_unstable());
        out
    }

    proptest! {
        /// `assign_airs` deals as its documentation says (a naive reference on
        /// `compute_shuffled_index`), and shufflers built ahead of time from
        /// `assignment_shuffle_specs` (carrying their whole lists or not) deal the same.
        #[test]
        fn prebuilt_shufflers_assign_the_same(
            num_airs in 1u32..300,
            n in 1usize..260,
            redundancy in 1u32..5,
            seed in any::<[u8; 32]>(),
            rounds in 1u8..=90,
        ) {
            let plain = assign_airs(num_airs, n, redundancy, &seed, rounds).unwrap();
            prop_assert_eq!(&plain, &reference_assignment(num_airs, n, redundancy, &seed, rounds));
            let (ps, airs) = assignment_shuffle_specs(num_airs, n, &seed, rounds).unwrap();
            prop_assert_eq!(ps.index_count, n as u64);
            prop_assert_eq!(airs.index_count, u64::from(num_airs));
            let p = Shuffler::from_spec(ps).unwrap();
            let a = Shuffler::from_spec(airs).unwrap();
            prop_assert_eq!(&assign_airs_with(num_airs, n, redundancy, &p, &a).unwrap(), &plain);
            let (p, a) = (p.with_whole_list(), a.with_whole_list());
            prop_assert_eq!(&assign_airs_with(num_airs, n, redundancy, &p, &a).unwrap(), &plain);
        }

        #[test]
        fn every_air_exactly_r_times_on_distinct_provers_balanced(
            num_airs in 1u32..64,
            n in 1usize..40,
            redundancy in 1u32..5,
            seed in any::<[u8; 32]>(),
        ) {
            let a = assign_airs(num_airs, n, redundancy, &seed, 90).unwrap();
            prop_assert_eq!(&a, &assign_airs(num_airs, n, redundancy, &seed, 90).unwrap());
            let r = (redundancy as usize).min(n);
            for air in 0..num_airs {
                let holders = a.iter().filter(|l| l.contains(&AirIndex(air))).count();
                prop_assert_eq!(holders, r);
            }
            for list in &a {
                // No AIR twice for the same prover.
                prop_assert_eq!(list.iter().collect::<BTreeSet<_>>().len(), list.len());
            }
            let total = num_airs as usize * r;
            let hi = total.div_ceil(n);
            prop_assert!(a.iter().all(|l| l.len() == hi || l.len() + 1 == hi));
        }
    }
}
