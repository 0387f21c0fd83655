//! A block's AggProof, built from its finalised sub-block full proofs.

use beacon_api::BlockId;
use phase_engine::{AggProof, ProtocolMessage, ProverIndex, Root, SignedAggProof};
use ssz_types::VariableList;

use crate::error::{ProverError, ProverResult};

use super::{ProverWorker, WorkerStats};

impl ProverWorker {
    /// Builds and submits the AggProof of a block whose sub-blocks are all proven.
    pub(super) async fn aggregate(&self, index: ProverIndex, block_root: Root) -> ProverResult<()> {
        let work = self.block_work(block_root).await?;
        let finalized = self
            .inner
            .proving
            .finalized_proof(BlockId::Root(block_root))
            .await
            .map_err(ProverError::api("downloading the finalised full proofs"))?;
        if !finalized.agg_proof.is_empty() {
            return Ok(());
        }
        let mut fulls = Vec::with_capacity(finalized.full_proofs.len());
        for f in finalized.full_proofs.iter() {
            fulls.push(
                plonky3_prover::FullProof::from_bytes(&f.message.body.bundle)
                    .map_err(ProverError::stark("decoding a finalised full proof"))?,
            );
        }
        let author = self.inner.author;
        let plan = work.plan.clone();
        let agg = self
            .cpu(move |_| plonky3_prover::AggProof::build(author, &plan, fulls))
            .await?
            .map_err(ProverError::stark("building the AggProof"))?;
        let message = AggProof {
            slot: finalized.slot,
            block_root,
            submitter: index,
            bundle: VariableList::new(agg.as_bytes().to_vec())
                .map_err(|e| ProverError::Message { what: "AggProof", reason: format!("{e:?}") })?,
        };
        let signed = SignedAggProof::sign(message, &self.inner.key, &self.inner.ctx);
        if self.submit("AggProof", ProtocolMessage::AggProof(signed)).await {
            WorkerStats::inc(&self.inner.stats.agg_proofs);
        }
        Ok(())
    }
}
