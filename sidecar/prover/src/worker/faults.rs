//! Fault injection for devnets and tests: copying other provers' partials and full proofs.

use beacon_api::BlockId;
use phase_engine::{
    Duty, PartRef, Phase, ProtocolMessage, ProverIndex, ReuseBloom, SignedFullProof,
    SignedPartialProof,
};
use ssz_types::VariableList;

use crate::error::{ProverError, ProverResult};

use super::{ProverWorker, REUSE_BLOOM_BYTES, WorkerStats, now_ms, wait_until};

impl ProverWorker {
    /// Fault injection: re-sign other provers' partials of our AIRs as ours.
    pub(super) async fn copy_partials(&self, index: ProverIndex, duty: &Duty) -> ProverResult<()> {
        let key = duty.round;
        let deadline = duty.deadlines.graced_close(Phase::T2);
        while now_ms() < deadline {
            let downloaded = self
                .inner
                .proving
                .partial_proofs(BlockId::Root(key.block_root))
                .await
                .map_err(ProverError::api("downloading partial proofs"))?;
            let stolen: Vec<_> = downloaded
                .into_iter()
                .filter(|s| {
                    s.message.round.key() == key
                        && s.message.prover != index
                        && duty.airs.contains(&s.message.air)
                })
                .collect();
            if !stolen.is_empty() {
                for s in stolen {
                    let mut message = s.message;
                    message.prover = index;
                    let signed =
                        SignedPartialProof::sign(message, &self.inner.key, &self.inner.ctx);
                    if self
                        .submit("copied partial proof", ProtocolMessage::PartialProof(signed))
                        .await
                    {
                        WorkerStats::inc(&self.inner.stats.partials);
                    }
                }
                return Ok(());
            }
            tokio::time::sleep(self.inner.config.poll_interval).await;
        }
        Ok(())
    }

    /// Fault injection: resubmit another prover's finalised full proof of the round as ours.
    pub(super) async fn copy_full_proof(
        &self,
        index: ProverIndex,
        duty: &Duty,
    ) -> ProverResult<()> {
        let key = duty.round;
        tokio::time::sleep(wait_until(duty.deadlines.open(Phase::T2))).await;
        let deadline = duty.deadlines.graced_close(Phase::T5);
        while now_ms() < deadline {
            // Not found until the block's rounds are finalised.
            let original =
                match self.inner.proving.finalized_proof(BlockId::Root(key.block_root)).await {
                    Ok(f) => f.full_proofs.iter().find(|f| f.message.round.key() == key).cloned(),
                    Err(_) => None,
                };
            if let Some(original) = original.filter(|f| f.message.submitter != index) {
                let parts: Vec<PartRef> = original.message.body.parts.iter().copied().collect();
                let bloom = ReuseBloom::from_parts(
                    REUSE_BLOOM_BYTES,
                    parts.iter().filter(|p| p.author != index),
                );
                let mut message = original.message;
                message.submitter = index;
                message.body.reuse_bloom =
                    VariableList::new(bloom.as_bytes().to_vec()).map_err(|e| {
                        ProverError::Message { what: "copied full proof", reason: format!("{e:?}") }
                    })?;
                let signed = SignedFullProof::sign(message, &self.inner.key, &self.inner.ctx);
                if self.submit("copied full proof", ProtocolMessage::FullProof(signed)).await {
                    WorkerStats::inc(&self.inner.stats.full_proofs);
                }
                return Ok(());
            }
            tokio::time::sleep(self.inner.config.poll_interval).await;
        }
        Ok(())
    }
}
