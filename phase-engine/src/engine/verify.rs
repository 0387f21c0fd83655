//! Verification requests: the checked messages waiting for a verdict, the signature and STARK
//! requests, [`Engine::on_verification`], and the acceptance of verified messages.

use serde::{Deserialize, Serialize};

use super::{
    Engine,
    state::{AggEntry, FullEntry, PartialEntry, T1Kind},
};
use crate::{
    actions::{
        Accepted, Action, Progress, ProverRecord, RequestId, SignatureCheck, StarkCheck,
        StarkTarget, Verdict,
    },
    error::{Error, Result},
    messages::{FullProofBody, MessageKind},
    outcome::{PartRef, RoundKey},
    types::{AirIndex, Phase, ProverIndex, Root, UnixMillis, ValidatorIndex},
};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum PendingData {
    Registration(ProverRecord),
    Commitment { roots: Vec<Root>, full: Option<FullProofBody> },
    Decline,
    Partial { air: AirIndex, assigned: bool, target: Option<StarkTarget> },
    FullProof { phase: Phase, parts: Vec<PartRef>, target: Option<StarkTarget> },
    AggProof { target: Option<StarkTarget> },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum Stage {
    Signature,
    Proof,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Pending {
    pub(super) kind: MessageKind,
    pub(super) stage: Stage,
    pub(super) signing_root: Root,
    pub(super) prover: ProverIndex,
    pub(super) arrived: UnixMillis,
    /// The validator credited with including the message, when the caller says who it is
    /// ([`Engine::on_included_message`]); `None`: the proposer of the first block after arrival.
    pub(super) includer: Option<ValidatorIndex>,
    pub(super) round: Option<RoundKey>,
    pub(super) block_root: Option<Root>,
    pub(super) data: PendingData,
}

/// A checked message: its signature check and what waits on it.
pub(super) type Staged = (SignatureCheck, Pending);

impl Engine {
    fn next_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request = self.next_request.saturating_add(1);
        id
    }

    pub(super) fn request_signature(
        &mut self,
        mut check: SignatureCheck,
        pending: Pending,
    ) -> RequestId {
        let id = self.next_id();
        check.request = id;
        if let Some(key) = pending.round
            && let Ok(r) = self.round_mut(&key)
        {
            r.pending = r.pending.saturating_add(1);
            r.seen.insert(pending.signing_root);
        }
        if let Some(root) = pending.block_root
            && pending.kind == MessageKind::AggProof
            && let Some(b) = self.blocks.get_mut(&root)
        {
            b.agg_pending = b.agg_pending.saturating_add(1);
            b.agg_seen.insert(pending.signing_root);
        }
        self.pending.insert(id, pending);
        self.actions.push_back(Action::VerifySignature(check));
        id
    }

    fn request_stark(&mut self, target: StarkTarget, mut pending: Pending) -> RequestId {
        let id = self.next_id();
        pending.stage = Stage::Proof;
        if let Some(key) = pending.round
            && let Ok(r) = self.round_mut(&key)
        {
            r.pending = r.pending.saturating_add(1);
        }
        if let Some(root) = pending.block_root
            && pending.kind == MessageKind::AggProof
            && let Some(b) = self.blocks.get_mut(&root)
        {
            b.agg_pending = b.agg_pending.saturating_add(1);
        }
        self.pending.insert(id, pending);
        self.actions.push_back(Action::VerifyStark(StarkCheck { request: id, target }));
        id
    }

    /// The verdict of a requested check. Returns how the message stands now: waiting for its
    /// STARK check, accepted, or rejected with a typed reason ([`Error::BadSignature`],
    /// [`Error::InvalidProof`], [`Error::Equivocation`], ...).
    pub fn on_verification(&mut self, verdict: Verdict) -> Result<Progress> {
        let pending = self
            .pending
            .remove(&verdict.request)
            .ok_or(Error::UnknownRequest { request: verdict.request })?;
        // The request no longer holds its round or block open.
        let now = self.now;
        if let Some(key) = pending.round
            && let Ok(r) = self.round_mut(&key)
        {
            r.pending = r.pending.saturating_sub(1);
            if !verdict.valid && matches!(pending.stage, Stage::Signature) {
                // Forget the root: a correctly signed copy may still come.
                r.seen.remove(&pending.signing_root);
            }
            // The last check of a round past its close lets it close.
            let closing = r.finalized_in.unwrap_or(Phase::T5);
            if r.pending == 0 && now >= r.deadlines.graced_close(closing) {
                self.changed = true;
            }
        }
        if pending.kind == MessageKind::AggProof
            && let Some(root) = pending.block_root
            && let Some(b) = self.blocks.get_mut(&root)
        {
            b.agg_pending = b.agg_pending.saturating_sub(1);
            if b.agg_pending == 0 {
                self.changed = true;
            }
            if !verdict.valid && matches!(pending.stage, Stage::Signature) {
                b.agg_seen.remove(&pending.signing_root);
            }
            if !verdict.valid && matches!(pending.stage, Stage::Proof) {
                b.agg.remove(&pending.prover);
            }
        }
        // An invalid proof frees its slot: the author may send a valid one.
        if !verdict.valid
            && matches!(pending.stage, Stage::Proof)
            && let Some(key) = pending.round
            && let Ok(r) = self.round_mut(&key)
        {
            match &pending.data {
                PendingData::Partial { air, .. } => {
                    r.partials.remove(&(pending.prover, *air));
                }
                PendingData::FullProof { .. } => {
                    r.full.remove(&pending.prover);
                }
                _ => {}
            }
        }
        if let PendingData::Registration(record) = &pending.data {
            self.pending_registrations.remove(&record.pubkey);
        }
        let result = if verdict.valid {
            self.accept(pending)
        } else {
            match pending.stage {
                Stage::Signature => Err(Error::BadSignature { signing_root: pending.signing_root }),
                Stage::Proof => Err(Error::InvalidProof { signing_root: pending.signing_root }),
            }
        };
        self.advance(now);
        result
    }

    fn accepted(&mut self, pending: &Pending) -> Progress {
        let accepted = Accepted {
            kind: pending.kind,
            signing_root: pending.signing_root,
            prover: pending.prover,
            round: pending.round,
        };
        self.actions.push_back(Action::Accepted(accepted.clone()));
        Progress::Accepted(accepted)
    }

    pub(super) fn accept(&mut self, mut pending: Pending) -> Result<Progress> {
        let stage = pending.stage.clone();
        match (&mut pending.data, stage) {
            (PendingData::Registration(record), _) => {
                let record = record.clone();
                let pubkey = record.pubkey;
                let prover = self.add_prover(record)?;
                pending.prover = prover;
                self.actions.push_back(Action::ProverRegistered { prover, pubkey });
                Ok(self.accepted(&pending))
            }
            (PendingData::Commitment { roots, full }, _) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let roots = std::mem::take(roots);
                let full = full.take();
                self.accept_t1(&pending, key, T1Kind::Commit(roots))?;
                let progress = self.accepted(&pending);
                if let Some(body) = full {
                    let round = self.round_ref(&key)?;
                    if round.full.contains_key(&pending.prover) {
                        return Ok(progress);
                    }
                    let parts: Vec<PartRef> = body.parts.iter().copied().collect();
                    let target =
                        self.full_target(round, pending.prover, &parts, body.bundle.to_vec())?;
                    let full_pending = Pending {
                        kind: MessageKind::FullProof,
                        stage: Stage::Proof,
                        signing_root: pending.signing_root,
                        prover: pending.prover,
                        arrived: pending.arrived,
                        includer: pending.includer,
                        round: Some(key),
                        block_root: Some(key.block_root),
                        data: PendingData::FullProof {
                            phase: Phase::T1,
                            parts: parts.clone(),
                            target: None,
                        },
                    };
                    let r = self.round_mut(&key)?;
                    r.full.insert(
                        pending.prover,
                        FullEntry {
                            arrived: pending.arrived,
                            includer: pending.includer,
                            phase: Phase::T1,
                            parts,
                            valid: false,
                        },
                    );
                    self.request_stark(target, full_pending);
                }
                Ok(progress)
            }
            (PendingData::Decline, _) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                self.accept_t1(&pending, key, T1Kind::Decline)?;
                let r = self.round_mut(&key)?;
                let airs =
                    r.assigned_airs(pending.prover).map(<[AirIndex]>::to_vec).unwrap_or_default();
                for air in airs {
                    if let Some(n) = usize::try_from(air.0).ok().and_then(|i| r.open.get_mut(i)) {
                        *n = n.saturating_add(1);
                    }
                }
                Ok(self.accepted(&pending))
            }
            (PendingData::Partial { air, assigned, target }, Stage::Signature) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let (air, assigned) = (*air, *assigned);
                let target = target.take();
                let r = self.round_mut(&key)?;
                if r.partials.contains_key(&(pending.prover, air)) {
                    return Err(Error::AlreadySubmitted {
                        prover: pending.prover,
                        kind: MessageKind::PartialProof,
                    });
                }
                r.partials.insert(
                    (pending.prover, air),
                    PartialEntry {
                        arrived: pending.arrived,
                        includer: pending.includer,
                        assigned,
                        valid: false,
                    },
                );
                let target = target.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                Ok(Progress::Pending(self.request_stark(target, pending)))
            }
            (PendingData::Partial { air, .. }, Stage::Proof) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let air = *air;
                let r = self.round_mut(&key)?;
                if let Some(e) = r.partials.get_mut(&(pending.prover, air)) {
                    e.valid = true;
                }
                Ok(self.accepted(&pending))
            }
            (PendingData::FullProof { phase, parts, target }, Stage::Signature) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let phase = *phase;
                let parts = parts.clone();
                let target =
                    target.take().ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let r = self.round_mut(&key)?;
                if r.full.contains_key(&pending.prover) {
                    return Err(Error::AlreadySubmitted {
                        prover: pending.prover,
                        kind: MessageKind::FullProof,
                    });
                }
                r.full.insert(
                    pending.prover,
                    FullEntry {
                        arrived: pending.arrived,
                        includer: pending.includer,
                        phase,
                        parts,
                        valid: false,
                    },
                );
                Ok(Progress::Pending(self.request_stark(target, pending)))
            }
            (PendingData::FullProof { phase, .. }, Stage::Proof) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let phase = *phase;
                let r = self.round_mut(&key)?;
                if let Some(done) = r.finalized_in
                    && phase > done
                {
                    r.full.remove(&pending.prover);
                    return Err(Error::AlreadyFinalized { key, phase: done });
                }
                if let Some(e) = r.full.get_mut(&pending.prover) {
                    e.valid = true;
                }
                let first = r.finalized_in.is_none();
                if r.finalized_in.is_none_or(|done| phase < done) {
                    r.finalized_in = Some(phase);
                    // An earlier close, and (with sub-blocks) the AggProof window moves.
                    self.changed = true;
                }
                if first {
                    self.actions.push_back(Action::RoundFinalized {
                        key,
                        phase,
                        submitter: pending.prover,
                    });
                }
                Ok(self.accepted(&pending))
            }
            (PendingData::AggProof { target }, Stage::Signature) => {
                let root =
                    pending.block_root.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let target =
                    target.take().ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let b =
                    self.blocks.get_mut(&root).ok_or(Error::UnknownBlock { block_root: root })?;
                if b.agg.contains_key(&pending.prover) {
                    return Err(Error::AlreadySubmitted {
                        prover: pending.prover,
                        kind: MessageKind::AggProof,
                    });
                }
                b.agg.insert(
                    pending.prover,
                    AggEntry { arrived: pending.arrived, includer: pending.includer, valid: false },
                );
                Ok(Progress::Pending(self.request_stark(target, pending)))
            }
            (PendingData::AggProof { .. }, Stage::Proof) => {
                let root =
                    pending.block_root.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let b =
                    self.blocks.get_mut(&root).ok_or(Error::UnknownBlock { block_root: root })?;
                if let Some(e) = b.agg.get_mut(&pending.prover) {
                    e.valid = true;
                }
                Ok(self.accepted(&pending))
            }
        }
    }
}
