//! Answering the engine's verification requests: the simulator is the verifier, by real
//! verification in real mode and from its record of who proved what in modelled mode (see
//! [`crate::modelled`]); rejected verdicts are counted by reason.

use phase_engine::{Progress, StarkTarget, Verdict};

use super::{Sim, reason_name};

impl Sim<'_> {
    pub(super) fn verdict(
        &mut self,
        request: phase_engine::RequestId,
        valid: bool,
    ) -> Option<Progress> {
        match self.engine.on_verification(Verdict { request, valid }) {
            Ok(p) => Some(p),
            Err(e) => {
                *self.rejections.entry(reason_name(&e)).or_default() += 1;
                None
            }
        }
    }

    pub(super) fn verify_stark(&self, target: &StarkTarget) -> bool {
        if let Some(real) = &self.real {
            return real.borrow().verify(target);
        }
        match target {
            StarkTarget::Partial { round, air, author, trace_root, proof, .. } => {
                self.proofs.verify_partial(round, *author, *air, trace_root, proof)
            }
            StarkTarget::FullProof { round, submitter, parts, bundle, .. } => {
                self.proofs.verify_full(
                    round,
                    *submitter,
                    parts.iter().map(|c| (c.part, c.committed_trace_root.as_ref())),
                    bundle,
                )
            }
            StarkTarget::AggProof { submitter, bundle, .. } => {
                self.proofs.verify_agg(*submitter, bundle)
            }
            _ => false,
        }
    }
}
