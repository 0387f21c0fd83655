//! The round state machine, sans-IO (in the manner of `quinn-proto`): inputs are blocks,
//! messages, verification verdicts, registry changes and the time; outputs are [`Action`]s
//! polled with [`Engine::poll_action`], and typed rejections returned by each input.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::{
    actions::{
        Accepted, Action, AggregationDuty, BlockInfo, Deadlines, Duty, PartCheck, Progress,
        ProverRecord, RequestId, RoundStart, RoundStatus, SignatureCheck, StarkCheck, StarkTarget,
        Verdict,
    },
    assign::{assign_airs_with, assignment_shuffle_specs},
    bloom::ReuseBloom,
    bls::BlsPublicKey,
    config::EngineConfig,
    error::{Error, Result},
    merkle::{Domains, round_ref_root},
    messages::{
        FullProofBody, MessageKind, ProtocolMessage, RoundRef, SignedAggProof, SignedCommitment,
        SignedDecline, SignedFullProof, SignedPartialProof, SignedProverRegistration,
    },
    outcome::{
        AggProofRecord, Assignment, BlockOutcome, CommitmentRecord, EquivocationRecord,
        FullProofRecord, Inclusion, PartRef, PartialRecord, RoundKey, RoundOutcome,
    },
    plan::{SubBlockPlan, plan_block},
    sealed::{SealedMessage, Sealer},
    selection::{
        Seed, aggregator_seed, assignment_seed, select_provers_with, selection_seed, selection_size,
    },
    shuffle::{ShuffleSpec, Shuffler},
    signing::SigningContext,
    types::{AirIndex, Attempt, Phase, ProverIndex, Root, Slot, UnixMillis, ValidatorIndex},
};

/// Registry rules that are not part of [`EngineConfig`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RegistryParams {
    /// Minimum stake (Gwei) of a registration.
    pub min_stake: u64,
}

/// How many closed block roots are remembered to answer [`Error::RoundClosed`] rather than
/// [`Error::UnknownBlock`].
const CLOSED_BLOCKS_KEPT: usize = 1024;

/// Most shufflers [`Engine::prepare_shuffler`] keeps; beyond it the oldest is dropped.
pub const PREPARED_SHUFFLERS_MAX: usize = 64;

/// How the shufflers the engine needed were obtained, since it was created: handed in by
/// [`Engine::prepare_shuffler`] with exactly the needed spec (`hits`), or built on the spot
/// (`misses`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ShufflerCacheStats {
    /// Shufflers taken from the prepared ones.
    pub hits: u64,
    /// Shufflers built because none with the needed spec was prepared.
    pub misses: u64,
}

#[derive(Clone, Debug)]
enum T1Kind {
    /// Trace roots, aligned with the prover's assigned AIRs.
    Commit(Vec<Root>),
    Decline,
}

#[derive(Clone, Debug)]
struct T1Entry {
    signing_root: Root,
    arrived: UnixMillis,
    kind: T1Kind,
}

#[derive(Clone, Debug)]
struct PartialEntry {
    arrived: UnixMillis,
    assigned: bool,
    valid: bool,
}

#[derive(Clone, Debug)]
struct FullEntry {
    arrived: UnixMillis,
    phase: Phase,
    parts: Vec<PartRef>,
    valid: bool,
}

#[derive(Clone, Debug)]
struct RoundState {
    key: RoundKey,
    slot: Slot,
    /// `hash_tree_root` of the round's `RoundRef`: every message that passes
    /// [`Engine::open_round`] names exactly this round.
    ref_root: Root,
    deadlines: Deadlines,
    num_airs: u32,
    selected: Vec<ProverIndex>,
    assignments: Vec<Vec<AirIndex>>,
    position: BTreeMap<ProverIndex, usize>,
    /// Phases announced so far (the last one).
    announced: Option<Phase>,
    /// Signing roots received (pending or accepted).
    seen: BTreeSet<Root>,
    t1: BTreeMap<ProverIndex, T1Entry>,
    partials: BTreeMap<(ProverIndex, AirIndex), PartialEntry>,
    full: BTreeMap<ProverIndex, FullEntry>,
    /// Per AIR: number of holders that declined (open slots).
    open: Vec<u32>,
    equivocations: Vec<EquivocationRecord>,
    pending: u32,
    finalized_in: Option<Phase>,
    closed: bool,
}

impl RoundState {
    fn assigned_airs(&self, prover: ProverIndex) -> Option<&[AirIndex]> {
        self.position.get(&prover).and_then(|&i| self.assignments.get(i)).map(Vec::as_slice)
    }

    fn committed_root(&self, prover: ProverIndex, air: AirIndex) -> Option<Root> {
        let entry = self.t1.get(&prover)?;
        let T1Kind::Commit(roots) = &entry.kind else { return None };
        let airs = self.assigned_airs(prover)?;
        let i = airs.iter().position(|&a| a == air)?;
        roots.get(i).copied()
    }

    fn open_slots(&self, air: AirIndex) -> u32 {
        usize::try_from(air.0).ok().and_then(|i| self.open.get(i)).copied().unwrap_or(0)
    }

    fn phase_now(&self, now: UnixMillis) -> Option<Phase> {
        self.deadlines.phase_at(now)
    }
}

#[derive(Clone, Debug)]
struct SubBlockState {
    plan: SubBlockPlan,
    /// Attempts so far; the last is the current one.
    rounds: Vec<RoundState>,
    /// No further attempt will run (finalised, or retries exhausted).
    done: bool,
}

impl SubBlockState {
    fn current(&self) -> Option<&RoundState> {
        self.rounds.last()
    }

    fn finalized(&self) -> Option<(Phase, UnixMillis)> {
        let r = self.rounds.last()?;
        r.finalized_in.map(|p| (p, r.deadlines.close(p)))
    }
}

#[derive(Clone, Debug)]
struct AggEntry {
    arrived: UnixMillis,
    valid: bool,
}

#[derive(Clone, Debug)]
struct BlockState {
    info: BlockInfo,
    sub_blocks: Vec<SubBlockState>,
    aggregators: Vec<ProverIndex>,
    aggregators_released: bool,
    agg: BTreeMap<ProverIndex, AggEntry>,
    agg_seen: BTreeSet<Root>,
    agg_pending: u32,
}

impl BlockState {
    /// Whether every sub-block has a valid full proof; else the first that has none.
    fn first_unproven(&self) -> Option<&SubBlockState> {
        self.sub_blocks.iter().find(|s| s.finalized().is_none())
    }

    /// Close of the AggProof window (nominal): one T1 length after the latest finalising
    /// phase close of the sub-blocks. `None` until every sub-block is proven.
    fn agg_close(&self, config: &EngineConfig) -> Option<UnixMillis> {
        let mut latest = UnixMillis(0);
        for s in &self.sub_blocks {
            let (_, close) = s.finalized()?;
            latest = latest.max(close);
        }
        Some(UnixMillis(latest.0.saturating_add(config.phases.t1_ms)))
    }

    fn is_aggregating(&self) -> bool {
        self.sub_blocks.len() > 1
    }
}

#[derive(Clone, Debug)]
enum PendingData {
    Registration(ProverRecord),
    Commitment { roots: Vec<Root>, full: Option<FullProofBody> },
    Decline,
    Partial { air: AirIndex, assigned: bool, target: Option<StarkTarget> },
    FullProof { phase: Phase, parts: Vec<PartRef>, target: Option<StarkTarget> },
    AggProof { target: Option<StarkTarget> },
}

#[derive(Clone, Debug)]
enum Stage {
    Signature,
    Proof,
}

#[derive(Clone, Debug)]
struct Pending {
    kind: MessageKind,
    stage: Stage,
    signing_root: Root,
    prover: ProverIndex,
    arrived: UnixMillis,
    round: Option<RoundKey>,
    block_root: Option<Root>,
    data: PendingData,
}

/// A checked message: its signature check and what waits on it.
type Staged = (SignatureCheck, Pending);

/// The protocol engine: one per node, deterministic.
#[derive(Clone, Debug)]
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
    busy: BTreeSet<ProverIndex>,
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
    prepared: VecDeque<Shuffler>,
    shuffler_stats: ShufflerCacheStats,
}

/// The phase a message allowed from phase `first` on counts for when it arrives at `t`: the
/// first phase from `first` whose window, grace included, has not closed. `None` after T5.
fn classify(deadlines: &Deadlines, first: Phase, t: UnixMillis) -> Option<Phase> {
    Phase::ALL.into_iter().filter(|p| *p >= first).find(|&p| t < deadlines.graced_close(p))
}

fn deadlines(config: &EngineConfig, start: UnixMillis) -> Deadlines {
    let w = &config.phases;
    let mut closes = [start; 5];
    let mut t = start.0;
    for (close, len) in closes.iter_mut().zip([w.t1_ms, w.t2_ms, w.t3_ms, w.t4_ms, w.t5_ms]) {
        t = t.saturating_add(len);
        *close = UnixMillis(t);
    }
    Deadlines { start, closes, grace_ms: w.max_clock_disparity_ms }
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
            busy: BTreeSet::new(),
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

    // ----- registry -------------------------------------------------------------------------

    /// Adds an already-verified prover (genesis registry, a registration verified elsewhere, or
    /// a restored state) as active. Returns its index (the next free one).
    pub fn add_prover(&mut self, record: ProverRecord) -> Result<ProverIndex> {
        if let Some(&prover) = self.by_pubkey.get(&record.pubkey) {
            return Err(Error::AlreadyRegistered { prover });
        }
        let index = ProverIndex(self.provers.len() as u64);
        self.by_pubkey.insert(record.pubkey, index);
        if record.active {
            // Indices only grow, so pushing keeps `active` sorted.
            self.active.push(index);
        }
        self.provers.push(record);
        Ok(index)
    }

    /// A signed registration: checks stake and uniqueness, then requests verification of its
    /// signature and proof of possession. On a valid verdict the prover joins as active.
    pub fn on_registration(
        &mut self,
        registration: SignedProverRegistration,
        now: UnixMillis,
    ) -> Result<RequestId> {
        self.advance(now);
        let msg = &registration.message;
        if msg.stake < self.params.min_stake {
            return Err(Error::InsufficientStake {
                stake: msg.stake,
                minimum: self.params.min_stake,
            });
        }
        if let Some(&prover) = self.by_pubkey.get(&msg.pubkey) {
            return Err(Error::AlreadyRegistered { prover });
        }
        let signing_root = registration.signing_root(&self.ctx);
        if !self.pending_registrations.insert(msg.pubkey) {
            return Err(Error::Duplicate { signing_root });
        }
        let record = ProverRecord {
            pubkey: msg.pubkey,
            stake: msg.stake,
            capabilities: msg.capabilities,
            active: true,
            reputation: 0,
        };
        let check = SignatureCheck {
            request: RequestId(0),
            pubkey: msg.pubkey,
            signing_root,
            signature: registration.signature,
            proof_of_possession: Some(msg.proof_of_possession),
        };
        let pending = Pending {
            kind: MessageKind::Registration,
            stage: Stage::Signature,
            signing_root,
            prover: ProverIndex(0),
            arrived: now,
            round: None,
            block_root: None,
            data: PendingData::Registration(record),
        };
        Ok(self.request_signature(check, pending))
    }

    /// Takes a prover out of the active set (exit or ejection). It finishes the rounds it is
    /// in, and is never selected again.
    pub fn exit_prover(&mut self, prover: ProverIndex) -> Result<()> {
        let record = self.record_mut(prover)?;
        record.active = false;
        if let Ok(i) = self.active.binary_search(&prover) {
            self.active.remove(i);
        }
        Ok(())
    }

    /// Sets a prover's reputation score (from settled history).
    pub fn set_reputation(&mut self, prover: ProverIndex, score: u64) -> Result<()> {
        self.record_mut(prover)?.reputation = score;
        Ok(())
    }

    /// A registered prover.
    pub fn prover(&self, prover: ProverIndex) -> Option<&ProverRecord> {
        usize::try_from(prover.0).ok().and_then(|i| self.provers.get(i))
    }

    /// The index of a registered key.
    pub fn prover_by_pubkey(&self, pubkey: &BlsPublicKey) -> Option<ProverIndex> {
        self.by_pubkey.get(pubkey).copied()
    }

    /// Number of registered provers.
    pub fn num_provers(&self) -> u64 {
        self.provers.len() as u64
    }

    /// Number of active provers.
    pub fn num_active(&self) -> u64 {
        self.active.len() as u64
    }

    /// Active provers that are not busy in a round or an aggregator group.
    pub fn num_available(&self) -> u64 {
        let busy_active =
            self.busy.iter().filter(|p| self.prover(**p).is_some_and(|r| r.active)).count();
        (self.active.len().saturating_sub(busy_active)) as u64
    }

    /// Whether a prover is busy (in an open round or aggregator group).
    pub fn is_busy(&self, prover: ProverIndex) -> bool {
        self.busy.contains(&prover)
    }

    fn record_mut(&mut self, prover: ProverIndex) -> Result<&mut ProverRecord> {
        usize::try_from(prover.0)
            .ok()
            .and_then(|i| self.provers.get_mut(i))
            .ok_or(Error::UnknownProver { prover })
    }

    fn active_record(&self, prover: ProverIndex) -> Result<&ProverRecord> {
        let record = self.prover(prover).ok_or(Error::UnknownProver { prover })?;
        if !record.active {
            return Err(Error::ProverNotActive { prover });
        }
        Ok(record)
    }

    fn pubkey(&self, prover: ProverIndex) -> Result<BlsPublicKey> {
        self.prover(prover).map(|r| r.pubkey).ok_or(Error::UnknownProver { prover })
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

    /// When the engine next needs [`Engine::on_tick`]: the earliest phase boundary, window
    /// close or AggProof deadline still ahead. `None` when nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        let mut next: Option<UnixMillis> = None;
        let mut consider = |t: UnixMillis| {
            if t > self.now && next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        for block in self.blocks.values() {
            for sub in &block.sub_blocks {
                let Some(r) = sub.current() else { continue };
                if r.closed {
                    continue;
                }
                for p in Phase::ALL {
                    consider(r.deadlines.open(p));
                    consider(r.deadlines.graced_close(p));
                }
            }
            if block.is_aggregating()
                && let Some(close) = block.agg_close(&self.config)
            {
                consider(UnixMillis(
                    close.0.saturating_add(self.config.phases.max_clock_disparity_ms),
                ));
            }
        }
        next
    }

    // ----- inputs -----------------------------------------------------------------------------

    /// The time moved on: announce phases, close windows, start retries, emit outcomes.
    pub fn on_tick(&mut self, now: UnixMillis) {
        self.advance(now);
    }

    /// A new beacon block (in slot order). Plans it, selects the prover sets of its
    /// sub-blocks (and the aggregator group), starts attempt 0 of every round at
    /// `slot_start`, and resolves the inclusions of earlier messages.
    ///
    /// Shuffles it needs are taken from those handed in by [`Engine::prepare_shuffler`] when
    /// one has exactly the needed [`ShuffleSpec`], else built here; whatever prepared shuffler
    /// is left is dropped when it returns (with or without an error).
    pub fn on_block(&mut self, info: BlockInfo, now: UnixMillis) -> Result<()> {
        let result = self.start_block(info, now);
        self.prepared.clear();
        result
    }

    /// Hands in a shuffler built ahead of time (for example on another thread, from a spec of
    /// [`Engine::upcoming_shuffles`]), kept under its [`Shuffler::spec`] until it is used, the
    /// next [`Engine::on_block`] returns, or [`PREPARED_SHUFFLERS_MAX`] newer ones push it out
    /// (a shuffler with the same spec replaces it). Whenever the engine needs a shuffle it takes
    /// the prepared shuffler with exactly that spec, if any, instead of building one: a
    /// shuffler is a pure function of its spec, so this never changes a result, and a shuffler
    /// nobody needs is only dropped unused.
    pub fn prepare_shuffler(&mut self, shuffler: Shuffler) {
        let spec = shuffler.spec();
        self.prepared.retain(|s| s.spec() != spec);
        self.prepared.push_back(shuffler);
        while self.prepared.len() > PREPARED_SHUFFLERS_MAX {
            self.prepared.pop_front();
        }
    }

    /// Number of prepared shufflers waiting (see [`Engine::prepare_shuffler`]).
    pub fn prepared_shufflers(&self) -> usize {
        self.prepared.len()
    }

    /// How many needed shufflers were prepared ones and how many were built on the spot.
    pub fn shuffler_cache_stats(&self) -> ShufflerCacheStats {
        self.shuffler_stats
    }

    /// The shuffles [`Engine::on_block`]`(info, ..)` would need if it were called now, with
    /// the engine as it is: for every sub-block of the plan
    /// ([`crate::plan_block`]`(info.gas_used, self.num_available(), ..)`), the selection of
    /// attempt 0 (the active list under [`selection_seed`]; the selection reads its whole
    /// list when the shuffler carries it) and the two shuffles of the AIR assignment (the
    /// expected selected provers under [`assignment_seed`], the AIRs under its complement),
    /// then the aggregator selection when the block has several sub-blocks. The selected
    /// counts assume, as `on_block` finds, that every eligible prover is picked until the
    /// count is reached.
    ///
    /// This is a prediction: the caller builds these ahead of time (e.g. on another thread,
    /// `Shuffler::from_spec(spec)?.with_whole_list()`; the whole list is cheap for lists with a
    /// digest table and skipped for larger ones) and hands them to
    /// [`Engine::prepare_shuffler`] before `on_block`. Anything that changes in between (a
    /// tick that closes rounds and frees provers, a registration, a reorg) only costs a miss:
    /// `on_block` then builds what it needs. Empty when the block cannot be planned.
    pub fn upcoming_shuffles(&self, info: &BlockInfo) -> Vec<ShuffleSpec> {
        let rounds = self.config.shuffle_round_count;
        let len = self.active.len() as u64;
        let mut eligible = self.num_available();
        let Ok(plan) = plan_block(info.gas_used, eligible, &self.config) else {
            return Vec::new();
        };
        let mut specs = Vec::new();
        for sub in &plan.sub_blocks {
            let seed = selection_seed(&info.randao_mix, &info.root, sub.index, Attempt(0));
            if len > 0 && plan.provers_per_sub_block > 0 {
                specs.push(ShuffleSpec { index_count: len, seed, rounds });
            }
            let selected = plan.provers_per_sub_block.min(eligible);
            eligible = eligible.saturating_sub(selected);
            let selected = usize::try_from(selected).unwrap_or(usize::MAX);
            if let Some((provers, airs)) =
                assignment_shuffle_specs(sub.num_airs, selected, &assignment_seed(&seed), rounds)
            {
                specs.push(provers);
                specs.push(airs);
            }
        }
        if plan.sub_blocks.len() > 1 {
            let count = u64::from(self.config.provers_per_aggproof).min(eligible);
            if len > 0 && count > 0 {
                let seed = aggregator_seed(&info.randao_mix, &info.root);
                specs.push(ShuffleSpec { index_count: len, seed, rounds });
            }
        }
        specs
    }

    /// The shuffler of `spec`: the prepared one if any, else built now.
    fn shuffler(&mut self, spec: ShuffleSpec) -> Result<Shuffler> {
        if let Some(i) = self.prepared.iter().position(|s| s.spec() == spec)
            && let Some(shuffler) = self.prepared.remove(i)
        {
            self.shuffler_stats.hits = self.shuffler_stats.hits.saturating_add(1);
            return Ok(shuffler);
        }
        self.shuffler_stats.misses = self.shuffler_stats.misses.saturating_add(1);
        Shuffler::from_spec(spec)
    }

    /// [`Engine::on_block`] without dropping the prepared shufflers.
    fn start_block(&mut self, info: BlockInfo, now: UnixMillis) -> Result<()> {
        if self.blocks.contains_key(&info.root) || self.closed_blocks.contains(&info.root) {
            return Err(Error::DuplicateBlock { block_root: info.root });
        }
        if let Some(last) = self.last_slot
            && info.slot <= last
        {
            return Err(Error::StaleBlock { slot: info.slot, last });
        }
        self.last_slot = Some(info.slot);
        self.chain.insert(info.slot_start, (info.slot, info.proposer));
        // A new includer may let waiting outcomes out.
        self.changed = true;
        // Close what the time says is over before selecting: it frees provers.
        self.advance(now);
        let available = self.num_available();
        let plan = plan_block(info.gas_used, available, &self.config)?;
        let mut block = BlockState {
            info,
            sub_blocks: Vec::with_capacity(plan.sub_blocks.len()),
            aggregators: Vec::new(),
            aggregators_released: false,
            agg: BTreeMap::new(),
            agg_seen: BTreeSet::new(),
            agg_pending: 0,
        };
        for sub in &plan.sub_blocks {
            let round = self.start_round(
                &info,
                *sub,
                Attempt(0),
                plan.provers_per_sub_block,
                info.slot_start,
            )?;
            block.sub_blocks.push(SubBlockState { plan: *sub, rounds: vec![round], done: false });
        }
        if block.is_aggregating() {
            let count = u64::from(self.config.provers_per_aggproof).min(self.num_available());
            let seed = aggregator_seed(&info.randao_mix, &info.root);
            let aggregators = self.select(count, &seed)?;
            for p in &aggregators {
                self.busy.insert(*p);
            }
            self.actions.push_back(Action::AggregatorsSelected {
                block_root: info.root,
                aggregators: aggregators.clone(),
            });
            block.aggregators = aggregators;
        } else {
            block.aggregators_released = true;
        }
        self.blocks.insert(info.root, block);
        self.changed = true;
        self.advance(now);
        Ok(())
    }

    /// A reorg: the blocks `orphaned` left the canonical chain. Their rounds are dropped without
    /// an outcome (nothing of them is settled), their provers and aggregators are free again,
    /// their pending verification requests are forgotten (a late verdict is
    /// [`Error::UnknownRequest`]), and later messages for them are [`Error::RoundClosed`]. The
    /// next block may then have any slot after `fork_slot` (the slot of the common ancestor).
    /// Returns the rounds dropped, in order; unknown roots are ignored.
    pub fn on_reorg(&mut self, orphaned: &[Root], fork_slot: Slot) -> Vec<RoundKey> {
        let mut dropped = Vec::new();
        for root in orphaned {
            let Some(block) = self.blocks.remove(root) else { continue };
            for sub in &block.sub_blocks {
                for round in sub.rounds.iter().filter(|r| !r.closed) {
                    for p in &round.selected {
                        self.busy.remove(p);
                    }
                    dropped.push(round.key);
                }
            }
            if !block.aggregators_released {
                for p in &block.aggregators {
                    self.busy.remove(p);
                }
            }
            self.pending.retain(|_, p| {
                p.block_root != Some(*root) && p.round.is_none_or(|k| k.block_root != *root)
            });
            self.chain.remove(&block.info.slot_start);
            self.closed_blocks.push_back(*root);
            if self.closed_blocks.len() > CLOSED_BLOCKS_KEPT {
                self.closed_blocks.pop_front();
            }
        }
        if self.last_slot.is_some_and(|last| last > fork_slot) {
            self.last_slot = Some(fork_slot);
        }
        self.changed = true;
        dropped
    }

    fn select(&mut self, count: u64, seed: &Seed) -> Result<Vec<ProverIndex>> {
        let len = self.active.len() as u64;
        if len == 0 || count == 0 {
            return Ok(Vec::new());
        }
        let spec =
            ShuffleSpec { index_count: len, seed: *seed, rounds: self.config.shuffle_round_count };
        let shuffler = self.shuffler(spec)?;
        select_provers_with(&self.active, count, &shuffler, &self.config.reputation, |p| {
            if self.busy.contains(&p) {
                return None;
            }
            self.prover(p).filter(|r| r.active).map(|r| r.reputation)
        })
    }

    fn start_round(
        &mut self,
        info: &BlockInfo,
        sub: SubBlockPlan,
        attempt: Attempt,
        count: u64,
        start: UnixMillis,
    ) -> Result<RoundState> {
        let key = RoundKey { block_root: info.root, sub_block: sub.index, attempt };
        let seed = selection_seed(&info.randao_mix, &info.root, sub.index, attempt);
        let selected = self.select(count, &seed)?;
        let assignments = match assignment_shuffle_specs(
            sub.num_airs,
            selected.len(),
            &assignment_seed(&seed),
            self.config.shuffle_round_count,
        ) {
            Some((provers, airs)) => {
                let prover_perm = self.shuffler(provers)?;
                let air_perm = self.shuffler(airs)?;
                assign_airs_with(
                    sub.num_airs,
                    selected.len(),
                    self.config.redundancy_factor,
                    &prover_perm,
                    &air_perm,
                )?
            }
            None => vec![Vec::new(); selected.len()],
        };
        for p in &selected {
            self.busy.insert(*p);
        }
        let position = selected.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let open_len = usize::try_from(sub.num_airs).unwrap_or(0);
        let round = RoundState {
            key,
            slot: info.slot,
            ref_root: round_ref_root(&RoundRef {
                slot: info.slot,
                block_root: key.block_root,
                sub_block: key.sub_block,
                attempt: key.attempt,
            }),
            deadlines: deadlines(&self.config, start),
            num_airs: sub.num_airs,
            selected: selected.clone(),
            assignments: assignments.clone(),
            position,
            announced: None,
            seen: BTreeSet::new(),
            t1: BTreeMap::new(),
            partials: BTreeMap::new(),
            full: BTreeMap::new(),
            open: vec![0; open_len],
            equivocations: Vec::new(),
            pending: 0,
            finalized_in: None,
            closed: false,
        };
        self.actions.push_back(Action::RoundStarted(RoundStart {
            key,
            slot: info.slot,
            start,
            num_airs: sub.num_airs,
            selected,
            assignments,
        }));
        Ok(round)
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
        let (_, pending) = self.dispatch_sealed(sealed, now)?;
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

    fn next_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request = self.next_request.saturating_add(1);
        id
    }

    fn request_signature(&mut self, mut check: SignatureCheck, pending: Pending) -> RequestId {
        let id = self.next_id();
        check.request = id;
        if let Some(key) = pending.round
            && let Ok(r) = self.round_mut(&key)
        {
            r.pending = r.pending.saturating_add(1);
            r.seen.insert(pending.signing_root);
        }
        if let Some(root) = pending.block_root
            && pending.kind == MessageKind::AggProof
            && let Some(b) = self.blocks.get_mut(&root)
        {
            b.agg_pending = b.agg_pending.saturating_add(1);
            b.agg_seen.insert(pending.signing_root);
        }
        self.pending.insert(id, pending);
        self.actions.push_back(Action::VerifySignature(check));
        id
    }

    fn request_stark(&mut self, target: StarkTarget, mut pending: Pending) -> RequestId {
        let id = self.next_id();
        pending.stage = Stage::Proof;
        if let Some(key) = pending.round
            && let Ok(r) = self.round_mut(&key)
        {
            r.pending = r.pending.saturating_add(1);
        }
        if let Some(root) = pending.block_root
            && pending.kind == MessageKind::AggProof
            && let Some(b) = self.blocks.get_mut(&root)
        {
            b.agg_pending = b.agg_pending.saturating_add(1);
        }
        self.pending.insert(id, pending);
        self.actions.push_back(Action::VerifyStark(StarkCheck { request: id, target }));
        id
    }

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

    fn check_t1_window(round: &RoundState, kind: MessageKind, now: UnixMillis) -> Result<()> {
        let deadline = round.deadlines.graced_close(Phase::T1);
        if now >= deadline {
            return Err(Error::Late { kind, arrived_at: now, deadline });
        }
        Ok(())
    }

    fn check_full_body(
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

    fn full_target(
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

    fn on_commitment(
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
            round: Some(key),
            block_root: Some(key.block_root),
            data: PendingData::Commitment { roots, full },
        };
        Ok((check, pending))
    }

    fn on_decline(
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
            round: Some(key),
            block_root: Some(key.block_root),
            data: PendingData::Decline,
        };
        Ok((check, pending))
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

    fn on_partial(
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
            round: Some(key),
            block_root: Some(key.block_root),
            data: PendingData::Partial { air: m.message.air, assigned, target: Some(target) },
        };
        Ok((check, pending))
    }

    fn on_full_proof(
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
            round: Some(key),
            block_root: Some(key.block_root),
            data: PendingData::FullProof { phase, parts, target: Some(target) },
        };
        Ok((check, pending))
    }

    fn agg_standing(&self, block: &BlockState, submitter: ProverIndex) -> bool {
        block.aggregators.contains(&submitter)
            || block
                .sub_blocks
                .iter()
                .any(|s| s.rounds.iter().any(|r| r.position.contains_key(&submitter)))
    }

    fn on_agg_proof(
        &mut self,
        m: SignedAggProof,
        sealed: Option<Root>,
        now: UnixMillis,
    ) -> Result<Staged> {
        let a = &m.message;
        let block = self.block(&a.block_root)?;
        if block.info.slot != a.slot {
            return Err(Error::SlotMismatch { expected: block.info.slot, got: a.slot });
        }
        if !block.is_aggregating() {
            return Err(Error::NoAggregation { block_root: a.block_root });
        }
        self.active_record(a.submitter)?;
        if !self.agg_standing(block, a.submitter) {
            return Err(Error::NotAggregator { prover: a.submitter, block_root: a.block_root });
        }
        if let Some(s) = block.first_unproven() {
            return Err(Error::NotReady { block_root: a.block_root, sub_block: s.plan.index });
        }
        let close = block.agg_close(&self.config).unwrap_or(UnixMillis(0));
        let deadline =
            UnixMillis(close.0.saturating_add(self.config.phases.max_clock_disparity_ms));
        if now >= deadline || block.aggregators_released {
            return Err(Error::Late { kind: MessageKind::AggProof, arrived_at: now, deadline });
        }
        let signing_root = sealed.unwrap_or_else(|| self.domains.agg(a));
        if block.agg_seen.contains(&signing_root) {
            return Err(Error::Duplicate { signing_root });
        }
        if block.agg.contains_key(&a.submitter) {
            return Err(Error::AlreadySubmitted {
                prover: a.submitter,
                kind: MessageKind::AggProof,
            });
        }
        let target = StarkTarget::AggProof {
            block_root: a.block_root,
            slot: a.slot,
            num_sub_blocks: u32::try_from(block.sub_blocks.len()).unwrap_or(u32::MAX),
            submitter: a.submitter,
            bundle: a.bundle.to_vec(),
        };
        let check = SignatureCheck {
            request: RequestId(0),
            pubkey: self.pubkey(a.submitter)?,
            signing_root,
            signature: m.signature,
            proof_of_possession: None,
        };
        let pending = Pending {
            kind: MessageKind::AggProof,
            stage: Stage::Signature,
            signing_root,
            prover: a.submitter,
            arrived: now,
            round: None,
            block_root: Some(a.block_root),
            data: PendingData::AggProof { target: Some(target) },
        };
        Ok((check, pending))
    }

    /// The verdict of a requested check. Returns how the message stands now: waiting for its
    /// STARK check, accepted, or rejected with a typed reason ([`Error::BadSignature`],
    /// [`Error::InvalidProof`], [`Error::Equivocation`], ...).
    pub fn on_verification(&mut self, verdict: Verdict) -> Result<Progress> {
        let pending = self
            .pending
            .remove(&verdict.request)
            .ok_or(Error::UnknownRequest { request: verdict.request })?;
        // The request no longer holds its round or block open.
        let now = self.now;
        if let Some(key) = pending.round
            && let Ok(r) = self.round_mut(&key)
        {
            r.pending = r.pending.saturating_sub(1);
            if !verdict.valid && matches!(pending.stage, Stage::Signature) {
                // Forget the root: a correctly signed copy may still come.
                r.seen.remove(&pending.signing_root);
            }
            // The last check of a round past its close lets it close.
            let closing = r.finalized_in.unwrap_or(Phase::T5);
            if r.pending == 0 && now >= r.deadlines.graced_close(closing) {
                self.changed = true;
            }
        }
        if pending.kind == MessageKind::AggProof
            && let Some(root) = pending.block_root
            && let Some(b) = self.blocks.get_mut(&root)
        {
            b.agg_pending = b.agg_pending.saturating_sub(1);
            if b.agg_pending == 0 {
                self.changed = true;
            }
            if !verdict.valid && matches!(pending.stage, Stage::Signature) {
                b.agg_seen.remove(&pending.signing_root);
            }
            if !verdict.valid && matches!(pending.stage, Stage::Proof) {
                b.agg.remove(&pending.prover);
            }
        }
        // An invalid proof frees its slot: the author may send a valid one.
        if !verdict.valid
            && matches!(pending.stage, Stage::Proof)
            && let Some(key) = pending.round
            && let Ok(r) = self.round_mut(&key)
        {
            match &pending.data {
                PendingData::Partial { air, .. } => {
                    r.partials.remove(&(pending.prover, *air));
                }
                PendingData::FullProof { .. } => {
                    r.full.remove(&pending.prover);
                }
                _ => {}
            }
        }
        if let PendingData::Registration(record) = &pending.data {
            self.pending_registrations.remove(&record.pubkey);
        }
        let result = if verdict.valid {
            self.accept(pending)
        } else {
            match pending.stage {
                Stage::Signature => Err(Error::BadSignature { signing_root: pending.signing_root }),
                Stage::Proof => Err(Error::InvalidProof { signing_root: pending.signing_root }),
            }
        };
        self.advance(now);
        result
    }

    fn accepted(&mut self, pending: &Pending) -> Progress {
        let accepted = Accepted {
            kind: pending.kind,
            signing_root: pending.signing_root,
            prover: pending.prover,
            round: pending.round,
        };
        self.actions.push_back(Action::Accepted(accepted.clone()));
        Progress::Accepted(accepted)
    }

    fn accept(&mut self, mut pending: Pending) -> Result<Progress> {
        let stage = pending.stage.clone();
        match (&mut pending.data, stage) {
            (PendingData::Registration(record), _) => {
                let record = record.clone();
                let pubkey = record.pubkey;
                let prover = self.add_prover(record)?;
                pending.prover = prover;
                self.actions.push_back(Action::ProverRegistered { prover, pubkey });
                Ok(self.accepted(&pending))
            }
            (PendingData::Commitment { roots, full }, _) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let roots = std::mem::take(roots);
                let full = full.take();
                self.accept_t1(&pending, key, T1Kind::Commit(roots))?;
                let progress = self.accepted(&pending);
                if let Some(body) = full {
                    let round = self.round_ref(&key)?;
                    if round.full.contains_key(&pending.prover) {
                        return Ok(progress);
                    }
                    let parts: Vec<PartRef> = body.parts.iter().copied().collect();
                    let target =
                        self.full_target(round, pending.prover, &parts, body.bundle.to_vec())?;
                    let full_pending = Pending {
                        kind: MessageKind::FullProof,
                        stage: Stage::Proof,
                        signing_root: pending.signing_root,
                        prover: pending.prover,
                        arrived: pending.arrived,
                        round: Some(key),
                        block_root: Some(key.block_root),
                        data: PendingData::FullProof {
                            phase: Phase::T1,
                            parts: parts.clone(),
                            target: None,
                        },
                    };
                    let r = self.round_mut(&key)?;
                    r.full.insert(
                        pending.prover,
                        FullEntry {
                            arrived: pending.arrived,
                            phase: Phase::T1,
                            parts,
                            valid: false,
                        },
                    );
                    self.request_stark(target, full_pending);
                }
                Ok(progress)
            }
            (PendingData::Decline, _) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                self.accept_t1(&pending, key, T1Kind::Decline)?;
                let r = self.round_mut(&key)?;
                let airs =
                    r.assigned_airs(pending.prover).map(<[AirIndex]>::to_vec).unwrap_or_default();
                for air in airs {
                    if let Some(n) = usize::try_from(air.0).ok().and_then(|i| r.open.get_mut(i)) {
                        *n = n.saturating_add(1);
                    }
                }
                Ok(self.accepted(&pending))
            }
            (PendingData::Partial { air, assigned, target }, Stage::Signature) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let (air, assigned) = (*air, *assigned);
                let target = target.take();
                let r = self.round_mut(&key)?;
                if r.partials.contains_key(&(pending.prover, air)) {
                    return Err(Error::AlreadySubmitted {
                        prover: pending.prover,
                        kind: MessageKind::PartialProof,
                    });
                }
                r.partials.insert(
                    (pending.prover, air),
                    PartialEntry { arrived: pending.arrived, assigned, valid: false },
                );
                let target = target.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                Ok(Progress::Pending(self.request_stark(target, pending)))
            }
            (PendingData::Partial { air, .. }, Stage::Proof) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let air = *air;
                let r = self.round_mut(&key)?;
                if let Some(e) = r.partials.get_mut(&(pending.prover, air)) {
                    e.valid = true;
                }
                Ok(self.accepted(&pending))
            }
            (PendingData::FullProof { phase, parts, target }, Stage::Signature) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let phase = *phase;
                let parts = parts.clone();
                let target =
                    target.take().ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let r = self.round_mut(&key)?;
                if r.full.contains_key(&pending.prover) {
                    return Err(Error::AlreadySubmitted {
                        prover: pending.prover,
                        kind: MessageKind::FullProof,
                    });
                }
                r.full.insert(
                    pending.prover,
                    FullEntry { arrived: pending.arrived, phase, parts, valid: false },
                );
                Ok(Progress::Pending(self.request_stark(target, pending)))
            }
            (PendingData::FullProof { phase, .. }, Stage::Proof) => {
                let key = pending.round.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let phase = *phase;
                let r = self.round_mut(&key)?;
                if let Some(done) = r.finalized_in
                    && phase > done
                {
                    r.full.remove(&pending.prover);
                    return Err(Error::AlreadyFinalized { key, phase: done });
                }
                if let Some(e) = r.full.get_mut(&pending.prover) {
                    e.valid = true;
                }
                let first = r.finalized_in.is_none();
                if r.finalized_in.is_none_or(|done| phase < done) {
                    r.finalized_in = Some(phase);
                    // An earlier close, and (with sub-blocks) the AggProof window moves.
                    self.changed = true;
                }
                if first {
                    self.actions.push_back(Action::RoundFinalized {
                        key,
                        phase,
                        submitter: pending.prover,
                    });
                }
                Ok(self.accepted(&pending))
            }
            (PendingData::AggProof { target }, Stage::Signature) => {
                let root =
                    pending.block_root.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let target =
                    target.take().ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let b =
                    self.blocks.get_mut(&root).ok_or(Error::UnknownBlock { block_root: root })?;
                if b.agg.contains_key(&pending.prover) {
                    return Err(Error::AlreadySubmitted {
                        prover: pending.prover,
                        kind: MessageKind::AggProof,
                    });
                }
                b.agg.insert(pending.prover, AggEntry { arrived: pending.arrived, valid: false });
                Ok(Progress::Pending(self.request_stark(target, pending)))
            }
            (PendingData::AggProof { .. }, Stage::Proof) => {
                let root =
                    pending.block_root.ok_or(Error::UnknownRequest { request: RequestId(0) })?;
                let b =
                    self.blocks.get_mut(&root).ok_or(Error::UnknownBlock { block_root: root })?;
                if let Some(e) = b.agg.get_mut(&pending.prover) {
                    e.valid = true;
                }
                Ok(self.accepted(&pending))
            }
        }
    }

    /// Records a verified T1 message, or the equivocation it makes.
    fn accept_t1(&mut self, pending: &Pending, key: RoundKey, kind: T1Kind) -> Result<()> {
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
            T1Entry { signing_root: pending.signing_root, arrived: pending.arrived, kind },
        );
        Ok(())
    }

    // ----- time -------------------------------------------------------------------------------

    /// Announces phases, closes rounds, starts retries and emits outcomes that are due at `now`
    /// (or the engine's later time). Walks every open block only when something can be due:
    /// when time reached the earliest deadline after the last walk, or an input marked the state
    /// `changed`. Debug builds walk every time and check that a skipped walk would have done
    /// nothing.
    fn advance(&mut self, now: UnixMillis) {
        if now > self.now {
            self.now = now;
        }
        let now = self.now;
        let quiet = !self.changed && now < self.quiet_until;
        if quiet && !cfg!(debug_assertions) {
            return;
        }
        let before = (self.actions.len(), self.blocks.len(), self.busy.len());
        self.advance_all(now);
        debug_assert!(
            !quiet || before == (self.actions.len(), self.blocks.len(), self.busy.len()),
            "advance skipped a walk that had work at {now:?}"
        );
        self.changed = false;
        self.quiet_until = self.poll_timeout().unwrap_or(UnixMillis(u64::MAX));
    }

    fn advance_all(&mut self, now: UnixMillis) {
        let roots: Vec<Root> = self.blocks.keys().copied().collect();
        for root in roots {
            // Rounds: announce phases, close, retry.
            let Some(num_subs) = self.blocks.get(&root).map(|b| b.sub_blocks.len()) else {
                continue;
            };
            for s in 0..num_subs {
                self.advance_sub_block(root, s, now);
            }
            self.advance_block(root, now);
        }
    }

    fn advance_sub_block(&mut self, root: Root, s: usize, now: UnixMillis) {
        let max_retries = self.config.max_retries;
        let Some(block) = self.blocks.get_mut(&root) else { return };
        let info = block.info;
        let Some(sub) = block.sub_blocks.get_mut(s) else { return };
        if sub.done {
            return;
        }
        let plan = sub.plan;
        let Some(round) = sub.rounds.last_mut() else { return };
        // Announce phases that opened.
        for phase in Phase::ALL {
            if round.announced.is_some_and(|a| a >= phase) {
                continue;
            }
            if now < round.deadlines.open(phase) || round.finalized_in.is_some_and(|f| phase > f) {
                break;
            }
            round.announced = Some(phase);
            self.actions.push_back(Action::PhaseChanged {
                key: round.key,
                phase,
                at: round.deadlines.open(phase),
            });
        }
        let closing_phase = round.finalized_in.unwrap_or(Phase::T5);
        if round.pending > 0 || now < round.deadlines.graced_close(closing_phase) {
            return;
        }
        round.closed = true;
        let key = round.key;
        let finalized_in = round.finalized_in;
        let retry_start = round.deadlines.graced_close(Phase::T5);
        let released = round.selected.clone();
        for p in &released {
            self.busy.remove(p);
        }
        self.actions.push_back(Action::RoundClosed { key, finalized_in });
        let retry = finalized_in.is_none() && key.attempt.0 < max_retries;
        if !retry {
            if let Some(sub) = self.blocks.get_mut(&root).and_then(|b| b.sub_blocks.get_mut(s)) {
                sub.done = true;
            }
            return;
        }
        let attempt = Attempt(key.attempt.0.saturating_add(1));
        let count = selection_size(self.config.provers_per_proof, self.num_available());
        match self.start_round(&info, plan, attempt, count, retry_start) {
            Ok(round) => {
                if let Some(sub) = self.blocks.get_mut(&root).and_then(|b| b.sub_blocks.get_mut(s))
                {
                    sub.rounds.push(round);
                }
                // Announce the new attempt's phases right away if they are already open.
                self.advance_sub_block(root, s, now);
            }
            Err(_) => {
                // Selection cannot fail on a non-empty list; an empty one selects nobody.
                if let Some(sub) = self.blocks.get_mut(&root).and_then(|b| b.sub_blocks.get_mut(s))
                {
                    sub.done = true;
                }
            }
        }
    }

    fn advance_block(&mut self, root: Root, now: UnixMillis) {
        let grace = self.config.phases.max_clock_disparity_ms;
        let Some(block) = self.blocks.get_mut(&root) else { return };
        if !block.sub_blocks.iter().all(|s| s.done) {
            return;
        }
        if !block.aggregators_released {
            let agg_done = match block.agg_close(&self.config) {
                Some(close) => {
                    now >= UnixMillis(close.0.saturating_add(grace)) && block.agg_pending == 0
                }
                None => true,
            };
            if !agg_done {
                return;
            }
            block.aggregators_released = true;
            for p in &block.aggregators {
                self.busy.remove(p);
            }
        }
        if block.agg_pending > 0 {
            return;
        }
        let Some(outcome) = self.build_outcome(root) else { return };
        self.blocks.remove(&root);
        self.closed_blocks.push_back(root);
        if self.closed_blocks.len() > CLOSED_BLOCKS_KEPT {
            self.closed_blocks.pop_front();
        }
        self.prune_chain();
        self.actions.push_back(Action::BlockOutcome(Box::new(outcome)));
    }

    /// Drops known blocks that no open block can need for inclusion resolution.
    fn prune_chain(&mut self) {
        let oldest = self.blocks.values().map(|b| b.info.slot_start).min();
        let keep_from = match oldest {
            Some(t) => t,
            None => match self.chain.keys().next_back() {
                Some(&t) => t,
                None => return,
            },
        };
        self.chain = self.chain.split_off(&keep_from);
    }

    /// The proposer of the first known block whose slot starts after `t`.
    fn includer(&self, t: UnixMillis) -> Option<ValidatorIndex> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.chain.range((Excluded(t), Unbounded)).next().map(|(_, (_, v))| *v)
    }

    fn inclusion(&self, phase: Phase, arrived: UnixMillis) -> Option<Inclusion> {
        Some(Inclusion { arrived_at: arrived, phase, validator: self.includer(arrived)? })
    }

    fn round_outcome(&self, r: &RoundState) -> Option<RoundOutcome> {
        let mut declined: Vec<(UnixMillis, ProverIndex)> = Vec::new();
        let mut commitments: Vec<CommitmentRecord> = Vec::new();
        for (&prover, e) in &r.t1 {
            match e.kind {
                T1Kind::Decline => declined.push((e.arrived, prover)),
                T1Kind::Commit(_) => commitments.push(CommitmentRecord {
                    prover,
                    inclusion: self.inclusion(Phase::T1, e.arrived)?,
                }),
            }
        }
        declined.sort();
        commitments.sort_by_key(|c| (c.inclusion.arrived_at, c.prover));
        // Assigned partials all count; open ones only the first `open[air]` per AIR.
        let mut valid: Vec<(UnixMillis, ProverIndex, AirIndex, bool)> = r
            .partials
            .iter()
            .filter(|(_, e)| e.valid)
            .map(|(&(p, a), e)| (e.arrived, p, a, e.assigned))
            .collect();
        valid.sort();
        let mut taken: BTreeMap<AirIndex, u32> = BTreeMap::new();
        let mut partials = Vec::new();
        for (arrived, prover, air, assigned) in valid {
            if !assigned {
                let n = taken.entry(air).or_insert(0);
                if *n >= r.open_slots(air) {
                    continue;
                }
                *n = n.saturating_add(1);
            }
            partials.push(PartialRecord {
                prover,
                air,
                assigned,
                inclusion: self.inclusion(Phase::T2, arrived)?,
            });
        }
        let mut full_proofs = Vec::new();
        if let Some(phase) = r.finalized_in {
            let mut list: Vec<(&ProverIndex, &FullEntry)> =
                r.full.iter().filter(|(_, e)| e.valid && e.phase == phase).collect();
            list.sort_by_key(|(p, e)| (e.arrived, **p));
            for (&submitter, e) in list {
                full_proofs.push(FullProofRecord {
                    submitter,
                    parts: e.parts.clone(),
                    reused: e.parts.iter().filter(|p| p.author != submitter).copied().collect(),
                    inclusion: self.inclusion(e.phase, e.arrived)?,
                });
            }
        }
        Some(RoundOutcome {
            key: r.key,
            num_airs: r.num_airs,
            selected: r.selected.clone(),
            assignments: r
                .selected
                .iter()
                .zip(&r.assignments)
                .map(|(&prover, airs)| Assignment { prover, airs: airs.clone() })
                .collect(),
            declined: declined.into_iter().map(|(_, p)| p).collect(),
            commitments,
            partials,
            full_proofs,
            finalized_in: r.finalized_in,
            equivocations: r.equivocations.clone(),
        })
    }

    fn build_outcome(&self, root: Root) -> Option<BlockOutcome> {
        let block = self.blocks.get(&root)?;
        let mut rounds = Vec::new();
        for sub in &block.sub_blocks {
            for r in &sub.rounds {
                rounds.push(self.round_outcome(r)?);
            }
        }
        let mut agg: Vec<(UnixMillis, ProverIndex)> =
            block.agg.iter().filter(|(_, e)| e.valid).map(|(&p, e)| (e.arrived, p)).collect();
        agg.sort();
        let mut agg_proofs = Vec::new();
        for (arrived, submitter) in agg {
            agg_proofs.push(AggProofRecord {
                submitter,
                inclusion: Inclusion {
                    arrived_at: arrived,
                    phase: Phase::T1,
                    validator: self.includer(arrived)?,
                },
            });
        }
        Some(BlockOutcome {
            block_root: root,
            slot: block.info.slot,
            proposer: block.info.proposer,
            rounds,
            aggregators: block.aggregators.clone(),
            agg_proofs,
        })
    }

    // ----- queries ----------------------------------------------------------------------------

    /// Blocks whose rounds are closed but whose outcome waits for a later beacon block (the
    /// includer of their last messages).
    pub fn awaiting_inclusion(&self) -> Vec<Root> {
        self.blocks
            .iter()
            .filter(|(_, b)| b.sub_blocks.iter().all(|s| s.done) && b.aggregators_released)
            .map(|(r, _)| *r)
            .collect()
    }

    /// A prover's duties in open rounds where it is selected.
    pub fn duties(&self, prover: ProverIndex) -> Vec<Duty> {
        let mut out = Vec::new();
        for block in self.blocks.values() {
            for sub in &block.sub_blocks {
                let Some(r) = sub.current() else { continue };
                if r.closed {
                    continue;
                }
                let Some(airs) = r.assigned_airs(prover) else { continue };
                let committed = r.t1.get(&prover).map(|e| matches!(e.kind, T1Kind::Commit(_)));
                out.push(Duty {
                    round: r.key,
                    slot: r.slot,
                    num_airs: r.num_airs,
                    airs: if committed == Some(false) { Vec::new() } else { airs.to_vec() },
                    phase: r.phase_now(self.now).unwrap_or(Phase::T5),
                    committed,
                    deadlines: r.deadlines,
                });
            }
        }
        out
    }

    /// Blocks whose AggProof `prover` may submit.
    pub fn aggregation_duties(&self, prover: ProverIndex) -> Vec<AggregationDuty> {
        self.blocks
            .values()
            .filter(|b| {
                b.is_aggregating() && !b.aggregators_released && self.agg_standing(b, prover)
            })
            .map(|b| AggregationDuty {
                block_root: b.info.root,
                slot: b.info.slot,
                aggregator: b.aggregators.contains(&prover),
                ready: b.first_unproven().is_none(),
            })
            .collect()
    }

    /// The open rounds.
    pub fn open_rounds(&self) -> Vec<RoundKey> {
        self.blocks
            .values()
            .flat_map(|b| b.sub_blocks.iter())
            .filter_map(|s| s.current())
            .filter(|r| !r.closed)
            .map(|r| r.key)
            .collect()
    }

    /// The state of a round (open, or closed but not yet settled).
    pub fn round_status(&self, key: &RoundKey) -> Option<RoundStatus> {
        let block = self.blocks.get(&key.block_root)?;
        let sub = block.sub_blocks.get(usize::try_from(key.sub_block.0).ok()?)?;
        let r = sub.rounds.get(usize::try_from(key.attempt.0).ok()?)?;
        Some(RoundStatus {
            key: r.key,
            slot: r.slot,
            phase: r.phase_now(self.now),
            deadlines: r.deadlines,
            num_airs: r.num_airs,
            selected: r.selected.iter().copied().zip(r.assignments.iter().cloned()).collect(),
            open_airs: (0..r.num_airs)
                .map(AirIndex)
                .filter_map(|a| {
                    let n = r.open_slots(a);
                    (n > 0).then_some((a, n))
                })
                .collect(),
            commitments: u32::try_from(
                r.t1.values().filter(|e| matches!(e.kind, T1Kind::Commit(_))).count(),
            )
            .unwrap_or(u32::MAX),
            partials: u32::try_from(r.partials.values().filter(|e| e.valid).count())
                .unwrap_or(u32::MAX),
            finalized_in: r.finalized_in,
            closed: r.closed,
        })
    }

    /// AIRs of a round open to any active prover (declined by a holder), with open slot counts.
    pub fn open_airs(&self, key: &RoundKey) -> Vec<(AirIndex, u32)> {
        self.round_status(key).map(|s| s.open_airs).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::Scenario;

    use crate::test_utils::small_network_config as config;

    /// How a run hands shufflers to the engine before each block.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Prep {
        /// Nothing prepared: every shuffler is built in `on_block`.
        None,
        /// Exactly the predicted specs, carrying their whole lists.
        Exact,
        /// The predicted specs without whole lists, after a flood of unrelated ones.
        ExactAfterFlood,
        /// Only shufflers whose specs differ from the predicted ones (other seeds, other
        /// lengths, other rounds).
        Wrong,
        /// The predicted ones first, then enough others to push them out of the cache.
        ExactThenFlood,
    }

    fn wrong_specs(spec: ShuffleSpec) -> Vec<ShuffleSpec> {
        let mut seed = spec.seed;
        if let Some(b) = seed.first_mut() {
            *b ^= 1;
        }
        let mut specs = vec![
            ShuffleSpec { seed, ..spec },
            ShuffleSpec { index_count: spec.index_count + 1, ..spec },
            ShuffleSpec { rounds: spec.rounds - 1, ..spec },
        ];
        if spec.index_count > 1 {
            specs.push(ShuffleSpec { index_count: spec.index_count - 1, ..spec });
        }
        specs
    }

    fn flood(engine: &mut Engine, tag: u8) {
        for i in 0..PREPARED_SHUFFLERS_MAX as u64 {
            let spec = ShuffleSpec { index_count: 3 + i, seed: [tag; 32], rounds: 10 };
            engine.prepare_shuffler(Shuffler::from_spec(spec).unwrap());
        }
    }

    fn prepare(engine: &mut Engine, specs: &[ShuffleSpec], prep: Prep, slot: u64) {
        let tag = u8::try_from(slot % 256).unwrap();
        match prep {
            Prep::None => {}
            Prep::Exact => {
                for spec in specs {
                    engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap().with_whole_list());
                }
            }
            Prep::ExactAfterFlood => {
                flood(engine, tag);
                for spec in specs {
                    engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap());
                }
            }
            Prep::Wrong => {
                for spec in specs {
                    for wrong in wrong_specs(*spec) {
                        engine.prepare_shuffler(
                            Shuffler::from_spec(wrong).unwrap().with_whole_list(),
                        );
                    }
                }
            }
            Prep::ExactThenFlood => {
                for spec in specs {
                    engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap().with_whole_list());
                }
                flood(engine, tag);
            }
        }
    }

    /// Blocks of every size (empty, one sub-block, several, a gigagas block split into many
    /// sub-blocks), some rounds proven in T1, the others left to retry; returns every action
    /// the engine emitted (verification requests answered by the scenario's verifier), the
    /// block outcomes and every delivery's result.
    fn run(prep: Prep) -> (Vec<Action>, Vec<String>, ShufflerCacheStats) {
        let mut s = Scenario::new(config(), 100);
        let mut results = Vec::new();
        let gas =
            [10_000_000u64, 120_000_000, 1_000_000_000, 0, 300_000_000, 1_000_000_000, 45_000_000];
        for (slot, gas_used) in (1u64..).zip(gas) {
            let info = crate::test_utils::block_info(slot, gas_used);
            s.advance_to(info.slot_start);
            let specs = s.engine.upcoming_shuffles(&info);
            assert!(!specs.is_empty());
            prepare(&mut s.engine, &specs, prep, slot);
            let before = s.engine.shuffler_cache_stats();
            s.add_block_info(info).unwrap();
            let after = s.engine.shuffler_cache_stats();
            assert_eq!(s.engine.prepared_shufflers(), 0);
            let (hits, misses) = (after.hits - before.hits, after.misses - before.misses);
            match prep {
                // The clock was moved to the slot start before predicting: `on_block` had
                // nothing else to do, and used exactly the predicted shuffles.
                Prep::Exact | Prep::ExactAfterFlood => {
                    assert_eq!((hits, misses), (specs.len() as u64, 0), "slot {slot}");
                }
                Prep::None | Prep::Wrong | Prep::ExactThenFlood => {
                    assert_eq!((hits, misses), (0, specs.len() as u64), "slot {slot}");
                }
            }
            // Even sub-blocks proven in T1 by their first prover; odd ones retried after T5.
            for key in s.round_keys(&info.root) {
                if key.sub_block.0 % 2 == 1 {
                    continue;
                }
                let Some(&submitter) = s.selected(&key).first() else { continue };
                let parts = s.own_parts(&key, submitter);
                let t = s.time_in(&key, Phase::T1, 100);
                let m = s.commitment_with_full_proof(&key, submitter, &parts);
                results.push(format!("{:?}", s.deliver(m, t)));
            }
        }
        let end = s.now().0 + 200_000;
        s.advance_to(UnixMillis(end));
        results.extend(s.outcomes.iter().map(|o| format!("{o:?}")));
        (s.log, results, s.engine.shuffler_cache_stats())
    }

    /// Engines handed the predicted shufflers, wrong ones, or prepared ones pushed out of the
    /// cache emit exactly the actions (round starts with their prover sets and assignments,
    /// aggregator groups, outcomes) of an engine that builds every shuffler itself.
    #[test]
    fn prepared_shufflers_never_change_the_actions() {
        let (log, results, stats) = run(Prep::None);
        assert_eq!(stats.hits, 0);
        assert!(log.iter().any(|a| matches!(a, Action::AggregatorsSelected { .. })));
        assert!(
            log.iter().any(|a| matches!(a, Action::RoundStarted(r) if r.key.attempt == Attempt(1)))
        );
        assert!(log.iter().any(|a| matches!(a, Action::BlockOutcome(_))));
        for prep in [Prep::Exact, Prep::ExactAfterFlood, Prep::Wrong, Prep::ExactThenFlood] {
            let (l, r, st) = run(prep);
            assert_eq!(l, log, "{prep:?}");
            assert_eq!(r, results, "{prep:?}");
            // The retries (started by ticks) always build their shufflers.
            assert!(st.misses > 0, "{prep:?}");
            assert_eq!(st.hits + st.misses, stats.misses, "{prep:?}");
        }
    }

    /// On a quiet block every predicted spec is used, each once, and nothing else is built.
    #[test]
    fn upcoming_shuffles_are_the_ones_used() {
        let mut s = Scenario::new(config(), 100);
        // 1 Ggas: 20 sub-blocks of 2 provers each, and an aggregator group.
        let info = crate::test_utils::block_info(1, 1_000_000_000);
        s.advance_to(info.slot_start);
        let specs = s.engine.upcoming_shuffles(&info);
        // Per sub-block: selection, provers' and AIRs' permutations; then the aggregators.
        assert_eq!(specs.len(), 20 * 3 + 1);
        let distinct: std::collections::BTreeSet<_> =
            specs.iter().map(|s| (s.index_count, s.seed)).collect();
        assert_eq!(distinct.len(), specs.len());
        for spec in &specs {
            s.engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap());
        }
        assert_eq!(s.engine.prepared_shufflers(), specs.len());
        s.add_block_info(info).unwrap();
        let stats = s.engine.shuffler_cache_stats();
        assert_eq!(stats, ShufflerCacheStats { hits: specs.len() as u64, misses: 0 });
        assert_eq!(s.engine.prepared_shufflers(), 0);
        // The specs match what was emitted: 100 provers shuffled, 2 selected per sub-block,
        // 13 AIRs per 50 Mgas sub-block.
        let starts = s.round_starts();
        assert_eq!(starts.len(), 20);
        for (start, chunk) in starts.iter().zip(specs.chunks(3)) {
            assert_eq!(chunk[0].index_count, 100);
            assert_eq!(chunk[1].index_count, start.selected.len() as u64);
            assert_eq!(chunk[2].index_count, u64::from(start.num_airs));
            assert_eq!(chunk[2].seed, chunk[1].seed.map(|b| !b));
        }
        assert_eq!(specs.last().unwrap().seed, aggregator_seed(&info.randao_mix, &info.root));
    }

    /// Predictions follow the eligible provers: with most provers busy, the assignment specs
    /// have the capped selected counts and the aggregator group shrinks or disappears.
    #[test]
    fn upcoming_shuffles_follow_availability() {
        let mut s = Scenario::new(config(), 9);
        let info = crate::test_utils::block_info(1, 120_000_000);
        s.advance_to(info.slot_start);
        let specs = s.engine.upcoming_shuffles(&info);
        // 9 available: 2 sub-blocks (9 / 4), 2 provers each, aggregators min(2, 5).
        assert_eq!(specs.len(), 2 * 3 + 1);
        for spec in &specs {
            s.engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap().with_whole_list());
        }
        s.add_block_info(info).unwrap();
        assert_eq!(s.engine.shuffler_cache_stats().hits, specs.len() as u64);
        // 3 left available: one sub-block of one prover, no aggregators.
        let next = crate::test_utils::block_info(2, 120_000_000);
        s.advance_to(next.slot_start);
        let specs = s.engine.upcoming_shuffles(&next);
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[1].index_count, 1);
        for spec in &specs {
            s.engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap());
        }
        let before = s.engine.shuffler_cache_stats();
        s.add_block_info(next).unwrap();
        let after = s.engine.shuffler_cache_stats();
        assert_eq!((after.hits - before.hits, after.misses - before.misses), (3, 0));
        // Nobody active: nothing to shuffle.
        let empty = Engine::new(config(), *s.ctx());
        assert!(empty.upcoming_shuffles(&crate::test_utils::block_info(3, 10_000_000)).is_empty());
    }

    #[test]
    fn the_prepared_cache_is_bounded_and_emptied_by_on_block() {
        let mut s = Scenario::new(config(), 12);
        flood(&mut s.engine, 1);
        flood(&mut s.engine, 2);
        assert_eq!(s.engine.prepared_shufflers(), PREPARED_SHUFFLERS_MAX);
        // The same spec again replaces, not adds.
        let spec = ShuffleSpec { index_count: 3, seed: [2; 32], rounds: 10 };
        s.engine.prepare_shuffler(Shuffler::from_spec(spec).unwrap().with_whole_list());
        assert_eq!(s.engine.prepared_shufflers(), PREPARED_SHUFFLERS_MAX);
        s.add_block(1, 10_000_000).unwrap();
        assert_eq!(s.engine.prepared_shufflers(), 0);
        // A rejected block empties it too.
        flood(&mut s.engine, 3);
        let info = crate::test_utils::block_info(1, 10_000_000);
        assert!(s.engine.on_block(info, s.now()).is_err());
        assert_eq!(s.engine.prepared_shufflers(), 0);
    }
}
