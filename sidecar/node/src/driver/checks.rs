//! Verification scheduling: the checks the engine asked for and not answered yet, BLS
//! signature batches and STARK checks run on the blocking pool, their verdicts sent back to the
//! driver as inputs.

use std::sync::Arc;

use phase_engine::{RequestId, Root, SignatureCheck, StarkCheck, Verdict};
use tracing::debug;

use super::{Driver, Input, Lane, metrics::verify_label};
use crate::{signatures::verify_signatures, verify::BlockWork};

/// A verification request not answered yet.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) enum Check {
    Signature(SignatureCheck),
    Stark(StarkCheck, Root),
}

impl Driver {
    /// Runs `check` (asked for by the engine of `lane`) on the blocking pool; its verdict comes
    /// back as an input.
    pub(super) fn dispatch(&self, check: Check, lane: Lane) {
        match check {
            Check::Signature(c) => self.dispatch_signatures(vec![c], lane),
            Check::Stark(c, block) => {
                let Some(tx) = self.tx.upgrade() else { return };
                let work = self.blocks.get(&block).and_then(|b| b.work.clone());
                // Payload data no longer in memory: read back from the input log.
                let logged = match work {
                    Some(_) => None,
                    None => self.block_log.get(&block).map(|(_, seq)| {
                        (*seq, self.block_airs.get(&block).cloned().unwrap_or_default())
                    }),
                };
                let store = Arc::clone(&self.store);
                // The submitter's key in the registry of the engine that asked (the settling
                // engine's registry grows by canonical records; its indices are the live
                // engine's, but the key is read where the index was given).
                let registry = match (lane, self.settling.as_ref()) {
                    (Lane::Settling, Some(settling)) => settling.rounds.engine(),
                    _ => &self.engine,
                };
                let submitter = match &c.target {
                    phase_engine::StarkTarget::FullProof { submitter, .. }
                    | phase_engine::StarkTarget::AggProof { submitter, .. } => {
                        registry.prover(*submitter).map(|r| r.pubkey)
                    }
                    _ => None,
                };
                let verifier = Arc::clone(&self.verifier);
                let metrics = self.metrics.clone();
                tokio::task::spawn_blocking(move || {
                    let started = std::time::Instant::now();
                    let work = work.or_else(|| {
                        let (seq, airs) = logged?;
                        match crate::log::read(&store, seq) {
                            Ok(Some(crate::log::LoggedInput::Block { info, data, .. })) => {
                                let (root, gas_used) = (info.root, info.gas_used);
                                Some(Arc::new(BlockWork { root, gas_used, data, airs }))
                            }
                            _ => None,
                        }
                    });
                    let result = match work {
                        Some(work) => verifier.check(&c, &work, submitter),
                        None => Err("unknown block".into()),
                    };
                    metrics.observe_verify_time(verify_label(&c), started.elapsed());
                    if let Err(reason) = &result {
                        debug!(request = ?c.request, %reason, "STARK check failed");
                    }
                    let verdict = Verdict { request: c.request, valid: result.is_ok() };
                    let _ = tx.blocking_send(Input::Verdicts { lane, verdicts: vec![verdict] });
                });
            }
        }
    }

    /// Runs a batch of signature checks of the engine of `lane` on the blocking pool.
    pub(super) fn dispatch_signatures(&self, checks: Vec<SignatureCheck>, lane: Lane) {
        let Some(tx) = self.tx.upgrade() else { return };
        let keys = Arc::clone(&self.keys);
        tokio::task::spawn_blocking(move || {
            let verdicts = verify_signatures(&keys, &checks);
            let _ = tx.blocking_send(Input::Verdicts { lane, verdicts });
        });
    }
}

pub(super) fn request_of(check: &Check) -> RequestId {
    match check {
        Check::Signature(c) => c.request,
        Check::Stark(c, _) => c.request,
    }
}

pub(super) fn stark_block(check: &StarkCheck) -> Root {
    match &check.target {
        phase_engine::StarkTarget::Partial { round, .. } => round.block_root,
        phase_engine::StarkTarget::FullProof { round, .. } => round.block_root,
        phase_engine::StarkTarget::AggProof { block_root, .. } => *block_root,
        _ => Root::ZERO,
    }
}
