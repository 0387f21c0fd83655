//! The driver task: the only owner of the [`Engine`]. It takes inputs from a channel, logs each
//! one durably before applying it ([`super::log`]), drains the engine's actions and executes them
//! (verification jobs, settlement, events), and answers queries.
//!
//! One concept per file: [`input_log`] (write-ahead logging, applying logged inputs, replay on
//! restart), [`submit`] (messages and registrations from HTTP and gossip), [`early`] (gossip for
//! blocks not seen yet), [`actions`] (executing the engine's actions), [`checks`] (BLS and STARK
//! verification scheduling), [`blocks`] (per-block records and their memory bounds),
//! [`canonical`] (the settling engine of canonical rounds, and this node's inclusion records),
//! [`settle`] (settlement and ledgers), [`checkpoint`] (checkpoints and pruning), [`sync_reads`] (what sync asks of the driver), [`queries`] (reads for the HTTP API), [`metrics`] (labels and
//! gauges).

mod actions;
mod blocks;
mod canonical;
pub(crate) mod checkpoint;
mod checks;
mod disk;
mod early;
mod input_log;
mod metrics;
mod queries;
mod settle;
mod submit;
mod sync_reads;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
};

use beacon_api::{ProvingEvent, SubmissionReceipt};
use phase_engine::{
    BlockInfo, BlsPublicKey, CanonicalRounds, Engine, InclusionParams, InclusionRecord,
    MessageKind, ProtocolMessage, ProverRecord, RequestId, Root, SignedProverRegistration, Slot,
    UnixMillis, ValidatorIndex, Verdict,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::debug;

use self::{blocks::BlockRecord, canonical::Settling, checks::Check, early::Early};
use super::{
    error::NodeResult,
    gossip::{GossipResult, Gossiped},
    log::{BlockData, LoggedInput},
    signatures::ValidatedKeys,
    verify::StarkVerifier,
};
use crate::{SlotClock, Store};
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

/// Which engine a verification request came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// The live engine (this node's clock: duties, the API, early finalisation).
    Live,
    /// The settling engine of canonical rounds.
    Settling,
}

/// An input of the driver.
pub(crate) enum Input {
    /// A new canonical block.
    Block {
        /// Engine view.
        info: BlockInfo,
        /// Payload data.
        data: BlockData,
        /// The block's graffiti (what it may commit to).
        graffiti: Root,
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
    /// A record or message fetched from a peer by sync (checked like gossip; nobody waits).
    Fetched {
        /// What came.
        item: Gossiped,
    },
    /// A prover registration.
    Registration {
        /// The registration.
        registration: SignedProverRegistration,
        /// Where to answer.
        reply: Reply,
    },
    /// Verdicts of verification jobs.
    Verdicts {
        /// The engine that asked.
        lane: Lane,
        /// The verdicts.
        verdicts: Vec<Verdict>,
    },
    /// One of this node's validators proposes `slot`: build, log and publish this node's
    /// inclusion record for it (`None` when this node does not settle canonically).
    BuildRecord {
        /// The slot.
        slot: Slot,
        /// The proposer.
        proposer: ValidatorIndex,
        /// Where the record goes.
        reply: oneshot::Sender<Option<InclusionRecord>>,
    },
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

/// The driver's state.
pub(crate) struct Driver {
    engine: Engine,
    store: Arc<Store>,
    clock: Arc<dyn SlotClock>,
    table: rewards::RewardTable,
    reward_file: rewards::RewardsFile,
    verifier: Arc<StarkVerifier>,
    /// Provers' public keys validated at their first signature check.
    keys: Arc<ValidatedKeys>,
    metrics: Metrics,
    inclusion: InclusionParams,
    /// Canonical settlement (`None`: this node settles from its own clock).
    settling: Option<Settling>,
    events: broadcast::Sender<ProvingEvent>,
    settled: broadcast::Sender<rewards::Ledger>,
    tx: mpsc::WeakSender<Input>,
    seq: u64,
    replaying: bool,
    last_block: Option<(Slot, Root)>,
    blocks: BTreeMap<Root, BlockRecord>,
    /// Where each block is in the input log, with its slot, and the AIRs of its sub-blocks:
    /// what a STARK check needs once the block's payload data has left memory (a node catching
    /// up verifies proofs of blocks far behind its head).
    block_log: BTreeMap<Root, (Slot, u64)>,
    block_airs: BTreeMap<Root, BTreeMap<u32, u32>>,
    by_slot: BTreeMap<Slot, Root>,
    balances: rewards::Balances,
    /// The latest blocks settled, oldest first (each is settled once).
    settled_recent: VecDeque<Root>,
    /// Checked registrations waiting to join, with the time they were first seen.
    pending_registrations: BTreeMap<BlsPublicKey, (ProverRecord, Option<UnixMillis>)>,
    outstanding: BTreeMap<RequestId, Check>,
    /// Messages waiting for their verdict, with the first-seen time to publish them with once
    /// accepted (HTTP submissions; gossip is forwarded by gossipsub itself).
    in_flight: HashMap<Root, (ProtocolMessage, Option<UnixMillis>)>,
    /// When this node received each message of `in_flight` (its own clock).
    received: HashMap<Root, UnixMillis>,
    /// The message (signing root) each pending verification request belongs to, so that a
    /// message whose verification fails leaves `in_flight`.
    requests: HashMap<RequestId, Root>,
    replies: HashMap<RequestId, (MessageKind, Root, Waiter)>,
    publish: Option<mpsc::Sender<(Gossiped, UnixMillis)>>,
    /// HTTP submissions accepted again while replaying: published once the replay is done (a
    /// crash may have come before they were), if their block is still being proven.
    republish: Vec<(Gossiped, UnixMillis)>,
    early: VecDeque<Early>,
    disk: disk::DiskGuard,
    /// Slots of messages and proofs kept (`storage.retention_slots`).
    retention_slots: u64,
    /// The first input-log entry the store still holds.
    log_start: u64,
    /// The head slot of the latest checkpoint.
    checkpoint_slot: Option<Slot>,
    /// Blocks that left the retention window: their finalised proofs are deleted with the
    /// next checkpoint.
    expired: Vec<Root>,
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
    /// The settling engine of canonical rounds (`None`: settle from this node's clock).
    pub settling: Option<CanonicalRounds>,
    /// Event stream.
    pub events: broadcast::Sender<ProvingEvent>,
    /// Settled ledgers stream.
    pub settled: broadcast::Sender<rewards::Ledger>,
    /// Where accepted HTTP submissions go to be published on gossip (`None`: no gossip).
    pub publish: Option<mpsc::Sender<(Gossiped, UnixMillis)>>,
    /// Below this many free bytes on the store's filesystem new work is refused (0: never).
    pub min_free_bytes: u64,
    /// Slots of messages and proofs kept in the store (and served to peers that sync).
    pub retention_slots: u64,
}

impl Driver {
    /// Builds the driver: restores the latest checkpoint, then replays the input log after it.
    pub(crate) fn new(parts: DriverParts, tx: &mpsc::Sender<Input>) -> NodeResult<Self> {
        let mut driver = Self {
            engine: parts.engine,
            store: parts.store,
            clock: parts.clock,
            table: parts.rewards.table,
            reward_file: parts.rewards.to_file(),
            verifier: parts.verifier,
            keys: Arc::new(ValidatedKeys::new()),
            metrics: parts.metrics,
            inclusion: parts.rewards.inclusion,
            settling: parts.settling.map(Settling::new),
            events: parts.events,
            settled: parts.settled,
            tx: tx.downgrade(),
            seq: 0,
            replaying: true,
            last_block: None,
            blocks: BTreeMap::new(),
            block_log: BTreeMap::new(),
            block_airs: BTreeMap::new(),
            by_slot: BTreeMap::new(),
            balances: rewards::Balances::new(),
            settled_recent: VecDeque::new(),
            pending_registrations: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            in_flight: HashMap::new(),
            received: HashMap::new(),
            requests: HashMap::new(),
            replies: HashMap::new(),
            publish: parts.publish,
            republish: Vec::new(),
            early: VecDeque::new(),
            disk: disk::DiskGuard::new(parts.min_free_bytes),
            retention_slots: parts.retention_slots,
            log_start: 0,
            checkpoint_slot: None,
            expired: Vec::new(),
        };
        driver.restore_checkpoint()?;
        driver.replay()?;
        Ok(driver)
    }

    fn now(&self) -> UnixMillis {
        UnixMillis(self.clock.now_unix_millis())
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
                    self.handle(input).await.inspect_err(|e| self.fatal(e))?;
                }
                () = sleep => {
                    let now = self.now().max(timeout.unwrap_or(UnixMillis(0)));
                    self.log_and_apply(LoggedInput::Tick(now)).await.inspect_err(|e| self.fatal(e))?;
                }
                _ = lag.tick() => {
                    self.update_beacon_lag(self.last_block.map(|(slot, _)| slot));
                    self.check_disk();
                }
            }
        }
    }

    /// Logs the error the driver stops on, with the store's path (a store error is fatal only
    /// once it is logged with where and why).
    fn fatal(&self, error: &crate::NodeError) {
        tracing::error!(store = %self.store.path().display(), %error, "the driver stops");
    }

    async fn handle(&mut self, input: Input) -> NodeResult<()> {
        let input = match self.disk_refusal() {
            Some(reason) => match self.refuse_for_disk(input, reason) {
                Some(input) => input,
                None => return Ok(()),
            },
            None => input,
        };
        match input {
            Input::Block { info, data, graffiti } => {
                if self.last_block.is_some_and(|(slot, _)| info.slot <= slot) {
                    debug!(slot = %info.slot, "block not after the last one: ignored");
                    return Ok(());
                }
                let now = self.now();
                self.update_beacon_lag(Some(info.slot));
                let graffiti = Some(graffiti);
                self.log_and_apply(LoggedInput::Block { info, data, now, graffiti }).await?;
                for slot in self.settling_overdue(info.slot) {
                    self.log_and_apply(LoggedInput::GaveUp(slot)).await?;
                }
                self.retry_early().await?;
                if self.checkpoint_due(info.slot) {
                    self.checkpoint().await?;
                }
                if let Some(checkpoint) = self.checkpoint_slot {
                    self.metrics.set_checkpoint(checkpoint, info.slot);
                }
                Ok(())
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
            Input::Gossip { item: Gossiped::Record(record), reply, .. } => {
                self.take_record(record, Some(reply)).await
            }
            Input::Fetched { item: Gossiped::Record(record) } => {
                self.take_record(record, None).await
            }
            Input::Fetched { item: Gossiped::Message(message) } => {
                let now = self.now();
                self.take_message(message, now, None, true).await
            }
            Input::Fetched { item: Gossiped::Registration(registration) } => {
                // Nobody waits for the answer.
                let (reply, _) = tokio::sync::oneshot::channel();
                let now = self.now();
                self.register(registration, Waiter::Gossip(reply), now).await
            }
            Input::BuildRecord { slot, proposer, reply } => {
                let record = self.build_record(slot, proposer);
                if let Some(record) = &record {
                    self.take_record(record.clone(), None).await?;
                    self.publish(Gossiped::Record(record.clone()), self.now());
                }
                let _ = reply.send(record);
                Ok(())
            }
            Input::Gossip { item: Gossiped::Registration(registration), arrived, reply } => {
                self.register(registration, Waiter::Gossip(reply), arrived).await
            }
            Input::Registration { registration, reply } => {
                let now = self.now();
                self.register(registration, Waiter::Http(reply), now).await
            }
            Input::Verdicts { lane: Lane::Live, verdicts } => {
                for verdict in verdicts {
                    if !self.outstanding.contains_key(&verdict.request) {
                        continue;
                    }
                    self.log_and_apply(LoggedInput::Verdict(verdict)).await?;
                }
                Ok(())
            }
            Input::Verdicts { lane: Lane::Settling, verdicts } => {
                for verdict in verdicts {
                    let outstanding = self
                        .settling
                        .as_ref()
                        .is_some_and(|s| s.outstanding.contains_key(&verdict.request));
                    if outstanding {
                        self.log_and_apply(LoggedInput::SettlingVerdict(verdict)).await?;
                    }
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
}
