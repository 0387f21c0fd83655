//! What the driver reports to metrics besides the calls inline: metric labels of message kinds,
//! phases and verification kinds, and the beacon head and lag gauges.

use phase_engine::{MessageKind, Slot, StarkCheck};

use super::Driver;

impl Driver {
    /// Sets the beacon head and lag gauges (head: the last block fed).
    pub(super) fn update_beacon_lag(&self, head: Option<Slot>) {
        let Some(head) = head else { return };
        let now = std::time::Duration::from_millis(self.clock.now_unix_millis());
        let wall = self.clock.timing().slot_at(now).unwrap_or(head);
        self.metrics.set_beacon_head(head, wall.max(head));
    }
}

pub(super) fn verify_label(check: &StarkCheck) -> sidecar_metrics::VerifyKindLabel {
    match &check.target {
        phase_engine::StarkTarget::Partial { .. } => sidecar_metrics::VerifyKindLabel::PartialProof,
        phase_engine::StarkTarget::FullProof { .. } => sidecar_metrics::VerifyKindLabel::FullProof,
        _ => sidecar_metrics::VerifyKindLabel::FullProof,
    }
}

pub(super) fn kind_label(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Commitment => "commitment",
        MessageKind::Decline => "decline",
        MessageKind::PartialProof => "partial_proof",
        MessageKind::FullProof => "full_proof",
        MessageKind::AggProof => "agg_proof",
        MessageKind::Registration => "registration",
        _ => "other",
    }
}

pub(super) fn phase_label(phase: phase_engine::Phase) -> sidecar_metrics::PhaseLabel {
    match phase {
        phase_engine::Phase::T1 => sidecar_metrics::PhaseLabel::T1,
        phase_engine::Phase::T2 => sidecar_metrics::PhaseLabel::T2,
        phase_engine::Phase::T3 => sidecar_metrics::PhaseLabel::T3,
        phase_engine::Phase::T4 => sidecar_metrics::PhaseLabel::T4,
        _ => sidecar_metrics::PhaseLabel::T5,
    }
}
