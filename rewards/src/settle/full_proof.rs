//! Full proofs: the valid full proofs of a round (all in the finalising phase, in canonical
//! order, one per submitter) and the rules of a full proof that finalises in T1 or T2.

use phase_engine::{
    FullProofRecord, PartRef, Phase, ProverIndex, RoundOutcome, UnixMillis, ValidatorIndex,
};

use super::counter::Counter;
use super::provers::Provers;
use crate::error::{Error, Result};
use crate::table::Rule;

/// The valid full proofs of a round: in canonical order ([`full_proof_key`]), the first of each
/// submitter; marks their submitters in `provers`. Errors on a full proof outside the finalising
/// phase, and on a finalising phase without a full proof.
pub(super) fn valid_full_proofs<'r>(
    round: &'r RoundOutcome,
    provers: &mut Provers,
) -> Result<Vec<&'r FullProofRecord>> {
    let (sub_block, attempt) = (round.key.sub_block, round.key.attempt);
    for f in &round.full_proofs {
        if Some(f.inclusion.phase) != round.finalized_in {
            return Err(Error::FullProofOutsideFinalizingPhase {
                sub_block,
                attempt,
                submitter: f.submitter,
                phase: f.inclusion.phase,
                finalized_in: round.finalized_in,
            });
        }
    }
    let mut proofs: Vec<&FullProofRecord> = round.full_proofs.iter().collect();
    proofs.sort_by(|a, b| full_proof_key(a).cmp(&full_proof_key(b)));
    if proofs.len() > 1 {
        // Keep the first proof of each submitter: sort positions by (submitter, position).
        let mut by_submitter: Vec<(ProverIndex, usize)> =
            proofs.iter().enumerate().map(|(i, f)| (f.submitter, i)).collect();
        by_submitter.sort_unstable();
        let mut keep = vec![false; proofs.len()];
        let mut last = None;
        for (submitter, i) in by_submitter {
            if last != Some(submitter) {
                last = Some(submitter);
                if let Some(k) = keep.get_mut(i) {
                    *k = true;
                }
            }
        }
        let mut keep = keep.into_iter();
        proofs.retain(|_| keep.next().unwrap_or(false));
    }
    for f in &proofs {
        if let Some(s) = provers.get_mut(f.submitter) {
            s.submitted = true;
        }
    }
    if let (Some(phase), None) = (round.finalized_in, proofs.first()) {
        return Err(Error::FinalizedWithoutFullProof { sub_block, attempt, phase });
    }
    Ok(proofs)
}

/// Canonical order of full proofs: earliest arrival first, then by submitter, then by the rest.
fn full_proof_key(
    f: &FullProofRecord,
) -> (UnixMillis, ProverIndex, ValidatorIndex, Phase, &[PartRef], &[PartRef]) {
    (
        f.inclusion.arrived_at,
        f.submitter,
        f.inclusion.validator,
        f.inclusion.phase,
        f.parts.as_slice(),
        f.reused.as_slice(),
    )
}

/// The rules of a full proof in T1 or T2: each selected prover that neither declined nor
/// equivocated, the sender extra, and the validator that included the first valid full proof.
pub(super) fn full_proof_rules(
    c: &mut Counter,
    phase: Phase,
    provers: &Provers,
    first: &FullProofRecord,
) {
    let (prover, sender, validator) = match phase {
        Phase::T1 => (
            Rule::RewardFullProofProverT1,
            Rule::RewardFullProofSenderT1,
            Rule::RewardFullProofValidatorT1,
        ),
        _ => (
            Rule::RewardFullProofProverT2,
            Rule::RewardFullProofSenderT2,
            Rule::RewardFullProofValidatorT2,
        ),
    };
    for (p, s) in provers.iter() {
        if !s.declined && !s.equivocator {
            c.prover(phase, prover, p);
        }
    }
    c.prover(phase, sender, first.submitter);
    c.validator(phase, validator, first.inclusion.validator);
}
