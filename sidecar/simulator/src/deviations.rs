//! `--deviations`: does any modelled behaviour beat honest play under a reward table?
//!
//! Every behaviour other than `honest` is tried as a *unilateral* deviation. For each seed the
//! scenario's population is made honest (every prover keeps its stake, latencies, join and
//! exit; only its behaviour changes), and a share of the provers registered at genesis (at least
//! one; chosen by a digest of seed and index, the same provers for every deviation of a seed)
//! switches to the deviation. One more run per seed, with nobody deviating, gives the table's
//! issuance. All runs are the ordinary simulator ([`crate::simulate`]), so they are
//! deterministic by seed, and they run on all cores (each run sequential, as in `--sweep`).
//!
//! Per run, a prover's *payoff* is its ledger total over its active blocks ("reward per block")
//! and its total per AIR it proved ("reward per unit of work"; work = AIRs proved: its assigned
//! ones, every AIR of the sub-block when it proves alone, those it took over or completed while
//! aggregating). The payoff unit is the prover, except that a sybil operator's keys count as
//! one unit (its keys' totals summed, divided by its keys' active blocks: comparable with one
//! honest key of the same stake), and that for `censoring` every prover's payoff (deviators' and
//! honest provers') includes the rewards of the validator it operates (the validator of its own
//! index). The deviators' mean and the honest provers' mean are compared seed by seed: the
//! difference's mean and 95% t-interval over seeds ([`crate::MeanCi`]) decide: a deviation
//! *beats honest play* when its whole interval lies above zero.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use indicatif::ProgressBar;
use serde::Serialize;

use super::error::{SimError, SimResult};
use super::report::{AccountKind, LedgerRow, RunReport};
use super::scenario::{Behaviour, Scenario};
use super::sim::{SimOptions, simulate};
use super::stats::MeanCi;

/// Most seeds an analysis may run.
pub const MAX_DEVIATION_SEEDS: u64 = 1_000;

/// Settings of a deviation analysis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviationOptions {
    /// Runs per deviation, with seeds `scenario.seed`, `scenario.seed + 1`, ... (at least 2, for
    /// a confidence interval).
    pub seeds: u64,
    /// Share of the provers registered at genesis that deviate, in `(0, 0.5]` (at least one
    /// prover; for `sybil` rounded down to whole operators, at least one).
    pub share: f64,
}

impl Default for DeviationOptions {
    fn default() -> Self {
        Self { seeds: 5, share: 0.05 }
    }
}

impl DeviationOptions {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`SimError::ScenarioInvalid`] naming the flag.
    pub fn validate(&self) -> SimResult<()> {
        if !(2..=MAX_DEVIATION_SEEDS).contains(&self.seeds) {
            return Err(SimError::invalid(
                "--seeds",
                format!(
                    "must be in 2..={MAX_DEVIATION_SEEDS} (a confidence interval needs two runs)"
                ),
            ));
        }
        if !(self.share > 0.0 && self.share <= 0.5) {
            return Err(SimError::invalid("--deviation-share", "must be in (0, 0.5]"));
        }
        Ok(())
    }
}

/// Who receives the table's issuance, by the rule that pays it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Recipient {
    /// Every selected prover of a round finalised by a full proof in T1 or T2
    /// (`REWARD_FULL_PROOF_PROVER_T*`).
    SelectedProvers,
    /// Authors of counted and reused partial proofs (`REWARD_T2_PROVER`,
    /// `REWARD_PROVER_REUSED_T*`).
    PartialAuthors,
    /// Submitters of valid full proofs in T3–T5 (`REWARD_PROVER_T*`, `REWARD_PROVER_REUSING_T*`).
    Aggregators,
    /// The sender of a full proof in T1 or T2 (`REWARD_FULL_PROOF_SENDER_T*`).
    Senders,
    /// The aggregator group of a block split into sub-blocks (`REWARD_AGG_PROOF_PROVER`).
    AggProofGroup,
    /// Including validators (every `*_VALIDATOR*` rule).
    Validators,
    /// Penalties (every `PENALTY_*` rule; negative).
    Penalties,
    /// A rule this classification does not know.
    Other,
}

impl Recipient {
    /// Every recipient, in report order.
    pub const ALL: [Recipient; 8] = [
        Self::SelectedProvers,
        Self::PartialAuthors,
        Self::Aggregators,
        Self::Senders,
        Self::AggProofGroup,
        Self::Validators,
        Self::Penalties,
        Self::Other,
    ];

    /// The recipient of an entry paid under the spec constant `rule`.
    pub fn of_rule(rule: &str) -> Self {
        if rule.starts_with("PENALTY_") {
            Self::Penalties
        } else if rule.contains("VALIDATOR") {
            Self::Validators
        } else if rule.starts_with("REWARD_FULL_PROOF_SENDER") {
            Self::Senders
        } else if rule.starts_with("REWARD_FULL_PROOF_PROVER") {
            Self::SelectedProvers
        } else if rule == "REWARD_T2_PROVER" || rule.starts_with("REWARD_PROVER_REUSED") {
            Self::PartialAuthors
        } else if rule.starts_with("REWARD_PROVER_REUSING") || rule.starts_with("REWARD_PROVER_T") {
            Self::Aggregators
        } else if rule == "REWARD_AGG_PROOF_PROVER" {
            Self::AggProofGroup
        } else {
            Self::Other
        }
    }

    /// Label for tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Self::SelectedProvers => "selected provers (T1/T2 full proof)",
            Self::PartialAuthors => "partial-proof authors",
            Self::Aggregators => "aggregators (T3-T5 full proofs)",
            Self::Senders => "full-proof senders (T1/T2)",
            Self::AggProofGroup => "AggProof group",
            Self::Validators => "validators",
            Self::Penalties => "penalties",
            Self::Other => "other",
        }
    }

    fn column(self) -> usize {
        self as usize
    }
}

/// The issuance of the table in the runs without deviators, averaged over seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Issuance {
    /// Net issuance (every entry, penalties included) per block.
    pub per_block: f64,
    /// Net issuance per million gas.
    pub per_mgas: f64,
    /// Per recipient (in [`Recipient::ALL`] order): amount per block.
    pub split_per_block: Vec<(Recipient, f64)>,
    /// Mean reward per block of an honest prover.
    pub honest_per_block: f64,
}

/// One seed's outcome of one deviation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeedOutcome {
    /// The seed of the run.
    pub seed: u64,
    /// Mean payoff per active block over the deviators' units.
    pub deviator_mean: f64,
    /// Mean payoff per active block over the honest provers.
    pub honest_mean: f64,
    /// The deviators' total payoff per AIR they proved (`None`: they proved none).
    pub deviator_per_air: Option<f64>,
    /// The honest provers' total payoff per AIR they proved (`None`: they proved none).
    pub honest_per_air: Option<f64>,
    /// AIRs proved per unit and active block, deviators.
    pub deviator_airs_per_block: f64,
    /// AIRs proved per prover and active block, honest provers.
    pub honest_airs_per_block: f64,
    /// The deviators' total payoff (sign matters when they prove nothing).
    pub deviator_total: i64,
    /// Net issuance of the run per block.
    pub issuance_per_block: f64,
}

/// The verdict on one deviation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviationResult {
    /// The deviation.
    pub behaviour: Behaviour,
    /// Provers (keys) that deviate in each run.
    pub deviators: u64,
    /// Payoff units among them (sybil operators; otherwise equal to `deviators`).
    pub units: u64,
    /// Mean over seeds of [`SeedOutcome::deviator_mean`].
    pub deviator_mean: f64,
    /// Mean over seeds of [`SeedOutcome::honest_mean`].
    pub honest_mean: f64,
    /// Per-seed `deviator_mean − honest_mean`: mean and 95% interval.
    pub difference: MeanCi,
    /// The whole interval of `difference` lies above zero.
    pub beats_honest: bool,
    /// Per-seed difference of payoff per AIR (deviators − honest), if the deviators proved
    /// AIRs in every run.
    pub per_air_difference: Option<MeanCi>,
    /// Earns more per unit of work than honest play: the interval of `per_air_difference` lies
    /// above zero, or the deviators proved nothing and still earned a positive total.
    pub more_per_work: bool,
    /// Every seed's outcome.
    pub per_seed: Vec<SeedOutcome>,
}

/// The whole analysis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviationAnalysis {
    /// Scenario name.
    pub scenario: String,
    /// The seeds run.
    pub seeds: Vec<u64>,
    /// Counted blocks per run.
    pub blocks: u64,
    /// Provers ever registered.
    pub provers: u64,
    /// The deviating share asked for.
    pub share: f64,
    /// Keys per sybil operator.
    pub sybil_keys: u64,
    /// Whether the scenario models inclusion records (without, `censoring` is honest).
    pub inclusion_modelled: bool,
    /// One result per deviation, in [`Behaviour::ALL`] order.
    pub deviations: Vec<DeviationResult>,
    /// The table's issuance with nobody deviating.
    pub issuance: Issuance,
}

/// What the analysis keeps of one run.
struct RunOutcome {
    report: RunReport,
    /// Ledger sums per recipient.
    split: [i64; Recipient::ALL.len()],
    /// Validator totals by index, for validators `0..provers`.
    validators: Vec<i64>,
}

/// The provers of a seed that deviate, most-deviating-first: the provers registered at
/// genesis, ordered by a digest of seed and index.
fn deviator_order(scenario: &Scenario, seed: u64) -> Vec<usize> {
    use sha2::{Digest, Sha256};
    let mut keyed: Vec<([u8; 32], usize)> = scenario
        .provers
        .iter()
        .enumerate()
        .filter(|(_, p)| p.join_at_block == 0)
        .map(|(i, _)| {
            let mut h = Sha256::new();
            h.update(b"sidecar-sim-deviators");
            h.update(seed.to_le_bytes());
            h.update((i as u64).to_le_bytes());
            (h.finalize().into(), i)
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// How many provers deviate to `b` out of `pool` at `share`.
fn deviator_count(b: Behaviour, pool: usize, share: f64, sybil_keys: u64) -> usize {
    let n = ((share * pool as f64).round() as usize).clamp(1, pool.max(1));
    if b == Behaviour::Sybil {
        let k = usize::try_from(sybil_keys).unwrap_or(usize::MAX).clamp(1, pool.max(1));
        (n / k).max(1) * k
    } else {
        n
    }
}

/// The scenario of one run: everybody honest, then the deviators switched to `b`.
fn run_scenario(base: &Scenario, seed: u64, deviators: &[usize], b: Behaviour) -> Scenario {
    let mut s = base.clone();
    s.seed = seed;
    for p in &mut s.provers {
        p.behaviour = Behaviour::Honest;
    }
    for &i in deviators {
        if let Some(p) = s.provers.get_mut(i) {
            p.behaviour = b;
        }
    }
    s
}

fn run_one(
    scenario: &Scenario,
    config: &rewards::Config,
    bar: &ProgressBar,
) -> SimResult<RunOutcome> {
    let n = scenario.provers.len();
    let mut split = [0i64; Recipient::ALL.len()];
    let mut validators = vec![0i64; n];
    let fold = |rows: &[LedgerRow], split: &mut [i64], validators: &mut [i64]| {
        for r in rows {
            if let Some(s) = split.get_mut(Recipient::of_rule(r.rule).column()) {
                *s += r.amount;
            }
            if r.account_kind == AccountKind::Validator
                && let Some(v) = usize::try_from(r.account).ok().and_then(|i| validators.get_mut(i))
            {
                *v += r.amount;
            }
        }
    };
    let report = simulate(scenario, config, &SimOptions::default(), |rows| {
        fold(rows, &mut split, &mut validators);
        bar.inc(1);
        Ok(())
    })?;
    Ok(RunOutcome { report, split, validators })
}

/// A unit's totals: payoff, active blocks, AIRs proved.
#[derive(Clone, Copy, Default)]
struct Unit {
    payoff: i64,
    active_blocks: u64,
    airs: u64,
}

impl Unit {
    fn per_block(&self) -> f64 {
        if self.active_blocks == 0 { 0.0 } else { self.payoff as f64 / self.active_blocks as f64 }
    }
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0u64), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// Total payoff per AIR over some units (`None` if they proved nothing).
fn per_air(units: &[Unit]) -> Option<f64> {
    let airs: u64 = units.iter().map(|u| u.airs).sum();
    let payoff: i64 = units.iter().map(|u| u.payoff).sum();
    (airs > 0).then(|| payoff as f64 / airs as f64)
}

fn airs_per_block(units: &[Unit]) -> f64 {
    mean(
        units.iter().map(|u| {
            if u.active_blocks == 0 { 0.0 } else { u.airs as f64 / u.active_blocks as f64 }
        }),
    )
}

/// One seed's outcome of deviation `b` from its run.
fn seed_outcome(b: Behaviour, scenario: &Scenario, run: &RunOutcome) -> SeedOutcome {
    let with_validator = b == Behaviour::Censoring;
    let unit_of = |i: usize| -> Unit {
        let Some(p) = run.report.provers.get(i) else { return Unit::default() };
        let validator =
            if with_validator { run.validators.get(i).copied().unwrap_or(0) } else { 0 };
        Unit {
            payoff: p.total + validator,
            active_blocks: p.active_blocks,
            airs: run.report.airs_proved.get(i).copied().unwrap_or(0),
        }
    };
    let honest: Vec<Unit> = (0..run.report.provers.len())
        .filter(|&i| run.report.provers[i].behaviour == Behaviour::Honest)
        .map(unit_of)
        .filter(|u| u.active_blocks > 0)
        .collect();
    let deviators: Vec<Unit> = if b == Behaviour::Sybil {
        scenario
            .sybil_operators()
            .iter()
            .map(|keys| {
                keys.iter().filter_map(|k| usize::try_from(k.0).ok()).map(unit_of).fold(
                    Unit::default(),
                    |a, u| Unit {
                        payoff: a.payoff + u.payoff,
                        active_blocks: a.active_blocks + u.active_blocks,
                        airs: a.airs + u.airs,
                    },
                )
            })
            .collect()
    } else {
        (0..run.report.provers.len())
            .filter(|&i| run.report.provers[i].behaviour == b)
            .map(unit_of)
            .collect()
    };
    let deviators: Vec<Unit> = deviators.into_iter().filter(|u| u.active_blocks > 0).collect();
    let net: i64 = run.split.iter().sum();
    SeedOutcome {
        seed: scenario.seed,
        deviator_mean: mean(deviators.iter().map(Unit::per_block)),
        honest_mean: mean(honest.iter().map(Unit::per_block)),
        deviator_per_air: per_air(&deviators),
        honest_per_air: per_air(&honest),
        deviator_airs_per_block: airs_per_block(&deviators),
        honest_airs_per_block: airs_per_block(&honest),
        deviator_total: deviators.iter().map(|u| u.payoff).sum(),
        issuance_per_block: net as f64 / run.report.blocks.max(1) as f64,
    }
}

fn result_of(
    b: Behaviour,
    deviators: u64,
    units: u64,
    per_seed: Vec<SeedOutcome>,
) -> SimResult<DeviationResult> {
    let diffs: Vec<f64> = per_seed.iter().map(|s| s.deviator_mean - s.honest_mean).collect();
    let difference = MeanCi::of(&diffs).ok_or_else(|| {
        SimError::invalid("--seeds", format!("no confidence interval for {b}: too few runs"))
    })?;
    let per_air_diffs: Option<Vec<f64>> =
        per_seed.iter().map(|s| Some(s.deviator_per_air? - s.honest_per_air?)).collect();
    let per_air_difference = per_air_diffs.as_deref().and_then(MeanCi::of);
    let no_work = per_seed.iter().all(|s| s.deviator_per_air.is_none());
    let more_per_work = match per_air_difference {
        Some(ci) => ci.above_zero(),
        None => no_work && per_seed.iter().map(|s| s.deviator_total).sum::<i64>() > 0,
    };
    Ok(DeviationResult {
        behaviour: b,
        deviators,
        units,
        deviator_mean: mean(per_seed.iter().map(|s| s.deviator_mean)),
        honest_mean: mean(per_seed.iter().map(|s| s.honest_mean)),
        beats_honest: difference.above_zero(),
        difference,
        per_air_difference,
        more_per_work,
        per_seed,
    })
}

/// Runs the deviation analysis of `scenario` under `config`: one run per deviation and seed
/// plus one without deviators per seed, on all cores.
///
/// # Errors
/// Invalid options ([`DeviationOptions::validate`]) or a simulation error.
pub fn analyse_deviations(
    scenario: &Scenario,
    config: &rewards::Config,
    opts: &DeviationOptions,
    bar: &ProgressBar,
) -> SimResult<DeviationAnalysis> {
    opts.validate()?;
    let seeds: Vec<u64> = (0..opts.seeds).map(|i| scenario.seed.wrapping_add(i)).collect();
    let deviations: Vec<Behaviour> =
        Behaviour::ALL.into_iter().filter(|b| *b != Behaviour::Honest).collect();
    // Jobs: per seed, the run without deviators (`None`) and one per deviation.
    let mut jobs: Vec<(usize, Option<Behaviour>, Scenario)> = Vec::new();
    let mut counts = Vec::with_capacity(deviations.len());
    for (si, &seed) in seeds.iter().enumerate() {
        let order = deviator_order(scenario, seed);
        jobs.push((si, None, run_scenario(scenario, seed, &[], Behaviour::Honest)));
        for &b in &deviations {
            let n = deviator_count(b, order.len(), opts.share, scenario.sybil_keys);
            let chosen = order.get(..n).unwrap_or(&order);
            if si == 0 {
                counts.push(chosen.len() as u64);
            }
            jobs.push((si, Some(b), run_scenario(scenario, seed, chosen, b)));
        }
    }
    if counts.is_empty() || counts.contains(&0) {
        return Err(SimError::invalid("provers", "no prover is registered at genesis to deviate"));
    }
    bar.set_length(scenario.blocks * jobs.len() as u64);
    let results: Vec<Mutex<Option<SimResult<RunOutcome>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let (Some((_, _, sc)), Some(slot)) = (jobs.get(i), results.get(i)) else {
                        break;
                    };
                    let out = run_one(sc, config, bar);
                    let failed = out.is_err();
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(out);
                    if failed {
                        // Stop taking jobs: the first error (in job order) is reported.
                        next.store(jobs.len(), Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    let mut outcomes: Vec<RunOutcome> = Vec::with_capacity(jobs.len());
    for slot in results {
        match slot.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(r) => outcomes.push(r?),
            None => {
                return Err(SimError::Protocol {
                    block: 0,
                    reason: "a deviation run did not finish".to_owned(),
                });
            }
        }
    }
    // Baseline issuance.
    let mut split_sum = [0f64; Recipient::ALL.len()];
    let (mut per_block, mut per_mgas, mut honest_per_block) = (0.0, 0.0, 0.0);
    let mut per_seed: Vec<Vec<SeedOutcome>> = vec![Vec::new(); deviations.len()];
    for ((_, b, sc), run) in jobs.iter().zip(&outcomes) {
        match b {
            None => {
                let blocks = run.report.blocks.max(1) as f64;
                let gas: u64 = run.report.block_log.iter().map(|r| r.gas).sum();
                let net: i64 = run.split.iter().sum();
                per_block += net as f64 / blocks;
                per_mgas += if gas == 0 { 0.0 } else { net as f64 / (gas as f64 / 1e6) };
                for (acc, v) in split_sum.iter_mut().zip(run.split) {
                    *acc += v as f64 / blocks;
                }
                honest_per_block += seed_outcome(Behaviour::Honest, sc, run).honest_mean;
            }
            Some(b) => {
                if let Some(list) =
                    deviations.iter().position(|d| d == b).and_then(|i| per_seed.get_mut(i))
                {
                    list.push(seed_outcome(*b, sc, run));
                }
            }
        }
    }
    let n = seeds.len() as f64;
    let issuance = Issuance {
        per_block: per_block / n,
        per_mgas: per_mgas / n,
        split_per_block: Recipient::ALL
            .iter()
            .zip(split_sum)
            .map(|(r, v)| (*r, v / n))
            .filter(|(r, v)| *r != Recipient::Other || *v != 0.0)
            .collect(),
        honest_per_block: honest_per_block / n,
    };
    let k = scenario.sybil_keys.max(1);
    let mut results = Vec::with_capacity(deviations.len());
    for ((b, list), count) in deviations.iter().zip(per_seed).zip(counts) {
        let units = if *b == Behaviour::Sybil { count.div_ceil(k) } else { count };
        results.push(result_of(*b, count, units, list)?);
    }
    Ok(DeviationAnalysis {
        scenario: scenario.name.clone(),
        seeds,
        blocks: scenario.blocks,
        provers: scenario.provers.len() as u64,
        share: opts.share,
        sybil_keys: scenario.sybil_keys,
        inclusion_modelled: scenario.proposers_with_sidecar.is_some(),
        deviations: results,
        issuance,
    })
}

/// The header of `deviations.csv`.
pub const DEVIATIONS_CSV_HEADER: &str =
    "behaviour,deviator_mean,honest_mean,difference,ci95_low,ci95_high,beats_honest";

impl DeviationAnalysis {
    /// `deviations.csv`: [`DEVIATIONS_CSV_HEADER`], then one row per deviation (amounts per
    /// block, four decimals).
    pub fn csv(&self) -> String {
        let mut out = String::from(DEVIATIONS_CSV_HEADER);
        out.push('\n');
        for d in &self.deviations {
            let _ = writeln!(
                out,
                "{},{:.4},{:.4},{:.4},{:.4},{:.4},{}",
                d.behaviour,
                d.deviator_mean,
                d.honest_mean,
                d.difference.mean,
                d.difference.low,
                d.difference.high,
                d.beats_honest
            );
        }
        out
    }

    /// The terminal table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "deviation analysis · scenario {} · {} seeds · {} blocks · {} provers · share {}",
            self.scenario,
            self.seeds.len(),
            self.blocks,
            self.provers,
            self.share
        );
        let _ = writeln!(
            out,
            "{:<17} {:>9} {:>12} {:>12} {:>12} {:>25} {:>6} {:>10}",
            "deviation",
            "deviators",
            "dev/blk",
            "honest/blk",
            "difference",
            "95% interval",
            "beats",
            "more/AIR"
        );
        for d in &self.deviations {
            let _ = writeln!(
                out,
                "{:<17} {:>9} {:>12.2} {:>12.2} {:>12.2} {:>25} {:>6} {:>10}",
                d.behaviour.as_str(),
                d.deviators,
                d.deviator_mean,
                d.honest_mean,
                d.difference.mean,
                format!("[{:.2}, {:.2}]", d.difference.low, d.difference.high),
                if d.beats_honest { "yes" } else { "no" },
                if d.more_per_work { "yes" } else { "no" }
            );
        }
        let _ = writeln!(
            out,
            "issuance: {:.2} per block, {:.3} per Mgas (no deviators)",
            self.issuance.per_block, self.issuance.per_mgas
        );
        out
    }

    /// The markdown report (`report.md`), linking the plots written beside it.
    pub fn markdown(&self, command: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Deviation analysis: scenario `{}`\n", self.scenario);
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "{} seeds ({}), {} counted blocks each, {} provers; in each run a share of {} of the \
             provers registered at genesis deviates from an otherwise honest population \
             (sybil: operators of {} keys). Reproduce with:\n\n```sh\n{command}\n```\n",
            self.seeds.len(),
            seeds.join(", "),
            self.blocks,
            self.provers,
            self.share,
            self.sybil_keys
        );
        let beat: Vec<&str> = self
            .deviations
            .iter()
            .filter(|d| d.beats_honest)
            .map(|d| d.behaviour.as_str())
            .collect();
        let more: Vec<&str> = self
            .deviations
            .iter()
            .filter(|d| d.more_per_work)
            .map(|d| d.behaviour.as_str())
            .collect();
        let list = |v: &[&str]| if v.is_empty() { "none".to_owned() } else { v.join(", ") };
        let _ = writeln!(out, "## Verdict\n");
        let _ = writeln!(
            out,
            "- Beat honest play (the 95% interval of the difference lies above zero; the table \
             is not incentive-compatible against them): **{}**.",
            list(&beat)
        );
        let _ = writeln!(
            out,
            "- Earn more per unit of work (per AIR proved) than honest provers: **{}**.\n",
            list(&more)
        );
        let _ = writeln!(out, "## Reward per block\n");
        let _ = writeln!(
            out,
            "| deviation | deviators (units) | deviator reward/block | honest reward/block | \
             difference | 95% interval | beats honest |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---|");
        for d in &self.deviations {
            let _ = writeln!(
                out,
                "| {} | {} ({}) | {:.2} | {:.2} | {:.2} | [{:.2}, {:.2}] | {} |",
                d.behaviour,
                d.deviators,
                d.units,
                d.deviator_mean,
                d.honest_mean,
                d.difference.mean,
                d.difference.low,
                d.difference.high,
                if d.beats_honest { "**yes**" } else { "no" }
            );
        }
        let _ = writeln!(
            out,
            "\n![Payoff of each deviation relative to honest](deviation_payoff.png)\n"
        );
        let _ = writeln!(out, "## Reward per unit of work\n");
        let _ = writeln!(
            out,
            "Work is AIRs proved. Reward per AIR is a group's total payoff over its total AIRs \
             proved in a run, averaged over seeds.\n"
        );
        let _ = writeln!(
            out,
            "| deviation | deviator AIRs/block | honest AIRs/block | deviator reward/AIR | \
             honest reward/AIR | difference [95% interval] | more per AIR |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---|");
        for d in &self.deviations {
            let dev_air = mean(d.per_seed.iter().map(|s| s.deviator_airs_per_block));
            let hon_air = mean(d.per_seed.iter().map(|s| s.honest_airs_per_block));
            let hon_per = mean(d.per_seed.iter().filter_map(|s| s.honest_per_air));
            let (dev_per, diff) = match d.per_air_difference {
                Some(ci) => (
                    format!("{:.2}", mean(d.per_seed.iter().filter_map(|s| s.deviator_per_air))),
                    format!("{:.2} [{:.2}, {:.2}]", ci.mean, ci.low, ci.high),
                ),
                None if d.per_seed.iter().all(|s| s.deviator_per_air.is_none()) => {
                    let label =
                        if d.more_per_work { "no work (earns without proving)" } else { "no work" };
                    (label.to_owned(), "-".to_owned())
                }
                None => ("some runs without work".to_owned(), "-".to_owned()),
            };
            let _ = writeln!(
                out,
                "| {} | {:.3} | {:.3} | {} | {:.2} | {} | {} |",
                d.behaviour,
                dev_air,
                hon_air,
                dev_per,
                hon_per,
                diff,
                if d.more_per_work { "**yes**" } else { "no" }
            );
        }
        let _ = writeln!(out, "\n## Issuance (runs without deviators)\n");
        let i = &self.issuance;
        let _ = writeln!(
            out,
            "Net issuance (penalties included): **{:.2} per block**, **{:.3} per Mgas**; an \
             honest prover earns {:.2} per block.\n",
            i.per_block, i.per_mgas, i.honest_per_block
        );
        let _ = writeln!(out, "| recipient | per block | share of gross rewards |");
        let _ = writeln!(out, "|---|---:|---:|");
        let gross: f64 = i
            .split_per_block
            .iter()
            .filter(|(r, _)| *r != Recipient::Penalties)
            .map(|(_, v)| v)
            .sum();
        for (r, v) in &i.split_per_block {
            let share = if *r == Recipient::Penalties || gross == 0.0 {
                "-".to_owned()
            } else {
                format!("{:.1}%", 100.0 * v / gross)
            };
            let _ = writeln!(out, "| {} | {:.2} | {} |", r.label(), v, share);
        }
        let _ = writeln!(out, "\n![Issuance split by recipient](issuance_split.png)\n");
        let _ = writeln!(out, "## Definitions\n");
        let _ = writeln!(
            out,
            "- Reward per block: a payoff unit's ledger total over its active blocks; the \
             deviators' and the honest provers' means are taken in the same run.\n\
             - Difference: per seed, deviators' mean minus honest mean; its mean over seeds and \
             95% Student-t interval.\n\
             - Sybil: one unit per operator, its keys' totals summed and divided by its keys' \
             active blocks (comparable with one honest key of the same stake).\n\
             - Censoring: every prover's payoff (deviators' and honest provers') includes the \
             rewards of the validator of its index, which it operates.{}",
            if self.inclusion_modelled {
                ""
            } else {
                " This scenario does not model inclusion records (`proposers_with_sidecar`), so \
                 a censoring prover acts as an honest one here."
            }
        );
        out
    }
}

/// Writes `deviations.csv`, `deviations.json`, `report.md` and the plots
/// (`deviation_payoff`, `issuance_split`, PNG and SVG) into `dir`; returns the paths written.
///
/// # Errors
/// [`SimError::Io`], [`SimError::Json`] or [`SimError::Plot`].
pub fn write_deviations(
    dir: &Path,
    analysis: &DeviationAnalysis,
    command: &str,
) -> SimResult<Vec<PathBuf>> {
    let write = |name: &str, text: String| -> SimResult<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| SimError::Io {
            action: "writing",
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    let mut written = vec![write("deviations.csv", analysis.csv())?];
    let json_path = dir.join("deviations.json");
    let json = serde_json::to_string_pretty(analysis)
        .map_err(|source| SimError::Json { path: json_path, source })?;
    written.push(write("deviations.json", json + "\n")?);
    written.push(write("report.md", analysis.markdown(command))?);
    written.extend(super::plot::plot_deviations(dir, analysis)?);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_have_recipients() {
        for (rule, r) in [
            ("REWARD_FULL_PROOF_PROVER_T1", Recipient::SelectedProvers),
            ("REWARD_FULL_PROOF_SENDER_T2", Recipient::Senders),
            ("REWARD_FULL_PROOF_VALIDATOR_T1", Recipient::Validators),
            ("REWARD_T1_VALIDATOR", Recipient::Validators),
            ("REWARD_T2_PROVER", Recipient::PartialAuthors),
            ("REWARD_PROVER_REUSED_T4", Recipient::PartialAuthors),
            ("REWARD_PROVER_REUSING_T3", Recipient::Aggregators),
            ("REWARD_PROVER_T5", Recipient::Aggregators),
            ("REWARD_AGG_PROOF_PROVER", Recipient::AggProofGroup),
            ("REWARD_AGG_PROOF_VALIDATOR", Recipient::Validators),
            ("PENALTY_T2_PROVER", Recipient::Penalties),
            ("SOMETHING_NEW", Recipient::Other),
        ] {
            assert_eq!(Recipient::of_rule(rule), r, "{rule}");
        }
    }

    #[test]
    fn deviator_counts() {
        assert_eq!(deviator_count(Behaviour::Lazy, 1000, 0.05, 4), 50);
        assert_eq!(deviator_count(Behaviour::Lazy, 10, 0.01, 4), 1);
        assert_eq!(deviator_count(Behaviour::Sybil, 1000, 0.05, 4), 48);
        assert_eq!(deviator_count(Behaviour::Sybil, 10, 0.01, 4), 4);
        assert_eq!(deviator_count(Behaviour::Sybil, 3, 0.5, 4), 3);
    }

    #[test]
    fn options_are_checked() {
        assert!(DeviationOptions::default().validate().is_ok());
        let bad_seeds = DeviationOptions { seeds: 1, ..Default::default() };
        assert!(bad_seeds.validate().unwrap_err().to_string().contains("--seeds"));
        for share in [0.0, -0.1, 0.6, f64::NAN] {
            let bad = DeviationOptions { share, ..Default::default() };
            assert!(bad.validate().unwrap_err().to_string().contains("--deviation-share"));
        }
    }
}
