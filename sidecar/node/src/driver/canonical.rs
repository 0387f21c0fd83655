//! Canonical settlement in the node: the settling engine ([`CanonicalRounds`]) fed the
//! canonical blocks with the record commitments of their graffiti, the inclusion records, and
//! every message this node holds, valid by its own clock or not; its verification requests
//! answered (with the verdict of the live engine's identical check where there was one, else
//! verified like any other check); its outcomes settled; what it lacks remembered for sync. The
//! proposer side, building this node's record for a slot one of its validators proposes, is
//! here too: the candidates are the messages the live engine accepted, at the times this node
//! received them.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use phase_engine::{
    Action, CanonicalAction, CanonicalRounds, InclusionCandidate, InclusionRecord,
    RecordCommitment, RequestId, Root, SNAPSHOTS_KEPT, SealedMessage, SignedProverRegistration,
    Slot, UnixMillis, ValidatorIndex, Verdict, build_record, record_cutoff,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tracing::{debug, info, warn};

use super::{
    Driver, Input, Lane,
    checks::{Check, request_of, stark_block},
};
use crate::error::NodeResult;

/// Records kept per slot beyond the one a canonical block commits to.
const MAX_RECORDS_PER_SLOT: usize = 4;

/// Verdicts remembered for the settling engine, at most (the oldest slots go first).
const MAX_VERDICTS: usize = 65_536;

/// A message the live engine accepted, or a verified registration: what this node's records
/// may include.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(super) struct Candidate {
    /// When this node received it (its own clock, never a relay's `first_seen`).
    received: UnixMillis,
    /// A registration: it may be included at any delay, so it is kept until it is.
    registration: bool,
}

/// The settling side of the driver.
#[derive(Debug)]
pub(super) struct Settling {
    pub(super) rounds: CanonicalRounds,
    /// The settling engine's checks not answered yet.
    pub(super) outstanding: BTreeMap<RequestId, Check>,
    /// Verdicts of checks already made (by either engine), by the check's content.
    pub(super) verdicts: HashMap<[u8; 32], (Slot, bool)>,
    /// Messages the live engine accepted, by signing root.
    pub(super) candidates: BTreeMap<Root, Candidate>,
    /// Records known (this node's own and received ones), by slot: served to peers.
    pub(super) records: BTreeMap<Slot, Vec<InclusionRecord>>,
    /// Records committed to by canonical blocks and not known: asked of peers.
    pub(super) wanted_records: BTreeMap<Slot, RecordCommitment>,
    /// Messages named by canonical records and not held: asked of peers.
    pub(super) wanted_messages: BTreeMap<Root, Slot>,
    /// When (local time) something of each slot was first wanted: a node catching up is given
    /// the time to fetch it, however far behind the head the slot is.
    wanted_since: BTreeMap<Slot, UnixMillis>,
    /// Where each message held is in the input log (its sequence number), with its slot: peers
    /// are served messages the settling engine no longer keeps from there.
    pub(super) logged: HashMap<Root, (Slot, u64)>,
}

/// The settling side in a checkpoint ([`super::checkpoint`]): the settling engine's own
/// checkpoint without its messages (they are in the input log, at the positions of `logged`),
/// and the rest as it is.
#[derive(Serialize, Deserialize)]
pub(super) struct SavedSettling {
    rounds: Vec<u8>,
    outstanding: BTreeMap<RequestId, Check>,
    verdicts: HashMap<[u8; 32], (Slot, bool)>,
    candidates: BTreeMap<Root, Candidate>,
    records: BTreeMap<Slot, Vec<InclusionRecord>>,
    wanted_records: BTreeMap<Slot, RecordCommitment>,
    wanted_messages: BTreeMap<Root, Slot>,
    wanted_since: BTreeMap<Slot, UnixMillis>,
    logged: HashMap<Root, (Slot, u64)>,
}

impl Settling {
    /// What a checkpoint keeps of it.
    pub(super) fn save(&mut self) -> phase_engine::Result<SavedSettling> {
        Ok(SavedSettling {
            rounds: self.rounds.checkpoint_without_messages()?,
            outstanding: self.outstanding.clone(),
            verdicts: self.verdicts.clone(),
            candidates: self.candidates.clone(),
            records: self.records.clone(),
            wanted_records: self.wanted_records.clone(),
            wanted_messages: self.wanted_messages.clone(),
            wanted_since: self.wanted_since.clone(),
            logged: self.logged.clone(),
        })
    }

    /// The settling side a checkpoint kept, and the messages its settling engine held (by
    /// signing root), to give back with [`CanonicalRounds::restore_message`].
    pub(super) fn restore(saved: SavedSettling) -> phase_engine::Result<(Self, Vec<Root>)> {
        let (rounds, ids) = CanonicalRounds::restore_without_messages(&saved.rounds)?;
        let settling = Self {
            rounds,
            outstanding: saved.outstanding,
            verdicts: saved.verdicts,
            candidates: saved.candidates,
            records: saved.records,
            wanted_records: saved.wanted_records,
            wanted_messages: saved.wanted_messages,
            wanted_since: saved.wanted_since,
            logged: saved.logged,
        };
        Ok((settling, ids))
    }

    /// The settling side around `rounds`.
    pub(super) fn new(rounds: CanonicalRounds) -> Self {
        Self {
            rounds,
            outstanding: BTreeMap::new(),
            verdicts: HashMap::new(),
            candidates: BTreeMap::new(),
            records: BTreeMap::new(),
            wanted_records: BTreeMap::new(),
            wanted_messages: BTreeMap::new(),
            wanted_since: BTreeMap::new(),
            logged: HashMap::new(),
        }
    }

    /// Remembers the verdict of `check` (made for the block at `slot`).
    pub(super) fn remember(&mut self, check: &Check, slot: Slot, valid: bool) {
        if self.verdicts.len() >= MAX_VERDICTS {
            let oldest = self.verdicts.values().map(|(s, _)| *s).min().unwrap_or(slot);
            self.verdicts.retain(|_, (s, _)| *s > oldest);
        }
        self.verdicts.insert(check_key(check), (slot, valid));
    }

    /// The verdict of a check identical to `check`, if one was made.
    fn known_verdict(&self, check: &Check) -> Option<bool> {
        self.verdicts.get(&check_key(check)).map(|(_, valid)| *valid)
    }
}

/// A digest of what a check checks (everything but its request id): two checks with the same
/// key have the same verdict.
fn check_key(check: &Check) -> [u8; 32] {
    let mut hasher = DigestHasher(Sha256::new());
    match check {
        Check::Signature(c) => {
            0u8.hash(&mut hasher);
            (c.pubkey, c.signing_root, c.signature, c.proof_of_possession).hash(&mut hasher);
        }
        Check::Stark(c, _) => {
            1u8.hash(&mut hasher);
            c.target.hash(&mut hasher);
        }
    }
    hasher.0.finalize().into()
}

/// A [`Hasher`] that feeds SHA-256: a collision-resistant digest of anything that is [`Hash`].
struct DigestHasher(Sha256);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Unused: the digest is read with `finalize`.
        0
    }
}

/// The slot of the block a check is for.
fn check_slot(check: &Check) -> Slot {
    match check {
        Check::Signature(_) => Slot(0),
        Check::Stark(c, _) => match &c.target {
            phase_engine::StarkTarget::Partial { slot, .. }
            | phase_engine::StarkTarget::FullProof { slot, .. }
            | phase_engine::StarkTarget::AggProof { slot, .. } => *slot,
            _ => Slot(0),
        },
    }
}

impl Driver {
    /// A canonical block for the settling engine, with what its graffiti commits to.
    pub(super) fn settling_block(&mut self, info: phase_engine::BlockInfo, graffiti: Option<Root>) {
        let (genesis_ms, slot_ms) = (self.genesis_ms(), self.slot_ms());
        let retention = self.retention_slots;
        let Some(settling) = self.settling.as_mut() else { return };
        let commitment = graffiti.and_then(|g| RecordCommitment::from_graffiti(&g.0));
        if let Err(e) = settling.rounds.on_block(info, commitment) {
            warn!(slot = %info.slot, error = %e, "block refused by the settling engine");
        }
        // Nothing before the reach of a reorg can be resolved again; what peers may still ask
        // for is kept for the sync retention.
        let keep = u64::try_from(SNAPSHOTS_KEPT).unwrap_or(u64::MAX).saturating_add(8);
        if let Some(resolved) = settling.rounds.resolved_through() {
            // Counted from what the settling engine has been fed, not only from what is
            // resolved: a node catching up resolves slots (records and messages at hand) far
            // ahead of feeding them, and a message must not leave before it is fed.
            let fed = settling.rounds.engine().now().0.saturating_sub(genesis_ms) / slot_ms;
            let reach = resolved.0.min(fed);
            if reach > keep {
                settling.rounds.prune_before(Slot(reach - keep));
            }
            // Every checkpoint's worth of slots: each checkpoint then prunes the log entries of
            // that many slots rather than a burst of 64 slots' worth. (This was meant to end the
            // late commitments seen every 64 slots of a 1 s devnet; it did not, see
            // BENCHMARKS.md: their cause is still open.)
            let every = super::checkpoint::CHECKPOINT_EVERY_SLOTS;
            if resolved.0 > retention && info.slot.0.is_multiple_of(every) {
                let before = Slot(resolved.0 - retention);
                settling.records = settling.records.split_off(&before);
                settling.logged.retain(|_, (slot, _)| *slot >= before);
            }
        }
        let max_delay = self.inclusion.max_delay_slots;
        let slot_ms = self.slot_ms();
        let genesis = self.genesis_ms();
        let now = self.now();
        let Some(settling) = self.settling.as_mut() else { return };
        let waiting = settling.rounds.waiting_for();
        let wanted: std::collections::BTreeSet<Slot> = settling
            .wanted_records
            .keys()
            .chain(settling.wanted_messages.values())
            .copied()
            .chain(waiting)
            .collect();
        settling.wanted_since.retain(|slot, _| wanted.contains(slot));
        if let Some(slot) = waiting {
            settling.wanted_since.entry(slot).or_insert(now);
        }
        let included = |id: &Root| settling.rounds.is_included(id);
        settling.candidates.retain(|id, c| {
            let arrived_in = c.received.0.saturating_sub(genesis) / slot_ms.max(1);
            let recent = arrived_in.saturating_add(max_delay) >= info.slot.0;
            if c.registration { !included(id) } else { recent }
        });
    }

    /// A message this node holds, for the settling engine (whatever the live engine thinks of
    /// its timing).
    /// It was just logged (the last input).
    pub(super) fn settling_message(&mut self, sealed: &SealedMessage) {
        let seq = self.seq.saturating_sub(1);
        let Some(settling) = self.settling.as_mut() else { return };
        if let Some((slot, _)) = super::early::message_block(sealed.message()) {
            settling.logged.insert(sealed.signing_root(), (slot, seq));
        }
        settling.wanted_messages.remove(&sealed.signing_root());
        settling.rounds.on_message(sealed.clone());
    }

    /// A record for the settling engine (received, fetched, or this node's own).
    pub(super) fn settling_record(&mut self, record: InclusionRecord) {
        let Some(settling) = self.settling.as_mut() else { return };
        let list = settling.records.entry(record.slot).or_default();
        if !list.contains(&record) {
            list.push(record.clone());
        }
        let root = record.root();
        settling.wanted_records.retain(|_, c| !c.matches(&root));
        settling.rounds.on_record(record);
    }

    /// The canonical chain now ends at `fork_slot - 1`.
    pub(super) fn settling_reorg(&mut self, fork_slot: Slot) {
        let Some(settling) = self.settling.as_mut() else { return };
        if let Err(e) = settling.rounds.on_reorg(fork_slot) {
            warn!(%fork_slot, error = %e, "the settling engine cannot undo this reorg");
        }
    }

    /// The slots whose missing record or messages have been waited for long enough by the
    /// block at `head`: `inclusion.max_delay_slots` slots (the bound any message's inclusion
    /// has anyway), both on the chain and on this node's clock since it first wanted them (a
    /// node back-filling old blocks still gets that long to fetch them). The slot settlement
    /// waits for is one of them when it has waited that long, whatever it was asked under.
    pub(super) fn settling_overdue(&self, head: Slot) -> Vec<Slot> {
        let Some(settling) = self.settling.as_ref() else { return Vec::new() };
        let wait = self.inclusion.max_delay_slots;
        let wait_ms = wait.saturating_mul(self.slot_ms());
        let now = self.now();
        let waited = |slot: &Slot| {
            settling.wanted_since.get(slot).is_none_or(|t| now.0.saturating_sub(t.0) >= wait_ms)
        };
        let mut due: Vec<Slot> = settling
            .wanted_records
            .keys()
            .chain(settling.wanted_messages.values())
            .copied()
            .chain(settling.rounds.waiting_for())
            .filter(|s| s.0.saturating_add(wait) <= head.0 && waited(s))
            .collect();
        due.sort();
        due.dedup();
        due
    }

    /// Stops waiting for what `slot` lacks.
    pub(super) fn settling_give_up(&mut self, slot: Slot) {
        let Some(settling) = self.settling.as_mut() else { return };
        warn!(%slot, "settling: the record or messages of this slot did not come: resolved without them");
        settling.wanted_records.remove(&slot);
        settling.wanted_messages.retain(|_, s| *s != slot);
        settling.wanted_since.remove(&slot);
        settling.rounds.give_up(slot);
    }

    /// A message the live engine accepted, received here at `received`.
    pub(super) fn settling_candidate(&mut self, id: Root, received: UnixMillis) {
        let Some(settling) = self.settling.as_mut() else { return };
        settling.candidates.entry(id).or_insert(Candidate { received, registration: false });
    }

    /// A verified registration, first seen at `first_seen` (older logs: unknown, then the
    /// settling engine's clock): records may name it, this node's own included.
    pub(super) fn settling_registration(
        &mut self,
        registration: SignedProverRegistration,
        first_seen: Option<UnixMillis>,
    ) {
        let Some(settling) = self.settling.as_mut() else { return };
        let id = registration.signing_root(settling.rounds.engine().signing_context());
        let received = first_seen.unwrap_or_else(|| settling.rounds.engine().now());
        settling.wanted_messages.remove(&id);
        if !settling.rounds.is_included(&id) {
            settling.candidates.entry(id).or_insert(Candidate { received, registration: true });
        }
        settling.rounds.on_registration(registration);
    }

    /// Before the live engine's block of `slot`: the provers canonical records have included
    /// by then join its registry, in the settling engine's order (so both engines select from
    /// the same registry, with the same indices).
    pub(super) fn activate_canonical_registrations(&mut self, slot: Slot) {
        let Some(settling) = self.settling.as_ref() else { return };
        let due = settling.rounds.provers_at(slot, self.engine.num_provers());
        for record in due {
            if self.engine.prover_by_pubkey(&record.pubkey).is_some() {
                continue;
            }
            let pubkey = record.pubkey;
            match self.engine.add_prover(record) {
                Ok(index) => {
                    info!(prover = %index, %pubkey, %slot, "prover registered (included by a canonical record)")
                }
                Err(e) => warn!(error = %e, "registration not activated"),
            }
        }
    }

    /// Whether a record for `slot` is worth keeping: not resolved yet, not after the next slot.
    pub(super) fn wants_record(&self, record: &InclusionRecord) -> Result<(), &'static str> {
        let Some(settling) = self.settling.as_ref() else {
            return Err("this node does not settle canonically");
        };
        if settling.rounds.resolved_through().is_some_and(|r| record.slot <= r)
            && !settling.wanted_records.contains_key(&record.slot)
        {
            return Err("the slot is resolved already");
        }
        let now = self.clock.now().unwrap_or(Slot(0));
        if record.slot.0 > now.0.saturating_add(1) {
            return Err("the slot is in the future");
        }
        let commitment = RecordCommitment::of(&record.root());
        if settling.rounds.has_record(&commitment) {
            return Err("known");
        }
        // A slot has one canonical record; anyone may gossip others. Beyond a few per slot only
        // the one a block commits to is kept.
        let committed = settling.wanted_records.get(&record.slot) == Some(&commitment);
        if !committed
            && settling.records.get(&record.slot).is_some_and(|l| l.len() >= MAX_RECORDS_PER_SLOT)
        {
            return Err("too many records for the slot");
        }
        Ok(())
    }

    /// This node's record for `slot`, proposed by `proposer`: every message the live engine
    /// accepted that no canonical record includes yet, at the time this node received it.
    pub(super) fn build_record(
        &self,
        slot: Slot,
        proposer: ValidatorIndex,
    ) -> Option<InclusionRecord> {
        let settling = self.settling.as_ref()?;
        let params = self.inclusion;
        let start = UnixMillis(self.genesis_ms().saturating_add(slot.0 * self.slot_ms()));
        let cutoff = record_cutoff(start, &params);
        let candidates =
            settling.candidates.iter().filter(|(id, _)| !settling.rounds.is_included(id)).map(
                |(id, c)| InclusionCandidate {
                    id: *id,
                    round_start: c.received,
                    arrived_at: c.received,
                },
            );
        Some(build_record(slot, proposer, cutoff, candidates))
    }

    fn slot_ms(&self) -> u64 {
        u64::try_from(self.clock.timing().slot_duration().as_millis()).unwrap_or(u64::MAX).max(1)
    }

    fn genesis_ms(&self) -> u64 {
        u64::try_from(self.clock.timing().genesis().as_millis()).unwrap_or(u64::MAX)
    }

    /// Executes the settling engine's queued actions.
    pub(super) fn process_settling(&mut self) -> NodeResult<()> {
        let mut signatures = Vec::new();
        let now = self.now();
        while let Some(action) = self.settling.as_mut().and_then(|s| s.rounds.poll_action()) {
            let Some(settling) = self.settling.as_mut() else { break };
            match action {
                CanonicalAction::FetchRecord { slot, commitment } => {
                    debug!(%slot, "settling: record wanted");
                    settling.wanted_records.insert(slot, commitment);
                    settling.wanted_since.entry(slot).or_insert(now);
                }
                CanonicalAction::FetchMessage { slot, id } => {
                    debug!(%slot, message = %id, "settling: message wanted");
                    settling.wanted_messages.insert(id, slot);
                    settling.wanted_since.entry(slot).or_insert(now);
                }
                CanonicalAction::RecordRejected { slot, reason } => {
                    warn!(%slot, %reason, "settling: the committed record counts as none");
                }
                CanonicalAction::EntryIgnored { slot, id, reason } => {
                    debug!(%slot, message = %id, %reason, "settling: included message does not count");
                }
                CanonicalAction::Reorged { fork_slot } => {
                    info!(%fork_slot, "settling: reorg undone, outcomes from there follow again");
                }
                CanonicalAction::Engine(action) => match action {
                    Action::VerifySignature(check) => {
                        let check = Check::Signature(check);
                        settling.outstanding.insert(request_of(&check), check.clone());
                        signatures.push(check);
                    }
                    Action::VerifyStark(check) => {
                        let block = stark_block(&check);
                        let check = Check::Stark(check, block);
                        settling.outstanding.insert(request_of(&check), check.clone());
                        if !self.replaying {
                            self.dispatch_settling(vec![check]);
                        }
                    }
                    Action::BlockOutcome(outcome) => self.settle(*outcome)?,
                    Action::RoundStarted(start) => {
                        debug!(round = ?start.key, selected = ?start.selected, "settling: round started");
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        if !self.replaying && !signatures.is_empty() {
            self.dispatch_settling(signatures);
        }
        Ok(())
    }

    /// Answers checks of the settling engine: from the verdicts of identical checks where there
    /// were some, else by verifying them (signatures as one batch).
    pub(super) fn dispatch_settling(&self, checks: Vec<Check>) {
        let mut known = Vec::new();
        let mut signatures = Vec::new();
        for check in checks {
            match self.settling.as_ref().and_then(|s| s.known_verdict(&check)) {
                Some(valid) => known.push(Verdict { request: request_of(&check), valid }),
                None => match check {
                    Check::Signature(c) => signatures.push(c),
                    stark @ Check::Stark(..) => self.dispatch(stark, Lane::Settling),
                },
            }
        }
        if !signatures.is_empty() {
            self.dispatch_signatures(signatures, Lane::Settling);
        }
        if !known.is_empty() {
            let Some(tx) = self.tx.upgrade() else { return };
            tokio::spawn(async move {
                let _ = tx.send(Input::Verdicts { lane: Lane::Settling, verdicts: known }).await;
            });
        }
    }

    /// Applies a verdict of the settling engine's check.
    pub(super) fn settling_verdict(&mut self, verdict: Verdict) -> NodeResult<()> {
        let Some(settling) = self.settling.as_mut() else { return Ok(()) };
        let Some(check) = settling.outstanding.remove(&verdict.request) else { return Ok(()) };
        settling.remember(&check, check_slot(&check), verdict.valid);
        if let Err(e) = settling.rounds.on_verification(verdict) {
            debug!(error = %e, "settling verdict refused");
        }
        self.process_settling()
    }

    /// Remembers the verdict of one of the live engine's checks for the settling engine.
    pub(super) fn remember_live_verdict(&mut self, check: &Check, valid: bool) {
        if let Some(settling) = self.settling.as_mut() {
            settling.remember(check, check_slot(check), valid);
        }
    }
}
