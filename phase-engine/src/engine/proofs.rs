//! Partial and full proofs: who may send them and when, the checks of a full proof's parts and
//! reuse Bloom filter, and the STARK targets they are verified against.

use super::{
    Engine,
    deadlines::classify,
    state::{RoundState, T1Kind},
    verify::{Pending, PendingData, Stage, Staged},
};
use crate::{
    actions::{PartCheck, RequestId, SignatureCheck, StarkTarget},
    bloom::ReuseBloom,
    error::{Error, Result},
    messages::{FullProofBody, MessageKind, SignedFullProof, SignedPartialProof},
    outcome::PartRef,
    types::{AirIndex, Phase, ProverIndex, Root, UnixMillis},
};

impl Engine {
    pub(super) fn check_full_body(
        &self,
        round: &RoundState,
        submitter: ProverIndex,
        body: &FullProofBody,
    ) -> Result<Vec<PartRef>> {
        let parts: Vec<PartRef> = body.parts.iter().copied().collect();
        if parts.len() != usize::try_from(round.num_airs).unwrap_or(usize::MAX) {
            let position =
                u32::try_from(parts.len().min(round.num_airs as usize)).unwrap_or(u32::MAX);
            return Err(Error::InvalidParts { position, expected: AirIndex(position) });
        }
        let bloom = ReuseBloom::from_bytes(&body.reuse_bloom);
        for (i, part) in (0u32..).zip(&parts) {
            if part.air != AirIndex(i) {
                return Err(Error::InvalidParts { position: i, expected: AirIndex(i) });
            }
            if self.prover(part.author).is_none() {
                return Err(Error::UnknownProver { prover: part.author });
            }
            if part.author != submitter && !bloom.contains(part) {
                return Err(Error::BloomMismatch { missing: *part });
            }
        }
        Ok(parts)
    }

    pub(super) fn full_target(
        &self,
        round: &RoundState,
        submitter: ProverIndex,
        parts: &[PartRef],
        bundle: Vec<u8>,
    ) -> Result<StarkTarget> {
        let mut checks = Vec::with_capacity(parts.len());
        for part in parts {
            checks.push(PartCheck {
                part: *part,
                author_pubkey: self.pubkey(part.author)?,
                committed_trace_root: round.committed_root(part.author, part.air),
            });
        }
        Ok(StarkTarget::FullProof {
            round: round.key,
            slot: round.slot,
            num_airs: round.num_airs,
            submitter,
            parts: checks,
            bundle,
        })
    }

    /// Whether `prover` may send a partial for `air`: `Ok(true)` assigned, `Ok(false)` open.
    fn partial_standing(
        round: &RoundState,
        prover: ProverIndex,
        air: AirIndex,
        trace_root: Root,
    ) -> Result<bool> {
        if air.0 >= round.num_airs {
            return Err(Error::AirOutOfRange { air, num_airs: round.num_airs });
        }
        let t1 = round.t1.get(&prover);
        if matches!(t1.map(|e| &e.kind), Some(T1Kind::Decline)) {
            return Err(Error::Declined { prover });
        }
        let assigned = round.assigned_airs(prover).is_some_and(|airs| airs.contains(&air));
        if assigned {
            let committed = round
                .committed_root(prover, air)
                .ok_or(Error::NoCommitment { prover, key: round.key })?;
            if committed != trace_root {
                return Err(Error::CommitmentMismatch { prover, air, committed, got: trace_root });
            }
            Ok(true)
        } else if round.open_slots(air) > 0 {
            Ok(false)
        } else {
            Err(Error::NotAssigned { prover, air })
        }
    }

    pub(super) fn on_partial(
        &mut self,
        m: SignedPartialProof,
        sealed: Option<Root>,
        now: UnixMillis,
    ) -> Result<Staged> {
        let p = &m.message;
        let key = p.round.key();
        let round = self.open_round(&key, p.round.slot)?;
        self.active_record(p.prover)?;
        let deadline = round.deadlines.graced_close(Phase::T2);
        if now >= deadline {
            return Err(Error::Late { kind: MessageKind::PartialProof, arrived_at: now, deadline });
        }
        let assigned = Self::partial_standing(round, p.prover, p.air, p.trace_root)?;
        let signing_root = sealed.unwrap_or_else(|| self.domains.partial(p, &round.ref_root));
        if round.seen.contains(&signing_root) {
            return Err(Error::Duplicate { signing_root });
        }
        if round.partials.contains_key(&(p.prover, p.air)) {
            return Err(Error::AlreadySubmitted {
                prover: p.prover,
                kind: MessageKind::PartialProof,
            });
        }
        let author_pubkey = self.pubkey(p.prover)?;
        let target = StarkTarget::Partial {
            round: key,
            slot: round.slot,
            air: p.air,
            num_airs: round.num_airs,
            author: p.prover,
            author_pubkey,
            trace_root: p.trace_root,
            proof: Vec::new(),
        };
        let mut target = target;
        if let StarkTarget::Partial { proof, .. } = &mut target {
            *proof = m.message.proof.to_vec();
        }
        let check = SignatureCheck {
            request: RequestId(0),
            pubkey: author_pubkey,
            signing_root,
            signature: m.signature,
            proof_of_possession: None,
        };
        let pending = Pending {
            kind: MessageKind::PartialProof,
            stage: Stage::Signature,
            signing_root,
            prover: m.message.prover,
            arrived: now,
            includer: None,
            round: Some(key),
            block_root: Some(key.block_root),
            data: PendingData::Partial { air: m.message.air, assigned, target: Some(target) },
        };
        Ok((check, pending))
    }

    pub(super) fn on_full_proof(
        &mut self,
        m: SignedFullProof,
        sealed: Option<Root>,
        now: UnixMillis,
    ) -> Result<Staged> {
        let f = &m.message;
        let key = f.round.key();
        let round = self.open_round(&key, f.round.slot)?;
        self.active_record(f.submitter)?;
        // Selected provers may send a standalone full proof from T2 on (in T1 it rides in
        // their one commitment); anyone from T3 on.
        let selected = round.position.contains_key(&f.submitter);
        let first = if selected { Phase::T2 } else { Phase::T3 };
        if now < round.deadlines.open(first) {
            let phase = round.deadlines.nominal_phase_at(now).unwrap_or(Phase::T1);
            if !selected && phase == Phase::T2 {
                return Err(Error::NotSelected { prover: f.submitter, key });
            }
            return Err(Error::WrongPhase { kind: MessageKind::FullProof, phase });
        }
        let phase = classify(&round.deadlines, first, now).ok_or(Error::Late {
            kind: MessageKind::FullProof,
            arrived_at: now,
            deadline: round.deadlines.graced_close(Phase::T5),
        })?;
        if let Some(done) = round.finalized_in
            && phase > done
        {
            return Err(Error::AlreadyFinalized { key, phase: done });
        }
        let signing_root = sealed.unwrap_or_else(|| self.domains.full(f, &round.ref_root));
        if round.seen.contains(&signing_root) {
            return Err(Error::Duplicate { signing_root });
        }
        if round.full.contains_key(&f.submitter) {
            return Err(Error::AlreadySubmitted {
                prover: f.submitter,
                kind: MessageKind::FullProof,
            });
        }
        let parts = self.check_full_body(round, f.submitter, &f.body)?;
        let target = self.full_target(round, f.submitter, &parts, f.body.bundle.to_vec())?;
        let check = SignatureCheck {
            request: RequestId(0),
            pubkey: self.pubkey(f.submitter)?,
            signing_root,
            signature: m.signature,
            proof_of_possession: None,
        };
        let pending = Pending {
            kind: MessageKind::FullProof,
            stage: Stage::Signature,
            signing_root,
            prover: f.submitter,
            arrived: now,
            includer: None,
            round: Some(key),
            block_root: Some(key.block_root),
            data: PendingData::FullProof { phase, parts, target: Some(target) },
        };
        Ok((check, pending))
    }
}
