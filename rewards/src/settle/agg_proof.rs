//! The block-level AggProof rules: the aggregator group (with the sender of the first valid
//! AggProof) and each validator that included a valid AggProof, once.

use phase_engine::{AggProofRecord, BlockOutcome, Phase, ProverIndex, UnixMillis, ValidatorIndex};

use super::counter::Counter;
use crate::error::{Error, Result};
use crate::table::Rule;

/// Canonical order of AggProofs: earliest arrival first, then by submitter, then by the rest.
fn agg_key(a: &AggProofRecord) -> (UnixMillis, ProverIndex, ValidatorIndex, Phase) {
    (a.inclusion.arrived_at, a.submitter, a.inclusion.validator, a.inclusion.phase)
}

/// The AggProof rules: each aggregator (and the sender of the first valid AggProof), and each
/// validator that included a valid AggProof, once.
pub(super) fn settle_agg_proofs(outcome: &BlockOutcome, c: &mut Counter) -> Result<()> {
    let mut proofs: Vec<&AggProofRecord> = outcome.agg_proofs.iter().collect();
    proofs.sort_by_key(|a| agg_key(a));
    let Some(first) = proofs.first() else { return Ok(()) };
    if outcome.aggregators.is_empty() {
        return Err(Error::AggProofWithoutAggregators);
    }
    let phase = first.inclusion.phase;
    let mut group: Vec<ProverIndex> = outcome.aggregators.clone();
    group.push(first.submitter);
    group.sort_unstable();
    group.dedup();
    for p in group {
        c.prover(phase, Rule::RewardAggProofProver, p);
    }
    // Each validator once, in the phase of the first (canonical order) proof it included.
    let mut validators: Vec<(ValidatorIndex, usize, Phase)> = proofs
        .iter()
        .enumerate()
        .map(|(i, a)| (a.inclusion.validator, i, a.inclusion.phase))
        .collect();
    validators.sort_unstable();
    validators.dedup_by_key(|v| v.0);
    for (validator, _, phase) in validators {
        c.validator(phase, Rule::RewardAggProofValidator, validator);
    }
    Ok(())
}
