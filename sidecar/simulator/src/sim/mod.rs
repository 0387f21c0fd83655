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
//!
//! One concept per file: `queue` holds the virtual-time event queue, `rounds` what is tracked
//! of open rounds and pending blocks, `chain` the simulated blocks and the prover registry,
//! `behaviour` what the provers plan per behaviour and phase, `prover_events` what they do when
//! their events fire, `messages` how their messages are built and signed, `delivery` how the
//! messages reach the engine, `verify` how the engine's verification requests are answered,
//! `settlement` how outcomes are settled and folded into the report, and `helper` the helper
//! thread.

mod behaviour;
mod chain;
mod delivery;
mod helper;
mod inclusion;
mod messages;
mod prover_events;
mod queue;
mod rounds;
mod settlement;
mod verify;

use std::cell::RefCell;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::mpsc;

use phase_engine::{
    Action, Engine, EngineConfig, Progress, ProverIndex, Root, RoundKey, Sealer, Shuffler,
    SigningContext, bls,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use self::chain::add_prover;
pub use self::chain::simulated_block;
use self::helper::{Work, helper_thread};
use self::queue::Scheduled;
use self::rounds::{BlockSim, RoundSim};
use self::settlement::Settlement;
use super::error::{SimError, SimResult};
use super::modelled::ProofLedger;
use super::pipeline;
use super::real::{self, RealProofs};
use super::report::{Accumulator, LedgerRow, RunReport};
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
        report.airs_proved = std::mem::take(&mut sim.airs_proved);
        Ok(report)
    })
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
    /// Canonical inclusion, when the scenario models it.
    inclusion: Option<inclusion::InclusionModel>,
    /// AIRs each prover proved, by registry index.
    airs_proved: Vec<u64>,
    /// The sybil operator of each prover, by registry index (empty without sybils).
    sybil_operator: Vec<Option<usize>>,
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The sybil operator of each prover (see [`Scenario::sybil_operators`]); empty if none.
fn sybil_operators(scenario: &Scenario) -> Vec<Option<usize>> {
    let operators = scenario.sybil_operators();
    if operators.is_empty() {
        return Vec::new();
    }
    let mut of = vec![None; scenario.provers.len()];
    for (op, keys) in operators.iter().enumerate() {
        for k in keys {
            if let Some(slot) = usize::try_from(k.0).ok().and_then(|i| of.get_mut(i)) {
                *slot = Some(op);
            }
        }
    }
    of
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
            inclusion: scenario
                .proposers_with_sidecar
                .map(|share| inclusion::InclusionModel::new(share, config.inclusion)),
            airs_proved: vec![0; scenario.provers.len()],
            sybil_operator: sybil_operators(scenario),
        })
    }

    fn spec(&self, p: ProverIndex) -> Option<&'a ProverSpec> {
        usize::try_from(p.0).ok().and_then(|i| self.scenario.provers.get(i))
    }

    fn behaviour(&self, p: ProverIndex) -> Behaviour {
        self.spec(p).map_or(Behaviour::Offline, |s| s.behaviour)
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
}
