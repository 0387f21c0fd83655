//! The simulation loop: the real `phase_engine::Engine` and `rewards::settle` driven on virtual
//! time by a discrete-event queue of prover actions.
//!
//! For each block the simulator derives a RANDAO mix, a block root and a proposer from the seed,
//! gives the engine the block at its slot start, and reacts to the engine's actions: a started
//! round makes every selected prover act per its behaviour and latencies (events in a queue keyed
//! by virtual time, ties broken by insertion order); verification requests are answered at once
//! (the simulator is the verifier, see [`super::modelled`]); the time jumps from event to event
//! and to each of the engine's timeouts. Each `BlockOutcome` is settled with the reward table and
//! accumulated, and every prover's reputation moves one point up for a block that paid it and one
//! down for a block that penalised it (the engine bounds its effect on selection). Settlement and
//! reputation run on the engine's thread; folding the settled block into the report (rows,
//! totals, the settlement root) runs on a second thread, in block order. Blocks after
//! the last counted one keep the network in its steady state until
//! every counted block's outcome is out; their own outcomes are not counted.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use phase_engine::{
    Action, AggProof, AirCommitment, AirIndex, Attempt, BlockInfo, BlsPublicKey, BlsSignature,
    Capabilities, Commitment, Deadlines, Decline, Engine, EngineConfig, FullProof, FullProofBody,
    PartRef, PartialProof, Phase, Progress, ProtocolMessage, ProverIndex, ProverRecord, Root,
    RoundKey, RoundRef, SealedMessage, Sealer, ShuffleSpec, Shuffler, SignedAggProof,
    SignedCommitment, SignedDecline, SignedFullProof, SignedPartialProof, SigningContext, Slot,
    StarkTarget, UnixMillis, ValidatorIndex, Verdict, bls,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rewards::{Account, Ledger};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use super::error::{SimError, SimResult};
use super::modelled::{self, ProofLedger};
use super::pipeline::{self, Outgoing, Recipe};
use super::real::{self, RealProofs};
use super::report::{AccountKind, Accumulator, BlockFate, BlockRecord, LedgerRow, RunReport};
use super::scenario::{Behaviour, ProverSpec, Scenario};

/// How proofs are produced and checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProofMode {
    /// Proving is a latency; a proof is valid iff its author produced it on the honest path.
    /// Signatures are placeholders that the simulator, as the verifier, accepts.
    #[default]
    Modelled,
    /// Real BLS signatures and real STARKs (small runs, see [`super::real`]): the provers
    /// prove with `plonky3_prover` and sign with BLS keys derived from the seed, and the engine's
    /// verification requests are answered by real verification. Latencies are still the
    /// scenario's, so the protocol's decisions are those of a modelled run.
    Real,
}

/// Options of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimOptions {
    /// How proofs are produced and checked.
    pub mode: ProofMode,
}

/// Unix time of slot 0 in the simulation (any fixed instant does).
pub const GENESIS_MS: u64 = 1_700_000_000_000;

/// A copier sends its copies this long before T2 closes, to copy as much as it can.
const COPY_BEFORE_T2_CLOSE_MS: u64 = 300;

/// Runs a scenario against a reward configuration. `on_block` receives the ledger entries of
/// every counted block, in block order, as it is settled (to stream them to files, or to drive a
/// progress bar).
///
/// # Errors
/// [`SimError::Protocol`] if the engine or the settlement refuses an input the simulator built
/// (a bug in a behaviour model, or a configuration the protocol cannot run), or whatever
/// `on_block` returns.
pub fn simulate<F>(
    scenario: &Scenario,
    config: &rewards::Config,
    opts: &SimOptions,
    mut on_block: F,
) -> SimResult<RunReport>
where
    F: FnMut(&[LedgerRow]) -> SimResult<()>,
{
    let real = match opts.mode {
        ProofMode::Modelled => None,
        ProofMode::Real => {
            real::check_size(scenario, &config.engine)?;
            Some(RealProofs::new(scenario)?)
        }
    };
    let (work_tx, work_rx) = mpsc::channel();
    let (rows_tx, rows_rx) = mpsc::channel();
    let (shufflers_tx, shufflers_rx) = mpsc::channel();
    let settlement = Settlement { jobs: Some(work_tx.clone()), rows: rows_rx, outstanding: 0 };
    let acc = Accumulator::new(scenario);
    std::thread::scope(|s| {
        // Modelled mode builds and seals messages ahead of delivery on the helper thread (see
        // `pipeline`); real mode builds them on this one (the real prover is not shared).
        let sealing = real.is_none().then(|| work_tx.clone());
        let mut sim = Sim::new(scenario, config, real, settlement, sealing)?;
        sim.shuffles = Some((work_tx, shufflers_rx));
        let sealer = sim.sealer;
        let worker = s.spawn(move || helper_thread(sealer, acc, work_rx, rows_tx, shufflers_tx));
        let ran = sim.run(&mut on_block);
        // Closing the channel ends the helper once it has done the work sent.
        sim.sealing = None;
        sim.shuffles = None;
        sim.settlement.jobs = None;
        let delivered = sim.settlement.deliver(&mut on_block, true);
        let acc = worker.join().map_err(|_| SimError::Protocol {
            block: sim.counted_done,
            reason: "the helper thread panicked".to_owned(),
        })?;
        ran?;
        delivered?;
        let mut report = acc.finish();
        report.rejections = std::mem::take(&mut sim.rejections);
        Ok(report)
    })
}

#[derive(Debug)]
enum Event {
    /// A message arrives at the engine (built and sealed ahead of time where it can be).
    Deliver(Arc<Outgoing>),
    /// A prover builds (and if need be completes) a full proof of a round in a phase.
    Aggregate { prover: ProverIndex, round: RoundKey, phase: Phase },
    /// A copier resubmits others' partial proofs of its AIRs as its own.
    CopyPartials { prover: ProverIndex, round: RoundKey },
    /// A copier resubmits another prover's full proof as its own.
    CopyFull { prover: ProverIndex, round: RoundKey, original: ProverIndex, parts: Vec<PartRef> },
    /// A prover proves AIRs of a round (records them as proven at this instant).
    Proven { prover: ProverIndex, round: RoundKey, airs: Vec<AirIndex> },
    /// An aggregator sends the AggProof of a block.
    AggProof { prover: ProverIndex, block_root: Root },
}

impl Event {
    fn deliver(message: ProtocolMessage) -> Self {
        Self::Deliver(Outgoing::new(Recipe::Built(message)))
    }
}

#[derive(Debug)]
struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: the heap pops the earliest event, and among equal times the first scheduled.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A full proof built ahead of its aggregation, with the parts it was built from.
type BuiltAhead = (Vec<PartRef>, Arc<Outgoing>);

/// What the simulator tracks of an open round.
#[derive(Debug)]
struct RoundSim {
    slot: Slot,
    deadlines: Deadlines,
    num_airs: u32,
    selected: Vec<ProverIndex>,
    assignments: Vec<Vec<AirIndex>>,
    /// Per AIR, the authors of accepted partial proofs, in acceptance order.
    partials: Vec<Vec<ProverIndex>>,
    finalized: Option<Phase>,
    /// Copiers of the round that already copied a full proof.
    copied_full: Vec<ProverIndex>,
    /// AIRs already taken over from decliners.
    taken: Vec<AirIndex>,
    /// The provers planned to aggregate the round in T3, by planned time.
    aggregators: Vec<(u64, ProverIndex)>,
    /// Full proofs built ahead of their aggregation (modelled mode), with the parts they were
    /// built from; `None` until the round's first aggregation.
    speculative: Option<FxHashMap<ProverIndex, BuiltAhead>>,
}

impl RoundSim {
    fn round_ref(&self, key: &RoundKey) -> RoundRef {
        RoundRef {
            slot: self.slot,
            block_root: key.block_root,
            sub_block: key.sub_block,
            attempt: key.attempt,
        }
    }

    fn airs_of(&self, prover: ProverIndex) -> Option<&[AirIndex]> {
        let i = self.selected.iter().position(|p| *p == prover)?;
        self.assignments.get(i).map(Vec::as_slice)
    }
}

/// What the simulator tracks of a block whose outcome is not out yet.
#[derive(Debug)]
struct BlockSim {
    index: u64,
    info: BlockInfo,
    sub_blocks: u32,
    finalized_subs: Vec<bool>,
    aggregators: Vec<ProverIndex>,
    agg_scheduled: bool,
}

struct Sim<'a> {
    scenario: &'a Scenario,
    table: rewards::RewardTable,
    engine_config: EngineConfig,
    engine: Engine,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    now: u64,
    rounds: FxHashMap<RoundKey, RoundSim>,
    blocks: FxHashMap<Root, BlockSim>,
    proofs: ProofLedger,
    settlement: Settlement,
    joins_at: BTreeMap<u64, Vec<usize>>,
    exits_at: BTreeMap<u64, Vec<usize>>,
    aggregator_only: Vec<ProverIndex>,
    gas_rng: ChaCha8Rng,
    counted_done: u64,
    rejections: BTreeMap<String, u64>,
    /// Reputation score of every prover, from its starting value and settled history.
    reputation: Vec<u64>,
    /// Real keys and proofs (`--real-proofs`); `None` in modelled mode.
    real: Option<RefCell<RealProofs>>,
    /// Engine actions taken out of the engine ahead of handling (real mode plans a block's
    /// workload from all of its `RoundStarted` actions first).
    backlog: VecDeque<Action>,
    /// Seals messages under the engine's signing context.
    sealer: Sealer,
    /// Seals the messages this thread builds itself at delivery.
    sealing_here: pipeline::Sealing,
    /// Batches of messages for the helper thread to seal, in delivery order (modelled mode).
    sealing: Option<mpsc::Sender<Work>>,
    /// The helper thread, which builds the next block's shufflers, and the shufflers it built.
    shuffles: Option<(mpsc::Sender<Work>, mpsc::Receiver<Vec<Shuffler>>)>,
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The placeholder key of a prover in modelled mode: unique per prover, never parsed (the
/// simulator is the verifier).
fn modelled_pubkey(index: u64) -> BlsPublicKey {
    let mut key = [0u8; 48];
    key[..8].copy_from_slice(&index.to_le_bytes());
    key[8..40].copy_from_slice(&digest(&[b"sidecar-sim-key", &index.to_le_bytes()]));
    BlsPublicKey::from(key)
}

fn protocol_err(block: u64, what: &str, e: impl std::fmt::Display) -> SimError {
    SimError::Protocol { block, reason: format!("{what}: {e}") }
}

/// The name of an engine error variant (the reason a message was rejected).
fn reason_name(e: &phase_engine::Error) -> String {
    let debug = format!("{e:?}");
    debug.split([' ', '{', '(']).next().unwrap_or("Other").to_owned()
}

impl<'a> Sim<'a> {
    fn new(
        scenario: &'a Scenario,
        config: &rewards::Config,
        real: Option<RealProofs>,
        settlement: Settlement,
        sealing: Option<mpsc::Sender<Work>>,
    ) -> SimResult<Self> {
        let mut engine = Engine::new(config.engine, SigningContext::default());
        let sealer = engine.sealer();
        let mut joins_at: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        let mut exits_at: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, p) in scenario.provers.iter().enumerate() {
            if p.join_at_block == 0 {
                let key = real.as_ref().and_then(|r| r.pubkey(p.index));
                add_prover(&mut engine, p, key)?;
            } else {
                joins_at.entry(p.join_at_block).or_default().push(i);
            }
            if let Some(x) = p.exit_at_block {
                exits_at.entry(x).or_default().push(i);
            }
        }
        let mut gas_rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        gas_rng.set_stream(1);
        Ok(Self {
            scenario,
            table: config.table,
            engine_config: config.engine,
            engine,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            rounds: FxHashMap::default(),
            blocks: FxHashMap::default(),
            proofs: ProofLedger::default(),
            settlement,
            joins_at,
            exits_at,
            aggregator_only: Vec::new(),
            gas_rng,
            counted_done: 0,
            rejections: BTreeMap::new(),
            reputation: scenario.provers.iter().map(|p| p.reputation).collect(),
            real: real.map(RefCell::new),
            backlog: VecDeque::new(),
            sealer,
            sealing_here: pipeline::Sealing::new(sealer),
            sealing,
            shuffles: None,
        })
    }

    fn spec(&self, p: ProverIndex) -> Option<&'a ProverSpec> {
        usize::try_from(p.0).ok().and_then(|i| self.scenario.provers.get(i))
    }

    fn behaviour(&self, p: ProverIndex) -> Behaviour {
        self.spec(p).map_or(Behaviour::Offline, |s| s.behaviour)
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled { at: at.max(self.now), seq: self.seq, event });
    }

    fn block_info(&mut self, index: u64, parent: Root) -> BlockInfo {
        let gas = self.scenario.gas.sample(&mut self.gas_rng);
        simulated_block(self.scenario, index, parent, gas)
    }

    fn run(&mut self, on_block: &mut dyn FnMut(&[LedgerRow]) -> SimResult<()>) -> SimResult<()> {
        let w = &self.engine_config.phases;
        let attempt_ms = w.t1_ms + w.t2_ms + w.t3_ms + w.t4_ms + w.t5_ms + w.max_clock_disparity_ms;
        let round_span = attempt_ms * (u64::from(self.engine_config.max_retries) + 1) + w.t1_ms * 2;
        let tail_limit = round_span / self.scenario.slot_ms + 8;
        let mut index = 0u64;
        let mut next = self.block_info(index, Root::ZERO);
        while self.counted_done < self.scenario.blocks {
            if index >= self.scenario.blocks + tail_limit {
                return Err(SimError::Protocol {
                    block: index,
                    reason: format!(
                        "{} block outcome(s) still pending {tail_limit} slots after the last block",
                        self.scenario.blocks - self.counted_done
                    ),
                });
            }
            let info = next;
            self.run_until(info.slot_start.0, on_block)?;
            if index < self.scenario.blocks {
                self.registry_changes(index)?;
            }
            self.take_shufflers();
            self.engine
                .on_block(info, info.slot_start)
                .map_err(|e| protocol_err(index, "engine refused the block", e))?;
            if self.real.is_some() {
                self.plan_real_block(index, &info)?;
            }
            self.blocks.insert(
                info.root,
                BlockSim {
                    index,
                    info,
                    sub_blocks: 0,
                    finalized_subs: Vec::new(),
                    aggregators: Vec::new(),
                    agg_scheduled: false,
                },
            );
            self.drain(on_block)?;
            index += 1;
            next = self.block_info(index, info.root);
            self.prepare_shufflers(&next);
        }
        Ok(())
    }

    /// Asks the helper thread to build the shufflers the engine expects to need for `next`
    /// (a prediction from the engine's state now, a block ahead: a wrong one costs only its
    /// building, never a result).
    fn prepare_shufflers(&mut self, next: &BlockInfo) {
        let Some((work, _)) = &self.shuffles else { return };
        let specs = self.engine.upcoming_shuffles(next);
        if !specs.is_empty() {
            let _ = work.send(Work::Shuffle { specs, active: self.engine.num_active() });
        }
    }

    /// Hands the engine the shufflers the helper thread has built by now (it builds the rest
    /// itself).
    fn take_shufflers(&mut self) {
        let Some((_, built)) = &self.shuffles else { return };
        while let Ok(shufflers) = built.try_recv() {
            for shuffler in shufflers {
                self.engine.prepare_shuffler(shuffler);
            }
        }
    }

    /// Real mode: takes the engine's actions out ahead of handling, and plans the block's STARK
    /// workload from the AIRs of its sub-blocks (the `RoundStarted` actions of attempt 0).
    fn plan_real_block(&mut self, index: u64, info: &BlockInfo) -> SimResult<()> {
        while let Some(a) = self.engine.poll_action() {
            self.backlog.push_back(a);
        }
        let airs: BTreeMap<u32, u32> = self
            .backlog
            .iter()
            .filter_map(|a| match a {
                Action::RoundStarted(s)
                    if s.key.block_root == info.root && s.key.attempt == Attempt(0) =>
                {
                    Some((s.key.sub_block.0, s.num_airs))
                }
                _ => None,
            })
            .collect();
        let airs: Vec<u32> = airs.into_values().collect();
        if let Some(real) = self.real.as_ref().filter(|_| !airs.is_empty()) {
            real.borrow_mut().plan_block(
                index,
                info.root,
                info.parent_root,
                info.gas_used,
                &airs,
            )?;
        }
        Ok(())
    }

    fn registry_changes(&mut self, block: u64) -> SimResult<()> {
        if let Some(joiners) = self.joins_at.remove(&block) {
            for i in joiners {
                if let Some(spec) = self.scenario.provers.get(i) {
                    let key = self.real.as_ref().and_then(|r| r.borrow().pubkey(spec.index));
                    add_prover(&mut self.engine, spec, key)?;
                }
            }
        }
        if let Some(leavers) = self.exits_at.remove(&block) {
            for i in leavers {
                self.engine
                    .exit_prover(ProverIndex(i as u64))
                    .map_err(|e| protocol_err(block, "exit", e))?;
            }
        }
        self.aggregator_only = self
            .scenario
            .provers
            .iter()
            .filter(|p| p.behaviour == Behaviour::AggregatorOnly && p.active_at(block))
            .map(|p| p.index)
            .collect();
        Ok(())
    }

    /// Processes every event and engine timeout before `until`.
    fn run_until(
        &mut self,
        until: u64,
        on_block: &mut dyn FnMut(&[LedgerRow]) -> SimResult<()>,
    ) -> SimResult<()> {
        loop {
            let next_event = self.queue.peek().map(|s| s.at);
            let next_timeout = self.engine.poll_timeout().map(|t| t.0);
            let next = match (next_event, next_timeout) {
                (None, None) => break,
                (Some(e), None) => e,
                (None, Some(t)) => t,
                (Some(e), Some(t)) => e.min(t),
            };
            if next >= until {
                break;
            }
            self.now = self.now.max(next);
            if next_timeout == Some(next) && next_event.is_none_or(|e| e >= next) {
                self.engine.on_tick(UnixMillis(next));
                self.drain(on_block)?;
                continue;
            }
            if let Some(s) = self.queue.pop() {
                self.handle_event(s.event)?;
                self.drain(on_block)?;
            }
        }
        self.now = self.now.max(until);
        Ok(())
    }

    fn deliver(&mut self, message: ProtocolMessage) {
        if self.real.is_none() {
            let sealed = self.sealer.seal(message);
            self.deliver_verified(sealed);
            return;
        }
        let message = self.seal(message);
        if let Err(e) = self.engine.on_message(message, UnixMillis(self.now)) {
            *self.rejections.entry(reason_name(&e)).or_default() += 1;
        }
    }

    /// Modelled mode: a placeholder signature always comes from its claimed sender, so the
    /// message goes in with its signature taken as checked (the engine would request the check
    /// and the simulator answer "valid" at once: the same outcome, with one round trip less).
    fn deliver_verified(&mut self, sealed: SealedMessage) {
        if let Err(e) = self.engine.on_verified_message(sealed, UnixMillis(self.now)) {
            *self.rejections.entry(reason_name(&e)).or_default() += 1;
        }
    }

    /// Delivers a message built (and in modelled mode sealed) ahead of time.
    fn deliver_outgoing(&mut self, message: &Outgoing) -> SimResult<()> {
        let sealed = message.take(&mut self.sealing_here).ok_or_else(|| SimError::Protocol {
            block: self.counted_done,
            reason: "a simulated message was delivered twice".to_owned(),
        })?;
        if self.real.is_some() {
            // Real mode signs at delivery.
            self.deliver(sealed.into_parts().0);
            return Ok(());
        }
        self.deliver_verified(sealed);
        Ok(())
    }

    /// Hands messages to the helper thread, earliest delivery first (modelled mode).
    fn send_to_sealer(&self, mut batch: Vec<(u64, Arc<Outgoing>)>) {
        let Some(sealing) = &self.sealing else { return };
        if batch.is_empty() {
            return;
        }
        batch.sort_by_key(|(at, _)| *at);
        // If the thread is gone the messages are simply built at delivery.
        let _ = sealing.send(Work::Seal(batch.into_iter().map(|(_, m)| m).collect()));
    }

    fn verdict(&mut self, request: phase_engine::RequestId, valid: bool) -> Option<Progress> {
        match self.engine.on_verification(Verdict { request, valid }) {
            Ok(p) => Some(p),
            Err(e) => {
                *self.rejections.entry(reason_name(&e)).or_default() += 1;
                None
            }
        }
    }

    /// Handles the engine's actions until none is left.
    fn drain(&mut self, on_block: &mut dyn FnMut(&[LedgerRow]) -> SimResult<()>) -> SimResult<()> {
        while let Some(action) = self.backlog.pop_front().or_else(|| self.engine.poll_action()) {
            match action {
                Action::VerifySignature(check) => {
                    // Modelled mode: placeholder signatures, always from their claimed sender.
                    // Real mode: BLS verification.
                    let valid = self.real.is_none() || bls::verify_check(&check);
                    self.verdict(check.request, valid);
                }
                Action::VerifyStark(check) => {
                    let valid = self.verify_stark(&check.target);
                    if let Some(Progress::Accepted(_)) = self.verdict(check.request, valid) {
                        self.on_stark_accepted(&check.target);
                    }
                }
                Action::RoundStarted(start) => self.on_round_started(start),
                Action::AggregatorsSelected { block_root, aggregators } => {
                    if let Some(b) = self.blocks.get_mut(&block_root) {
                        b.aggregators = aggregators;
                    }
                }
                Action::RoundFinalized { key, phase, .. } => self.on_round_finalized(key, phase),
                Action::RoundClosed { key, .. } => {
                    self.rounds.remove(&key);
                    self.proofs.forget_round(&key);
                }
                Action::Accepted(acc) => {
                    if acc.kind == phase_engine::MessageKind::Decline
                        && let Some(key) = acc.round
                    {
                        self.on_decline(key, acc.prover);
                    }
                }
                Action::BlockOutcome(outcome) => self.on_outcome(*outcome, on_block)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn verify_stark(&self, target: &StarkTarget) -> bool {
        if let Some(real) = &self.real {
            return real.borrow().verify(target);
        }
        match target {
            StarkTarget::Partial { round, air, author, trace_root, proof, .. } => {
                self.proofs.verify_partial(round, *author, *air, trace_root, proof)
            }
            StarkTarget::FullProof { round, submitter, parts, bundle, .. } => {
                self.proofs.verify_full(
                    round,
                    *submitter,
                    parts.iter().map(|c| (c.part, c.committed_trace_root.as_ref())),
                    bundle,
                )
            }
            StarkTarget::AggProof { submitter, bundle, .. } => {
                self.proofs.verify_agg(*submitter, bundle)
            }
            _ => false,
        }
    }

    fn on_stark_accepted(&mut self, target: &StarkTarget) {
        match target {
            StarkTarget::Partial { round, air, author, .. } => {
                if let Some(r) = self.rounds.get_mut(round)
                    && let Some(list) =
                        usize::try_from(air.0).ok().and_then(|i| r.partials.get_mut(i))
                {
                    list.push(*author);
                }
            }
            StarkTarget::FullProof { round, submitter, parts, bundle, .. } => {
                if let Some(real) = &self.real {
                    real.borrow_mut().full_accepted(round, bundle);
                }
                // Copiers of the round resubmit the first full proof they see as their own.
                let Some(r) = self.rounds.get(round) else { return };
                let copiers: Vec<ProverIndex> = r
                    .selected
                    .iter()
                    .copied()
                    .filter(|p| {
                        self.behaviour(*p) == Behaviour::Copier && !r.copied_full.contains(p)
                    })
                    .collect();
                let parts: Vec<PartRef> = parts.iter().map(|c| c.part).collect();
                for c in copiers {
                    let delay = self.spec(c).map_or(0, |s| s.latency.aggregate.median_ms());
                    if let Some(r) = self.rounds.get_mut(round) {
                        r.copied_full.push(c);
                    }
                    self.schedule(
                        self.now + delay,
                        Event::CopyFull {
                            prover: c,
                            round: *round,
                            original: *submitter,
                            parts: parts.clone(),
                        },
                    );
                }
            }
            _ => {}
        }
    }

    fn round_rng(&self, key: &RoundKey) -> ChaCha8Rng {
        ChaCha8Rng::from_seed(digest(&[
            b"sidecar-sim-round",
            &self.scenario.seed.to_le_bytes(),
            key.block_root.as_slice(),
            &key.sub_block.0.to_le_bytes(),
            &key.attempt.0.to_le_bytes(),
        ]))
    }

    fn deadlines(&self, start: UnixMillis) -> Deadlines {
        let w = &self.engine_config.phases;
        let mut closes = [start; 5];
        let mut t = start.0;
        for (close, len) in closes.iter_mut().zip([w.t1_ms, w.t2_ms, w.t3_ms, w.t4_ms, w.t5_ms]) {
            t += len;
            *close = UnixMillis(t);
        }
        Deadlines { start, closes, grace_ms: w.max_clock_disparity_ms }
    }

    fn commitment(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        prover: ProverIndex,
        airs: &[AirIndex],
        full: Option<FullProofBody>,
    ) -> ProtocolMessage {
        if self.real.is_none() {
            return modelled::commitment(r.round_ref(key), prover, airs, full, BlsSignature::ZERO);
        }
        let roots: Vec<AirCommitment> = airs
            .iter()
            .map(|&air| AirCommitment { air, trace_root: self.trace_root(prover, key, air) })
            .collect();
        ProtocolMessage::Commitment(SignedCommitment {
            message: Commitment {
                round: r.round_ref(key),
                prover,
                trace_roots: roots.try_into().unwrap_or_default(),
                full_proof: full.into_iter().collect::<Vec<_>>().try_into().unwrap_or_default(),
            },
            signature: BlsSignature::ZERO,
        })
    }

    fn partial(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        prover: ProverIndex,
        air: AirIndex,
        proof_author: ProverIndex,
    ) -> ProtocolMessage {
        if self.real.is_none() {
            let round = r.round_ref(key);
            return modelled::partial(round, prover, air, proof_author, BlsSignature::ZERO);
        }
        ProtocolMessage::PartialProof(SignedPartialProof {
            message: PartialProof {
                round: r.round_ref(key),
                prover,
                air,
                trace_root: self.trace_root(prover, key, air),
                proof: self.partial_bytes(proof_author, key, air).try_into().unwrap_or_default(),
            },
            signature: BlsSignature::ZERO,
        })
    }

    /// The T1 trace root `prover` commits for `air`.
    fn trace_root(&self, prover: ProverIndex, key: &RoundKey, air: AirIndex) -> Root {
        match &self.real {
            Some(real) => real.borrow_mut().trace_root(prover, key, air),
            None => modelled::trace_root(prover, key, air),
        }
    }

    /// The bytes of the partial proof of `air` by `author`.
    fn partial_bytes(&self, author: ProverIndex, key: &RoundKey, air: AirIndex) -> Vec<u8> {
        match &self.real {
            Some(real) => real.borrow_mut().partial_bytes(author, key, air),
            None => modelled::partial_proof(author, air),
        }
    }

    /// Signs a message as its sender (real mode); modelled messages keep their placeholder
    /// signature.
    fn seal(&self, mut message: ProtocolMessage) -> ProtocolMessage {
        let Some(real) = &self.real else { return message };
        let real = real.borrow();
        let ctx = self.engine.signing_context();
        let root = message.signing_root(ctx);
        match &mut message {
            ProtocolMessage::Commitment(m) => m.signature = real.sign(m.message.prover, &root),
            ProtocolMessage::Decline(m) => m.signature = real.sign(m.message.prover, &root),
            ProtocolMessage::PartialProof(m) => m.signature = real.sign(m.message.prover, &root),
            ProtocolMessage::FullProof(m) => m.signature = real.sign(m.message.submitter, &root),
            ProtocolMessage::AggProof(m) => m.signature = real.sign(m.message.submitter, &root),
            _ => {}
        }
        message
    }

    /// The body of a full proof sent by `builder` whose bundle `bundle_builder` assembled
    /// (a copier sends another prover's bundle).
    fn full_body(
        &self,
        key: &RoundKey,
        builder: ProverIndex,
        bundle_builder: ProverIndex,
        parts: &[PartRef],
    ) -> FullProofBody {
        match &self.real {
            Some(real) => {
                let bundle = real.borrow_mut().full_bundle(bundle_builder, key, parts);
                modelled::body_with_bundle(builder, parts, bundle)
            }
            None => modelled::full_body(builder, bundle_builder, parts),
        }
    }

    /// A commitment without full proof, to be built ahead of delivery where it can be.
    fn commitment_out(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        prover: ProverIndex,
        airs: &[AirIndex],
    ) -> Arc<Outgoing> {
        Outgoing::new(match &self.real {
            None => Recipe::Commitment { round: r.round_ref(key), prover, airs: airs.to_vec() },
            Some(_) => Recipe::Built(self.commitment(key, r, prover, airs, None)),
        })
    }

    /// A partial proof, to be built ahead of delivery where it can be.
    fn partial_out(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        prover: ProverIndex,
        air: AirIndex,
        author: ProverIndex,
    ) -> Arc<Outgoing> {
        Outgoing::new(match &self.real {
            None => Recipe::Partial { round: r.round_ref(key), prover, air, author },
            Some(_) => Recipe::Built(self.partial(key, r, prover, air, author)),
        })
    }

    /// A full proof of `submitter` built from its own parts, to be built ahead of delivery
    /// where it can be.
    fn full_proof_out(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        submitter: ProverIndex,
        parts: Vec<PartRef>,
    ) -> Arc<Outgoing> {
        Outgoing::new(match &self.real {
            None => Recipe::FullProof {
                round: r.round_ref(key),
                submitter,
                bundle_builder: submitter,
                parts,
            },
            Some(_) => {
                let body = self.full_body(key, submitter, submitter, &parts);
                Recipe::Built(self.full_proof(key, r, submitter, body))
            }
        })
    }

    fn full_proof(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        submitter: ProverIndex,
        body: FullProofBody,
    ) -> ProtocolMessage {
        ProtocolMessage::FullProof(SignedFullProof {
            message: FullProof { round: r.round_ref(key), submitter, body },
            signature: BlsSignature::ZERO,
        })
    }

    /// Plans what every selected prover (and every aggregator-only prover) does in a new round.
    fn on_round_started(&mut self, start: phase_engine::RoundStart) {
        let key = start.key;
        let d = self.deadlines(start.start);
        let t1_close = d.graced_close(Phase::T1).0;
        let t2_open = d.open(Phase::T2).0;
        let t2_close = d.graced_close(Phase::T2).0;
        let mut round = RoundSim {
            slot: start.slot,
            deadlines: d,
            num_airs: start.num_airs,
            selected: start.selected.clone(),
            assignments: start.assignments.clone(),
            partials: vec![Vec::new(); start.num_airs as usize],
            finalized: None,
            copied_full: Vec::new(),
            taken: Vec::new(),
            aggregators: Vec::new(),
            speculative: None,
        };
        if key.attempt == Attempt(0)
            && let Some(b) = self.blocks.get_mut(&key.block_root)
        {
            b.sub_blocks += 1;
            b.finalized_subs.push(false);
        }
        let mut rng = self.round_rng(&key);
        let mut plans: Vec<(u64, Event)> = Vec::new();
        for (prover, airs) in start.selected.iter().copied().zip(start.assignments.iter()) {
            let Some(spec) = self.spec(prover) else { continue };
            let lat = spec.latency;
            let commit_at = d.start.0 + lat.commit.sample(&mut rng);
            // Proving the assigned AIRs one after another, after the trace commitment.
            let mut t = commit_at;
            let done: Vec<u64> = airs
                .iter()
                .map(|_| {
                    t += lat.per_air.sample(&mut rng);
                    t
                })
                .collect();
            let aggregate_at = t2_close + lat.aggregate.sample(&mut rng);
            let commit =
                |full: Option<FullProofBody>| self.commitment(&key, &round, prover, airs, full);
            let commit_out = || Event::Deliver(self.commitment_out(&key, &round, prover, airs));
            match spec.behaviour {
                Behaviour::Offline => {}
                Behaviour::Lazy => plans.push((commit_at, commit_out())),
                Behaviour::Decliner => {
                    plans.push((
                        commit_at,
                        Event::deliver(ProtocolMessage::Decline(SignedDecline {
                            message: Decline { round: round.round_ref(&key), prover },
                            signature: BlsSignature::ZERO,
                        })),
                    ));
                }
                Behaviour::AggregatorOnly => {}
                Behaviour::Copier => {
                    plans.push((commit_at, commit_out()));
                    if !airs.is_empty() {
                        plans.push((
                            t2_close
                                .saturating_sub(COPY_BEFORE_T2_CLOSE_MS + d.grace_ms)
                                .max(t2_open),
                            Event::CopyPartials { prover, round: key },
                        ));
                    }
                }
                Behaviour::Slow => {
                    plans.push((commit_at, commit_out()));
                    for (air, &at) in airs.iter().zip(&done) {
                        plans.push((at, Event::Proven { prover, round: key, airs: vec![*air] }));
                        // Misses T2: arrives after its graced close whatever the latency.
                        plans.push((
                            at.max(t2_close + 1),
                            Event::Deliver(self.partial_out(&key, &round, prover, *air, prover)),
                        ));
                    }
                }
                Behaviour::Withholder => {
                    plans.push((commit_at, commit_out()));
                    for (air, &at) in airs.iter().zip(&done) {
                        plans.push((at, Event::Proven { prover, round: key, airs: vec![*air] }));
                    }
                    plans.push((
                        aggregate_at,
                        Event::Aggregate { prover, round: key, phase: Phase::T3 },
                    ));
                }
                Behaviour::Honest => {
                    let mut solo_sent = false;
                    let mut solo_in_t1 = false;
                    if spec.solo_full_proof {
                        // Proves every AIR itself; the whole proof is ready at `solo_done`.
                        let solo_done = (0..start.num_airs)
                            .fold(commit_at, |t, _| t + lat.per_air.sample(&mut rng));
                        let all: Vec<AirIndex> = (0..start.num_airs).map(AirIndex).collect();
                        let parts: Vec<PartRef> =
                            all.iter().map(|&air| PartRef { author: prover, air }).collect();
                        if solo_done < t1_close {
                            // In T1 the full proof rides in the prover's one commitment.
                            plans
                                .push((solo_done, Event::Proven { prover, round: key, airs: all }));
                            plans.push((
                                solo_done,
                                Event::deliver(commit(Some(
                                    self.full_body(&key, prover, prover, &parts),
                                ))),
                            ));
                            solo_sent = true;
                            solo_in_t1 = true;
                        } else if solo_done < t2_close {
                            plans.push((commit_at, commit_out()));
                            plans
                                .push((solo_done, Event::Proven { prover, round: key, airs: all }));
                            let msg = self.full_proof_out(&key, &round, prover, parts);
                            plans.push((solo_done.max(t1_close), Event::Deliver(msg)));
                            solo_sent = true;
                        }
                    }
                    if !solo_sent {
                        plans.push((commit_at, commit_out()));
                    }
                    // A full proof sent in T1 finalises the round: no partial is needed then.
                    for (air, &at) in airs.iter().zip(&done).filter(|_| !solo_in_t1) {
                        if !solo_sent {
                            plans
                                .push((at, Event::Proven { prover, round: key, airs: vec![*air] }));
                        }
                        let send_at = at.max(t2_open);
                        if send_at < t2_close {
                            plans.push((
                                send_at,
                                Event::Deliver(
                                    self.partial_out(&key, &round, prover, *air, prover),
                                ),
                            ));
                        }
                    }
                    plans.push((
                        aggregate_at,
                        Event::Aggregate { prover, round: key, phase: Phase::T3 },
                    ));
                }
            }
        }
        // Aggregator-only provers aggregate every round that reaches T3.
        for p in self.aggregator_only.clone() {
            let Some(spec) = self.spec(p) else { continue };
            let at = t2_close + spec.latency.aggregate.sample(&mut rng);
            plans.push((at, Event::Aggregate { prover: p, round: key, phase: Phase::T3 }));
        }
        round.aggregators = plans
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Aggregate { prover, .. } => Some((*at, *prover)),
                _ => None,
            })
            .collect();
        round.aggregators.sort_by_key(|(at, _)| *at);
        self.rounds.insert(key, round);
        self.send_to_sealer(outgoing(&plans));
        for (at, event) in plans {
            self.schedule(at, event);
        }
    }

    /// Declined AIRs are taken over by honest selected provers without AIRs of their own, first
    /// in selection order; they prove and submit them in T2 if they can.
    fn on_decline(&mut self, key: RoundKey, decliner: ProverIndex) {
        let Some(r) = self.rounds.get(&key) else { return };
        let airs: Vec<AirIndex> = r.airs_of(decliner).map(<[AirIndex]>::to_vec).unwrap_or_default();
        let free: Vec<ProverIndex> = r
            .selected
            .iter()
            .zip(&r.assignments)
            .filter(|(p, a)| a.is_empty() && self.behaviour(**p) == Behaviour::Honest)
            .map(|(p, _)| *p)
            .collect();
        let t2_open = r.deadlines.open(Phase::T2).0;
        let t2_close = r.deadlines.graced_close(Phase::T2).0;
        let mut rng = self.round_rng(&key);
        // Distinct stream for takeovers: skip ahead by the decliner's index.
        rng.set_stream(decliner.0.wrapping_add(2));
        let mut plans = Vec::new();
        let mut free = free.into_iter().skip(r.taken.len());
        let mut taken = Vec::new();
        for air in airs {
            let Some(taker) = free.next() else { break };
            let Some(spec) = self.spec(taker) else { continue };
            let done = self.now + spec.latency.per_air.sample(&mut rng);
            plans.push((done, Event::Proven { prover: taker, round: key, airs: vec![air] }));
            let at = done.max(t2_open);
            if at < t2_close {
                plans.push((at, Event::Deliver(self.partial_out(&key, r, taker, air, taker))));
            }
            taken.push(air);
        }
        if let Some(r) = self.rounds.get_mut(&key) {
            r.taken.extend(taken);
        }
        self.send_to_sealer(outgoing(&plans));
        for (at, e) in plans {
            self.schedule(at, e);
        }
    }

    fn on_round_finalized(&mut self, key: RoundKey, phase: Phase) {
        if let Some(r) = self.rounds.get_mut(&key) {
            r.finalized = Some(phase);
        }
        let Some(b) = self.blocks.get_mut(&key.block_root) else { return };
        if let Some(f) = b.finalized_subs.get_mut(key.sub_block.0 as usize) {
            *f = true;
        }
        if b.sub_blocks > 1 && !b.agg_scheduled && b.finalized_subs.iter().all(|f| *f) {
            b.agg_scheduled = true;
            let aggregators = b.aggregators.clone();
            for p in aggregators {
                let Some(spec) = self.spec(p) else { continue };
                if matches!(
                    spec.behaviour,
                    Behaviour::Honest | Behaviour::AggregatorOnly | Behaviour::Withholder
                ) {
                    let at = self.now + spec.latency.aggregate.median_ms();
                    self.schedule(at, Event::AggProof { prover: p, block_root: key.block_root });
                }
            }
        }
    }

    fn handle_event(&mut self, event: Event) -> SimResult<()> {
        match event {
            Event::Deliver(message) => self.deliver_outgoing(&message)?,
            Event::Proven { prover, round, airs } => {
                if self.rounds.contains_key(&round) {
                    for air in airs {
                        self.proofs.record(round, prover, air);
                    }
                }
            }
            Event::CopyPartials { prover, round } => {
                let Some(r) = self.rounds.get(&round) else { return Ok(()) };
                let mut msgs = Vec::new();
                for &air in r.airs_of(prover).unwrap_or_default() {
                    let original = r
                        .partials
                        .get(air.0 as usize)
                        .and_then(|authors| authors.iter().find(|a| **a != prover))
                        .copied();
                    if let Some(original) = original {
                        msgs.push(self.partial(&round, r, prover, air, original));
                    }
                }
                for m in msgs {
                    self.deliver(m);
                }
            }
            Event::CopyFull { prover, round, original, parts } => {
                let Some(r) = self.rounds.get(&round) else { return Ok(()) };
                // The same parts and bundle, under the copier's name.
                let body = self.full_body(&round, prover, original, &parts);
                let msg = self.full_proof(&round, r, prover, body);
                self.deliver(msg);
            }
            Event::Aggregate { prover, round, phase } => self.aggregate(prover, round, phase),
            Event::AggProof { prover, block_root } => {
                let Some(b) = self.blocks.get(&block_root) else { return Ok(()) };
                let msg = ProtocolMessage::AggProof(SignedAggProof {
                    message: AggProof {
                        slot: b.info.slot,
                        block_root,
                        submitter: prover,
                        bundle: match &self.real {
                            Some(real) => real.borrow().agg_bundle(prover, &block_root),
                            None => modelled::agg_bundle(prover),
                        }
                        .try_into()
                        .unwrap_or_default(),
                    },
                    signature: BlsSignature::ZERO,
                });
                self.deliver(msg);
            }
        }
        Ok(())
    }

    /// A prover builds a full proof from its own proofs and others' accepted partials. Honest
    /// provers and withholders prove the AIRs nobody covered themselves and send the proof when
    /// done (which may land in T4 or T5); aggregator-only provers give up if anything is missing.
    fn aggregate(&mut self, prover: ProverIndex, key: RoundKey, _phase: Phase) {
        let Some(r) = self.rounds.get(&key) else { return };
        if r.finalized.is_some_and(|f| f < Phase::T3) {
            return;
        }
        if r.speculative.is_none() {
            self.speculate_full_proofs(&key);
        }
        let Some(r) = self.rounds.get(&key) else { return };
        let behaviour = self.behaviour(prover);
        let (parts, missing) = self.full_parts(r, &key, prover);
        let mut at = self.now;
        if !missing.is_empty() {
            if behaviour == Behaviour::AggregatorOnly {
                return;
            }
            let Some(spec) = self.spec(prover) else { return };
            let mut rng = self.round_rng(&key);
            rng.set_stream(prover.0.wrapping_add(1 << 40));
            for _ in &missing {
                at += spec.latency.per_air.sample(&mut rng);
            }
            if at >= r.deadlines.graced_close(Phase::T5).0 {
                return;
            }
        }
        // The proof built ahead of time if it was built from these very parts (it is then the
        // same message), else a new one.
        let ahead = self
            .rounds
            .get_mut(&key)
            .and_then(|r| r.speculative.as_mut())
            .and_then(|s| s.remove(&prover))
            .filter(|(built_from, _)| *built_from == parts)
            .map(|(_, message)| message);
        let msg = match ahead {
            Some(message) => message,
            None => {
                let Some(r) = self.rounds.get(&key) else { return };
                self.full_proof_out(&key, r, prover, parts)
            }
        };
        if !missing.is_empty() {
            self.schedule(at, Event::Proven { prover, round: key, airs: missing });
        }
        // Scheduled after the `Proven` event of the same instant.
        self.schedule(at, Event::Deliver(msg));
    }

    /// The parts `prover` puts in a full proof of round `r` now: its own proofs first, else the
    /// first accepted partial of each AIR, else its own (the AIRs it still has to prove, also
    /// returned).
    fn full_parts(
        &self,
        r: &RoundSim,
        key: &RoundKey,
        prover: ProverIndex,
    ) -> (Vec<PartRef>, Vec<AirIndex>) {
        let mut parts = Vec::with_capacity(r.num_airs as usize);
        let mut missing = Vec::new();
        for air in (0..r.num_airs).map(AirIndex) {
            if self.proofs.has(key, prover, air) {
                parts.push(PartRef { author: prover, air });
            } else if let Some(author) = r.partials.get(air.0 as usize).and_then(|a| a.first()) {
                parts.push(PartRef { author: *author, air });
            } else {
                missing.push(air);
                parts.push(PartRef { author: prover, air });
            }
        }
        (parts, missing)
    }

    /// At a round's first aggregation (T2 has closed: no partial proof can be accepted any
    /// more), builds the full proofs of the round's other planned aggregators ahead of time on
    /// the helper thread (modelled mode). Each is used only if its prover, when it aggregates,
    /// puts in exactly the parts it was built from.
    fn speculate_full_proofs(&mut self, key: &RoundKey) {
        let Some(r) = self.rounds.get(key) else { return };
        let mut ahead = FxHashMap::default();
        let mut batch = Vec::new();
        if self.sealing.is_some() {
            for &(at, prover) in r.aggregators.iter().filter(|(at, _)| *at >= self.now) {
                let (parts, missing) = self.full_parts(r, key, prover);
                if !missing.is_empty() && self.behaviour(prover) == Behaviour::AggregatorOnly {
                    continue;
                }
                let message = self.full_proof_out(key, r, prover, parts.clone());
                batch.push((at, Arc::clone(&message)));
                ahead.insert(prover, (parts, message));
            }
        }
        if let Some(r) = self.rounds.get_mut(key) {
            r.speculative = Some(ahead);
        }
        self.send_to_sealer(batch);
    }

    fn on_outcome(
        &mut self,
        outcome: phase_engine::BlockOutcome,
        on_block: &mut dyn FnMut(&[LedgerRow]) -> SimResult<()>,
    ) -> SimResult<()> {
        let Some(b) = self.blocks.remove(&outcome.block_root) else { return Ok(()) };
        if let Some(real) = &self.real {
            real.borrow_mut().forget_block(&outcome.block_root);
        }
        if b.index >= self.scenario.blocks {
            return Ok(());
        }
        let ledger: Ledger = rewards::settle(&outcome, &self.table)
            .map_err(|e| protocol_err(b.index, "settlement failed", e))?;
        // Reputation follows settled history: one point up for a block that paid the prover,
        // one down for a block that penalised it (the engine bounds its effect on selection).
        let mut net: BTreeMap<u64, i64> = BTreeMap::new();
        for e in ledger.entries() {
            if let Account::Prover(p) = e.account {
                *net.entry(p.0).or_default() += e.amount.0;
            }
        }
        for (prover, amount) in net {
            let Some(score) = usize::try_from(prover).ok().and_then(|i| self.reputation.get_mut(i))
            else {
                continue;
            };
            *score = match amount.cmp(&0) {
                Ordering::Greater => score.saturating_add(1),
                Ordering::Less => score.saturating_sub(1),
                Ordering::Equal => *score,
            };
            self.engine
                .set_reputation(ProverIndex(prover), *score)
                .map_err(|e| protocol_err(b.index, "updating reputation", e))?;
        }
        // The rest (rows, report, settlement root) runs on the helper thread.
        self.settlement.send(SettleJob { index: b.index, gas: b.info.gas_used, outcome, ledger });
        self.counted_done += 1;
        self.settlement.deliver(on_block, false)
    }
}

/// The messages among planned events, with their delivery times.
fn outgoing(plans: &[(u64, Event)]) -> Vec<(u64, Arc<Outgoing>)> {
    plans
        .iter()
        .filter_map(|(at, e)| match e {
            Event::Deliver(message) => Some((*at, Arc::clone(message))),
            _ => None,
        })
        .collect()
}

/// What the helper thread needs of a settled block.
struct SettleJob {
    index: u64,
    gas: u64,
    outcome: phase_engine::BlockOutcome,
    ledger: Ledger,
}

/// The ledger rows of a settled block, in the callback's form.
fn ledger_rows(job: &SettleJob) -> Vec<LedgerRow> {
    job.ledger
        .entries()
        .iter()
        .filter_map(|e| {
            let (kind, account) = match e.account {
                Account::Prover(p) => (AccountKind::Prover, p.0),
                Account::Validator(v) => (AccountKind::Validator, v.0),
                _ => return None,
            };
            Some(LedgerRow {
                block: job.index,
                slot: job.outcome.slot,
                account_kind: kind,
                account,
                sub_block: e.sub_block.0,
                attempt: e.attempt.0,
                phase: e.phase,
                rule: e.rule.constant_name(),
                amount: e.amount.0,
            })
        })
        .collect()
}

/// Folds a settled block into the report: its rows, rounds, fate and settlement root.
fn account_block(acc: &mut Accumulator, job: &SettleJob, rows: &[LedgerRow]) {
    let (mut provers_total, mut validators_total) = (0i64, 0i64);
    for row in rows {
        acc.add_entry(row);
        match row.account_kind {
            AccountKind::Prover => provers_total += row.amount,
            AccountKind::Validator => validators_total += row.amount,
        }
    }
    // Per round: who was selected and how it ended; per sub-block: the final attempt.
    let mut sub_fate: BTreeMap<u32, Option<Phase>> = BTreeMap::new();
    for r in &job.outcome.rounds {
        acc.add_round(&r.selected, r.finalized_in);
        sub_fate.insert(r.key.sub_block.0, r.finalized_in);
    }
    let fate = if sub_fate.values().all(Option::is_some) {
        BlockFate::Finalized(sub_fate.values().flatten().copied().max().unwrap_or(Phase::T1))
    } else {
        BlockFate::Failed
    };
    let sub_blocks = u32::try_from(sub_fate.len()).unwrap_or(u32::MAX);
    let rounds = u32::try_from(job.outcome.rounds.len()).unwrap_or(u32::MAX);
    acc.end_block(
        BlockRecord {
            block: job.index,
            slot: job.outcome.slot,
            gas: job.gas,
            sub_blocks,
            rounds,
            retries: rounds.saturating_sub(sub_blocks),
            fate,
            agg_proof: !job.outcome.agg_proofs.is_empty(),
            provers_total,
            validators_total,
            entries: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        },
        job.ledger.settlement_root().0,
    );
}

/// The settlement side of a run, on the helper thread: it builds each settled block's rows,
/// folds them into the report and computes the chained settlement roots, in block order, while
/// the engine goes on (the results do not depend on it). Rows come back to the caller's thread
/// for `on_block`, in block order.
struct Settlement {
    jobs: Option<mpsc::Sender<Work>>,
    rows: mpsc::Receiver<Vec<LedgerRow>>,
    /// Blocks sent whose rows have not been handed to `on_block` yet.
    outstanding: u64,
}

impl Settlement {
    fn send(&mut self, job: SettleJob) {
        if let Some(jobs) = &self.jobs
            && jobs.send(Work::Settle(Box::new(job))).is_ok()
        {
            self.outstanding += 1;
        }
    }

    /// Hands the rows that are ready (all of them, waiting, when `all`) to `on_block`.
    fn deliver(
        &mut self,
        on_block: &mut dyn FnMut(&[LedgerRow]) -> SimResult<()>,
        all: bool,
    ) -> SimResult<()> {
        while self.outstanding > 0 {
            let rows = if all { self.rows.recv().ok() } else { self.rows.try_recv().ok() };
            let Some(rows) = rows else { break };
            self.outstanding -= 1;
            on_block(&rows)?;
        }
        Ok(())
    }
}

/// Work for the helper thread, the run's second core.
enum Work {
    /// Messages to build and seal ahead of delivery, in delivery order (modelled mode).
    Seal(Vec<Arc<Outgoing>>),
    /// Shuffles to build for the engine's next block; those of the whole active list (`active`
    /// provers: the selections, which walk most of it) with their whole list.
    Shuffle { specs: Vec<ShuffleSpec>, active: u64 },
    /// A settled block to turn into rows and fold into the report.
    Settle(Box<SettleJob>),
}

/// How long the helper thread polls for work before it sleeps. The engine's thread sends work
/// several times per simulated block, a few hundred microseconds apart; waking a sleeping
/// thread costs it a system call and, on a virtual machine, an inter-processor interrupt each
/// time (about 6% of its time when the helper slept between every batch).
const HELPER_POLL: Duration = Duration::from_micros(500);

/// The next piece of work, polled for [`HELPER_POLL`] before blocking; `None` once the channel
/// is closed and empty. Polling yields the core between looks, so that runs side by side (a
/// sweep) lose nothing to it.
fn recv_polling(work: &mpsc::Receiver<Work>) -> Option<Work> {
    let start = Instant::now();
    loop {
        match work.try_recv() {
            Ok(w) => return Some(w),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if start.elapsed() < HELPER_POLL => {
                std::thread::yield_now();
            }
            Err(mpsc::TryRecvError::Empty) => return work.recv().ok(),
        }
    }
}

/// The helper thread, until the channel closes: seals message batches first (the engine's
/// thread is about to deliver them), then builds shufflers for the next block, then settles
/// blocks (in block order). Returns the report's accumulator.
fn helper_thread(
    sealer: phase_engine::Sealer,
    mut acc: Accumulator,
    work: mpsc::Receiver<Work>,
    rows: mpsc::Sender<Vec<LedgerRow>>,
    shufflers: mpsc::Sender<Vec<Shuffler>>,
) -> Accumulator {
    let mut shuffles: VecDeque<(Vec<ShuffleSpec>, u64)> = VecDeque::new();
    let mut settle: VecDeque<Box<SettleJob>> = VecDeque::new();
    let mut sealing = pipeline::Sealing::new(sealer);
    loop {
        let idle = shuffles.is_empty() && settle.is_empty();
        let next = if idle { recv_polling(&work) } else { work.try_recv().ok() };
        match next {
            Some(Work::Seal(batch)) => pipeline::seal_batch(&mut sealing, &batch),
            Some(Work::Shuffle { specs, active }) => shuffles.push_back((specs, active)),
            Some(Work::Settle(job)) => settle.push_back(job),
            None => {
                if let Some((specs, active)) = shuffles.pop_front() {
                    let built = specs
                        .into_iter()
                        .filter_map(|spec| {
                            let shuffler = Shuffler::from_spec(spec).ok()?;
                            Some(if spec.index_count == active {
                                shuffler.with_whole_list()
                            } else {
                                shuffler
                            })
                        })
                        .collect();
                    // The engine's thread builds what it does not get.
                    let _ = shufflers.send(built);
                    continue;
                }
                let Some(job) = settle.pop_front() else { break };
                let block_rows = ledger_rows(&job);
                account_block(&mut acc, &job, &block_rows);
                if rows.send(block_rows).is_err() {
                    break;
                }
            }
        }
    }
    acc
}

/// The beacon block the simulator proposes at `index` (slot `index`): root, RANDAO mix and
/// proposer derived from the scenario's seed, slot start at [`GENESIS_MS`]` + index * slot_ms`.
pub fn simulated_block(scenario: &Scenario, index: u64, parent: Root, gas_used: u64) -> BlockInfo {
    let seed = scenario.seed.to_le_bytes();
    let i = index.to_le_bytes();
    let proposer_digest = digest(&[b"sidecar-sim-proposer", &seed, &i]);
    let mut first = [0u8; 8];
    first.copy_from_slice(&proposer_digest[..8]);
    BlockInfo {
        slot: Slot(index),
        root: Root::from(digest(&[b"sidecar-sim-block", &seed, &i])),
        parent_root: parent,
        proposer: ValidatorIndex(u64::from_le_bytes(first) % scenario.validators),
        randao_mix: Root::from(digest(&[b"sidecar-sim-randao", &seed, &i])),
        gas_used,
        slot_start: UnixMillis(GENESIS_MS + index * scenario.slot_ms),
    }
}

/// Registers a prover with its real key, or with its placeholder key in modelled mode.
fn add_prover(engine: &mut Engine, spec: &ProverSpec, key: Option<BlsPublicKey>) -> SimResult<()> {
    let record = ProverRecord {
        pubkey: key.unwrap_or_else(|| modelled_pubkey(spec.index.0)),
        stake: spec.stake,
        capabilities: Capabilities::default(),
        active: true,
        reputation: spec.reputation,
    };
    let index = engine
        .add_prover(record)
        .map_err(|e| protocol_err(spec.join_at_block, "registering a prover", e))?;
    if index != spec.index {
        return Err(SimError::Protocol {
            block: spec.join_at_block,
            reason: format!("the registry numbered prover {} as {index}", spec.index),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_pops_the_earliest_event_first_in_scheduling_order() {
        let mut heap = BinaryHeap::new();
        let ev = |n: u64| Event::AggProof { prover: ProverIndex(n), block_root: Root::ZERO };
        for (seq, at) in [(1, 50), (2, 10), (3, 50), (4, 10), (5, 30)] {
            heap.push(Scheduled { at, seq, event: ev(seq) });
        }
        let order: Vec<(u64, u64)> =
            std::iter::from_fn(|| heap.pop().map(|s| (s.at, s.seq))).collect();
        assert_eq!(order, [(10, 2), (10, 4), (30, 5), (50, 1), (50, 3)]);
    }

    #[test]
    fn simulated_blocks_derive_from_the_seed() {
        let s =
            Scenario::from_toml_str("seed = 4\nblocks = 2\nprovers = 2\nvalidators = 7").unwrap();
        let a = simulated_block(&s, 3, Root::ZERO, 1);
        assert_eq!(a, simulated_block(&s, 3, Root::ZERO, 1));
        assert_eq!(a.slot, Slot(3));
        assert_eq!(a.slot_start, UnixMillis(GENESIS_MS + 3 * s.slot_ms));
        assert!(a.proposer.0 < 7);
        assert_ne!(a.root, simulated_block(&s, 4, Root::ZERO, 1).root);
        let other = Scenario { seed: 5, ..s };
        let b = simulated_block(&other, 3, Root::ZERO, 1);
        assert_ne!((a.root, a.randao_mix), (b.root, b.randao_mix));
    }
}
