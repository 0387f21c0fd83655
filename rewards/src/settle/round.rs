//! One round, phase by phase: the selected provers and the valid full proofs first, then the
//! rules of T1, T2 and T3–T5 in turn, stopping after the phase the round was finalised in.

use phase_engine::{Phase, RoundOutcome};

use super::aggregation::aggregation_phases;
use super::commitment::commitment_rules;
use super::counter::{Counter, ValidatorTally};
use super::full_proof::{full_proof_rules, valid_full_proofs};
use super::partial::{counted_partials, partial_rules};
use super::provers::read_provers;
use crate::error::Result;

/// Applies every per-round rule; returns the divisor for averaged rules.
pub(super) fn settle_round(round: &RoundOutcome, c: &mut Counter) -> Result<u64> {
    let mut provers = read_provers(round)?;

    // --- full proofs: all in the finalising phase, canonical order, one per submitter ----
    let proofs = valid_full_proofs(round, &mut provers)?;
    let first = proofs.first().copied();

    // --- T1 ----------------------------------------------------------------------------------
    if let (Some(Phase::T1), Some(first)) = (round.finalized_in, first) {
        full_proof_rules(c, Phase::T1, &provers, first);
        return Ok(1);
    }
    // The including validators of a phase; empty between phases (one buffer for T1 and T2).
    let mut validators = ValidatorTally::default();
    commitment_rules(c, round, &mut provers, &mut validators);

    // --- T2 ----------------------------------------------------------------------------------
    let counted = counted_partials(round, &mut provers)?;
    if let (Some(Phase::T2), Some(first)) = (round.finalized_in, first) {
        full_proof_rules(c, Phase::T2, &provers, first);
        return Ok(1);
    }
    partial_rules(c, &provers, &counted, &mut validators);

    // --- T3, T4, T5 --------------------------------------------------------------------------
    aggregation_phases(c, round, &provers, &proofs, &counted)
}
