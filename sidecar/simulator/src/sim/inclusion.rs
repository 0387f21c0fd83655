//! Canonical inclusion, modelled (scenario key `proposers_with_sidecar`): the proposer of slot
//! `S` runs a sidecar with the given probability (drawn per slot from the seed); if it does, its
//! record includes every message that arrived by `S`'s cut-off (`inclusion.cutoff_margin_ms`
//! before `S` starts) and that no earlier record includes. So a message is credited to the
//! proposer of the first such slot after it arrived, at its arrival time, and it never counts if
//! no such slot comes within `inclusion.max_delay_slots` slots of the one it arrived in. Every
//! simulated sidecar sees the same arrival times, so the records are what every sidecar's
//! settling engine reads (`phase_engine::CanonicalRounds`): the engine is fed the included
//! messages directly ([`phase_engine::Engine::on_included_verified_message`]).
//!
//! A `censoring` prover operates the validator of its own index: when that validator proposes,
//! its record leaves out every message another prover sent, so the first later record that
//! includes it (if any, within `max_delay_slots`) does.

use phase_engine::{InclusionParams, ProtocolMessage, ProverIndex, ValidatorIndex};

use super::{GENESIS_MS, Sim, digest, simulated_block};
use crate::scenario::Behaviour;

/// The model of one run.
#[derive(Clone, Copy, Debug)]
pub(super) struct InclusionModel {
    /// Share of proposers with a sidecar, as a threshold on a 64-bit draw.
    threshold: u64,
    params: InclusionParams,
}

impl InclusionModel {
    pub(super) fn new(share: f64, params: InclusionParams) -> Self {
        // share in 0..=1 (validated with the scenario); 1.0 maps to every draw.
        let threshold = if share >= 1.0 { u64::MAX } else { (share * 2f64.powi(64)) as u64 };
        Self { threshold, params }
    }
}

/// Where a message goes.
pub(super) enum Inclusion {
    /// Not modelled: the engine's default includer.
    Default,
    /// Included by this proposer's record.
    By(ValidatorIndex),
    /// No record includes it in time: it never counts.
    Never,
}

impl Sim<'_> {
    fn has_sidecar(&self, model: &InclusionModel, slot: u64) -> bool {
        if model.threshold == u64::MAX {
            return true;
        }
        let d = digest(&[
            b"sidecar-sim-has-sidecar",
            &self.scenario.seed.to_le_bytes(),
            &slot.to_le_bytes(),
        ]);
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        u64::from_le_bytes(first) < model.threshold
    }

    /// Whether the record of `proposer` leaves out a message from `sender`: the proposer is
    /// operated by a censoring prover other than the sender.
    fn censors(&self, proposer: ValidatorIndex, sender: Option<ProverIndex>) -> bool {
        sender != Some(ProverIndex(proposer.0))
            && self.behaviour(ProverIndex(proposer.0)) == Behaviour::Censoring
    }

    /// Who includes a message from `sender` that arrived at `t` (virtual ms).
    pub(super) fn inclusion(&self, t: u64, sender: Option<ProverIndex>) -> Inclusion {
        let Some(model) = self.inclusion else { return Inclusion::Default };
        let slot_ms = self.scenario.slot_ms;
        let arrived_in = t.saturating_sub(GENESIS_MS) / slot_ms;
        let last = arrived_in.saturating_add(model.params.max_delay_slots);
        for slot in arrived_in + 1..=last {
            let start = GENESIS_MS + slot * slot_ms;
            if t > start.saturating_sub(model.params.cutoff_margin_ms) {
                continue; // after this record's cut-off
            }
            if self.has_sidecar(&model, slot) {
                let proposer =
                    simulated_block(self.scenario, slot, phase_engine::Root::ZERO, 0).proposer;
                if self.censors(proposer, sender) {
                    continue;
                }
                return Inclusion::By(proposer);
            }
        }
        Inclusion::Never
    }
}

/// The prover that sent a message.
pub(super) fn sender(message: &ProtocolMessage) -> Option<ProverIndex> {
    match message {
        ProtocolMessage::Commitment(m) => Some(m.message.prover),
        ProtocolMessage::Decline(m) => Some(m.message.prover),
        ProtocolMessage::PartialProof(m) => Some(m.message.prover),
        ProtocolMessage::FullProof(m) => Some(m.message.submitter),
        ProtocolMessage::AggProof(m) => Some(m.message.submitter),
        _ => None,
    }
}
