//! T1, commitments: the earliest valid T1 commitment of each selected prover, the penalty of a
//! prover that failed to commit (or equivocated) and the reward of each including validator.

use phase_engine::{Phase, RoundOutcome};

use super::counter::{Counter, ValidatorTally};
use super::provers::Provers;
use crate::table::Rule;

/// Applies the T1 commitment rules of a round not finalised in T1, recording each selected
/// prover's earliest valid commitment in `provers`. `validators` is an empty tally, left empty.
pub(super) fn commitment_rules(
    c: &mut Counter,
    round: &RoundOutcome,
    provers: &mut Provers,
    validators: &mut ValidatorTally,
) {
    // Earliest valid T1 commitment of each selected prover.
    for rec in &round.commitments {
        if rec.inclusion.phase != Phase::T1 {
            continue;
        }
        if let Some(s) = provers.get_mut(rec.prover) {
            let at = (rec.inclusion.arrived_at, rec.inclusion.validator);
            s.commitment = Some(s.commitment.map_or(at, |cur| cur.min(at)));
        }
    }
    for (p, s) in provers.iter() {
        if let Some((_, validator)) = s.commitment
            && !s.equivocator
        {
            validators.push(validator);
        }
        // A prover that neither committed nor declined failed to commit; an equivocator is
        // treated as one that failed to commit, whatever its first T1 message was.
        let failed = s.commitment.is_none() && !s.declined;
        if failed || s.equivocator {
            c.prover(Phase::T1, Rule::PenaltyT1Prover, p);
        }
    }
    c.validators(Phase::T1, Rule::RewardT1Validator, validators);
}
