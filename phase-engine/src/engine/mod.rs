//! The round state machine, sans-IO (in the manner of `quinn-proto`): inputs are blocks,
//! messages, verification verdicts, registry changes and the time; outputs are [`Action`]s
//! polled with [`Engine::poll_action`], and typed rejections returned by each input.
//!
//! This file holds the [`Engine`] itself: its state, its constructor, the action queue, the
//! message inputs and their dispatch, and the lookups of blocks and rounds. The rest lives in
//! one file per concept:
//!
//! * `state`: what the engine keeps per block, per sub-block and per round.
//! * `deadlines`: a round's phase deadlines and the phase a message counts for.
//! * `registry`: the prover registry (registrations, exits, reputation, records).
//! * `blocks`: new blocks (planning, prover and aggregator selection, round starts) and reorgs.
//! * `shuffler_cache`: shufflers prepared ahead of time and the prediction of those needed.
//! * `t1`: T1 commitments and declines.
//! * `proofs`: partial and full proofs.
//! * `aggregation`: AggProofs of blocks split into several sub-blocks.
//! * `verify`: verification requests, their verdicts and the acceptance of verified messages.
//! * `advance`: the time: the next deadline, phase changes, round closes, retries and the end
//!   of a block.
//! * `outcomes`: the [`BlockOutcome`](crate::BlockOutcome) of a finished block.
//! * `queries`: read-only views (duties, open rounds, round status).

mod advance;
mod aggregation;
mod blocks;
mod deadlines;
mod outcomes;
mod proofs;
mod queries;
mod registry;
mod shuffler_cache;
mod state;
mod t1;
mod verify;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use self::{
    registry::RegistryParams,
    shuffler_cache::{PREPARED_SHUFFLERS_MAX, ShufflerCacheStats},
};
use self::{
    state::{BlockState, RoundState},
    verify::{Pending, Staged},
};
use crate::{
    actions::{Action, Progress, ProverRecord, RequestId},
    bls::BlsPublicKey,
    config::EngineConfig,
    error::{Error, Result},
    merkle::Domains,
    messages::{MessageKind, ProtocolMessage},
    outcome::RoundKey,
    sealed::{SealedMessage, Sealer},
    shuffle::Shuffler,
    signing::SigningContext,
    types::{ProverIndex, Root, Slot, UnixMillis, ValidatorIndex},
};

/// How many closed block roots are remembered to answer [`Error::RoundClosed`] rather than
/// [`Error::UnknownBlock`].
const CLOSED_BLOCKS_KEPT: usize = 1024;

/// The protocol engine: one per node, deterministic.
///
/// Its whole state serialises ([`Engine::checkpoint`], or serde directly) and deserialises to
/// an engine that answers every later input exactly as the original would.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Engine {
    config: EngineConfig,
    ctx: SigningContext,
    /// The message domains of `ctx`, computed once.
    domains: Domains,
    params: RegistryParams,
    provers: Vec<ProverRecord>,
    /// Active provers, ascending: the list the selection shuffles.
    active: Vec<ProverIndex>,
    by_pubkey: BTreeMap<BlsPublicKey, ProverIndex>,
    pending_registrations: BTreeSet<BlsPublicKey>,
    /// Who is busy until when, and for which block: a prover selected for a block's first
    /// attempt (or as one of its aggregators) is busy from the round's start until that
    /// attempt's T3 closes, whatever happens in the round. Busy-ness is thus a function of the
    /// chain alone, so every engine fed the same chain (the live one and the settling one of
    /// canonical rounds) selects the same provers, whatever their messages' fates. Retries do
    /// not make anyone busy: they run only where a round failed.
    busy: BTreeMap<ProverIndex, Vec<(Root, UnixMillis)>>,
    blocks: BTreeMap<Root, BlockState>,
    closed_blocks: VecDeque<Root>,
    /// Known blocks by slot start: who includes messages that arrived before.
    chain: BTreeMap<UnixMillis, (Slot, ValidatorIndex)>,
    last_slot: Option<Slot>,
    pending: BTreeMap<RequestId, Pending>,
    next_request: u64,
    actions: VecDeque<Action>,
    now: UnixMillis,
    /// Before this time, and unless `changed`, [`Engine::advance`] has nothing to do: the
    /// earliest phase boundary, window close or AggProof deadline after its last full pass.
    quiet_until: UnixMillis,
    /// An input changed what a full pass of [`Engine::advance`] would do at the current time
    /// (a new block, a reorg, a round finalised, the last verification of a round past its
    /// close).
    changed: bool,
    /// Shufflers built ahead of time ([`Engine::prepare_shuffler`]), oldest first, at most one
    /// per spec and [`PREPARED_SHUFFLERS_MAX`] in all; emptied when [`Engine::on_block`]
    /// returns.
    ///
    /// Serialised as their specs (and whether each carries its whole list) and rebuilt on
    /// load: a shuffler is a pure function of its spec, so the rebuilt ones are equal, and
    /// keeping them keeps [`Engine::prepared_shufflers`] and the hit counts of
    /// [`Engine::shuffler_cache_stats`] exact.
    #[serde(with = "shuffler_cache::prepared_serde")]
    prepared: VecDeque<Shuffler>,
    shuffler_stats: ShufflerCacheStats,
}

impl Engine {
    /// A new engine with an empty registry.
    pub fn new(config: EngineConfig, ctx: SigningContext) -> Self {
        Self::with_registry_params(config, ctx, RegistryParams::default())
    }

    /// A new engine with registry rules.
    pub fn with_registry_params(
        config: EngineConfig,
        ctx: SigningContext,
        params: RegistryParams,
    ) -> Self {
        Self {
            config,
            ctx,
            domains: Domains::new(&ctx),
            params,
            provers: Vec::new(),
            active: Vec::new(),
            by_pubkey: BTreeMap::new(),
            pending_registrations: BTreeSet::new(),
            busy: BTreeMap::new(),
            blocks: BTreeMap::new(),
            closed_blocks: VecDeque::new(),
            chain: BTreeMap::new(),
            last_slot: None,
            pending: BTreeMap::new(),
            next_request: 0,
            actions: VecDeque::new(),
            now: UnixMillis(0),
            quiet_until: UnixMillis(0),
            changed: true,
            prepared: VecDeque::new(),
            shuffler_stats: ShufflerCacheStats::default(),
        }
    }

    /// The engine's whole state as a checkpoint: a version byte
    /// ([`CHECKPOINT_VERSION`](crate::CHECKPOINT_VERSION)) and the compact encoding of every
    /// field, the undrained actions and the prepared shufflers included. A restart restores it
    /// with [`Engine::restore`] and replays only the inputs given after it. Equal states give
    /// equal bytes.
    ///
    /// # Errors
    /// [`Error::InvalidCheckpoint`] if the encoder fails, which no state of this crate makes it
    /// do.
    pub fn checkpoint(&self) -> Result<Vec<u8>> {
        crate::checkpoint::encode(self)
    }

    /// The engine saved by [`Engine::checkpoint`]: every later input gives the outputs (actions,
    /// results, timeouts, queries) the saved engine would have given.
    ///
    /// # Errors
    /// [`Error::CheckpointVersion`] for a checkpoint of another format version,
    /// [`Error::InvalidCheckpoint`] for bytes that are not a whole checkpoint of an engine.
    pub fn restore(bytes: &[u8]) -> Result<Self> {
        crate::checkpoint::decode(bytes)
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The signing context.
    pub fn signing_context(&self) -> &SigningContext {
        &self.ctx
    }

    /// The latest time the engine was given.
    pub fn now(&self) -> UnixMillis {
        self.now
    }

    // ----- outputs ----------------------------------------------------------------------------

    /// The next action, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Number of queued actions.
    pub fn queued_actions(&self) -> usize {
        self.actions.len()
    }

    /// Number of queued [`Action::VerifySignature`] requests.
    pub fn queued_signature_checks(&self) -> usize {
        self.actions.iter().filter(|a| matches!(a, Action::VerifySignature(_))).count()
    }

    // ----- inputs -----------------------------------------------------------------------------

    /// The time moved on: announce phases, close windows, start retries, emit outcomes.
    pub fn on_tick(&mut self, now: UnixMillis) {
        self.advance(now);
    }

    /// A protocol message that arrived at `now`. Stateless and state checks run at once (an
    /// error is the typed reason for rejection); then the signature check is requested and the
    /// message waits for [`Engine::on_verification`].
    pub fn on_message(&mut self, message: ProtocolMessage, now: UnixMillis) -> Result<RequestId> {
        let (check, pending) = self.dispatch(message, None, now)?;
        Ok(self.request_signature(check, pending))
    }

    /// [`Engine::on_message`] for a message whose signing root a [`Sealer`] computed (ahead of
    /// time, or on another thread): the same checks and results, without hashing the message
    /// again. A message sealed under another signing context is hashed as by `on_message`.
    pub fn on_sealed_message(
        &mut self,
        sealed: SealedMessage,
        now: UnixMillis,
    ) -> Result<RequestId> {
        let (check, pending) = self.dispatch_sealed(sealed, now)?;
        Ok(self.request_signature(check, pending))
    }

    /// [`Engine::on_sealed_message`] for a message whose signature the caller has already
    /// checked against its sender's registered key ([`Engine::prover`]`(..).pubkey`): in gossip
    /// validation, in a batch on another thread, or (the simulator's modelled signatures) by
    /// construction. The same checks run; then the engine goes on at once as after a valid
    /// signature verdict, without queueing an [`Action::VerifySignature`], and returns how the
    /// message stands: waiting for its STARK check, or accepted.
    pub fn on_verified_message(
        &mut self,
        sealed: SealedMessage,
        now: UnixMillis,
    ) -> Result<Progress> {
        self.verified(sealed, now, None)
    }

    /// [`Engine::on_verified_message`] for a message a canonical inclusion record includes, at
    /// the time the record states, credited to the record's proposer (`includer`).
    pub fn on_included_verified_message(
        &mut self,
        sealed: SealedMessage,
        arrived_at: UnixMillis,
        includer: ValidatorIndex,
    ) -> Result<Progress> {
        self.verified(sealed, arrived_at, Some(includer))
    }

    fn verified(
        &mut self,
        sealed: SealedMessage,
        now: UnixMillis,
        includer: Option<ValidatorIndex>,
    ) -> Result<Progress> {
        let (_, mut pending) = self.dispatch_sealed(sealed, now)?;
        pending.includer = includer;
        // What a request and its valid verdict leave behind: the root is seen.
        if let Some(key) = pending.round
            && let Ok(r) = self.round_mut(&key)
        {
            r.seen.insert(pending.signing_root);
        }
        if let Some(root) = pending.block_root
            && pending.kind == MessageKind::AggProof
            && let Some(b) = self.blocks.get_mut(&root)
        {
            b.agg_seen.insert(pending.signing_root);
        }
        let result = self.accept(pending);
        let now = self.now;
        self.advance(now);
        result
    }

    /// A message that a canonical inclusion record includes, at the time the record states and
    /// credited to the record's proposer (`includer`): the settling engine of canonical rounds
    /// is fed only these. Otherwise as [`Engine::on_sealed_message`].
    pub fn on_included_message(
        &mut self,
        sealed: SealedMessage,
        arrived_at: UnixMillis,
        includer: ValidatorIndex,
    ) -> Result<RequestId> {
        let (check, mut pending) = self.dispatch_sealed(sealed, arrived_at)?;
        pending.includer = Some(includer);
        Ok(self.request_signature(check, pending))
    }

    fn dispatch_sealed(&mut self, sealed: SealedMessage, now: UnixMillis) -> Result<Staged> {
        let same_context = *sealed.signing_context() == self.ctx;
        let (message, root) = sealed.into_parts();
        self.dispatch(message, same_context.then_some(root), now)
    }

    /// A [`Sealer`] for this engine's signing context.
    pub fn sealer(&self) -> Sealer {
        Sealer::new(&self.ctx)
    }

    /// Checks a message and prepares its signature check. `signing_root`: the message's signing
    /// root if already known.
    fn dispatch(
        &mut self,
        message: ProtocolMessage,
        signing_root: Option<Root>,
        now: UnixMillis,
    ) -> Result<Staged> {
        self.advance(now);
        match message {
            ProtocolMessage::Commitment(m) => self.on_commitment(m, signing_root, now),
            ProtocolMessage::Decline(m) => self.on_decline(m, signing_root, now),
            ProtocolMessage::PartialProof(m) => self.on_partial(m, signing_root, now),
            ProtocolMessage::FullProof(m) => self.on_full_proof(m, signing_root, now),
            ProtocolMessage::AggProof(m) => self.on_agg_proof(m, signing_root, now),
        }
    }

    // ----- lookups ----------------------------------------------------------------------------

    fn block(&self, root: &Root) -> Result<&BlockState> {
        self.blocks.get(root).ok_or_else(|| {
            if self.closed_blocks.contains(root) {
                Error::RoundClosed {
                    key: RoundKey {
                        block_root: *root,
                        sub_block: Default::default(),
                        attempt: Default::default(),
                    },
                }
            } else {
                Error::UnknownBlock { block_root: *root }
            }
        })
    }

    /// The open round named by `key`, with the checks every round message shares.
    fn open_round(&self, key: &RoundKey, slot: Slot) -> Result<&RoundState> {
        let block = self.block(&key.block_root)?;
        if block.info.slot != slot {
            return Err(Error::SlotMismatch { expected: block.info.slot, got: slot });
        }
        let sub = usize::try_from(key.sub_block.0)
            .ok()
            .and_then(|i| block.sub_blocks.get(i))
            .ok_or(Error::UnknownRound { key: *key })?;
        let round = usize::try_from(key.attempt.0)
            .ok()
            .and_then(|i| sub.rounds.get(i))
            .ok_or(Error::UnknownRound { key: *key })?;
        let is_current =
            sub.rounds.len() == usize::try_from(key.attempt.0).unwrap_or(0).saturating_add(1);
        if round.closed || !is_current {
            return Err(Error::RoundClosed { key: *key });
        }
        Ok(round)
    }

    fn round_ref(&self, key: &RoundKey) -> Result<&RoundState> {
        self.blocks
            .get(&key.block_root)
            .and_then(|b| usize::try_from(key.sub_block.0).ok().and_then(|i| b.sub_blocks.get(i)))
            .and_then(|s| usize::try_from(key.attempt.0).ok().and_then(|i| s.rounds.get(i)))
            .ok_or(Error::UnknownRound { key: *key })
    }

    fn round_mut(&mut self, key: &RoundKey) -> Result<&mut RoundState> {
        self.blocks
            .get_mut(&key.block_root)
            .and_then(|b| {
                usize::try_from(key.sub_block.0).ok().and_then(|i| b.sub_blocks.get_mut(i))
            })
            .and_then(|s| usize::try_from(key.attempt.0).ok().and_then(|i| s.rounds.get_mut(i)))
            .ok_or(Error::UnknownRound { key: *key })
    }
}
