//! The prover registry: provers added directly or by a verified registration, exits,
//! reputation, and the lookups of prover records.

use super::{
    Engine,
    verify::{Pending, PendingData, Stage},
};
use crate::{
    Root,
    actions::{ProverRecord, RequestId, SignatureCheck},
    bls::BlsPublicKey,
    error::{Error, Result},
    messages::{MessageKind, SignedProverRegistration},
    types::{ProverIndex, UnixMillis},
};

/// Registry rules that are not part of [`EngineConfig`](crate::EngineConfig).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct RegistryParams {
    /// Minimum stake (Gwei) of a registration.
    pub min_stake: u64,
}

impl Engine {
    /// Adds an already-verified prover (genesis registry, a registration verified elsewhere, or
    /// a restored state) as active. Returns its index (the next free one).
    pub fn add_prover(&mut self, record: ProverRecord) -> Result<ProverIndex> {
        if let Some(&prover) = self.by_pubkey.get(&record.pubkey) {
            return Err(Error::AlreadyRegistered { prover });
        }
        let index = ProverIndex(self.provers.len() as u64);
        self.by_pubkey.insert(record.pubkey, index);
        if record.active {
            // Indices only grow, so pushing keeps `active` sorted.
            self.active.push(index);
        }
        self.provers.push(record);
        Ok(index)
    }

    /// A signed registration: checks stake and uniqueness, then requests verification of its
    /// signature and proof of possession. On a valid verdict the prover joins as active.
    pub fn on_registration(
        &mut self,
        registration: SignedProverRegistration,
        now: UnixMillis,
    ) -> Result<RequestId> {
        self.advance(now);
        let msg = &registration.message;
        if msg.stake < self.params.min_stake {
            return Err(Error::InsufficientStake {
                stake: msg.stake,
                minimum: self.params.min_stake,
            });
        }
        if let Some(&prover) = self.by_pubkey.get(&msg.pubkey) {
            return Err(Error::AlreadyRegistered { prover });
        }
        let signing_root = registration.signing_root(&self.ctx);
        if !self.pending_registrations.insert(msg.pubkey) {
            return Err(Error::Duplicate { signing_root });
        }
        let record = ProverRecord {
            pubkey: msg.pubkey,
            stake: msg.stake,
            capabilities: msg.capabilities,
            active: true,
            reputation: 0,
        };
        let check = SignatureCheck {
            request: RequestId(0),
            pubkey: msg.pubkey,
            signing_root,
            signature: registration.signature,
            proof_of_possession: Some(msg.proof_of_possession),
        };
        let pending = Pending {
            kind: MessageKind::Registration,
            stage: Stage::Signature,
            signing_root,
            prover: ProverIndex(0),
            arrived: now,
            includer: None,
            round: None,
            block_root: None,
            data: PendingData::Registration(record),
        };
        Ok(self.request_signature(check, pending))
    }

    /// Takes a prover out of the active set (exit or ejection). It finishes the rounds it is
    /// in, and is never selected again.
    pub fn exit_prover(&mut self, prover: ProverIndex) -> Result<()> {
        let record = self.record_mut(prover)?;
        record.active = false;
        if let Ok(i) = self.active.binary_search(&prover) {
            self.active.remove(i);
        }
        Ok(())
    }

    /// Sets a prover's reputation score (from settled history).
    pub fn set_reputation(&mut self, prover: ProverIndex, score: u64) -> Result<()> {
        self.record_mut(prover)?.reputation = score;
        Ok(())
    }

    /// A registered prover.
    pub fn prover(&self, prover: ProverIndex) -> Option<&ProverRecord> {
        usize::try_from(prover.0).ok().and_then(|i| self.provers.get(i))
    }

    /// The registry rules (minimum stake).
    pub fn registry_params(&self) -> RegistryParams {
        self.params
    }

    /// The index of a registered key.
    pub fn prover_by_pubkey(&self, pubkey: &BlsPublicKey) -> Option<ProverIndex> {
        self.by_pubkey.get(pubkey).copied()
    }

    /// Number of registered provers.
    pub fn num_provers(&self) -> u64 {
        self.provers.len() as u64
    }

    /// Number of active provers.
    pub fn num_active(&self) -> u64 {
        self.active.len() as u64
    }

    /// Active provers that are not busy now (see [`Engine::is_busy`]).
    pub fn num_available(&self) -> u64 {
        self.num_available_at(self.now)
    }

    /// Active provers that are not busy at `at`.
    pub fn num_available_at(&self, at: UnixMillis) -> u64 {
        let busy_active = self
            .busy
            .keys()
            .filter(|p| self.is_busy_at(**p, at) && self.prover(**p).is_some_and(|r| r.active))
            .count();
        (self.active.len().saturating_sub(busy_active)) as u64
    }

    /// Whether a prover is busy now: selected for the first attempt of a block's round (or as
    /// an aggregator) whose T3 has not closed yet.
    pub fn is_busy(&self, prover: ProverIndex) -> bool {
        self.is_busy_at(prover, self.now)
    }

    /// Whether a prover is busy at `at`.
    pub(super) fn is_busy_at(&self, prover: ProverIndex, at: UnixMillis) -> bool {
        self.busy.get(&prover).is_some_and(|spans| spans.iter().any(|(_, until)| *until > at))
    }

    /// Makes `prover` busy for `block` until `until`.
    pub(super) fn mark_busy(&mut self, prover: ProverIndex, block: Root, until: UnixMillis) {
        self.busy.entry(prover).or_default().push((block, until));
    }

    /// Forgets the busy spans over by `at`.
    pub(super) fn prune_busy(&mut self, at: UnixMillis) {
        self.busy.retain(|_, spans| {
            spans.retain(|(_, until)| *until > at);
            !spans.is_empty()
        });
    }

    /// Forgets the busy spans of an orphaned block.
    pub(super) fn release_block(&mut self, block: &Root) {
        self.busy.retain(|_, spans| {
            spans.retain(|(b, _)| b != block);
            !spans.is_empty()
        });
    }

    fn record_mut(&mut self, prover: ProverIndex) -> Result<&mut ProverRecord> {
        usize::try_from(prover.0)
            .ok()
            .and_then(|i| self.provers.get_mut(i))
            .ok_or(Error::UnknownProver { prover })
    }

    pub(super) fn active_record(&self, prover: ProverIndex) -> Result<&ProverRecord> {
        let record = self.prover(prover).ok_or(Error::UnknownProver { prover })?;
        if !record.active {
            return Err(Error::ProverNotActive { prover });
        }
        Ok(record)
    }

    pub(super) fn pubkey(&self, prover: ProverIndex) -> Result<BlsPublicKey> {
        self.prover(prover).map(|r| r.pubkey).ok_or(Error::UnknownProver { prover })
    }
}
