//! Messages and registrations from HTTP and gossip: duplicate checks, registration signature
//! checks, write-ahead logging, handing them to the engine, answering whoever waits, and
//! publishing accepted HTTP submissions on gossip.

use std::sync::Arc;

use beacon_api::{SubmissionReceipt, SubmissionStatus};
use phase_engine::{
    InclusionRecord, MessageKind, ProtocolMessage, ProverIndex, RequestId, Root, SignatureCheck,
    SignedProverRegistration, UnixMillis,
};
use tracing::{debug, warn};

use super::{Driver, GossipReply, Waiter, metrics::kind_label};
use crate::{
    error::NodeResult,
    gossip::{GossipResult, Gossiped},
    log::LoggedInput,
    signatures::verify_signatures,
};

impl Driver {
    /// Checks a registration first seen at `first_seen` (here, or by the sidecar that gossiped
    /// it) and queues it. Canonically it joins `inclusion.registration_delay_slots` after the
    /// slot of the canonical record that first includes it; by the clock, at the first block
    /// whose slot starts at least `max_clock_disparity_ms` after `first_seen` (by then every
    /// sidecar has it).
    pub(super) async fn register(
        &mut self,
        registration: SignedProverRegistration,
        reply: Waiter,
        first_seen: UnixMillis,
    ) -> NodeResult<()> {
        let ctx = *self.engine.signing_context();
        let signing_root = registration.signing_root(&ctx);
        let m = registration.message.clone();
        let answer = |reply: Waiter, status, index| match reply {
            Waiter::Http(r) => {
                let _ = r.send(Ok(receipt(MessageKind::Registration, signing_root, status, index)));
            }
            Waiter::Gossip(r) => {
                let _ = r.send(match status {
                    SubmissionStatus::Accepted => GossipResult::Accepted,
                    _ => GossipResult::Duplicate,
                });
            }
        };
        let invalid = |reply: Waiter, reason: &str| match reply {
            Waiter::Http(r) => {
                let _ = r.send(Err(beacon_api::Error::InvalidInput { reason: reason.into() }));
            }
            Waiter::Gossip(r) => {
                let _ = r.send(GossipResult::InvalidRegistration);
            }
        };
        if let Some(index) = self.engine.prover_by_pubkey(&m.pubkey) {
            answer(reply, SubmissionStatus::Duplicate, Some(index));
            return Ok(());
        }
        // Canonically, each distinct registration is kept (a record may name any of them);
        // by the clock, the first of a key.
        let known = match self.settling.as_ref() {
            Some(s) => s.rounds.registration(&signing_root).is_some(),
            None => self.pending_registrations.contains_key(&m.pubkey),
        };
        if known {
            answer(reply, SubmissionStatus::Duplicate, None);
            return Ok(());
        }
        if m.stake == 0 {
            invalid(reply, "stake must be positive");
            return Ok(());
        }
        let check = SignatureCheck {
            request: RequestId(0),
            pubkey: m.pubkey,
            signing_root,
            signature: registration.signature,
            proof_of_possession: Some(m.proof_of_possession),
        };
        let keys = Arc::clone(&self.keys);
        let valid = tokio::task::spawn_blocking(move || verify_signatures(&keys, &[check]))
            .await
            .map(|v| v.first().is_some_and(|v| v.valid))
            .unwrap_or(false);
        if !valid {
            invalid(reply, "invalid registration signature or proof of possession");
            return Ok(());
        }
        let record = m.record();
        let logged = LoggedInput::Registration {
            record,
            first_seen: Some(first_seen),
            signed: Some(Box::new(registration.clone())),
        };
        self.log_and_apply(logged).await?;
        if matches!(reply, Waiter::Http(_)) {
            self.publish(Gossiped::Registration(registration), first_seen);
        }
        // The index is assigned when the registration activates, at a later block.
        answer(reply, SubmissionStatus::Accepted, None);
        Ok(())
    }

    /// Takes a round message from HTTP or gossip: durably logged, then given to the engine;
    /// `waiter` gets the verdict. Gossip (`relayed`) keeps its arrival time as given (the
    /// sender's first-seen time, clamped); HTTP submissions are never earlier than the engine's
    /// clock.
    pub(super) async fn take_message(
        &mut self,
        message: ProtocolMessage,
        arrived: UnixMillis,
        waiter: Option<Waiter>,
        relayed: bool,
    ) -> NodeResult<()> {
        let kind = message.kind();
        // Hashed once: the signing root of a proof covers all its bytes.
        let sealed = self.engine.sealer().seal(message);
        let signing_root = sealed.signing_root();
        if self.in_flight.contains_key(&signing_root) {
            match waiter {
                Some(Waiter::Http(reply)) => {
                    let _ = reply.send(Ok(receipt(
                        kind,
                        signing_root,
                        SubmissionStatus::Duplicate,
                        None,
                    )));
                }
                Some(Waiter::Gossip(reply)) => {
                    let _ = reply.send(GossipResult::Duplicate);
                }
                None => {}
            }
            return Ok(());
        }
        // Write-ahead: the message is durable before the engine sees it.
        let message = sealed.message().clone();
        let (input, at, received) = if relayed {
            let received = self.now().max(arrived);
            let input = LoggedInput::Relayed { message, arrived, received: Some(received) };
            (input, arrived, received)
        } else {
            let at = arrived.max(self.engine.now());
            (LoggedInput::Message { message, arrived }, at, at)
        };
        self.append(input).await?;
        self.settling_message(&sealed);
        let publish = (!relayed && self.publish.is_some()).then_some(at);
        match self.apply_message(sealed, at, received, publish) {
            Ok(request) => {
                if let Some(waiter) = waiter {
                    self.replies.insert(request, (kind, signing_root, waiter));
                }
            }
            Err(e) => {
                let label = match crate::gossip::error_verdict(&e) {
                    sidecar_p2p::MessageVerdict::Reject => sidecar_metrics::VerdictLabel::Reject,
                    _ => sidecar_metrics::VerdictLabel::Ignore,
                };
                self.metrics.message_verdict(kind_label(kind), label, "engine");
                match waiter {
                    Some(Waiter::Http(reply)) => {
                        let answer = match e {
                            phase_engine::Error::Duplicate { .. } => {
                                Ok(receipt(kind, signing_root, SubmissionStatus::Duplicate, None))
                            }
                            other => Err(api_error(&other)),
                        };
                        let _ = reply.send(answer);
                    }
                    Some(Waiter::Gossip(reply)) => {
                        let _ = reply.send(GossipResult::Refused(e));
                    }
                    None => {}
                }
            }
        }
        self.process_actions()?;
        self.process_settling()
    }

    /// Takes an inclusion record from gossip (`reply`) or this node's own: kept if it may still
    /// matter (its slot not resolved yet, not in the future), durably logged, then given to the
    /// settling engine.
    pub(super) async fn take_record(
        &mut self,
        record: InclusionRecord,
        reply: Option<GossipReply>,
    ) -> NodeResult<()> {
        if let Err(reason) = self.wants_record(&record) {
            debug!(slot = %record.slot, reason, "inclusion record not kept");
            if let Some(reply) = reply {
                let _ = reply.send(GossipResult::Duplicate);
            }
            return Ok(());
        }
        self.log_and_apply(LoggedInput::Record(record)).await?;
        if let Some(reply) = reply {
            let _ = reply.send(GossipResult::Accepted);
        }
        Ok(())
    }

    /// Hands `item` to the publisher (no-op without gossip, or while replaying).
    pub(super) fn publish(&mut self, item: Gossiped, first_seen: UnixMillis) {
        if self.replaying {
            if self.publish.is_some() {
                self.republish.push((item, first_seen));
            }
            return;
        }
        if let Some(tx) = &self.publish
            && tx.try_send((item, first_seen)).is_err()
        {
            warn!("gossip publish queue full: message not published");
        }
    }
}

pub(super) fn receipt(
    kind: MessageKind,
    signing_root: Root,
    status: SubmissionStatus,
    prover_index: Option<ProverIndex>,
) -> SubmissionReceipt {
    SubmissionReceipt { kind, signing_root, status, prover_index }
}

/// The API answer to an engine refusal: an equivocation conflicts with what the node holds
/// (409, the first message stands), anything else is invalid input (400).
pub(super) fn api_error(error: &phase_engine::Error) -> beacon_api::Error {
    let reason = error.to_string();
    match error {
        phase_engine::Error::Equivocation { .. } => beacon_api::Error::Conflict { reason },
        _ => beacon_api::Error::InvalidInput { reason },
    }
}
