//! Checkpoints of the driver and the pruning they allow.
//!
//! Every [`CHECKPOINT_EVERY_SLOTS`] slots (at the first block of that many slots after the last
//! checkpoint) the driver stores, in one durable transaction, everything a restart needs to
//! resume where it is: the live engine and the settling engine (their own checkpoints,
//! [`phase_engine::Engine::checkpoint`]), the registrations waiting to join, the balances, the
//! per-block records (accepted proofs, outcomes, ledgers; payload data is named by its place in
//! the input log, not copied), the verification checks not answered yet and the messages
//! waiting for them, and the sequence number of the next log entry. A restart restores that and
//! replays only the log entries after it, so restart time does not grow with the chain.
//!
//! The same transaction prunes: log entries before both the checkpoint and everything still
//! read from the log (the payload data of the blocks of the retention window, the messages
//! served to peers that sync) are deleted by key range, and the finalised proofs of blocks that
//! left the retention window by key. What is kept for ever (ledgers, balances, the registry)
//! lives in other tables, or in the checkpoint.
//!
//! The format is one version byte ([`NODE_CHECKPOINT_VERSION`]) followed by postcard; the two
//! engines inside carry their own version byte. Replies to HTTP and gossip waiters are not in
//! it (as after a crash, nobody waits for them any more), nor is gossip held for a block not
//! seen yet.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
};

use phase_engine::{
    BlockOutcome, BlsPublicKey, Engine, ProtocolMessage, ProverRecord, RequestId, Root,
    SignedAggProof, SignedFullProof, SignedPartialProof, Slot, UnixMillis,
};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{
    Driver,
    blocks::BlockRecord,
    canonical::{SavedSettling, Settling},
    checks::Check,
};
use crate::{
    NodeError, StoreBatch,
    error::NodeResult,
    log::{self, LoggedInput},
    verify::BlockWork,
};

/// The format of node checkpoints this build writes and reads.
pub(crate) const NODE_CHECKPOINT_VERSION: u8 = 1;

/// Slots between checkpoints: a restart replays at most about this many slots of inputs.
pub(crate) const CHECKPOINT_EVERY_SLOTS: u64 = 8;

/// Metadata key: the first input-log entry the store still holds (entries before it are
/// pruned; a full replay from genesis needs it to be 0).
pub(crate) const META_LOG_START: &str = "log_start";

/// What the driver keeps about a block, as checkpointed.
#[derive(Serialize, Deserialize)]
struct SavedBlock {
    slot: Slot,
    /// Whether its payload data was in memory (read back from the log on restore).
    work: bool,
    partials: Vec<SignedPartialProof>,
    full_proofs: BTreeMap<u32, SignedFullProof>,
    agg_proof: Option<SignedAggProof>,
    outcome: Option<BlockOutcome>,
    ledger: Option<rewards::Ledger>,
    pruned: bool,
}

/// The driver's state, as checkpointed.
#[derive(Serialize, Deserialize)]
struct Saved {
    /// The next log entry's sequence number: the checkpoint holds every entry before it.
    seq: u64,
    /// The head slot when it was taken.
    slot: Slot,
    engine: Vec<u8>,
    settling: Option<SavedSettling>,
    last_block: Option<(Slot, Root)>,
    blocks: Vec<(Root, SavedBlock)>,
    block_log: BTreeMap<Root, (Slot, u64)>,
    block_airs: BTreeMap<Root, BTreeMap<u32, u32>>,
    by_slot: BTreeMap<Slot, Root>,
    balances: rewards::Balances,
    settled_recent: VecDeque<Root>,
    pending_registrations: BTreeMap<BlsPublicKey, (ProverRecord, Option<UnixMillis>)>,
    outstanding: BTreeMap<RequestId, Check>,
    in_flight: HashMap<Root, (ProtocolMessage, Option<UnixMillis>)>,
    received: HashMap<Root, UnixMillis>,
    requests: HashMap<RequestId, Root>,
    expired: Vec<Root>,
}

fn encode(saved: &Saved) -> NodeResult<Vec<u8>> {
    postcard::to_extend(saved, vec![NODE_CHECKPOINT_VERSION])
        .map_err(|e| NodeError::Checkpoint { reason: format!("encoding: {e}") })
}

fn decode(bytes: &[u8]) -> NodeResult<Saved> {
    let invalid = |reason: String| NodeError::Checkpoint { reason };
    let Some((&version, body)) = bytes.split_first() else {
        return Err(invalid("empty".into()));
    };
    if version != NODE_CHECKPOINT_VERSION {
        return Err(invalid(format!(
            "format version {version}, this build reads {NODE_CHECKPOINT_VERSION}"
        )));
    }
    let (saved, rest) =
        postcard::take_from_bytes::<Saved>(body).map_err(|e| invalid(e.to_string()))?;
    if !rest.is_empty() {
        return Err(invalid(format!("{} trailing bytes", rest.len())));
    }
    Ok(saved)
}

/// Where a store's checkpoint is (`sidecar db stats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointPosition {
    /// The head slot when it was taken.
    pub slot: Slot,
    /// The first input-log entry after it: a restart replays the entries from here on.
    pub next_entry: u64,
    /// The first input-log entry the store still holds (those before are pruned).
    pub log_start: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Where the checkpoint in `store` is, if it has one.
///
/// # Errors
/// [`NodeError::Checkpoint`] for one this build cannot read; store errors.
pub fn checkpoint_position(store: &crate::Store) -> NodeResult<Option<CheckpointPosition>> {
    let Some(bytes) = store.checkpoint()? else { return Ok(None) };
    let saved = decode(&bytes)?;
    Ok(Some(CheckpointPosition {
        slot: saved.slot,
        next_entry: saved.seq,
        log_start: store.meta(META_LOG_START)?.unwrap_or(0),
        bytes: bytes.len() as u64,
    }))
}

impl Driver {
    /// Whether a checkpoint is due at the block of `slot`.
    pub(super) fn checkpoint_due(&self, slot: Slot) -> bool {
        self.checkpoint_slot
            .is_none_or(|last| slot.0 >= last.0.saturating_add(CHECKPOINT_EVERY_SLOTS))
    }

    /// Stores a checkpoint of the driver's state and prunes what it makes unneeded, in one
    /// durable transaction (on the blocking pool).
    pub(super) async fn checkpoint(&mut self) -> NodeResult<()> {
        let slot = self.last_block.map_or(Slot(0), |(slot, _)| slot);
        let bytes = encode(&self.saved(slot)?)?;
        let mut batch = StoreBatch::new();
        batch.put_checkpoint(&bytes);
        // Log entries still read: the payload data of the retained blocks and the messages
        // served to peers; and everything the checkpoint does not hold.
        let settling_logged = self.settling.iter().flat_map(|s| s.logged.values());
        let keep_from = self
            .block_log
            .values()
            .chain(settling_logged)
            .map(|(_, seq)| *seq)
            .min()
            .unwrap_or(self.seq)
            .min(self.seq);
        if keep_from > self.log_start {
            log::prune(&mut batch, self.log_start, keep_from);
            batch.put_meta(META_LOG_START, keep_from);
        }
        let expired = std::mem::take(&mut self.expired);
        for root in &expired {
            batch.delete_message(*root, super::settle::FINALIZED_PROOF_KEY);
        }
        let store = Arc::clone(&self.store);
        let removed = tokio::task::spawn_blocking(move || store.commit_counting_removed(batch))
            .await
            .map_err(|_| NodeError::Stopped)??;
        self.log_start = self.log_start.max(keep_from);
        self.checkpoint_slot = Some(slot);
        self.metrics.store_pruned(removed);
        self.metrics.set_checkpoint(slot, slot);
        tracing::debug!(%slot, seq = self.seq, bytes = bytes.len(), pruned_bytes = removed, "checkpoint");
        Ok(())
    }

    fn saved(&mut self, slot: Slot) -> NodeResult<Saved> {
        let settling = match self.settling.as_mut() {
            Some(s) => Some(s.save()?),
            None => None,
        };
        let blocks = self
            .blocks
            .iter()
            .map(|(root, b)| {
                let saved = SavedBlock {
                    slot: b.slot,
                    work: b.work.is_some(),
                    partials: b.partials.clone(),
                    full_proofs: b.full_proofs.clone(),
                    agg_proof: b.agg_proof.clone(),
                    outcome: b.outcome.clone(),
                    ledger: b.ledger.clone(),
                    pruned: b.pruned,
                };
                (*root, saved)
            })
            .collect();
        Ok(Saved {
            seq: self.seq,
            slot,
            engine: self.engine.checkpoint()?,
            settling,
            last_block: self.last_block,
            blocks,
            block_log: self.block_log.clone(),
            block_airs: self.block_airs.clone(),
            by_slot: self.by_slot.clone(),
            balances: self.balances.clone(),
            settled_recent: self.settled_recent.clone(),
            pending_registrations: self.pending_registrations.clone(),
            outstanding: self.outstanding.clone(),
            in_flight: self.in_flight.clone(),
            received: self.received.clone(),
            requests: self.requests.clone(),
            expired: self.expired.clone(),
        })
    }

    /// Restores the latest stored checkpoint, if there is one (at start, before the replay of
    /// the log entries after it).
    ///
    /// # Errors
    /// [`NodeError::Checkpoint`] for a checkpoint this build cannot read, or one made with
    /// another engine configuration when the log before it is pruned (a full replay with the
    /// new configuration is not possible then); store errors.
    pub(super) fn restore_checkpoint(&mut self) -> NodeResult<()> {
        self.log_start = self.store.meta(META_LOG_START)?.unwrap_or(0);
        let Some(bytes) = self.store.checkpoint()? else {
            if self.log_start > 0 {
                return Err(NodeError::Checkpoint {
                    reason: "the input log is pruned but the store holds no checkpoint".into(),
                });
            }
            return Ok(());
        };
        let saved = decode(&bytes)?;
        let engine = Engine::restore(&saved.engine)?;
        let same_config = engine.config() == self.engine.config()
            && engine.signing_context() == self.engine.signing_context()
            && saved.settling.is_some() == self.settling.is_some();
        if !same_config {
            if self.log_start == 0 {
                warn!(
                    "the checkpoint was made with another engine configuration: replaying the whole input log instead"
                );
                return Ok(());
            }
            return Err(NodeError::Checkpoint {
                reason:
                    "it was made with another engine configuration (rewards.toml [engine], the \
                         network, or canonical rounds on or off), and the input log before it is \
                         pruned: start with the configuration it was made with, or with a new \
                         data directory"
                        .into(),
            });
        }
        if saved.seq < self.log_start {
            return Err(NodeError::Checkpoint {
                reason: format!(
                    "it ends at log entry {} but the log starts at {}",
                    saved.seq, self.log_start
                ),
            });
        }
        self.engine = engine;
        self.settling = match saved.settling {
            Some(s) => {
                let (mut settling, ids) = Settling::restore(s)?;
                // The settling engine's messages, read back from the input log.
                let sealer = settling.rounds.engine().sealer();
                for id in ids {
                    let sealed = sealer.seal(logged_message(&self.store, &settling, &id)?);
                    if sealed.signing_root() != id {
                        return Err(NodeError::Checkpoint {
                            reason: format!("the log entry named for message {id} holds another"),
                        });
                    }
                    settling.rounds.restore_message(sealed);
                }
                Some(settling)
            }
            None => None,
        };
        self.seq = saved.seq;
        self.checkpoint_slot = Some(saved.slot);
        self.last_block = saved.last_block;
        self.block_log = saved.block_log;
        self.block_airs = saved.block_airs;
        self.by_slot = saved.by_slot;
        self.balances = saved.balances;
        self.settled_recent = saved.settled_recent;
        self.pending_registrations = saved.pending_registrations;
        self.outstanding = saved.outstanding;
        self.in_flight = saved.in_flight;
        self.received = saved.received;
        self.requests = saved.requests;
        self.expired = saved.expired;
        for (root, b) in saved.blocks {
            let work = if b.work { self.logged_work(&root)? } else { None };
            let record = BlockRecord {
                slot: b.slot,
                work,
                partials: b.partials,
                full_proofs: b.full_proofs,
                agg_proof: b.agg_proof,
                outcome: b.outcome,
                ledger: b.ledger,
                pruned: b.pruned,
            };
            self.blocks.insert(root, record);
        }
        info!(slot = %saved.slot, seq = saved.seq, "restored the checkpoint");
        Ok(())
    }

    /// A block's STARK workload data, read back from its input-log entry (the one the
    /// checkpoint names).
    fn logged_work(&self, root: &Root) -> NodeResult<Option<Arc<BlockWork>>> {
        let Some((_, seq)) = self.block_log.get(root) else { return Ok(None) };
        match log::read(&self.store, *seq)? {
            Some(LoggedInput::Block { info, data, .. }) if info.root == *root => {
                let airs = self.block_airs.get(root).cloned().unwrap_or_default();
                Ok(Some(Arc::new(BlockWork { root: *root, gas_used: info.gas_used, data, airs })))
            }
            _ => Err(NodeError::CorruptLog {
                index: *seq,
                reason: format!("the checkpoint names it as the entry of block {root}"),
            }),
        }
    }
}

/// The message with signing root `id`, read back from the input-log entry `settling.logged`
/// names for it.
fn logged_message(
    store: &crate::Store,
    settling: &Settling,
    id: &Root,
) -> NodeResult<ProtocolMessage> {
    let missing = |reason: String| NodeError::Checkpoint { reason };
    let Some((_, seq)) = settling.logged.get(id) else {
        return Err(missing(format!("message {id} of the settling engine has no log entry")));
    };
    match log::read(store, *seq)? {
        Some(LoggedInput::Message { message, .. } | LoggedInput::Relayed { message, .. }) => {
            Ok(message)
        }
        _ => Err(missing(format!("log entry {seq} is not the message {id} the checkpoint names"))),
    }
}
