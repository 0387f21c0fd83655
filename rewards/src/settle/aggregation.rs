//! T3, T4, T5: aggregation and its fallbacks. Each phase reached penalises the provers that had
//! work and did not participate; the finalising one applies the rules of its full proofs
//! (submitters, including validators, reuse of counted partials and partials not reused).

use phase_engine::{FullProofRecord, PartRef, Phase, ProverIndex, RoundOutcome};

use super::counter::{Counter, ValidatorTally};
use super::partial::Counted;
use super::provers::Provers;
use crate::error::{Error, Result};
use crate::ledger::Account;
use crate::table::AggregationRules;

/// Applies the rules of every aggregation phase the round reached (up to its finalising phase,
/// or all three when it did not finalise); returns the divisor for averaged rules: the number of
/// valid full proofs of the finalising phase, or 1.
pub(super) fn aggregation_phases(
    c: &mut Counter,
    round: &RoundOutcome,
    provers: &Provers,
    proofs: &[&FullProofRecord],
    counted: &[Counted],
) -> Result<u64> {
    let last = round.finalized_in.unwrap_or(Phase::T5);
    for phase in [Phase::T3, Phase::T4, Phase::T5].into_iter().filter(|p| *p <= last) {
        let Some(rules) = AggregationRules::of(phase) else { continue };
        let finalizing = round.finalized_in == Some(phase);
        for (p, s) in provers.iter() {
            let submitted = finalizing && s.submitted;
            let has_work = s.airs_to > s.airs_from;
            if !s.declined && has_work && !s.participant && !submitted {
                c.prover(phase, rules.non_participation, p);
            }
        }
        if !finalizing {
            continue;
        }
        aggregation_rules(c, phase, rules, proofs, counted)?;
        return u64::try_from(proofs.len()).map_err(|_| Error::Overflow { context: "proof count" });
    }
    Ok(1)
}

/// What the full proofs of an aggregation phase did with one author's counted partials.
#[derive(Clone, Copy, Debug)]
struct AuthorTally {
    author: ProverIndex,
    /// Its counted partials.
    partials: u64,
    /// Valid full proofs it submitted (at most one: one per submitter).
    submitted: u64,
    /// Its counted partials reused by another prover's full proof, summed over the proofs.
    reused: u64,
}

/// The rules of the full proofs of the finalising aggregation phase: each submitter, each
/// including validator, each reused partial (for the reusing and the reused prover), and each
/// counted partial that a full proof of another prover did not reuse.
fn aggregation_rules(
    c: &mut Counter,
    phase: Phase,
    rules: AggregationRules,
    proofs: &[&FullProofRecord],
    counted: &[Counted],
) -> Result<()> {
    let overflow = || Error::Overflow { context: "rule count" };
    let reuse_overflow = || Error::Overflow { context: "reuse" };
    // `counted` is ascending by author, one entry per (author, AIR): tally each author's run.
    let mut tallies: Vec<AuthorTally> = Vec::new();
    let mut tally_of: Vec<usize> = Vec::with_capacity(counted.len());
    for k in counted {
        match tallies.last_mut() {
            Some(t) if t.author == k.author => {
                t.partials = t.partials.checked_add(1).ok_or_else(overflow)?;
            }
            _ => {
                tallies.push(AuthorTally { author: k.author, partials: 1, submitted: 0, reused: 0 })
            }
        }
        tally_of.push(tallies.len().saturating_sub(1));
    }
    // Authors of reused partials that do not count (late, or never sent): reused all the same.
    let mut uncounted_reused: Vec<ProverIndex> = Vec::new();
    let mut validators = ValidatorTally::default();
    let mut sorted: Vec<PartRef> = Vec::new();
    for f in proofs {
        c.prover(phase, rules.submitter, f.submitter);
        validators.push(f.inclusion.validator);
        // The distinct reused parts. A list ascending by AIR (as engines write it) has no
        // repeats and is used as it is; any other list is sorted and deduplicated.
        let by_air = f.reused.windows(2).all(|w| matches!(w, [a, b] if a.air < b.air));
        let reused: &[PartRef] = if by_air {
            &f.reused
        } else {
            sorted.clear();
            sorted.extend_from_slice(&f.reused);
            sorted.sort_unstable();
            sorted.dedup();
            &sorted
        };
        let mut times = 0u64;
        // A proof never reuses its own submitter's partials.
        for r in reused.iter().filter(|r| r.author != f.submitter) {
            times = times.checked_add(1).ok_or_else(reuse_overflow)?;
            let found = counted.binary_search_by(|k| (k.author, k.air).cmp(&(r.author, r.air)));
            match found.ok().and_then(|i| tally_of.get(i)).and_then(|&t| tallies.get_mut(t)) {
                Some(t) => t.reused = t.reused.checked_add(1).ok_or_else(overflow)?,
                None => uncounted_reused.push(r.author),
            }
        }
        c.add(phase, rules.reusing, Account::Prover(f.submitter), times);
        if let Ok(t) = tallies.binary_search_by_key(&f.submitter, |t| t.author)
            && let Some(t) = tallies.get_mut(t)
        {
            t.submitted = t.submitted.checked_add(1).ok_or_else(overflow)?;
        }
    }
    c.validators(phase, rules.validator, &mut validators);
    let proofs = u64::try_from(proofs.len()).map_err(|_| Error::Overflow { context: "reuse" })?;
    for t in &tallies {
        c.add(phase, rules.reused, Account::Prover(t.author), t.reused);
        // Every proof of another prover leaves each of the author's counted partials it did not
        // reuse (a proof never "reuses" its own submitter's partials).
        let not_reused = t
            .partials
            .checked_mul(proofs.checked_sub(t.submitted).ok_or_else(overflow)?)
            .and_then(|n| n.checked_sub(t.reused))
            .ok_or_else(overflow)?;
        c.add(phase, rules.not_reused, Account::Prover(t.author), not_reused);
    }
    uncounted_reused.sort_unstable();
    for run in uncounted_reused.chunk_by(|a, b| a == b) {
        if let Some(&author) = run.first() {
            let times = u64::try_from(run.len()).map_err(|_| overflow())?;
            c.add(phase, rules.reused, Account::Prover(author), times);
        }
    }
    Ok(())
}
