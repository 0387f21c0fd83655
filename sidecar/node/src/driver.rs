//! The driver task: the only owner of the [`Engine`]. It takes inputs from a channel, logs each
//! one durably before applying it ([`super::log`]), drains the engine's actions and executes them
//! (verification jobs, settlement, events), and answers queries.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
};

use beacon_api::{
    AccountBalance, BlockEventData, BlockRounds, FinalizedProof, ProverDuties, ProvingEvent,
    RegistryEntry, SubmissionReceipt, SubmissionStatus,
};
use phase_engine::{
    Action, BlockInfo, BlockOutcome, BlsPublicKey, Engine, MessageKind, Progress, ProtocolMessage,
    ProverIndex, ProverRecord, RequestId, Root, SignatureCheck, SignedAggProof, SignedFullProof,
    SignedPartialProof, SignedProverRegistration, Slot, StarkCheck, UnixMillis, Verdict,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{
    error::NodeResult,
    gossip::{GossipResult, Gossiped},
    log::{self, BlockData, LoggedInput},
    verify::{BlockWork, StarkVerifier, verify_signatures},
};
use crate::{SlotClock, Store, StoreBatch};
use sidecar_metrics::Metrics;

/// The answer to a submission.
pub(crate) type Reply = oneshot::Sender<beacon_api::Result<SubmissionReceipt>>;

/// A query run on the driver's state.
pub(crate) type Query = Box<dyn FnOnce(&Driver) + Send>;

/// The answer to a gossip message (its validation result follows from it).
pub(crate) type GossipReply = oneshot::Sender<GossipResult>;

/// Who waits for the verdict on a message.
enum Waiter {
    /// An HTTP submission: its receipt.
    Http(Reply),
    /// A gossip message: its validation result.
    Gossip(GossipReply),
}

/// Blocks whose records (slot, outcome, ledger) the driver keeps in memory, the latest by slot.
const RECORD_BLOCKS: usize = 256;
/// Settled blocks whose proofs (accepted partial proofs, full proofs, AggProof) and payload
/// data stay in memory, the latest by slot: what provers download while a block's rounds are
/// open, and a margin for late readers. A settled, proven block's finalised proof is also in
/// the store and served from there once it leaves memory; its partial proofs are not (they
/// only matter while its rounds are open), so they are answered with 404 then.
const PROOF_BLOCKS: usize = 2;
/// Blocks, settled or not, beyond which (counted from the latest, by slot) proofs and payload
/// data leave memory in any case: a block whose rounds never closed must not hold its proofs
/// for ever.
const MAX_PROOF_BLOCKS: usize = 64;
/// The store key (in the block root's message space) of a settled block's finalised proof.
const FINALIZED_PROOF_KEY: crate::MessageKey = [0xff; 32];

/// Gossip messages held until their block arrives, at most.
const EARLY_CAPACITY: usize = 512;
/// Blocks a held message waits for its own before it is dropped.
const EARLY_BLOCKS: u32 = 2;

/// A gossip message for a block this node has not seen yet.
struct Early {
    message: ProtocolMessage,
    arrived: UnixMillis,
    reply: GossipReply,
    /// Blocks fed since it was held.
    waited: u32,
}

/// An input of the driver.
pub(crate) enum Input {
    /// A new canonical block.
    Block {
        /// Engine view.
        info: BlockInfo,
        /// Payload data.
        data: BlockData,
    },
    /// A protocol message, with its arrival time; `reply` gets the verdict.
    Message {
        /// The message.
        message: ProtocolMessage,
        /// Arrival time.
        arrived: UnixMillis,
        /// Where to answer (HTTP), if anyone waits.
        reply: Option<Reply>,
    },
    /// A message or registration from gossip, with its arrival time; `reply` gets the result
    /// (the gossipsub validation verdict follows from it).
    Gossip {
        /// The message.
        item: Gossiped,
        /// Arrival time (the sender's first-seen time, clamped).
        arrived: UnixMillis,
        /// Where to answer.
        reply: GossipReply,
    },
    /// A prover registration.
    Registration {
        /// The registration.
        registration: SignedProverRegistration,
        /// Where to answer.
        reply: Reply,
    },
    /// Verdicts of verification jobs.
    Verdicts(Vec<Verdict>),
    /// A reorg: `orphaned` left the canonical chain, which now ends at `fork`.
    Reorg {
        /// Orphaned block roots.
        orphaned: Vec<Root>,
        /// The common ancestor (slot, root).
        fork: (Slot, Root),
    },
    /// A read of the driver's state.
    Query(Query),
}

/// A verification request not answered yet.
#[derive(Clone, Debug)]
enum Check {
    Signature(SignatureCheck),
    Stark(StarkCheck, Root),
}

/// What the node keeps about a block besides the engine.
#[derive(Default, Debug)]
struct BlockRecord {
    slot: Slot,
    work: Option<Arc<BlockWork>>,
    partials: Vec<SignedPartialProof>,
    full_proofs: BTreeMap<u32, SignedFullProof>,
    agg_proof: Option<SignedAggProof>,
    outcome: Option<BlockOutcome>,
    ledger: Option<rewards::Ledger>,
    /// Its proofs and payload data have left memory ([`Driver::prune`]).
    pruned: bool,
}

impl BlockRecord {
    /// Drops what is large: payload data and proofs.
    fn drop_proofs(&mut self) {
        self.work = None;
        self.partials = Vec::new();
        self.full_proofs = BTreeMap::new();
        self.agg_proof = None;
        self.pruned = true;
    }
}

/// The driver's state.
pub(crate) struct Driver {
    engine: Engine,
    store: Arc<Store>,
    clock: Arc<dyn SlotClock>,
    table: rewards::RewardTable,
    reward_file: rewards::RewardsFile,
    verifier: Arc<StarkVerifier>,
    metrics: Metrics,
    events: broadcast::Sender<ProvingEvent>,
    settled: broadcast::Sender<rewards::Ledger>,
    tx: mpsc::WeakSender<Input>,
    seq: u64,
    replaying: bool,
    last_block: Option<(Slot, Root)>,
    blocks: BTreeMap<Root, BlockRecord>,
    by_slot: BTreeMap<Slot, Root>,
    balances: rewards::Balances,
    /// Checked registrations waiting to join, with the time they were first seen.
    pending_registrations: BTreeMap<BlsPublicKey, (ProverRecord, Option<UnixMillis>)>,
    outstanding: BTreeMap<RequestId, Check>,
    /// Messages waiting for their verdict, with the first-seen time to publish them with once
    /// accepted (HTTP submissions; gossip is forwarded by gossipsub itself).
    in_flight: HashMap<Root, (ProtocolMessage, Option<UnixMillis>)>,
    /// The message (signing root) each pending verification request belongs to, so that a
    /// message whose verification fails leaves `in_flight`.
    requests: HashMap<RequestId, Root>,
    replies: HashMap<RequestId, (MessageKind, Root, Waiter)>,
    publish: Option<mpsc::Sender<(Gossiped, UnixMillis)>>,
    /// HTTP submissions accepted again while replaying: published once the replay is done (a
    /// crash may have come before they were), if their block is still being proven.
    republish: Vec<(Gossiped, UnixMillis)>,
    early: VecDeque<Early>,
}

/// Everything the driver is built from.
pub(crate) struct DriverParts {
    /// The engine, with the genesis registry already added.
    pub engine: Engine,
    /// The store.
    pub store: Arc<Store>,
    /// The clock.
    pub clock: Arc<dyn SlotClock>,
    /// Reward rules.
    pub rewards: rewards::Config,
    /// STARK verifier.
    pub verifier: Arc<StarkVerifier>,
    /// Metrics.
    pub metrics: Metrics,
    /// Event stream.
    pub events: broadcast::Sender<ProvingEvent>,
    /// Settled ledgers stream.
    pub settled: broadcast::Sender<rewards::Ledger>,
    /// Where accepted HTTP submissions go to be published on gossip (`None`: no gossip).
    pub publish: Option<mpsc::Sender<(Gossiped, UnixMillis)>>,
}

fn not_found(what: String) -> beacon_api::Error {
    beacon_api::Error::NotFound { what }
}

impl Driver {
    /// Builds the driver and replays the stored input log into the engine.
    pub(crate) fn new(parts: DriverParts, tx: &mpsc::Sender<Input>) -> NodeResult<Self> {
        let mut driver = Self {
            engine: parts.engine,
            store: parts.store,
            clock: parts.clock,
            table: parts.rewards.table,
            reward_file: parts.rewards.to_file(),
            verifier: parts.verifier,
            metrics: parts.metrics,
            events: parts.events,
            settled: parts.settled,
            tx: tx.downgrade(),
            seq: 0,
            replaying: true,
            last_block: None,
            blocks: BTreeMap::new(),
            by_slot: BTreeMap::new(),
            balances: rewards::Balances::new(),
            pending_registrations: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            in_flight: HashMap::new(),
            requests: HashMap::new(),
            replies: HashMap::new(),
            publish: parts.publish,
            republish: Vec::new(),
            early: VecDeque::new(),
        };
        let logged = log::read_all(&driver.store)?;
        let replayed = logged.len();
        for input in logged {
            driver.seq = driver.seq.saturating_add(1);
            driver.apply(input)?;
        }
        driver.replaying = false;
        // Accepted submissions of rounds still open: published again (peers that have them
        // drop the copy: same envelope, same message id).
        let open: std::collections::BTreeSet<Root> =
            driver.engine.open_rounds().iter().map(|k| k.block_root).collect();
        for (item, first_seen) in std::mem::take(&mut driver.republish) {
            let Gossiped::Message(message) = &item else { continue };
            if message_block(message).is_some_and(|(_, root)| open.contains(&root)) {
                driver.publish(item, first_seen);
            }
        }
        // Checks requested during replay whose verdict was never logged: run them now.
        let pending: Vec<Check> = driver.outstanding.values().cloned().collect();
        for check in pending {
            driver.dispatch(check);
        }
        if replayed > 0 {
            info!(
                inputs = replayed,
                open_rounds = driver.engine.open_rounds().len(),
                "replayed the input log"
            );
        }
        Ok(driver)
    }

    fn now(&self) -> UnixMillis {
        UnixMillis(self.clock.now_unix_millis())
    }

    /// The engine (read-only, for queries).
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The latest block fed to the engine.
    pub(crate) fn last_block(&self) -> Option<(Slot, Root)> {
        self.last_block
    }

    /// Runs the driver until every sender is gone.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Input>) -> NodeResult<()> {
        // The beacon lag grows while no block comes: refresh it every second, not only per block.
        let mut lag = tokio::time::interval(std::time::Duration::from_secs(1));
        lag.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let timeout = self.engine.poll_timeout();
            let sleep = async {
                match timeout {
                    Some(t) => {
                        let wait = t.0.saturating_sub(self.clock.now_unix_millis());
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                input = rx.recv() => {
                    let Some(input) = input else { return Ok(()) };
                    self.handle(input).await?;
                }
                () = sleep => {
                    let now = self.now().max(timeout.unwrap_or(UnixMillis(0)));
                    self.log_and_apply(LoggedInput::Tick(now)).await?;
                }
                _ = lag.tick() => self.update_beacon_lag(self.last_block.map(|(slot, _)| slot)),
            }
        }
    }

    async fn handle(&mut self, input: Input) -> NodeResult<()> {
        match input {
            Input::Block { info, data } => {
                if self.last_block.is_some_and(|(slot, _)| info.slot <= slot) {
                    debug!(slot = %info.slot, "block not after the last one: ignored");
                    return Ok(());
                }
                let now = self.now();
                self.update_beacon_lag(Some(info.slot));
                self.log_and_apply(LoggedInput::Block { info, data, now }).await?;
                self.retry_early().await
            }
            Input::Message { message, arrived, reply } => {
                self.take_message(message, arrived, reply.map(Waiter::Http), false).await
            }
            Input::Gossip { item: Gossiped::Message(message), arrived, reply } => {
                if self.is_early(&message) {
                    self.hold_early(message, arrived, reply);
                    return Ok(());
                }
                self.take_message(message, arrived, Some(Waiter::Gossip(reply)), true).await
            }
            Input::Gossip { item: Gossiped::Registration(registration), arrived, reply } => {
                self.register(registration, Waiter::Gossip(reply), arrived).await
            }
            Input::Registration { registration, reply } => {
                let now = self.now();
                self.register(registration, Waiter::Http(reply), now).await
            }
            Input::Verdicts(verdicts) => {
                for verdict in verdicts {
                    if !self.outstanding.contains_key(&verdict.request) {
                        continue;
                    }
                    self.log_and_apply(LoggedInput::Verdict(verdict)).await?;
                }
                Ok(())
            }
            Input::Query(query) => {
                query(self);
                Ok(())
            }
            Input::Reorg { orphaned, fork } => {
                self.log_and_apply(LoggedInput::Reorg { orphaned, fork }).await
            }
        }
    }

    /// Checks a registration first seen at `first_seen` (here, or by the sidecar that gossiped
    /// it) and queues it; it joins at the first block whose slot starts at least
    /// `max_clock_disparity_ms` after `first_seen` (by then every sidecar has it).
    async fn register(
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
        if self.pending_registrations.contains_key(&m.pubkey) {
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
        let valid = tokio::task::spawn_blocking(move || verify_signatures(&[check]))
            .await
            .map(|v| v.first().is_some_and(|v| v.valid))
            .unwrap_or(false);
        if !valid {
            invalid(reply, "invalid registration signature or proof of possession");
            return Ok(());
        }
        let record = ProverRecord {
            pubkey: m.pubkey,
            stake: m.stake,
            capabilities: m.capabilities,
            active: true,
            reputation: 0,
        };
        let logged = LoggedInput::Registration { record, first_seen: Some(first_seen) };
        self.log_and_apply(logged).await?;
        if matches!(reply, Waiter::Http(_)) {
            self.publish(Gossiped::Registration(registration), first_seen);
        }
        // The index is assigned when the registration activates, at the next block.
        answer(reply, SubmissionStatus::Accepted, None);
        Ok(())
    }

    /// Takes a round message from HTTP or gossip: durably logged, then given to the engine;
    /// `waiter` gets the verdict. Gossip (`relayed`) keeps its arrival time as given (the
    /// sender's first-seen time, clamped); HTTP submissions are never earlier than the engine's
    /// clock.
    async fn take_message(
        &mut self,
        message: ProtocolMessage,
        arrived: UnixMillis,
        waiter: Option<Waiter>,
        relayed: bool,
    ) -> NodeResult<()> {
        let kind = message.kind();
        let signing_root = message.signing_root(self.engine.signing_context());
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
        let (input, at) = if relayed {
            (LoggedInput::Relayed { message: message.clone(), arrived }, arrived)
        } else {
            let at = arrived.max(self.engine.now());
            (LoggedInput::Message { message: message.clone(), arrived }, at)
        };
        self.append(input).await?;
        let publish = (!relayed && self.publish.is_some()).then_some(at);
        match self.apply_message(message, at, publish) {
            Ok(request) => {
                if let Some(waiter) = waiter {
                    self.replies.insert(request, (kind, signing_root, waiter));
                }
            }
            Err(e) => {
                let label = match super::gossip::error_verdict(&e) {
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
                            other => {
                                Err(beacon_api::Error::InvalidInput { reason: other.to_string() })
                            }
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
        self.process_actions()
    }

    /// Whether a gossip message names a block after the last one this node fed (its beacon
    /// node is behind the sender's).
    fn is_early(&self, message: &ProtocolMessage) -> bool {
        let Some((slot, root)) = message_block(message) else { return false };
        !self.blocks.contains_key(&root) && self.last_block.is_none_or(|(last, _)| slot > last)
    }

    /// Holds an early gossip message (its validation result waits with it).
    fn hold_early(&mut self, message: ProtocolMessage, arrived: UnixMillis, reply: GossipReply) {
        if self.early.len() >= EARLY_CAPACITY {
            let _ = reply.send(GossipResult::Expired);
            return;
        }
        debug!(kind = ?message.kind(), "gossip for a block not seen yet: held");
        self.early.push_back(Early { message, arrived, reply, waited: 0 });
    }

    /// After a block: takes the held messages whose block is now known, drops those whose block
    /// will not come (its slot is past) or did not come within [`EARLY_BLOCKS`] blocks.
    async fn retry_early(&mut self) -> NodeResult<()> {
        for mut held in std::mem::take(&mut self.early) {
            let Some((slot, root)) = message_block(&held.message) else { continue };
            if self.blocks.contains_key(&root) {
                let waiter = Some(Waiter::Gossip(held.reply));
                self.take_message(held.message, held.arrived, waiter, true).await?;
                continue;
            }
            held.waited = held.waited.saturating_add(1);
            let passed = self.last_block.is_some_and(|(last, _)| slot <= last);
            if passed || held.waited > EARLY_BLOCKS {
                let _ = held.reply.send(GossipResult::Expired);
            } else {
                self.early.push_back(held);
            }
        }
        Ok(())
    }

    /// Sets the beacon head and lag gauges (head: the last block fed).
    fn update_beacon_lag(&self, head: Option<Slot>) {
        let Some(head) = head else { return };
        let now = std::time::Duration::from_millis(self.clock.now_unix_millis());
        let wall = self.clock.timing().slot_at(now).unwrap_or(head);
        self.metrics.set_beacon_head(head, wall.max(head));
    }

    /// Hands `item` to the publisher (no-op without gossip, or while replaying).
    fn publish(&mut self, item: Gossiped, first_seen: UnixMillis) {
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

    async fn append(&mut self, input: LoggedInput) -> NodeResult<()> {
        let store = Arc::clone(&self.store);
        let seq = self.seq;
        tokio::task::spawn_blocking(move || log::append(&store, seq, &input))
            .await
            .map_err(|_| super::NodeError::Stopped)??;
        self.seq = self.seq.saturating_add(1);
        Ok(())
    }

    async fn log_and_apply(&mut self, input: LoggedInput) -> NodeResult<()> {
        self.append(input.clone()).await?;
        self.apply(input)
    }

    fn apply_message(
        &mut self,
        message: ProtocolMessage,
        arrived: UnixMillis,
        publish: Option<UnixMillis>,
    ) -> phase_engine::Result<RequestId> {
        let signing_root = message.signing_root(self.engine.signing_context());
        let request = self.engine.on_message(message.clone(), arrived)?;
        self.in_flight.insert(signing_root, (message, publish));
        self.requests.insert(request, signing_root);
        Ok(request)
    }

    /// Applies one logged input (live or replayed) to the engine.
    fn apply(&mut self, input: LoggedInput) -> NodeResult<()> {
        match input {
            LoggedInput::Block { info, data, now } => {
                // Registrations activate at block boundaries, in pubkey order: those first seen
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
                self.prune();
            }
            LoggedInput::Registration { record, first_seen } => {
                if self.engine.prover_by_pubkey(&record.pubkey).is_none() {
                    self.pending_registrations.insert(record.pubkey, (record, first_seen));
                }
            }
            LoggedInput::Message { message, arrived } => {
                let arrived = arrived.max(self.engine.now());
                let publish = self.publish.is_some().then_some(arrived);
                let _ = self.apply_message(message, arrived, publish);
            }
            LoggedInput::Relayed { message, arrived } => {
                let _ = self.apply_message(message, arrived, None);
            }
            LoggedInput::Verdict(verdict) => {
                self.outstanding.remove(&verdict.request);
                let reply = self.replies.remove(&verdict.request);
                let message = self.requests.remove(&verdict.request);
                let result = self.engine.on_verification(verdict);
                if let (Err(_), Some(root)) = (&result, message) {
                    // Refused: forget it (a resend is judged again, as a duplicate).
                    self.in_flight.remove(&root);
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
                            self.metrics.message_verdict(
                                kind_label(kind),
                                sidecar_metrics::VerdictLabel::Reject,
                                "verification",
                            );
                            match waiter {
                                Waiter::Http(reply) => {
                                    let _ = reply.send(Err(beacon_api::Error::InvalidInput {
                                        reason: e.to_string(),
                                    }));
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
            }
        }
        self.process_actions()
    }

    /// Executes the engine's queued actions.
    fn process_actions(&mut self) -> NodeResult<()> {
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
                        self.dispatch(c);
                    }
                }
                Action::RoundStarted(start) => {
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
                Action::BlockOutcome(outcome) => self.settle(*outcome)?,
                _ => {}
            }
        }
        if !signatures.is_empty() && !self.replaying {
            self.dispatch_signatures(signatures);
        }
        Ok(())
    }

    fn on_accepted(&mut self, signing_root: &Root) {
        let Some((message, publish)) = self.in_flight.remove(signing_root) else { return };
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

    fn settle(&mut self, outcome: BlockOutcome) -> NodeResult<()> {
        let ledger = rewards::settle(&outcome, &self.table)?;
        let root = outcome.block_root;
        let data = BlockEventData { block_root: root, slot: outcome.slot };
        let proven = self.blocks.get(&root).is_some_and(|b| {
            let subs = b.work.as_ref().map_or(0, |w| w.airs.len());
            b.full_proofs.len() == subs && (subs <= 1 || b.agg_proof.is_some())
        });
        // Durable: the ledger and the balances it changes land in one transaction (skipped when
        // a replay meets a ledger already stored).
        let stored = !self.store.ledger_entries(root)?.is_empty();
        self.balances.apply(&ledger)?;
        if !stored {
            let mut batch = StoreBatch::new();
            batch.put_ledger_entry(root, 0, &ledger.as_ssz_bytes());
            // The finalised proof, served from the store once it leaves memory.
            if proven && let Some(Ok(proof)) = self.finalized_in_memory(root) {
                batch.put_message(root, FINALIZED_PROOF_KEY, &ssz::Encode::as_ssz_bytes(&proof));
            }
            for (account, amount) in self.balances.iter() {
                if let rewards::Account::Prover(p) = account {
                    batch.set_balance(p, amount);
                }
            }
            self.store.commit(batch)?;
        }
        info!(slot = %outcome.slot, block = %root, settlement_root = %ledger.settlement_root(), proven, "block settled");
        if let Some(b) = self.blocks.get_mut(&root) {
            b.outcome = Some(outcome);
            b.ledger = Some(ledger.clone());
        }
        self.verifier.forget(&root);
        if proven {
            let _ = self.events.send(ProvingEvent::BlockProven(data.clone()));
        }
        let _ = self.events.send(ProvingEvent::BlockSettled(data));
        let _ = self.settled.send(ledger);
        self.prune();
        Ok(())
    }

    /// Bounds what the driver keeps in memory: the records of the latest [`RECORD_BLOCKS`]
    /// blocks (ledgers and finalised proofs stay in the store), and the proofs and payload data
    /// only of the latest [`PROOF_BLOCKS`] settled blocks, of the unsettled ones (their rounds
    /// may still be open), and never beyond the latest [`MAX_PROOF_BLOCKS`].
    fn prune(&mut self) {
        while self.blocks.len() > RECORD_BLOCKS {
            let Some((&slot, &root)) = self.by_slot.iter().next() else { break };
            self.by_slot.remove(&slot);
            self.blocks.remove(&root);
        }
        let mut settled = 0usize;
        for (age, root) in self.by_slot.values().rev().enumerate() {
            let Some(record) = self.blocks.get_mut(root) else { continue };
            if record.pruned {
                continue;
            }
            let keep = if record.outcome.is_some() {
                settled = settled.saturating_add(1);
                settled <= PROOF_BLOCKS
            } else {
                true
            };
            if !keep || age >= MAX_PROOF_BLOCKS {
                record.drop_proofs();
            }
        }
    }

    /// Blocks whose proofs and payload data are in memory (for tests and metrics).
    #[cfg(test)]
    fn blocks_with_proofs(&self) -> usize {
        self.blocks.values().filter(|b| !b.pruned).count()
    }

    fn dispatch(&self, check: Check) {
        match check {
            Check::Signature(c) => self.dispatch_signatures(vec![c]),
            Check::Stark(c, block) => {
                let Some(tx) = self.tx.upgrade() else { return };
                let work = self.blocks.get(&block).and_then(|b| b.work.clone());
                let submitter = match &c.target {
                    phase_engine::StarkTarget::FullProof { submitter, .. }
                    | phase_engine::StarkTarget::AggProof { submitter, .. } => {
                        self.engine.prover(*submitter).map(|r| r.pubkey)
                    }
                    _ => None,
                };
                let verifier = Arc::clone(&self.verifier);
                let metrics = self.metrics.clone();
                tokio::task::spawn_blocking(move || {
                    let started = std::time::Instant::now();
                    let result = match work {
                        Some(work) => verifier.check(&c, &work, submitter),
                        None => Err("unknown block".into()),
                    };
                    metrics.observe_verify_time(verify_label(&c), started.elapsed());
                    if let Err(reason) = &result {
                        debug!(request = ?c.request, %reason, "STARK check failed");
                    }
                    let verdict = Verdict { request: c.request, valid: result.is_ok() };
                    let _ = tx.blocking_send(Input::Verdicts(vec![verdict]));
                });
            }
        }
    }

    fn dispatch_signatures(&self, checks: Vec<SignatureCheck>) {
        let Some(tx) = self.tx.upgrade() else { return };
        tokio::task::spawn_blocking(move || {
            let verdicts = verify_signatures(&checks);
            let _ = tx.blocking_send(Input::Verdicts(verdicts));
        });
    }

    // ----- queries ---------------------------------------------------------------------------

    /// Resolves a block id among the blocks this node knows.
    pub(crate) fn resolve(&self, id: beacon_api::BlockId) -> beacon_api::Result<Root> {
        let found = match id {
            beacon_api::BlockId::Head => self.last_block.map(|(_, r)| r),
            beacon_api::BlockId::Slot(slot) => self.by_slot.get(&Slot(slot.get())).copied(),
            beacon_api::BlockId::Root(root) => self.blocks.contains_key(&root).then_some(root),
            _ => None,
        };
        found.ok_or_else(|| not_found(format!("block {id}")))
    }

    /// The rounds of a block.
    pub(crate) fn rounds(&self, id: beacon_api::BlockId) -> beacon_api::Result<BlockRounds> {
        let root = self.resolve(id)?;
        let record = self.blocks.get(&root).ok_or_else(|| not_found(format!("block {root}")))?;
        let rounds = self
            .engine
            .open_rounds()
            .into_iter()
            .filter(|k| k.block_root == root)
            .filter_map(|k| self.engine.round_status(&k))
            .collect();
        Ok(BlockRounds {
            block_root: root,
            slot: record.slot,
            rounds,
            closed: record.outcome.as_ref().map(|o| o.rounds.clone()).unwrap_or_default(),
            outcome: record.outcome.clone(),
        })
    }

    /// The accepted partial proofs of a block.
    pub(crate) fn partial_proofs(
        &self,
        id: beacon_api::BlockId,
    ) -> beacon_api::Result<Vec<SignedPartialProof>> {
        let root = self.resolve(id)?;
        if self.blocks.get(&root).is_some_and(|b| b.pruned) {
            return Err(not_found(format!(
                "partial proofs of block {root} (kept for the latest {PROOF_BLOCKS} settled blocks)"
            )));
        }
        let mut partials = self.blocks.get(&root).map(|b| b.partials.clone()).unwrap_or_default();
        partials.sort_by_key(|p| {
            (p.message.round.sub_block, p.message.round.attempt, p.message.prover, p.message.air)
        });
        Ok(partials)
    }

    /// A prover's duties.
    pub(crate) fn duties(&self, prover: ProverIndex) -> beacon_api::Result<ProverDuties> {
        if self.engine.prover(prover).is_none() {
            return Err(not_found(format!("prover {prover}")));
        }
        Ok(ProverDuties {
            prover,
            duties: self.engine.duties(prover),
            aggregation: self.engine.aggregation_duties(prover),
        })
    }

    /// The finalised proof of a block: served once every sub-block has a valid full proof. A
    /// block of several sub-blocks has its AggProof in it once one is accepted; until then the
    /// list is empty (the aggregators download the full proofs from here to build it).
    /// Settled blocks out of memory are served from the store (where a block's finalised proof
    /// is written when it settles proven).
    pub(crate) fn finalized_proof(
        &self,
        id: beacon_api::BlockId,
    ) -> beacon_api::Result<FinalizedProof> {
        let root = match id {
            beacon_api::BlockId::Root(root) => root,
            other => self.resolve(other)?,
        };
        if let Some(proof) = self.finalized_in_memory(root) {
            return proof;
        }
        let unavailable = |reason: String| beacon_api::Error::Unavailable { reason };
        let bytes = self
            .store
            .message(root, FINALIZED_PROOF_KEY)
            .map_err(|e| unavailable(e.to_string()))?
            .ok_or_else(|| not_found(format!("finalised proof of block {root}")))?;
        <FinalizedProof as ssz::Decode>::from_ssz_bytes(&bytes)
            .map_err(|e| unavailable(format!("{e:?}")))
    }

    /// The finalised proof of a block from memory: `None` if its record or proofs are not in
    /// memory, an error if they are but incomplete.
    fn finalized_in_memory(&self, root: Root) -> Option<beacon_api::Result<FinalizedProof>> {
        let b = self.blocks.get(&root).filter(|b| !b.pruned)?;
        let subs = b.work.as_ref().map_or(0, |w| w.airs.len());
        if subs == 0 || b.full_proofs.len() != subs {
            return Some(Err(not_found(format!("finalised proof of block {root}"))));
        }
        let unavailable =
            |e: ssz_types::Error| beacon_api::Error::Unavailable { reason: format!("{e:?}") };
        let proof = (|| {
            Ok(FinalizedProof {
                slot: b.slot,
                block_root: root,
                full_proofs: b
                    .full_proofs
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
                    .try_into()
                    .map_err(unavailable)?,
                agg_proof: b
                    .agg_proof
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .try_into()
                    .map_err(unavailable)?,
            })
        })();
        Some(proof)
    }

    /// The settled ledger of a block (memory, else the store).
    pub(crate) fn ledger(&self, id: beacon_api::BlockId) -> beacon_api::Result<rewards::Ledger> {
        let root = match id {
            beacon_api::BlockId::Root(root) => root,
            other => self.resolve(other)?,
        };
        if let Some(ledger) = self.blocks.get(&root).and_then(|b| b.ledger.clone()) {
            return Ok(ledger);
        }
        let entries = self
            .store
            .ledger_entries(root)
            .map_err(|e| beacon_api::Error::Unavailable { reason: e.to_string() })?;
        let (_, bytes) = entries
            .into_iter()
            .next()
            .ok_or_else(|| not_found(format!("ledger of block {root}")))?;
        rewards::Ledger::from_ssz_bytes(&bytes)
            .map_err(|e| beacon_api::Error::Unavailable { reason: e.to_string() })
    }

    /// Every balance.
    pub(crate) fn balances(&self) -> Vec<AccountBalance> {
        self.balances.iter().map(|(account, balance)| AccountBalance { account, balance }).collect()
    }

    /// The registry.
    pub(crate) fn registry(&self) -> Vec<RegistryEntry> {
        (0..self.engine.num_provers())
            .filter_map(|i| {
                self.engine
                    .prover(ProverIndex(i))
                    .map(|r| RegistryEntry { index: ProverIndex(i), record: r.clone() })
            })
            .collect()
    }

    /// The reward constants.
    pub(crate) fn reward_file(&self) -> rewards::RewardsFile {
        self.reward_file
    }

    /// The settled ledgers in memory, by slot.
    pub(crate) fn ledgers(&self) -> Vec<rewards::Ledger> {
        self.by_slot
            .values()
            .filter_map(|r| self.blocks.get(r).and_then(|b| b.ledger.clone()))
            .collect()
    }
}

fn receipt(
    kind: MessageKind,
    signing_root: Root,
    status: SubmissionStatus,
    prover_index: Option<ProverIndex>,
) -> SubmissionReceipt {
    SubmissionReceipt { kind, signing_root, status, prover_index }
}

/// The block a message names: (slot, root).
fn message_block(message: &ProtocolMessage) -> Option<(Slot, Root)> {
    match message {
        ProtocolMessage::Commitment(m) => Some((m.message.round.slot, m.message.round.block_root)),
        ProtocolMessage::Decline(m) => Some((m.message.round.slot, m.message.round.block_root)),
        ProtocolMessage::PartialProof(m) => {
            Some((m.message.round.slot, m.message.round.block_root))
        }
        ProtocolMessage::FullProof(m) => Some((m.message.round.slot, m.message.round.block_root)),
        ProtocolMessage::AggProof(m) => Some((m.message.slot, m.message.block_root)),
        _ => None,
    }
}

fn request_of(check: &Check) -> RequestId {
    match check {
        Check::Signature(c) => c.request,
        Check::Stark(c, _) => c.request,
    }
}

fn stark_block(check: &StarkCheck) -> Root {
    match &check.target {
        phase_engine::StarkTarget::Partial { round, .. } => round.block_root,
        phase_engine::StarkTarget::FullProof { round, .. } => round.block_root,
        phase_engine::StarkTarget::AggProof { block_root, .. } => *block_root,
        _ => Root::ZERO,
    }
}

fn verify_label(check: &StarkCheck) -> sidecar_metrics::VerifyKindLabel {
    match &check.target {
        phase_engine::StarkTarget::Partial { .. } => sidecar_metrics::VerifyKindLabel::PartialProof,
        phase_engine::StarkTarget::FullProof { .. } => sidecar_metrics::VerifyKindLabel::FullProof,
        _ => sidecar_metrics::VerifyKindLabel::FullProof,
    }
}

fn kind_label(kind: MessageKind) -> &'static str {
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

fn phase_label(phase: phase_engine::Phase) -> sidecar_metrics::PhaseLabel {
    match phase {
        phase_engine::Phase::T1 => sidecar_metrics::PhaseLabel::T1,
        phase_engine::Phase::T2 => sidecar_metrics::PhaseLabel::T2,
        phase_engine::Phase::T3 => sidecar_metrics::PhaseLabel::T3,
        phase_engine::Phase::T4 => sidecar_metrics::PhaseLabel::T4,
        _ => sidecar_metrics::PhaseLabel::T5,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use phase_engine::{
        Capabilities, Decline, RoundRef, SignedDecline,
        test_utils::{self as tu, Scenario},
    };
    use plonky3_prover::{ProofParams, Prover, SegmentParams, SegmentWorkload};
    use tokio::sync::oneshot::error::TryRecvError;

    use super::*;
    use crate::{ManualSlotClock, SlotTiming};

    const PROVERS: u64 = 8;

    /// A driver over a fresh store whose engine has the scenario registry; its input queue.
    fn driver(
        dir: &std::path::Path,
        now: UnixMillis,
    ) -> (Driver, mpsc::Sender<Input>, mpsc::Receiver<Input>) {
        driver_with(dir, now, None)
    }

    /// [`driver`], publishing to `publish`.
    fn driver_with(
        dir: &std::path::Path,
        now: UnixMillis,
        publish: Option<mpsc::Sender<(Gossiped, UnixMillis)>>,
    ) -> (Driver, mpsc::Sender<Input>, mpsc::Receiver<Input>) {
        let rewards = rewards::Config::default();
        let mut engine = Engine::new(rewards.engine, tu::signing_context());
        for i in 0..PROVERS {
            engine
                .add_prover(ProverRecord {
                    pubkey: tu::secret_key(i).public_key(),
                    stake: tu::STAKE,
                    capabilities: Capabilities::default(),
                    active: true,
                    reputation: 0,
                })
                .unwrap();
        }
        let timing =
            SlotTiming::from_secs(tu::GENESIS_MILLIS / 1000, tu::SLOT_MILLIS / 1000).unwrap();
        let clock = ManualSlotClock::new(timing, Duration::from_millis(now.0));
        let workload = SegmentWorkload::new(SegmentParams::default()).unwrap();
        let prover = Prover::new(ProofParams::default(), workload).unwrap();
        let (events, _) = broadcast::channel(64);
        let (settled, _) = broadcast::channel(64);
        let parts = DriverParts {
            engine,
            store: Arc::new(Store::open(&dir.join("node.redb")).unwrap()),
            clock: Arc::new(clock),
            rewards,
            verifier: Arc::new(StarkVerifier::new(prover)),
            metrics: Metrics::new(),
            events,
            settled,
            publish,
        };
        let (tx, rx) = mpsc::channel(64);
        (Driver::new(parts, &tx).unwrap(), tx, rx)
    }

    fn block(slot: u64) -> Input {
        Input::Block {
            info: tu::block_info(slot, 1_000_000),
            data: BlockData { parent_hash: Root::ZERO, transactions: Vec::new() },
        }
    }

    /// A decline by the `nth` selected prover of the first round of the last block of `chain`
    /// (slots; the selection learnt from a twin engine with the same registry and blocks).
    fn decline_by(chain: &[u64], nth: usize) -> ProtocolMessage {
        let mut twin = Scenario::new(rewards::Config::default().engine, PROVERS);
        let mut info = tu::block_info(0, 1_000_000);
        for &slot in chain {
            info = tu::block_info(slot, 1_000_000);
            twin.add_block_info(info).unwrap();
        }
        let key = twin.round_keys(&info.root)[0];
        let prover = twin.selected(&key)[nth];
        let round = RoundRef {
            slot: info.slot,
            block_root: info.root,
            sub_block: key.sub_block,
            attempt: key.attempt,
        };
        let message = Decline { round, prover };
        ProtocolMessage::Decline(SignedDecline::sign(message, &twin.key(prover), twin.ctx()))
    }

    fn decline(chain: &[u64]) -> ProtocolMessage {
        decline_by(chain, 0)
    }

    /// Feeds the driver its own queued inputs (verdicts) until `answer` arrives.
    async fn until_answered(
        driver: &mut Driver,
        rx: &mut mpsc::Receiver<Input>,
        answer: &mut oneshot::Receiver<GossipResult>,
    ) -> GossipResult {
        loop {
            match answer.try_recv() {
                Ok(result) => return result,
                Err(TryRecvError::Empty) => {
                    let input = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                        .await
                        .expect("a verdict comes back")
                        .unwrap();
                    driver.handle(input).await.unwrap();
                }
                Err(TryRecvError::Closed) => panic!("the driver dropped the reply"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gossip_for_a_block_not_seen_yet_waits_for_it_and_is_then_judged() {
        let dir = tempfile::tempdir().unwrap();
        let (mut driver, _tx, mut rx) = driver(dir.path(), UnixMillis(tu::slot_start(1).0 + 100));
        driver.handle(block(0)).await.unwrap();

        // Block 1's decline arrives before block 1 (this node's beacon node is behind): held,
        // no verdict yet (gossipsub does not forward it meanwhile).
        let arrived = UnixMillis(tu::slot_start(1).0 + 50);
        let (reply, mut answer) = oneshot::channel();
        let item = Gossiped::Message(decline(&[0, 1]));
        driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
        assert!(matches!(answer.try_recv(), Err(TryRecvError::Empty)));
        // A message for block 2, which never comes (the chain goes from 1 to 3).
        let (reply, mut lost) = oneshot::channel();
        let item = Gossiped::Message(decline(&[0, 1, 2]));
        driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();

        // Block 1 arrives: the decline goes through the engine (signature check included) and
        // is accepted, at its own arrival time.
        driver.handle(block(1)).await.unwrap();
        let result = until_answered(&mut driver, &mut rx, &mut answer).await;
        assert_eq!(result, GossipResult::Accepted);
        assert!(matches!(lost.try_recv(), Err(TryRecvError::Empty)));

        // Block 3: block 2's slot has passed without it, so its message is dropped (ignored).
        driver.handle(block(3)).await.unwrap();
        assert_eq!(lost.try_recv().unwrap(), GossipResult::Expired);
        assert!(driver.early.is_empty());

        // The same decline again (from another peer): a duplicate, not forwarded twice.
        let (reply, mut again) = oneshot::channel();
        let item = Gossiped::Message(decline(&[0, 1]));
        driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
        let result = until_answered(&mut driver, &mut rx, &mut again).await;
        assert_eq!(super::super::gossip::verdict(&result), sidecar_p2p::MessageVerdict::Ignore);

        // A forged decline (signed with another prover's key): rejected after its signature
        // check, and forgotten (nothing stays in flight).
        let ProtocolMessage::Decline(genuine) = decline_by(&[0, 1], 1) else { unreachable!() };
        let forged = SignedDecline::sign(
            genuine.message,
            &tu::secret_key(PROVERS + 7),
            &tu::signing_context(),
        );
        let (reply, mut answer) = oneshot::channel();
        let item = Gossiped::Message(ProtocolMessage::Decline(forged));
        driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
        let result = until_answered(&mut driver, &mut rx, &mut answer).await;
        assert!(
            matches!(result, GossipResult::Refused(phase_engine::Error::BadSignature { .. })),
            "{result:?}"
        );
        assert_eq!(super::super::gossip::verdict(&result), sidecar_p2p::MessageVerdict::Reject);
        assert!(driver.in_flight.is_empty() && driver.requests.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_latest_settled_blocks_keep_their_proofs_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (mut driver, _tx, _rx) = driver(dir.path(), UnixMillis(tu::slot_start(1).0));
        const BLOCKS: u64 = 3 * PROOF_BLOCKS as u64 + 4;
        let mut most = 0;
        for slot in 1..=BLOCKS {
            let info = tu::block_info(slot, 1_000_000);
            let data = BlockData { parent_hash: Root::ZERO, transactions: vec![vec![1; 64]] };
            driver.apply(LoggedInput::Block { info, data, now: tu::slot_start(slot) }).unwrap();
            // Nobody answers: the rounds run out their phases and fail, and the blocks settle
            // (a block settles once the next one has come).
            for step in 1..=4 {
                let now = UnixMillis(tu::slot_start(slot).0 + step * tu::SLOT_MILLIS / 4 - 1);
                driver.apply(LoggedInput::Tick(now)).unwrap();
            }
            let settled_with_proofs =
                driver.blocks.values().filter(|b| !b.pruned && b.outcome.is_some()).count();
            assert!(settled_with_proofs <= PROOF_BLOCKS, "slot {slot}: {settled_with_proofs}");
            most = most.max(driver.blocks_with_proofs());
        }
        let settled = driver.blocks.values().filter(|b| b.outcome.is_some()).count();
        assert!(settled > 2 * PROOF_BLOCKS, "only {settled} of {BLOCKS} blocks settled");
        let unsettled = driver.blocks.len() - settled;
        assert!(most <= PROOF_BLOCKS + unsettled + 1, "at most {most} blocks held proofs");
        assert_eq!(driver.blocks.len() as u64, BLOCKS, "the records (ledgers) stay");

        // A block out of the window: its ledger is served, its proofs are answered with 404.
        let old: beacon_api::BlockId = "1".parse().unwrap();
        assert!(driver.ledger(old).is_ok());
        assert!(matches!(driver.partial_proofs(old), Err(beacon_api::Error::NotFound { .. })));
        assert!(matches!(driver.finalized_proof(old), Err(beacon_api::Error::NotFound { .. })));
        // The latest block, not settled yet, still has its payload data (for STARK checks).
        let (_, head) = driver.last_block().unwrap();
        assert!(driver.blocks[&head].work.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_gossiped_message_counts_at_the_senders_arrival_time_even_after_a_replay() {
        let dir = tempfile::tempdir().unwrap();
        // This node is already in T2 of block 1 (T1 is 4 s, the grace 0.5 s)...
        let now = UnixMillis(tu::slot_start(1).0 + 5_000);
        let status = {
            let (mut driver, _tx, mut rx) = driver(dir.path(), now);
            driver.handle(block(1)).await.unwrap();
            // ...when a decline that the first sidecar received in T1 reaches it: it counts
            // in T1, as on the first sidecar (a decline only counts in T1).
            let (reply, mut answer) = oneshot::channel();
            let item = Gossiped::Message(decline(&[1]));
            let arrived = UnixMillis(tu::slot_start(1).0 + 40);
            driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
            assert_eq!(
                until_answered(&mut driver, &mut rx, &mut answer).await,
                GossipResult::Accepted
            );
            // The same over HTTP counts when this node received it: too late for T1.
            let (reply, answer) = oneshot::channel();
            let message = decline_by(&[1], 1);
            driver.handle(Input::Message { message, arrived, reply: Some(reply) }).await.unwrap();
            let refused = answer.await.unwrap().unwrap_err().to_string();
            assert!(refused.contains("phase") || refused.contains("deadline"), "{refused}");
            let key = driver.engine.open_rounds()[0];
            driver.engine.round_status(&key).unwrap()
        };
        assert!(!status.open_airs.is_empty(), "the decline opened its AIRs: {status:?}");
        // A restart replays the relayed input with the same time: the same round state.
        let (driver, _tx, _rx) = driver(dir.path(), now);
        let key = driver.engine.open_rounds()[0];
        assert_eq!(driver.engine.round_status(&key).unwrap(), status);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registration_joins_at_the_first_block_a_clock_disparity_after_it_was_first_seen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut driver, _tx, _rx) = driver(dir.path(), UnixMillis(tu::slot_start(1).0 + 100));
        let registration = tu::registration(PROVERS, tu::STAKE, &tu::signing_context());
        let pubkey = registration.message.pubkey;
        // First seen (by the sidecar that gossiped it) 100 ms before block 1's slot: less than
        // the clock disparity (500 ms), so another sidecar may get it only after block 1.
        let (reply, answer) = oneshot::channel();
        let arrived = UnixMillis(tu::slot_start(1).0 - 100);
        let item = Gossiped::Registration(registration.clone());
        driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
        assert_eq!(answer.await.unwrap(), GossipResult::Accepted);
        driver.handle(block(1)).await.unwrap();
        assert_eq!(driver.engine.prover_by_pubkey(&pubkey), None, "not at block 1");
        // The same registration from another peer is a duplicate.
        let (reply, answer) = oneshot::channel();
        let item = Gossiped::Registration(registration);
        driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
        assert_eq!(answer.await.unwrap(), GossipResult::Duplicate);
        driver.handle(block(2)).await.unwrap();
        assert_eq!(driver.engine.prover_by_pubkey(&pubkey), Some(ProverIndex(PROVERS)));
        // A replay reaches the same registry.
        drop(driver);
        let (driver, _tx, _rx) = self::driver(dir.path(), UnixMillis(tu::slot_start(2).0 + 100));
        assert_eq!(driver.engine.prover_by_pubkey(&pubkey), Some(ProverIndex(PROVERS)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accepted_submissions_are_published_and_published_again_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let now = UnixMillis(tu::slot_start(1).0 + 100);
        let message = decline(&[1]);
        let (published, first) = {
            let (publish, mut published) = mpsc::channel(8);
            let (mut driver, _tx, mut rx) = driver_with(dir.path(), now, Some(publish));
            driver.handle(block(1)).await.unwrap();
            let (reply, answer) = oneshot::channel();
            let input =
                Input::Message { message: message.clone(), arrived: now, reply: Some(reply) };
            driver.handle(input).await.unwrap();
            // The verdict comes back through the queue; only then is it published.
            assert!(published.try_recv().is_err(), "nothing is published before its checks");
            let verdicts = rx.recv().await.unwrap();
            driver.handle(verdicts).await.unwrap();
            assert_eq!(answer.await.unwrap().unwrap().status, SubmissionStatus::Accepted);
            let first = published.try_recv().unwrap();
            assert_eq!(first, (Gossiped::Message(message.clone()), now));
            (published, first)
        };
        drop(published);
        // Killed before anyone knows whether it went out: the replay publishes it again (same
        // envelope, so peers that have it drop the copy), its round being still open.
        let (publish, mut published) = mpsc::channel(8);
        let (_driver, _tx, _rx) = driver_with(dir.path(), now, Some(publish));
        assert_eq!(published.try_recv().unwrap(), first);
        assert!(published.try_recv().is_err());
    }
}
