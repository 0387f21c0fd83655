//! T2, partial proofs: the partials that count (the earliest valid one of each assigned AIR of a
//! prover that did not decline, and the first valid ones for the open slots of a declined AIR),
//! the missing partials of each prover, and the T2 rules of a round not finalised in T2.

use phase_engine::{AirIndex, Phase, ProverIndex, RoundOutcome, UnixMillis, ValidatorIndex};

use super::counter::{Counter, ValidatorTally};
use super::provers::Provers;
use crate::error::{Error, Result};
use crate::ledger::Account;
use crate::table::Rule;

/// A partial proof that counts (assigned to a prover that did not decline, or the first valid
/// ones for the open slots of a declined AIR), with its including validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Counted {
    pub(super) author: ProverIndex,
    pub(super) air: AirIndex,
    pub(super) validator: ValidatorIndex,
}

/// The partials of a round that count, ascending (by author, then AIR); records in `provers`
/// which provers participate and how many of their assigned AIRs each left without a partial.
pub(super) fn counted_partials(
    round: &RoundOutcome,
    provers: &mut Provers,
) -> Result<Vec<Counted>> {
    // Earliest valid partial of each (author, AIR) that arrived by the end of T2: sorted by
    // (author, AIR, arrival, validator), the first of each (author, AIR).
    let mut partials: Vec<(ProverIndex, AirIndex, UnixMillis, ValidatorIndex)> = round
        .partials
        .iter()
        .filter(|r| r.inclusion.phase <= Phase::T2)
        .map(|r| (r.prover, r.air, r.inclusion.arrived_at, r.inclusion.validator))
        .collect();
    partials.sort_unstable();
    partials.dedup_by(|next, kept| (next.0, next.1) == (kept.0, kept.1));

    let mut counted: Vec<Counted> = Vec::with_capacity(partials.len());
    // AIRs of declined assignments, once per decline: the open slots.
    let mut open: Vec<AirIndex> = Vec::new();
    // Provers ascending, their AIRs ascending: one merge pass over the sorted partials.
    let mut cursor = partials.iter().peekable();
    for (i, p) in provers.ids.iter().enumerate() {
        let Some(s) = provers.state.get_mut(i) else { continue };
        let airs = provers.airs.get(s.airs_from..s.airs_to).unwrap_or_default();
        if s.declined {
            open.extend_from_slice(airs);
            continue;
        }
        for &air in airs {
            while cursor.next_if(|x| (x.0, x.1) < (*p, air)).is_some() {}
            match cursor.peek() {
                Some(&&(author, a, _, validator)) if (author, a) == (*p, air) => {
                    counted.push(Counted { author, air, validator });
                    s.participant = true;
                }
                _ => {
                    let Some(missing) = s.missing.checked_add(1) else {
                        return Err(Error::Overflow { context: "missing partials" });
                    };
                    s.missing = missing;
                }
            }
        }
    }
    if !open.is_empty() {
        open.sort_unstable();
        let mut candidates: Vec<(UnixMillis, ProverIndex, ValidatorIndex)> = Vec::new();
        for run in open.chunk_by(|a, b| a == b) {
            let (Some(&air), slots) = (run.first(), run.len()) else { continue };
            // The first valid partials of the AIR by provers that neither hold it nor declined.
            candidates.clear();
            candidates.extend(
                partials
                    .iter()
                    .filter(|x| x.1 == air && !provers.holds(x.0, air) && !provers.declined(x.0))
                    .map(|x| (x.2, x.0, x.3)),
            );
            candidates.sort_unstable();
            for &(_, author, validator) in candidates.iter().take(slots) {
                counted.push(Counted { author, air, validator });
                if let Some(s) = provers.get_mut(author) {
                    s.participant = true;
                }
            }
        }
        counted.sort_unstable();
    }
    Ok(counted)
}

/// Applies the T2 rules: each counted partial (its author and its including validator) and each
/// missing partial. `validators` is an empty tally, left empty.
pub(super) fn partial_rules(
    c: &mut Counter,
    provers: &Provers,
    counted: &[Counted],
    validators: &mut ValidatorTally,
) {
    for k in counted {
        c.prover(Phase::T2, Rule::RewardT2Prover, k.author);
        validators.push(k.validator);
    }
    c.validators(Phase::T2, Rule::RewardT2Validator, validators);
    for (p, s) in provers.iter() {
        c.add(Phase::T2, Rule::PenaltyT2Prover, Account::Prover(p), s.missing);
    }
}
