//! AIR assignment: every AIR to `min(redundancy_factor, n)` distinct selected provers, balanced.

use crate::{error::Result, selection::Seed, shuffle::Shuffler, types::AirIndex};

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
    let mut out = vec![Vec::new(); num_provers];
    if num_provers == 0 || num_airs == 0 {
        return Ok(out);
    }
    let n = num_provers as u64;
    let r = u64::from(redundancy.max(1)).min(n);
    let prover_perm = Shuffler::new(n, seed, rounds)?;
    let air_seed = seed.map(|b| !b);
    let air_perm = Shuffler::new(u64::from(num_airs), &air_seed, rounds)?;
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

    proptest! {
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
