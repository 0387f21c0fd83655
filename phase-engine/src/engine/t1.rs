//! T1 messages: commitments (trace roots, optionally with a full proof) and declines, their
//! checks, and the recording of verified ones (or the equivocation they make).

use super::{
    Engine,
    state::{RoundState, T1Entry, T1Kind},
    verify::{Pending, PendingData, Stage, Staged},
};
use crate::{
    actions::{Action, RequestId, SignatureCheck},
    error::{Error, Result},
    messages::{MessageKind, SignedCommitment, SignedDecline},
    outcome::{EquivocationRecord, RoundKey},
    types::{Phase, Root, UnixMillis},
};

impl Engine {
    fn check_t1_window(round: &RoundState, kind: MessageKind, now: UnixMillis) -> Result<()> {
        let deadline = round.deadlines.graced_close(Phase::T1);
        if now >= deadline {
            return Err(Error::Late { kind, arrived_at: now, deadline });
        }
        Ok(())
    }

    pub(super) fn on_commitment(
        &mut self,
        m: SignedCommitment,
        sealed: Option<Root>,
        now: UnixMillis,
    ) -> Result<Staged> {
        let c = &m.message;
        let key = c.round.key();
        let round = self.open_round(&key, c.round.slot)?;
        let airs =
            round.assigned_airs(c.prover).ok_or(Error::NotSelected { prover: c.prover, key })?;
        Self::check_t1_window(round, MessageKind::Commitment, now)?;
        let signing_root = sealed.unwrap_or_else(|| self.domains.commitment(c, &round.ref_root));
        if round.seen.contains(&signing_root) {
            return Err(Error::Duplicate { signing_root });
        }
        if c.trace_roots.len() != airs.len()
            || c.trace_roots.iter().zip(airs).any(|(tr, a)| tr.air != *a)
        {
            return Err(Error::WrongAirSet { prover: c.prover, expected: airs.to_vec() });
        }
        let roots = c.trace_roots.iter().map(|t| t.trace_root).collect();
        let full = c.full_proof.first().cloned();
        if let Some(body) = &full {
            self.check_full_body(round, c.prover, body)?;
        }
        let pubkey = self.pubkey(c.prover)?;
        let check = SignatureCheck {
            request: RequestId(0),
            pubkey,
            signing_root,
            signature: m.signature,
            proof_of_possession: None,
        };
        let pending = Pending {
            kind: MessageKind::Commitment,
            stage: Stage::Signature,
            signing_root,
            prover: c.prover,
            arrived: now,
            includer: None,
            round: Some(key),
            block_root: Some(key.block_root),
            data: PendingData::Commitment { roots, full },
        };
        Ok((check, pending))
    }

    pub(super) fn on_decline(
        &mut self,
        m: SignedDecline,
        sealed: Option<Root>,
        now: UnixMillis,
    ) -> Result<Staged> {
        let d = &m.message;
        let key = d.round.key();
        let round = self.open_round(&key, d.round.slot)?;
        round.assigned_airs(d.prover).ok_or(Error::NotSelected { prover: d.prover, key })?;
        Self::check_t1_window(round, MessageKind::Decline, now)?;
        let signing_root = sealed.unwrap_or_else(|| self.domains.decline(d, &round.ref_root));
        if round.seen.contains(&signing_root) {
            return Err(Error::Duplicate { signing_root });
        }
        let check = SignatureCheck {
            request: RequestId(0),
            pubkey: self.pubkey(d.prover)?,
            signing_root,
            signature: m.signature,
            proof_of_possession: None,
        };
        let pending = Pending {
            kind: MessageKind::Decline,
            stage: Stage::Signature,
            signing_root,
            prover: d.prover,
            arrived: now,
            includer: None,
            round: Some(key),
            block_root: Some(key.block_root),
            data: PendingData::Decline,
        };
        Ok((check, pending))
    }

    /// Records a verified T1 message, or the equivocation it makes.
    pub(super) fn accept_t1(
        &mut self,
        pending: &Pending,
        key: RoundKey,
        kind: T1Kind,
    ) -> Result<()> {
        let r = self.round_mut(&key)?;
        if let Some(first) = r.t1.get(&pending.prover) {
            let record = EquivocationRecord {
                prover: pending.prover,
                first: first.signing_root,
                second: pending.signing_root,
            };
            if !r.equivocations.contains(&record) {
                r.equivocations.push(record.clone());
                self.actions.push_back(Action::Equivocation { key, record: record.clone() });
            }
            return Err(Error::Equivocation {
                prover: record.prover,
                first: record.first,
                second: record.second,
            });
        }
        r.t1.insert(
            pending.prover,
            T1Entry {
                signing_root: pending.signing_root,
                arrived: pending.arrived,
                includer: pending.includer,
                kind,
            },
        );
        Ok(())
    }
}
