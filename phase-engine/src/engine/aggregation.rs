//! AggProofs: who may submit the aggregate proof of a block with several sub-blocks, and the
//! checks of its window.

use super::{
    Engine,
    state::BlockState,
    verify::{Pending, PendingData, Stage, Staged},
};
use crate::{
    actions::{RequestId, SignatureCheck, StarkTarget},
    error::{Error, Result},
    messages::{MessageKind, SignedAggProof},
    types::{ProverIndex, Root, UnixMillis},
};

impl Engine {
    pub(super) fn agg_standing(&self, block: &BlockState, submitter: ProverIndex) -> bool {
        block.aggregators.contains(&submitter)
            || block
                .sub_blocks
                .iter()
                .any(|s| s.rounds.iter().any(|r| r.position.contains_key(&submitter)))
    }

    pub(super) fn on_agg_proof(
        &mut self,
        m: SignedAggProof,
        sealed: Option<Root>,
        now: UnixMillis,
    ) -> Result<Staged> {
        let a = &m.message;
        let block = self.block(&a.block_root)?;
        if block.info.slot != a.slot {
            return Err(Error::SlotMismatch { expected: block.info.slot, got: a.slot });
        }
        if !block.is_aggregating() {
            return Err(Error::NoAggregation { block_root: a.block_root });
        }
        self.active_record(a.submitter)?;
        if !self.agg_standing(block, a.submitter) {
            return Err(Error::NotAggregator { prover: a.submitter, block_root: a.block_root });
        }
        if let Some(s) = block.first_unproven() {
            return Err(Error::NotReady { block_root: a.block_root, sub_block: s.plan.index });
        }
        let close = block.agg_close(&self.config).unwrap_or(UnixMillis(0));
        let deadline =
            UnixMillis(close.0.saturating_add(self.config.phases.max_clock_disparity_ms));
        if now >= deadline || block.aggregators_released {
            return Err(Error::Late { kind: MessageKind::AggProof, arrived_at: now, deadline });
        }
        let signing_root = sealed.unwrap_or_else(|| self.domains.agg(a));
        if block.agg_seen.contains(&signing_root) {
            return Err(Error::Duplicate { signing_root });
        }
        if block.agg.contains_key(&a.submitter) {
            return Err(Error::AlreadySubmitted {
                prover: a.submitter,
                kind: MessageKind::AggProof,
            });
        }
        let target = StarkTarget::AggProof {
            block_root: a.block_root,
            slot: a.slot,
            num_sub_blocks: u32::try_from(block.sub_blocks.len()).unwrap_or(u32::MAX),
            submitter: a.submitter,
            bundle: a.bundle.to_vec(),
        };
        let check = SignatureCheck {
            request: RequestId(0),
            pubkey: self.pubkey(a.submitter)?,
            signing_root,
            signature: m.signature,
            proof_of_possession: None,
        };
        let pending = Pending {
            kind: MessageKind::AggProof,
            stage: Stage::Signature,
            signing_root,
            prover: a.submitter,
            arrived: now,
            includer: None,
            round: None,
            block_root: Some(a.block_root),
            data: PendingData::AggProof { target: Some(target) },
        };
        Ok((check, pending))
    }
}
