//! Executing the engine's queued actions: verification requests, round and block events,
//! metrics, accepted messages (kept with their block and published), settlement.

use std::sync::Arc;

use beacon_api::ProvingEvent;
use phase_engine::{Action, ProtocolMessage, Root};
use tracing::debug;

use super::{
    Driver, Lane,
    checks::{Check, request_of, stark_block},
    metrics::{kind_label, phase_label},
};
use crate::{error::NodeResult, gossip::Gossiped};

impl Driver {
    /// Executes the engine's queued actions.
    pub(super) fn process_actions(&mut self) -> NodeResult<()> {
        let mut signatures = Vec::new();
        while let Some(action) = self.engine.poll_action() {
            if let Some(event) = ProvingEvent::from_action(&action) {
                let _ = self.events.send(event);
            }
            match action {
                Action::VerifySignature(check) => {
                    self.outstanding.insert(check.request, Check::Signature(check.clone()));
                    signatures.push(check);
                }
                Action::VerifyStark(check) => {
                    let block = stark_block(&check);
                    let c = Check::Stark(check, block);
                    self.outstanding.insert(request_of(&c), c.clone());
                    if !self.replaying {
                        self.dispatch(c, Lane::Live);
                    }
                }
                Action::RoundStarted(start) => {
                    self.block_airs
                        .entry(start.key.block_root)
                        .or_default()
                        .insert(start.key.sub_block.0, start.num_airs);
                    if let Some(record) = self.blocks.get_mut(&start.key.block_root)
                        && let Some(work) = record.work.as_mut()
                    {
                        Arc::make_mut(work).airs.insert(start.key.sub_block.0, start.num_airs);
                    }
                    debug!(round = ?start.key, selected = start.selected.len(), "round started");
                }
                Action::Accepted(accepted) => {
                    self.metrics.message_verdict(
                        kind_label(accepted.kind),
                        sidecar_metrics::VerdictLabel::Accept,
                        "valid",
                    );
                    self.on_accepted(&accepted.signing_root);
                }
                Action::RoundClosed { key, finalized_in } => {
                    let (phase, outcome) = match finalized_in {
                        Some(p) => (phase_label(p), sidecar_metrics::RoundOutcomeLabel::FullProof),
                        None => (
                            sidecar_metrics::PhaseLabel::T5,
                            sidecar_metrics::RoundOutcomeLabel::Failed,
                        ),
                    };
                    if !self.replaying {
                        self.metrics.round_ended(phase, outcome);
                    }
                    debug!(round = ?key, ?finalized_in, "round closed");
                }
                Action::BlockOutcome(outcome) => self.live_outcome(*outcome)?,
                _ => {}
            }
        }
        if !signatures.is_empty() && !self.replaying {
            self.dispatch_signatures(signatures, Lane::Live);
        }
        Ok(())
    }

    fn on_accepted(&mut self, signing_root: &Root) {
        let Some((message, publish)) = self.in_flight.remove(signing_root) else { return };
        if let Some(received) = self.received.remove(signing_root) {
            self.settling_candidate(*signing_root, received);
        }
        if let Some(first_seen) = publish {
            self.publish(Gossiped::Message(message.clone()), first_seen);
        }
        match message {
            ProtocolMessage::PartialProof(m) => {
                if let Some(b) = self.blocks.get_mut(&m.message.round.block_root) {
                    b.partials.push(m);
                }
            }
            ProtocolMessage::FullProof(m) => {
                if let Some(b) = self.blocks.get_mut(&m.message.round.block_root) {
                    b.full_proofs.entry(m.message.round.sub_block.0).or_insert(m);
                }
            }
            ProtocolMessage::AggProof(m) => {
                if let Some(b) = self.blocks.get_mut(&m.message.block_root) {
                    b.agg_proof.get_or_insert(m);
                }
            }
            _ => {}
        }
    }
}
