//! Canonical rounds: the settling engine, fed only what canonical inclusion records include.
//!
//! [`CanonicalRounds`] wraps a second [`Engine`] (same configuration and registry as the live
//! one). Its inputs are data every sidecar can obtain and check: the canonical blocks (with the
//! [`RecordCommitment`] their graffiti makes), the [`InclusionRecord`]s those commitments name,
//! and the messages the records name. Its output is the same [`Action`] stream as an engine's
//! (verification requests to answer, [`Action::BlockOutcome`]s to settle), plus requests for
//! what it lacks ([`CanonicalAction::FetchRecord`], [`CanonicalAction::FetchMessage`]). Given
//! the same chain and records, every sidecar feeds its settling engine the same messages at the
//! same times in the same order, whatever order its inputs came in, so it settles the same
//! ledgers.
//!
//! The rules:
//! * Slots are resolved in order. A slot is resolved when it is missed (a later block exists),
//!   its block makes no commitment, or the record it commits to is known and every message the
//!   record names is known. A committed record that fails [`InclusionRecord::check`] counts as no
//!   record (every sidecar sees the same fault).
//! * An entry of the record of slot `S` counts once, for the first record (lowest slot) that
//!   names the message, credited to that record's proposer, at the time it states; an entry
//!   whose time lies in a slot more than `max_delay_slots` before `S` never counts.
//! * An entry may name a prover registration instead of a round message (ids are signing roots,
//!   whose domains never collide). It counts once, for the first record that names it, at any
//!   delay; the prover joins the registry right before the block of slot
//!   `S + registration_delay_slots` (the first block after, if that slot is missed), unless its
//!   key is registered by then or its stake is below the minimum. Registrations are handed in
//!   verified ([`CanonicalRounds::on_registration`]); [`CanonicalRounds::provers_at`] tells the
//!   live engine which provers to have at each block.
//! * Entries are fed in `(time, id)` order once no later record can add an earlier one: with
//!   every slot up to `R` resolved, times in slots up to `R - max_delay_slots` are final. The
//!   canonical blocks are fed at their slot starts, and the engine's clock never passes the
//!   final horizon. The engine rejects what its rules reject (a time outside the message's
//!   phase, an unknown round, ...), the same way on every sidecar.
//! * A reorg back to slot `F` restores the state saved before slot `F` was resolved (kept for
//!   [`SNAPSHOTS_KEPT`] slots), says so ([`CanonicalAction::Reorged`]) and resolves the new
//!   blocks from there. An outcome is emitted once the entries it depends on are final against
//!   later *records*; a reorg that orphans one of those records can change it, so a caller
//!   settles an outcome for good only once the slots up to its horizon are finalised on the
//!   beacon chain, or replaces it when it is emitted again after a [`CanonicalAction::Reorged`].
//!
//! Pure like the engine: the caller supplies every block, record and message, and answers the
//! verification requests.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::{
    actions::{Action, BlockInfo, Progress, ProverRecord, RequestId, Verdict},
    config::InclusionParams,
    engine::Engine,
    error::{Error, Result},
    inclusion::{InclusionRecord, RecordCommitment, record_cutoff},
    messages::SignedProverRegistration,
    sealed::SealedMessage,
    types::{ProverIndex, Root, Slot, UnixMillis, ValidatorIndex},
};

/// The slot of a message's round (of its block, for an AggProof).
fn message_slot(message: &crate::messages::ProtocolMessage) -> Slot {
    use crate::messages::ProtocolMessage as M;
    match message {
        M::Commitment(m) => m.message.round.slot,
        M::Decline(m) => m.message.round.slot,
        M::PartialProof(m) => m.message.round.slot,
        M::FullProof(m) => m.message.round.slot,
        M::AggProof(m) => m.message.slot,
    }
}

/// How many slots back a reorg can be undone (the states saved before resolving each slot).
pub const SNAPSHOTS_KEPT: usize = 96;

/// Slots past the next unresolved one whose records and messages are asked for ahead of time:
/// a sidecar catching up fetches a window of slots at once instead of one slot per round trip.
pub const LOOKAHEAD_SLOTS: u64 = 64;

/// What the settling engine needs or says.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CanonicalAction {
    /// The record of `slot` is committed to but not known: fetch it (gossip, sync by root).
    FetchRecord {
        /// The slot.
        slot: Slot,
        /// What its block's graffiti commits to.
        commitment: RecordCommitment,
    },
    /// A canonical record names a message this sidecar lacks: fetch it by id.
    FetchMessage {
        /// The slot of the record.
        slot: Slot,
        /// The message's signing root.
        id: Root,
    },
    /// The record committed to by the block of `slot` fails its checks: it counts as no record.
    RecordRejected {
        /// The slot.
        slot: Slot,
        /// Why.
        reason: Error,
    },
    /// An entry of a canonical record does not count.
    EntryIgnored {
        /// The slot of the record.
        slot: Slot,
        /// The message's signing root.
        id: Root,
        /// Why.
        reason: Error,
    },
    /// A reorg undid what was resolved from `fork_slot` on: outcomes emitted after that state was
    /// saved may be emitted again, possibly different; the later emission replaces the earlier.
    Reorged {
        /// The first orphaned slot.
        fork_slot: Slot,
    },
    /// An action of the settling engine (answer verification requests with
    /// [`CanonicalRounds::on_verification`]; settle [`Action::BlockOutcome`]s).
    Engine(Action),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CanonicalSlot {
    info: BlockInfo,
    commitment: Option<RecordCommitment>,
}

/// Something asked for once (until it arrives).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Wanted {
    Record(RecordCommitment),
    Message(Root),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Queued {
    slot: Slot,
    includer: ValidatorIndex,
}

/// A registration a resolved record includes, waiting for the block it joins at.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Joining {
    /// The slot of the record.
    slot: Slot,
    /// The registration's signing root.
    id: Root,
    record: ProverRecord,
}

/// What a reorg restores: everything that resolving slots and feeding changes.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Progression {
    engine: Engine,
    /// The engine's verification requests not answered yet. Nothing is fed while one is
    /// pending, so that every verdict is applied before any later input, whenever it comes.
    pending: BTreeMap<RequestId, Action>,
    resolved_through: Option<Slot>,
    #[serde(serialize_with = "crate::checkpoint::sorted_map")]
    included: HashMap<Root, Slot>,
    queue: BTreeMap<(UnixMillis, Root), Queued>,
    fed_blocks_through: Option<Slot>,
    clock: UnixMillis,
    /// Included registrations by the slot of the block they join right before, in the order
    /// the records name them.
    joining: BTreeMap<Slot, Vec<Joining>>,
}

/// The settling engine of canonical rounds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CanonicalRounds {
    params: InclusionParams,
    genesis: UnixMillis,
    slot_ms: u64,
    chain: BTreeMap<Slot, CanonicalSlot>,
    #[serde(serialize_with = "crate::checkpoint::sorted_map")]
    records: HashMap<RecordCommitment, InclusionRecord>,
    #[serde(serialize_with = "crate::checkpoint::sorted_map")]
    messages: HashMap<Root, SealedMessage>,
    /// Verified registrations, by signing root.
    #[serde(serialize_with = "crate::checkpoint::sorted_map")]
    registrations: HashMap<Root, SignedProverRegistration>,
    progress: Progression,
    /// `(slot, state before resolving it)`, oldest first.
    snapshots: VecDeque<(Slot, Box<Progression>)>,
    #[serde(serialize_with = "crate::checkpoint::sorted_set")]
    requested: HashSet<Wanted>,
    /// Slots the caller gave up waiting for ([`CanonicalRounds::give_up`]).
    #[serde(serialize_with = "crate::checkpoint::sorted_set")]
    given_up: HashSet<Slot>,
    actions: VecDeque<CanonicalAction>,
}

impl CanonicalRounds {
    /// A settling engine around `engine` (fresh: the same configuration and registry as the live
    /// engine, no blocks yet), for a chain whose slot 0 starts at `genesis` and whose slots last
    /// `slot_ms`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero slot duration.
    pub fn new(
        engine: Engine,
        params: InclusionParams,
        genesis: UnixMillis,
        slot_ms: u64,
    ) -> Result<Self> {
        if slot_ms == 0 {
            return Err(Error::InvalidConfig {
                key: "seconds_per_slot",
                reason: "the slot duration must be > 0",
            });
        }
        Ok(Self {
            params,
            genesis,
            slot_ms,
            chain: BTreeMap::new(),
            records: HashMap::new(),
            messages: HashMap::new(),
            registrations: HashMap::new(),
            progress: Progression {
                engine,
                pending: BTreeMap::new(),
                resolved_through: None,
                included: HashMap::new(),
                queue: BTreeMap::new(),
                fed_blocks_through: None,
                clock: genesis,
                joining: BTreeMap::new(),
            },
            snapshots: VecDeque::new(),
            requested: HashSet::new(),
            given_up: HashSet::new(),
            actions: VecDeque::new(),
        })
    }

    /// The whole state as a checkpoint (as [`Engine::checkpoint`]): the chain, the pools of
    /// records, messages and registrations, the settling engine, the snapshots a reorg restores,
    /// the outstanding requests and the undrained actions. Restore it with
    /// [`CanonicalRounds::restore`] and replay only the inputs given after it.
    ///
    /// # Errors
    /// [`Error::InvalidCheckpoint`] if the encoder fails, which no state of this crate makes it
    /// do.
    pub fn checkpoint(&self) -> Result<Vec<u8>> {
        crate::checkpoint::encode(self)
    }

    /// The settling engine saved by [`CanonicalRounds::checkpoint`]: every later input
    /// (reorgs included) gives the outputs the saved one would have given.
    ///
    /// # Errors
    /// [`Error::CheckpointVersion`] for a checkpoint of another format version,
    /// [`Error::InvalidCheckpoint`] for bytes that are not a whole checkpoint of canonical
    /// rounds.
    pub fn restore(bytes: &[u8]) -> Result<Self> {
        crate::checkpoint::decode(bytes)
    }

    /// [`CanonicalRounds::checkpoint`] without the messages held (a node keeps them in its input
    /// log already): the checkpoint names them by signing root instead. Restore it with
    /// [`CanonicalRounds::restore_without_messages`], then give every named message back with
    /// [`CanonicalRounds::restore_message`]. The messages are set aside while encoding (hence
    /// `&mut`) and are back when this returns.
    ///
    /// # Errors
    /// [`Error::InvalidCheckpoint`] if the state cannot be encoded.
    pub fn checkpoint_without_messages(&mut self) -> Result<Vec<u8>> {
        let messages = std::mem::take(&mut self.messages);
        let mut ids: Vec<Root> = messages.keys().copied().collect();
        ids.sort_unstable();
        let bytes = crate::checkpoint::encode(&(&*self, &ids));
        self.messages = messages;
        bytes
    }

    /// The settling engine saved by [`CanonicalRounds::checkpoint_without_messages`], without
    /// its messages, and the signing roots of the messages it held: each must be given back
    /// with [`CanonicalRounds::restore_message`] before any other input.
    ///
    /// # Errors
    /// As [`CanonicalRounds::restore`].
    pub fn restore_without_messages(bytes: &[u8]) -> Result<(Self, Vec<Root>)> {
        crate::checkpoint::decode(bytes)
    }

    /// Gives back a message a checkpoint without messages named (nothing is fed or resolved:
    /// the state is the checkpointed one once every named message is back).
    pub fn restore_message(&mut self, message: SealedMessage) {
        self.messages.insert(message.signing_root(), message);
    }

    /// The settling engine (read-only: its registry, its open rounds).
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.progress.engine
    }

    /// Every slot up to this one is resolved (its record, if any, and the record's messages are
    /// known).
    #[must_use]
    pub fn resolved_through(&self) -> Option<Slot> {
        self.progress.resolved_through
    }

    /// Whether a resolved canonical record includes the message with this signing root (a
    /// proposer's sidecar leaves such messages out of its own record).
    #[must_use]
    pub fn is_included(&self, id: &Root) -> bool {
        self.progress.included.contains_key(id)
    }

    /// Whether a record with this commitment is known.
    #[must_use]
    pub fn has_record(&self, commitment: &RecordCommitment) -> bool {
        self.records.contains_key(commitment)
    }

    /// The known message with this signing root.
    #[must_use]
    pub fn message(&self, id: &Root) -> Option<&SealedMessage> {
        self.messages.get(id)
    }

    /// Whether the message with this signing root is known.
    #[must_use]
    pub fn has_message(&self, id: &Root) -> bool {
        self.messages.contains_key(id)
    }

    /// The known registration with this signing root.
    #[must_use]
    pub fn registration(&self, id: &Root) -> Option<&SignedProverRegistration> {
        self.registrations.get(id)
    }

    /// The slot of the resolved record that first includes the message or registration with
    /// this signing root.
    #[must_use]
    pub fn included_at(&self, id: &Root) -> Option<Slot> {
        self.progress.included.get(id).copied()
    }

    /// The provers the registry holds right before the block of `slot`, as far as the resolved
    /// records tell, from index `from` on, in index order: those the settling engine has
    /// registered, then the included registrations that join at or before `slot` (less those
    /// that will be refused: a key registered already, a stake below the minimum). The live
    /// engine, holding the first `from` of them, adds these before its block of `slot`, so that
    /// both engines select from the same registry.
    #[must_use]
    pub fn provers_at(&self, slot: Slot, from: u64) -> Vec<ProverRecord> {
        let engine = &self.progress.engine;
        let min_stake = engine.registry_params().min_stake;
        let mut out: Vec<ProverRecord> = (from..engine.num_provers())
            .filter_map(|i| engine.prover(ProverIndex(i)))
            .cloned()
            .collect();
        let mut seen = HashSet::new();
        let joining = self.progress.joining.range(..=slot).flat_map(|(_, list)| list.iter());
        for j in joining {
            let fresh = engine.prover_by_pubkey(&j.record.pubkey).is_none()
                && seen.insert(j.record.pubkey)
                && j.record.stake >= min_stake;
            if fresh {
                out.push(j.record.clone());
            }
        }
        out
    }

    /// The known record with this commitment.
    #[must_use]
    pub fn record(&self, commitment: &RecordCommitment) -> Option<&InclusionRecord> {
        self.records.get(commitment)
    }

    /// Forgets the records of slots before `slot` and the messages whose round (or block, for
    /// an AggProof) is before `slot`: the caller's bound on the pools, once nothing before
    /// `slot` can be resolved again (resolved, and beyond the reach of a reorg:
    /// [`SNAPSHOTS_KEPT`] slots). A record or message needed again after all is requested
    /// again.
    pub fn prune_before(&mut self, slot: Slot) {
        self.records.retain(|_, r| r.slot >= slot);
        self.given_up.retain(|s| *s >= slot);
        self.messages.retain(|_, m| message_slot(m.message()) >= slot);
        // Inclusions by records before `slot`, but registrations' (a registration counts at
        // any delay, so it must stay included). A message included that long ago belongs to a
        // round closed long since: a record naming it again gets it refused by the engine
        // (its round is gone) whether or not it is remembered as included, so forgetting it
        // changes no outcome. The states a reorg restores forget them too: they are what keeps
        // a checkpoint from growing with the chain.
        let registrations = &self.registrations;
        let recent = |id: &Root, at: &mut Slot| *at >= slot || registrations.contains_key(id);
        self.progress.included.retain(recent);
        for (_, state) in &mut self.snapshots {
            state.included.retain(recent);
        }
        // The chain before `slot` (its head is always kept: blocks must come after it).
        if let Some((&head, _)) = self.chain.last_key_value() {
            let keep_from = slot.min(head);
            self.chain = self.chain.split_off(&keep_from);
        }
    }

    /// The next action, in order.
    pub fn poll_action(&mut self) -> Option<CanonicalAction> {
        self.actions.pop_front()
    }

    /// A canonical block, with the commitment its graffiti makes (`None`: no record). Blocks
    /// come in slot order; a slot with no block before the next one is missed.
    ///
    /// # Errors
    /// [`Error::StaleBlock`] for a block at or below the highest slot given (a reorg comes
    /// first, with [`CanonicalRounds::on_reorg`]).
    pub fn on_block(
        &mut self,
        info: BlockInfo,
        commitment: Option<RecordCommitment>,
    ) -> Result<()> {
        if let Some((&head, _)) = self.chain.last_key_value()
            && info.slot <= head
        {
            return Err(Error::StaleBlock { slot: info.slot, last: head });
        }
        self.chain.insert(info.slot, CanonicalSlot { info, commitment });
        self.step();
        Ok(())
    }

    /// The canonical chain was reorganised: the blocks from `fork_slot` on are orphaned (the new
    /// ones follow with [`CanonicalRounds::on_block`]). What was resolved from `fork_slot` on is
    /// undone.
    ///
    /// # Errors
    /// [`Error::ReorgTooDeep`] if the state before `fork_slot` is no longer kept; the caller
    /// must then rebuild from its stored inputs.
    pub fn on_reorg(&mut self, fork_slot: Slot) -> Result<()> {
        let _ = self.chain.split_off(&fork_slot);
        self.given_up.retain(|s| *s < fork_slot);
        let undone = self.progress.resolved_through.is_some_and(|r| r >= fork_slot);
        if undone {
            let position = self.snapshots.iter().position(|(slot, _)| *slot >= fork_slot);
            let Some(position) = position else {
                return Err(Error::ReorgTooDeep { fork_slot });
            };
            let (_, state) =
                self.snapshots.remove(position).ok_or(Error::ReorgTooDeep { fork_slot })?;
            self.snapshots.truncate(position);
            self.progress = *state;
            self.actions.push_back(CanonicalAction::Reorged { fork_slot });
            // The restored engine still waits for these: they are asked again.
            for action in self.progress.pending.values() {
                self.actions.push_back(CanonicalAction::Engine(action.clone()));
            }
        }
        self.step();
        Ok(())
    }

    /// The caller gives up waiting for what slot `slot` lacks (its committed record, or messages
    /// the record names): the slot is resolved with what is known, a missing record as no
    /// record, missing messages as entries that do not count. Without this, a proposer that
    /// commits to a record (or names a message) nobody can obtain would hold settlement for
    /// ever. The caller decides when (the node: `inclusion.max_delay_slots` slots after the slot)
    /// and records the decision with its other inputs; a sidecar that gives up while another
    /// still obtains the data can settle differently, which only a proposer withholding data
    /// from some sidecars can cause.
    pub fn give_up(&mut self, slot: Slot) {
        if self.progress.resolved_through.is_some_and(|r| slot <= r) {
            return;
        }
        // What the slot lacks is asked for again when another slot needs it: each request names
        // one slot (the first that needed it), and the caller, giving up on that slot, stops
        // waiting for it; an earlier slot that needs it too must be told, or it waits for ever.
        if let Some(commitment) = self.chain.get(&slot).and_then(|b| b.commitment) {
            self.requested.remove(&Wanted::Record(commitment));
            if let Some(record) = self.records.get(&commitment) {
                for id in self.missing_messages(record) {
                    self.requested.remove(&Wanted::Message(id));
                }
            }
        }
        self.given_up.insert(slot);
        self.step();
    }

    /// The slot whose record or messages settlement waits for: the next unresolved slot, when
    /// a block at or after it is known (`None`: nothing to wait for). Every slot this returns
    /// has been asked for ([`CanonicalAction::FetchRecord`], [`CanonicalAction::FetchMessage`]),
    /// under its own slot or a later one; a caller that gives up on slots after a delay gives up
    /// on this one too, whatever it was asked under, so that no bookkeeping of the caller's can
    /// hold settlement for ever.
    #[must_use]
    pub fn waiting_for(&self) -> Option<Slot> {
        let (&head, _) = self.chain.last_key_value()?;
        let next = self.progress.resolved_through.map_or(Slot(0), |r| Slot(r.0.saturating_add(1)));
        (next <= head).then_some(next)
    }

    /// A registration this sidecar holds (received, fetched) whose signature and proof of
    /// possession the caller verified, as it verifies a gossiped one: records may name it.
    pub fn on_registration(&mut self, registration: SignedProverRegistration) {
        let id = registration.signing_root(self.progress.engine.signing_context());
        self.requested.remove(&Wanted::Message(id));
        self.registrations.insert(id, registration);
        self.step();
    }

    /// A record received (gossip, sync). Kept if a block commits to it now or may later.
    pub fn on_record(&mut self, record: InclusionRecord) {
        let commitment = RecordCommitment::of(&record.root());
        self.requested.remove(&Wanted::Record(commitment));
        self.records.insert(commitment, record);
        self.step();
    }

    /// A message this sidecar holds (received, fetched), by its signing root.
    pub fn on_message(&mut self, message: SealedMessage) {
        let id = message.signing_root();
        self.requested.remove(&Wanted::Message(id));
        self.messages.insert(id, message);
        self.step();
    }

    /// The verdict of a verification request of the settling engine.
    ///
    /// # Errors
    /// The engine's, for an unknown request.
    pub fn on_verification(&mut self, verdict: Verdict) -> Result<Progress> {
        self.progress.pending.remove(&verdict.request);
        let progress = self.progress.engine.on_verification(verdict);
        self.drain();
        if self.progress.pending.is_empty() {
            self.step();
        }
        progress
    }

    fn slot_start(&self, slot: Slot) -> UnixMillis {
        UnixMillis(self.genesis.0.saturating_add(slot.0.saturating_mul(self.slot_ms)))
    }

    fn slot_at(&self, t: UnixMillis) -> Slot {
        Slot(t.0.saturating_sub(self.genesis.0).checked_div(self.slot_ms).unwrap_or(0))
    }

    fn step(&mut self) {
        while self.resolve_next() {}
        self.request_ahead();
        self.feed();
        self.drain();
    }

    /// Asks for what the slots after the next unresolved one lack (up to
    /// [`LOOKAHEAD_SLOTS`]): committed records not known, and the messages known valid records
    /// name. Only fetching depends on it, never an outcome.
    fn request_ahead(&mut self) {
        let next = self.progress.resolved_through.map_or(Slot(0), |r| Slot(r.0.saturating_add(1)));
        let end = Slot(next.0.saturating_add(LOOKAHEAD_SLOTS));
        let ahead: Vec<(Slot, RecordCommitment, UnixMillis, ValidatorIndex)> = self
            .chain
            .range(Slot(next.0.saturating_add(1))..=end)
            .filter(|(slot, _)| !self.given_up.contains(slot))
            .filter_map(|(slot, b)| {
                b.commitment.map(|c| (*slot, c, b.info.slot_start, b.info.proposer))
            })
            .collect();
        for (slot, commitment, slot_start, proposer) in ahead {
            let Some(record) = self.records.get(&commitment) else {
                self.request(
                    Wanted::Record(commitment),
                    CanonicalAction::FetchRecord { slot, commitment },
                );
                continue;
            };
            if record.check(slot, proposer, record_cutoff(slot_start, &self.params)).is_err() {
                continue;
            }
            let missing = self.missing_messages(record);
            self.request_messages(slot, missing);
        }
    }

    /// The messages `record` names that are not known.
    fn missing_messages(&self, record: &InclusionRecord) -> Vec<Root> {
        record
            .messages
            .iter()
            .map(|m| m.id)
            .filter(|id| !self.messages.contains_key(id) && !self.registrations.contains_key(id))
            .collect()
    }

    /// Asks for each of `ids`, named by the record of `slot` (once each).
    fn request_messages(&mut self, slot: Slot, ids: Vec<Root>) {
        for id in ids {
            self.request(Wanted::Message(id), CanonicalAction::FetchMessage { slot, id });
        }
    }

    /// Resolves the next slot if it can be; returns whether it did.
    fn resolve_next(&mut self) -> bool {
        let Some((&head, _)) = self.chain.last_key_value() else { return false };
        let next = self.progress.resolved_through.map_or(Slot(0), |r| Slot(r.0.saturating_add(1)));
        if next > head {
            return false;
        }
        let Some(block) = self.chain.get(&next).cloned() else {
            // Missed (a later block exists): nothing to include.
            self.resolved(next, Vec::new());
            return true;
        };
        let Some(commitment) = block.commitment else {
            self.resolved(next, Vec::new());
            return true;
        };
        let given_up = self.given_up.contains(&next);
        let Some(record) = self.records.get(&commitment).cloned() else {
            if given_up {
                let reason =
                    Error::InvalidRecord { slot: next, reason: "the record is unavailable" };
                self.actions.push_back(CanonicalAction::RecordRejected { slot: next, reason });
                self.resolved(next, Vec::new());
                return true;
            }
            self.request(
                Wanted::Record(commitment),
                CanonicalAction::FetchRecord { slot: next, commitment },
            );
            return false;
        };
        let cutoff = record_cutoff(block.info.slot_start, &self.params);
        if let Err(reason) = record.check(next, block.info.proposer, cutoff) {
            self.actions.push_back(CanonicalAction::RecordRejected { slot: next, reason });
            self.resolved(next, Vec::new());
            return true;
        }
        let missing = self.missing_messages(&record);
        if !missing.is_empty() && !given_up {
            self.request_messages(next, missing);
            return false;
        }
        for id in &missing {
            let reason =
                Error::InvalidRecord { slot: next, reason: "a named message is unavailable" };
            self.actions.push_back(CanonicalAction::EntryIgnored { slot: next, id: *id, reason });
        }
        let entries = record
            .messages
            .iter()
            .filter(|m| !missing.contains(&m.id))
            .map(|m| (m.arrived_at, m.id))
            .collect();
        self.resolved(next, entries);
        true
    }

    fn request(&mut self, wanted: Wanted, action: CanonicalAction) {
        if self.requested.insert(wanted) {
            self.actions.push_back(action);
        }
    }

    /// Slot `slot` is resolved with these `(time, id)` entries (those of its record).
    fn resolved(&mut self, slot: Slot, entries: Vec<(UnixMillis, Root)>) {
        self.snapshots.push_back((slot, Box::new(self.progress.clone())));
        while self.snapshots.len() > SNAPSHOTS_KEPT {
            self.snapshots.pop_front();
        }
        let includer = self.chain.get(&slot).map(|b| b.info.proposer);
        for (t, id) in entries {
            let Some(includer) = includer else { break };
            if self.progress.included.contains_key(&id) {
                continue; // an earlier record includes it: the first inclusion counts
            }
            if let Some(registration) = self.registrations.get(&id) {
                // At any delay: its time decides nothing, its record's slot when it joins.
                let record = registration.message.record();
                let joins = Slot(slot.0.saturating_add(self.params.registration_delay_slots));
                self.progress.included.insert(id, slot);
                self.progress.joining.entry(joins).or_default().push(Joining { slot, id, record });
                continue;
            }
            let arrived_in = self.slot_at(t);
            if arrived_in.0.saturating_add(self.params.max_delay_slots) < slot.0 {
                let reason = Error::IncludedTooLate {
                    arrived_in,
                    included_at: slot,
                    max_delay_slots: self.params.max_delay_slots,
                };
                self.actions.push_back(CanonicalAction::EntryIgnored { slot, id, reason });
                continue;
            }
            self.progress.included.insert(id, slot);
            self.progress.queue.insert((t, id), Queued { slot, includer });
        }
        self.progress.resolved_through = Some(slot);
    }

    /// Whether the engine waits for a verdict (then nothing more is fed).
    fn waiting(&self) -> bool {
        !self.progress.pending.is_empty()
    }

    /// Feeds the blocks and the entries that are final, in time order, until the engine waits
    /// for a verdict.
    fn feed(&mut self) {
        let Some(resolved) = self.progress.resolved_through else { return };
        // Times in slots up to `resolved - max_delay_slots` are final.
        let Some(final_slot) = resolved.0.checked_sub(self.params.max_delay_slots) else { return };
        let horizon = self.slot_start(Slot(final_slot.saturating_add(1)));
        while let Some((&(t, id), _)) = self.progress.queue.first_key_value() {
            if t >= horizon || self.waiting() {
                break;
            }
            self.feed_blocks_until(t);
            self.advance_to(t);
            if self.waiting() {
                break;
            }
            let Some((_, queued)) = self.progress.queue.pop_first() else { break };
            let Some(message) = self.messages.get(&id).cloned() else { continue };
            if let Err(reason) =
                self.progress.engine.on_included_message(message, t, queued.includer)
            {
                self.actions.push_back(CanonicalAction::EntryIgnored {
                    slot: queued.slot,
                    id,
                    reason,
                });
            }
            self.drain();
        }
        if self.waiting()
            || self.progress.queue.first_key_value().is_some_and(|(k, _)| k.0 < horizon)
        {
            return;
        }
        let last = UnixMillis(horizon.0.saturating_sub(1));
        self.feed_blocks_until(last);
        self.advance_to(last);
    }

    /// Feeds the canonical blocks whose slot starts at or before `t`.
    fn feed_blocks_until(&mut self, t: UnixMillis) {
        let from =
            self.progress.fed_blocks_through.map_or(Slot(0), |s| Slot(s.0.saturating_add(1)));
        let due: Vec<BlockInfo> = self
            .chain
            .range(from..)
            .map(|(_, b)| b.info)
            .take_while(|info| info.slot_start <= t)
            .collect();
        for info in due {
            self.advance_to(info.slot_start);
            if self.waiting() {
                return;
            }
            let later = self.progress.joining.split_off(&Slot(info.slot.0.saturating_add(1)));
            let joining = std::mem::replace(&mut self.progress.joining, later);
            let min_stake = self.progress.engine.registry_params().min_stake;
            for j in joining.into_values().flatten() {
                let joined = if j.record.stake < min_stake {
                    Err(Error::InsufficientStake { stake: j.record.stake, minimum: min_stake })
                } else {
                    self.progress.engine.add_prover(j.record)
                };
                if let Err(reason) = joined {
                    let (slot, id) = (j.slot, j.id);
                    self.actions.push_back(CanonicalAction::EntryIgnored { slot, id, reason });
                }
            }
            if let Err(reason) = self.progress.engine.on_block(info, info.slot_start) {
                self.actions.push_back(CanonicalAction::RecordRejected { slot: info.slot, reason });
            }
            self.progress.fed_blocks_through = Some(info.slot);
            self.drain();
        }
    }

    /// Moves the engine's clock to `t`, through every deadline on the way.
    fn advance_to(&mut self, t: UnixMillis) {
        while let Some(next) = self.progress.engine.poll_timeout() {
            if next > t || self.waiting() {
                return;
            }
            let at = next.max(self.progress.clock);
            self.progress.clock = at;
            self.progress.engine.on_tick(at);
            self.drain();
            if next <= at && self.progress.engine.poll_timeout() == Some(next) {
                break; // nothing moved: the deadline is the engine's to keep
            }
        }
        if t > self.progress.clock && !self.waiting() {
            self.progress.clock = t;
            self.progress.engine.on_tick(t);
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(action) = self.progress.engine.poll_action() {
            match &action {
                Action::VerifySignature(c) => {
                    self.progress.pending.insert(c.request, action.clone());
                }
                Action::VerifyStark(c) => {
                    self.progress.pending.insert(c.request, action.clone());
                }
                _ => {}
            }
            self.actions.push_back(CanonicalAction::Engine(action));
        }
    }
}
