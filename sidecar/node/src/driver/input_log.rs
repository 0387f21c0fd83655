//! Write-ahead input log: every input is appended to the store's log before it is applied;
//! applying one logged input (live or replayed) to the engine and the driver's state; and the
//! replay of the whole log into a fresh engine on restart.

use std::{collections::BTreeMap, sync::Arc};

use beacon_api::SubmissionReceipt;
use phase_engine::{
    BlsPublicKey, Progress, ProverRecord, RequestId, Root, SealedMessage, UnixMillis,
};
use tracing::{info, warn};

use super::{
    Driver, Lane, Waiter, blocks::BlockRecord, checks::Check, early::message_block,
    metrics::kind_label,
};
use crate::{
    error::NodeResult,
    gossip::{GossipResult, Gossiped},
    log::{self, LoggedInput},
    verify::BlockWork,
};

impl Driver {
    /// Replays the stored input log after the restored checkpoint (all of it without one) into
    /// the engine (at start), then publishes again the accepted submissions of rounds still
    /// open and runs the checks whose verdict was never logged.
    pub(super) fn replay(&mut self) -> NodeResult<()> {
        let logged = log::read_from(&self.store, self.seq)?;
        let replayed = logged.len();
        for (seq, input) in logged {
            if seq != self.seq {
                return Err(crate::NodeError::CorruptLog {
                    index: self.seq,
                    reason: format!("missing: the next entry is {seq}"),
                });
            }
            self.seq = self.seq.saturating_add(1);
            self.apply(input)?;
        }
        self.replaying = false;
        // Accepted submissions of rounds still open: published again (peers that have them
        // drop the copy: same envelope, same message id).
        let open: std::collections::BTreeSet<Root> =
            self.engine.open_rounds().iter().map(|k| k.block_root).collect();
        for (item, first_seen) in std::mem::take(&mut self.republish) {
            let Gossiped::Message(message) = &item else { continue };
            if message_block(message).is_some_and(|(_, root)| open.contains(&root)) {
                self.publish(item, first_seen);
            }
        }
        // Checks requested during replay whose verdict was never logged: run them now.
        let pending: Vec<Check> = self.outstanding.values().cloned().collect();
        for check in pending {
            self.dispatch(check, Lane::Live);
        }
        let settling: Vec<Check> =
            self.settling.iter().flat_map(|s| s.outstanding.values().cloned()).collect();
        if !settling.is_empty() {
            self.dispatch_settling(settling);
        }
        if replayed > 0 {
            info!(
                inputs = replayed,
                open_rounds = self.engine.open_rounds().len(),
                "replayed the input log"
            );
        }
        Ok(())
    }

    pub(super) async fn append(&mut self, input: LoggedInput) -> NodeResult<()> {
        let store = Arc::clone(&self.store);
        let seq = self.seq;
        tokio::task::spawn_blocking(move || log::append(&store, seq, &input))
            .await
            .map_err(|_| crate::NodeError::Stopped)??;
        self.seq = self.seq.saturating_add(1);
        Ok(())
    }

    pub(super) async fn log_and_apply(&mut self, input: LoggedInput) -> NodeResult<()> {
        self.append(input.clone()).await?;
        self.apply(input)
    }

    /// Gives `message` to the live engine at `arrived` (received here at `received`).
    pub(super) fn apply_message(
        &mut self,
        sealed: SealedMessage,
        arrived: UnixMillis,
        received: UnixMillis,
        publish: Option<UnixMillis>,
    ) -> phase_engine::Result<RequestId> {
        let signing_root = sealed.signing_root();
        let message = sealed.message().clone();
        let request = self.engine.on_sealed_message(sealed, arrived)?;
        self.in_flight.insert(signing_root, (message, publish));
        self.received.insert(signing_root, received);
        self.requests.insert(request, signing_root);
        Ok(request)
    }

    /// Applies one logged input (live or replayed) to the engine.
    pub(super) fn apply(&mut self, input: LoggedInput) -> NodeResult<()> {
        match input {
            LoggedInput::Block { info, data, now, graffiti } => {
                self.activate_canonical_registrations(info.slot);
                // By the clock, registrations activate at block boundaries, in pubkey order: those first seen
                // at least the clock disparity before the block's slot start (every sidecar has
                // them by then), or logged without a time (older logs).
                let grace = self.engine.config().phases.max_clock_disparity_ms;
                type Pending = BTreeMap<BlsPublicKey, (ProverRecord, Option<UnixMillis>)>;
                let (ready, waiting): (Pending, Pending) =
                    std::mem::take(&mut self.pending_registrations).into_iter().partition(
                        |(_, (_, seen))| {
                            seen.is_none_or(|t| t.0.saturating_add(grace) <= info.slot_start.0)
                        },
                    );
                self.pending_registrations = waiting;
                for (_, (record, _)) in ready {
                    match self.engine.add_prover(record.clone()) {
                        Ok(index) => {
                            info!(prover = %index, pubkey = %record.pubkey, "prover registered");
                        }
                        Err(e) => warn!(error = %e, "registration not activated"),
                    }
                }
                self.last_block = Some((info.slot, info.root));
                self.by_slot.insert(info.slot, info.root);
                self.block_log.insert(info.root, (info.slot, self.seq.saturating_sub(1)));
                let horizon = info.slot.0.saturating_sub(self.retention_slots);
                if info.slot.0.is_multiple_of(64) {
                    let expired: Vec<Root> = self
                        .block_log
                        .iter()
                        .filter(|(_, (slot, _))| slot.0 < horizon)
                        .map(|(root, _)| *root)
                        .collect();
                    for root in &expired {
                        self.block_log.remove(root);
                    }
                    self.expired.extend(expired);
                    let kept = &self.block_log;
                    self.block_airs.retain(|root, _| kept.contains_key(root));
                }
                let work = BlockWork {
                    root: info.root,
                    gas_used: info.gas_used,
                    data,
                    airs: BTreeMap::new(),
                };
                self.blocks.insert(
                    info.root,
                    BlockRecord {
                        slot: info.slot,
                        work: Some(Arc::new(work)),
                        ..Default::default()
                    },
                );
                if let Err(e) = self.engine.on_block(info, now) {
                    warn!(slot = %info.slot, error = %e, "block refused by the engine");
                }
                self.settling_block(info, graffiti);
                self.prune();
            }
            LoggedInput::Registration { record, first_seen, signed } => {
                match (signed, self.settling.is_some()) {
                    (Some(registration), true) => {
                        self.settling_registration(*registration, first_seen);
                    }
                    _ => {
                        if self.engine.prover_by_pubkey(&record.pubkey).is_none() {
                            self.pending_registrations
                                .entry(record.pubkey)
                                .or_insert((record, first_seen));
                        }
                    }
                }
            }
            LoggedInput::Message { message, arrived } => {
                let arrived = arrived.max(self.engine.now());
                let publish = self.publish.is_some().then_some(arrived);
                let sealed = self.engine.sealer().seal(message);
                self.settling_message(&sealed);
                let _ = self.apply_message(sealed, arrived, arrived, publish);
            }
            LoggedInput::Relayed { message, arrived, received } => {
                let sealed = self.engine.sealer().seal(message);
                self.settling_message(&sealed);
                let received = received.unwrap_or(arrived);
                let _ = self.apply_message(sealed, arrived, received, None);
            }
            LoggedInput::Record(record) => self.settling_record(record),
            LoggedInput::GaveUp(slot) => self.settling_give_up(slot),
            LoggedInput::SettlingVerdict(verdict) => self.settling_verdict(verdict)?,
            LoggedInput::Verdict(verdict) => {
                if let Some(check) = self.outstanding.remove(&verdict.request) {
                    self.remember_live_verdict(&check, verdict.valid);
                }
                let reply = self.replies.remove(&verdict.request);
                let message = self.requests.remove(&verdict.request);
                let result = self.engine.on_verification(verdict);
                if let (Err(_), Some(root)) = (&result, message) {
                    // Refused: forget it (a resend is judged again, as a duplicate).
                    self.in_flight.remove(&root);
                    self.received.remove(&root);
                }
                match result {
                    Ok(Progress::Pending(next)) => {
                        if let Some(root) = message {
                            self.requests.insert(next, root);
                        }
                        if let Some(reply) = reply {
                            self.replies.insert(next, reply);
                        }
                    }
                    Ok(progress) => match reply {
                        Some((kind, root, Waiter::Http(reply))) => {
                            let _ = reply
                                .send(Ok(SubmissionReceipt::from_progress(kind, root, &progress)));
                        }
                        Some((_, _, Waiter::Gossip(reply))) => {
                            let _ = reply.send(GossipResult::Accepted);
                        }
                        None => {}
                    },
                    Err(e) => {
                        if let Some((kind, _, waiter)) = reply {
                            // Labelled as gossip judges it: an equivocation (the first message
                            // stands) is ignored, not rejected, as on arrival (`submit.rs`).
                            let label = match crate::gossip::error_verdict(&e) {
                                sidecar_p2p::MessageVerdict::Reject => {
                                    sidecar_metrics::VerdictLabel::Reject
                                }
                                _ => sidecar_metrics::VerdictLabel::Ignore,
                            };
                            self.metrics.message_verdict(kind_label(kind), label, "verification");
                            match waiter {
                                Waiter::Http(reply) => {
                                    let _ = reply.send(Err(super::submit::api_error(&e)));
                                }
                                Waiter::Gossip(reply) => {
                                    let _ = reply.send(GossipResult::Refused(e));
                                }
                            }
                        }
                    }
                }
            }
            LoggedInput::Tick(now) => self.engine.on_tick(now),
            LoggedInput::Reorg { orphaned, fork } => {
                let dropped = self.engine.on_reorg(&orphaned, fork.0);
                for root in &orphaned {
                    if let Some(b) = self.blocks.remove(root) {
                        self.by_slot.remove(&b.slot);
                    }
                    self.verifier.forget(root);
                }
                if !self.replaying {
                    for _ in &dropped {
                        self.metrics.round_ended(
                            sidecar_metrics::PhaseLabel::T1,
                            sidecar_metrics::RoundOutcomeLabel::Orphaned,
                        );
                    }
                }
                warn!(orphaned = orphaned.len(), rounds = dropped.len(), fork_slot = %fork.0, "reorg: orphaned rounds dropped");
                self.last_block = Some(fork);
                self.settling_reorg(phase_engine::Slot(fork.0.0.saturating_add(1)));
            }
        }
        self.process_actions()?;
        self.process_settling()
    }
}
