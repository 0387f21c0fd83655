//! `sidecar devnet`: a whole proving network in one process, on loopback.
//!
//! [`run`] starts the embedded devnet beacon node ([`beacon_api::DevnetNode`]), `K` validator-mode
//! sidecars ([`crate::node::Node`]) and `M` prover workers ([`crate::prover::ProverWorker`], real
//! STARKs; prover `i` submits to sidecar `i mod K`), then watches every block: the rounds each
//! sidecar runs, the phase they finalise in, the time from the beacon head event to the first
//! full proof and to the settled ledger, the rewards paid, and the settlement root of every
//! sidecar. One table row is written per block once every sidecar has settled it. With a block
//! limit it stops after that many blocks and returns a [`DevnetSummary`];
//! [`DevnetSummary::check`] says whether every block got a valid full proof and every sidecar
//! settled the same ledger root ([`rewards::Ledger::settlement_root`]).
//!
//! Counting starts with the first block the devnet produces once every sidecar and prover is up;
//! blocks produced during start-up are settled but not reported.
//!
//! [`serve_beacon`] runs only the devnet beacon node, for sidecars and provers started as
//! separate processes (`testnets/local/run.sh`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use beacon_api::{
    BeaconClient, BeaconEvent, BlockId, DevnetConfig, DevnetNode, ProvingClient, ProvingEvent,
};
use phase_engine::{Phase, ProverRecord, Root, RoundKey, bls};
use rewards::{Account, Balances, Ledger};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::cli::DevnetArgs;
use crate::node::{GOSSIP_TOPICS, Node, NodeConfig, NodeError, NodeHandle};
use crate::p2p::{NetworkConfig, NetworkHandle, NodeKey};
use crate::prover::{ProverError, ProverWorker, WorkerConfig};

/// The default listen address of the beacon node in `--beacon-only` mode.
pub const BEACON_ONLY_ADDRESS: &str = "127.0.0.1:5052";

/// The log filter of `sidecar devnet` when none is given: the table is the output.
pub const DEFAULT_LOG_FILTER: &str = "error";

/// Stake of every devnet prover (32 ETH in Gwei).
const PROVER_STAKE: u64 = 32_000_000_000;

/// Everything that can stop the devnet or fail its check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// An option is out of range.
    #[error("invalid argument {arg} = {value}: {reason}")]
    InvalidArgument {
        /// The flag.
        arg: &'static str,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The reward config file could not be read or is invalid.
    #[error("reward config {path}: {reason}")]
    Rewards {
        /// The file (or `(default)` for the built-in table).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The devnet beacon node failed to start or serve.
    #[error("devnet beacon node: {source}")]
    Beacon {
        /// The beacon-api error.
        #[source]
        source: beacon_api::Error,
    },
    /// A sidecar failed to start or stopped with an error.
    #[error("sidecar {index}: {source}")]
    Node {
        /// Which sidecar (0-based).
        index: usize,
        /// The node's error.
        #[source]
        source: Box<NodeError>,
    },
    /// The sidecars' gossip network could not be set up.
    #[error("gossip between the sidecars: {reason}")]
    Gossip {
        /// What failed.
        reason: String,
    },
    /// A prover worker could not be built.
    #[error("prover {index}: {source}")]
    Prover {
        /// Which prover (0-based).
        index: usize,
        /// The worker's error.
        #[source]
        source: ProverError,
    },
    /// A file or the terminal could not be written, or the data directory made.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file (`-` for the output stream).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The run was interrupted before the requested number of blocks.
    #[error("interrupted after {done} of {requested} blocks")]
    Interrupted {
        /// Blocks reported.
        done: u64,
        /// Blocks requested with `--blocks`.
        requested: u64,
    },
    /// Some blocks were not fully proven, or not settled identically everywhere.
    #[error("{failed} of {blocks} blocks failed the check: {details}")]
    CheckFailed {
        /// Blocks that failed.
        failed: usize,
        /// Blocks reported.
        blocks: usize,
        /// One clause per failed block (slot and what went wrong).
        details: String,
    },
}

/// The result type of this module.
pub type DevnetResult<T> = std::result::Result<T, DevnetError>;

fn out_err(source: std::io::Error) -> DevnetError {
    DevnetError::Io { action: "writing", path: PathBuf::from("-"), source }
}

/// The resolved settings of a devnet run.
#[derive(Clone, Debug)]
pub struct DevnetOptions {
    /// Number of sidecars.
    pub sidecars: usize,
    /// Number of prover workers.
    pub provers: usize,
    /// Stop after this many reported blocks (`None`: until the shutdown signal).
    pub blocks: Option<u64>,
    /// The devnet beacon node (slot time, gas range, seed).
    pub chain: DevnetConfig,
    /// Reward table and engine parameters of every sidecar.
    pub rewards: rewards::Config,
    /// Proving threads per prover (at least 1).
    pub prover_threads: usize,
    /// Data directory of the sidecars (`sidecar-<i>` in it); `None`: a temporary directory
    /// removed at the end.
    pub data_dir: Option<PathBuf>,
    /// Listen address of the beacon node.
    pub beacon_address: SocketAddr,
    /// Seed of the provers' keys.
    pub seed: u64,
    /// How long a block may take from its head event to being settled by every sidecar before
    /// it is reported as failed.
    pub block_timeout: Duration,
}

impl DevnetOptions {
    /// Options from the command line: the reward table from `args.rewards` (or the shipped one)
    /// with its phase windows scaled to the slot time, and `data_dir` for the sidecars' data.
    ///
    /// # Errors
    /// [`DevnetError::InvalidArgument`] for zero counts or slot time, an inverted gas range;
    /// [`DevnetError::Rewards`] for an unreadable or invalid reward file.
    pub fn from_args(args: &DevnetArgs, data_dir: Option<PathBuf>) -> DevnetResult<Self> {
        let invalid = |arg, value: &dyn std::fmt::Display, reason: &str| {
            Err(DevnetError::InvalidArgument {
                arg,
                value: value.to_string(),
                reason: reason.to_owned(),
            })
        };
        if args.sidecars == 0 {
            return invalid("--sidecars", &args.sidecars, "must be at least 1");
        }
        if args.provers == 0 {
            return invalid("--provers", &args.provers, "must be at least 1");
        }
        if args.seconds_per_slot == 0 {
            return invalid("--seconds-per-slot", &args.seconds_per_slot, "must be at least 1");
        }
        if args.blocks == Some(0) {
            return invalid("--blocks", &0, "must be at least 1");
        }
        if args.min_gas > args.max_gas {
            return invalid("--min-gas", &args.min_gas, "must not exceed --max-gas");
        }
        let base = match &args.rewards {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| DevnetError::Rewards {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                rewards::Config::from_toml_str(&text).map_err(|e| DevnetError::Rewards {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
            }
            None => rewards::Config::default(),
        };
        let rewards =
            scale_phases(base, args.seconds_per_slot).map_err(|e| DevnetError::Rewards {
                path: args.rewards.clone().unwrap_or_else(|| PathBuf::from("(default)")),
                reason: format!(
                    "scaling the phase windows to {} s slots: {e}",
                    args.seconds_per_slot
                ),
            })?;
        let chain = DevnetConfig {
            seconds_per_slot: args.seconds_per_slot,
            min_gas_used: args.min_gas,
            max_gas_used: args.max_gas,
            seed: args.seed,
            ..DevnetConfig::default()
        };
        chain.validate().map_err(|e| DevnetError::InvalidArgument {
            arg: "--min-gas/--max-gas",
            value: format!("{}..{}", args.min_gas, args.max_gas),
            reason: e.to_string(),
        })?;
        let provers = usize::try_from(args.provers).unwrap_or(usize::MAX);
        let prover_threads = if args.prover_threads == 0 {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            (cores / provers).max(1)
        } else {
            args.prover_threads
        };
        let default_address = if args.beacon_only { BEACON_ONLY_ADDRESS } else { "127.0.0.1:0" };
        let beacon_address = args.beacon_address.unwrap_or_else(|| {
            default_address.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
        });
        Ok(Self {
            sidecars: usize::try_from(args.sidecars).unwrap_or(usize::MAX),
            provers,
            blocks: args.blocks,
            block_timeout: block_timeout(&rewards, args.seconds_per_slot),
            chain,
            rewards,
            prover_threads,
            data_dir,
            beacon_address,
            seed: args.seed,
        })
    }
}

/// Scales the phase windows and the clock-disparity grace of `config` from 12-second slots to
/// `seconds_per_slot` (unchanged at 12 s).
fn scale_phases(
    config: rewards::Config,
    seconds_per_slot: u64,
) -> rewards::Result<rewards::Config> {
    if seconds_per_slot == 12 {
        return Ok(config);
    }
    let scale = |ms: u64| (ms.saturating_mul(seconds_per_slot) / 12).max(1);
    let mut file = config.to_file();
    let p = &mut file.phases;
    for ms in [
        &mut p.t1_ms,
        &mut p.t2_ms,
        &mut p.t3_ms,
        &mut p.t4_ms,
        &mut p.t5_ms,
        &mut p.max_clock_disparity_ms,
    ] {
        *ms = scale(*ms);
    }
    file.validate()
}

/// A block that is not settled everywhere after every attempt's windows, plus slack, failed.
fn block_timeout(rewards: &rewards::Config, seconds_per_slot: u64) -> Duration {
    let p = rewards.engine.phases;
    let attempt = [p.t1_ms, p.t2_ms, p.t3_ms, p.t4_ms, p.t5_ms, p.max_clock_disparity_ms]
        .iter()
        .fold(0u64, |acc, ms| acc.saturating_add(*ms));
    let attempts = u64::from(rewards.engine.max_retries).saturating_add(1);
    Duration::from_millis(attempt.saturating_mul(attempts))
        + Duration::from_secs(seconds_per_slot.saturating_mul(4).max(30))
}

/// The deterministic key of devnet prover `index`.
fn prover_key(seed: u64, index: usize) -> bls::SecretKey {
    let mut ikm = [0u8; 32];
    let digest = Sha256::new()
        .chain_update(b"sidecar-devnet-prover")
        .chain_update(seed.to_le_bytes())
        .chain_update((index as u64).to_le_bytes())
        .finalize();
    ikm.copy_from_slice(&digest);
    // IKM of 32 bytes is always accepted by the key derivation.
    bls::SecretKey::from_ikm(&ikm).unwrap_or_else(|_| unreachable!("32-byte IKM"))
}

/// Latency statistics over the reported blocks, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LatencyStats {
    /// Number of samples.
    pub count: usize,
    /// Smallest.
    pub min: f64,
    /// Median (nearest rank).
    pub median: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// Largest.
    pub max: f64,
}

impl LatencyStats {
    /// Statistics of `samples`; `None` when empty.
    pub fn of(samples: impl IntoIterator<Item = Duration>) -> Option<Self> {
        let mut s: Vec<f64> = samples.into_iter().map(|d| d.as_secs_f64()).collect();
        s.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let n = s.len();
            // Nearest rank: ceil(q * n), 1-based.
            let r = ((q * n as f64).ceil() as usize).clamp(1, n);
            s.get(r - 1).copied().unwrap_or_default()
        };
        Some(Self {
            count: s.len(),
            min: *s.first()?,
            median: rank(0.5),
            p95: rank(0.95),
            max: *s.last()?,
        })
    }
}

/// One block as every sidecar saw it.
#[derive(Clone, Debug, Serialize)]
pub struct BlockReport {
    /// The block's slot.
    pub slot: u64,
    /// The block root.
    pub block_root: Root,
    /// Gas used by its payload (`None` if the block could not be read back).
    pub gas_used: Option<u64>,
    /// AIRs of the block (all sub-blocks, first attempt).
    pub airs: u32,
    /// Distinct provers selected for its rounds (every sub-block and attempt).
    pub provers: usize,
    /// The latest phase any of its sub-blocks finalised in; `None` if one never did.
    pub finalized_in: Option<Phase>,
    /// Retries used (highest attempt index over the sub-blocks).
    pub retries: u32,
    /// Head event → the last sub-block's first verified full proof (sidecar 0).
    pub full_proof_after: Option<Duration>,
    /// Head event → settled by every sidecar.
    pub settled_after: Option<Duration>,
    /// Sum of the positive ledger entries (rewards paid).
    pub paid: i64,
    /// Sum of the negative ledger entries (penalties).
    pub penalties: i64,
    /// The account paid most in this block, and its net amount.
    pub top: Option<(Account, i64)>,
    /// The settlement root each sidecar settled (`None`: not settled in time).
    pub roots: Vec<Option<Root>>,
    /// Whether each sidecar verified a full proof of every sub-block (and the AggProof).
    pub proven: Vec<bool>,
    /// Where the ledgers differ, if they do: the entries of sidecar 0's ledger that another
    /// sidecar lacks or has with another amount, and the other way round (a few, for diagnosis).
    pub divergence: Vec<String>,
}

impl BlockReport {
    /// Proven and settled by every sidecar, with one and the same settlement root.
    pub fn ok(&self) -> bool {
        self.problem().is_none()
    }

    /// What is wrong with this block, if anything.
    pub fn problem(&self) -> Option<String> {
        let unsettled: Vec<usize> =
            self.roots.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| i).collect();
        if !unsettled.is_empty() {
            return Some(format!("not settled by sidecar(s) {unsettled:?}"));
        }
        let unproven: Vec<usize> =
            self.proven.iter().enumerate().filter(|(_, p)| !**p).map(|(i, _)| i).collect();
        if !unproven.is_empty() {
            return Some(format!("no valid full proof on sidecar(s) {unproven:?}"));
        }
        let distinct: BTreeSet<Root> = self.roots.iter().flatten().copied().collect();
        if distinct.len() > 1 {
            return Some(format!("{} different settlement roots", distinct.len()));
        }
        None
    }

    /// The settlement root, if every sidecar settled the same one.
    pub fn agreed_root(&self) -> Option<Root> {
        let first = (*self.roots.first()?)?;
        self.roots.iter().all(|r| *r == Some(first)).then_some(first)
    }
}

/// What a devnet run observed.
#[derive(Clone, Debug, Serialize)]
pub struct DevnetSummary {
    /// Number of sidecars.
    pub sidecars: usize,
    /// Number of provers.
    pub provers: usize,
    /// Slot time.
    pub seconds_per_slot: u64,
    /// Blocks requested (`--blocks`).
    pub requested: Option<u64>,
    /// Whether the run was stopped by the shutdown signal.
    pub interrupted: bool,
    /// Every reported block, in the order they completed.
    pub blocks: Vec<BlockReport>,
    /// Head event → full proof, over the blocks that got one.
    pub full_proof_latency: Option<LatencyStats>,
    /// Head event → settled everywhere, over the blocks settled everywhere.
    pub settled_latency: Option<LatencyStats>,
    /// Net balance per prover over the reported blocks (sidecar 0's ledgers), highest first.
    pub earnings: Vec<(Account, i64)>,
}

impl DevnetSummary {
    /// `Ok` if the requested number of blocks was reported (when one was requested), and every
    /// block got a valid full proof on every sidecar and the same settlement root everywhere.
    ///
    /// # Errors
    /// [`DevnetError::Interrupted`] or [`DevnetError::CheckFailed`].
    pub fn check(&self) -> DevnetResult<()> {
        let failures: Vec<String> = self
            .blocks
            .iter()
            .filter_map(|b| b.problem().map(|p| format!("slot {}: {p}", b.slot)))
            .collect();
        if !failures.is_empty() {
            return Err(DevnetError::CheckFailed {
                failed: failures.len(),
                blocks: self.blocks.len(),
                details: failures.join("; "),
            });
        }
        let done = self.blocks.len() as u64;
        match self.requested {
            Some(requested) if done < requested => {
                Err(DevnetError::Interrupted { done, requested })
            }
            _ => Ok(()),
        }
    }
}

/// What the collector receives.
enum Observed {
    Head { at: Instant, slot: u64, root: Root },
    Gas { root: Root, gas: u64 },
    Event { sidecar: usize, at: Instant, event: ProvingEvent },
    Settled { sidecar: usize, at: Instant, ledger: Ledger },
}

#[derive(Default)]
struct RoundTrack {
    selected: Vec<u64>,
    airs: u32,
    finalized_at: Option<Instant>,
    finalized_in: Option<Phase>,
}

struct BlockTrack {
    slot: u64,
    head_at: Option<Instant>,
    gas: Option<u64>,
    rounds: BTreeMap<RoundKey, RoundTrack>,
    settled: Vec<Option<(Instant, Ledger)>>,
    /// `block_settled` seen per sidecar (it follows `block_proven` on the same stream).
    settled_event: Vec<bool>,
    proven: Vec<bool>,
}

impl BlockTrack {
    fn new(slot: u64, sidecars: usize) -> Self {
        Self {
            slot,
            head_at: None,
            gas: None,
            rounds: BTreeMap::new(),
            settled: vec![None; sidecars],
            settled_event: vec![false; sidecars],
            proven: vec![false; sidecars],
        }
    }

    /// Every sidecar settled it: its ledger arrived and its `block_settled` event (after which
    /// no `block_proven` can come).
    fn complete(&self) -> bool {
        self.settled.iter().all(Option::is_some) && self.settled_event.iter().all(|s| *s)
    }

    fn report(&self, root: Root) -> BlockReport {
        let head = self.head_at.unwrap_or_else(Instant::now);
        // Per sub-block: the phase and time of the attempt that finalised (the last one).
        let mut by_sub: BTreeMap<u32, &RoundTrack> = BTreeMap::new();
        let mut retries = 0;
        let mut airs = 0;
        let mut provers = BTreeSet::new();
        for (key, round) in &self.rounds {
            by_sub.insert(key.sub_block.0, round);
            retries = retries.max(key.attempt.0);
            if key.attempt.0 == 0 {
                airs += round.airs;
            }
            provers.extend(round.selected.iter().copied());
        }
        let finalized_in = if by_sub.is_empty() {
            None
        } else {
            by_sub.values().map(|r| r.finalized_in).try_fold(Phase::T1, |acc, p| Some(acc.max(p?)))
        };
        let full_proof_after = if by_sub.is_empty() {
            None
        } else {
            by_sub
                .values()
                .map(|r| r.finalized_at)
                .try_fold(head, |acc, t| Some(acc.max(t?)))
                .map(|t| t.saturating_duration_since(head))
        };
        let settled_after = self
            .settled
            .iter()
            .map(|s| s.as_ref().map(|(t, _)| *t))
            .try_fold(head, |acc, t| Some(acc.max(t?)))
            .map(|t| t.saturating_duration_since(head));
        let (mut paid, mut penalties, mut top) = (0i64, 0i64, None);
        if let Some((_, ledger)) = self.settled.iter().flatten().next() {
            let mut net: BTreeMap<Account, i64> = BTreeMap::new();
            for e in ledger.entries() {
                if e.amount.0 > 0 {
                    paid = paid.saturating_add(e.amount.0);
                } else {
                    penalties = penalties.saturating_add(e.amount.0);
                }
                let n = net.entry(e.account).or_default();
                *n = n.saturating_add(e.amount.0);
            }
            top = net.into_iter().max_by_key(|(a, n)| (*n, std::cmp::Reverse(*a)));
        }
        BlockReport {
            slot: self.slot,
            block_root: root,
            gas_used: self.gas,
            airs,
            provers: provers.len(),
            finalized_in,
            retries,
            full_proof_after,
            settled_after,
            paid,
            penalties,
            top,
            roots: self
                .settled
                .iter()
                .map(|s| s.as_ref().map(|(_, l)| l.settlement_root()))
                .collect(),
            proven: self.proven.clone(),
            divergence: self.divergence(),
        }
    }

    /// Up to a few entries by which each sidecar's ledger differs from sidecar 0's.
    fn divergence(&self) -> Vec<String> {
        let Some(Some((_, reference))) = self.settled.first() else { return Vec::new() };
        let describe = |e: &rewards::LedgerEntry| {
            format!(
                "sub-block {} attempt {} {} {} {} {:+}",
                e.sub_block.0,
                e.attempt.0,
                e.phase,
                e.rule,
                short_account(e.account),
                e.amount.0
            )
        };
        let mut out = Vec::new();
        for (i, other) in self.settled.iter().enumerate().skip(1) {
            let Some((_, other)) = other else { continue };
            if other.settlement_root() == reference.settlement_root() {
                continue;
            }
            let mine: BTreeSet<&rewards::LedgerEntry> = reference.entries().iter().collect();
            let theirs: BTreeSet<&rewards::LedgerEntry> = other.entries().iter().collect();
            for e in mine.difference(&theirs).take(3) {
                out.push(format!("on sidecar 0, not {i}: {}", describe(e)));
            }
            for e in theirs.difference(&mine).take(3) {
                out.push(format!("on sidecar {i}, not 0: {}", describe(e)));
            }
        }
        out
    }
}

/// The live table.
struct Table {
    sidecars: usize,
    provers: usize,
}

impl Table {
    fn header(&self, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
        writeln!(
            out,
            "{:>6}  {:>6}  {:>4}  {:>7}  {:>5}  {:>10}  {:>8}  {:>7}  {:<18}  {:<12}  sidecars",
            "slot",
            "Mgas",
            "AIRs",
            "provers",
            "phase",
            "full proof",
            "settled",
            "paid",
            "top earner",
            "ledger root",
        )?;
        writeln!(out, "{}", "-".repeat(112))
    }

    fn row(&self, out: &mut (dyn Write + Send), b: &BlockReport) -> std::io::Result<()> {
        let secs =
            |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()));
        let phase = match (b.finalized_in, b.retries) {
            (Some(p), 0) => p.to_string(),
            (Some(p), r) => format!("{p}/r{r}"),
            (None, _) => "none".to_owned(),
        };
        let top = b.top.map_or("-".to_owned(), |(a, n)| format!("{} {n:+}", short_account(a)));
        let settled = b.roots.iter().filter(|r| r.is_some()).count();
        let agree = match (b.agreed_root(), b.problem()) {
            (Some(_), None) => format!("{settled}/{} agree", self.sidecars),
            (_, Some(p)) => format!("FAIL: {p}"),
            (None, None) => "-".to_owned(),
        };
        let root = b.roots.iter().flatten().next().map_or("-".to_owned(), short_root);
        writeln!(
            out,
            "{:>6}  {:>6}  {:>4}  {:>7}  {:>5}  {:>10}  {:>8}  {:>7}  {:<18}  {:<12}  {}",
            b.slot,
            b.gas_used.map_or("-".to_owned(), |g| format!("{:.2}", g as f64 / 1e6)),
            b.airs,
            format!("{}/{}", b.provers, self.provers),
            phase,
            secs(b.full_proof_after),
            secs(b.settled_after),
            b.paid,
            top,
            root,
            agree
        )
    }
}

fn short_root(root: &Root) -> String {
    format!("0x{}…", hex::encode(root.get(..4).unwrap_or_default()))
}

fn short_account(account: Account) -> String {
    match account {
        Account::Prover(p) => format!("prover {}", p.0),
        Account::Validator(v) => format!("val {}", v.0),
        other => other.to_string(),
    }
}

/// Writes the summary table of a finished run.
///
/// # Errors
/// The writer failing.
pub fn write_summary(out: &mut (dyn Write + Send), s: &DevnetSummary) -> std::io::Result<()> {
    let proven = s.blocks.iter().filter(|b| b.proven.iter().all(|p| *p)).count();
    let agreed = s.blocks.iter().filter(|b| b.agreed_root().is_some()).count();
    let mut phases: BTreeMap<String, usize> = BTreeMap::new();
    for b in &s.blocks {
        *phases.entry(b.finalized_in.map_or("none".to_owned(), |p| p.to_string())).or_default() +=
            1;
    }
    let phases: Vec<String> = phases.iter().map(|(p, n)| format!("{p}: {n}")).collect();
    let stats = |l: &Option<LatencyStats>| {
        l.map_or("-".to_owned(), |l| {
            format!(
                "median {:.2} s   p95 {:.2} s   min {:.2} s   max {:.2} s   ({} blocks)",
                l.median, l.p95, l.min, l.max, l.count
            )
        })
    };
    let paid: i64 = s.blocks.iter().map(|b| b.paid).sum();
    let penalties: i64 = s.blocks.iter().map(|b| b.penalties).sum();
    writeln!(out)?;
    writeln!(out, "summary")?;
    let rows: [(&str, String); 8] = [
        ("sidecars / provers", format!("{} / {}", s.sidecars, s.provers)),
        ("slot time", format!("{} s", s.seconds_per_slot)),
        (
            "blocks",
            format!(
                "{}{}",
                s.blocks.len(),
                s.requested.map_or(String::new(), |r| format!(" of {r}"))
            ),
        ),
        ("fully proven", format!("{proven} (valid full proof verified by every sidecar)")),
        (
            "same ledger root",
            format!("{agreed} (settlement root identical on all {} sidecars)", s.sidecars),
        ),
        ("finalised in", phases.join(", ")),
        ("head -> full proof", stats(&s.full_proof_latency)),
        ("head -> settled", stats(&s.settled_latency)),
    ];
    for (k, v) in rows {
        writeln!(out, "  {k:<20} {v}")?;
    }
    writeln!(out, "  {:<20} {paid} paid, {penalties} in penalties", "rewards")?;
    if !s.earnings.is_empty() {
        writeln!(out)?;
        writeln!(out, "  {:<12} {:>10}", "prover", "net earned")?;
        for (account, amount) in s.earnings.iter().take(10) {
            writeln!(out, "  {:<12} {:>10}", short_account(*account), amount)?;
        }
        if s.earnings.len() > 10 {
            writeln!(out, "  ({} more)", s.earnings.len() - 10)?;
        }
    }
    let diverged: Vec<&BlockReport> =
        s.blocks.iter().filter(|b| !b.divergence.is_empty()).collect();
    if !diverged.is_empty() {
        writeln!(out)?;
        writeln!(out, "  ledgers that differ between sidecars (first entries):")?;
        for b in diverged {
            for line in &b.divergence {
                writeln!(out, "  slot {:>6}  {line}", b.slot)?;
            }
        }
    }
    writeln!(out)?;
    match s.check() {
        Ok(()) => writeln!(out, "result: OK"),
        Err(e) => writeln!(out, "result: FAILED: {e}"),
    }
}

/// Writes `summary` as pretty JSON to `path` (`--bench-json`).
///
/// # Errors
/// [`DevnetError::Io`] if the file cannot be written.
pub fn write_json(path: &Path, summary: &DevnetSummary) -> DevnetResult<()> {
    let io = |source| DevnetError::Io { action: "writing", path: path.to_path_buf(), source };
    let json = serde_json::to_vec_pretty(summary).map_err(|e| io(e.into()))?;
    std::fs::write(path, json).map_err(io)
}

/// The sidecars' data directory: the given one, or a temporary one removed on drop.
enum DataDir {
    Given(PathBuf),
    Temp(tempfile::TempDir),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            Self::Given(p) => p,
            Self::Temp(t) => t.path(),
        }
    }
}

/// Runs the devnet until `opts.blocks` blocks are reported or `shutdown` resolves, writing the
/// live table and then the summary to `out`. Every node is shut down cleanly (store closed)
/// before it returns.
///
/// # Errors
/// Start-up failures (beacon node, sidecars, provers, data directory) and a failing writer. A
/// block that fails is not an error here: see [`DevnetSummary::check`].
pub async fn run(
    opts: &DevnetOptions,
    out: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()>,
) -> DevnetResult<DevnetSummary> {
    let data_dir = match &opts.data_dir {
        Some(p) => DataDir::Given(p.clone()),
        None => {
            DataDir::Temp(tempfile::Builder::new().prefix("sidecar-devnet-").tempdir().map_err(
                |source| DevnetError::Io { action: "creating", path: std::env::temp_dir(), source },
            )?)
        }
    };
    let devnet =
        DevnetNode::spawn(opts.chain.clone()).map_err(|source| DevnetError::Beacon { source })?;
    let beacon =
        devnet.serve(opts.beacon_address).await.map_err(|source| DevnetError::Beacon { source })?;
    let beacon_url = beacon.url();
    let genesis = devnet.genesis();
    let ctx = crate::signing_context(&genesis);
    let keys: Vec<bls::SecretKey> = (0..opts.provers).map(|i| prover_key(opts.seed, i)).collect();
    let worker_config = WorkerConfig {
        stake: PROVER_STAKE,
        threads: opts.prover_threads,
        poll_interval: Duration::from_millis(100),
        ..WorkerConfig::default()
    };
    let genesis_provers: Vec<ProverRecord> = keys
        .iter()
        .map(|k| ProverRecord {
            pubkey: k.public_key(),
            stake: PROVER_STAKE,
            capabilities: worker_config.capabilities,
            active: true,
            reputation: 0,
        })
        .collect();

    writeln!(
        out,
        "devnet beacon node {beacon_url} · {} sidecar(s) · {} prover(s) × {} thread(s) · {} s slots · \
         {:.1}–{:.1} Mgas blocks",
        opts.sidecars,
        opts.provers,
        opts.prover_threads,
        opts.chain.seconds_per_slot,
        opts.chain.min_gas_used as f64 / 1e6,
        opts.chain.max_gas_used as f64 / 1e6,
    )
    .map_err(out_err)?;

    let mut nodes: Vec<NodeHandle> = Vec::with_capacity(opts.sidecars);
    for index in 0..opts.sidecars {
        let dir = data_dir.path().join(format!("sidecar-{index}"));
        let mut config = NodeConfig::new(vec![beacon_url.clone()], dir);
        config.rewards = opts.rewards;
        config.genesis_provers.clone_from(&genesis_provers);
        config.min_stake = 1;
        if opts.sidecars > 1 {
            let key = match NodeKey::generate() {
                Ok(key) => key,
                Err(e) => {
                    let _ = shutdown_nodes(nodes).await;
                    return Err(DevnetError::Gossip { reason: e.to_string() });
                }
            };
            config.p2p = Some(NetworkConfig::loopback(key));
        }
        match Node::spawn(config).await {
            Ok(node) => nodes.push(node),
            Err(e) => {
                let _ = shutdown_nodes(nodes).await;
                return Err(DevnetError::Node { index, source: Box::new(e) });
            }
        }
    }
    if let Err(e) = connect(&nodes).await {
        let _ = shutdown_nodes(nodes).await;
        return Err(e);
    }
    for (i, node) in nodes.iter().enumerate() {
        let p2p =
            node.p2p().map_or(String::new(), |n| format!(", gossip on {}", n.listen_address()));
        writeln!(out, "sidecar {i}: proving API and /metrics on {}{p2p}", node.url())
            .map_err(out_err)?;
    }
    writeln!(out, "data: {}", data_dir.path().display()).map_err(out_err)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = tokio::task::JoinSet::new();
    for (index, key) in keys.into_iter().enumerate() {
        let node = &nodes[index % nodes.len()];
        let built = BeaconClient::new([node.url()])
            .and_then(|s| Ok((ProvingClient::new(s), BeaconClient::new([beacon_url.clone()])?)))
            .map_err(|e| ProverError::Api { what: "building clients", source: e })
            .and_then(|(proving, beacon)| {
                ProverWorker::new(key, proving, beacon, ctx, worker_config.clone())
            });
        let worker = match built {
            Ok(w) => w,
            Err(source) => {
                let _ = stop_tx.send(true);
                let _ = shutdown_nodes(nodes).await;
                return Err(DevnetError::Prover { index, source });
            }
        };
        let mut stop = stop_rx.clone();
        workers.spawn(async move {
            let until = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = worker.run(until).await {
                warn!(prover = index, error = %e, "prover stopped");
            }
        });
    }

    // Everything is up: blocks from here on are reported.
    let (tx, rx) = mpsc::unbounded_channel();
    let mut forwarders = Vec::new();
    forwarders.push(tokio::spawn(forward_heads(&devnet, beacon_url.clone(), tx.clone())));
    for (sidecar, node) in nodes.iter().enumerate() {
        forwarders.push(tokio::spawn(forward_node(sidecar, node, tx.clone())));
    }
    drop(tx);
    match opts.blocks {
        Some(n) => writeln!(out, "proving the next {n} blocks; Ctrl-C to stop"),
        None => writeln!(out, "proving every block; Ctrl-C to stop"),
    }
    .map_err(out_err)?;
    writeln!(out).map_err(out_err)?;

    let table = Table { sidecars: opts.sidecars, provers: opts.provers };
    let collected = collect(opts, &table, out, rx, shutdown).await;

    // Clean shutdown: provers first (no more submissions), then the nodes (queues drained,
    // stores closed), then the beacon node.
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        workers.abort_all();
    }
    for f in forwarders {
        f.abort();
    }
    let node_result = shutdown_nodes(nodes).await;
    if let Err(e) = beacon.shutdown().await {
        debug!(error = %e, "beacon server shutdown");
    }
    drop(devnet);
    let (blocks, interrupted) = collected?;
    node_result?;

    let mut balances = Balances::new();
    for ledger in blocks.iter().filter_map(|(_, l)| l.as_ref()) {
        if let Err(e) = balances.apply(ledger) {
            warn!(error = %e, "balance overflow in the summary");
        }
    }
    let reports: Vec<BlockReport> = blocks.into_iter().map(|(b, _)| b).collect();
    let mut earnings: Vec<(Account, i64)> = balances
        .iter()
        .filter(|(a, _)| matches!(a, Account::Prover(_)))
        .map(|(a, n)| (a, n.0))
        .collect();
    earnings.sort_by_key(|(a, n)| (std::cmp::Reverse(*n), *a));
    let summary = DevnetSummary {
        sidecars: opts.sidecars,
        provers: opts.provers,
        seconds_per_slot: opts.chain.seconds_per_slot,
        requested: opts.blocks,
        interrupted,
        full_proof_latency: LatencyStats::of(reports.iter().filter_map(|b| b.full_proof_after)),
        settled_latency: LatencyStats::of(
            reports
                .iter()
                .filter(|b| b.roots.iter().all(Option::is_some))
                .filter_map(|b| b.settled_after),
        ),
        blocks: reports,
        earnings,
    };
    write_summary(out, &summary).map_err(out_err)?;
    Ok(summary)
}

/// How long the sidecars may take to find each other on gossip.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects every sidecar to every other one (each dials the earlier ones) and waits until each
/// has them as peers and in its mesh of every topic (gossipsub's mesh holds at most a handful).
async fn connect(nodes: &[NodeHandle]) -> DevnetResult<()> {
    let gossip = |e: crate::Error| DevnetError::Gossip { reason: e.to_string() };
    let networks: Vec<&NetworkHandle> = nodes.iter().filter_map(NodeHandle::p2p).collect();
    if networks.len() < 2 {
        return Ok(());
    }
    for (i, network) in networks.iter().enumerate() {
        for earlier in networks.iter().take(i) {
            network.dial(earlier.listen_address().clone()).await.map_err(gossip)?;
        }
    }
    let others = networks.len() - 1;
    let wanted_mesh = others.min(4);
    let ready = async {
        loop {
            let mut ready = true;
            for network in &networks {
                ready &= network.peer_count() >= others;
                for topic in GOSSIP_TOPICS {
                    ready &= network.mesh_peers(topic).await.map_err(gossip)? >= wanted_mesh;
                }
            }
            if ready {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, ready).await.map_err(|_| DevnetError::Gossip {
        reason: format!("the sidecars did not form a gossip mesh within {CONNECT_TIMEOUT:?}"),
    })?
}

/// Shuts every node down cleanly; the first error is returned after all were tried.
async fn shutdown_nodes(nodes: Vec<NodeHandle>) -> DevnetResult<()> {
    let mut first = Ok(());
    for (index, node) in nodes.into_iter().enumerate() {
        if let Err(e) = node.shutdown().await {
            warn!(sidecar = index, error = %e, "sidecar shutdown failed");
            if first.is_ok() {
                first = Err(DevnetError::Node { index, source: Box::new(e) });
            }
        }
    }
    first
}

/// Forwards the devnet's head events (with the block's gas, read back over HTTP).
fn forward_heads(
    devnet: &DevnetNode,
    beacon_url: String,
    tx: mpsc::UnboundedSender<Observed>,
) -> impl Future<Output = ()> + Send + 'static {
    let mut events = devnet.subscribe();
    async move {
        let client = BeaconClient::new([beacon_url]).ok();
        loop {
            match events.recv().await {
                Ok(BeaconEvent::Head(head)) => {
                    let root = head.block;
                    if tx
                        .send(Observed::Head { at: Instant::now(), slot: head.slot.0, root })
                        .is_err()
                    {
                        return;
                    }
                    if let Some(client) = client.clone() {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            if let Ok(block) = client.block(BlockId::Root(root)).await {
                                let gas = block
                                    .data
                                    .message
                                    .body
                                    .execution_payload
                                    .as_ref()
                                    .map_or(0, |p| p.gas_used);
                                let _ = tx.send(Observed::Gas { root, gas });
                            }
                        });
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    warn!(missed = n, "devnet events lagged");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// Forwards one sidecar's proving events and settled ledgers.
fn forward_node(
    sidecar: usize,
    node: &NodeHandle,
    tx: mpsc::UnboundedSender<Observed>,
) -> impl Future<Output = ()> + Send + 'static {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = node.subscribe();
    let mut settled = node.subscribe_settled();
    async move {
        loop {
            let observed = tokio::select! {
                biased;
                e = events.recv() => match e {
                    Ok(event) => Observed::Event { sidecar, at: Instant::now(), event },
                    Err(RecvError::Lagged(n)) => {
                        warn!(sidecar, missed = n, "sidecar events lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
                l = settled.recv() => match l {
                    Ok(ledger) => Observed::Settled { sidecar, at: Instant::now(), ledger },
                    Err(RecvError::Lagged(n)) => {
                        warn!(sidecar, missed = n, "settled ledgers lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            if tx.send(observed).is_err() {
                return;
            }
        }
    }
}

/// Collects observations into per-block reports, writing a row per completed block, until
/// enough blocks are reported or `shutdown` resolves. Returns the reports with sidecar 0's
/// ledger, and whether it was interrupted.
async fn collect(
    opts: &DevnetOptions,
    table: &Table,
    out: &mut (dyn Write + Send),
    mut rx: mpsc::UnboundedReceiver<Observed>,
    shutdown: impl Future<Output = ()>,
) -> DevnetResult<(Vec<(BlockReport, Option<Ledger>)>, bool)> {
    tokio::pin!(shutdown);
    table.header(out).map_err(out_err)?;
    let mut tracked: HashMap<Root, BlockTrack> = HashMap::new();
    let mut reported: Vec<(BlockReport, Option<Ledger>)> = Vec::new();
    let mut done: BTreeSet<Root> = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let enough = |n: usize| opts.blocks.is_some_and(|b| n as u64 >= b);
    loop {
        let observed = tokio::select! {
            () = &mut shutdown => return Ok((reported, true)),
            o = rx.recv() => match o {
                Some(o) => Some(o),
                None => return Ok((reported, false)),
            },
            _ = tick.tick() => None,
        };
        let mut complete: Vec<Root> = Vec::new();
        match observed {
            Some(Observed::Head { at, slot, root }) => {
                if !done.contains(&root) {
                    let t =
                        tracked.entry(root).or_insert_with(|| BlockTrack::new(slot, opts.sidecars));
                    t.head_at.get_or_insert(at);
                }
            }
            Some(Observed::Gas { root, gas }) => {
                if let Some(t) = tracked.get_mut(&root) {
                    t.gas = Some(gas);
                }
            }
            Some(Observed::Event { sidecar, at, event }) => {
                if let Some(root) = event_root(&event)
                    && let Some(t) = tracked.get_mut(&root)
                {
                    match event {
                        ProvingEvent::RoundStarted(e) if sidecar == 0 => {
                            let r = t.rounds.entry(e.round).or_default();
                            r.selected = e.selected.iter().map(|p| p.0).collect();
                            r.airs = e.num_airs;
                        }
                        ProvingEvent::RoundFinalized(e) if sidecar == 0 => {
                            let r = t.rounds.entry(e.round).or_default();
                            r.finalized_at.get_or_insert(at);
                            r.finalized_in.get_or_insert(e.phase);
                        }
                        ProvingEvent::RoundClosed(e) if sidecar == 0 => {
                            let r = t.rounds.entry(e.round).or_default();
                            if r.finalized_in.is_none() {
                                r.finalized_in = e.finalized_in;
                            }
                        }
                        ProvingEvent::BlockProven(_) => {
                            if let Some(p) = t.proven.get_mut(sidecar) {
                                *p = true;
                            }
                        }
                        ProvingEvent::BlockSettled(_) => {
                            if let Some(s) = t.settled_event.get_mut(sidecar) {
                                *s = true;
                            }
                            if t.complete() {
                                complete.push(root);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Some(Observed::Settled { sidecar, at, ledger }) => {
                let root = ledger.block_root;
                if let Some(t) = tracked.get_mut(&root) {
                    if let Some(s) = t.settled.get_mut(sidecar) {
                        s.get_or_insert((at, ledger));
                    }
                    if t.complete() {
                        complete.push(root);
                    }
                }
            }
            None => {
                let now = Instant::now();
                for (root, t) in &tracked {
                    if t.head_at.is_some_and(|h| now.duration_since(h) > opts.block_timeout) {
                        complete.push(*root);
                    }
                }
                complete.sort_by_key(|r| tracked.get(r).map(|t| t.slot));
            }
        }
        for root in complete {
            let Some(t) = tracked.remove(&root) else { continue };
            done.insert(root);
            if t.head_at.is_none() {
                continue;
            }
            let report = t.report(root);
            table.row(out, &report).map_err(out_err)?;
            out.flush().map_err(out_err)?;
            let ledger = t.settled.into_iter().flatten().next().map(|(_, l)| l);
            reported.push((report, ledger));
            if enough(reported.len()) {
                return Ok((reported, false));
            }
        }
    }
}

fn event_root(event: &ProvingEvent) -> Option<Root> {
    Some(match event {
        ProvingEvent::RoundStarted(e) => e.round.block_root,
        ProvingEvent::PhaseChanged(e) => e.round.block_root,
        ProvingEvent::RoundFinalized(e) => e.round.block_root,
        ProvingEvent::RoundClosed(e) => e.round.block_root,
        ProvingEvent::BlockProven(e) | ProvingEvent::BlockSettled(e) => e.block_root,
        _ => return None,
    })
}

/// `--beacon-only`: serves the devnet beacon node on `opts.beacon_address`, writes its URL and a
/// line per head, until `opts.blocks` heads or `shutdown`.
///
/// # Errors
/// The beacon node failing to start, or the writer failing.
pub async fn serve_beacon(
    opts: &DevnetOptions,
    out: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()>,
) -> DevnetResult<()> {
    let devnet =
        DevnetNode::spawn(opts.chain.clone()).map_err(|source| DevnetError::Beacon { source })?;
    let mut events = devnet.subscribe();
    let beacon =
        devnet.serve(opts.beacon_address).await.map_err(|source| DevnetError::Beacon { source })?;
    let genesis = devnet.genesis();
    writeln!(
        out,
        "devnet beacon node {} · genesis {} · {} s slots · {:.1}–{:.1} Mgas blocks; Ctrl-C to stop",
        beacon.url(),
        genesis.genesis_time,
        opts.chain.seconds_per_slot,
        opts.chain.min_gas_used as f64 / 1e6,
        opts.chain.max_gas_used as f64 / 1e6,
    )
    .map_err(out_err)?;
    out.flush().map_err(out_err)?;
    tokio::pin!(shutdown);
    let mut heads = 0u64;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            e = events.recv() => match e {
                Ok(BeaconEvent::Head(head)) => {
                    heads += 1;
                    writeln!(out, "head slot {} block {}", head.slot, head.block).map_err(out_err)?;
                    out.flush().map_err(out_err)?;
                    if opts.blocks.is_some_and(|n| heads >= n) {
                        break;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    beacon.shutdown().await.map_err(|source| DevnetError::Beacon { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_stats_use_nearest_rank() {
        let s = LatencyStats::of((1..=20).map(Duration::from_secs)).unwrap();
        assert_eq!((s.count, s.min, s.median, s.p95, s.max), (20, 1.0, 10.0, 19.0, 20.0));
        assert!(LatencyStats::of([]).is_none());
        let one = LatencyStats::of([Duration::from_millis(1500)]).unwrap();
        assert_eq!((one.median, one.p95), (1.5, 1.5));
    }

    #[test]
    fn phases_scale_with_the_slot_time() {
        let base = rewards::Config::default();
        assert_eq!(scale_phases(base, 12).unwrap(), base);
        let fast = scale_phases(base, 2).unwrap().to_file();
        assert_eq!(fast.phases.t1_ms, 666);
        assert_eq!(fast.phases.max_clock_disparity_ms, 83);
        let slow = scale_phases(base, 24).unwrap().to_file();
        assert_eq!((slow.phases.t5_ms, slow.phases.max_clock_disparity_ms), (8000, 1000));
    }

    #[test]
    fn prover_keys_are_deterministic_and_distinct() {
        assert_eq!(prover_key(0, 1).public_key(), prover_key(0, 1).public_key());
        assert_ne!(prover_key(0, 1).public_key(), prover_key(0, 2).public_key());
        assert_ne!(prover_key(0, 1).public_key(), prover_key(1, 1).public_key());
    }

    fn report(roots: Vec<Option<Root>>, proven: Vec<bool>) -> BlockReport {
        BlockReport {
            slot: 7,
            block_root: Root::ZERO,
            gas_used: Some(1),
            airs: 1,
            provers: 2,
            finalized_in: Some(Phase::T3),
            retries: 0,
            full_proof_after: Some(Duration::from_secs(1)),
            settled_after: Some(Duration::from_secs(2)),
            paid: 10,
            penalties: -1,
            top: None,
            roots,
            proven,
            divergence: Vec::new(),
        }
    }

    #[test]
    fn a_block_fails_on_a_missing_proof_a_missing_ledger_or_a_root_mismatch() {
        let a = Some(Root::repeat_byte(1));
        let b = Some(Root::repeat_byte(2));
        assert!(report(vec![a, a], vec![true, true]).ok());
        assert!(report(vec![a, b], vec![true, true]).problem().unwrap().contains("different"));
        assert!(report(vec![a, None], vec![true, true]).problem().unwrap().contains("[1]"));
        assert!(report(vec![a, a], vec![true, false]).problem().unwrap().contains("full proof"));
        let summary = |blocks, requested| DevnetSummary {
            sidecars: 2,
            provers: 2,
            seconds_per_slot: 2,
            requested,
            interrupted: false,
            blocks,
            full_proof_latency: None,
            settled_latency: None,
            earnings: Vec::new(),
        };
        assert!(summary(vec![report(vec![a, a], vec![true, true])], Some(1)).check().is_ok());
        let short = summary(vec![report(vec![a, a], vec![true, true])], Some(2)).check();
        assert!(matches!(short, Err(DevnetError::Interrupted { done: 1, requested: 2 })));
        let bad = summary(vec![report(vec![a, b], vec![true, true])], Some(1)).check();
        assert!(bad.unwrap_err().to_string().contains("slot 7"));
    }
}
